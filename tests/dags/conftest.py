"""Fixtures of the DAG tests: an Airflow home with its metadata database migrated (once per
test file), and a province of two Tax offices with a PostgreSQL registry."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dossierhub import store
from models import migrate
from simulators import tax
from tests.conftest import unavailable
from tests.dags.airflow_runs import airflow_env, sources_file


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        import airflow  # noqa: F401
    except ImportError as exc:
        unavailable("Apache Airflow (pip install -e '.[dev]')", exc)
    home = tmp_path_factory.mktemp("airflow")
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=airflow_env(home, {}),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return home


@pytest.fixture
def province(tmp_path: Path, pg_url: str) -> Iterator[dict[str, Any]]:
    """Two Tax offices (one partitioned) in SQLite files, a PostgreSQL registry, a sources file."""
    north, south = tmp_path / "north.db", tmp_path / "south.db"
    truths = {
        "tax": tax.generate(f"sqlite:///{north}", rows=900, seed=31, malformed_share=0.02),
        "tax_south": tax.generate(f"sqlite:///{south}", rows=400, seed=32, malformed_share=0.02),
    }
    file = sources_file(
        tmp_path / "sources.yaml",
        f"  tax:\n    connector: tax\n    partitions: 3\n    retries: 0\n    settings: {{url: 'sqlite:///{north}'}}\n"
        f"  tax_south:\n    connector: tax\n    retries: 0\n    settings: {{url: 'sqlite:///{south}'}}\n",
    )
    registry = store.open_registry(pg_url)
    migrate.upgrade(registry)
    yield {"file": file, "registry": registry, "url": pg_url, "truths": truths, "dir": tmp_path}
    registry.dispose()
