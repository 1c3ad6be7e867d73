"""Source routes: health of each source, its sync runs and its quarantine.

An agency token (`agency:<source>`) reads these for its own source only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from sqlalchemy import Connection

from dossierhub import reads, stats
from dossierhub.api.deps import SOURCE_RESPONSES, SourceName, caller, engine_of
from dossierhub.api.params import API_PREFIX, MAX_ID, MAX_PAGE
from dossierhub.api.schemas import (
    QuarantineCount,
    QuarantineEntry,
    QuarantinePage,
    ReconciliationRow,
    Run,
    RunsPage,
    SourceHealth,
    SourcesResponse,
    reconciliation_row,
)
from dossierhub.tokens import Role

RECENT_RUNS = 5
_RUN_COLUMNS = tuple(Run.model_fields)

router = APIRouter()


def _runs(conn: Connection, name: str, *, limit: int, before: int | None) -> list[Run]:
    return [
        Run.model_validate({k: row[k] for k in _RUN_COLUMNS})
        for row in reads.sync_runs(conn, source=name, limit=limit, before=before)
    ]


def _health(conn: Connection, names: dict[str, reads.SourceInfo]) -> list[SourceHealth]:
    fresh = {row["source"]: row for row in stats.freshness(conn)}
    reasons: dict[str, list[QuarantineCount]] = {}
    for row in stats.quarantine_counts(conn):
        reasons.setdefault(row["source_system"], []).append(
            QuarantineCount(reason=row["reason"], records=int(row["records"]))
        )
    snapshots: dict[str, list[ReconciliationRow]] = {}
    for row in stats.latest_reconciliation(conn):
        snapshots.setdefault(row["source_system"], []).append(reconciliation_row(row))
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
                recent_runs=_runs(conn, name, limit=RECENT_RUNS, before=None),
                reconciliation=snapshots.get(name, []),
            )
        )
    return out


@router.get("/sources", response_model=SourcesResponse, summary="Health of every source")
def get_sources(request: Request, role: Annotated[Role, Depends(caller)]) -> SourcesResponse:
    """Freshness, recent runs, quarantine and reconciliation per source.

    An agency token sees its own source only.
    """
    with engine_of(request).connect() as conn:
        known = reads.known_sources(conn)
        if role.kind == "agency":
            known = {n: v for n, v in known.items() if n == role.source}
        return SourcesResponse(
            statistics_as_of=reads.statistics_as_of(conn), sources=_health(conn, known)
        )


def _one_source(conn: Connection, name: str) -> dict[str, reads.SourceInfo]:
    known = reads.known_sources(conn)
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
    with engine_of(request).connect() as conn:
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
    with engine_of(request).connect() as conn:
        _one_source(conn, source)
        runs = _runs(conn, source, limit=limit + 1, before=before)
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
    """Records set aside with every reason, oldest first, and how many there are in all.

    Times are UTC with the local time (+07:00) beside them. The raw payload stays in the
    registry (`dossierhub quarantine show ID`): a native record can hold personal details a
    statistics API has no business passing on.
    """
    with engine_of(request).connect() as conn:
        _one_source(conn, source)
        listing = reads.quarantine_entries(
            conn, source=source, include_resolved=include_resolved, after=after, limit=limit
        )
    return QuarantinePage(
        source=source,
        entries=[QuarantineEntry.of(entry) for entry in listing.entries],
        total=listing.total,
        next_after=listing.next_after,
    )
