"""SIGKILL a sync of a SQL source (Tax on PostgreSQL) through the columnar path at 21 points;
every rerun must leave the registry as a clean run, and after each kill the cursor must not
stand past data that did not land (tests/reliability/crash_tax.py). test_crash_rows.py does
the same through the row path."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from tests.reliability.crash_tax import kill_at_many_points_then_rerun, source_fixture

source = source_fixture(columnar=True)


@pytest.mark.slow
def test_sigkill_at_many_points_then_rerun_equals_a_clean_run(
    server: Engine, source: dict[str, Any]
) -> None:
    kill_at_many_points_then_rerun(server, source)
