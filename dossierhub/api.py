"""The HTTP API (`/api/v1`) and the dashboard (`/`), read-only over the registry.

What the API promises:

* every `/api/v1` endpoint needs a bearer token (`dossierhub tokens create`): none or an
  invalid one gives 401 with `WWW-Authenticate: Bearer`; a token whose role does not cover
  the request gives 403 (an `agency:<source>` token reads only its own source's health, runs
  and quarantine);
* a bad parameter (an unknown period or grouping, a malformed date, a limit above the cap, a
  query parameter the endpoint does not take) gives 422 with a message naming the parameter
  and the fix, never a 500; parameters reach SQL only as bound values;
* responses are the shapes declared here, kept apart from the canonical record and the
  registry tables, and never carry personal data: the dossier list has no applicant key.

The API only reads, so it can run on the read-only database role of docs/operations.md. It
therefore does not refresh the statistics itself: the statistics DAG (after each sync) and
`dossierhub stats` do, and every statistics response says how fresh it is
(`statistics_as_of`). A refresh on read would also race when several API workers found the
rollup stale at once.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.dependencies.utils import get_flat_dependant
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import OperationalError

from connectors.masking import mask_optional, mask_text, secret_parameters
from dossierhub import linkage, stats, store, tokens
from dossierhub.errors import ConfigError
from dossierhub.settings import Settings
from dossierhub.tokens import Role
from models.dossier import AdminLevel, Channel, ServiceLevel, Status
from models.period import Period
from models.tables import dossier, quarantine, reconciliation, source, stats_state, sync_run

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
STATIC_DIR = FilePath(__file__).parent / "static"
MAX_PAGE = 500
MAX_ID = 2**63 - 1  # BIGINT: a larger cursor could not be bound as a parameter
# Registry dates stay well inside what datetime arithmetic (local offsets) can hold.
EARLIEST_DAY = date(1900, 1, 1)
LATEST_DAY = date(2199, 12, 31)
PERIOD_PATTERN = r"^(19|20|21)\d{2}(-Q[1-4]|-(0[1-9]|1[0-2]))?$"
# An error as served: secrets masked, even in rows stored before errors were masked on write.
MaskedText = Annotated[str | None, AfterValidator(mask_optional)]
SOURCE_PATTERN = r"^[a-z][a-z0-9_]{1,63}$"
# Free text filters: printable, no control characters (PostgreSQL refuses NUL in text).
TEXT_PATTERN = r"^[^\x00-\x1f\x7f]+$"
RECENT_RUNS = 5

HINTS = {
    "period": "use a year (2026), a quarter (2026-Q1) or a month (2026-03)",
    "by": "use a comma-separated list of: " + ", ".join([*stats.DIMENSIONS, *stats.TIME_GRAINS]),
    "received_from": "use a date written YYYY-MM-DD",
    "received_to": "use a date written YYYY-MM-DD",
    "as_of": "use a date written YYYY-MM-DD, or a period instead",
    "source": "use a source name: lower case letters, digits and underscores (e.g. tax)",
    "agency": "use an electronic agency id such as 000.00.06.H56",
    "procedure": "use a national procedure code such as 2.000477",
    "locality": "use an administrative unit code of 2, 3 or 5 digits",
    "sector": "use printable text without control characters",
    "limit": f"use a page size from 1 to {MAX_PAGE}",
    "after": "use the next_after value of the previous page",
    "before": "use the next_before value of the previous page",
}


# -- response shapes ----------------------------------------------------------------------
class ApiModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ParameterProblem(ApiModel):
    parameter: str = Field(description="The query or path parameter at fault.")
    message: str


class Problem(ApiModel):
    """Why a request was refused: a sentence naming what is wrong and the fix."""

    detail: str
    errors: list[ParameterProblem] = Field(default_factory=list)


class Caller(ApiModel):
    role: str = Field(description="statistics, admin or agency:<source>")
    source: str | None = Field(description="The only source an agency token may read.")
    reads_statistics: bool


GROUP_DESCRIPTION = (
    "The grouping values of this row by grouping name, e.g. "
    '{"sector": "Thuế", "month": "2026-01"}; empty without grouping. An empty string or null '
    "means the registry has no value for it."
)


class IndicatorRow(ApiModel):
    group: dict[str, str | None] = Field(description=GROUP_DESCRIPTION)
    received: int
    received_online: int
    received_full_online: int
    with_fee: int
    paid_online: int
    digitised: int
    resolved: int
    resolved_early: int
    resolved_on_time: int
    resolved_late: int
    result_digitised: int
    refused_intake: int = Field(description="Refused at intake (status 3): never received.")
    withdrawn: int = Field(description="Withdrawn (status 7), on the day they ended.")
    stopped: int = Field(description="Stopped (status 8), on the day they ended.")
    service_level_reported: int
    digitisation_reported: int
    result_digitisation_reported: int
    online_rate: float | None = Field(description="online ÷ received; null without dossiers")
    full_online_rate: float | None
    on_time_rate: float | None = Field(description="(early + on time) ÷ resolved with a due time")
    online_payment_rate: float | None = Field(description="paid online ÷ dossiers with a fee")
    digitisation_rate: float | None = Field(
        description="digitised ÷ received dossiers whose source reports digitisation; "
        "null: not reported"
    )
    result_digitisation_rate: float | None = Field(
        description="results digitised ÷ resolved dossiers whose source reports it; "
        "null: not reported"
    )
    service_level_coverage: float | None = Field(
        description="Share of received dossiers whose source reports the service level."
    )
    digitisation_coverage: float | None = Field(
        description="Share of received dossiers whose source reports digitisation."
    )


class PeriodInfo(ApiModel):
    period: str
    start: date = Field(description="First local day of the period.")
    end: date = Field(description="First local day after the period.")


class IndicatorsResponse(PeriodInfo):
    by: list[str]
    portal_only: bool
    online_capable_only: bool
    filters: dict[str, str]
    statistics_as_of: datetime | None = Field(
        description="When the statistics were last refreshed from the registry (null: never)."
    )
    rows: list[IndicatorRow]


class CoverageRow(ApiModel):
    group: dict[str, str | None] = Field(description=GROUP_DESCRIPTION)
    portal_received: int
    unified_received: int
    portal_online_rate: float | None
    unified_online_rate: float | None
    portal_full_online_rate: float | None
    unified_full_online_rate: float | None
    portal_on_time_rate: float | None
    unified_on_time_rate: float | None


class CoverageResponse(PeriodInfo):
    by: list[str]
    statistics_as_of: datetime | None
    rows: list[CoverageRow]


class OpenRow(ApiModel):
    group: dict[str, str | None] = Field(description=GROUP_DESCRIPTION)
    open: int = Field(description="Received before the period end and not finished by it.")
    overdue: int = Field(description="Open and past the due time at the period end.")


class OpenResponse(PeriodInfo):
    as_of: date | None = Field(description="The local day whose end the figures stand at.")
    judged_at: datetime = Field(
        description="The moment open and overdue were judged at: the end of the period (or "
        "of the as_of day), or the time of the request when that is still to come."
    )
    by: list[str]
    portal_only: bool
    statistics_as_of: datetime | None
    rows: list[OpenRow]


class ReconciliationRow(ApiModel):
    source: str
    period: str = Field(description="'all' or the period the counts cover.")
    source_count: int | None = Field(description="What the source reports (null: no answer).")
    registry_count: int
    quarantined: int = Field(
        description="Unresolved quarantined records received in the period (by their native "
        "receipt date; all of them for 'all')."
    )
    unplaceable: int | None = Field(
        description="Unresolved quarantined records whose receipt date cannot be read: no "
        "period holds them (null in snapshots taken before they were counted)."
    )
    gap: int | None = Field(description="What the source reports that the registry lacks.")
    error: MaskedText
    taken_at: datetime


class ReconciliationResponse(ApiModel):
    period: str | None
    rows: list[ReconciliationRow]


class Run(ApiModel):
    id: int
    partition: str
    status: str = Field(description="running, succeeded, failed or abandoned")
    full_refresh: bool
    started_at: datetime
    finished_at: datetime | None
    duration_s: float | None
    rows_read: int
    inserted: int
    updated: int
    unchanged: int
    quarantined: int
    batches: int
    error: MaskedText


class QuarantineCount(ApiModel):
    reason: str
    records: int


class SourceHealth(ApiModel):
    source: str
    connector: str | None
    description: str | None
    last_success: datetime | None = Field(description="When a sync last succeeded.")
    last_status: str | None
    last_finished: datetime | None
    last_error: MaskedText
    quarantined: int = Field(description="Unresolved quarantined records.")
    quarantine_reasons: list[QuarantineCount]
    recent_runs: list[Run]
    reconciliation: list[ReconciliationRow] = Field(
        description="The latest snapshot for each period reconciled."
    )


class SourcesResponse(ApiModel):
    statistics_as_of: datetime | None
    sources: list[SourceHealth]


class RunsPage(ApiModel):
    source: str
    runs: list[Run]
    next_before: int | None = Field(description="Pass as `before` for older runs; null: none.")


class QuarantineReason(ApiModel):
    field: str
    code: str
    message: str


class QuarantineEntry(ApiModel):
    id: int
    source_id: str
    reason: str
    reasons: list[QuarantineReason]
    first_seen_at: datetime
    last_seen_at: datetime
    seen_count: int
    resolved: bool
    resolved_at: datetime | None


class QuarantinePage(ApiModel):
    source: str
    entries: list[QuarantineEntry]
    next_after: int | None = Field(description="Pass as `after` for the next page; null: none.")


class DossierView(ApiModel):
    """A dossier as the API shows it: canonical facts, never the applicant's key."""

    id: int
    source_system: str
    source_id: str
    dossier_code: str
    national_dossier_code: str | None
    procedure_code: str
    procedure_name: str | None
    sector: str | None
    agency_code: str
    received_by: str | None
    locality_code: str | None
    locality_version: str | None
    admin_level: str | None
    channel: str
    service_level: str | None
    status: int
    status_name: str
    status_raw: str | None
    submitted_at: datetime | None
    received_at: datetime
    due_at: datetime | None
    finished_at: datetime | None
    returned_at: datetime | None
    applicant_type: str | None = Field(description="citizen, enterprise, ... (a category)")
    has_fee: bool | None
    paid_online: bool | None
    docs_submitted: int | None
    docs_digitised: int | None
    result_digitised: bool | None
    source_updated_at: datetime


