"""The API's response shapes: kept apart from the canonical record and the registry tables.

No shape carries personal data: the dossier view has no applicant key, a quarantine entry no
raw payload.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from connectors.masking import mask_optional
from dossierhub import reads, stats

# An error as served: secrets masked, even in rows stored before errors were masked on write.
MaskedText = Annotated[str | None, AfterValidator(mask_optional)]
LOCAL_TIME = "The same instant in local time (Asia/Ho_Chi_Minh, +07:00), as the agencies see it."


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
    message: str = Field(description="As stored: times in it are UTC.")
    message_local: str = Field(
        description="The message with the local time (+07:00) written after each UTC time."
    )


class QuarantineEntry(ApiModel):
    id: int
    source_id: str
    reason: str
    reasons: list[QuarantineReason]
    first_seen_at: datetime
    first_seen_local: datetime = Field(description=LOCAL_TIME)
    last_seen_at: datetime
    last_seen_local: datetime = Field(description=LOCAL_TIME)
    seen_count: int
    resolved: bool
    resolved_at: datetime | None
    resolved_local: datetime | None = Field(description=LOCAL_TIME)

    @classmethod
    def of(cls, entry: reads.QuarantineEntry) -> QuarantineEntry:
        return cls(
            id=entry.id,
            source_id=entry.source_id,
            reason=entry.reason,
            reasons=[
                QuarantineReason(**r, message_local=reads.with_local_times(r["message"]))
                for r in entry.reasons
            ],
            first_seen_at=entry.first_seen_at,
            first_seen_local=reads.local_time(entry.first_seen_at),
            last_seen_at=entry.last_seen_at,
            last_seen_local=reads.local_time(entry.last_seen_at),
            seen_count=entry.seen_count,
            resolved=entry.resolved,
            resolved_at=entry.resolved_at,
            resolved_local=reads.local_time(entry.resolved_at),
        )


class QuarantinePage(ApiModel):
    source: str
    entries: list[QuarantineEntry]
    total: int = Field(
        description="Entries matching the request in all, on every page: more than listed "
        "means more pages (`next_after`) or a larger `limit`."
    )
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


def grouped(row: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """A statistics row with its grouping values gathered under `group`."""
    group = {name: (None if row[name] is None else str(row[name])) for name in names}
    return {"group": group, **{k: v for k, v in row.items() if k not in names}}


def reconciliation_row(row: dict[str, Any]) -> ReconciliationRow:
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


_MEASURES_AND_RATES = set(IndicatorRow.model_fields) - {"group"}
if set(stats.derive(dict.fromkeys(stats.MEASURES, 0))) != _MEASURES_AND_RATES:  # pragma: no cover
    raise RuntimeError("IndicatorRow must list exactly the measures and rates of stats.derive")
# The API reads only the dossier columns any reader may (never applicant_key).
if set(DossierView.model_fields) != {*reads.DOSSIER_COLUMNS, "status_name"}:  # pragma: no cover
    raise RuntimeError("DossierView must show exactly reads.DOSSIER_COLUMNS and status_name")
