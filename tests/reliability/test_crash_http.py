"""SIGKILL a sync of an HTTP source (Social Insurance, OAuth2, cursor pages) at 20 points.

The API runs in this process on 127.0.0.1; each sync runs as a `dossierhub sync` process that
is killed after a chosen number of committed batches, then run again to the end. After each
kill the cursor must not stand past data that did not land, and after each rerun the registry
must equal one clean run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from dossierhub import store
from dossierhub.settings import Settings
from dossierhub.sources import open_connector
from dossierhub.sync import sync_source
from models import migrate
from models.tables import dossier, quarantine, sync_run, sync_state
from simulators import social_insurance
from tests.reliability.test_crash import drop, scratch

ROWS, BATCH = 3000, 100  # 30 batches
KILL_AT = [1, 2, 3, 4, 5, 7, 8, 10, 11, 13, 14, 16, 17, 19, 20, 22, 23, 25, 27, 28]
KEY = "crash-http-key-" + "h" * 32
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    with social_insurance.SocialInsuranceApi(rows=ROWS, seed=91, malformed_share=0.03) as service:
        folder = tmp_path_factory.mktemp("crash-http")
        settings = {
            "base_url": service.url,
            "client_id": social_insurance.DEMO_CLIENT_ID,
            "client_secret": social_insurance.DEMO_CLIENT_SECRET,
        }
        sources = folder / "sources.yaml"
        sources.write_text(
            "sources:\n  social_insurance:\n    connector: social_insurance\n"
            f"    batch_size: {BATCH}\n    lookback_seconds: 0\n    settings: {json.dumps(settings)}\n",
            encoding="utf-8",
        )
        clean = store.open_registry(f"sqlite:///{folder / 'clean.db'}")
        migrate.upgrade(clean)
        os.environ["DOSSIERHUB_SOURCES_FILE"] = str(sources)
        try:
            hub = Settings(mode="demo", hash_key=KEY)  # type: ignore[arg-type]
            sync_source(clean, open_connector(hub, "social_insurance"))
        finally:
            del os.environ["DOSSIERHUB_SOURCES_FILE"]
        with clean.connect() as conn:
            digest = store.digest(conn)
        clean.dispose()
        yield {"service": service, "sources": str(sources), "digest": digest}


def start_sync(registry_url: str, sources: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOSSIERHUB_")}
    env.update(
        DOSSIERHUB_REGISTRY_URL=registry_url,
        DOSSIERHUB_SOURCES_FILE=sources,
        DOSSIERHUB_HASH_KEY=KEY,
        DOSSIERHUB_MODE="demo",
        PYTHONPATH=str(ROOT),
    )
    return subprocess.Popen(
        [sys.executable, "-m", "dossierhub", "sync", "social_insurance"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def assert_cursor_never_ahead_of_data(
    registry: Engine, service: social_insurance.SocialInsuranceApi
) -> int:
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
    stamp = datetime.fromisoformat(cursor["updated_at"])
    upto = sum(
        1
        for record in service.dossiers()
        if (datetime.fromisoformat(record["ngayCapNhat"]), record["id"]) <= (stamp, cursor["id"])
    )
    assert landed + held == upto, "registry and cursor disagree: data lost or cursor ahead"
    return upto


def test_sigkill_an_http_sync_at_many_points_then_rerun_equals_a_clean_run(
    server: Engine, api: dict[str, object]
) -> None:
    service = api["service"]
    assert isinstance(service, social_insurance.SocialInsuranceApi)
    killed_after = []
    for target in KILL_AT:
        registry_url = scratch(server, "reg")
        registry = store.open_registry(registry_url)
        migrate.upgrade(registry)
        try:
            process = start_sync(registry_url, str(api["sources"]))
            deadline = time.monotonic() + 60
            while process.poll() is None:
                with registry.connect() as conn:
                    done = conn.execute(
                        select(func.coalesce(func.max(sync_run.c.batches), 0))
                    ).scalar_one()
                if done >= target:
                    break
                assert time.monotonic() < deadline, "sync made no progress"
                time.sleep(0.005)
            process.send_signal(signal.SIGKILL)
            process.wait(30)
            killed_after.append(assert_cursor_never_ahead_of_data(registry, service))
            rerun = start_sync(registry_url, str(api["sources"]))
            _, stderr = rerun.communicate(timeout=120)
            assert rerun.returncode == 0, stderr.decode()[-2000:]
            with registry.connect() as conn:
                assert store.digest(conn) == api["digest"], f"kill after batch {target}"
            assert_cursor_never_ahead_of_data(registry, service)
        finally:
            registry.dispose()
            drop(server, registry_url)
    assert len(set(killed_after)) >= 15 and max(killed_after) < ROWS
