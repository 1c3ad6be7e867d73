"""The columnar sync path leaves the registry the row path leaves, full and incremental.

Tax and Land sources on PostgreSQL, synced through each path into its own PostgreSQL
registry: the same dossiers and status history (`store.digest`), the same quarantine (keys,
reasons, payloads, resolved flags), the same cursor and run counters.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, create_engine, select, text

from connectors.base import ConnectorContext
from connectors.identifiers import IdentifierHasher
from connectors.land import LandConnector
from connectors.sql import SqlConnector
from connectors.tax import TaxConnector
from dossierhub import store
from dossierhub.sync import sync_source
from models import migrate
from models.tables import quarantine, sync_run, sync_state
from simulators import land, tax

HASHER = IdentifierHasher(SecretStr("columnar-sync-key-" + "c" * 32))


def connector(
    kind: type[SqlConnector], url: str, *, columnar: bool, partition: str = ""
) -> SqlConnector:
    source = "tax" if kind is TaxConnector else "land"
    made = kind(
        ConnectorContext(
            source=source,
            settings={"url": url, "columnar": columnar},
            hasher=HASHER,
            batch_size=150,
            lookback=timedelta(minutes=5),
            partition=partition,
        )
    )
    if columnar:

        def row_read(cursor: Any) -> Any:
            raise AssertionError("the columnar sync read row by row")

        made.read = row_read  # type: ignore[method-assign]
    return made


def state(registry: Engine) -> tuple[Any, ...]:
    with registry.connect() as conn:
        digest = store.digest(conn)
        q = quarantine.c
        held = conn.execute(
            select(
                q.source_system, q.source_id, q.reasons, q.payload, q.resolved, q.seen_count
            ).order_by(q.source_system, q.source_id)
        ).all()
        cursors = conn.execute(
            select(sync_state.c.partition, sync_state.c.cursor).order_by(sync_state.c.partition)
        ).all()
        r = sync_run.c
        runs = conn.execute(
            select(
                r.rows_read, r.inserted, r.updated, r.unchanged, r.quarantined, r.batches
            ).order_by(r.id)
        ).all()
    return digest, [tuple(row) for row in held], [tuple(c) for c in cursors], runs


def registry(make: Callable[[], str]) -> Engine:
    engine = store.open_registry(make())
    migrate.upgrade(engine)
    return engine


SIMULATED = {
    TaxConnector: (tax, lambda url: tax.touch(url, share=0.03, seed=3)),
    LandConnector: (land, lambda url: land.advance(url, share=0.03, seed=3, steps=2)),
}


@pytest.mark.parametrize("kind", [TaxConnector, LandConnector], ids=["tax", "land"])
def test_columnar_and_row_syncs_leave_the_same_registry(
    kind: type[SqlConnector], databases: Callable[[], str]
) -> None:
    simulator, change = SIMULATED[kind]
    source = databases()
    ties = {"shared_updated_at": 40} if simulator is tax else {}  # pages cross equal times
    truth = simulator.generate(source, rows=900, seed=4, malformed_share=0.06, **ties)
    by_rows, by_columns = registry(databases), registry(databases)
    for columnar, engine in ((False, by_rows), (True, by_columns)):
        result = sync_source(engine, connector(kind, source, columnar=columnar))
        assert (result.inserted, result.quarantined) == (truth.valid, truth.malformed)
    before = state(by_columns)
    assert before == state(by_rows)

    # Incremental: some dossiers move on, some malformed rows are repaired at the source.
    change(source)
    simulator.repair(source, ids=truth.malformed_ids[:5])
    for columnar, engine in ((False, by_rows), (True, by_columns)):
        result = sync_source(engine, connector(kind, source, columnar=columnar))
        assert result.updated > 0
    after = state(by_columns)
    assert after == state(by_rows)
    assert after[0] != before[0] and after[1] != before[1]  # dossiers and quarantine moved


@pytest.mark.parametrize("kind", [TaxConnector, LandConnector], ids=["tax", "land"])
def test_columnar_partitions_read_the_same_slices(
    kind: type[SqlConnector], databases: Callable[[], str]
) -> None:
    simulator, _ = SIMULATED[kind]
    source = databases()
    simulator.generate(source, rows=500, seed=6, malformed_share=0.05)
    by_rows, by_columns = registry(databases), registry(databases)
    for columnar, engine in ((False, by_rows), (True, by_columns)):
        for part in ("0/2", "1/2"):
            sync_source(engine, connector(kind, source, columnar=columnar, partition=part))
    assert state(by_columns) == state(by_rows)


def test_the_columnar_setting_switches_the_path_off(databases: Callable[[], str]) -> None:
    source = databases()
    tax.generate(source, rows=20, seed=1)
    assert connector(TaxConnector, source, columnar=False).read_arrow(None) is None
    assert connector(TaxConnector, source, columnar=True).read_arrow(None) is not None


def test_a_subclass_changing_the_row_mapping_reads_row_by_row(databases: Callable[[], str]) -> None:
    """A mapping fix in a subclass must not be bypassed by the frame mapping it inherits."""
    source = databases()
    tax.generate(source, rows=20, seed=1)

    class Fixed(TaxConnector):
        def to_canonical(self, raw: Any) -> Any:
            return super().to_canonical(raw)

    made = Fixed(connector(TaxConnector, source, columnar=True).context)
    assert made.read_arrow(None) is None


def test_a_subclass_adjusting_the_mapped_fields_reads_row_by_row(
    databases: Callable[[], str],
) -> None:
    """A special case added through `adjust` is a mapping fix too: not bypassed either."""
    source = databases()
    tax.generate(source, rows=20, seed=1)

    class Adjusted(TaxConnector):
        def adjust(self, fields: dict[str, Any], raw: Any) -> None:
            super().adjust(fields, raw)

    made = Adjusted(connector(TaxConnector, source, columnar=True).context)
    assert made.read_arrow(None) is None


def test_columnar_rows_are_written_without_record_objects(
    databases: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checked rows go to the registry from Arrow: the frame-to-records conversion the
    path used before is never called on PostgreSQL, and the registry is still the row path's."""
    from models import frame

    source = databases()
    truth = tax.generate(source, rows=600, seed=8, malformed_share=0.05, shared_updated_at=30)
    by_rows, by_columns = registry(databases), registry(databases)
    sync_source(by_rows, connector(TaxConnector, source, columnar=False))

    def no_records(checked: Any) -> Any:
        raise AssertionError("the columnar path built a DossierRecord per checked row")

    monkeypatch.setattr(frame, "records", no_records)
    result = sync_source(by_columns, connector(TaxConnector, source, columnar=True))
    assert (result.inserted, result.quarantined) == (truth.valid, truth.malformed)
    assert state(by_columns) == state(by_rows)
    tax.touch(source, share=0.05, seed=9)
    for columnar, engine in ((False, by_rows), (True, by_columns)):
        assert sync_source(engine, connector(TaxConnector, source, columnar=columnar)).updated
    assert state(by_columns) == state(by_rows)