class DossiersPage(ApiModel):
    dossiers: list[DossierView]
    limit: int
    next_after: int | None = Field(description="Pass as `after` for the next page; null: none.")


# The dossier columns the API reads: what the read-only role may select, never applicant_key.
DOSSIER_COLUMNS = tuple(name for name in DossierView.model_fields if name != "status_name")
_MEASURES_AND_RATES = set(IndicatorRow.model_fields) - {"group"}
if set(stats.derive(dict.fromkeys(stats.MEASURES, 0))) != _MEASURES_AND_RATES:  # pragma: no cover
    raise RuntimeError("IndicatorRow must list exactly the measures and rates of stats.derive")
if "applicant_key" in DOSSIER_COLUMNS:  # pragma: no cover - a coding error
    raise RuntimeError("the API must never read applicant keys")


# -- errors -------------------------------------------------------------------------------
class InvalidParameterError(Exception):
    """A request parameter the API refuses; answered with 422 and the fix."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"query parameter {parameter!r}: {message}")
        self.parameter = parameter
        self.message = message


def _problem(status: int, detail: str, errors: Sequence[ParameterProblem] = ()) -> JSONResponse:
    body = Problem(detail=detail, errors=list(errors))
    return JSONResponse(body.model_dump(mode="json"), status_code=status)


async def _invalid_parameter(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InvalidParameterError)
    problem = ParameterProblem(parameter=exc.parameter, message=exc.message)
    return _problem(422, str(exc), [problem])


async def _invalid_request(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = []
    details = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        where = loc[0] if len(loc) > 1 else "query"
        name = loc[-1] if loc else "request"
        shown = error.get("input")
        text = repr(shown) if isinstance(shown, str | int | float) else None
        if text is not None and len(text) > 60:
            text = text[:57] + "..."
        if error.get("type") == "missing":
            message = "is required"
        elif error.get("type") == "string_pattern_mismatch" and text is not None:
            message = f"{text} is not valid"  # the regex itself would not help a reader
        else:
            message = str(error.get("msg", "is not valid"))
            if text is not None:
                message += f" (got {text})"
        if name in HINTS:
            message += f"; {HINTS[name]}"
        problems.append(ParameterProblem(parameter=name, message=message))
        details.append(f"{where} parameter {name!r}: {message}")
    return _problem(422, "; ".join(details) or "invalid request", problems)


async def _registry_unreachable(_request: Request, exc: Exception) -> Response:
    log.error("registry unreachable: %s", store._first_line(exc))
    return _problem(503, "the registry database is not reachable; try again shortly")


# -- authentication -----------------------------------------------------------------------
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearerToken",
    description="A token from `dossierhub tokens create --role ROLE`.",
)
_CHALLENGE = 'Bearer realm="dossierhub"'
# Each route keeps the names of the query parameters it declares (worked out once).
_QUERY_NAMES = "_dossierhub_query_names"


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Role:
    """The role of the request's bearer token, or 401."""
    if credentials is None:
        raise HTTPException(
            401,
            detail="missing bearer token: send the header 'Authorization: Bearer <token>' "
            "(an administrator creates tokens with `dossierhub tokens create`)",
            headers={"WWW-Authenticate": _CHALLENGE},
        )
    role = tokens.verify(_engine(request), credentials.credentials)
    if role is None:
        raise HTTPException(
            401,
            detail="the bearer token is not valid or was revoked; ask an administrator for a new "
            "one (`dossierhub tokens create`)",
            headers={"WWW-Authenticate": f'{_CHALLENGE}, error="invalid_token"'},
        )
    _refuse_unknown_parameters(request)
    return role


