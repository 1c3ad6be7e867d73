"""The dossier list: registry dossiers a page at a time, never with personal data."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request

from dossierhub import reads
from dossierhub.api.deps import StatisticsReader, engine_of
from dossierhub.api.params import (
    MAX_ID,
    MAX_PAGE,
    AgencyFilter,
    ChannelFilter,
    InvalidParameterError,
    SourceFilter,
    TextFilter,
    day_of,
    day_query,
    day_start,
)
from dossierhub.api.schemas import DossiersPage, DossierView
from models.dossier import Status

router = APIRouter()


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
    first = day_of("received_from", received_from)
    last = day_of("received_to", received_to)
    if first and last and first > last:
        raise InvalidParameterError("received_to", f"{last} is before received_from {first}")
    equal = {
        "source_system": source,
        "sector": sector,
        "agency_code": agency,
        "procedure_code": procedure,
        "status": status,
        "channel": channel.value if channel else None,
    }
    with engine_of(request).connect() as conn:
        rows, more = reads.dossier_page(
            conn,
            equal=equal,
            received_from=day_start(first) if first is not None else None,
            received_before=day_start(last + timedelta(days=1)) if last is not None else None,
            after=after,
            limit=limit,
        )
    views = [
        DossierView.model_validate({**row, "status_name": Status(row["status"]).name.lower()})
        for row in rows
    ]
    return DossiersPage(dossiers=views, limit=limit, next_after=views[-1].id if more else None)
