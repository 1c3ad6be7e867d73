"""Opening the registry: the URL, the engine, its readiness, a lost connection, and the
registry-wide reads (digest, ANALYZE)."""

from __future__ import annotations

import contextlib
import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    event,
    inspect,
    select,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    NoSuchModuleError,
    SQLAlchemyError,
)

from connectors.masking import first_line
from connectors.sql import safe_url, with_bundled_driver
from dossierhub.errors import (
    ConfigError,
    RegistryConnectionLostError,
    RegistryError,
    RegistryNotMigratedError,
)
from models.tables import (
    CANONICAL_COLUMNS,
    dossier,
    dossier_event,
)

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


_first_line = first_line  # the masked first line of an error, for messages


def analyze(engine: Engine, *, lookups: bool = True) -> None:
    """Refresh the planner's statistics of the tables a sync reads as it writes (PostgreSQL
    only), so batch lookups keep using their indexes as a bulk load grows them.

    `quarantine` (the resolution UPDATE: without statistics it scans the source's unresolved
    entries instead of probing the unique key, 20x slower) and, with `lookups`, `dossier`
    (the stored-version lookup). A first load skips that lookup, so it leaves out `dossier`,
    the costly one to sample. The events table, the largest after `dossier`, is left to
    autovacuum: the sync never reads it, and the status-history query keeps its index
    without statistics.
    """
    if engine.dialect.name != "postgresql":
        return
    tables = "dossier, quarantine" if lookups else "quarantine"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f"ANALYZE {tables}")


DIGEST_CHUNK = 5000  # rows per fetch while the digest reads the registry


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
    with _transaction_block(conn):
        for query in (rows, events) if history else (rows,):
            # Streamed (a server-side cursor on PostgreSQL): a buffered result held the whole
            # registry in this process, 1 GB at a million dossiers.
            for row in conn.execute(query.execution_options(yield_per=DIGEST_CHUNK)):
                h.update(repr(tuple(normal(v) for v in row)).encode())
            h.update(b"|")
    return h.hexdigest()


def _transaction_block(conn: Connection) -> contextlib.AbstractContextManager[Any]:
    """A transaction block around the digest's reads on an autocommit PostgreSQL connection,
    where no server-side cursor can open without one; nothing elsewhere."""
    driver = conn.connection.driver_connection
    if conn.dialect.name == "postgresql" and driver is not None and driver.autocommit:
        block: contextlib.AbstractContextManager[Any] = driver.transaction()
        return block
    return contextlib.nullcontext()


def normal(value: Any) -> Any:
    """A column value as every dialect gives it back: aware datetimes in UTC, bools as 0/1."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, bool):
        return int(value)
    return value
