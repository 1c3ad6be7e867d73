"""The registry store: set-based writes of one batch, cursors, runs, quarantine and locks.

Every write of a batch happens inside one transaction the caller owns (`write_batch`), as a
few set-based statements whatever the batch size: one read of the stored versions of the
batch's ids; new dossiers and status events by COPY on PostgreSQL (executemany on SQLite);
newer versions by one version-guarded INSERT ... ON CONFLICT DO UPDATE; quarantine upserts;
the cursor and the run counters. No per-row round trips. A columnar batch
(`write_frame_batch`) does the same from a polars frame, by binary COPY from Arrow.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import secrets
import socket
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import psycopg.errors
from pydantic import SecretStr
from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    Engine,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    any_,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    NoSuchModuleError,
    SQLAlchemyError,
)

from connectors.base import Cursor, RawRecord, jsonable
from connectors.masking import first_line, mask_text
from connectors.sql import safe_url, with_bundled_driver
from dossierhub.errors import (
    ConfigError,
    Reason,
    RegistryConnectionLostError,
    RegistryError,
    RegistryNotMigratedError,
    SyncLockedError,
    SyncLockLostError,
)
from dossierhub.linkage import link_key
from models.dossier import DossierRecord
from models.tables import (
    CANONICAL_COLUMNS,
    UtcDateTime,
    dossier,
    dossier_event,
    quarantine,
    source,
    stats_change,
    sync_lock,
    sync_run,
    sync_state,
)

log = logging.getLogger(__name__)

if tuple(DossierRecord.model_fields) != CANONICAL_COLUMNS:  # pragma: no cover - a coding error
    raise RuntimeError("models.tables canonical columns must follow DossierRecord's field order")

SUPPORTED = ("sqlite", "postgresql")


def now() -> datetime:
    return datetime.now(UTC)


def safe_registry_url(url: SecretStr | str) -> str:
    """The registry URL fit for messages and logs: password and secret parameters masked."""
    return safe_url(url)


def open_registry(url: SecretStr | str) -> Engine:
    """An engine on the registry; refuses unsupported or malformed URLs with the fix."""
    text = url.get_secret_value() if isinstance(url, SecretStr) else url
    try:
        parsed = with_bundled_driver(make_url(text))
    except ArgumentError:
        raise ConfigError(
            "DOSSIERHUB_REGISTRY_URL is not a database URL; use sqlite:///var/registry.db "
            "or postgresql+psycopg://user@host/db"
        ) from None
    if parsed.get_backend_name() not in SUPPORTED:
        raise ConfigError(
            f"registry {safe_registry_url(text)}: {parsed.get_backend_name()} is not supported "
            "as the registry; use SQLite (sqlite:///path) or PostgreSQL (postgresql+psycopg://...)"
        )
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # The sync writes batches from a worker thread, one connection at a time.
        engine = create_engine(parsed, connect_args={"timeout": 60, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    try:
        return create_engine(parsed, pool_pre_ping=True)
    except (NoSuchModuleError, ImportError):
        raise ConfigError(
            f"registry {safe_registry_url(text)}: driver {parsed.get_driver_name()!r} is not "
            "installed; use postgresql+psycopg://user@host/db (psycopg is bundled)"
        ) from None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the sync
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.close()


def ensure_ready(engine: Engine) -> None:
    """Raise a RegistryError naming the fix when the registry is unreachable or not migrated."""
    where = safe_registry_url(engine.url.render_as_string(hide_password=False))
    try:
        with engine.connect() as conn:
            missing = [
                t for t in ("dossier", "sync_run", "quarantine") if not inspect(conn).has_table(t)
            ]
    except SQLAlchemyError as exc:
        raise RegistryError(
            f"cannot open the registry at {where}: {_first_line(exc)} "
            "(check DOSSIERHUB_REGISTRY_URL and that the database is running)"
        ) from None
    if missing:
        raise RegistryNotMigratedError(
            f"the registry at {where} has no {missing[0]} table; run `dossierhub db upgrade` first"
        )


def connection_lost(
    exc: BaseException, *, during: str, engine: Engine | None = None
) -> RegistryConnectionLostError | None:
    """The error to report when `exc` is the registry connection dropping, else None."""
    if not (isinstance(exc, DBAPIError) and exc.connection_invalidated):
        return None
    where = ""
    if engine is not None:
        where = f" at {safe_registry_url(engine.url.render_as_string(hide_password=False))}"
    return RegistryConnectionLostError(
        f"registry connection lost during {during} ({_first_line(exc)}); everything committed "
        f"is kept whole and nothing half-written remains, so a rerun is safe (check the "
        f"registry database{where} if this repeats)"
    )


# -- batches ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BatchCounts:
    read: int
    inserted: int
    updated: int
    unchanged: int
    quarantined: int


@dataclass(frozen=True, slots=True)
class Rejection:
    raw: RawRecord
    reasons: list[Reason]


QUARANTINE_KEY_LENGTH = 128  # quarantine.source_id


def quarantine_key(raw: RawRecord) -> str:
    """The quarantine key of a record; a record without an id is keyed by its content.

    An id longer than the key column keeps its head and gains the SHA-256 of the whole id, so
    two long ids sharing their first characters stay two entries.
    """
    if raw.source_id:
        if len(raw.source_id) <= QUARANTINE_KEY_LENGTH:
            return raw.source_id
        digest = (
            "~sha256:" + hashlib.sha256(raw.source_id.encode(errors="surrogatepass")).hexdigest()
        )
        return raw.source_id[: QUARANTINE_KEY_LENGTH - len(digest)] + digest
    body = json.dumps(jsonable(raw.payload), sort_keys=True, ensure_ascii=False)
    return "sha256:" + hashlib.sha256(body.encode()).hexdigest()


def write_batch(
    conn: Connection,
    *,
    source_system: str,
    records: Sequence[DossierRecord],
    rejections: Sequence[Rejection] = (),
    cursor: Cursor | None = None,
    partition: str = "",
    run_id: int | None = None,
    read: int | None = None,
    settles: Sequence[str] = (),
    overwrite: bool = False,
    fresh: bool = False,
) -> BatchCounts:
    """Apply one batch inside the caller's transaction and return what it changed.

    A record is inserted when new, updated only when its `source_updated_at` is newer than
    the stored version, and otherwise left alone; each new dossier and each status change of
    a newer version appends a status event. Rejections are upserted into quarantine; loaded
    records resolve their quarantine entries, and so do the entries under the key prefixes
    the batch `settles` (see `connectors.base.Batch`). The link keys of the cases the batch
    touches or leaves are queued for the statistics refresh (`stats_change`). The cursor and
    run counters move in the same transaction, so a crash leaves either all of the batch or
    none of it.

    The caller holds the source's sync lock, so no other writer touches these rows between
    reading their stored versions and writing; the version guard on the update holds anyway.
    With `overwrite` (a full refresh of a source whose full read is its current state) a
    record whose version differs from the stored one replaces it, even when dated earlier.

    `fresh` says the registry is likely to hold none of the batch's ids (the source had no
    dossier when the sync started): the batch is then first offered as all new, and the
    registry's unique key, not a lookup, proves it; one id already stored undoes that attempt
    and the batch takes the lookup path, so the outcome is the same either way.
    """
    stamp = now()
    latest: dict[str, DossierRecord] = {}
    for record in records:  # a source may repeat an id in one page; keep its newest version
        kept = latest.get(record.source_id)
        if kept is None or record.source_updated_at >= kept.source_updated_at:
            latest[record.source_id] = record
    written = _write_records(
        conn, source_system, list(latest.values()), stamp, run_id, overwrite=overwrite, fresh=fresh
    )
    return _close_batch(
        conn,
        source_system=source_system,
        loaded=list(latest),
        written=written,
        rejections=rejections,
        cursor=cursor,
        partition=partition,
        run_id=run_id,
        read=len(records) + len(rejections) if read is None else read,
        settles=settles,
        stamp=stamp,
    )


class _Written(NamedTuple):
    """What a batch's dossier writes did: the counts its run adds up."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def __add__(self, other: object) -> _Written:
        assert isinstance(other, _Written)
        return _Written(*(a + b for a, b in zip(self, other, strict=True)))


