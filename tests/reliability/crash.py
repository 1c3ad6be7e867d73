"""The harness of the crash tests: a `dossierhub sync` process killed after N committed batches.

The killed sync is a real process running the command line, as under Airflow or cron; the
clean run and the rerun after each kill call the same engine function in this process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import Engine, func, select, text

from dossierhub import store
from dossierhub.settings import Settings
from dossierhub.sources import open_connector
from dossierhub.sync import sync_source
from models import migrate
from models.tables import dossier, quarantine, sync_run, sync_state
from tests.conftest import drop_database_later

ROOT = Path(__file__).resolve().parents[2]


def hub_settings(sources: Path, key: str) -> Settings:
    return Settings(mode="demo", hash_key=SecretStr(key), sources_file=sources)


def sync_once(registry: Engine, source: str, sources: Path, key: str) -> None:
    """One sync of `source` to its end, in this process (as the CLI runs it)."""
    result = sync_source(registry, open_connector(hub_settings(sources, key), source))
    assert result.status == "succeeded", result


@contextmanager
def scratch_registry(server: Engine, label: str) -> Iterator[tuple[str, Engine]]:
    """A fresh migrated PostgreSQL registry on `server`, dropped afterwards."""
    url = scratch(server, label)
    registry = store.open_registry(url)
    try:
        migrate.upgrade(registry)
        yield url, registry
    finally:
        registry.dispose()
        drop(url)


def scratch(server: Engine, label: str) -> str:
    """A new empty database on `server`; its URL."""
    name = f"dh_crash_{label}_{os.urandom(3).hex()}"
    with server.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return server.url.set(database=name).render_as_string(hide_password=False)


def drop(url: str) -> None:
    """Drop the database `url` names (in the background, see tests/conftest.py)."""
    drop_database_later(url.rsplit("/", 1)[1])


def kill_after(
    source: str, batches: int, *, registry_url: str, registry: Engine, sources: Path, key: str
) -> None:
    """Start `dossierhub sync SOURCE` and SIGKILL it once `batches` batches have committed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOSSIERHUB_")}
    env.update(
        DOSSIERHUB_REGISTRY_URL=registry_url,
        DOSSIERHUB_SOURCES_FILE=str(sources),
        DOSSIERHUB_HASH_KEY=key,
        DOSSIERHUB_MODE="demo",
        PYTHONPATH=str(ROOT),
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "dossierhub", "sync", source],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    done = select(func.coalesce(func.max(sync_run.c.batches), 0))
    try:
        while process.poll() is None:
            with registry.connect() as conn:
                if conn.execute(done).scalar_one() >= batches:
                    break
            assert time.monotonic() < deadline, "the sync made no progress"
            time.sleep(0.005)
        # Finished before the kill: the point was not mid-run, and the test would prove less.
        assert process.poll() is None, process.communicate()[1].decode()[-2000:]
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)


def cursor_and_held(registry: Engine) -> tuple[dict[str, Any] | None, int]:
    """The saved cursor, and how many records landed or were quarantined (each at most once)."""
    with registry.connect() as conn:
        cursor = conn.execute(select(sync_state.c.cursor)).scalar_one_or_none()
        landed = conn.execute(select(func.count()).select_from(dossier)).scalar_one()
        held = conn.execute(select(func.count()).select_from(quarantine)).scalar_one()
        distinct = conn.execute(
            select(func.count(func.distinct(quarantine.c.source_id)))
        ).scalar_one()
    assert held == distinct, "quarantine holds a record twice"
    if cursor is None:
        assert landed + held == 0, "records landed without a cursor"
    return cursor, landed + held
