"""SIGKILL the sync process at many points; every rerun must leave the registry as a clean run.

After each kill, before the rerun, the saved cursor must not stand past data that did not
land: every source row at or before the cursor is in the registry or in quarantine, and
nothing after it is.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, and_, create_engine, func, or_, select, text

from dossierhub import store
from dossierhub.settings import Settings
from dossierhub.sources import open_connector
from dossierhub.sync import sync_source
from models import migrate
from models.tables import dossier, quarantine, sync_run, sync_state
from simulators import tax

ROWS, BATCH = 6000, 150  # 40 batches
KILL_AT = [1, 2, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31, 33, 35, 37, 38]
KEY = "crash-test-key-" + "c" * 32


def scratch(server: Engine, label: str) -> str:
    name = f"dh_crash_{label}_{secrets.token_hex(3)}"
    with server.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return server.url.set(database=name).render_as_string(hide_password=False)


def drop(server: Engine, url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with server.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def source(server: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    url = scratch(server, "src")
    tax.generate(url, rows=ROWS, seed=77, malformed_share=0.03)
    folder = tmp_path_factory.mktemp("crash")
    sources = folder / "sources.yaml"
    sources.write_text(
        f"sources:\n  tax:\n    connector: tax\n    batch_size: {BATCH}\n    lookback_seconds: 0\n"
        f"    settings: {{url: '{url}'}}\n",
        encoding="utf-8",
    )
    clean = store.open_registry(f"sqlite:///{folder / 'clean.db'}")
    migrate.upgrade(clean)
    os.environ["DOSSIERHUB_SOURCES_FILE"] = str(sources)
    try:
        sync_source(clean, open_connector(Settings(hash_key=KEY), "tax"))  # type: ignore[arg-type]
    finally:
        del os.environ["DOSSIERHUB_SOURCES_FILE"]
    with clean.connect() as conn:
        digest = store.digest(conn)
    clean.dispose()
    yield {"url": url, "sources": str(sources), "digest": digest}
    drop(server, url)


def start_sync(registry_url: str, sources: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOSSIERHUB_")}
    env.update(
        DOSSIERHUB_REGISTRY_URL=registry_url,
        DOSSIERHUB_SOURCES_FILE=sources,
        DOSSIERHUB_HASH_KEY=KEY,
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
    )
    return subprocess.Popen(
        [sys.executable, "-m", "dossierhub", "sync", "tax"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def batches_done(registry: Engine) -> int:
    with registry.connect() as conn:
        return int(
            conn.execute(select(func.coalesce(func.max(sync_run.c.batches), 0))).scalar_one()
        )


def assert_cursor_never_ahead_of_data(registry: Engine, source_url: str) -> int:
    with registry.connect() as conn:
        cursor = conn.execute(select(sync_state.c.cursor)).scalar_one_or_none()
        landed = conn.execute(select(func.count()).select_from(dossier)).scalar_one()
        held = conn.execute(select(func.count()).select_from(quarantine)).scalar_one()
        distinct = conn.execute(
            select(func.count(func.distinct(quarantine.c.source_id)))
        ).scalar_one()
    assert held == distinct, "quarantine holds a record twice"
    if cursor is None:
        assert landed + held == 0
        return 0
    source = create_engine(source_url)
    t = tax.tb_hoso.c
    at = (t.NGAY_CAP_NHAT, t.ID)
    stamp, key = cursor["updated_at"], cursor["key"]
    from datetime import datetime

    stamp = datetime.fromisoformat(stamp)
    with source.connect() as conn:
        upto = conn.execute(
            select(func.count()).where(or_(at[0] < stamp, and_(at[0] == stamp, at[1] <= key)))
        ).scalar_one()
    source.dispose()
    assert landed + held == upto, "registry and cursor disagree: data lost or cursor ahead"
    return int(upto)


def test_sigkill_at_many_points_then_rerun_equals_a_clean_run(
    server: Engine, source: dict[str, str]
) -> None:
    killed_after = []
    for target in KILL_AT:
        registry_url = scratch(server, "reg")
        registry = store.open_registry(registry_url)
        migrate.upgrade(registry)
        try:
            process = start_sync(registry_url, source["sources"])
            deadline = time.monotonic() + 60
            while batches_done(registry) < target and process.poll() is None:
                assert time.monotonic() < deadline, "sync made no progress"
                time.sleep(0.005)
            process.send_signal(signal.SIGKILL)
            process.wait(30)
            killed_after.append(assert_cursor_never_ahead_of_data(registry, source["url"]))

            rerun = start_sync(registry_url, source["sources"])
            _, stderr = rerun.communicate(timeout=120)
            assert rerun.returncode == 0, stderr.decode()[-2000:]
            with registry.connect() as conn:
                assert store.digest(conn) == source["digest"], f"kill after batch {target}"
                statuses = (
                    conn.execute(select(sync_run.c.status).order_by(sync_run.c.id)).scalars().all()
                )
            assert statuses[-1] == "succeeded"
            assert_cursor_never_ahead_of_data(registry, source["url"])
        finally:
            registry.dispose()
            drop(server, registry_url)
    # The kills really happened mid-run, spread over the batches.
    assert len(set(killed_after)) >= 15 and max(killed_after) < ROWS
