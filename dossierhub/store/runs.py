"""Cursors, sources and sync runs: what each sync resumes from and how it ended."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Connection,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from connectors.base import Cursor
from connectors.masking import mask_text
from dossierhub.store.registry import now
from models.tables import (
    source,
    sync_run,
    sync_state,
)


def _save_cursor(
    conn: Connection,
    source_system: str,
    partition: str,
    cursor: Cursor,
    run_id: int | None,
    stamp: datetime,
) -> None:
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = dialect_insert(sync_state).values(
        source_system=source_system,
        partition=partition,
        cursor=cursor,
        updated_at=stamp,
        run_id=run_id,
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["source_system", "partition"],
            set_={"cursor": cursor, "updated_at": stamp, "run_id": run_id},
        )
    )


def load_cursor(conn: Connection, *, source_system: str, partition: str = "") -> Cursor | None:
    value = conn.execute(
        select(sync_state.c.cursor).where(
            sync_state.c.source_system == source_system, sync_state.c.partition == partition
        )
    ).scalar_one_or_none()
    return dict(value) if value else None


def run_cursors(conn: Connection, *, source_system: str, partition: str = "") -> list[Cursor]:
    """The cursors the source's runs ended and started from, newest first."""
    r = sync_run.c
    rows = conn.execute(
        select(r.cursor_after, r.cursor_before)
        .where(r.source_system == source_system, r.partition == partition)
        .order_by(r.id.desc())
    )
    return [dict(cursor) for row in rows for cursor in row if cursor]


def register_source(
    conn: Connection, *, name: str, connector: str, description: str | None
) -> None:
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = dialect_insert(source).values(
        name=name, connector=connector, description=description, registered_at=now()
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["name"],
            set_={"connector": connector, "description": description},
        )
    )


def start_run(
    conn: Connection,
    *,
    source_system: str,
    partition: str,
    full_refresh: bool,
    cursor_before: Cursor | None,
    holder: str,
) -> int:
    # Holding the lock means any run still marked running died without finishing.
    conn.execute(
        update(sync_run)
        .where(
            sync_run.c.source_system == source_system,
            sync_run.c.partition == partition,
            sync_run.c.status == "running",
        )
        .values(status="abandoned", finished_at=now(), error="the sync process ended unfinished")
    )
    run_id = conn.execute(
        insert(sync_run)
        .values(
            source_system=source_system,
            partition=partition,
            status="running",
            full_refresh=full_refresh,
            started_at=now(),
            cursor_before=cursor_before,
            cursor_after=cursor_before,
            holder=holder,
        )
        .returning(sync_run.c.id)
    ).scalar_one()
    return int(run_id)


def finish_run(conn: Connection, *, run_id: int, status: str, error: str | None = None) -> None:
    started = conn.execute(
        select(sync_run.c.started_at).where(sync_run.c.id == run_id)
    ).scalar_one()
    finished = now()
    conn.execute(
        update(sync_run)
        .where(sync_run.c.id == run_id)
        .values(
            status=status,
            finished_at=finished,
            duration_s=(finished - started).total_seconds(),
            error=mask_text(error)[:4000] if error else None,  # never stored unmasked
        )
    )