def _write_records(
    conn: Connection,
    source_system: str,
    records: list[DossierRecord],
    stamp: datetime,
    run_id: int | None,
    *,
    overwrite: bool,
    fresh: bool,
) -> _Written:
    """New dossiers, newer versions, their status events and the cases to refresh, for
    records with distinct ids (see `write_batch`)."""
    inserted = fresh and _insert_if_all_new(conn, records, stamp)
    stored = (
        {} if inserted else _stored_versions(conn, source_system, [r.source_id for r in records])
    )
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
    *,
    source_system: str,
    loaded: list[str],
    written: _Written,
    rejections: Sequence[Rejection],
    cursor: Cursor | None,
    partition: str,
    run_id: int | None,
    read: int,
    settles: Sequence[str],
    stamp: datetime,
) -> BatchCounts:
    """The rest of a batch once its dossiers are written: quarantine resolved, settled and
    upserted, the cursor saved and the run's counters moved."""
    if loaded:
        _resolve_quarantine(conn, source_system, loaded, stamp)
    for prefix in settles:  # before the batch's own rejections: a line still bad stays held
        _settle_quarantine(conn, source_system, prefix, stamp)
    quarantined = _quarantine(conn, source_system, rejections, run_id, stamp)
    counts = BatchCounts(read, *written, quarantined=quarantined)
    if cursor is not None:
        _save_cursor(conn, source_system, partition, cursor, run_id, stamp)
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