def _refuse_unknown_parameters(request: Request) -> None:
    """A misspelt filter (`sectr=`) must not silently widen a statistic."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known: frozenset[str] | None = getattr(route, _QUERY_NAMES, None)
    if known is None:
        flat = get_flat_dependant(route.dependant)
        known = frozenset(p.alias for p in flat.query_params)
        setattr(route, _QUERY_NAMES, known)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        takes = ", ".join(sorted(known)) or "no query parameters"
        raise InvalidParameterError(
            unknown[0], f"is not a parameter of {route.path}; it takes: {takes}"
        )


def statistics_reader(role: Annotated[Role, Depends(caller)]) -> Role:
    """A role that may read statistics, or 403."""
    if not role.reads_statistics:
        raise HTTPException(
            403,
            detail=f"a token with role {str(role)!r} cannot read statistics; it may read only "
            f"{API_PREFIX}/sources/{role.source} and its runs and quarantine",
        )
    return role


def source_reader(
    source: Annotated[
        str, Path(pattern=SOURCE_PATTERN, description="Source name, e.g. tax.", max_length=64)
    ],
    role: Annotated[Role, Depends(caller)],
) -> str:
    """The source named in the path, when the role may read it (else 403)."""
    if not role.reads_source(source):
        raise HTTPException(
            403,
            detail=f"a token with role {str(role)!r} may read only source {role.source!r}, "
            f"not {source!r}",
        )
    return source


StatisticsReader = Annotated[Role, Depends(statistics_reader)]
SourceName = Annotated[str, Depends(source_reader)]


# -- parameters ---------------------------------------------------------------------------
PeriodParam = Annotated[
    str,
    Query(
        pattern=PERIOD_PATTERN,
        max_length=7,
        description="A year (2026), a quarter (2026-Q1) or a month (2026-03).",
        examples=["2026", "2026-Q1", "2026-03"],
    ),
]
_GROUPING_NAMES = "|".join([*stats.DIMENSIONS, *stats.TIME_GRAINS])
# Known names only, comma-separated (the one-time-grain rule is checked on top).
BY_PATTERN = rf"^ *({_GROUPING_NAMES})? *(, *({_GROUPING_NAMES}) *)*$"
ByParam = Annotated[
    str,
    Query(
        pattern=BY_PATTERN,
        max_length=200,
        description="Comma-separated groupings: "
        + ", ".join(stats.DIMENSIONS)
        + ", and at most one of "
        + ", ".join(stats.TIME_GRAINS)
        + ".",
        examples=["sector,month"],
    ),
]
TextFilter = Annotated[
    str | None,
    Query(min_length=1, max_length=255, pattern=TEXT_PATTERN, description="Exact value."),
]
SourceFilter = Annotated[
    str | None, Query(pattern=SOURCE_PATTERN, max_length=64, description="Source name, e.g. tax.")
]
AgencyFilter = Annotated[
    str | None,
    Query(
        pattern=r"^[0-9A-Z]{2,3}(\.[0-9A-Z]{2,3}){2}\.[A-Z]\d{2}$",
        max_length=64,
        description="Electronic agency id, e.g. 000.00.06.H56.",
    ),
]
LocalityFilter = Annotated[
    str | None,
    Query(pattern=r"^(\d{2}|\d{3}|\d{5})$", description="Administrative unit code."),
]
ProcedureFilter = Annotated[
    str | None,
    Query(pattern=r"^\d\.\d{6}$", description="National procedure code (mã TTHC), e.g. 2.000477."),
]
ChannelFilter = Annotated[Channel | None, Query(description="Submission channel.")]
ServiceLevelFilter = Annotated[ServiceLevel | None, Query(description="Online service level.")]
AdminLevelFilter = Annotated[AdminLevel | None, Query(description="Administrative level.")]
PortalOnly = Annotated[
    bool, Query(description="Only what the provincial portal sees (the before picture).")
]


def _period(text: str) -> tuple[Period, PeriodInfo]:
    try:
        chosen = Period.parse(text)
    except ValueError:
        raise InvalidParameterError("period", f"{text!r} is not valid; {HINTS['period']}") from None
    return chosen, PeriodInfo(period=text, start=chosen.start, end=chosen.end)


def _grouping(by: str, *, allowed: Sequence[str] | None = None) -> list[str]:
    raw = [name.strip() for name in by.split(",") if name.strip()]
    try:
        names = stats.parse_grouping(raw)
    except ConfigError as exc:
        raise InvalidParameterError("by", str(exc)) from None
    if len(set(names)) != len(names):
        raise InvalidParameterError("by", "name each grouping once")
    if allowed is not None:
        refused = [name for name in names if name not in allowed]
        if refused:
            raise InvalidParameterError(
                "by",
                f"cannot group by {', '.join(refused)} here; choose from: {', '.join(allowed)}",
            )
    return names


def day_query(description: str) -> Any:
    """A day written YYYY-MM-DD, and only so (a bare number is not read as a timestamp)."""
    return Query(
        pattern=r"^\d{4}-\d{2}-\d{2}$",
        max_length=10,
        description=description,
        json_schema_extra={"format": "date"},
    )


def _day(name: str, text: str | None) -> date | None:
    if text is None:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise InvalidParameterError(name, f"{text!r} is not a date; {HINTS[name]}") from None
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise InvalidParameterError(
            name, f"{text} is out of range; use a day from {EARLIEST_DAY} to {LATEST_DAY}"
        )
    return day


def _statistics_as_of(conn: Connection) -> datetime | None:
    value: datetime | None = conn.execute(
        select(stats_state.c.refreshed_at).where(stats_state.c.name == "rollup")
    ).scalar_one_or_none()
    return value


def _day_start(day: date) -> datetime:
    """The UTC instant a local (Asia/Ho_Chi_Minh) day starts."""
    return datetime.combine(day, time(), tzinfo=UTC) - linkage.LOCAL_OFFSET


def _split(row: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
    group = {name: (None if row[name] is None else str(row[name])) for name in names}
    return {"group": group, **{k: v for k, v in row.items() if k not in names}}


# -- statistics endpoints -----------------------------------------------------------------
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing, invalid or revoked bearer token."},
    403: {"model": Problem, "description": "The token's role does not cover this request."},
    422: {"model": Problem, "description": "A parameter is not valid; the message says why."},
}
SOURCE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **AUTH_RESPONSES,
    404: {"model": Problem, "description": "The registry knows no such source."},
}

router = APIRouter(prefix=API_PREFIX, responses=AUTH_RESPONSES)


@router.get("/me", response_model=Caller, summary="The role of the calling token")
def me(role: Annotated[Role, Depends(caller)]) -> Caller:
    """What the presented token may read."""
    return Caller(role=str(role), source=role.source, reads_statistics=role.reads_statistics)


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
    chosen, info = _period(period)
    names = _grouping(by)
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
    with _engine(request).connect() as conn:
        rows = stats.indicators(
            conn,
            period=chosen,
            by=names,
            portal_only=portal_only,
            filters=filters,
            online_capable_only=online_capable_only,
        )
        as_of = _statistics_as_of(conn)
    return IndicatorsResponse(
        **info.model_dump(),
        by=names,
        portal_only=portal_only,
        online_capable_only=online_capable_only,
        filters=filters,
        statistics_as_of=as_of,
        rows=[IndicatorRow.model_validate(_split(row, names)) for row in rows],
    )


@router.get("/coverage", response_model=CoverageResponse, summary="Portal-only against unified")
def get_coverage(
    request: Request, _role: StatisticsReader, period: PeriodParam, by: ByParam = ""
) -> CoverageResponse:
    """The same indicators from the portal alone and from the unified registry, side by side."""
    chosen, info = _period(period)
    names = _grouping(by)
    with _engine(request).connect() as conn:
        rows = stats.coverage(conn, period=chosen, by=names)
        as_of = _statistics_as_of(conn)
    return CoverageResponse(
        **info.model_dump(),
        by=names,
        statistics_as_of=as_of,
        rows=[CoverageRow.model_validate(_split(row, names)) for row in rows],
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
    day = _day("as_of", as_of)
    if period is not None and day is not None:
        raise InvalidParameterError("period", "give either period or as_of, not both")
    if period is None and day is None:  # neither: open and overdue now
        day = (datetime.now(UTC) + linkage.LOCAL_OFFSET).date()
    if day is not None:
        chosen = None
        info = PeriodInfo(period=day.isoformat(), start=day, end=day + timedelta(days=1))
    else:
        chosen, info = _period(str(period))
    names = _grouping(by, allowed=OPEN_GROUPINGS)
    judged_at = stats.open_moment(period=chosen, as_of=day)
    with _engine(request).connect() as conn:
        rows = stats.open_at_end(
            conn, period=chosen, as_of=day, by=names, portal_only=portal_only, now=judged_at
        )
        statistics_as_of = _statistics_as_of(conn)
    return OpenResponse(
        **info.model_dump(),
        as_of=day,
        judged_at=judged_at,
        by=names,
        portal_only=portal_only,
        statistics_as_of=statistics_as_of,
        rows=[OpenRow.model_validate(_split(row, names)) for row in rows],
    )


def _reconciliation_row(row: dict[str, Any]) -> ReconciliationRow:
    return ReconciliationRow(
        source=row["source_system"],
        period=row["period"],
        source_count=row["source_count"],
        registry_count=row["registry_count"],
        quarantined=row["quarantined"],
        unplaceable=row["unplaceable"],
        gap=row["gap"],
        error=row["error"],
        taken_at=row["taken_at"],
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
        _period(period)
    with _engine(request).connect() as conn:
        rows = stats.latest_reconciliation(conn, period=period)
    return ReconciliationResponse(period=period, rows=[_reconciliation_row(r) for r in rows])


# -- sources ------------------------------------------------------------------------------
_RUN_COLUMNS = tuple(Run.model_fields)


def _known_sources(conn: Connection) -> dict[str, tuple[str | None, str | None]]:
    """Every source the registry has heard of, with its connector and description."""
    known: dict[str, tuple[str | None, str | None]] = {
        row.name: (row.connector, row.description)
        for row in conn.execute(select(source.c.name, source.c.connector, source.c.description))
    }
    for table in (sync_run, quarantine, reconciliation):
        for (name,) in conn.execute(select(table.c.source_system).distinct()):
            known.setdefault(name, (None, None))
    return known


def _recent_runs(conn: Connection, name: str, *, limit: int, before: int | None) -> list[Run]:
    query = (
        select(*(sync_run.c[c] for c in _RUN_COLUMNS))
        .where(sync_run.c.source_system == name)
        .order_by(sync_run.c.id.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(sync_run.c.id < before)
    return [Run.model_validate(dict(row._mapping)) for row in conn.execute(query)]


def _health(
    conn: Connection, names: dict[str, tuple[str | None, str | None]]
) -> list[SourceHealth]:
    fresh = {row["source"]: row for row in stats.freshness(conn)}
    reasons: dict[str, list[QuarantineCount]] = {}
    for row in stats.quarantine_counts(conn):
        reasons.setdefault(row["source_system"], []).append(
            QuarantineCount(reason=row["reason"], records=int(row["records"]))
        )
    snapshots: dict[str, list[ReconciliationRow]] = {}
    for row in stats.latest_reconciliation(conn):
        snapshots.setdefault(row["source_system"], []).append(_reconciliation_row(row))
    out = []
    for name in sorted(names):
        connector, description = names[name]
        seen = fresh.get(name, {})
        out.append(
            SourceHealth(
                source=name,
                connector=connector,
                description=description,
                last_success=seen.get("last_success"),
                last_status=seen.get("last_status"),
                last_finished=seen.get("last_finished"),
                last_error=seen.get("last_error"),
                quarantined=sum(r.records for r in reasons.get(name, [])),
                quarantine_reasons=reasons.get(name, []),
                recent_runs=_recent_runs(conn, name, limit=RECENT_RUNS, before=None),
                reconciliation=snapshots.get(name, []),
            )
        )
    return out


@router.get("/sources", response_model=SourcesResponse, summary="Health of every source")
def get_sources(request: Request, role: Annotated[Role, Depends(caller)]) -> SourcesResponse:
    """Freshness, recent runs, quarantine and reconciliation per source.

    An agency token sees its own source only.
    """
    with _engine(request).connect() as conn:
        known = _known_sources(conn)
        if role.kind == "agency":
            known = {n: v for n, v in known.items() if n == role.source}
        return SourcesResponse(
            statistics_as_of=_statistics_as_of(conn), sources=_health(conn, known)
        )


def _one_source(conn: Connection, name: str) -> dict[str, tuple[str | None, str | None]]:
    known = _known_sources(conn)
    if name not in known:
        raise HTTPException(
            404,
            detail=f"the registry knows no source {name!r}; see {API_PREFIX}/sources for those it "
            "knows",
        )
    return {name: known[name]}


@router.get(
    "/sources/{source}",
    response_model=SourceHealth,
    responses=SOURCE_RESPONSES,
    summary="Health of one source",
)
def get_source(request: Request, source: SourceName) -> SourceHealth:
    """Freshness, recent runs, quarantine and reconciliation of one source."""
    with _engine(request).connect() as conn:
        [health] = _health(conn, _one_source(conn, source))
    return health


@router.get(
    "/sources/{source}/runs",
    response_model=RunsPage,
    responses=SOURCE_RESPONSES,
    summary="Sync runs of one source",
)
def get_runs(
    request: Request,
    source: SourceName,
    limit: Annotated[int, Query(ge=1, le=200, description="Runs per page (newest first).")] = 20,
    before: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only runs older than this run id.")
    ] = None,
) -> RunsPage:
    """Sync runs newest first, with their counts and errors, a page at a time."""
    with _engine(request).connect() as conn:
        _one_source(conn, source)
        runs = _recent_runs(conn, source, limit=limit + 1, before=before)
    more = len(runs) > limit
    runs = runs[:limit]
    return RunsPage(source=source, runs=runs, next_before=runs[-1].id if more else None)


@router.get(
    "/sources/{source}/quarantine",
    response_model=QuarantinePage,
    responses=SOURCE_RESPONSES,
    summary="Quarantined records of one source",
)
def get_quarantine(
    request: Request,
    source: SourceName,
    include_resolved: Annotated[
        bool, Query(description="Also list entries resolved by a later load.")
    ] = False,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Entries per page.")] = 50,
    after: Annotated[
        int, Query(ge=0, le=MAX_ID, description="Only entries after this entry id.")
    ] = 0,
) -> QuarantinePage:
    """Records set aside with every reason, oldest first.

    The raw payload stays in the registry (`dossierhub quarantine show ID`): a native record
    can hold personal details a statistics API has no business passing on.
    """
    q = quarantine.c
    query = (
        select(
            q.id,
            q.source_id,
            q.reason,
            q.reasons,
            q.first_seen_at,
            q.last_seen_at,
            q.seen_count,
            q.resolved,
            q.resolved_at,
        )
        .where(q.source_system == source, q.id > after)
        .order_by(q.id)
        .limit(limit + 1)
    )
    if not include_resolved:
        query = query.where(q.resolved.is_(False))
    with _engine(request).connect() as conn:
        _one_source(conn, source)
        rows = [dict(row._mapping) for row in conn.execute(query)]
    entries = [
        QuarantineEntry.model_validate(
            {
                **row,
                "reasons": [
                    QuarantineReason(
                        field=str(r.get("field", "")),
                        code=str(r.get("code", "")),
                        message=str(r.get("message", "")),
                    )
                    for r in (row["reasons"] or [])
                    if isinstance(r, dict)
                ],
            }
        )
        for row in rows[:limit]
    ]
    more = len(rows) > limit
    return QuarantinePage(
        source=source, entries=entries, next_after=entries[-1].id if more else None
    )


# -- dossiers -----------------------------------------------------------------------------
@router.get("/dossiers", response_model=DossiersPage, summary="Dossiers, a page at a time")
def get_dossiers(
    request: Request,
    _role: StatisticsReader,
    source: SourceFilter = None,
    sector: TextFilter = None,
    agency: AgencyFilter = None,
    procedure: Annotated[
        str | None,
        Query(pattern=r"^\d\.\d{6}(\.[0-9A-Z.]+)?$", max_length=32, description="Procedure code."),
    ] = None,
    status: Annotated[
        int | None, Query(ge=1, le=10, description="Status code 1-10 (9 resolved, ...).")
    ] = None,
    channel: ChannelFilter = None,
    received_from: Annotated[
        str | None, day_query("First local receipt day (inclusive), YYYY-MM-DD.")
    ] = None,
    received_to: Annotated[
        str | None, day_query("Last local receipt day (inclusive), YYYY-MM-DD.")
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_PAGE, description=f"Dossiers per page, at most {MAX_PAGE}.")
    ] = 100,
    after: Annotated[
        int, Query(ge=0, le=MAX_ID, description="Keyset cursor: `next_after` of the last page.")
    ] = 0,
) -> DossiersPage:
    """Registry dossiers in id order, filtered; personal data (applicant keys) never included."""
    first = _day("received_from", received_from)
    last = _day("received_to", received_to)
    if first and last and first > last:
        raise InvalidParameterError("received_to", f"{last} is before received_from {first}")
    d = dossier.c
    query = (
        select(*(d[name] for name in DOSSIER_COLUMNS))
        .where(d.id > after)
        .order_by(d.id)
        .limit(limit + 1)
    )
    exact = {
        "source_system": source,
        "sector": sector,
        "agency_code": agency,
        "procedure_code": procedure,
        "status": status,
        "channel": channel.value if channel else None,
    }
    for column, value in exact.items():
        if value is not None:
            query = query.where(d[column] == value)
    if first is not None:
        query = query.where(d.received_at >= _day_start(first))
    if last is not None:
        query = query.where(d.received_at < _day_start(last + timedelta(days=1)))
    with _engine(request).connect() as conn:
        rows = [dict(row._mapping) for row in conn.execute(query)]
    views = [
        DossierView.model_validate({**row, "status_name": Status(row["status"]).name.lower()})
        for row in rows[:limit]
    ]
    more = len(rows) > limit
    return DossiersPage(dossiers=views, limit=limit, next_after=views[-1].id if more else None)


# -- the app ------------------------------------------------------------------------------
# The dashboard loads only its own files: no CDN, no inline script. Plotly injects <style>
# elements, hence 'unsafe-inline' for styles only. Its forms are handled by its script and
# never submitted (form-action 'none'): a token typed before the script loads goes nowhere.
DASHBOARD_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def plotly_js() -> FilePath | None:
    """The plotly.min.js shipped in the plotly package's wheel, if installed."""
    spec = importlib.util.find_spec("plotly")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = FilePath(folder) / "package_data" / "plotly.min.js"
        if candidate.is_file():
            return candidate
    return None


