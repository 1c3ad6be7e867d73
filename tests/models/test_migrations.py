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
    from datetime import datetime

    from sqlalchemy import func, select

    from connectors.base import Period
    from dossierhub import stats, store
    from models.dossier import DossierRecord
    from models.tables import dossier_case, stats_state

    migrate.downgrade(registry, "0003")
    assert migrate.current_revision(registry) == "0003"
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
    with registry.begin() as conn:
        store.write_batch(conn, source_system="tax", records=[refused])
        conn.execute(
            dossier_case.insert().values(
                case_key="old",
                members=1,
                in_portal=False,
                first_source="tax",
                channel="online",
                agency_code="x",
                procedure_code="y",
                status=3,
                received_at=datetime(2026, 1, 10, 2, tzinfo=UTC),
                received_day=datetime(2026, 1, 10).date(),
            )
        )
        conn.execute(
            stats_state.insert().values(
                name="rollup", watermark=datetime.now(UTC), refreshed_at=datetime.now(UTC)
            )
        )
    migrate.upgrade(registry)
    with registry.connect() as conn:
        assert conn.execute(select(func.count()).select_from(dossier_case)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(stats_state)).scalar_one() == 0
    stats.refresh(registry)
    with registry.connect() as conn:
        [row] = stats.indicators(conn, period=Period.parse("2026-01"))
    assert (row["received"], row["refused_intake"]) == (0, 1)
