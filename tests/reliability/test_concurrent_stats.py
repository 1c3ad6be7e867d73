"""Statistics kept while five sources sync at once into PostgreSQL equal statistics built once.

Each source syncs twice (new dossiers, then a change to a third of them: a new status, and
for some the national code that links them to another source's dossier, so they leave their
old case), in small batches, all five at once, while the statistics refresh runs in a loop.
Batches of different sources commit in whatever order the machine gives them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select

from connectors.base import Batch, Connector, Cursor, Health, Period, RawRecord
from connectors.testing import context_for
from dossierhub import stats, store
from dossierhub.sync import sync_source
from models import migrate
from models.dossier import DossierRecord
from models.tables import dossier
from tests.dossierhub.test_stats import rebuilt, snapshot

SOURCES = ("one_stop", "tax", "social_insurance", "finance", "land")
ROWS = 1000
BASE = datetime(2026, 4, 1, 1, tzinfo=UTC)


def native(source: str, i: int, version: int) -> dict[str, Any]:
    """Version 1 changes a third of the rows; half of those learn a national code shared
    with the same row of every other source (one case across systems)."""
    changed = version and i % 3 == 0
    return {
        "id": i,
        "code": f"000.00.{SOURCES.index(source):02d}.H56-260401-{i:04d}",
        "national": f"000.00.99.H56-260401-{i:04d}" if changed and i % 2 == 0 else None,
        "status": 9 if changed else 4,
        "received": BASE + timedelta(hours=i % 240, minutes=SOURCES.index(source)),
        "finished": BASE + timedelta(days=12, hours=i % 50) if changed else None,
        "updated": BASE + timedelta(days=20 + version, seconds=i),
    }


class MemoryConnector(Connector):
    """A source of one version of its rows, read in (updated, id) order."""

    class Settings(BaseModel):
        pass

    def __init__(self, source: str, version: int) -> None:
        super().__init__(context_for(source, {}, batch_size=20))
        self.rows = [native(source, i, version) for i in range(ROWS)]

    def check(self) -> Health:
        return Health(True, "in memory")

    def read(self, cursor: Cursor | None) -> Iterator[Batch]:
        rows = [
            r
            for r in self.rows
            if cursor is None or (r["updated"].isoformat(), r["id"]) > (cursor["u"], cursor["k"])
        ]
        size = self.context.batch_size
        for start in range(0, len(rows), size):
            page = rows[start : start + size]
            last = page[-1]
            yield Batch(
                [RawRecord(str(r["id"]), r) for r in page],
                {"u": last["updated"].isoformat(), "k": last["id"]},
            )

    def count(self, period: Period | None) -> int:
        return len(self.rows)

    def to_canonical(self, raw: RawRecord) -> DossierRecord:
        p = raw.payload
        fields = {
            "source_system": self.source,
            "source_id": str(p["id"]),
            "dossier_code": p["code"],
            "national_dossier_code": p["national"],
            "procedure_code": "1.000123",
            "agency_code": "000.00.06.H56",
            "channel": "online" if p["id"] % 2 else "in_person",
            "status": p["status"],
            "received_at": p["received"],
            "finished_at": p["finished"],
            "source_updated_at": p["updated"],
        }
        return self.build(fields, [])


def test_five_sources_syncing_while_the_refresh_loops_give_the_statistics_of_one_build(
    pg_url: str,
) -> None:
    registry = store.open_registry(pg_url)
    migrate.upgrade(registry)
    failures: list[BaseException] = []
    syncing = threading.Event()
    syncing.set()
    refreshes = 0

    def sync_twice(source: str) -> None:
        try:
            for version in (0, 1):
                sync_source(registry, MemoryConnector(source, version))
        except BaseException as exc:
            failures.append(exc)

    def refresh_in_a_loop() -> None:
        nonlocal refreshes
        try:
            while syncing.is_set():
                stats.refresh(registry)
                refreshes += 1
        except BaseException as exc:
            failures.append(exc)

    try:
        refresher = threading.Thread(target=refresh_in_a_loop)
        refresher.start()
        syncs = [threading.Thread(target=sync_twice, args=(s,)) for s in SOURCES]
        for thread in syncs:
            thread.start()
        for thread in syncs:
            thread.join()
        syncing.clear()
        refresher.join()
        assert failures == []
        assert refreshes >= 2  # the refresh did run while the sources synced
        with registry.connect() as conn:
            assert conn.execute(select(func.count()).select_from(dossier)).scalar_one() == 5000
        stats.refresh(registry)
        kept = snapshot(registry)
        assert len(kept["dossier_case"]) == 5000 - 4 * 167  # 167 rows linked across 5 sources
        assert kept == rebuilt(registry)
    finally:
        registry.dispose()