def write_frame_batch(
    conn: Connection,
    *,
    source_system: str,
    frame: Any,
    records: Sequence[DossierRecord] = (),
    rejections: Sequence[Rejection] = (),
    cursor: Cursor | None = None,
    partition: str = "",
    run_id: int | None = None,
    read: int | None = None,
    settles: Sequence[str] = (),
    overwrite: bool = False,
    fresh: bool = False,
) -> BatchCounts:
    """`write_batch` for a columnar batch: `frame` holds checked canonical rows (a polars
    frame of `models.frame.check`'s ok rows, ids distinct and none among `records`), written
    straight from Arrow; `records` and `rejections` are the batch's row-path part.

    Same registry, same one transaction, same counts as `write_batch` given the frame's rows
    as records: new dossiers and their events by binary COPY from Arrow, newer versions
    staged and upserted by one version-guarded INSERT ... SELECT ... ON CONFLICT, so no
    per-row Python object is built for the frame's rows. On SQLite the frame's rows become
    records and go through `write_batch`.
    """
    from models import frame as rules

    read = len(frame) + len(records) + len(rejections) if read is None else read
    if conn.dialect.name != "postgresql" or not _arrow_copy_available():
        return write_batch(
            conn,
            source_system=source_system,
            records=[*rules.records(frame), *records],
            rejections=rejections,
            cursor=cursor,
            partition=partition,
            run_id=run_id,
            read=read,
            settles=settles,
            overwrite=overwrite,
            fresh=fresh,
        )
    stamp = now()
    written = _write_frame(conn, source_system, frame, stamp, run_id, overwrite, fresh)
    latest: dict[str, DossierRecord] = {}
    for record in records:
        kept = latest.get(record.source_id)
        if kept is None or record.source_updated_at >= kept.source_updated_at:
            latest[record.source_id] = record
    fresh = fresh and written.updated == written.unchanged == 0
    written += _write_records(
        conn, source_system, list(latest.values()), stamp, run_id, overwrite=overwrite, fresh=fresh
    )
    return _close_batch(
        conn,
        source_system=source_system,
        loaded=[*frame.get_column("source_id").to_list(), *latest],
        written=written,
        rejections=rejections,
        cursor=cursor,
        partition=partition,
        run_id=run_id,
        read=read,
        settles=settles,
        stamp=stamp,
    )


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
    source_system: str,
    frame: Any,
    stamp: datetime,
    run_id: int | None,
    overwrite: bool,
    fresh: bool,
) -> _Written:
    """The frame's dossiers, their events and cases, as `_write_records` writes records."""
    import polars as pl

    if frame.is_empty():
        return _Written()
    rows = frame.select(CANONICAL_COLUMNS).with_columns(
        first_seen_at=pl.lit(stamp, dtype=pl.Datetime("us", "UTC")),
        last_changed_at=pl.lit(stamp, dtype=pl.Datetime("us", "UTC")),
    )
    key = _link_key_expr("national_dossier_code", "dossier_code")
    if fresh and _copy_frame_if_all_new(conn, rows):
        new, newer = rows, rows.clear()
        stored_status = pl.lit(None, dtype=pl.Int16)
    else:
        stored = _stored_frame(conn, source_system, rows.get_column("source_id").to_list())
        joined = rows.join(stored, on="source_id", how="left")
        known = pl.col("stored_updated_at").is_not_null()
        incoming, held = pl.col("source_updated_at"), pl.col("stored_updated_at")
        moved = incoming != held if overwrite else incoming > held
        new = joined.filter(~known)
        newer = joined.filter(known & moved)
        stored_status = pl.col("stored_status")
        _copy_frame(conn, dossier, new.select(_DOSSIER_COLUMNS))
        _upsert_frame(conn, newer.select(_DOSSIER_COLUMNS), overwrite=overwrite)
    event = {
        "source_system": pl.col("source_system"),
        "source_id": pl.col("source_id"),
        "status_to": pl.col("status"),
        "status_raw": pl.col("status_raw"),
        "changed_at": pl.col("source_updated_at"),
        "run_id": pl.lit(run_id, dtype=pl.Int64),
    }
    events = pl.concat(
        [
            new.select(**event, status_from=pl.lit(None, dtype=pl.Int16)),
            newer.filter(pl.col("status") != stored_status).select(
                **event, status_from=stored_status
            ),
        ],
        how="vertical_relaxed",
    )
    _copy_frame(conn, dossier_event, events.select(_EVENT_COLUMNS))
    changed = set(new.select(key).to_series().to_list())
    if not newer.is_empty():  # a changed key leaves its old case
        changed.update(newer.select(key).to_series().to_list())
        changed.update(newer.get_column("stored_key").to_list())
    _queue_changes(conn, changed)
    return _Written(len(new), len(newer), len(rows) - len(new) - len(newer))


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


