"""The connector contract between a sector system and the sync engine.

A connector promises four things:

* `check()` reports whether the source can be read as configured, naming what is wrong;
* `read(cursor)` yields `Batch`es of native records in a stable order, each with the cursor
  *after* its last record, so the engine can save data and cursor in one transaction and a
  later `read(saved_cursor)` resumes right after it (re-reading a little is allowed: upserts
  make overlap harmless; skipping is not);
* `to_canonical(raw)` returns a valid `DossierRecord`, or raises `RecordRejected` with every
  reason it found — it never drops a record silently;
* `count(period)` returns how many dossiers the source itself reports as received in the
  period — or all the dossiers it holds when `period` is None — for reconciliation.

Connectors never import Airflow or the engine's storage; they see only their settings, an
`IdentifierHasher` for personal identifiers, and the batch size and look-back window.
"""

from __future__ import annotations

import math
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast

from pydantic import BaseModel, ValidationError

from connectors.errors import ConfigError, Reason, RecordRejected, unknown_name
from connectors.identifiers import HASHED, IdentifierHasher
from models.dossier import DossierRecord
from models.localtime import LOCAL
from models.period import Period

if TYPE_CHECKING:
    import polars as pl  # the columnar path's libraries are an optional extra
    import pyarrow as pa

    from connectors.mapping import FieldMapping

SettingsT = TypeVar("SettingsT", bound=BaseModel)

Cursor = dict[str, Any]


@dataclass(frozen=True, slots=True)
class RawRecord:
    """A record exactly as the source gave it; `source_id` is None when the source omitted it."""

    source_id: str | None
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Batch:
    """Records read, and the cursor that stands after them; the engine commits both at once.

    `settles` names quarantine-key prefixes whose records this batch replaces wholesale (a
    file re-issued under its name replaces every line of its earlier content, even those kept
    under `<file>#row<n>`): their unresolved entries are resolved in the batch's transaction,
    before its own rejections are kept, so a line still bad is quarantined again.
    """

    records: list[RawRecord]
    cursor: Cursor | None
    settles: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ArrowBatch:
    """A page read as Arrow columns (the columnar path), and the cursor that stands after it.

    The table holds the native columns as read; `Connector.raw_records` turns any of its rows
    into the `RawRecord`s `read()` would have given, for the row path.
    """

    table: pa.Table
    cursor: Cursor | None
    settles: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Health:
    ok: bool
    detail: str


@dataclass(frozen=True)
class ConnectorContext:
    """What the engine hands a connector: its source name, settings and shared services."""

    source: str
    settings: Mapping[str, Any] = field(repr=False)  # may hold secrets
    hasher: IdentifierHasher
    batch_size: int = 5000
    lookback: timedelta = field(default=timedelta(minutes=5))
    # "i/n": read only the i-th of n disjoint slices of the source (scale-out by partition).
    partition: str = ""
    # A last-change time later than now + this is a clock or data error at the source: the
    # record is quarantined and the cursor never moves onto it.
    future_tolerance: timedelta = field(default=timedelta(hours=1))

    def horizon(self) -> datetime:
        """The latest plausible last-change time, now (UTC) plus the future tolerance."""
        return datetime.now(UTC) + self.future_tolerance

    def slice(self) -> tuple[int, int] | None:
        """The partition as (index, count), or None when reading the whole source."""
        if not self.partition:
            return None
        index, _, count = self.partition.partition("/")
        if not (index.isdigit() and count.isdigit() and int(index) < int(count)):
            raise ConfigError(f"source {self.source!r}: partition {self.partition!r} is not i/n")
        return int(index), int(count)


