"""Statistics routes: indicators, portal-only against unified, open and overdue, reconciliation.

They read the rollups as last refreshed (the API never writes) and say how fresh they are
(`statistics_as_of`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from dossierhub import linkage, reads, stats
from dossierhub.api.deps import StatisticsReader, engine_of
from dossierhub.api.params import (
    PERIOD_PATTERN,
    AdminLevelFilter,
    AgencyFilter,
    ByParam,
    ChannelFilter,
    InvalidParameterError,
    LocalityFilter,
    PeriodParam,
    PortalOnly,
    ProcedureFilter,
    ServiceLevelFilter,
    SourceFilter,
    TextFilter,
    day_of,
    day_query,
    grouping,
    period_of,
)
from dossierhub.api.schemas import (
    CoverageResponse,
    CoverageRow,
    IndicatorRow,
    IndicatorsResponse,
    OpenResponse,
    OpenRow,
    PeriodInfo,
    ReconciliationResponse,
    grouped,
    reconciliation_row,
)

router = APIRouter()
AnswerT = TypeVar("AnswerT", bound=BaseModel)


def _grouped_answer(
    answer: type[AnswerT],
    row: type[BaseModel],
    *,
    info: PeriodInfo,
    by: list[str],
    rows: list[dict[str, Any]],
    statistics_as_of: datetime | None,
    **asked: Any,
) -> AnswerT:
    """A grouped statistics answer: the period, the groupings, how fresh the rollups are
    (`statistics_as_of`), one row per group, and the options the query was asked with."""
    grouped_rows = [row.model_validate(grouped(r, by)) for r in rows]
    return answer(
        **info.model_dump(), by=by, statistics_as_of=statistics_as_of, rows=grouped_rows, **asked
    )


@router.get("/indicators", response_model=IndicatorsResponse, summary="Indicators for a period")
def get_indicators(
    request: Request,
    _role: StatisticsReader,
    period: PeriodParam,
    by: ByParam = "",
    portal_only: PortalOnly = False,
    online_capable_only: Annotated[
        bool, Query(description="Only full or partial online procedures (online-capable).")
    ] = False,
    sector: TextFilter = None,
    agency: AgencyFilter = None,
    locality: LocalityFilter = None,
    admin_level: AdminLevelFilter = None,
    procedure: ProcedureFilter = None,
    source: SourceFilter = None,
    channel: ChannelFilter = None,
    service_level: ServiceLevelFilter = None,
) -> IndicatorsResponse:
    """Received, online, on-time, payment and digitisation indicators, one row per group.

    Read from the rollups as last refreshed (`statistics_as_of`); a forwarded dossier counts
    once. `portal_only` gives the figures the provincial portal alone would report.
    """
    chosen, info = period_of(period)
    names = grouping(by)
    given = {
        "sector": sector,
        "agency": agency,
        "locality": locality,
        "admin_level": admin_level,
        "procedure": procedure,
        "source": source,
        "channel": channel,
        "service_level": service_level,
    }
    filters = {name: str(value) for name, value in given.items() if value is not None}
    asked: dict[str, Any] = {
        "portal_only": portal_only,
        "online_capable_only": online_capable_only,
        "filters": filters,
    }
    with engine_of(request).connect() as conn:
        rows = stats.indicators(conn, period=chosen, by=names, **asked)
        as_of = reads.statistics_as_of(conn)
    return _grouped_answer(
        IndicatorsResponse,
        IndicatorRow,
        info=info,
        by=names,
        rows=rows,
        statistics_as_of=as_of,
        **asked,
    )


@router.get("/coverage", response_model=CoverageResponse, summary="Portal-only against unified")
def get_coverage(
    request: Request, _role: StatisticsReader, period: PeriodParam, by: ByParam = ""
) -> CoverageResponse:
    """The same indicators from the portal alone and from the unified registry, side by side."""
    chosen, info = period_of(period)
    names = grouping(by)
    with engine_of(request).connect() as conn:
        rows = stats.coverage(conn, period=chosen, by=names)
        as_of = reads.statistics_as_of(conn)
    return _grouped_answer(
        CoverageResponse, CoverageRow, info=info, by=names, rows=rows, statistics_as_of=as_of
    )


OPEN_GROUPINGS = tuple(name for name in stats.DIMENSIONS if name != "source")


@router.get("/open", response_model=OpenResponse, summary="Open and overdue at a moment")
def get_open(
    request: Request,
    _role: StatisticsReader,
    period: Annotated[
        str | None,
        Query(
            pattern=PERIOD_PATTERN,
            max_length=7,
            description="A year (2026), a quarter (2026-Q1) or a month (2026-03): figures at "
            "its end. Give this or as_of; without either, as of today.",
            examples=["2026", "2026-Q1", "2026-03"],
        ),
    ] = None,
    as_of: Annotated[
        str | None, day_query("Figures at the end of this local day (YYYY-MM-DD).")
    ] = None,
    by: Annotated[
        str,
        Query(
            max_length=200,
            description="Comma-separated groupings: " + ", ".join(OPEN_GROUPINGS) + ".",
        ),
    ] = "",
    portal_only: PortalOnly = False,
) -> OpenResponse:
    """Cases open at the end of the period (or of the day `as_of`), and how many of them
    were past their due time, as the status history stood then.

    A moment still to come is judged now. Counted at one moment, so there is no time
    grouping; a case spans sources, so there is no grouping by source either.
    """
    day = day_of("as_of", as_of)
    if period is not None and day is not None:
        raise InvalidParameterError("period", "give either period or as_of, not both")
    if period is None and day is None:  # neither: open and overdue now
        day = (datetime.now(UTC) + linkage.LOCAL_OFFSET).date()
    if day is not None:
        chosen = None
        info = PeriodInfo(period=day.isoformat(), start=day, end=day + timedelta(days=1))
    else:
        chosen, info = period_of(str(period))
    names = grouping(by, allowed=OPEN_GROUPINGS)
    judged_at = stats.open_moment(period=chosen, as_of=day)
    with engine_of(request).connect() as conn:
        rows = stats.open_at_end(
            conn, period=chosen, as_of=day, by=names, portal_only=portal_only, now=judged_at
        )
        statistics_as_of = reads.statistics_as_of(conn)
    return _grouped_answer(
        OpenResponse,
        OpenRow,
        info=info,
        by=names,
        rows=rows,
        statistics_as_of=statistics_as_of,
        as_of=day,
        judged_at=judged_at,
        portal_only=portal_only,
    )


@router.get(
    "/reconciliation", response_model=ReconciliationResponse, summary="Latest reconciliations"
)
def get_reconciliation(
    request: Request,
    _role: StatisticsReader,
    period: Annotated[
        str | None,
        Query(
            pattern=r"^all$|" + PERIOD_PATTERN,
            max_length=7,
            description="Only this period: 'all' (every record a source holds), a year, "
            "a quarter or a month. Default: every period reconciled.",
        ),
    ] = None,
) -> ReconciliationResponse:
    """Per source and period, the newest count the source reported against the registry's."""
    if period is not None and period != stats.ALL_TIME:
        period_of(period)
    with engine_of(request).connect() as conn:
        rows = stats.latest_reconciliation(conn, period=period)
    return ReconciliationResponse(period=period, rows=[reconciliation_row(r) for r in rows])
