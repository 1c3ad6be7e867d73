"""Engine behaviour with an in-memory connector, on SQLite and PostgreSQL registries."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr
from sqlalchemy import Engine, create_engine, func, select, text

from connectors.base import Batch, Connector, ConnectorContext, Cursor, Health, Period, RawRecord
from connectors.identifiers import IdentifierHasher
from dossierhub import store
from dossierhub.errors import Reason, SyncLockedError, SyncLockLostError
from dossierhub.sync import retry_quarantine, sync_source
from models import migrate
from models.dossier import DossierRecord
from models.tables import dossier, dossier_event, quarantine, sync_lock, sync_run, sync_state

BASE = datetime(2026, 3, 1, 8, 0)


def native(i: int, *, status: int = 4, version: int = 0, bad: bool = False) -> dict[str, Any]:
    return {
        "id": str(i),
        "code": f"000.00.06.H56-260301-{i:04d}",
        "status": status,
        "received": (BASE + timedelta(minutes=i)).isoformat(),
        "updated": (BASE + timedelta(days=1, minutes=i, seconds=version)).isoformat(),
        "channel": 99 if bad else 2,
    }


class ListConnector(Connector):
    """Serves a list of native dicts in (updated, id) order, in pages of batch_size."""

    class Settings(BaseModel):
        pass

    def __init__(self, context: ConnectorContext, rows: list[dict[str, Any]]) -> None:
        super().__init__(context)
        self.rows = rows
        self.gate: threading.Event | None = None
        self.entered = threading.Event()

    def check(self) -> Health:
        return Health(True, "in memory")

    def read(self, cursor: Cursor | None) -> Iterator[Batch]:
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(10)
        ordered = sorted(self.rows, key=lambda r: (r["updated"], int(r["id"])))
        if cursor is not None:
            ordered = [
                r for r in ordered if (r["updated"], int(r["id"])) > (cursor["u"], cursor["k"])
            ]
        size = self.context.batch_size
        for start in range(0, len(ordered), size):
            page = ordered[start : start + size]
            yield Batch(
                [RawRecord(r["id"], dict(r)) for r in page],
                {"u": page[-1]["updated"], "k": int(page[-1]["id"])},
            )

    def to_canonical(self, raw: RawRecord) -> DossierRecord:
        p = raw.payload
        problems = []
        fields = {
            "source_system": self.source,
            "source_id": p["id"],
            "dossier_code": p["code"],
            "procedure_code": "1.000123",
            "agency_code": "000.00.06.H56",
            "status": p["status"],
            "received_at": p["received"],
            "source_updated_at": p["updated"],
        }
        if p["channel"] in (1, 2, 3):
            fields["channel"] = {1: "in_person", 2: "online", 3: "postal"}[p["channel"]]
        else:
            problems.append(Reason("channel", "unknown_code", f"channel {p['channel']} is unknown"))
        return self.build(fields, problems)

    def count(self, period: Period | None) -> int:
        return len(self.rows)


def connector(rows: list[dict[str, Any]], batch_size: int = 10) -> ListConnector:
    context = ConnectorContext(
        source="memory",
        settings={},
        hasher=IdentifierHasher(SecretStr("k" * 40)),
        batch_size=batch_size,
    )
    return ListConnector(context, rows)


def count(engine: Engine, table: Any, *where: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def test_new_records_land_with_one_event_each_and_counts_add_up(registry: Engine) -> None:
    rows = [native(i) for i in range(25)] + [native(100, bad=True)]
    result = sync_source(registry, connector(rows))
    assert (result.rows_read, result.inserted, result.quarantined) == (26, 25, 1)
    assert count(registry, dossier) == 25
    assert count(registry, dossier_event, dossier_event.c.status_from.is_(None)) == 25
    with registry.connect() as conn:
        run = conn.execute(select(sync_run).where(sync_run.c.id == result.run_id)).one()
        reason = conn.execute(select(quarantine.c.reason)).scalar_one()
    assert (run.status, run.rows_read, run.inserted, run.quarantined, run.batches) == (
        "succeeded",
        26,
        25,
        1,
        3,
    )
    assert reason == "channel:unknown_code"


def test_older_source_version_never_overwrites_newer(registry: Engine) -> None:
    newer = native(1, status=9, version=30)
    sync_source(registry, connector([newer]))
    older = native(1, status=4, version=0)
    result = sync_source(registry, connector([older]), full_refresh=True)
    assert (result.inserted, result.updated, result.unchanged) == (0, 0, 1)
    with registry.connect() as conn:
        assert conn.execute(select(dossier.c.status)).scalar_one() == 9
    assert count(registry, dossier_event) == 1


def test_newer_version_updates_and_records_status_change(registry: Engine) -> None:
    sync_source(registry, connector([native(1, status=4)]))
    result = sync_source(registry, connector([native(1, status=9, version=5)]), full_refresh=True)
    assert (result.inserted, result.updated) == (0, 1)
    with registry.connect() as conn:
        history = conn.execute(
            select(dossier_event.c.status_from, dossier_event.c.status_to).order_by(
                dossier_event.c.id
            )
        ).all()
    assert [tuple(h) for h in history] == [(None, 4), (4, 9)]


def test_newer_version_with_same_status_adds_no_event(registry: Engine) -> None:
    sync_source(registry, connector([native(1, status=4)]))
    result = sync_source(registry, connector([native(1, status=4, version=5)]), full_refresh=True)
    assert result.updated == 1
    assert count(registry, dossier_event) == 1


def test_duplicate_id_within_one_page_keeps_newest(registry: Engine) -> None:
    rows = [native(1, status=4), native(1, status=9, version=5)]
    result = sync_source(registry, connector(rows))
    assert result.inserted == 1
    with registry.connect() as conn:
        assert conn.execute(select(dossier.c.status)).scalar_one() == 9


@pytest.mark.parametrize(
    "bad_first", [True, False], ids=["malformed-then-valid", "valid-then-malformed"]
)
def test_an_id_repeated_in_one_page_ends_as_its_last_delivery_only(
    registry: Engine, bad_first: bool
) -> None:
    rows = [native(1, bad=bad_first), native(1, status=9, version=5, bad=not bad_first)]
    result = sync_source(registry, connector(rows))
    assert (result.inserted, result.quarantined) == ((1, 0) if bad_first else (0, 1))
    assert count(registry, dossier) == (1 if bad_first else 0)
    assert count(registry, quarantine, quarantine.c.resolved.is_(False)) == (0 if bad_first else 1)


def test_nan_and_infinity_in_a_quarantined_payload_are_kept_as_text(registry: Engine) -> None:
    row = native(1, bad=True) | {"fee": float("nan"), "docs": float("-inf")}
    sync_source(registry, connector([row]))
    with registry.connect() as conn:
        payload = conn.execute(select(quarantine.c.payload)).scalar_one()
    assert (payload["fee"], payload["docs"]) == ("nan", "-inf")


def test_crash_between_batches_then_rerun_equals_clean_run(registry: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    rows = [native(i, status=(4 if i % 3 else 9)) for i in range(95)] + [native(500, bad=True)]
    clean = store.open_registry(f"sqlite:///{tmp_path / 'clean.db'}")
    from models import migrate

    migrate.upgrade(clean)
    sync_source(clean, connector(rows))

    class Crashing(ListConnector):
        def read(self, cursor: Cursor | None) -> Iterator[Batch]:
            for number, batch in enumerate(super().read(cursor)):
                if number == 4:
                    raise RuntimeError("injected crash between batches")
                yield batch

    crashing = Crashing(connector(rows).context, rows)
    with pytest.raises(RuntimeError, match="injected"):
        sync_source(registry, crashing)
    assert count(registry, dossier) == 40  # four committed batches of ten
    with registry.connect() as conn:
        assert conn.execute(select(sync_state.c.cursor)).scalar_one() == {
            "u": rows[39]["updated"],
            "k": 39,
        }
        failed = conn.execute(select(sync_run.c.status, sync_run.c.error)).one()
    assert failed.status == "failed" and "injected crash" in failed.error
    sync_source(registry, connector(rows))
    with registry.connect() as conn, clean.connect() as reference:
        assert store.digest(conn) == store.digest(reference)
    assert count(registry, quarantine) == 1


def test_second_concurrent_sync_of_same_source_is_refused(registry: Engine) -> None:
    first = connector([native(1)])
    first.gate = threading.Event()
    outcome: list[Any] = []
    worker = threading.Thread(target=lambda: outcome.append(sync_source(registry, first)))
    worker.start()
    try:
        assert first.entered.wait(10)
        with pytest.raises(
            SyncLockedError, match=r"source 'memory' is already being synced \(run \d+"
        ):
            sync_source(registry, connector([native(2)]))
    finally:
        first.gate.set()
        worker.join(10)
    assert outcome and outcome[0].inserted == 1
    # The lock is released: a later sync goes ahead.
    assert sync_source(registry, connector([native(2)])).inserted == 1


def test_a_batch_refuses_to_commit_once_another_holder_took_the_lock_over(
    registry: Engine,
) -> None:
    """Fencing on both dialects: a sync whose lock row now carries another holder's token
    (its lock was taken over) cannot commit a batch."""
    with store.sync_lock_held(registry, source_system="memory") as lock:
        with registry.begin() as conn:
            store.prove_lock(conn, lock)  # still ours
            conn.execute(sync_lock.update().values(token=lock.token + 1))  # taken over
        with (
            pytest.raises(SyncLockLostError, match=r"source 'memory': this sync lost its lock"),
            registry.begin() as conn,
        ):
            store.prove_lock(conn, lock)


def test_a_sync_whose_lock_session_is_terminated_stops_failed_and_a_rerun_equals_a_clean_run(
    pg_url: str, tmp_path: Any
) -> None:
    """The PostgreSQL advisory lock lives on an idle session; when that session is terminated
    (pg_terminate_backend, idle_session_timeout) the lock is gone and a second sync of the
    source can start beside the first. The first must stop, failed, without committing
    another batch."""
    registry = store.open_registry(pg_url)
    migrate.upgrade(registry)
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    rows = [native(i) for i in range(100)]
    beside: list[Any] = []

    def advisory_holders() -> list[int]:
        with admin.connect() as conn:
            query = (  # this test's database only: other tests hold advisory locks too
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND database ="
                " (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
            return list(conn.execute(text(query)).scalars())

    def after_batch(result: Any) -> None:
        if result.batches != 2 or beside:
            return
        [pid] = advisory_holders()
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        for _ in range(500):  # the server releases the lock as the backend exits
            if not advisory_holders():
                break
            time.sleep(0.01)
        beside.append(sync_source(registry, connector(rows)))

    try:
        with pytest.raises(SyncLockLostError, match="run the sync again"):
            sync_source(registry, connector(rows), progress=after_batch)
        assert [r.status for r in beside] == ["succeeded"]
        with registry.connect() as conn:
            runs = dict(conn.execute(select(sync_run.c.id, sync_run.c.status)).all())
            events = conn.execute(
                select(dossier_event.c.source_id, dossier_event.c.status_to)
            ).all()
        assert sorted(runs.values()) == ["failed", "succeeded"]
        assert len(events) == len(set(events)) == 100  # no event written twice
        assert sync_source(registry, connector(rows)).status == "succeeded"
        clean = store.open_registry(f"sqlite:///{tmp_path / 'clean.db'}")
        migrate.upgrade(clean)
        sync_source(clean, connector(rows))
        with registry.connect() as synced, clean.connect() as once:
            assert store.digest(synced) == store.digest(once)
        clean.dispose()
    finally:
        registry.dispose()
        admin.dispose()


def test_quarantine_retry_loads_records_a_fixed_mapping_accepts(registry: Engine) -> None:
    rows = [native(1, bad=True), native(2, bad=True)]
    sync_source(registry, connector(rows))
    assert count(registry, quarantine, quarantine.c.resolved.is_(False)) == 2

    class Fixed(ListConnector):
        def to_canonical(self, raw: RawRecord) -> DossierRecord:
            return super().to_canonical(RawRecord(raw.source_id, {**raw.payload, "channel": 2}))

    result = retry_quarantine(registry, Fixed(connector(rows).context, rows))
    assert (result.loaded, result.still_rejected) == (2, 0)
    assert count(registry, quarantine, quarantine.c.resolved.is_(False)) == 0
    assert count(registry, dossier) == 2


def test_mapping_bug_quarantines_the_record_instead_of_stopping(registry: Engine) -> None:
    rows = [native(1), {**native(2), "code": None}]

    class Buggy(ListConnector):
        def to_canonical(self, raw: RawRecord) -> DossierRecord:
            raw.payload["code"].upper()  # AttributeError on None: a bug, not a data defect
            return super().to_canonical(raw)

    result = sync_source(registry, Buggy(connector(rows).context, rows))
    assert (result.inserted, result.quarantined) == (1, 1)
    with registry.connect() as conn:
        assert conn.execute(select(quarantine.c.reason)).scalar_one() == "record:mapping_error"


def test_times_are_stored_in_utc_from_local_source_times(registry: Engine) -> None:
    sync_source(registry, connector([native(0)]))
    with registry.connect() as conn:
        received = conn.execute(select(dossier.c.received_at)).scalar_one()
    assert received == datetime(2026, 3, 1, 1, 0, tzinfo=UTC)  # 08:00 in Hanoi