class Connector(ABC, Generic[SettingsT]):
    """Base of every connector. Subclasses declare `Settings` and implement the four calls.

    A connector is generic over its settings model, so `self.settings` has that type:
    `class TaxConnector(SqlConnector)` where `SqlConnector(Connector[SqlSettings])`.
    """

    Settings: ClassVar[type[BaseModel]]
    settings: SettingsT
    # Shown in error messages so a reader knows which file holds the mapping: by default
    # the file of the class's own module (`construction_permits/connector.py`).
    mapping_file: ClassVar[str] = "connectors/"
    # The setting holding the source's secret, filled from an Airflow Connection's password.
    secret_setting: ClassVar[str | None] = None
    # Whether read() honours ConnectorContext.partition (disjoint slices of the source).
    supports_partitions: ClassVar[bool] = False
    # Native fields holding personal identifiers, and the canonical field each becomes.
    # Their values are hashed before a payload is kept anywhere (quarantine included).
    personal_fields: ClassVar[dict[str, str]] = {}
    # Whether a full read returns the source's current state (a table, an API), so a full
    # refresh may overwrite the registry with it even where the source dated a change
    # backwards; an export drop's full read is its history of files, not its state.
    full_read_is_current: ClassVar[bool] = False
    # The declared mapping from a native record to canonical fields (connectors/mapping.py),
    # when the connector has one; its identifiers become `personal_fields`.
    mapping: ClassVar[FieldMapping | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "mapping_file" not in cls.__dict__:
            cls.mapping_file = _module_file(cls.__module__)
        mapping = cls.__dict__.get("mapping")
        if mapping is None:
            return
        if "personal_fields" not in cls.__dict__:
            cls.personal_fields = mapping.personal_fields
        declared = getattr(cls, "columns", None)
        if declared is not None:  # a table or file transport: every record has these columns
            mapping.check_columns(declared, where=cls.mapping_file)

    def __init__(self, context: ConnectorContext) -> None:
        if self.mapping is None and type(self).to_canonical is Connector.to_canonical:
            raise TypeError(
                f"connector {type(self).__name__} declares no mapping and no to_canonical: "
                f"declare `mapping` (connectors/mapping.py) or implement to_canonical"
            )
        self.context = context
        self.source = context.source
        self.hasher = context.hasher
        if context.partition and not self.supports_partitions:
            raise ConfigError(
                f"source {self.source!r}: connector {type(self).__name__} cannot read by "
                "partition; remove 'partitions' from the source's entry in the sources file"
            )
        known = setting_names(self.Settings)
        unknown = [key for key in context.settings if key not in known]
        if unknown:
            # A misspelt setting would otherwise be ignored and its default silently used.
            raise ConfigError(
                f"source {self.source!r}: {unknown_name('setting', str(unknown[0]), known)} "
                "(fix the source's settings in the sources file)"
            )
        try:
            self.settings = cast(SettingsT, self.Settings.model_validate(dict(context.settings)))
        except ValidationError as exc:
            problems = "; ".join(
                f"setting {'.'.join(str(p) for p in e['loc'])!r}: {e['msg']}" for e in exc.errors()
            )
            raise ConfigError(
                f"source {self.source!r}: {problems} (fix the source's settings in the sources file)"
            ) from None

    @abstractmethod
    def check(self) -> Health: ...

    @abstractmethod
    def read(self, cursor: Cursor | None) -> Iterator[Batch]: ...

    def to_canonical(self, raw: RawRecord) -> DossierRecord:
        """The canonical record of one native record, or `RecordRejected` with every reason.

        By default the declared `mapping` reads the record, `adjust` applies the connector's
        genuinely special cases and `build` validates; a connector without a mapping
        implements this itself."""
        if self.mapping is None:
            raise NotImplementedError(
                f"connector {type(self).__name__} declares no mapping: declare `mapping` "
                f"(connectors/mapping.py) or implement to_canonical in {self.mapping_file}"
            )
        fields, problems = self.mapping.map(self, raw)
        self.adjust(fields, raw)
        return self.build(fields, problems)

    def adjust(self, fields: dict[str, Any], raw: RawRecord) -> None:
        """Change the mapped fields where the source is genuinely special (none by default)."""

    @abstractmethod
    def count(self, period: Period | None) -> int: ...

    def read_arrow(self, cursor: Cursor | None) -> Iterator[ArrowBatch | Batch] | None:
        """The same pages as `read(cursor)`, as Arrow tables, or None (the default) when this
        connector or its configuration offers no columnar read: the engine then uses `read()`
        and `to_canonical()`. A page may still come as a `Batch` (rows the columnar read
        cannot place): the engine maps those row by row."""
        return None

    def to_canonical_frame(self, table: pa.Table) -> pl.DataFrame:
        """A page's canonical columns: DossierRecord's field names, enum fields as their values,
        times as read (naive = local), identifiers already hashed, plus `mapped_ok`: False
        where `to_canonical` would find something wrong. It may refuse a row for any reason
        (the row goes through `to_canonical`), never pass one `to_canonical` would refuse or
        map differently. Rows arrive deduplicated by id (last delivery)."""
        raise NotImplementedError(f"{type(self).__name__} has no columnar mapping")

    def raw_records(self, table: pa.Table) -> list[RawRecord]:
        """The table's rows as `read()` would have given them (for the row path)."""
        raise NotImplementedError(f"{type(self).__name__} has no columnar read")

    def receipt_day(self, payload: dict[str, Any]) -> date | None:
        """The local day a native record (as quarantine keeps it) was received, or None when
        its receipt time is missing or unreadable. Reconciliation uses it to place a
        quarantined record in a period; a transport reads its connector's receipt field."""
        return None

    def close(self) -> None:  # optional hook, nothing to release by default
        """Release connections; the engine calls it when a sync ends."""

    def screen(self, raw: RawRecord) -> list[Reason]:
        """What the transport finds wrong with a record before mapping: a missing id, a
        missing, unreadable or implausibly late last-change time. Such a record is
        quarantined with these reasons (and the mapping's) and never moves the cursor."""
        return []

    def cursor_time(self, cursor: Cursor) -> datetime | None:
        """The last-change time (UTC) a saved cursor stands at, None when it has none."""
        return None

    def identifier_key(self, value: str) -> str | None:
        """The keyed hash of a personal identifier (already hashed in a quarantined payload)."""
        if value.startswith(HASHED):
            return value[len(HASHED) :]
        return self.hasher.hash(value)

    def identifier_keys(self, values: list[str]) -> list[str | None]:
        """`identifier_key` of each value, the new ones hashed in one `hash_many` (the
        columnar sync's page at a time)."""
        fresh = iter(self.hasher.hash_many([v for v in values if not v.startswith(HASHED)]))
        return [self.identifier_key(v) if v.startswith(HASHED) else next(fresh) for v in values]

    def redact(self, payload: dict[str, Any], reasons: list[Reason]) -> dict[str, Any]:
        """The payload fit to keep: personal identifiers hashed, an invalid one only described."""
        if not self.personal_fields:
            return payload
        kept = dict(payload)
        invalid = {reason.field for reason in reasons}
        for native, canonical in self.personal_fields.items():
            value = kept.get(native)
            if value is None or (isinstance(value, str) and value.startswith(HASHED)):
                continue
            text = str(value)
            if canonical in invalid:
                kept[native] = f"<redacted: invalid identifier of {len(text.strip())} characters>"
            else:
                kept[native] = HASHED + (self.hasher.hash(text) or "")
        return kept

    def build(self, fields: dict[str, Any], problems: list[Reason]) -> DossierRecord:
        """Validate mapped fields into a record, or reject with the mapping's and the model's reasons.

        Mapping code appends a `Reason` for each native value it cannot translate (and leaves
        the canonical field out); this adds every rule the canonical model finds broken.
        """
        try:
            record = DossierRecord.model_validate(fields)
        except ValidationError as exc:
            reported = {reason.field for reason in problems}
            for error in exc.errors(include_url=False):
                name = ".".join(str(part) for part in error["loc"])
                if name in reported and error["type"] == "missing":
                    continue  # the mapping already said why the value is absent
                problems.extend(_reasons_from_model_error(name, error))
            raise RecordRejected(problems) from None
        if problems:
            raise RecordRejected(problems)
        return record


def as_utc(moment: datetime) -> datetime | None:
    """A source time in UTC (a naive time is local); None when it cannot be placed in UTC."""
    try:
        aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=LOCAL)
        return aware.astimezone(UTC)
    except (OverflowError, ValueError):  # year 1 or 9999 shifted out of range
        return None


