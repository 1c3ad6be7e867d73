"""Soak: all five reference systems with faults on, ten sync rounds, the sources changing
between rounds; afterwards the registry must equal the sources exactly.

The province: Tax on MariaDB (synced as two partitions), Land on PostgreSQL, Finance as a drop
folder of daily exports, Social Insurance and the one-stop portal as HTTP services on
127.0.0.1 answering with 5xx, 429, held requests and dropped connections. Every system plants
2% malformed records. The registry is PostgreSQL.

Between rounds the systems live on: dossiers move on in their lives, operators repair some
malformed rows at the source, Finance drops a new day's export, re-issues a past day
corrected, delivers one file twice and is caught once mid-write. Twice a SQL source's table
vanishes in the middle of a sync (a schema change at the agency): that run fails cleanly and a
later round catches up.

After round ten:
* every source record is in the registry or in quarantine, never both, never neither: the
  unresolved quarantine is exactly the records the source still holds malformed;
* the registry's rows equal those of one clean sync of the sources' final state, and its
  statistics (cases and both rollups), kept up incrementally round by round, equal the clean
  registry's built once;
* every dossier's latest status event is its current status;
* reconciliation against each source's own count shows a gap of zero everywhere.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, Table, create_engine, select, text

from dossierhub import stats, store
from dossierhub.errors import SourceError
from dossierhub.settings import Settings, SourceConfig
from dossierhub.sources import open_connector
from dossierhub.sync import SyncResult, sync_source
from models import migrate
from models.tables import (
    dossier,
    dossier_case,
    dossier_event,
    quarantine,
    stats_daily,
    stats_monthly,
    sync_run,
)
from simulators import finance, land, one_stop, social_insurance, tax
from simulators.http_server import Faults
from tests.conftest import MARIADB_SERVER, unavailable
from tests.reliability.crash import drop, scratch

pytestmark = pytest.mark.postgres

ROUNDS = 10
SEED = 4242
ROWS = 1200  # Tax, Social Insurance and the portal; Land holds half, Finance about as many
MALFORMED = 0.02
FORWARDED = 40
FINANCE_DAYS = 20
KEY = "soak-key-" + "s" * 32
HTTP = {
    "connect_timeout": 0.5,
    "read_timeout": 0.5,  # a held request (1 s) times out
    "max_attempts": 10,
    "backoff_initial": 0.001,
    "backoff_max": 0.01,
}
FAULTS = Faults(
    server_error=0.1, rate_limit=0.05, retry_after=0, timeout=0.02, drop=0.03, hang=1.0, seed=SEED
)
# (round, source): the source's table disappears once the run's first batch has landed.
OUTAGES = {(1, "tax"), (6, "land")}
HALF_WRITTEN = 4  # Finance's export after this round is caught half-written by the next sync


@dataclass
class Source:
    """One system as the soak drives it: how to sync it and what it truly holds."""

    name: str
    config: SourceConfig
    rows: Callable[[], int]  # records the system holds now
    malformed: Callable[[], set[str]]  # ids of those it holds malformed now
    ids: Callable[[], set[str]] | None = None  # every id, where the system lists them cheaply
    table: tuple[Engine, str] | None = None  # a SQL source's database and table
    outages: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def mariadb() -> Iterator[str]:
    server = create_engine(MARIADB_SERVER, isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        unavailable("MariaDB", exc)
    name = f"dh_soak_{secrets.token_hex(3)}"
    with server.connect() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    yield server.url.set(database=name).render_as_string(hide_password=False)
    with server.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    server.dispose()


@dataclass
class Province:
    hub: Settings
    sources: dict[str, Source]
    insurance: social_insurance.SocialInsuranceApi
    portal: one_stop.OneStopApi
    tax_url: str
    land_url: str
    drop: Path
    repaired: dict[str, set[str]] = field(default_factory=lambda: {"tax": set(), "land": set()})
    finance_malformed: set[str] = field(default_factory=set)
    finance_rows: int = 0
    half_written: finance.Partial | None = None


@pytest.fixture(scope="module")
def province(
    server: Engine, mariadb: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Province]:
    land_url = scratch(server, "soak_land")
    folder = tmp_path_factory.mktemp("soak")
    drop_folder = folder / "finance-drop"
    tax_truth = tax.generate(mariadb, rows=ROWS, seed=SEED, malformed_share=MALFORMED)
    land_truth = land.generate(
        land_url, rows=ROWS // 2, seed=SEED, malformed_share=MALFORMED, forwarded=FORWARDED
    )
    finance_truth = finance.generate(
        drop_folder,
        days=FINANCE_DAYS,
        rows_per_day=ROWS // FINANCE_DAYS,
        seed=SEED,
        malformed_share=MALFORMED,
        forwarded=FORWARDED,
    )
    sector_forwards = {"social_insurance": FORWARDED, "finance": FORWARDED, "land": FORWARDED}
    with (
        social_insurance.SocialInsuranceApi(
            rows=ROWS, seed=SEED, malformed_share=MALFORMED, forwarded=FORWARDED, faults=FAULTS
        ) as insurance,
        one_stop.OneStopApi(
            rows=ROWS,
            seed=SEED,
            malformed_share=MALFORMED,
            forwarded=sector_forwards,
            faults=FAULTS,
        ) as portal,
    ):
        tax_db, land_db = create_engine(mariadb), create_engine(land_url)
        p = Province(
            hub=Settings(mode="demo", hash_key=KEY),  # type: ignore[arg-type]
            sources={},
            insurance=insurance,
            portal=portal,
            tax_url=mariadb,
            land_url=land_url,
            drop=drop_folder,
            finance_malformed=set(finance_truth.malformed_ids),
            finance_rows=finance_truth.rows,
        )

        def sql(engine: Engine, query: str) -> set[str]:
            with engine.connect() as conn:
                return {str(v) for v in conn.execute(text(query)).scalars()}

        def config(connector: str, settings: dict[str, Any], **extra: Any) -> SourceConfig:
            return SourceConfig(connector=connector, batch_size=25, settings=settings, **extra)

        p.sources = {
            "tax": Source(
                "tax",
                config("tax", {"url": mariadb}, partitions=2, lookback_seconds=60),
                rows=lambda: tax_truth.rows,
                malformed=lambda: {str(i) for i in tax_truth.malformed_ids} - p.repaired["tax"],
                ids=lambda: sql(tax_db, f"SELECT ID FROM {tax.TABLE}"),
                table=(tax_db, tax.TABLE),
            ),
            "land": Source(
                "land",
                config("land", {"url": land_url}, lookback_seconds=60),
                rows=lambda: land_truth.rows,
                malformed=lambda: {str(i) for i in land_truth.malformed_ids} - p.repaired["land"],
                ids=lambda: sql(land_db, f"SELECT id FROM {land.TABLE}"),
                table=(land_db, land.TABLE),
            ),
            "finance": Source(
                "finance",
                config("finance", {"folder": str(drop_folder)}),
                rows=lambda: p.finance_rows,
                malformed=lambda: p.finance_malformed,
            ),
            "social_insurance": Source(
                "social_insurance",
                config(
                    "social_insurance",
                    {
                        "base_url": insurance.url,
                        "client_id": social_insurance.DEMO_CLIENT_ID,
                        "client_secret": social_insurance.DEMO_CLIENT_SECRET,
                        **HTTP,
                    },
                ),
                rows=lambda: insurance.truth.rows,
                malformed=lambda: set(insurance.truth.malformed_ids),
                ids=lambda: {r["id"] for r in insurance.dossiers()},
            ),
            "one_stop": Source(
                "one_stop",
                config(
                    "one_stop",
                    {"base_url": portal.url, "api_key": one_stop.DEMO_API_KEY, **HTTP},
                ),
                rows=lambda: portal.truth.rows,
                malformed=lambda: set(portal.truth.malformed_ids),
                ids=lambda: {r["Id"] for r in portal.dossiers()},
            ),
        }
        try:
            yield p
        finally:
            tax_db.dispose()
            land_db.dispose()
            drop(land_url)


def sync_all(p: Province, registry: Engine, round_no: int) -> dict[str, list[SyncResult | str]]:
    """One round: every partition of every source, as the DAGs would run them."""
    outcomes: dict[str, list[SyncResult | str]] = {}
    for name, source in p.sources.items():
        outcomes[name] = []
        for partition in source.config.partition_names():
            connector = open_connector(p.hub, name, source.config, partition=partition)
            outage = (round_no, name) in OUTAGES and partition in ("", "0/2")
            try:
                result = sync_source(
                    registry,
                    connector,
                    connector_name=source.config.connector,
                    progress=_vanish(source) if outage else None,
                )
            except SourceError as exc:
                outcomes[name].append(str(exc))
            else:
                outcomes[name].append(result)
            finally:
                if outage:
                    _restore(source)
    stats.refresh(registry)
    return outcomes


def _vanish(source: Source) -> Callable[[SyncResult], None]:
    """A progress callback that renames the source's table away once, after the first batch."""

    def on_batch(result: SyncResult) -> None:
        if source.outages:
            return
        assert source.table is not None
        engine, table = source.table
        with engine.begin() as conn:
            conn.execute(text(f"ALTER TABLE {table} RENAME TO {table}_away"))
        source.outages.append(table)

    return on_batch