async def _refuse_credentials_in_url(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """400 for a token, password or key in the query string: URLs end up in logs and history."""
    found = secret_parameters(list(request.query_params))
    if found:
        return _problem(
            400,
            f"credentials must not be sent in the URL (query parameter {found[0]!r}): send the "
            "token in the header 'Authorization: Bearer <token>'; treat a token sent this way "
            "as exposed and have it revoked (`dossierhub tokens revoke`)",
        )
    return await call_next(request)


class MaskedLog(logging.Filter):
    """Masks secrets in a log record's message and arguments (e.g. `?token=` in access logs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask_text(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(mask_text(a) if isinstance(a, str) else a for a in record.args)
        return True


def mask_server_logs() -> None:
    """Mask secrets in the web server's access and error logs (call after logging is set up)."""
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, MaskedLog) for f in logger.filters):
            logger.addFilter(MaskedLog())


async def _security_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    response = await call_next(request)
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Frame-Options", "DENY")
    if request.url.path.startswith(API_PREFIX):
        headers.setdefault("Cache-Control", "no-store")
    if headers.get("content-type", "").startswith("text/html"):
        headers.setdefault("Content-Security-Policy", DASHBOARD_CSP)
    return response


def create_app(engine: Engine) -> FastAPI:
    """The API under /api/v1 (OpenAPI at /api/v1/openapi.json) and the dashboard at /.

    The engine may use a read-only database role: the app never writes.
    """
    app = FastAPI(
        title="DossierHub API",
        version="1",
        summary="Unified registry statistics for the provincial statistics office.",
        description=(__doc__ or "").split("\n\n", 1)[0],
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # Swagger UI would load its scripts from a CDN
        redoc_url=None,
    )
    app.state.engine = engine
    app.include_router(router)
    app.add_exception_handler(InvalidParameterError, _invalid_parameter)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(OperationalError, _registry_unreachable)
    app.middleware("http")(_refuse_credentials_in_url)
    app.middleware("http")(_security_headers)  # outermost: the 400 above gets the headers too
    app.add_middleware(GZipMiddleware, minimum_size=1024)

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly() -> Response:
        found = plotly_js()
        if found is None:
            return _problem(404, "plotly is not installed; install the `plotly` package")
        return FileResponse(
            found, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"}
        )

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def app_from_settings(settings: Settings | None = None) -> FastAPI:
    """The app on the registry named by DOSSIERHUB_REGISTRY_URL (`uvicorn --factory` target).

    Raises RegistryError naming the fix when the registry is unreachable or not migrated.
    """
    settings = settings or Settings()
    engine = store.open_registry(settings.registry_url)
    store.ensure_ready(engine)
    return create_app(engine)
