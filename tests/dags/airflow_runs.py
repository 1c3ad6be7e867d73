"""Running the DAG folder in a fresh process (dag_runner.py) with an AIRFLOW_HOME and
DossierHub settings in its environment, as the DAG tests do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

RUNNER = Path(__file__).with_name("dag_runner.py")
ROOT = Path(__file__).resolve().parents[2]


def airflow_env(home: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOSSIERHUB_", "AIRFLOW"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        PYTHONPATH=str(ROOT),
        DOSSIERHUB_HASH_KEY="dag-test-key-" + "d" * 32,
        **extra,
    )
    return env


def run(
    home: Path, env: dict[str, str], *args: str, cwd: Path = ROOT, output: bool = False
) -> dict[str, Any]:
    """The runner's JSON; with `output`, {"runs": that JSON, "output": all it printed}."""
    result = subprocess.run(
        [sys.executable, str(RUNNER), *args],
        env=airflow_env(home, env),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(line for line in reversed(result.stdout.splitlines()) if line.strip())
    parsed = dict(json.loads(line.removeprefix("RESULT ")))
    if output:
        return {"runs": parsed, "output": result.stdout + result.stderr}
    return parsed


def sources_file(path: Path, body: str) -> str:
    path.write_text("sources:\n" + body, encoding="utf-8")
    return str(path)
