"""Request parameters: their patterns, their fix hints, and how their text is read.

A parameter the API refuses raises InvalidParameterError, answered with 422 and the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from typing import Annotated, Any

from fastapi import Query

from dossierhub import linkage, stats
from dossierhub.api.schemas import PeriodInfo
from dossierhub.errors import ConfigError
from models.dossier import AdminLevel, Channel, ServiceLevel
from models.period import Period

API_PREFIX = "/api/v1"
MAX_PAGE = 500
MAX_ID = 2**63 - 1  # BIGINT: a larger cursor could not be bound as a parameter
# Registry dates stay well inside what datetime arithmetic (local offsets) can hold.
EARLIEST_DAY = date(1900, 1, 1)
LATEST_DAY = date(2199, 12, 31)
PERIOD_PATTERN = r"^(19|20|21)\d{2}(-Q[1-4]|-(0[1-9]|1[0-2]))?$"
SOURCE_PATTERN = r"^[a-z][a-z0-9_]{1,63}$"
# Free text filters: printable, no control characters (PostgreSQL refuses NUL in text).
TEXT_PATTERN = r"^[^\x00-\x1f\x7f]+$"

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


class InvalidParameterError(Exception):
    """A request parameter the API refuses; answered with 422 and the fix."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"query parameter {parameter!r}: {message}")
        self.parameter = parameter
        self.message = message


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


def period_of(text: str) -> tuple[Period, PeriodInfo]:
    try:
        chosen = Period.parse(text)
    except ValueError:
        raise InvalidParameterError("period", f"{text!r} is not valid; {HINTS['period']}") from None
    return chosen, PeriodInfo(period=text, start=chosen.start, end=chosen.end)


def grouping(by: str, *, allowed: Sequence[str] | None = None) -> list[str]:
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


def day_of(name: str, text: str | None) -> date | None:
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


def day_start(day: date) -> datetime:
    """The UTC instant a local (Asia/Ho_Chi_Minh) day starts."""
    return datetime.combine(day, time(), tzinfo=UTC) - linkage.LOCAL_OFFSET
