"""One sync per source (and partition) at a time: the lock, its holder and its fencing token."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import (
    Connection,
    Engine,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import (
    IntegrityError,
    SQLAlchemyError,
)

from dossierhub.errors import (
    SyncLockedError,
    SyncLockLostError,
)
from dossierhub.store.registry import now
from models.tables import (
    sync_lock,
    sync_run,
)


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
