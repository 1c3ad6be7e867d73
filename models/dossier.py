"""The canonical dossier record: the contract every connector produces.

A `DossierRecord` is one dossier (hồ sơ) as one source system knows it, in the shared vocabulary
of the unified registry. Constructing one enforces the rules the registry relies on:

* datetimes are timezone-aware and held in UTC; a naive source time is read as Asia/Ho_Chi_Minh;
* a dossier is not resolved, returned or due before it was received;
* codes are well formed (procedure, agency, locality, dossier codes);
* text is NFC-normalised Vietnamese, and a blank string means "absent" (None);
* `applicant_key` is a keyed hash (64 hex digits), so a clear identifier cannot slip through.

A record that breaks a rule raises `pydantic.ValidationError`; connectors turn that into a
`RecordRejected` carrying every reason, and the engine quarantines it.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, date, datetime, timedelta
from enum import IntEnum, StrEnum
from typing import Annotated, Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.localtime import LOCAL_OFFSET

# Decision 19/2025 replaced the province/district/commune table with a two-level one.
TWO_LEVEL_FROM = date(2025, 7, 1)


class Channel(StrEnum):
    """How the dossier was submitted (the KenhThucHien codes 1, 2, 3)."""

    IN_PERSON = "in_person"
    ONLINE = "online"
    POSTAL = "postal"

    @classmethod
    def from_code(cls, code: int) -> Channel:
        return _CHANNEL_CODES[code]


_CHANNEL_CODES = {1: Channel.IN_PERSON, 2: Channel.ONLINE, 3: Channel.POSTAL}


class ServiceLevel(StrEnum):
    """Decree 42/2022 levels of online public service."""

    FULL_ONLINE = "full_online"  # toàn trình, legacy level 4
    PARTIAL_ONLINE = "partial_online"  # một phần, legacy level 3
    NOT_ONLINE = "not_online"  # legacy level 2


class Status(IntEnum):
    """The ten status codes shared by the national and provincial systems."""

    REGISTERED = 1
    ACCEPTED = 2
    NOT_ACCEPTED = 3
    IN_PROGRESS = 4
    SUPPLEMENT_REQUESTED = 5
    AWAITING_FINANCIAL_OBLIGATION = 6
    WITHDRAWN = 7
    STOPPED = 8
    RESOLVED = 9
    RESULT_RETURNED = 10


class ApplicantType(StrEnum):
    CITIZEN = "citizen"
    ENTERPRISE = "enterprise"
    STATE_BODY = "state_body"
    OTHER_ORGANISATION = "other_organisation"

    @classmethod
    def from_code(cls, code: int) -> ApplicantType:
        return _APPLICANT_CODES[code]


_APPLICANT_CODES = {
    1: ApplicantType.CITIZEN,
    2: ApplicantType.ENTERPRISE,
    3: ApplicantType.STATE_BODY,
    4: ApplicantType.OTHER_ORGANISATION,
}


class AdminLevel(StrEnum):
    PROVINCE = "province"
    DISTRICT = "district"
    COMMUNE = "commune"


class LocalityVersion(StrEnum):
    """Which administrative-unit code table a locality code belongs to."""

    THREE_LEVEL = "three_level"  # province/district/commune, before 2025-07-01
    TWO_LEVEL = "two_level"  # province/commune, Decision 19/2025, from 2025-07-01


# Code rules are patterns checked by pydantic-core (in Rust: this runs on every record).
# National procedure code (mã TTHC), e.g. 2.000477; a province-localised form such as
# 2.000477.000.00.00.H56 is accepted and reduced to the national one.
ProcedureCode = Annotated[str, Field(pattern=r"^\d\.\d{6}(\.[0-9A-Z.]+)?$", max_length=32)]
# Decision 20/2020/QĐ-TTg electronic agency id: dot-separated groups ending in a
# letter+two-digit group naming the province, e.g. 000.00.06.H56.
AgencyCode = Annotated[str, Field(pattern=r"^[0-9A-Z]{2,3}(\.[0-9A-Z]{2,3}){2}\.[A-Z]\d{2}$")]
# Receipt codes differ between systems ({agency}-{yyMMdd}-{seq}, 03706/2026/07906, ...):
# only a printable code without spaces is required.
DossierCode = Annotated[str, Field(pattern=r"^[0-9A-Za-z][0-9A-Za-z.\-/_]{2,63}$")]
# Administrative unit codes: province 2 digits, district 3, commune 5.
LocalityCode = Annotated[str, Field(pattern=r"^(\d{2}|\d{3}|\d{5})$")]
# No online public service dossier predates this; anything earlier is a broken date.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_LEVEL_BY_LENGTH = {2: AdminLevel.PROVINCE, 3: AdminLevel.DISTRICT, 5: AdminLevel.COMMUNE}

_SPACE = frozenset(" \t\r\n\v\f\u00a0")

# Free text (procedure names, sectors, native statuses) is Unicode (NFC) Vietnamese: no control
# characters (PostgreSQL refuses NUL), none of the Latin-1 symbols U+00A1-U+00BF or C1 controls
# that betray legacy-encoded text (TCVN3) or UTF-8 mis-decoded as Windows-1252
# ("Ä\x90Äƒng kÃ½"), nor U+FFFD; and none of the Latin-1 letters Vietnamese never uses
# (Ä Ç Ñ Ö ß ü ...), of which VNI text read as Latin-1 is full ("Ñaêng kyù" for "Đăng ký").
_NOT_VIETNAMESE = r"\xc4-\xc7\xcb\xce-\xd1\xd6-\xd8\xdb\xdc\xde-\xdf\xe4-\xe7\xeb\xee-\xf1\xf6-\xf8\xfb\xfc\xfe\xff"
_CLEAN_TEXT = rf"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\xa1-\xbf\ufffd{_NOT_VIETNAMESE}]*$"
Code = Annotated[str, Field(max_length=64)]


def may_change(value: str) -> bool:
    """Whether `clean_value` could change a string: empty, space-edged or not ASCII."""
    return not value or value[0] in _SPACE or value[-1] in _SPACE or not value.isascii()


def clean_value(value: str) -> str | None:
    """A text value as the registry keeps it: trimmed, blank as None, NFC-normalised.

    The one copy of the cleaning: the model applies it to every string it is given, and the
    columnar sync (`models.frame`) to each distinct value of a column that `may_change`.
    """
    cleaned = value.strip()
    if not cleaned:
        return None
    if not cleaned.isascii():
        return unicodedata.normalize("NFC", cleaned)
    return cleaned


Text = Annotated[str, Field(max_length=2000, pattern=_CLEAN_TEXT)]


class DossierRecord(BaseModel):
    """One dossier as one source system reports it, in canonical form."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)

    DATETIME_FIELDS: ClassVar[tuple[str, ...]] = (
        "submitted_at",
        "received_at",
        "due_at",
        "finished_at",
        "returned_at",
        "source_updated_at",
    )

    source_system: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,63}$")]
    source_id: Annotated[str, Field(min_length=1, max_length=128)]
    dossier_code: DossierCode
    national_dossier_code: DossierCode | None = None
    procedure_code: ProcedureCode
    procedure_name: Text | None = None
    sector: Annotated[str, Field(max_length=255, pattern=_CLEAN_TEXT)] | None = None
    agency_code: AgencyCode
    received_by: AgencyCode | None = None
    locality_code: LocalityCode | None = None
    locality_version: LocalityVersion | None = None
    admin_level: AdminLevel | None = None
    channel: Channel
    service_level: ServiceLevel | None = None
    status: Status
    status_raw: Annotated[str, Field(max_length=64, pattern=_CLEAN_TEXT)] | None = None
    submitted_at: datetime | None = None
    received_at: datetime
    due_at: datetime | None = None
    finished_at: datetime | None = None
    returned_at: datetime | None = None
    applicant_type: ApplicantType | None = None
    applicant_key: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    has_fee: bool | None = None
    paid_online: bool | None = None
    docs_submitted: Annotated[int, Field(ge=0, le=10_000)] | None = None
    docs_digitised: Annotated[int, Field(ge=0, le=10_000)] | None = None
    result_digitised: bool | None = None
    source_updated_at: datetime

    @model_validator(mode="before")
    @classmethod
    def _clean_text(cls, data: Any) -> Any:
        # Trim, blank -> None, NFC for Vietnamese text (sources mix precomposed and
        # decomposed diacritics). Most values are already clean: touch only the others.
        if not isinstance(data, dict):
            return data
        changed = None
        for key, value in data.items():
            if value.__class__ is str and may_change(value):
                cleaned = clean_value(value)
                if cleaned != value:
                    if changed is None:
                        changed = dict(data)
                    changed[key] = cleaned
        return data if changed is None else changed

    @model_validator(mode="after")
    def _lifecycle(self) -> Self:
        values = self.__dict__  # frozen model: set derived values in place, once
        # Naive source times are local (Asia/Ho_Chi_Minh); every time is held in UTC.
        # A time before 2000, or after tomorrow (a due date excepted), is a broken value, not
        # a dossier: a last change in 2099 would block every later correction.
        latest = datetime.now(UTC) + timedelta(days=1)
        wrong = []
        for name in self.DATETIME_FIELDS:
            value = values[name]
            if value is None:
                continue
            try:
                if value.tzinfo is None:
                    value = values[name] = (value - LOCAL_OFFSET).replace(tzinfo=UTC)
                elif value.tzinfo is not UTC:
                    value = values[name] = value.astimezone(UTC)
            except OverflowError:  # year 1 or 9999: out of range whatever the zone
                value = None
            if value is None or value < EARLIEST or (value > latest and name != "due_at"):
                upto = "" if name == "due_at" else " to tomorrow"
                wrong.append(f"{name} {values[name]} is out of range (from 2000{upto})")
        if wrong:
            raise ValueError("; ".join(wrong))
        if len(self.procedure_code) > 8:
            values["procedure_code"] = self.procedure_code[:8]
        received = self.received_at
        problems = [
            f"{name} {when.isoformat()} is before received_at {received.isoformat()}"
            for name in ("due_at", "finished_at", "returned_at")
            if (when := getattr(self, name)) is not None and when < received
        ]
        digitised, submitted = self.docs_digitised, self.docs_submitted
        if digitised is not None and submitted is not None and digitised > submitted:
            problems.append("docs_digitised exceeds docs_submitted")
        if self.paid_online and self.has_fee is False:
            problems.append("paid_online is set for a dossier without a fee")
        if self.locality_code is not None:
            if self.admin_level is None:
                # Unit codes say their level by their length (the pattern allows no other).
                values["admin_level"] = _LEVEL_BY_LENGTH[len(self.locality_code)]
            two_level = (received + LOCAL_OFFSET).date() >= TWO_LEVEL_FROM
            if self.locality_version is None:
                version = LocalityVersion.TWO_LEVEL if two_level else LocalityVersion.THREE_LEVEL
                values["locality_version"] = version
            if (
                self.locality_version is LocalityVersion.TWO_LEVEL
                and self.admin_level is AdminLevel.DISTRICT
            ):
                problems.append(
                    "admin_level district does not exist in the two-level unit table"
                    " (Decision 19/2025, from 2025-07-01)"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self
