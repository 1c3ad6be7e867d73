"""The crash test of a SQL source (Tax on PostgreSQL), run once per sync path: test_crash.py
kills the columnar path, test_crash_rows.py the row path (two files, so the two run in
parallel).

SIGKILL a sync at 21 points; every rerun must leave the registry as a clean run. After each
kill, before the rerun, the saved cursor must not stand past data that did not land: every
source row at or before the cursor is in the registry or in quarantine, and nothing after it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, and_, create_engine, func, or_, select

from dossierhub import store
from models import migrate
from models.tables import sync_run
from simulators import tax
from tests.reliability.crash import (
    cursor_and_held,
    drop,
    kill_after,
    scratch,
    scratch_registry,
    sync_once,
)

ROWS, BATCH = 6000, 150  # 40 batches
KILL_AT = [1, 2, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31, 33, 35, 37, 38]
KEY = "crash-test-key-" + "c" * 32


@contextmanager
def tax_source(server: Engine, folder: Path, *, columnar: bool) -> Iterator[dict[str, Any]]:
    """A Tax source database, its sources file, and the digest of one clean run of it."""
    url = scratch(server, "src")
    tax.generate(url, rows=ROWS, seed=77, malformed_share=0.03)
    sources = folder / "sources.yaml"
    sources.write_text(
        f"sources:\n  tax:\n    connector: tax\n    batch_size: {BATCH}\n    lookback_seconds: 0\n"
        f"    settings: {{url: '{url}', columnar: {str(columnar).lower()}}}\n",
        encoding="utf-8",
    )
    clean = store.open_registry(f"sqlite:///{folder / 'clean.db'}")
    migrate.upgrade(clean)
    sync_once(clean, "tax", sources, KEY)
    with clean.connect() as conn:
        digest = store.digest(conn)
    clean.dispose()
    try:
        yield {"url": url, "sources": sources, "digest": digest}
    finally:
        drop(url)


def source_fixture(*, columnar: bool) -> Any:
    """The module's `source` fixture: a Tax source read through the columnar or the row path."""

    @pytest.fixture(scope="module")
    def source(
        server: Engine, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[dict[str, Any]]:
        with tax_source(server, tmp_path_factory.mktemp("crash"), columnar=columnar) as made:
            yield made

    return source


def rows_up_to_the_cursor(registry: Engine, source_url: str) -> int:
    """Source rows at or before the saved cursor; asserts they all landed, and nothing else."""
    cursor, landed = cursor_and_held(registry)
    if cursor is None:
        return 0
    t = tax.tb_hoso.c
    stamp, key = datetime.fromisoformat(cursor["updated_at"]), cursor["key"]
    upto = select(func.count()).where(
        or_(stamp > t.NGAY_CAP_NHAT, and_(stamp == t.NGAY_CAP_NHAT, key >= t.ID))
    )
    source = create_engine(source_url)
    with source.connect() as conn:
        expected = int(conn.execute(upto).scalar_one())
    source.dispose()
    assert landed == expected, "registry and cursor disagree: data lost or cursor ahead"
    return expected


def kill_at_many_points_then_rerun(server: Engine, source: dict[str, Any]) -> None:
    sources: Path = source["sources"]
    killed_after = []
    for target in KILL_AT:
        with scratch_registry(server, "reg") as (url, registry):
            kill_after("tax", target, registry_url=url, registry=registry, sources=sources, key=KEY)
            killed_after.append(rows_up_to_the_cursor(registry, source["url"]))

            sync_once(registry, "tax", sources, KEY)
            with registry.connect() as conn:
                assert store.digest(conn) == source["digest"], f"kill after batch {target}"
                statuses = conn.execute(select(sync_run.c.status).order_by(sync_run.c.id))
                assert statuses.scalars().all() == ["abandoned", "succeeded"]
            rows_up_to_the_cursor(registry, source["url"])
    # The kills really happened mid-run, spread over the batches.
    assert len(set(killed_after)) >= 15 and max(killed_after) < ROWS
