"""Alembic environment: runs on the connection `dossierhub db upgrade` hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from models.tables import metadata


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by table copy
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run migrations through `dossierhub db upgrade`, which supplies the connection"
    )
run(connection)
