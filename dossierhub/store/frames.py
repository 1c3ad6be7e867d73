"""The columnar path's write: a batch's checked rows straight from their Arrow frame (binary COPY
of new dossiers and events, newer versions staged and upserted under the version guard), in
the same transaction, with the same cursor, counters and quarantine as `write_batch`."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import psycopg.errors
from sqlalchemy import Connection, Engine, Table

from dossierhub.store.batches import (
    _DOSSIER_COLUMNS,
    _EVENT_COLUMNS,
    BatchContext,
    BatchCounts,
    _close_batch,
    _latest,
    _queue_changes,
    _stored_versions,
    _write_records,
    _Written,
    log,
    write_batch,
)
from dossierhub.store.quarantine import Rejection
from dossierhub.store.registry import now
from dossierhub.store.statements import _PG_TYPES, _binary_copy
from models.dossier import DossierRecord
from models.tables import (
    CANONICAL_COLUMNS,
    dossier,
    dossier_event,
)


def write_frame_batch(
    conn: Connection,
    *,
    context: BatchContext,
    frame: Any,
    records: Sequence[DossierRecord] = (),
    rejections: Sequence[Rejection] = (),
    encoded: NewFrame | None = None,
) -> BatchCounts:
    """`write_batch` for a columnar batch: `frame` holds checked canonical rows (a polars
    frame of `models.frame.check`'s ok rows, ids distinct and none among `records`), written
    straight from Arrow; `records` and `rejections` are the batch's row-path part.

    Same registry, same one transaction, same counts as `write_batch` given the frame's rows
    as records: new dossiers and their events by binary COPY from Arrow, newer versions
    staged and upserted by one version-guarded INSERT ... SELECT ... ON CONFLICT, so no
    per-row Python object is built for the frame's rows. On SQLite the frame's rows become
    records and go through `write_batch`.

    `encoded` is the frame already encoded as new dossiers (`encode_new_frame`, done while
    the previous batch was written); a first load then only sends it, stamped with its time.
    """
    from models import frame as rules

    if conn.dialect.name != "postgresql" or not _arrow_copy_available():
        records = [*rules.records(frame), *records]
        return write_batch(conn, context=context, records=records, rejections=rejections)
    stamp = now() if encoded is None else encoded.stamp
    written = _write_frame(conn, context, frame, stamp, encoded)
    latest = _latest(records)
    # Still a first load for the records only if the frame found none of its ids stored.
    fresh = context.fresh and written.updated == written.unchanged == 0
    written += _write_records(conn, replace(context, fresh=fresh), list(latest.values()), stamp)
    return _close_batch(
        conn,
        context,
        loaded=[*frame.get_column("source_id").to_list(), *latest],
        written=written,
        rejections=rejections,
        rows=len(frame) + len(records) + len(rejections),
        stamp=stamp,
    )


@dataclass(frozen=True)
class NewFrame:
    """A frame's rows encoded as new dossiers: binary COPY payloads of the dossiers and of
    their first status events, the cases they open, and the time stamped on them."""

    stamp: datetime
    dossiers: bytes
    events: bytes
    cases: set[str]


def encode_new_frame(engine: Engine, frame: Any, *, run_id: int | None) -> NewFrame | None:
    """The frame encoded for a first load (`write_frame_batch`'s `encoded`), or None where
    the frame is written otherwise (not PostgreSQL, no pgpq, no rows).

    The sync calls it while the previous batch is being written, so during a first load the
    writer, the sync's slowest stage, only sends bytes: stamping and encoding are done."""
    if engine.dialect.name != "postgresql" or frame.is_empty() or not _arrow_copy_available():
        return None
    return _encode_new(frame, now(), run_id)


@functools.cache
def _arrow_copy_available() -> bool:
    try:
        import pgpq  # noqa: F401
    except ImportError:
        log.warning(
            "the columnar sync writes its rows as records, slower: pgpq (the Arrow to COPY "
            "encoder) is not installed; install it with pip install 'dossierhub[columnar]'"
        )
        return False
    return True


def _write_frame(
    conn: Connection,
    context: BatchContext,
    frame: Any,
    stamp: datetime,
    encoded: NewFrame | None = None,
) -> _Written:
    """The frame's dossiers, their events and cases, as `_write_records` writes records."""
    import polars as pl

    if frame.is_empty():
        return _Written()
    if context.fresh:  # offered whole as new; the unique key, not a lookup, proves it
        encoded = encoded or _encode_new(frame, stamp, context.run_id)
        if _copy_if_all_new(conn, encoded.dossiers):
            _send(conn, dossier_event.name, _EVENT_COLUMNS, encoded.events)
            _queue_changes(conn, encoded.cases)
            return _Written(len(frame), 0, 0)
    rows = _dossier_rows(frame, stamp)
    stored = _stored_frame(conn, context.source_system, rows.get_column("source_id").to_list())
    joined = rows.join(stored, on="source_id", how="left")
    known = pl.col("stored_updated_at").is_not_null()
    incoming, held = pl.col("source_updated_at"), pl.col("stored_updated_at")
    moved = incoming != held if context.overwrite else incoming > held
    new = joined.filter(~known)
    newer = joined.filter(known & moved)
    _copy_frame(conn, dossier, new.select(_DOSSIER_COLUMNS))
    _upsert_frame(conn, newer.select(_DOSSIER_COLUMNS), overwrite=context.overwrite)
    events = pl.concat(
        [
            _events(new, pl.lit(None, dtype=pl.Int16), context.run_id),
            _events(
                newer.filter(pl.col("status") != pl.col("stored_status")),
                pl.col("stored_status"),
                context.run_id,
            ),
        ],
        how="vertical_relaxed",
    )
    _copy_frame(conn, dossier_event, events)
    key = _link_key_expr("national_dossier_code", "dossier_code")
    changed = set(new.select(key).to_series().to_list())
    if not newer.is_empty():  # a changed key leaves its old case
        changed.update(newer.select(key).to_series().to_list())
        changed.update(newer.get_column("stored_key").to_list())
    _queue_changes(conn, changed)
    return _Written(len(new), len(newer), len(rows) - len(new) - len(newer))


def _encode_new(frame: Any, stamp: datetime, run_id: int | None) -> NewFrame:
    import polars as pl

    rows = _dossier_rows(frame, stamp)
    key = _link_key_expr("national_dossier_code", "dossier_code")
    return NewFrame(
        stamp=stamp,
        dossiers=_encode(dossier, rows),
        events=_encode(dossier_event, _events(rows, pl.lit(None, dtype=pl.Int16), run_id)),
        cases=set(rows.select(key).to_series().to_list()),
    )


def _dossier_rows(frame: Any, stamp: datetime) -> Any:
    """The frame as `dossier` rows first seen and last changed at `stamp`."""
    import polars as pl

    return frame.select(CANONICAL_COLUMNS).with_columns(
        first_seen_at=pl.lit(stamp, dtype=pl.Datetime("us", "UTC")),
        last_changed_at=pl.lit(stamp, dtype=pl.Datetime("us", "UTC")),
    )


def _events(rows: Any, status_from: Any, run_id: int | None) -> Any:
    """The status events of dossier rows, moved from `status_from` (an expression)."""
    import polars as pl

    return rows.select(
        source_system=pl.col("source_system"),
        source_id=pl.col("source_id"),
        status_from=status_from,
        status_to=pl.col("status"),
        status_raw=pl.col("status_raw"),
        changed_at=pl.col("source_updated_at"),
        run_id=pl.lit(run_id, dtype=pl.Int64),
    ).select(_EVENT_COLUMNS)


def _link_key_expr(national: str, code: str) -> Any:
    """`linkage.link_key` on columns: the national code when it is not blank, else the code."""
    import polars as pl

    national_code = pl.col(national)
    blank = national_code.is_null() | (national_code == "")
    return pl.when(blank).then(pl.col(code)).otherwise(national_code).alias("key")


def _stored_frame(conn: Connection, source_system: str, source_ids: list[str]) -> Any:
    """The stored versions of the ids as a frame: status, source_updated_at, link key."""
    import polars as pl

    found = _stored_versions(conn, source_system, source_ids)
    return pl.DataFrame(
        {
            "source_id": list(found),
            "stored_status": [int(v.status) for v in found.values()],
            "stored_updated_at": [v.source_updated_at for v in found.values()],
            "stored_key": [v.link_key for v in found.values()],
        },
        schema={
            "source_id": pl.String,
            "stored_status": pl.Int16,
            "stored_updated_at": pl.Datetime("us", "UTC"),
            "stored_key": pl.String,
        },
    )


def _copy_if_all_new(conn: Connection, dossiers: bytes) -> bool:
    """`_insert_if_all_new` for encoded dossiers: COPY them whole, or nothing when an id is
    stored."""
    attempt = conn.begin_nested()
    try:
        _send(conn, dossier.name, _DOSSIER_COLUMNS, dossiers)
    except psycopg.errors.UniqueViolation:
        attempt.rollback()
        return False
    attempt.commit()
    return True


def _upsert_frame(conn: Connection, rows: Any, *, overwrite: bool) -> None:
    """Newer versions: staged by COPY, then one version-guarded upsert (`_update_newer`)."""
    if rows.is_empty():
        return
    columns = ", ".join(_DOSSIER_COLUMNS)  # the registry's own names, no input in the SQL
    stage = f"SELECT {columns} FROM dossier WITH NO DATA"  # noqa: S608
    conn.exec_driver_sql(f"CREATE TEMP TABLE dossier_stage ON COMMIT DROP AS {stage}")
    _copy_frame(conn, dossier, rows, into="dossier_stage")
    assignments = ", ".join(
        f"{name} = EXCLUDED.{name}" for name in (*CANONICAL_COLUMNS, "last_changed_at")
    )
    guard = "<>" if overwrite else "<"
    conn.exec_driver_sql(
        f"INSERT INTO dossier ({columns}) SELECT {columns} FROM dossier_stage"  # noqa: S608
        f" ON CONFLICT (source_system, source_id) DO UPDATE SET {assignments}"
        f" WHERE dossier.source_updated_at {guard} EXCLUDED.source_updated_at"
    )
    conn.exec_driver_sql("DROP TABLE dossier_stage")


def _copy_frame(conn: Connection, table: Table, rows: Any, *, into: str | None = None) -> None:
    """Binary COPY of a polars frame (columns named as `table`'s) on the caller's
    transaction, encoded from Arrow (pgpq) with no Python object per row."""
    if not rows.is_empty():
        _send(conn, into or table.name, rows.columns, _encode(table, rows))


def _encode(table: Table, rows: Any) -> bytes:
    """A polars frame (columns named as `table`'s) as one binary COPY stream."""
    import polars as pl
    from pgpq import ArrowToPostgresBinaryEncoder

    dtypes: dict[str, Any] = {
        "text": pl.String,
        "int2": pl.Int16,
        "int4": pl.Int32,
        "int8": pl.Int64,
        "bool": pl.Boolean,
        "timestamptz": pl.Datetime("us", "UTC"),
    }
    typed = rows.with_columns(
        pl.col(name).cast(dtypes[_PG_TYPES[type(table.c[name].type)]]) for name in rows.columns
    ).to_arrow()
    encoder = ArrowToPostgresBinaryEncoder(typed.schema)
    data = bytearray(encoder.write_header())
    for batch in typed.to_batches():
        data += encoder.write_batch(batch)
    data += encoder.finish()
    return bytes(data)


def _send(conn: Connection, table: str, columns: Sequence[str], data: bytes) -> None:
    """One encoded binary COPY stream into `table` on the caller's transaction."""
    with _binary_copy(conn, table, columns) as copy:
        copy.write(data)