def beyond(moment: datetime, horizon: datetime) -> bool:
    """Whether a source time lies past the horizon (year 9999 does, year 1 does not)."""
    utc = as_utc(moment)
    return moment.year > horizon.year if utc is None else utc > horizon


def setting_names(model: type[BaseModel]) -> set[str]:
    """The names a settings model accepts: its fields and their aliases."""
    names = set(model.model_fields)
    names.update(f.alias for f in model.model_fields.values() if f.alias)
    return names


# Friendlier words for the code patterns the canonical model checks.
_PATTERN_HELP = {
    "procedure_code": "is not a national procedure code like 2.000477",
    "agency_code": "is not an electronic agency id like 000.00.06.H56 (Decision 20/2020)",
    "received_by": "is not an electronic agency id like 000.00.06.H56 (Decision 20/2020)",
    "dossier_code": "is not a printable receipt code without spaces",
    "national_dossier_code": "is not a printable receipt code without spaces",
    "locality_code": "is not a 2, 3 or 5 digit administrative unit code",
    "applicant_key": "is not a keyed hash (64 hex digits): identifiers must be hashed",
}
_TEXT_HELP = (
    "contains control characters or legacy-encoded text (TCVN3/VNI, or UTF-8 read as "
    "Windows-1252); the source must send Unicode"
)


def _reasons_from_model_error(name: str, error: Any) -> list[Reason]:
    """Reasons from one pydantic error, each naming the canonical field at fault."""
    if not name and error["type"] == "value_error":
        # Cross-field rules of the record come as one message, "field ...; field ...".
        message = str(error["msg"]).removeprefix("Value error, ")
        found = []
        for part in message.split("; "):
            field_name = part.split(" ", 1)[0]
            known = field_name in DossierRecord.model_fields
            code = "out_of_range" if "out of range" in part else "inconsistent"
            found.append(Reason(field_name if known else "record", code, part))
        return found
    if error["type"] == "string_pattern_mismatch":
        shown = str(error["input"])[:40]
        if name == "applicant_key":
            shown = f"{len(str(error['input']))} characters"
        if name in _PATTERN_HELP:
            return [Reason(name, "invalid_format", f"{shown!r} {_PATTERN_HELP[name]}")]
        return [Reason(name, "invalid_text", f"{shown!r} {_TEXT_HELP}")]
    return [Reason(name or "record", error["type"], error["msg"])]


def jsonable(value: Any) -> Any:
    """A JSON-storable copy of a native value (for quarantined payloads and cursors)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN or Infinity; PostgreSQL refuses them
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", "\\x00")  # PostgreSQL JSON cannot hold NUL
    return value


def _module_file(module: str) -> str:
    """A module's file as a path from its top package: `connectors/tax.py`,
    `construction_permits/__init__.py` for a package."""
    path = module.replace(".", "/")
    loaded = sys.modules.get(module)
    if loaded is not None and hasattr(loaded, "__path__"):
        return f"{path}/__init__.py"
    return f"{path}.py"
