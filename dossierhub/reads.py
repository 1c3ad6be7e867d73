"""Registry reads shared by the API, the CLI and the dashboard: one home for each query.

Each function takes a connection and keyword-only filters, binds every value as a parameter
and returns plain typed values; callers shape them for their audience (JSON models, tables).
Statistics queries live in `dossierhub.stats`; this module holds the rest: sources, sync
runs, quarantine entries and dossier pages.

Times are stored and returned in UTC. The agencies' rows, and the people reading them, are on
local time (Asia/Ho_Chi_Minh, UTC+7), so `local_time` and `with_local_times` give the local
time to show beside the UTC one; the stored reason text is never changed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timezone
from typing import Any, NamedTuple

from sqlalchemy import Connection, Select, func, select

from connectors.base import RawRecord
from connectors.masking import mask_optional
from dossierhub.linkage import LOCAL_OFFSET
from models.tables import dossier, quarantine, reconciliation, source, stats_state, sync_run

LOCAL = timezone(LOCAL_OFFSET, "+07")  # Asia/Ho_Chi_Minh: no summer time since 1975

# The dossier columns a reader may see: never applicant_key (the read-only role of
# docs/operations.md cannot even select it).
DOSSIER_COLUMNS = (
    "id",
    "source_system",
    "source_id",
    "dossier_code",
    "national_dossier_code",
    "procedure_code",
    "procedure_name",
    "sector",
    "agency_code",
    "received_by",
    "locality_code",
    "locality_version",
    "admin_level",
    "channel",
    "service_level",
    "status",
    "status_raw",
    "submitted_at",
    "received_at",
    "due_at",
    "finished_at",
    "returned_at",
    "applicant_type",
    "has_fee",
    "paid_online",
    "docs_submitted",
    "docs_digitised",
    "result_digitised",
    "source_updated_at",
)
if "applicant_key" in DOSSIER_COLUMNS:  # pragma: no cover - a coding error
    raise RuntimeError("readers must never read applicant keys")


# -- local time ---------------------------------------------------------------------------
def local_time(moment: datetime | None) -> datetime | None:
    """The same instant on the agencies' clock (UTC+7); None stays None."""
    if moment is None:
        return None
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(LOCAL)


# An ISO-8601 UTC time as reason messages write it: 2026-03-01T03:00:00+00:00 (or a space
# for the T, or Z for the offset).
_UTC_TIME = re.compile(
    r"\b(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)(?:\+00:00|Z)(?![\d:])"
)


def with_local_times(message: str) -> str:
    """The message with the local time written after each UTC time it contains.

    `finished_at 2026-03-01T03:00:00+00:00 is before ...` reads
    `finished_at 2026-03-01T03:00:00+00:00 (2026-03-01 10:00:00+07:00) is before ...`.
    """

    def beside(match: re.Match[str]) -> str:
        try:
            moment = datetime.fromisoformat(f"{match.group(1)}T{match.group(2)}+00:00")
        except ValueError:
            return match.group(0)  # shaped like a time but not one (hour 25): leave it
        shown = moment.astimezone(LOCAL).isoformat(sep=" ", timespec="seconds")
        return f"{match.group(0)} ({shown})"

    return _UTC_TIME.sub(beside, message)


# -- sources and runs ---------------------------------------------------------------------
class SourceInfo(NamedTuple):
    connector: str | None
    description: str | None


def known_sources(conn: Connection) -> dict[str, SourceInfo]:
    """Every source the registry has heard of (registered, synced, quarantined or
    reconciled), with its connector and description when registered."""
    known = {
        row.name: SourceInfo(row.connector, row.description)
        for row in conn.execute(select(source.c.name, source.c.connector, source.c.description))
    }
    for table in (sync_run, quarantine, reconciliation):
        for (name,) in conn.execute(select(table.c.source_system).distinct()):
            known.setdefault(name, SourceInfo(None, None))
    return known


def sync_runs(
    conn: Connection, *, source: str | None = None, limit: int = 20, before: int | None = None
) -> list[dict[str, Any]]:
    """Sync runs newest first, every column, at most `limit`, older than run `before`.

    Errors are masked again as read: a run stored before errors were masked may hold a secret.
    """
    query = select(sync_run).order_by(sync_run.c.id.desc()).limit(limit)
    if source is not None:
        query = query.where(sync_run.c.source_system == source)
    if before is not None:
        query = query.where(sync_run.c.id < before)
    return [{**row._mapping, "error": mask_optional(row.error)} for row in conn.execute(query)]


def statistics_as_of(conn: Connection) -> datetime | None:
    """When the statistics were last refreshed from the registry (None: never)."""
    value: datetime | None = conn.execute(
        select(stats_state.c.refreshed_at).where(stats_state.c.name == "rollup")
    ).scalar_one_or_none()
    return value


