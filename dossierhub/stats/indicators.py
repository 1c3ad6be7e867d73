"""Indicator queries over the rollups: their cost grows with the groups and days asked for,
not with dossiers; and the open and overdue cases at a moment, read from the cases."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, Table, case, func, or_, select, text

from dossierhub import linkage
from dossierhub.errors import ConfigError
from models.dossier import Status
from models.period import Period
from models.tables import (
    OVERVIEW_DIMENSIONS,
    ROLLUP_MEASURES,
    dossier_case,
    dossier_event,
    stats_daily,
    stats_monthly,
    stats_monthly_overview,
)

# Grouping names the office uses, and the rollup column behind each.
DIMENSIONS = {
    "sector": "sector",
    "agency": "agency_code",
    "locality": "locality_code",
    "admin_level": "admin_level",
    "procedure": "procedure_code",
    "source": "source_system",
    "channel": "channel",
    "service_level": "service_level",
}
TIME_GRAINS = ("day", "month", "quarter", "year")
MEASURES = ROLLUP_MEASURES
# Statuses in which a case is not open: refused, withdrawn, stopped, resolved, returned.
_NOT_OPEN = [int(s) for s in (3, 7, 8, 9, 10)]
_CAPABLE = ("full_online", "partial_online")


def parse_grouping(by: Iterable[str]) -> list[str]:
    names = [name.strip() for name in by if name.strip()]
    unknown = [n for n in names if n not in DIMENSIONS and n not in TIME_GRAINS]
    if unknown:
        known = ", ".join([*DIMENSIONS, *TIME_GRAINS])
        raise ConfigError(f"unknown grouping {', '.join(unknown)!s}; choose from: {known}")
    if len([n for n in names if n in TIME_GRAINS]) > 1:
        raise ConfigError("group by at most one of day, month, quarter, year")
    return names


def _rollup_for(monthly: bool, names: Iterable[str]) -> Table:
    """The smallest rollup that holds every dimension asked for (to group or filter by).

    Whole-month periods read a monthly rollup (about 30 times fewer rows than the daily
    one); of those, the overview when neither agency, locality nor procedure is asked for
    (a few hundred rows a month: summing 17 measures over the full monthly rollup is what
    a query costs). A daily series or a period not on month boundaries reads the daily one.
    Every rollup gives the same sums for what it holds (`rebuild_months` folds one into
    the next); an unknown name is in none, and `indicators` refuses it.
    """
    if not monthly:
        return stats_daily
    wanted = {DIMENSIONS.get(name) for name in names}
    return stats_monthly_overview if wanted <= set(OVERVIEW_DIMENSIONS) else stats_monthly


def _bucket(day: date, grain: str) -> str:
    if grain == "day":
        return day.isoformat()
    if grain == "month":
        return f"{day.year}-{day.month:02d}"
    if grain == "quarter":
        return f"{day.year}-Q{(day.month - 1) // 3 + 1}"
    return str(day.year)


def indicators(
    conn: Connection,
    *,
    period: Period,
    by: Sequence[str] = (),
    portal_only: bool = False,
    filters: dict[str, str] | None = None,
    online_capable_only: bool = False,
) -> list[dict[str, Any]]:
    """Indicator rows for the period, one per group (one overall row without grouping)."""
    names = parse_grouping(by)
    dims = [n for n in names if n in DIMENSIONS]
    grain = next((n for n in names if n in TIME_GRAINS), None)
    monthly = grain != "day" and period.start.day == 1 and period.end.day == 1
    table = _rollup_for(monthly, [*dims, *(filters or {})])
    s = table.c
    when = s.month if monthly else s.day
    columns = [s[DIMENSIONS[n]] for n in dims]
    if grain:
        columns.append(when)
    query = select(*columns, *(func.sum(s[m]).label(m) for m in MEASURES)).where(
        when >= period.start, when < period.end
    )
    if portal_only:
        query = query.where(s.in_portal.is_(True))
    if online_capable_only:
        query = query.where(s.service_level.in_(_CAPABLE))
    for name, value in (filters or {}).items():
        if name not in DIMENSIONS:
            raise ConfigError(f"unknown filter {name!r}; choose from: {', '.join(DIMENSIONS)}")
        query = query.where(s[DIMENSIONS[name]] == value)
    if columns:
        query = query.group_by(*columns)
    if conn.dialect.name == "postgresql":
        # The rollup is small, but its 17 sums push the plan's cost past jit_above_cost:
        # compiling them took longer than the query (118 ms against 80 ms without, at 5M
        # dossiers; bench/stats_bench.py). For this transaction only.
        conn.execute(text("SET LOCAL jit = off"))
    merged: dict[tuple[Any, ...], dict[str, int]] = {}
    for row in conn.execute(query):
        key = tuple(row[: len(dims)]) + ((_bucket(row[len(dims)], grain),) if grain else ())
        totals = merged.setdefault(key, dict.fromkeys(MEASURES, 0))
        for m in MEASURES:
            totals[m] += int(row._mapping[m] or 0)
    if not merged and not columns:
        merged[()] = dict.fromkeys(MEASURES, 0)
    out_names = [*dims, *([grain] if grain else [])]
    return [
        {**dict(zip(out_names, key, strict=True)), **derive(totals)}
        for key, totals in sorted(merged.items(), key=lambda kv: tuple(str(k) for k in kv[0]))
    ]


def derive(t: dict[str, int]) -> dict[str, Any]:
    """Measures plus the rates the office reports.

    A rate is None where its denominator is zero: no dossiers, or (for the rates over an
    optional field: full online, digitisation) no dossier whose source reports the field —
    "not reported", never 0.0. The coverage figures say how many received dossiers carry it.
    """
    resolved_with_due = t["resolved_early"] + t["resolved_on_time"] + t["resolved_late"]
    return {
        **t,
        "online_rate": _rate(t["received_online"], t["received"]),
        "full_online_rate": _rate(t["received_full_online"], t["service_level_reported"]),
        "on_time_rate": _rate(t["resolved_early"] + t["resolved_on_time"], resolved_with_due),
        "online_payment_rate": _rate(t["paid_online"], t["with_fee"]),
        "digitisation_rate": _rate(t["digitised"], t["digitisation_reported"]),
        "result_digitisation_rate": _rate(t["result_digitised"], t["result_digitisation_reported"]),
        "service_level_coverage": _rate(t["service_level_reported"], t["received"]),
        "digitisation_coverage": _rate(t["digitisation_reported"], t["received"]),
    }


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def local_midnight(day: date) -> datetime:
    """The UTC moment a local (Asia/Ho_Chi_Minh) day begins."""
    return datetime.combine(day, time(), tzinfo=UTC) - linkage.LOCAL_OFFSET


def open_moment(
    *, period: Period | None = None, as_of: date | None = None, now: datetime | None = None
) -> datetime:
    """The moment open/overdue are judged at: the end of the period or of the local day
    `as_of`, or now when that is still to come."""
    if (period is None) == (as_of is None):
        raise ConfigError("give either a period or an as-of date, not both")
    end_day = as_of + timedelta(days=1) if as_of is not None else period.end  # type: ignore[union-attr]
    return min(local_midnight(end_day), now or datetime.now(UTC))


def open_at_end(
    conn: Connection,
    *,
    period: Period | None = None,
    as_of: date | None = None,
    by: Sequence[str] = (),
    portal_only: bool = False,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Cases open at the end of the period (or of the local day `as_of`), and how many of
    them were overdue then.

    The state is the one that stood at that moment: a case is open when it was received
    before it, not resolved by it, and its authoritative copy's status history (the status
    events) does not show it withdrawn, stopped or resolved by then. A moment after `now` is
    judged at `now`: what is not yet past due is not overdue. Refused at intake (3) is never
    received, so never open.
    """
    moment = open_moment(period=period, as_of=as_of, now=now)
    dims = [n for n in parse_grouping(by) if n in DIMENSIONS and n != "source"]
    c = dossier_case.c
    e = dossier_event.c
    status_then = (
        select(e.status_to)
        .where(
            e.source_system == c.authority_source,
            e.source_id == c.authority_id,
            e.changed_at < moment,
        )
        .order_by(e.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    columns = [c[DIMENSIONS[n]] for n in dims]
    query = (
        select(
            *columns,
            func.count().label("open"),
            func.sum(case((c.due_at < moment, 1), else_=0)).label("overdue"),
        )
        .where(
            c.received_at < moment,
            c.status != int(Status.NOT_ACCEPTED),
            or_(c.finished_at.is_(None), c.finished_at >= moment),
            func.coalesce(status_then, int(Status.IN_PROGRESS)).not_in(_NOT_OPEN),
        )
        .group_by(*columns)
    )
    if portal_only:
        query = query.where(c.in_portal.is_(True))
    return [
        {
            **dict(zip(dims, row[: len(dims)], strict=True)),
            "open": int(row.open),
            "overdue": int(row.overdue or 0),
        }
        for row in conn.execute(query)
    ]


def coverage(conn: Connection, *, period: Period, by: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The same indicators from the portal alone and unified, side by side."""
    portal = {_key(r, by): r for r in indicators(conn, period=period, by=by, portal_only=True)}
    unified = indicators(conn, period=period, by=by)
    rows = []
    for row in unified:
        seen = portal.get(_key(row, by), {})
        rows.append(
            {
                **{n: row[n] for n in parse_grouping(by)},
                "portal_received": seen.get("received", 0),
                "unified_received": row["received"],
                "portal_online_rate": seen.get("online_rate"),
                "unified_online_rate": row["online_rate"],
                "portal_full_online_rate": seen.get("full_online_rate"),
                "unified_full_online_rate": row["full_online_rate"],
                "portal_on_time_rate": seen.get("on_time_rate"),
                "unified_on_time_rate": row["on_time_rate"],
            }
        )
    return rows


def _key(row: dict[str, Any], by: Sequence[str]) -> tuple[Any, ...]:
    return tuple(row[n] for n in parse_grouping(by))