def _restore(source: Source) -> None:
    if source.table is not None and source.outages:
        engine, table = source.table
        with engine.begin() as conn:
            conn.execute(text(f"ALTER TABLE {table}_away RENAME TO {table}"))


def change_sources(p: Province, round_no: int) -> None:
    """What happens at the agencies between round `round_no` and the next."""
    seed = SEED + round_no
    tax.touch(p.tax_url, share=0.02, seed=seed)
    land.advance(p.land_url, share=0.03, seed=seed)
    p.insurance.touch(share=0.02, seed=seed)
    p.portal.touch(share=0.02, seed=seed)
    if round_no in (3, 7):  # operators fix some malformed rows at the source
        for name, module, url in (("tax", tax, p.tax_url), ("land", land, p.land_url)):
            still = sorted(int(i) for i in p.sources[name].malformed())
            fixed = still[: max(1, len(still) // 3)]
            module.repair(url, ids=fixed)
            p.repaired[name] |= {str(i) for i in fixed}
    # Finance: a new day's export every round, a past day re-issued corrected; once a file
    # delivered twice, once a file caught half-written and finished only after the next sync.
    partial = finance.start_partial(p.drop, day=FINANCE_DAYS + round_no - 1)
    if round_no == HALF_WRITTEN:
        p.half_written = partial
    else:
        _finish(p, partial)
    if round_no == HALF_WRITTEN + 1 and p.half_written is not None:
        _finish(p, p.half_written)
    finance.reissue(p.drop, day=round_no % FINANCE_DAYS, seed=seed, share=0.1)
    if round_no == 2:
        finance.redeliver(p.drop, day=1)


def _finish(p: Province, partial: finance.Partial) -> None:
    partial.complete()
    p.finance_rows += len(partial.ids)
    p.finance_malformed |= set(partial.malformed_ids)


# -- the soak -------------------------------------------------------------------------------
@pytest.mark.slow
def test_ten_rounds_under_faults_leave_the_registry_equal_to_the_sources(
    province: Province, server: Engine, tmp_path: Path
) -> None:
    p = province
    url = scratch(server, "soak_registry")
    registry = store.open_registry(url)
    migrate.upgrade(registry)
    try:
        failed = []
        for round_no in range(1, ROUNDS + 1):
            for name, outcomes in sync_all(p, registry, round_no).items():
                failed += [(round_no, name, o) for o in outcomes if isinstance(o, str)]
            if round_no < ROUNDS:
                change_sources(p, round_no)

        # The faults happened, and only the injected outages failed a run, each clearly.
        assert [(r, name) for r, name, _ in failed] == sorted(OUTAGES), failed
        for _, name, message in failed:
            table = p.sources[name].table
            assert table is not None and f"reading {table[1]} failed" in message, message
        faults = Counter(
            s.fault for api in (p.insurance, p.portal) for s in api.served() if s.fault
        )
        assert set(faults) >= {"server_error", "rate_limit", "timeout", "drop"}, faults
        with registry.connect() as conn:
            runs = Counter(conn.execute(select(sync_run.c.status)).scalars())
        assert runs["failed"] == len(OUTAGES) and runs["running"] == 0, runs

        # Every record is in the registry or in quarantine: exactly one of them.
        for name, source in p.sources.items():
            held, set_aside = registered(registry, name), unresolved(registry, name)
            assert set_aside == source.malformed(), name
            assert not held & set_aside, name
            assert len(held) == source.rows() - len(set_aside), name
            if source.ids is not None:
                assert held == source.ids() - set_aside, name

        # Equal to one clean sync of the final state, statistics included.
        for api in (p.insurance, p.portal):
            api.faults = Faults()
        clean = store.open_registry(f"sqlite:///{tmp_path / 'clean.db'}")
        migrate.upgrade(clean)
        for name, source in p.sources.items():
            for partition in source.config.partition_names():
                sync_source(clean, open_connector(p.hub, name, source.config, partition=partition))
        stats.refresh(clean)
        with registry.connect() as soaked, clean.connect() as once:
            for name in p.sources:
                assert store.digest(soaked, source_system=name, history=False) == store.digest(
                    once, source_system=name, history=False
                ), name
            for table in (dossier_case, stats_daily, stats_monthly):
                assert contents(soaked, table) == contents(once, table), table.name
            assert latest_events_disagreeing(soaked) == []
        clean.dispose()

        # Reconciliation with every source's own count: no gap anywhere.
        connectors = [open_connector(p.hub, n, s.config) for n, s in p.sources.items()]
        try:
            rows = stats.reconcile(registry, counters={c.source: c.count for c in connectors})
        finally:
            for connector in connectors:
                connector.close()
        assert {r["source_system"]: (r["gap"], r["error"]) for r in rows} == {
            name: (0, None) for name in p.sources
        }
    finally:
        registry.dispose()
        drop(url)


def registered(engine: Engine, source: str) -> set[str]:
    with engine.connect() as conn:
        query = select(dossier.c.source_id).where(dossier.c.source_system == source)
        return set(conn.execute(query).scalars())


def unresolved(engine: Engine, source: str) -> set[str]:
    q = quarantine.c
    with engine.connect() as conn:
        query = select(q.source_id).where(q.source_system == source, q.resolved.is_(False))
        return set(conn.execute(query).scalars())


def contents(conn: Connection, table: Table) -> list[tuple[Any, ...]]:
    """Every row of `table`, in a form two dialects agree on, in one order."""
    return sorted(
        (tuple(store.normal(v) for v in row) for row in conn.execute(select(table))), key=repr
    )


def latest_events_disagreeing(conn: Connection) -> list[tuple[str, str]]:
    """Dossiers whose last status event is not their current status."""
    e = dossier_event.c
    last: dict[tuple[str, str], int] = {}
    query = select(e.source_system, e.source_id, e.status_to).order_by(e.changed_at, e.id)
    for source, ident, status in conn.execute(query):
        last[(source, ident)] = status
    now = conn.execute(select(dossier.c.source_system, dossier.c.source_id, dossier.c.status))
    return sorted((s, i) for s, i, status in now if last.get((s, i)) != status)
