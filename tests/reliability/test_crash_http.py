"""SIGKILL a sync of an HTTP source (Social Insurance, OAuth2, cursor pages) at 20 points.

The API runs in this process on 127.0.0.1; each sync runs as a `dossierhub sync` process that
is killed after a chosen number of committed batches, then run again to the end. After each
kill the cursor must not stand past data that did not land, and after each rerun the registry
must equal one clean run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from dossierhub import store
from models import migrate
from models.tables import sync_run
from simulators import social_insurance
from tests.reliability.crash import cursor_and_held, kill_after, scratch_registry, sync_once

ROWS, BATCH = 3000, 100  # 30 batches
KILL_AT = [1, 2, 3, 4, 5, 7, 8, 10, 11, 13, 14, 16, 17, 19, 20, 22, 23, 25, 27, 28]
KEY = "crash-http-key-" + "h" * 32
SOURCE = "social_insurance"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with social_insurance.SocialInsuranceApi(rows=ROWS, seed=91, malformed_share=0.03) as service:
        folder = tmp_path_factory.mktemp("crash-http")
        settings = {
            "base_url": service.url,
            "client_id": social_insurance.DEMO_CLIENT_ID,
            "client_secret": social_insurance.DEMO_CLIENT_SECRET,
        }
        sources = folder / "sources.yaml"
        sources.write_text(
            f"sources:\n  {SOURCE}:\n    connector: {SOURCE}\n"
            f"    batch_size: {BATCH}\n    lookback_seconds: 0\n    settings: {json.dumps(settings)}\n",
            encoding="utf-8",
        )
        clean = store.open_registry(f"sqlite:///{folder / 'clean.db'}")
        migrate.upgrade(clean)
        sync_once(clean, SOURCE, sources, KEY)
        with clean.connect() as conn:
            digest = store.digest(conn)
        clean.dispose()
        yield {"service": service, "sources": sources, "digest": digest}


def records_up_to_the_cursor(registry: Engine, service: social_insurance.SocialInsuranceApi) -> int:
    """Served records at or before the saved cursor; asserts they all landed, and nothing else."""
    cursor, landed = cursor_and_held(registry)
    if cursor is None:
        return 0
    at = (datetime.fromisoformat(cursor["updated_at"]), cursor["id"])
    expected = sum(
        1
        for record in service.dossiers()
        if (datetime.fromisoformat(record["ngayCapNhat"]), record["id"]) <= at
    )
    assert landed == expected, "registry and cursor disagree: data lost or cursor ahead"
    return expected


@pytest.mark.slow
def test_sigkill_an_http_sync_at_many_points_then_rerun_equals_a_clean_run(
    server: Engine, api: dict[str, Any]
) -> None:
    service, sources = api["service"], api["sources"]
    assert isinstance(service, social_insurance.SocialInsuranceApi)
    assert isinstance(sources, Path)
    killed_after = []
    for target in KILL_AT:
        with scratch_registry(server, "reg") as (url, registry):
            kill_after(
                SOURCE, target, registry_url=url, registry=registry, sources=sources, key=KEY
            )
            killed_after.append(records_up_to_the_cursor(registry, service))

            sync_once(registry, SOURCE, sources, KEY)
            with registry.connect() as conn:
                assert store.digest(conn) == api["digest"], f"kill after batch {target}"
                statuses = conn.execute(select(sync_run.c.status).order_by(sync_run.c.id))
                assert statuses.scalars().all() == ["abandoned", "succeeded"]
            records_up_to_the_cursor(registry, service)
    assert len(set(killed_after)) >= 15 and max(killed_after) < ROWS