def _copy_frame_if_all_new(conn: Connection, rows: Any) -> bool:
    """`_insert_if_all_new` for a frame: COPY it whole, or nothing when an id is stored."""
    attempt = conn.begin_nested()
    try:
        _copy_frame(conn, dossier, rows.select(_DOSSIER_COLUMNS))
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
    import polars as pl
    from pgpq import ArrowToPostgresBinaryEncoder

    if rows.is_empty():
        return
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
    driver = conn.connection.driver_connection
    assert driver is not None
    statement = f"COPY {into or table.name} ({', '.join(rows.columns)}) FROM STDIN (FORMAT BINARY)"
    with driver.cursor() as cur, cur.copy(statement) as copy:
        copy.write(data)


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


def _id_chunks(conn: Connection, ids: list[str]) -> Iterator[list[str]]:
    # PostgreSQL takes the whole list as one array parameter; SQLite limits bound parameters.
    size = len(ids) or 1 if conn.dialect.name == "postgresql" else 10_000
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _among(conn: Connection, column: Any, ids: list[str]) -> Any:
    """`column IN ids`: one array parameter on PostgreSQL (= ANY), expanded elsewhere."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, ids, type_=postgresql.ARRAY(String)))
    return column.in_(ids)


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


def _copy(
    conn: Connection, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """COPY rows into a table on the caller's PostgreSQL transaction."""
    driver = conn.connection.driver_connection
    assert driver is not None
    statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    with driver.cursor() as cur, cur.copy(statement) as copy:
        copy.set_types([_PG_TYPES[type(table.c[name].type)] for name in columns])
        for row in rows:
            copy.write_row(row)


_PG_TYPES = {
    String: "text",
    Text: "text",
    SmallInteger: "int2",
    Integer: "int4",
    BigInteger: "int8",
    Boolean: "bool",
    UtcDateTime: "timestamptz",
}


def _resolve_quarantine(
    conn: Connection, source_system: str, source_ids: list[str], stamp: datetime
) -> None:
    """Records that loaded leave quarantine; skipped cheaply when nothing is quarantined."""
    q = quarantine.c
    pending = select(q.id).where(q.source_system == source_system, q.resolved.is_(False)).limit(1)
    if conn.execute(pending).first() is None:
        return
    for chunk in _id_chunks(conn, source_ids):
        conn.execute(
            update(quarantine)
            .where(
                q.source_system == source_system,
                q.resolved.is_(False),
                _among(conn, q.source_id, chunk),
            )
            .values(resolved=True, resolved_at=stamp)
        )


def _settle_quarantine(conn: Connection, source_system: str, prefix: str, stamp: datetime) -> None:
    """Resolve the unresolved entries keyed under `prefix` (a replaced delivery's)."""
    q = quarantine.c
    conn.execute(
        update(quarantine)
        .where(
            q.source_system == source_system,
            q.resolved.is_(False),
            q.source_id.startswith(prefix, autoescape=True),  # file names hold _ and %
        )
        .values(resolved=True, resolved_at=stamp)
    )


