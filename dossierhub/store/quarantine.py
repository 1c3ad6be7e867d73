"""Quarantine: the key of a rejected record, its upsert with every reason, and its resolution
when the record later loads (or its file is re-issued)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    Connection,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from connectors.base import RawRecord, jsonable
from dossierhub.errors import (
    Reason,
)
from dossierhub.store.statements import _among, _id_chunks
from models.tables import (
    quarantine,
)


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