def test_columnar_full_refresh_applies_the_current_state_as_the_row_path(
    databases: Callable[[], str],
) -> None:
    """A full refresh (the source's current state wins, `overwrite`) through the staged
    upsert leaves what the row path leaves, also for a dossier dated backwards."""
    source = databases()
    tax.generate(source, rows=400, seed=10, malformed_share=0.05)
    by_rows, by_columns = registry(databases), registry(databases)
    for columnar, engine in ((False, by_rows), (True, by_columns)):
        sync_source(engine, connector(TaxConnector, source, columnar=columnar))
    tax.touch(source, share=0.05, seed=12)
    with create_engine(source).begin() as conn:  # one row's change dated a day back
        conn.execute(
            text(
                'UPDATE tb_hoso SET "NGAY_CAP_NHAT" = "NGAY_CAP_NHAT" - interval \'1 day\','
                ' "TRANG_THAI" = 3 - "TRANG_THAI"'
                ' WHERE "ID" = (SELECT min("ID") FROM tb_hoso WHERE "TRANG_THAI" IN (1, 2))'
            )
        )
    for columnar, engine in ((False, by_rows), (True, by_columns)):
        made = connector(TaxConnector, source, columnar=columnar)
        assert sync_source(engine, made, full_refresh=True).updated
    assert state(by_columns) == state(by_rows)


def test_columnar_sync_into_a_sqlite_registry_leaves_the_row_paths_registry(
    databases: Callable[[], str], tmp_path: Any
) -> None:
    """A PostgreSQL source read as Arrow into an embedded (SQLite) registry: the checked rows
    become records there, and the registry is the row path's."""
    source = databases()
    tax.generate(source, rows=300, seed=14, malformed_share=0.05)
    engines = []
    for columnar in (False, True):
        engine = store.open_registry(f"sqlite:///{tmp_path}/registry_{columnar}.db")
        migrate.upgrade(engine)
        sync_source(engine, connector(TaxConnector, source, columnar=columnar))
        engines.append(engine)
    assert state(engines[1]) == state(engines[0])


def test_columnar_sync_without_the_arrow_encoder_writes_records_and_says_so(
    databases: Callable[[], str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """pgpq missing (an install without the columnar extra's encoder): the checked rows are
    written as records, the registry is the same, and the log names the fix."""
    import sys

    from dossierhub.store import frames as store_frames

    source = databases()
    tax.generate(source, rows=200, seed=16, malformed_share=0.05)
    by_rows, by_columns = registry(databases), registry(databases)
    sync_source(by_rows, connector(TaxConnector, source, columnar=False))
    monkeypatch.setitem(sys.modules, "pgpq", None)  # import pgpq raises ImportError
    store_frames._arrow_copy_available.cache_clear()
    try:
        sync_source(by_columns, connector(TaxConnector, source, columnar=True))
    finally:
        store_frames._arrow_copy_available.cache_clear()
    assert state(by_columns) == state(by_rows)
    assert "pip install 'dossierhub[columnar]'" in caplog.text