def _quarantine(
    conn: Connection,
    source_system: str,
    rejections: Sequence[Rejection],
    run_id: int | None,
    stamp: datetime,
) -> int:
    if not rejections:
        return 0
    rows = {}
    for rejection in rejections:
        rows[quarantine_key(rejection.raw)] = {
            "source_system": source_system,
            "source_id": quarantine_key(rejection.raw),
            "payload": jsonable(rejection.raw.payload),
            "reasons": [reason.as_dict() for reason in rejection.reasons],
            "reason": rejection.reasons[0].key[:255],
            "first_seen_at": stamp,
            "last_seen_at": stamp,
            "seen_count": 1,
            "resolved": False,
            "run_id": run_id,
        }
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = dialect_insert(quarantine)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["source_system", "source_id"],
            set_={
                "payload": stmt.excluded.payload,
                "reasons": stmt.excluded.reasons,
                "reason": stmt.excluded.reason,
                "last_seen_at": stmt.excluded.last_seen_at,
                "seen_count": quarantine.c.seen_count + 1,
                "resolved": False,
                "resolved_at": None,
                "run_id": stmt.excluded.run_id,
            },
        ),
        list(rows.values()),
    )
    return len(rows)


# -- cursors and runs ---------------------------------------------------------------------
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


# -- one sync per source at a time --------------------------------------------------------
def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class SyncLock:
    """A held sync lock: what `prove_lock` checks inside each batch transaction."""

    source_system: str
    partition: str
    holder: str
    token: int  # drawn anew by each holder and kept in its sync_lock row
    backend_pid: int | None = None  # PostgreSQL: the session holding the advisory lock
    key: int | None = None  # PostgreSQL: the advisory lock's key

    def describe(self) -> str:
        return f"source {self.source_system!r}" + (
            f" partition {self.partition!r}" if self.partition else ""
        )


@contextmanager
def sync_lock_held(
    engine: Engine, *, source_system: str, partition: str = ""
) -> Iterator[SyncLock]:
    """Hold the registry's lock on (source, partition) for the body, or raise SyncLockedError.

    PostgreSQL: a session advisory lock, released by the server if the process dies.
    SQLite (one machine): a lock row naming host and pid; a row left by a dead process of
    this host is taken over. On both, the lock row carries a token of this holder, so each
    batch can prove the lock is still its own (`prove_lock`).
    """
    holder = holder_id()
    token = secrets.randbits(63)
    where = (sync_lock.c.source_system == source_system, sync_lock.c.partition == partition)
    if engine.dialect.name == "postgresql":
        key = _lock_key(source_system, partition)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if not conn.execute(select(func.pg_try_advisory_lock(key))).scalar_one():
                raise _locked(engine, source_system, partition)
            try:
                pid = int(conn.execute(select(func.pg_backend_pid())).scalar_one())
                with engine.begin() as write:
                    stmt = postgresql.insert(sync_lock).values(
                        source_system=source_system,
                        partition=partition,
                        holder=holder,
                        acquired_at=now(),
                        token=token,
                    )
                    write.execute(
                        stmt.on_conflict_do_update(
                            index_elements=["source_system", "partition"],
                            set_={
                                name: stmt.excluded[name]
                                for name in ("holder", "acquired_at", "token")
                            },
                        )
                    )
                yield SyncLock(source_system, partition, holder, token, pid, key)
            finally:
                # The lock's session may be gone (that is how a lock is lost): the server
                # has released it then, and the body's own error is the one to report.
                with contextlib.suppress(SQLAlchemyError), engine.begin() as write:
                    write.execute(delete(sync_lock).where(*where, sync_lock.c.token == token))
                with contextlib.suppress(SQLAlchemyError):
                    conn.execute(select(func.pg_advisory_unlock(key)))
        return
    _take_row_lock(engine, source_system, partition, holder, token)
    try:
        yield SyncLock(source_system, partition, holder, token)
    finally:
        with engine.begin() as conn:
            conn.execute(delete(sync_lock).where(*where, sync_lock.c.token == token))


def prove_lock(conn: Connection, lock: SyncLock) -> None:
    """Raise SyncLockLostError unless `lock` is still held, inside the caller's transaction.

    The token check locks the lock row until the transaction ends, so a sync taking the lock
    over (it writes its own token) waits for this batch, and no batch of this sync commits
    after that. On PostgreSQL the advisory lock must also still be held by the session that
    took it (it vanishes with the session: idle_session_timeout, a terminated backend).
    """
    row = sync_lock.c
    held = (
        conn.execute(
            update(sync_lock)
            .where(
                row.source_system == lock.source_system,
                row.partition == lock.partition,
                row.token == lock.token,
            )
            .values(token=row.token)
        ).rowcount
        == 1
    )
    if held and lock.key is not None:
        unsigned = lock.key & 0xFFFF_FFFF_FFFF_FFFF
        held = conn.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND pid = :pid AND objsubid = 1 AND classid::bigint = :high"
                " AND objid::bigint = :low"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))"
            ),
            {"pid": lock.backend_pid, "high": unsigned >> 32, "low": unsigned & 0xFFFF_FFFF},
        ).scalar_one()
    if not held:
        raise SyncLockLostError(
            f"{lock.describe()}: this sync lost its lock (the registry session holding it "
            "ended, or another sync took it over) and stopped before writing more; every "
            "batch it committed is kept, run the sync again to finish"
        )


