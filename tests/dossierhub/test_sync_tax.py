"""Syncing the Tax reference system: every source database kind into every registry kind."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, String, cast, func, select

from connectors.base import Batch, ConnectorContext, Cursor, RawRecord
from connectors.identifiers import IdentifierHasher
from connectors.tax import TaxConnector
from dossierhub import store
from dossierhub.sync import retry_quarantine, sync_source
from models import migrate
from models.dossier import DossierRecord
from models.tables import dossier, dossier_event, quarantine, sync_state
from simulators import tax

KEY = SecretStr("sync-test-key-" + "q" * 32)


def tax_connector(url: str, batch_size: int = 250) -> TaxConnector:
    return TaxConnector(
        ConnectorContext(
            source="tax",
            settings={"url": url},
            hasher=IdentifierHasher(KEY),
            batch_size=batch_size,
            lookback=timedelta(minutes=5),
        )
    )


def scalar(engine: Engine, query: object) -> object:
    with engine.connect() as conn:
        return conn.execute(query).scalar_one()  # type: ignore[call-overload]


def unresolved(engine: Engine) -> int:
    query = select(func.count()).select_from(quarantine).where(quarantine.c.resolved.is_(False))
    return int(scalar(engine, query))  # type: ignore[arg-type]


def registered(engine: Engine) -> int:
    return int(scalar(engine, select(func.count()).select_from(dossier)))  # type: ignore[arg-type]


def test_full_sync_lands_every_valid_row_and_quarantines_every_malformed_one(
    source_url: str, registry: Engine
) -> None:
    truth = tax.generate(source_url, rows=1500, seed=5, malformed_share=0.08)
    result = sync_source(registry, tax_connector(source_url))
    assert (result.rows_read, result.inserted, result.quarantined) == (
        truth.rows,
        truth.valid,
        truth.malformed,
    )
    assert registered(registry) == truth.valid
    assert unresolved(registry) == truth.malformed
    assert registered(registry) + unresolved(registry) == truth.rows
    with registry.connect() as conn:
        quarantined_ids = {int(i) for i in conn.execute(select(quarantine.c.source_id)).scalars()}
        reasons = conn.execute(select(quarantine.c.reason)).scalars().all()
    assert quarantined_ids == set(truth.malformed_ids)
    # Specific reasons, never a catch-all.
    assert all(":" in r and not r.startswith("record:") for r in reasons)
    assert len(set(reasons)) >= len(truth.defects) - 1


def test_second_sync_changes_nothing_and_a_1_percent_change_applies_exactly_those(
    registry: Engine, pg_url: str
) -> None:
    truth = tax.generate(pg_url, rows=2000, seed=9, malformed_share=0.02)
    sync_source(registry, tax_connector(pg_url))
    with registry.connect() as conn:
        before = store.digest(conn)
        events_before = conn.execute(select(func.count()).select_from(dossier_event)).scalar_one()

    again = sync_source(registry, tax_connector(pg_url))
    assert (again.inserted, again.updated, again.quarantined) == (0, 0, 0)
    with registry.connect() as conn:
        assert store.digest(conn) == before

    touched = tax.touch(pg_url, share=0.01, seed=4)
    assert len(touched) == round(truth.valid * 0.01)
    changed = sync_source(registry, tax_connector(pg_url))
    assert (changed.inserted, changed.updated) == (0, len(touched))
    with registry.connect() as conn:
        new_events = conn.execute(
            select(
                dossier_event.c.source_id, dossier_event.c.status_from, dossier_event.c.status_to
            )
            .order_by(dossier_event.c.id)
            .offset(events_before)
        ).all()
        statuses = dict(
            conn.execute(
                select(dossier.c.source_id, dossier.c.status).where(
                    dossier.c.source_id.in_([str(i) for i in touched])
                )
            ).all()
        )
    assert sorted(int(e.source_id) for e in new_events) == sorted(touched)
    assert all(e.status_from is not None and e.status_from != e.status_to for e in new_events)
    assert {e.source_id: e.status_to for e in new_events} == statuses


def test_rows_sharing_one_update_time_across_batches_are_neither_lost_nor_doubled(
    source_url: str, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    registry = store.open_registry(f"sqlite:///{tmp_path / 'reg.db'}")
    migrate.upgrade(registry)
    truth = tax.generate(source_url, rows=900, seed=2, shared_updated_at=450)
    result = sync_source(registry, tax_connector(source_url, batch_size=100))
    assert result.rows_read == truth.rows and result.inserted == truth.valid
    assert registered(registry) == truth.rows
    again = sync_source(registry, tax_connector(source_url, batch_size=100))
    assert again.inserted == 0 and registered(registry) == truth.rows


class CrashAfter(TaxConnector):
    """Fails between two batches, as a lost connection or a killed worker would."""

    crash_at = 3

    def read(self, cursor: Cursor | None) -> Iterator[Batch]:
        for number, batch in enumerate(super().read(cursor)):
            if number == self.crash_at:
                raise ConnectionError("injected: source connection lost")
            yield batch


def test_crash_between_batches_then_rerun_equals_one_clean_run(pg_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    tax.generate(pg_url, rows=1200, seed=13, malformed_share=0.05)
    clean = store.open_registry(f"sqlite:///{tmp_path / 'clean.db'}")
    migrate.upgrade(clean)
    sync_source(clean, tax_connector(pg_url))

    crashed = store.open_registry(pg_url)  # the registry beside the source, on PostgreSQL
    migrate.upgrade(crashed)
    with pytest.raises(ConnectionError, match="injected"):
        sync_source(crashed, CrashAfter(tax_connector(pg_url).context))
    assert registered(crashed) + unresolved(crashed) == 3 * 250
    with crashed.connect() as conn:
        cursor = conn.execute(select(sync_state.c.cursor)).scalar_one()
    assert cursor["key"] is not None  # the cursor stands at the last landed batch
    sync_source(crashed, tax_connector(pg_url))
    with crashed.connect() as a, clean.connect() as b:
        assert store.digest(a) == store.digest(b)
        q = select(quarantine.c.source_id).order_by(quarantine.c.source_id)
        assert a.execute(q).scalars().all() == b.execute(q).scalars().all()


def test_quarantined_row_fixed_at_the_source_loads_and_leaves_quarantine(
    registry: Engine, sqlite_url: str
) -> None:
    truth = tax.generate(sqlite_url, rows=600, seed=21, malformed_share=0.05)
    sync_source(registry, tax_connector(sqlite_url))
    fixed = list(truth.malformed_ids[:10])
    tax.repair(sqlite_url, ids=fixed)
    result = sync_source(registry, tax_connector(sqlite_url))
    assert (result.inserted, result.quarantined) == (10, 0)
    assert unresolved(registry) == truth.malformed - 10
    with registry.connect() as conn:
        resolved = conn.execute(
            select(quarantine.c.source_id).where(quarantine.c.resolved.is_(True))
        ).scalars()
        assert sorted(int(i) for i in resolved) == sorted(fixed)


def test_no_clear_tax_code_is_kept_in_registry_or_quarantine(
    registry: Engine, sqlite_url: str
) -> None:
    tax.generate(sqlite_url, rows=500, seed=3, malformed_share=0.2)
    engine = store.open_registry(sqlite_url)
    with engine.connect() as conn:
        clear = {row[0] for row in conn.execute(select(tax.tb_hoso.c.MST)) if row[0]}
    engine.dispose()
    sync_source(registry, tax_connector(sqlite_url))
    with registry.connect() as conn:
        stored = " ".join(
            str(v)
            for table in (dossier, quarantine)
            for row in conn.execute(select(*(cast(c, String) for c in table.c)))
            for v in row
        )
    assert clear and not [code for code in clear if code in stored]


def test_quarantine_retry_after_a_mapping_fix_keeps_identifiers_hashed(
    registry: Engine, sqlite_url: str
) -> None:
    truth = tax.generate(sqlite_url, rows=440, seed=8, malformed_share=0.25)
    sync_source(registry, tax_connector(sqlite_url))

    class LenientChannel(TaxConnector):
        """A mapping fix: the Tax office documents 'X' as an online submission."""

        def to_canonical(self, raw: RawRecord) -> DossierRecord:
            if raw.payload["KENH_NOP"] == "X":
                raw = RawRecord(raw.source_id, {**raw.payload, "KENH_NOP": "TRUC_TUYEN"})
            return super().to_canonical(raw)

    result = retry_quarantine(registry, LenientChannel(tax_connector(sqlite_url).context))
    assert result.loaded == truth.defects["unknown_channel"]
    assert result.still_rejected == truth.malformed - result.loaded
    engine = store.open_registry(sqlite_url)
    with engine.connect() as conn:
        native = dict(conn.execute(select(tax.tb_hoso.c.ID, tax.tb_hoso.c.MST)).all())
    engine.dispose()
    hasher = IdentifierHasher(KEY)
    with registry.connect() as conn:
        rows = conn.execute(
            select(dossier.c.source_id, dossier.c.applicant_key, dossier.c.channel).where(
                dossier.c.source_id.in_(
                    select(quarantine.c.source_id).where(quarantine.c.resolved.is_(True))
                )
            )
        ).all()
    assert len(rows) == result.loaded
    # The quarantined payload held only the hash, and it is the same key a direct sync gives.
    assert all(r.applicant_key == hasher.hash(native[int(r.source_id)]) for r in rows)
    assert all(r.channel == "online" for r in rows)
    # A record rejected for its identifier cannot load from a redacted payload.
    with registry.connect() as conn:
        reasons = (
            conn.execute(select(quarantine.c.reason).where(quarantine.c.resolved.is_(False)))
            .scalars()
            .all()
        )
    assert reasons.count("applicant_key:invalid_format") == truth.defects["malformed_tax_code"]


def test_partitions_sync_disjoint_slices_with_their_own_cursors(
    registry: Engine, sqlite_url: str
) -> None:
    truth = tax.generate(sqlite_url, rows=700, seed=17, malformed_share=0.05)
    context = tax_connector(sqlite_url).context
    results = [
        sync_source(registry, TaxConnector(replace(context, partition=f"{i}/3"))) for i in range(3)
    ]
    assert sum(r.rows_read for r in results) == truth.rows
    assert registered(registry) == truth.valid and unresolved(registry) == truth.malformed
    with registry.connect() as conn:
        cursors = conn.execute(select(sync_state.c.partition)).scalars().all()
    assert sorted(cursors) == ["0/3", "1/3", "2/3"]
    # A partition re-run after its siblings changes nothing.
    assert sync_source(registry, TaxConnector(replace(context, partition="1/3"))).inserted == 0


def test_concurrent_partition_syncs_on_postgresql_land_everything_once(pg_url: str) -> None:
    truth = tax.generate(pg_url, rows=2400, seed=19, malformed_share=0.03)
    registry = store.open_registry(pg_url)
    migrate.upgrade(registry)
    context = tax_connector(pg_url, batch_size=100).context
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(
            pool.map(
                lambda i: sync_source(registry, TaxConnector(replace(context, partition=f"{i}/4"))),
                range(4),
            )
        )
    assert sum(r.inserted for r in results) == truth.valid
    assert registered(registry) == truth.valid and unresolved(registry) == truth.malformed
    registry.dispose()
