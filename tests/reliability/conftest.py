"""Fixtures of the crash tests: a PostgreSQL server to make scratch databases on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text

from tests.conftest import PG_SERVER, unavailable


@pytest.fixture(scope="module")
def server() -> Iterator[Engine]:
    engine = create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        unavailable("PostgreSQL", exc)
    yield engine
    engine.dispose()
