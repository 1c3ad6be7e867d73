"""Migrations build exactly the tables in models/tables.py, on SQLite and PostgreSQL."""

from __future__ import annotations

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
