"""Migrations build exactly the tables in models/tables.py, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

from models import migrate
from models.tables import metadata


def test_migrated_schema_matches_the_table_definitions(registry: Engine) -> None:
    with registry.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []
    assert migrate.current_revision(registry) == migrate.head_revision()


def test_upgrade_is_idempotent(registry: Engine) -> None:
    migrate.upgrade(registry)
    assert migrate.current_revision(registry) == migrate.head_revision()


def test_upgrade_to_0004_empties_the_statistics_for_a_rebuild(registry: Engine) -> None:
    """Cases and rollups built under the old rules go; the next refresh rebuilds them all."""
    from datetime import date, datetime

    from sqlalchemy import func, select, text

    from connectors.base import Period
    from dossierhub import stats, store
    from models.dossier import DossierRecord
    from models.tables import dossier_case, stats_state

    refused = DossierRecord.model_validate(
        {
            "source_system": "tax",
            "source_id": "R1",
            "dossier_code": "000.00.06.H56-260110-0001",
            "procedure_code": "1.000123",
            "agency_code": "000.00.06.H56",
            "channel": "online",
            "status": 3,
            "received_at": datetime(2026, 1, 10, 9),
            "source_updated_at": datetime(2026, 1, 10, 9),
        }
    )
    with registry.begin() as conn:  # written by today's code, then the schema taken back
        store.write_batch(conn, context=store.BatchContext("tax"), records=[refused])
    migrate.downgrade(registry, "0003")
    assert migrate.current_revision(registry) == "0003"
    with registry.begin() as conn:  # a case and a watermark as the 0003 refresh left them
        conn.execute(
            text(
                "INSERT INTO dossier_case (case_key, members, in_portal, first_source, channel,"
                " agency_code, procedure_code, status, received_at, received_day)"
                " VALUES ('old', 1, :no, 'tax', 'online', 'x', 'y', 3, :at, :day)"
            ),
            {"no": False, "at": datetime(2026, 1, 10, 2, tzinfo=UTC), "day": date(2026, 1, 10)},
        )
        conn.execute(
            text(
                "INSERT INTO stats_state (name, watermark, refreshed_at)"
                " VALUES ('rollup', :now, :now)"
            ),
            {"now": datetime.now(UTC)},
        )
    migrate.upgrade(registry)
    with registry.connect() as conn:
        assert conn.execute(select(func.count()).select_from(dossier_case)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(stats_state)).scalar_one() == 0
    stats.refresh(registry)
    with registry.connect() as conn:
        [row] = stats.indicators(conn, period=Period.parse("2026-01"))
    assert (row["received"], row["refused_intake"]) == (0, 1)


def test_upgrade_to_0007_fills_the_overview_from_the_monthly_rollup(registry: Engine) -> None:
    """The overview is folded from the monthly rollup on upgrade: no rebuild, same figures."""
    from sqlalchemy import inspect

    from dossierhub import stats, store
    from models.period import Period
    from tests.dossierhub.test_stats import SCENARIO

    for source in ("one_stop", "tax"):
        with registry.begin() as conn:
            store.write_batch(
                conn,
                context=store.BatchContext(source),
                records=[r for r in SCENARIO if r.source_system == source],
            )
    stats.refresh(registry)
    year = Period.parse("2026")
    with registry.connect() as conn:
        before = stats.indicators(conn, period=year, by=["sector", "channel", "month"])
    migrate.downgrade(registry, "0006")
    assert "stats_monthly_overview" not in inspect(registry).get_table_names()
    migrate.upgrade(registry)
    with registry.connect() as conn:
        after = stats.indicators(conn, period=year, by=["sector", "channel", "month"])
    assert after == before
    assert sum(row["received"] for row in after) == 6


def test_0008_collates_the_identifier_columns_c_on_postgresql_and_back(registry: Engine) -> None:
    """Upgrade and downgrade keep every dossier; on PostgreSQL the four identifier columns
    compare bytewise ("C") at 0008 and with the database's collation at 0007."""
    from datetime import datetime

    from sqlalchemy import text

    from dossierhub import store
    from models.dossier import DossierRecord

    record = DossierRecord.model_validate(
        {
            "source_system": "tax",
            "source_id": "Ab-1",
            "dossier_code": "000.00.06.H56-260110-0001",
            "national_dossier_code": "G22.99-260110-0001",
            "procedure_code": "1.000123",
            "agency_code": "000.00.06.H56",
            "channel": "online",
            "status": 4,
            "received_at": datetime(2026, 1, 10, 9),
            "source_updated_at": datetime(2026, 1, 10, 9),
        }
    )
    with registry.begin() as conn:
        store.write_batch(conn, context=store.BatchContext("tax"), records=[record])
        before = store.digest(conn)

    def collations() -> dict[str, str | None]:
        if registry.dialect.name != "postgresql":
            return {}
        with registry.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT column_name, collation_name FROM information_schema.columns"
                    " WHERE table_name = 'dossier' AND collation_name IS NOT NULL"
                )
            )
            return dict(rows.all())

    identifiers = ("source_system", "source_id", "dossier_code", "national_dossier_code")
    on_postgresql = registry.dialect.name == "postgresql"
    assert collations() == ({name: "C" for name in identifiers} if on_postgresql else {})
    migrate.downgrade(registry, "0007")
    assert collations() == {}
    with registry.connect() as conn:
        assert store.digest(conn) == before
    migrate.upgrade(registry)
    assert collations() == ({name: "C" for name in identifiers} if on_postgresql else {})
    with registry.begin() as conn:
        assert store.digest(conn) == before
        # the unique key still holds after its index was rebuilt
        counts = store.write_batch(conn, context=store.BatchContext("tax"), records=[record])
    assert (counts.inserted, counts.unchanged) == (0, 1)
