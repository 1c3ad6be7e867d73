"""One batch written in the caller's transaction, as a few set-based statements whatever its size:
one read of the stored versions of the batch's ids; new dossiers and status events by COPY on
PostgreSQL (executemany on SQLite); newer versions by one version-guarded INSERT ... ON CONFLICT
DO UPDATE; quarantine upserts; the cursor and the run counters. No per-row round trips."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import psycopg.errors
from sqlalchemy import (
    Connection,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from connectors.base import Cursor
from dossierhub.linkage import link_key
from dossierhub.store.quarantine import (
    Rejection,
    _quarantine,
    _resolve_quarantine,
    _settle_quarantine,
)
from dossierhub.store.registry import now
from dossierhub.store.runs import _save_cursor
from dossierhub.store.statements import _among, _copy, _id_chunks
from models.dossier import DossierRecord
from models.tables import (
    CANONICAL_COLUMNS,
    dossier,
    dossier_event,
    stats_change,
    sync_run,
)

if tuple(DossierRecord.model_fields) != CANONICAL_COLUMNS:  # pragma: no cover - a coding error
    raise RuntimeError("models.tables canonical columns must follow DossierRecord's field order")


log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BatchCounts:
    read: int
    inserted: int
    updated: int
    unchanged: int
    quarantined: int


@dataclass(frozen=True, slots=True)
class BatchContext:
    """What a batch belongs to and what it closes with, whichever way its rows are written.

    The batch's rows are of `source_system`; it saves `cursor` (None: none to save) as the
    cursor of `partition`, and adds its counts to run `run_id` (None: no run, as for a
    quarantine retry). `read` is how many rows the source delivered, repeats included (None:
    the batch's records and rejections). `settles` are the quarantine key prefixes the batch
    resolves (see `connectors.base.Batch`). `overwrite` and `fresh`: see `write_batch`.
    """

    source_system: str
    cursor: Cursor | None = None
    partition: str = ""
    run_id: int | None = None
    read: int | None = None
    settles: Sequence[str] = ()
    overwrite: bool = False
    fresh: bool = False


def write_batch(
    conn: Connection,
    *,
    context: BatchContext,
    records: Sequence[DossierRecord],
    rejections: Sequence[Rejection] = (),
) -> BatchCounts:
    """Apply one batch inside the caller's transaction and return what it changed.

    A record is inserted when new, updated only when its `source_updated_at` is newer than
    the stored version, and otherwise left alone; each new dossier and each status change of
    a newer version appends a status event. Rejections are upserted into quarantine; loaded
    records resolve their quarantine entries, and so do the entries under the key prefixes
    the batch `settles` (see `BatchContext`). The link keys of the cases the batch touches or
    leaves are queued for the statistics refresh (`stats_change`). The cursor and run
    counters move in the same transaction, so a crash leaves either all of the batch or none
    of it.

    The caller holds the source's sync lock, so no other writer touches these rows between
    reading their stored versions and writing; the version guard on the update holds anyway.
    With the context's `overwrite` (a full refresh of a source whose full read is its current
    state) a record whose version differs from the stored one replaces it, even when dated
    earlier.

    The context's `fresh` says the registry is likely to hold none of the batch's ids (the
    source had no dossier when the sync started): the batch is then first offered as all
    new, and the registry's unique key, not a lookup, proves it; one id already stored undoes
    that attempt and the batch takes the lookup path, so the outcome is the same either way.
    """
    stamp = now()
    latest = _latest(records)
    written = _write_records(conn, context, list(latest.values()), stamp)
    return _close_batch(
        conn,
        context,
        loaded=list(latest),
        written=written,
        rejections=rejections,
        rows=len(records) + len(rejections),
        stamp=stamp,
    )


def _latest(records: Sequence[DossierRecord]) -> dict[str, DossierRecord]:
    """The newest version of each id: a source may repeat an id in one page."""
    latest: dict[str, DossierRecord] = {}
    for record in records:
        kept = latest.get(record.source_id)
        if kept is None or record.source_updated_at >= kept.source_updated_at:
            latest[record.source_id] = record
    return latest


class _Written(NamedTuple):
    """What a batch's dossier writes did: the counts its run adds up."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def __add__(self, other: object) -> _Written:
        assert isinstance(other, _Written)
        return _Written(*(a + b for a, b in zip(self, other, strict=True)))


