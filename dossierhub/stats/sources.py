"""Each source against the registry: reconciliation with the source's own count, the
quarantine by source and reason, and the freshness of its syncs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select

from connectors.masking import mask_optional
from dossierhub.stats.indicators import local_midnight
from models.period import Period
from models.tables import dossier, quarantine, reconciliation, sync_run

ALL_TIME = "all"
ALL_TIME_PERIOD = Period(date(1900, 1, 1), date(2200, 1, 1))


def registry_counts(conn: Connection, *, period: Period) -> dict[str, int]:
    """Dossiers per source received in the period, as the registry holds them."""
    start, end = local_midnight(period.start), local_midnight(period.end)
    query = (
        select(dossier.c.source_system, func.count())
        .where(dossier.c.received_at >= start, dossier.c.received_at < end)
        .group_by(dossier.c.source_system)
    )
    return {source: int(n) for source, n in conn.execute(query)}


def quarantine_counts(conn: Connection) -> list[dict[str, Any]]:
    q = quarantine.c
    query = (
        select(q.source_system, q.reason, func.count().label("records"))
        .where(q.resolved.is_(False))
        .group_by(q.source_system, q.reason)
        .order_by(q.source_system, func.count().desc())
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def freshness(conn: Connection) -> list[dict[str, Any]]:
    """Per source: the last successful sync and the last run of any outcome."""
    r = sync_run.c
    last_good = (
        select(r.source_system, func.max(r.finished_at).label("last_success"))
        .where(r.status == "succeeded")
        .group_by(r.source_system)
    )
    last_run = select(r.source_system, func.max(r.id).label("last_run")).group_by(r.source_system)
    good = {row.source_system: row.last_success for row in conn.execute(last_good)}
    rows = []
    for row in conn.execute(last_run):
        run = conn.execute(
            select(r.status, r.finished_at, r.error).where(r.id == row.last_run)
        ).one()
        rows.append(
            {
                "source": row.source_system,
                "last_success": good.get(row.source_system),
                "last_status": run.status,
                "last_finished": run.finished_at,
                "last_error": run.error,
            }
        )
    return sorted(rows, key=lambda x: x["source"])


def record_reconciliation(
    conn: Connection,
    *,
    source_system: str,
    period: str,
    source_count: int | None,
    registry_count: int,
    quarantined: int,
    unplaceable: int | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    row = {
        "source_system": source_system,
        "period": period,
        "source_count": source_count,
        "registry_count": registry_count,
        "quarantined": quarantined,
        "unplaceable": unplaceable,
        "error": mask_optional(error),  # never stored unmasked
        "taken_at": datetime.now(UTC),
    }
    conn.execute(insert(reconciliation).values(**row))
    return {**row, "gap": _gap(row)}


def _gap(row: dict[str, Any]) -> int | None:
    """What the source reports that the registry cannot account for.

    Every source record is in the registry or in quarantine: the gap is the source's count
    minus the registry's minus the quarantined records placed in the period by their receipt
    date (all of them for all time). Quarantined records whose receipt date is unreadable
    (`unplaceable`) belong to no period; they stand beside a period's gap as a possible
    explanation. Snapshots taken before records were placed (unplaceable null) held an
    all-time quarantine count, which a period's gap leaves out.
    """
    if row["source_count"] is None:
        return None
    gap = int(row["source_count"]) - int(row["registry_count"])
    if row["period"] != ALL_TIME and row.get("unplaceable") is None:
        return gap
    return gap - int(row["quarantined"])


def place_quarantine(
    conn: Connection,
    *,
    source_system: str,
    period: Period | None,
    receipt_day: Callable[[dict[str, Any]], date | None],
) -> tuple[int, int]:
    """(placed, unplaceable) among the source's unresolved quarantine: how many were
    received in the period (all, for None), and how many have no readable receipt date."""
    q = quarantine.c
    query = select(q.payload).where(q.source_system == source_system, q.resolved.is_(False))
    placed = unplaceable = 0
    for (payload,) in conn.execute(query, execution_options={"yield_per": 2000}):
        day = receipt_day(payload) if isinstance(payload, dict) else None
        if day is None:
            unplaceable += 1
            placed += period is None
        elif period is None or period.start <= day < period.end:
            placed += 1
    return placed, unplaceable


def latest_reconciliation(conn: Connection, *, period: str | None = None) -> list[dict[str, Any]]:
    r = reconciliation.c
    newest = select(r.source_system, r.period, func.max(r.id).label("id")).group_by(
        r.source_system, r.period
    )
    if period:
        newest = newest.where(r.period == period)
    ids = [row.id for row in conn.execute(newest)]
    rows = conn.execute(
        select(reconciliation).where(r.id.in_(ids)).order_by(r.source_system, r.period)
    )
    out = []
    for row in rows:
        data = dict(row._mapping)
        out.append({**data, "gap": _gap(data)})
    return out


def reconcile(
    engine: Engine,
    *,
    counters: dict[str, Any],
    period_text: str = ALL_TIME,
    receipt_days: Mapping[str, Callable[[dict[str, Any]], date | None]] | None = None,
) -> list[dict[str, Any]]:
    """Ask each source how many dossiers it has for the period and record it beside ours.

    `counters` maps a source name to a callable taking a Period and returning the source's
    own count; a source that fails to answer is recorded with its error, not skipped.
    `receipt_days` maps a source name to its connector's `receipt_day`, which places each
    quarantined record in a period by its native receipt date; a source without one has
    all its quarantine unplaceable.
    """
    period = None if period_text == ALL_TIME else Period.parse(period_text)
    rows = []
    with engine.begin() as conn:
        held = registry_counts(conn, period=period or ALL_TIME_PERIOD)
        for source, count in sorted(counters.items()):
            placed, unplaceable = place_quarantine(
                conn,
                source_system=source,
                period=period,
                receipt_day=(receipt_days or {}).get(source, lambda _payload: None),
            )
            try:
                reported, error = int(count(period)), None
            except Exception as exc:  # one broken source must not hide the others
                reported, error = None, f"{type(exc).__name__}: {exc}"
            rows.append(
                record_reconciliation(
                    conn,
                    source_system=source,
                    period=period_text,
                    source_count=reported,
                    registry_count=held.get(source, 0),
                    quarantined=placed,
                    unplaceable=unplaceable,
                    error=error,
                )
            )
    return rows
