"""The image's install and `airflow-init` as compose runs them, without Docker.

The Dockerfile's `pip install` line runs in a fresh virtual environment inside a copy of what
the Dockerfile copies; then the `airflow-init` service's exact command runs with the compose
file's environment (secrets filled in, the `postgres` host pointed at the local PostgreSQL,
fresh databases created and dropped here). Wheels come from a cache filled from PyPI once per
change of pyproject.toml, so a run installs offline.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from tests.conftest import PG_SERVER, _server

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
WHEELS = Path(
    os.environ.get("DOSSIERHUB_TEST_WHEELS", Path.home() / ".cache" / "dossierhub-test" / "wheels")
)
INTERPOLATION = re.compile(r"\$\$|\$\{([A-Z0-9_]+)(?::([?-])([^}]*))?\}")


def dockerfile_install_line() -> str:
    [line] = re.findall(r"^RUN (pip install .*)$", DOCKERFILE, re.M)
    return line


def dockerfile_copies() -> list[str]:
    """What the Dockerfile copies into its WORKDIR before installing."""
    workdir_part = DOCKERFILE.split("RUN pip install", 1)[0]
    copied = []
    for args in re.findall(r"^COPY (.+)$", workdir_part, re.M):
        *sources, _target = args.split()
        copied += sources
    return copied


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR:?error} and $$."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, kind, word = match.groups()
        if variables.get(name):
            return variables[name]
        if kind == "?":
            raise AssertionError(f"compose would refuse to start: {word}")
        return word or ""

    return INTERPOLATION.sub(substitute, value)


def env_example_names() -> list[str]:
    lines = (ROOT / "deploy" / "env.example").read_text(encoding="utf-8").splitlines()
    return [line.split("=", 1)[0] for line in lines if re.match(r"^[A-Z0-9_]+=", line)]


@pytest.fixture
def postgres_databases() -> Iterator[dict[str, str]]:
    """Fresh databases standing in for the compose `postgres` service's ones."""
    server = _server(PG_SERVER, "PostgreSQL")
    suffix = secrets.token_hex(4)
    names = {db: f"dh_compose_{db}_{suffix}" for db in ("airflow", "registry", "land")}
    with server.connect() as conn:
        for name in names.values():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield names
    finally:
        with server.connect() as conn:
            for name in names.values():
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


def fill_wheel_cache() -> None:
    """Wheels for the image's install, fetched from PyPI only when pyproject.toml changed."""
    stamp = WHEELS / ".stamp"
    key = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + dockerfile_install_line().encode()
    ).hexdigest()
    if stamp.exists() and stamp.read_text() == key:
        return
    WHEELS.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(WHEELS)),
            *("--find-links", str(WHEELS), f"{ROOT}[airflow]", "setuptools>=77"),
        ],
        check=True,
        timeout=600,
    )
    for built in WHEELS.glob("dossierhub-*.whl"):  # the project itself is built fresh each run
        built.unlink()
    stamp.write_text(key)


def env_file_values() -> dict[str, str]:
    """A filled-in .env: a fresh secret for every name deploy/env.example lists."""
    variables = {name: secrets.token_urlsafe(24) for name in env_example_names()}
    variables["AIRFLOW_EXECUTOR"] = "LocalExecutor"
    variables["AIRFLOW_FERNET_KEY"] = Fernet.generate_key().decode()
    return variables


def compose_environment(
    service: dict[str, Any],
    variables: dict[str, str],
    databases: dict[str, str],
    airflow_home: Path,
) -> dict[str, str]:
    server = make_url(PG_SERVER)
    local = f"{server.host or '127.0.0.1'}:{server.port or 5432}"
    login = f"{server.username or 'postgres'}:{server.password or variables['POSTGRES_PASSWORD']}"
    env = {}
    for key, value in (service.get("environment") or {}).items():
        value = interpolate(str(value), variables)
        # The compose network's `postgres` host is the local server; its databases are ours.
        for db, name in databases.items():
            value = value.replace(f"@postgres:5432/{db}", f"@{local}/{name}")
        value = re.sub(r"//postgres:[^@]*@", f"//{login}@", value)
        env[str(key)] = value
    env["AIRFLOW_HOME"] = str(airflow_home)  # the image's /opt/airflow
    return env


@pytest.mark.slow
def test_image_install_then_airflow_init_succeeds(
    tmp_path: Path, postgres_databases: dict[str, str]
) -> None:
    started = time.monotonic()
    fill_wheel_cache()
    print(f"wheel cache ready after {time.monotonic() - started:.0f} s")
    # The image's WORKDIR: what the Dockerfile copies before it installs.
    workdir = tmp_path / "opt-dossierhub"
    workdir.mkdir()
    for name in dockerfile_copies():
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, workdir / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, workdir / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DOSSIERHUB_", "AIRFLOW"))}
    base.pop("PYTHONPATH", None)
    base["PATH"] = f"{venv / 'bin'}{os.pathsep}{base['PATH']}"
    install = subprocess.run(
        ["bash", "-c", dockerfile_install_line()],
        cwd=workdir,
        # Offline from the wheel cache; no bytecode compiled ahead (half the install's time,
        # and the image sets PYTHONDONTWRITEBYTECODE anyway).
        env={**base, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(WHEELS), "PIP_NO_COMPILE": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    print(f"image install done after {time.monotonic() - started:.0f} s")

    service = COMPOSE["services"]["airflow-init"]
    command = service["command"]
    assert command[:2] == ["bash", "-c"]
    home = tmp_path / "opt-airflow"
    home.mkdir()
    variables = env_file_values()
    env = {**base, **compose_environment(service, variables, postgres_databases, home)}
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"].startswith("postgresql+psycopg_async")
    init = subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, timeout=600
    )
    assert init.returncode == 0, (init.stdout + init.stderr)[-4000:]
    print(f"airflow-init done after {time.monotonic() - started:.0f} s")
    assert "(from AIRFLOW_CONN_DOSSIERHUB_REGISTRY)" in init.stderr
    for name in env_example_names():  # no secret reaches the output
        if re.search(r"PASSWORD|SECRET|KEY", name):
            assert variables[name] not in init.stdout + init.stderr, name

    server = make_url(PG_SERVER)
    for db, expected in (("airflow", "dag_run"), ("registry", "dossier")):
        engine = create_engine(server.set(database=postgres_databases[db]))
        try:
            with engine.connect() as conn:
                assert inspect(conn).has_table(expected), f"{db} has no {expected} table"
        finally:
            engine.dispose()

    # The installed image parses the compose sources file into DAGs, Celery provider included.
    probe = (
        "import json; from dossierhub.airflow_edge import dag_sources; "
        "import airflow.providers.celery.executors.celery_executor as c; "
        "print(json.dumps(sorted(dag_sources())))"
    )
    parsed = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe],
        cwd=workdir,
        env={**env, "DOSSIERHUB_SOURCES_FILE": str(ROOT / "deploy" / "sources.compose.yaml")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert parsed.returncode == 0, parsed.stderr[-3000:]
    assert json.loads(parsed.stdout.strip().splitlines()[-1]) == [
        "finance",
        "land",
        "one_stop",
        "social_insurance",
        "tax",
    ]