def _write_records(
    conn: Connection, context: BatchContext, records: list[DossierRecord], stamp: datetime
) -> _Written:
    """New dossiers, newer versions, their status events and the cases to refresh, for
    records with distinct ids (see `write_batch`)."""
    run_id, overwrite = context.run_id, context.overwrite
    inserted = context.fresh and _insert_if_all_new(conn, records, stamp)
    ids = [r.source_id for r in records]
    stored = {} if inserted else _stored_versions(conn, context.source_system, ids)
    new: list[DossierRecord] = []
    newer: list[DossierRecord] = []
    events: list[tuple[Any, ...]] = []
    changed: set[str] = set()  # link keys of the cases the batch touches or leaves
    for record in records:
        known = stored.get(record.source_id)
        key = link_key(record.national_dossier_code, record.dossier_code)
        if known is None:
            new.append(record)
            events.append(_event(record, None, run_id))
            changed.add(key)
        elif record.source_updated_at > known.source_updated_at or (
            overwrite and record.source_updated_at != known.source_updated_at
        ):
            newer.append(record)
            if record.status != known.status:
                events.append(_event(record, known.status, run_id))
            changed.update((key, known.link_key))  # a changed key leaves its old case
    if not inserted:
        _insert_new(conn, new, stamp)
    _update_newer(conn, newer, stamp, overwrite=overwrite)
    _append_events(conn, events)
    _queue_changes(conn, changed)
    return _Written(len(new), len(newer), len(records) - len(new) - len(newer))


def _close_batch(
    conn: Connection,
    context: BatchContext,
    *,
    loaded: list[str],
    written: _Written,
    rejections: Sequence[Rejection],
    rows: int,
    stamp: datetime,
) -> BatchCounts:
    """The rest of a batch once its dossiers are written: quarantine resolved, settled and
    upserted, the cursor saved and the run's counters moved. `rows` is the batch's rows
    and rejections, counted as read unless the context says how many were read."""
    source_system, cursor, run_id = context.source_system, context.cursor, context.run_id
    if loaded:
        _resolve_quarantine(conn, source_system, loaded, stamp)
    # Settled before the batch's own rejections: a line still bad stays held.
    for prefix in context.settles:
        _settle_quarantine(conn, source_system, prefix, stamp)
    quarantined = _quarantine(conn, source_system, rejections, run_id, stamp)
    read = rows if context.read is None else context.read
    counts = BatchCounts(read, *written, quarantined=quarantined)
    if cursor is not None:
        _save_cursor(conn, source_system, context.partition, cursor, run_id, stamp)
    if run_id is not None:
        conn.execute(
            update(sync_run)
            .where(sync_run.c.id == run_id)
            .values(
                rows_read=sync_run.c.rows_read + counts.read,
                inserted=sync_run.c.inserted + counts.inserted,
                updated=sync_run.c.updated + counts.updated,
                unchanged=sync_run.c.unchanged + counts.unchanged,
                quarantined=sync_run.c.quarantined + counts.quarantined,
                batches=sync_run.c.batches + 1,
                cursor_after=cursor if cursor is not None else sync_run.c.cursor_after,
            )
        )
    return counts


def holds_dossiers(conn: Connection, *, source_system: str) -> bool:
    """Whether the registry holds any dossier of the source (one index probe)."""
    d = dossier.c
    query = select(d.id).where(d.source_system == source_system).limit(1)
    return conn.execute(query).first() is not None


class _Stored(NamedTuple):
    status: int
    source_updated_at: datetime
    link_key: str


