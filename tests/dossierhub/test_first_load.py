"""A first load skips what cannot find anything, and still ends as one clean run would."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, event, text

from connectors.base import RawRecord
from dossierhub import store
from dossierhub.sync import sync_source
from models import migrate
from models.tables import dossier, dossier_event
from tests.dossierhub.test_engine import connector, count, native


def _statements(engine: Engine) -> list[str]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", record)
    return seen


def _lookups(statements: list[str]) -> list[str]:
    """The stored-version lookups among the statements (store.batches._stored_versions)."""
    return [
        s
        for s in statements
        if s.startswith("SELECT dossier.source_id, dossier.status") and "FROM dossier" in s
    ]


def test_a_first_load_skips_the_stored_version_lookup(pg_url: str) -> None:
    registry = store.open_registry(pg_url)
    migrate.upgrade(registry)
    statements = _statements(registry)
    rows = [native(i) for i in range(25)]
    first = sync_source(registry, connector(rows))
    assert (first.inserted, first.batches) == (25, 3)
    assert _lookups(statements) == []

    statements.clear()  # the source now has dossiers: the next sync looks them up
    second = sync_source(registry, connector([*rows, native(3, status=9, version=3600)]))
    assert (second.inserted, second.updated) == (0, 1)
    assert len(_lookups(statements)) == 1
    registry.dispose()


def test_an_id_read_twice_in_a_first_load_ends_as_a_clean_run(registry: Engine) -> None:
    """A source row that changed while the first load read it comes again in a later batch:
    it is an update of the dossier the earlier batch inserted, not a second one."""
    changed = native(3, status=9, version=3600)  # sorts last: the second batch repeats id 3
    rows = [native(i) for i in range(15)] + [changed]
    result = sync_source(registry, connector(rows))
    assert (result.inserted, result.updated, result.batches) == (15, 1, 2)
    assert count(registry, dossier) == 15
    assert count(registry, dossier_event) == 16  # 15 new, one 4 -> 9
    with registry.connect() as conn:
        loaded = store.digest(conn, history=False)
        status = conn.execute(text("SELECT status FROM dossier WHERE source_id = '3'")).scalar()
    assert status == 9

    clean = [native(i) for i in range(15) if i != 3] + [changed]
    with registry.begin() as conn:
        conn.execute(dossier_event.delete())
        conn.execute(dossier.delete())
    sync_source(registry, connector(clean), full_refresh=True)
    with registry.connect() as conn:
        assert store.digest(conn, history=False) == loaded


def test_a_first_load_leaves_the_dossier_statistics_until_a_batch_looks_up(
    pg_url: str,
) -> None:
    """Sampling `dossier` is the costly part of ANALYZE, and a fresh load never looks a
    dossier up: its growth steps refresh only quarantine's statistics (the resolution
    UPDATE reads it), and `dossier`'s wait until a batch finds an id already stored."""
    registry = store.open_registry(pg_url)
    migrate.upgrade(registry)
    statements = _statements(registry)
    rows = [native(i) for i in range(1200)]
    changed = native(3, status=9, version=999_999)  # sorts last: the last batch looks up
    result = sync_source(registry, connector([*rows, changed], batch_size=200))
    assert (result.inserted, result.updated) == (1200, 1)
    analyzed = [s for s in statements if s.startswith("ANALYZE")]
    assert analyzed == ["ANALYZE quarantine", "ANALYZE dossier, quarantine"]

    statements.clear()  # not fresh from the start: each growth step samples both
    more = [native(i) for i in range(1200, 2400)]
    again = sync_source(registry, connector(more, batch_size=600), full_refresh=True)
    assert again.inserted == 1200
    assert [s for s in statements if s.startswith("ANALYZE")] == ["ANALYZE dossier, quarantine"]
    registry.dispose()


def test_analyze_leaves_the_events_table_to_autovacuum(pg_url: str) -> None:
    registry = store.open_registry(pg_url)
    migrate.upgrade(registry)
    sync_source(registry, connector([native(i) for i in range(5)] + [native(9, bad=True)]))
    store.analyze(registry)
    with registry.connect() as conn:
        analyzed = dict(
            conn.execute(
                text(
                    "SELECT relname, reltuples FROM pg_class WHERE relname IN"
                    " ('dossier', 'dossier_event', 'quarantine')"
                )
            ).all()
        )
    assert analyzed == {"dossier": 5, "dossier_event": -1, "quarantine": 1}
    registry.dispose()


def _checked_frame(records: list[Any]) -> Any:
    """Canonical records as the columnar path's checked frame (`models.frame.check`)."""
    import polars as pl

    from models import frame as rules

    rows = [{k: getattr(v, "value", v) for k, v in r.model_dump().items()} for r in records]
    checked = rules.check(pl.DataFrame(rows).with_columns(mapped_ok=pl.lit(True)))
    assert checked.get_column("ok").all()
    return checked


def test_a_frame_encoded_ahead_lands_as_written_at_its_stamp_or_falls_back_to_the_lookup(
    pg_url: str, tmp_path: Any
) -> None:
    """During a first load the sync encodes each columnar batch while the previous one is
    written (`store.encode_new_frame`). The writer sends it as is, stamped with the encoding
    time; a batch that repeats a stored id falls back to the lookup, with the same registry
    as the row path's writes."""
    pytest.importorskip("pgpq")
    made = connector([])
    first = [made.to_canonical(RawRecord(str(i), native(i))) for i in range(6)]
    again = [made.to_canonical(RawRecord("2", native(2, status=9, version=60)))]
    second = again + [made.to_canonical(RawRecord(str(i), native(i))) for i in range(6, 9)]
    registries = {}
    for kind, url in (("frame", pg_url), ("records", f"sqlite:///{tmp_path}/rows.db")):
        registry = store.open_registry(url)
        migrate.upgrade(registry)
        registries[kind] = registry
        counts = []
        for records in (first, second):
            context = store.BatchContext(source_system="memory", fresh=True)
            with registry.begin() as conn:
                if kind == "records":
                    counts.append(store.write_batch(conn, context=context, records=records))
                    continue
                frame = _checked_frame(records)
                encoded = store.encode_new_frame(registry, frame, run_id=None)
                assert encoded is not None
                counts.append(
                    store.write_frame_batch(conn, context=context, frame=frame, encoded=encoded)
                )
            if records is first and kind == "frame":
                with registry.connect() as conn:
                    stamps = set(conn.execute(text("SELECT first_seen_at FROM dossier")).scalars())
                assert stamps == {encoded.stamp}
        assert [(c.inserted, c.updated) for c in counts] == [(6, 0), (3, 1)]
    with registries["frame"].connect() as a, registries["records"].connect() as b:
        assert store.digest(a) == store.digest(b)
    for registry in registries.values():
        registry.dispose()