def _lock_key(source_system: str, partition: str) -> int:
    digest = hashlib.sha256(f"dossierhub:{source_system}:{partition}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _take_row_lock(
    engine: Engine, source_system: str, partition: str, holder: str, token: int
) -> None:
    where = (sync_lock.c.source_system == source_system, sync_lock.c.partition == partition)
    for _ in range(2):
        try:
            with engine.begin() as conn:
                conn.execute(
                    insert(sync_lock).values(
                        source_system=source_system,
                        partition=partition,
                        holder=holder,
                        acquired_at=now(),
                        token=token,
                    )
                )
            return
        except IntegrityError:
            with engine.begin() as conn:
                current = conn.execute(
                    select(sync_lock.c.holder).where(*where)
                ).scalar_one_or_none()
                if current is not None and _alive(current):
                    raise _locked(engine, source_system, partition) from None
                conn.execute(delete(sync_lock).where(*where, sync_lock.c.holder == current))
    raise _locked(engine, source_system, partition)


def _alive(holder: str) -> bool:
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # cannot tell for another machine: assume it is running
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _locked(engine: Engine, source_system: str, partition: str) -> SyncLockedError:
    with engine.connect() as conn:
        running = conn.execute(
            select(sync_run.c.id, sync_run.c.started_at, sync_run.c.holder)
            .where(
                sync_run.c.source_system == source_system,
                sync_run.c.partition == partition,
                sync_run.c.status == "running",
            )
            .order_by(sync_run.c.id.desc())
            .limit(1)
        ).first()
    what = f"source {source_system!r}" + (f" partition {partition!r}" if partition else "")
    detail = (
        f" (run {running.id} started {running.started_at:%Y-%m-%d %H:%M:%S} UTC by {running.holder})"
        if running
        else ""
    )
    return SyncLockedError(
        f"{what} is already being synced{detail}; wait for that sync to finish "
        "(see `dossierhub runs`) and run again"
    )


_first_line = first_line  # the masked first line of an error, for messages


def analyze(engine: Engine) -> None:
    """Refresh the planner's statistics of the tables a sync reads as it writes (PostgreSQL
    only), so batch lookups keep using their indexes as a bulk load grows them.

    `dossier` (stored versions) and `quarantine` (the resolution UPDATE: without statistics
    it scans the source's unresolved entries instead of probing the unique key, 20x slower).
    The events table, the largest after `dossier`, is left to autovacuum: the sync never reads
    it, and the status-history query keeps its index without statistics.
    """
    if engine.dialect.name != "postgresql":
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE dossier, quarantine")


def digest(conn: Connection, *, source_system: str | None = None, history: bool = True) -> str:
    """A SHA-256 over every dossier's canonical columns and (unless `history` is false) its
    status history.

    Registry bookkeeping (ids, run ids, load times) is left out, so two registries that hold
    the same data give the same digest whatever their history or dialect. Without `history`,
    a registry that followed a source through many syncs equals one loaded once at the end.
    """
    h = hashlib.sha256()
    rows = select(*(dossier.c[name] for name in CANONICAL_COLUMNS)).order_by(
        dossier.c.source_system, dossier.c.source_id
    )
    e = dossier_event.c
    events = select(
        e.source_system, e.source_id, e.status_from, e.status_to, e.status_raw, e.changed_at
    )
    events = events.order_by(e.source_system, e.source_id, e.changed_at, e.status_to)
    if source_system is not None:
        rows = rows.where(dossier.c.source_system == source_system)
        events = events.where(e.source_system == source_system)
    for query in (rows, events) if history else (rows,):
        for row in conn.execute(query):
            h.update(repr(tuple(normal(v) for v in row)).encode())
        h.update(b"|")
    return h.hexdigest()


def normal(value: Any) -> Any:
    """A column value as every dialect gives it back: aware datetimes in UTC, bools as 0/1."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, bool):
        return int(value)
    return value