def _stored_versions(
    conn: Connection, source_system: str, source_ids: list[str]
) -> dict[str, _Stored]:
    found: dict[str, _Stored] = {}
    d = dossier.c
    for chunk in _id_chunks(conn, source_ids):
        query = select(
            d.source_id, d.status, d.source_updated_at, d.national_dossier_code, d.dossier_code
        ).where(d.source_system == source_system, _among(conn, d.source_id, chunk))
        for row in conn.execute(query):
            key = link_key(row.national_dossier_code, row.dossier_code)
            found[row.source_id] = _Stored(row.status, row.source_updated_at, key)
    return found


def _values(record: DossierRecord) -> list[Any]:
    return [getattr(value, "value", value) for value in record.__dict__.values()]


def _event(record: DossierRecord, status_from: int | None, run_id: int | None) -> tuple[Any, ...]:
    return (
        record.source_system,
        record.source_id,
        status_from,
        int(record.status),
        record.status_raw,
        record.source_updated_at,
        run_id,
    )


_EVENT_COLUMNS = (
    "source_system",
    "source_id",
    "status_from",
    "status_to",
    "status_raw",
    "changed_at",
    "run_id",
)


_DOSSIER_COLUMNS = (*CANONICAL_COLUMNS, "first_seen_at", "last_changed_at")


def _insert_new(conn: Connection, records: list[DossierRecord], stamp: datetime) -> None:
    if not records:
        return
    rows = [[*_values(record), stamp, stamp] for record in records]
    if conn.dialect.name == "postgresql":
        _copy(conn, dossier, _DOSSIER_COLUMNS, rows)
    else:
        conn.execute(
            insert(dossier), [dict(zip(_DOSSIER_COLUMNS, row, strict=True)) for row in rows]
        )


def _insert_if_all_new(conn: Connection, records: list[DossierRecord], stamp: datetime) -> bool:
    """Insert the records as new dossiers and return True, or insert nothing and return False
    when one of them is already stored (PostgreSQL; False elsewhere).

    Skips the stored-version lookup on a first load: the unique key on (source_system,
    source_id) refuses the whole COPY if any id is known, and a savepoint undoes it.
    """
    if conn.dialect.name != "postgresql" or not records:
        return False
    attempt = conn.begin_nested()
    try:
        _insert_new(conn, records, stamp)
    except psycopg.errors.UniqueViolation:
        attempt.rollback()
        return False
    attempt.commit()
    return True


def _update_newer(
    conn: Connection, records: list[DossierRecord], stamp: datetime, *, overwrite: bool = False
) -> None:
    if not records:
        return
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = dialect_insert(dossier)
    stored, incoming = dossier.c.source_updated_at, stmt.excluded.source_updated_at
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["source_system", "source_id"],
            set_={name: stmt.excluded[name] for name in (*CANONICAL_COLUMNS, "last_changed_at")},
            # Never let an older version overwrite a newer one, whoever wrote it; unless the
            # source's current state is being applied whole (a full refresh).
            where=stored != incoming if overwrite else stored < incoming,
        ),
        [dict(zip(_DOSSIER_COLUMNS, [*_values(r), stamp, stamp], strict=True)) for r in records],
    )


def _queue_changes(conn: Connection, keys: set[str]) -> None:
    """Queue the cases to rebuild for the statistics refresh (see `stats_change`).

    Append-only (no unique key): concurrent batches of different sources touching one case
    never wait on each other; the refresh folds repeats.
    """
    if not keys:
        return
    if conn.dialect.name == "postgresql":
        _copy(conn, stats_change, ("case_key",), ((key,) for key in sorted(keys)))
    else:
        conn.execute(insert(stats_change), [{"case_key": key} for key in sorted(keys)])


def _append_events(conn: Connection, events: list[tuple[Any, ...]]) -> None:
    if not events:
        return
    if conn.dialect.name == "postgresql":
        _copy(conn, dossier_event, _EVENT_COLUMNS, events)
    else:
        conn.execute(
            insert(dossier_event), [dict(zip(_EVENT_COLUMNS, e, strict=True)) for e in events]
        )
