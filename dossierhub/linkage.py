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
* its progress facts (status, due and finishing times, fee, digitisation) are those of the
  member changed most recently at its source: the agency that handles the dossier reports
  its progress last.

Each batch queues the link keys of the cases it touches in `stats_change`, in its own
transaction; `queued_keys` consumes that queue and `refresh_cases` rebuilds those cases,
returning the local days whose statistics they touch. A dossier whose link key changes (its
national code arrives in a later version) leaves its old case: the batch queues the old key
too, and the refresh rebuilds the old case from the members it has left, or drops it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, insert, or_, select

from models.tables import dossier, dossier_case, stats_change

PORTAL = "one_stop"
LOCAL_OFFSET = timedelta(hours=7)  # Asia/Ho_Chi_Minh, no summer time since 1975
CHUNK = 2000


def local_day(moment: datetime | None) -> date | None:
    return None if moment is None else (moment + LOCAL_OFFSET).date()


def link_key(national_dossier_code: str | None, dossier_code: str) -> str:
    return national_dossier_code or dossier_code


_KEY = func.coalesce(dossier.c.national_dossier_code, dossier.c.dossier_code)
_MEMBER_COLUMNS = (
    "source_system",
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
    old = conn.execute(
        select(dossier_case.c.received_day, dossier_case.c.finished_day).where(
            dossier_case.c.case_key.in_(keys)
        )
    )
    for received_day, finished_day in old:
        days.add(received_day)
        if finished_day is not None:
            days.add(finished_day)
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
        days.add(case["received_day"])
        if case["finished_day"] is not None:
            days.add(case["finished_day"])
    return Refresh(len(cases), days)


def build_case(key: str, rows: Iterable[Any]) -> dict[str, Any]:
    rows = list(rows)
    first = min(rows, key=lambda r: (r.received_at, r.source_system != PORTAL, r.source_system))
    latest = max(rows, key=lambda r: (r.source_updated_at, r.source_system))
    return {
        "case_key": key,
        "members": len(rows),
        "in_portal": any(r.source_system == PORTAL for r in rows),
        "first_source": first.source_system,
        "channel": first.channel,
        "service_level": first.service_level,
        "sector": next((r.sector for r in (latest, first, *rows) if r.sector), None),
        "agency_code": first.agency_code,
        "procedure_code": first.procedure_code,
        "locality_code": first.locality_code,
        "admin_level": first.admin_level,
        "status": latest.status,
        "received_at": first.received_at,
        "received_day": local_day(first.received_at),
        "due_at": latest.due_at,
        "finished_at": latest.finished_at,
        "finished_day": local_day(latest.finished_at),
        "has_fee": latest.has_fee,
        "paid_online": latest.paid_online,
        "digitised": bool(latest.docs_digitised) if latest.docs_digitised is not None else None,
        "result_digitised": latest.result_digitised,
    }
