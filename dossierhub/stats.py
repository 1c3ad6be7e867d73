"""Statistics for the office: daily rollups, indicators, coverage, reconciliation, freshness.

`refresh` brings the case table and the daily rollup up to date with the registry, touching
only the cases and days changed since the last refresh. Indicator queries then read the
rollup: their cost grows with the number of groups and days asked for, not with dossiers.

Definitions (local Asia/Ho_Chi_Minh dates throughout; docs/statistics.md has each in full):

* received: cases whose first receipt falls in the period, except those refused at intake
  (status 3), which are counted apart as `refused_intake`; online rate = online ÷ all
  received (in person, online and postal alike: the national portal's convention);
  "online-capable" restricts to full/partial online procedures;
* resolved: cases in status 9 or 10 whose finishing time falls in the period; early =
  finished on a day before the due day, on time = otherwise not after the due time, late =
  after it; on-time rate = (early + on time) ÷ resolved cases that have a due time. Withdrawn
  (7) and stopped (8) cases are their own figures, on the day they ended, never resolved;
* online payment rate = paid online ÷ cases with a fee (fee-exempt cases excluded);
* full online and digitisation rates are over the received cases whose source reports the
  field (service level, digitised documents); with none they are None ("not reported"), and
  the coverage figures say what share of received cases carry the field;
* open at a moment = received before it and, by the authoritative copy's status history as
  it stood then, neither resolved, withdrawn nor stopped; overdue = open and past its due
  time at that moment. A moment after now is judged at now.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)

from connectors.masking import mask_optional
from dossierhub import linkage
from dossierhub.errors import ConfigError
from models.dossier import Status
from models.period import Period
from models.tables import (
    OVERVIEW_DIMENSIONS,
    ROLLUP_DIMENSIONS,
    ROLLUP_MEASURES,
    dossier,
    dossier_case,
    dossier_event,
    quarantine,
    reconciliation,
    stats_daily,
    stats_monthly,
    stats_monthly_overview,
    stats_state,
    sync_run,
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
_DAY_CHUNK = 31
ALL_TIME = "all"
ALL_TIME_PERIOD = Period(date(1900, 1, 1), date(2200, 1, 1))


# -- refresh ------------------------------------------------------------------------------
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


# -- indicators ---------------------------------------------------------------------------
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


# -- sources ------------------------------------------------------------------------------
def registry_counts(conn: Connection, *, period: Period) -> dict[str, int]:
    """Dossiers per source received in the period, as the registry holds them."""
    start = datetime.combine(period.start, time(), tzinfo=UTC) - linkage.LOCAL_OFFSET
    end = datetime.combine(period.end, time(), tzinfo=UTC) - linkage.LOCAL_OFFSET
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
