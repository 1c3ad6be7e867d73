"""Rollups maintained as data lands: the case table and the daily, monthly and overview sums.

`refresh` brings the case table and the daily rollup up to date with the registry, touching
only the cases and days changed since the last refresh, and folds the days it rebuilt into the
monthly rollup and the overview; `rebuild` builds everything again. Concurrent refreshes run
one after the other.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Table, delete, func, insert, or_, select, update

from dossierhub import linkage
from models.dossier import Status
from models.tables import (
    ROLLUP_DIMENSIONS,
    ROLLUP_MEASURES,
    dossier_case,
    stats_daily,
    stats_monthly,
    stats_monthly_overview,
    stats_state,
)

MEASURES = ROLLUP_MEASURES
# Days rebuilt per statement, so the IN list stays short however many days a refresh touched.
_DAY_CHUNK = 31


@dataclass(frozen=True)
class RefreshResult:
    cases: int
    days: int


def refresh(engine: Engine, *, everything: bool = False, forget: bool = False) -> RefreshResult:
    """Bring cases and rollups up to date with the registry (only what changed).

    Consumes the change queue the batches write (see `linkage.queued_keys`), so every change
    committed before the refresh is counted whatever order the batches committed in.
    Concurrent refreshes run one after the other. `everything` rebuilds every case and day
    (after restoring or truncating the statistics tables); `forget` first empties the cases
    and rollups, in the same transaction, so readers never see them half built.
    """
    with engine.begin() as conn:
        _serialize(conn)
        if forget:
            for table in (stats_daily, stats_monthly, stats_monthly_overview, dossier_case):
                conn.execute(delete(table))
        if everything:
            linkage.queue_everything(conn)
        touched: set[date] = set()
        cases = 0
        for keys in linkage.queued_keys(conn):
            result = linkage.refresh_cases(conn, keys)
            cases += result.cases
            touched |= result.days
        if not touched and not cases:
            return RefreshResult(0, 0)
        days = sorted(touched)
        for start in range(0, len(days), _DAY_CHUNK):
            rebuild_days(conn, days[start : start + _DAY_CHUNK])
        rebuild_months(conn, sorted({day.replace(day=1) for day in days}))
        refreshed = {"refreshed_at": datetime.now(UTC)}
        done = conn.execute(
            update(stats_state).where(stats_state.c.name == "rollup").values(**refreshed)
        )
        if done.rowcount == 0:
            conn.execute(insert(stats_state).values(name="rollup", **refreshed))
    return RefreshResult(cases, len(days))


def rebuild(engine: Engine) -> RefreshResult:
    """Forget every case and rollup and build them again from the registry.

    For after a change of the counting rules (migration 0004 does the same on upgrade), or
    to prove that the incremental refresh left nothing behind.
    """
    return refresh(engine, everything=True, forget=True)


# pg_advisory_xact_lock key of the refresh: the first 8 bytes of sha256(b"dossierhub:stats").
_REFRESH_LOCK = int.from_bytes(hashlib.sha256(b"dossierhub:stats").digest()[:8], "big", signed=True)


def _serialize(conn: Connection) -> None:
    """Take the refresh's lock for the rest of the transaction.

    Two refreshes rebuilding one case or day at once would both insert its rows. PostgreSQL:
    a transaction-level advisory lock, released at commit or rollback. SQLite: the write
    lock, taken before the first read (BEGIN IMMEDIATE), so the refresh also reads the queue
    and the dossiers it rebuilds from one state no batch can change under it.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(_REFRESH_LOCK)))
    elif conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def rebuild_days(conn: Connection, days: Sequence[date]) -> None:
    """Recompute the rollup rows of these days from the cases."""
    c = dossier_case.c
    conn.execute(delete(stats_daily).where(stats_daily.c.day.in_(days)))
    totals: dict[tuple[Any, ...], dict[str, int]] = defaultdict(lambda: dict.fromkeys(MEASURES, 0))
    rows = conn.execute(
        select(dossier_case).where(
            or_(c.received_day.in_(days), c.finished_day.in_(days), c.ended_day.in_(days))
        )
    )
    wanted = set(days)
    for row in rows:
        dims = (
            row.in_portal,
            row.first_source,
            row.sector or "",
            row.agency_code,
            row.locality_code or "",
            row.admin_level or "",
            row.procedure_code,
            row.channel,
            row.service_level or "",
        )
        if row.received_day in wanted and row.status == Status.NOT_ACCEPTED:
            totals[(row.received_day, *dims)]["refused_intake"] += 1
        elif row.received_day in wanted:
            t = totals[(row.received_day, *dims)]
            t["received"] += 1
            t["service_level_reported"] += row.service_level is not None
            t["digitisation_reported"] += row.digitised is not None
            t["received_online"] += row.channel == "online"
            t["received_full_online"] += (
                row.channel == "online" and row.service_level == "full_online"
            )
            t["with_fee"] += bool(row.has_fee)
            t["paid_online"] += bool(row.has_fee and row.paid_online)
            t["digitised"] += bool(row.digitised)
        if row.finished_day in wanted:
            t = totals[(row.finished_day, *dims)]
            t["resolved"] += 1
            t["result_digitised"] += bool(row.result_digitised)
            t["result_digitisation_reported"] += row.result_digitised is not None
            if row.due_at is not None:
                if row.finished_at > row.due_at:
                    t["resolved_late"] += 1
                elif linkage.local_day(row.finished_at) < linkage.local_day(row.due_at):  # type: ignore[operator]
                    t["resolved_early"] += 1
                else:
                    t["resolved_on_time"] += 1
        if row.ended_day in wanted:
            t = totals[(row.ended_day, *dims)]
            t["withdrawn" if row.status == Status.WITHDRAWN else "stopped"] += 1
    if totals:
        conn.execute(
            insert(stats_daily),
            [
                {
                    "day": key[0],
                    "month": key[0].replace(day=1),
                    **dict(zip(ROLLUP_DIMENSIONS, key[1:], strict=True)),
                    **values,
                }
                for key, values in totals.items()
            ],
        )


def rebuild_months(conn: Connection, months: Sequence[date]) -> None:
    """Fold the daily rollup of these months into the monthly one, and that into the
    overview (one statement each way)."""
    if not months:
        return
    _fold(conn, source=stats_daily, target=stats_monthly, months=months)
    _fold(conn, source=stats_monthly, target=stats_monthly_overview, months=months)


def _fold(conn: Connection, *, source: Table, target: Table, months: Sequence[date]) -> None:
    """Replace the target's rows of these months by the source's, summed over the
    target's dimensions."""
    dimensions = [name for name in ROLLUP_DIMENSIONS if name in target.c]
    s = source.c
    conn.execute(delete(target).where(target.c.month.in_(months)))
    dims = [s[name] for name in dimensions]
    conn.execute(
        insert(target).from_select(
            ["month", *dimensions, *ROLLUP_MEASURES],
            select(s.month, *dims, *(func.sum(s[m]) for m in ROLLUP_MEASURES))
            .where(s.month.in_(months))
            .group_by(s.month, *dims),
        )
    )
