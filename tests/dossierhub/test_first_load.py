"""A first load skips what cannot find anything, and still ends as one clean run would."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event, text

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