def source_balance(conn: Connection, *, source: str) -> tuple[int, int]:
    """(dossiers held, unresolved quarantine entries) of one source: together they should
    account for every record the source holds."""
    held = conn.execute(select(func.count()).where(dossier.c.source_system == source)).scalar_one()
    set_aside = conn.execute(
        select(func.count()).where(
            quarantine.c.source_system == source, quarantine.c.resolved.is_(False)
        )
    ).scalar_one()
    return int(held), int(set_aside)


# -- quarantine ---------------------------------------------------------------------------
@dataclass(frozen=True)
class QuarantineEntry:
    """A quarantined record without its raw payload (which can hold personal details)."""

    id: int
    source_system: str
    source_id: str
    reason: str  # the first reason's key, e.g. received_at:invalid_date
    reasons: list[dict[str, str]]  # every reason: field, code, message (as stored, in UTC)
    first_seen_at: datetime
    last_seen_at: datetime
    seen_count: int
    resolved: bool
    resolved_at: datetime | None


@dataclass(frozen=True)
class QuarantineListing:
    entries: list[QuarantineEntry]
    total: int  # entries matching the filters in all, on every page
    more: bool  # entries follow the last one listed

    @property
    def next_after(self) -> int | None:
        """The `after` that lists the next entries; None when none follow."""
        return self.entries[-1].id if self.more and self.entries else None


_ENTRY_COLUMNS = tuple(QuarantineEntry.__dataclass_fields__)


def _reasons(stored: Any) -> list[dict[str, str]]:
    return [
        {
            "field": str(r.get("field", "")),
            "code": str(r.get("code", "")),
            "message": str(r.get("message", "")),
        }
        for r in (stored or [])
        if isinstance(r, Mapping)
    ]


def _quarantine_filter(
    query: Select[Any], *, source: str | None, include_resolved: bool
) -> Select[Any]:
    if source is not None:
        query = query.where(quarantine.c.source_system == source)
    if not include_resolved:
        query = query.where(quarantine.c.resolved.is_(False))
    return query


def quarantine_entries(
    conn: Connection,
    *,
    source: str | None = None,
    include_resolved: bool = False,
    after: int = 0,
    limit: int = 50,
) -> QuarantineListing:
    """Quarantine entries oldest first, a page of at most `limit` after entry id `after`,
    with how many match in all (so a reader knows when a page is not everything)."""
    q = quarantine.c
    page = _quarantine_filter(
        select(*(q[name] for name in _ENTRY_COLUMNS)).where(q.id > after),
        source=source,
        include_resolved=include_resolved,
    )
    rows = conn.execute(page.order_by(q.id).limit(limit + 1)).all()
    total = conn.execute(
        _quarantine_filter(
            select(func.count()).select_from(quarantine),
            source=source,
            include_resolved=include_resolved,
        )
    ).scalar_one()
    entries = [
        QuarantineEntry(**{**row._mapping, "reasons": _reasons(row.reasons)})
        for row in rows[:limit]
    ]
    return QuarantineListing(entries=entries, total=int(total), more=len(rows) > limit)


def quarantined_records(
    conn: Connection, *, source: str, ids: Sequence[int] | None = None
) -> list[RawRecord]:
    """The held records of a source as they were delivered (payloads redacted at intake),
    oldest entry first; only entries `ids` when given (for a quarantine retry)."""
    q = quarantine.c
    query = _quarantine_filter(
        select(q.source_id, q.payload), source=source, include_resolved=False
    )
    if ids:
        query = query.where(q.id.in_(ids))
    rows = conn.execute(query.order_by(q.id))
    return [RawRecord(row.source_id, dict(row.payload)) for row in rows]


def quarantine_record(conn: Connection, *, entry_id: int) -> dict[str, Any] | None:
    """One quarantine entry with its raw payload (for the data engineer's CLI only), or None."""
    row = conn.execute(select(quarantine).where(quarantine.c.id == entry_id)).first()
    return None if row is None else dict(row._mapping)


# -- dossiers -----------------------------------------------------------------------------
def dossier_page(
    conn: Connection,
    *,
    equal: Mapping[str, Any] | None = None,
    received_from: datetime | None = None,
    received_before: datetime | None = None,
    after: int = 0,
    limit: int = 100,
) -> tuple[list[dict[str, Any]], bool]:
    """Dossiers in id order after id `after`, at most `limit`, and whether more follow.

    `equal` maps DOSSIER_COLUMNS names to the value they must hold (None: no filter); the
    receipt window is half-open, [received_from, received_before).
    """
    d = dossier.c
    query = select(*(d[name] for name in DOSSIER_COLUMNS)).where(d.id > after)
    for column, value in (equal or {}).items():
        if column not in DOSSIER_COLUMNS:
            raise ValueError(f"cannot filter dossiers by {column!r}")
        if value is not None:
            query = query.where(d[column] == value)
    if received_from is not None:
        query = query.where(d.received_at >= received_from)
    if received_before is not None:
        query = query.where(d.received_at < received_before)
    rows = [dict(row._mapping) for row in conn.execute(query.order_by(d.id).limit(limit + 1))]
    return rows[:limit], len(rows) > limit
