"""The DAGs under a real Airflow: scheduler, dag-processor and API server as separate processes.

LocalExecutor, SQLite metadata in a temporary AIRFLOW_HOME, everything on 127.0.0.1. The API
server is started too: Airflow 3 tasks report to its execution API. The registry and the Tax
source are named only by Airflow Connections (AIRFLOW_CONN_*), the way compose runs them, and
the registry is migrated by `dossierhub db upgrade` reading the same Connection.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from simulators import tax
from tests.conftest import unavailable

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_S = 300  # the whole test; a run not done by then fails with every process's log tail
T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Airflow:
    """Airflow processes sharing one AIRFLOW_HOME; `stop()` ends every one it started."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home, self.env = home, env
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.deadline = time.monotonic() + DEADLINE_S

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=max(10.0, self.deadline - time.monotonic()),
            cwd=self.home,
        )
        assert result.returncode == 0, f"airflow {' '.join(args)}: {result.stderr[-3000:]}"
        return result.stdout

    def start(self, name: str, *args: str) -> None:
        log = (self.home / f"{name}.log").open("wb")
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.home,
            start_new_session=True,  # its own process group: its workers end with it
        )

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

    def logs(self) -> str:
        tails = []
        for name in self.processes:
            text = (self.home / f"{name}.log").read_text(errors="replace")
            tails.append(f"--- {name} ---\n{text[-2500:]}")
        for task_log in sorted((self.home / "logs").rglob("*.log"))[-6:]:
            tails.append(f"--- {task_log.name} ---\n{task_log.read_text(errors='replace')[-1500:]}")
        return "\n".join(tails)

    def wait_for(self, what: str, probe: Callable[[], T | None]) -> T:
        while time.monotonic() < self.deadline:
            for name, process in self.processes.items():
                assert process.poll() is None, (
                    f"{name} exited while waiting for {what}\n{self.logs()}"
                )
            try:
                found = probe()
            except sqlite3.OperationalError:  # the metadata database is busy: ask again
                found = None
            if found is not None:
                return found
            time.sleep(2)
        raise AssertionError(f"timed out waiting for {what}\n{self.logs()}")

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.home / "airflow.db", timeout=10) as db:
            return db.execute(sql, params).fetchall()

    def run_state(self, dag_id: str) -> str | None:
        rows = self.query(
            "SELECT state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", dag_id
        )
        if not rows or rows[0][0] in (None, "queued", "running"):
            return None
        assert rows[0][0] == "success", f"{dag_id} ended {rows[0][0]}\n{self.logs()}"
        return str(rows[0][0])


@pytest.fixture
def airflow(tmp_path: Path) -> Iterator[tuple[Airflow, dict[str, Any]]]:
    try:
        import airflow as _  # noqa: F401
    except ImportError as exc:
        unavailable("Apache Airflow (pip install -e '.[dev]')", exc)
    home = tmp_path / "airflow"
    home.mkdir()
    source, registry = tmp_path / "tax.db", tmp_path / "registry.db"
    truth = tax.generate(f"sqlite:///{source}", rows=300, seed=61, malformed_share=0.01)
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        "sources:\n  tax:\n    connector: tax\n    schedule: null\n    retries: 0\n",
        encoding="utf-8",
    )
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOSSIERHUB_", "AIRFLOW"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__PARALLELISM="2",
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__API__WORKERS="1",
        AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_urlsafe(32),
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
        AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="2",
        PYTHONPATH=str(ROOT),
        DOSSIERHUB_SOURCES_FILE=str(sources),
        DOSSIERHUB_HASH_KEY="scheduler-test-key-" + "s" * 32,
        AIRFLOW_CONN_DOSSIERHUB_REGISTRY=f"sqlite:///{registry}",
        AIRFLOW_CONN_DOSSIERHUB_SOURCE_TAX=json.dumps({"conn_type": "sqlite", "host": str(source)}),
    )
    upgraded = subprocess.run(
        [sys.executable, "-m", "dossierhub", "db", "upgrade"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert upgraded.returncode == 0, upgraded.stderr
    runner = Airflow(home, env)
    try:
        runner.cli("db", "migrate")
        runner.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(port))
        runner.start("dag-processor", "dag-processor")
        runner.start("scheduler", "scheduler", "--skip-serve-logs")
        yield runner, {"registry": registry, "truth": truth}
    finally:
        runner.stop()


@pytest.mark.slow
def test_scheduler_runs_the_tax_sync_then_the_statistics_dag(
    airflow: tuple[Airflow, dict[str, Any]],
) -> None:
    runner, world = airflow
    wanted = {"dossierhub_sync_tax", "dossierhub_statistics"}

    def parsed() -> set[str] | None:
        found = {row[0] for row in runner.query("SELECT dag_id FROM dag")}
        return found if wanted <= found else None

    runner.wait_for("the dag-processor to store both DAGs", parsed)
    runner.cli("dags", "unpause", "--treat-dag-id-as-regex", "--yes", "^dossierhub_")
    runner.cli("dags", "trigger", "dossierhub_sync_tax")
    runner.wait_for("the Tax sync run", lambda: runner.run_state("dossierhub_sync_tax"))

    tasks = dict(
        runner.query(
            "SELECT task_id, state FROM task_instance WHERE dag_id = 'dossierhub_sync_tax'"
        )
    )
    assert tasks == {"check": "success", "sync": "success", "verify": "success"}
    truth = world["truth"]
    with sqlite3.connect(world["registry"]) as db:
        [(landed,)] = db.execute("SELECT count(*) FROM dossier WHERE source_system = 'tax'")
        [(held,)] = db.execute("SELECT count(*) FROM quarantine WHERE source_system = 'tax'")
    assert (landed, held) == (truth.valid, truth.malformed)

    # verify's Asset event schedules the statistics DAG, which links the dossiers into cases.
    runner.wait_for("the statistics run", lambda: runner.run_state("dossierhub_statistics"))
    [(trigger,)] = runner.query(
        "SELECT run_type FROM dag_run WHERE dag_id = 'dossierhub_statistics'"
    )
    assert trigger == "asset_triggered"
    with sqlite3.connect(world["registry"]) as db:
        [(cases,)] = db.execute("SELECT count(*) FROM dossier_case")
    assert cases == truth.valid  # Tax alone forwards nothing: one case per dossier
