"""Linkage: one case per real dossier across systems.

A dossier received at a one-stop centre and forwarded to a sector agency exists twice in the
registry (once from the portal, once from the sector system) but is one transaction and must
be counted once. The rule:

* the **link key** of a dossier is its national dossier code (the code the national portal and
  the receiving centre know it by) when the source gives one, otherwise its own receipt code;
  receipt codes start with the receiving agency's electronic id, so two systems never share
  one by accident;
* dossiers with the same link key form one **case**;
* a case's receipt facts (channel, receiving date, agency, locality, procedure, service
  level) are those of its **first receipt** — the member received earliest, the portal's
  record winning a tie, since the centre receives before it forwards;
* its progress facts (status, due, resolution and return times) are those of its
  **authority**: the copy of the agency that handles the dossier. For a forwarded dossier that
  is the sector system's copy, whenever the portal last touched its own (among several sector
  copies, the one changed last at its source); the portal's copy only fills what the
  authority lacks (fee, payment, digitisation, due time — and a resolution time the authority
  reports resolved without). A case with only portal copies is its own authority;
* a case is **resolved** only in status 9 (resolved) or 10 (result returned), at its
  finishing time (or its return time when the source gives no finishing time); a case
  withdrawn (7) or stopped (8) **ended** on its finishing time when the source gives one,
  otherwise at its last change at the source; a case refused at intake (3) was never received.

Each batch queues the link keys of the cases it touches in `stats_change`, in its own
transaction; `queued_keys` consumes that queue and `refresh_cases` rebuilds those cases,
returning the local days whose statistics they touch. A dossier whose link key changes (its
national code arrives in a later version) leaves its old case: the batch queues the old key
too, and the refresh rebuilds the old case from the members it has left, or drops it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, or_, select

from models.dossier import Status
from models.localtime import LOCAL_OFFSET
from models.tables import dossier, dossier_case, stats_change

PORTAL = "one_stop"
RESOLVED = (int(Status.RESOLVED), int(Status.RESULT_RETURNED))
ENDED = (int(Status.WITHDRAWN), int(Status.STOPPED))
CHUNK = 2000


def local_day(moment: datetime | None) -> date | None:
    return None if moment is None else (moment + LOCAL_OFFSET).date()


def link_key(national_dossier_code: str | None, dossier_code: str) -> str:
    return national_dossier_code or dossier_code


_KEY = func.coalesce(dossier.c.national_dossier_code, dossier.c.dossier_code)
_MEMBER_COLUMNS = (
    "source_system",
    "source_id",
    "national_dossier_code",
    "dossier_code",
    "channel",
    "service_level",
    "sector",
    "agency_code",
    "procedure_code",
    "locality_code",
    "admin_level",
    "status",
    "received_at",
    "due_at",
    "finished_at",
    "returned_at",
    "has_fee",
    "paid_online",
    "docs_digitised",
    "result_digitised",
    "source_updated_at",
)


@dataclass(frozen=True)
class Refresh:
    cases: int
    days: set[date]


def queued_keys(conn: Connection) -> Iterator[list[str]]:
    """Consume the change queue: the distinct link keys queued, in chunks, each chunk deleted
    from the queue as it is read, inside the caller's transaction.

    Only what is deleted is returned, so a batch that commits while the refresh runs (or whose
    row this transaction cannot see yet) stays queued for the next refresh. The queue is read
    up to its newest row at the start, so a refresh ends however fast batches arrive.
    """
    q = stats_change.c
    last = conn.execute(select(func.max(q.id))).scalar_one()
    if last is None:
        return
    while True:
        ids = select(q.id).where(q.id <= last).order_by(q.id).limit(CHUNK).scalar_subquery()
        taken = conn.execute(delete(stats_change).where(q.id.in_(ids)).returning(q.case_key))
        keys = sorted({key for (key,) in taken})
        if not keys:
            return
        yield keys


def queue_everything(conn: Connection) -> None:
    """Queue every case, current or recorded, so the next refresh rebuilds all statistics."""
    conn.execute(insert(stats_change).from_select(["case_key"], select(_KEY).distinct()))
    conn.execute(insert(stats_change).from_select(["case_key"], select(dossier_case.c.case_key)))


def refresh_cases(conn: Connection, keys: Sequence[str]) -> Refresh:
    """Rebuild the cases with these link keys from their member dossiers."""
    days: set[date] = set()
    c = dossier_case.c
    old = conn.execute(
        select(c.received_day, c.finished_day, c.ended_day).where(c.case_key.in_(keys))
    )
    for row in old:
        days.update(day for day in row if day is not None)
    members: dict[str, list[Any]] = {}
    query = select(*(dossier.c[name] for name in _MEMBER_COLUMNS)).where(
        or_(
            dossier.c.national_dossier_code.in_(keys),
            dossier.c.national_dossier_code.is_(None) & dossier.c.dossier_code.in_(keys),
        )
    )
    for row in conn.execute(query):
        members.setdefault(link_key(row.national_dossier_code, row.dossier_code), []).append(row)
    cases = [build_case(key, rows) for key, rows in members.items()]
    conn.execute(delete(dossier_case).where(dossier_case.c.case_key.in_(keys)))
    if cases:
        conn.execute(insert(dossier_case), cases)
    for case in cases:
        days.update(
            day
            for day in (case["received_day"], case["finished_day"], case["ended_day"])
            if day is not None
        )
    return Refresh(len(cases), days)


def build_case(key: str, rows: Iterable[Any]) -> dict[str, Any]:
    rows = list(rows)
    first = min(rows, key=lambda r: (r.received_at, r.source_system != PORTAL, r.source_system))
    sector_copies = [r for r in rows if r.source_system != PORTAL] or rows
    authority = max(sector_copies, key=lambda r: (r.source_updated_at, r.source_system))
    # The other copies, most recently changed first, fill what the authority lacks.
    others = sorted(
        (r for r in rows if r is not authority),
        key=lambda r: (r.source_updated_at, r.source_system),
        reverse=True,
    )

    def filled(name: str) -> Any:
        return next(
            (getattr(r, name) for r in (authority, *others) if getattr(r, name) is not None),
            None,
        )

    status = int(authority.status)
    finished_at = None
    if status in RESOLVED:
        finished_at = authority.finished_at or authority.returned_at
        finished_at = finished_at or filled("finished_at") or filled("returned_at")
    ended_at = None
    if status in ENDED:
        ended_at = authority.finished_at or authority.source_updated_at
    docs_digitised = filled("docs_digitised")
    return {
        "case_key": key,
        "members": len(rows),
        "in_portal": any(r.source_system == PORTAL for r in rows),
        "first_source": first.source_system,
        "channel": first.channel,
        "service_level": first.service_level,
        "sector": next((r.sector for r in (authority, first, *rows) if r.sector), None),
        "agency_code": first.agency_code,
        "procedure_code": first.procedure_code,
        "locality_code": first.locality_code,
        "admin_level": first.admin_level,
        "status": status,
        "authority_source": authority.source_system,
        "authority_id": authority.source_id,
        "received_at": first.received_at,
        "received_day": local_day(first.received_at),
        "due_at": filled("due_at"),
        "finished_at": finished_at,
        "finished_day": local_day(finished_at),
        "ended_day": local_day(ended_at),
        "has_fee": filled("has_fee"),
        "paid_online": filled("paid_online"),
        "digitised": None if docs_digitised is None else bool(docs_digitised),
        "result_digitised": filled("result_digitised"),
    }
