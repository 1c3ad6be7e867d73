"""Declared mappings: a native record's fields, read by specs into canonical fields.

A connector declares its mapping as a list of field specs, one per native field, in the order
their problems should be reported:

    mapping = FieldMapping(
        Value("MA_HS", "dossier_code", required="no receipt code"),
        Time("NGAY_NHAN", "received_at", required="no time of receipt"),
        Code("TRANG_THAI", "status", STATUS, known="0-9", raw_field="status_raw"),
        Identifier("MST", TAX_ID, "a 10-digit tax code"),
        Fee("LE_PHI", decimal_amount, paid=Value("NOP_PHI_TT", "paid_online", convert=bool)),
        unknown="{column} {value!r} is not a Tax code (known: {known})",
    )

`FieldMapping.map(connector, raw)` applies every spec and collects a `Reason` for each native value
it cannot translate (it never stops at the first), leaving that canonical field out; the
connector handles its genuinely special cases on the result and hands it to
`Connector.build`, which adds every rule the canonical model finds broken. The values a spec
copies are not checked here: the canonical model checks them, once, for every source.

Personal identifiers are hashed here (`Identifier`), and a connector declaring a mapping gets
its `personal_fields` from it, so the payload kept in quarantine is hashed too.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from collections.abc import Mapping as AnyMapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from connectors.errors import Reason
from connectors.identifiers import HASHED

if TYPE_CHECKING:
    from connectors.base import Connector, RawRecord
    from connectors.frames import ColumnPage, Columns


class Mapped(NamedTuple):
    """Canonical fields mapped so far, and a reason for each native value that was not."""

    fields: dict[str, Any]
    problems: list[Reason]


@dataclass(frozen=True)
class RecordBeingMapped:
    """What a spec sees while it maps one record: the native row, the connector (its hasher,
    its time reader), the mapping's declarations, and the fields and problems so far."""

    row: AnyMapping[str, Any]
    connector: Connector[Any]
    mapping: FieldMapping
    fields: dict[str, Any]
    problems: list[Reason]

    def value(self, column: str) -> Any:
        return self.row.get(column)

    def absent(self, value: Any) -> bool:
        return any(value is a or value == a for a in self.mapping.absent)


class Spec(Protocol):
    """One native field (or a few) read into canonical fields, with a reason when it cannot be.

    `read` depends on the values of `columns` only (the columnar sync reads each distinct
    value once, connectors/frames.py). A spec may also offer `on_columns(page)`: the same
    mapping as one of the page's column operations."""

    @property
    def columns(self) -> tuple[str, ...]: ...

    def read(self, reading: RecordBeingMapped) -> None: ...


@dataclass(frozen=True)
class TimeText:
    """How a source writes its times as text. The transport's own reader (`parse_time`) reads
    them, so a mapping and the transport's cursor never read one time two ways; a time it
    cannot read is rejected with `code`, saying it is not `expected`."""

    # Called with the connector and the native value; None or ValueError means unreadable.
    read: Callable[[Any, Any], datetime | None]
    code: str = "invalid_datetime"
    expected: str = "a time"


class FieldMapping:
    """A connector's declared mapping: its specs, in the order their problems are reported.

    `unknown` words the reason for a code missing from its table (`{column}`, `{value!r}`,
    `{known}`). `absent` are the native values that mean "not given" for optional specs.
    `times` says how the source writes times as text; without it a `Time` value is passed on
    as it is (a database driver gives datetimes; the canonical model reads ISO 8601 text,
    naive times as Asia/Ho_Chi_Minh). With `none_is_missing` a copied None is left out, so a
    required field reads "Field required" (an export file, where an empty cell is no value).
    """

    def __init__(
        self,
        *specs: Spec,
        unknown: str = "{column} {value!r} is not a known code (known: {known})",
        absent: tuple[Any, ...] = (None,),
        times: TimeText | None = None,
        none_is_missing: bool = False,
    ) -> None:
        self.specs = specs
        self.unknown = unknown
        self.absent = absent
        self.times = times
        self.none_is_missing = none_is_missing

    @property
    def columns(self) -> tuple[str, ...]:
        """Every native column the mapping reads, in declaration order."""
        return tuple(column for spec in self.specs for column in spec.columns)

    def column_of(self, field: str) -> str | None:
        """The native column a one-column spec reads into canonical `field`, or None."""
        for spec in reversed(self.specs):  # a later spec writing the field wins, as in map()
            if getattr(spec, "field", None) == field and len(spec.columns) == 1:
                return spec.columns[0]
        return None

    @property
    def personal_fields(self) -> dict[str, str]:
        """The native fields holding personal identifiers, and the canonical field of each."""
        return {s.column: s.field for s in self.specs if isinstance(s, Identifier)}

    def check_columns(self, declared: Iterable[str], *, where: str) -> None:
        """Refuse, when the connector class is made, a mapping that reads an undeclared column
        (its value would silently be None on every record)."""
        known = set(declared)
        for column in self.columns:
            if column not in known:
                raise TypeError(
                    f"the mapping reads column {column!r}, which is not in the connector's "
                    f"columns (add it to columns, or fix the mapping in {where})"
                )

    def map(self, connector: Connector[Any], raw: RawRecord) -> Mapped:
        """Apply every spec to one native record; never stops at the first problem."""
        fields: dict[str, Any] = {"source_system": connector.source, "source_id": raw.source_id}
        if self.none_is_missing and raw.source_id is None:
            del fields["source_id"]
        reading = RecordBeingMapped(raw.payload, connector, self, fields, [])
        for spec in self.specs:
            spec.read(reading)
        return Mapped(fields, reading.problems)


def _set_value(reading: RecordBeingMapped, field_name: str, value: Any) -> None:
    if value is None and reading.mapping.none_is_missing:
        return
    reading.fields[field_name] = value


@dataclass(frozen=True)
class OneColumn:
    """A spec that reads one native column into one canonical field."""

    column: str
    field: str

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,)


@dataclass(frozen=True)
class Value(OneColumn):
    """A native value copied to a canonical field (through `convert` unless None).

    `required` makes a blank value a "missing" reason (`"{column} is blank: {required}"`)."""

    required: str | None = None
    convert: Callable[[Any], Any] | None = None

    @classmethod
    def each(cls, **fields: str) -> tuple[Value, ...]:
        """Native values copied as they are, native column=canonical field:
        `*Value.each(MA_TTHC="procedure_code", LINH_VUC="sector")`."""
        return tuple(cls(column, field) for column, field in fields.items())

    def read(self, reading: RecordBeingMapped) -> None:
        value = reading.value(self.column)
        if self.required is not None and (value is None or not str(value).strip()):
            message = f"{self.column} is blank: {self.required}"
            reading.problems.append(Reason(self.field, "missing", message))
            return
        if value is not None and self.convert is not None:
            value = self.convert(value)
        _set_value(reading, self.field, value)

    def on_columns(self, page: ColumnPage) -> Columns:
        if self.convert is not None:
            return page.read_distinct(self)
        return page.copied(self.column, self.field, required=self.required is not None, blank=True)


@dataclass(frozen=True)
class Time(OneColumn):
    """A native time, read with the mapping's `TimeText` or passed on for the model to read.

    `required` (True, or the consequence to name) makes an empty value a "missing" reason."""

    required: bool | str = False

    @classmethod
    def each(cls, **fields: str) -> tuple[Time, ...]:
        """Optional native times, native column=canonical field: `*Time.each(NGAY_NOP="submitted_at")`."""
        return tuple(cls(column, field) for column, field in fields.items())

    def read(self, reading: RecordBeingMapped) -> None:
        value = reading.value(self.column)
        times = reading.mapping.times
        # Text a transport reads is empty when blank; a value passed on, only when None.
        blank = isinstance(value, str) and not value.strip() and times is not None
        if value is None or blank:
            if self.required:
                why = "" if self.required is True else f": {self.required}"
                message = f"{self.column} is empty{why}"
                reading.problems.append(Reason(self.field, "missing", message))
            elif times is None:
                _set_value(reading, self.field, value)
            return
        if times is None:
            reading.fields[self.field] = value
            return
        try:
            moment = times.read(reading.connector, value)
        except ValueError:
            moment = None
        if moment is None:
            message = f"{self.column} {str(value)[:40]!r} is not {times.expected}"
            reading.problems.append(Reason(self.field, times.code, message))
        else:
            reading.fields[self.field] = moment

    def on_columns(self, page: ColumnPage) -> Columns:
        if page.mapping.times is not None:  # read as text, by the transport's reader
            return page.read_distinct(self)
        return page.copied(self.column, self.field, required=bool(self.required), blank=False)


@dataclass(frozen=True)
class Code(OneColumn):
    """A native code looked up in `table` (after `key`), e.g. a status.

    A code missing from the table is an "unknown_code" reason worded by the mapping's
    `unknown` (or this spec's `message`), listing `known` (by default the table's keys). An
    `optional` code may be absent; a required one that is absent is unknown. `raw_field`
    keeps the native value as text beside the translation (`status_raw`). With `words` the
    table is written as words, compared `folded` (whatever their Unicode form, case or
    spacing), its keys and the native value alike."""

    table: AnyMapping[Any, Any]
    key: Callable[[Any], Any] | None = None
    known: str | None = None
    optional: bool = False
    raw_field: str | None = None
    message: str | None = None
    words: bool = False

    def __post_init__(self) -> None:
        if self.words and self.key is not None:
            raise TypeError(f"Code {self.column!r}: give either key or words, not both")
        if self.words:
            object.__setattr__(self, "table", {folded(w): c for w, c in self.table.items()})
            object.__setattr__(self, "key", folded)

    def read(self, reading: RecordBeingMapped) -> None:
        value = reading.value(self.column)
        if self.optional and reading.absent(value):
            return
        found = self.table.get(value if self.key is None else self.key(value))
        if found is None:
            known = self.known if self.known is not None else ", ".join(map(str, self.table))
            template = self.message or reading.mapping.unknown
            message = template.format(column=self.column, value=value, known=known)
            reading.problems.append(Reason(self.field, "unknown_code", message))
            return
        reading.fields[self.field] = found
        if self.raw_field is not None:
            reading.fields[self.raw_field] = str(value)


def identifier_text(value: Any, pattern: re.Pattern[str]) -> tuple[str | None, bool]:
    """An identifier's text to key, and whether it has the expected shape: (None, True) when
    absent or blank; the stripped text and True when already hashed or ASCII matching the
    whole pattern; the stripped text and False otherwise."""
    if value is None or not (text := str(value).strip()):
        return None, True
    return text, text.startswith(HASHED) or (text.isascii() and pattern.fullmatch(text) is not None)


@dataclass(frozen=True)
class Identifier:
    """A personal identifier (citizen ID, tax code...) of the expected shape, hashed at once.

    One already hashed (a payload back from quarantine) is kept hashed. One of another shape
    is an "invalid_format" reason that describes it by its length, never by its value. Only
    ASCII text has the shape, whatever the pattern says: `\\d` also matches other scripts'
    digits, and the same number in Arabic-Indic digits would hash to another key, giving one
    applicant two."""

    column: str
    pattern: re.Pattern[str]
    described_as: str  # "a 12-digit citizen ID", named in the reason
    field: str = "applicant_key"

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    def read(self, reading: RecordBeingMapped) -> None:
        text, ok = identifier_text(reading.value(self.column), self.pattern)
        if text is None:
            return
        if ok:
            reading.fields[self.field] = reading.connector.identifier_key(text)
            return
        # The value is personal data: name its shape, never the value.
        message = f"{self.column} ({len(text)} characters) is not {self.described_as}"
        reading.problems.append(Reason(self.field, "invalid_format", message))

    def on_columns(self, page: ColumnPage) -> Columns:
        return page.hashed(self.column, self.field, self.pattern)


@dataclass(frozen=True)
class Fee:
    """A fee amount, read by `amount` (None when the value is not an amount): `has_fee` is
    whether it is above zero, and `paid` (whether it was paid online) is read only then:
    online payment means something only when there is a fee to pay."""

    column: str
    amount: Callable[[Any], Any]
    paid: Spec | None = None
    field: str = "has_fee"

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column, *(self.paid.columns if self.paid is not None else ()))

    def read(self, reading: RecordBeingMapped) -> None:
        value = reading.value(self.column)
        if reading.absent(value):
            return
        try:
            amount = self.amount(value)
            if amount is None:
                raise ValueError(value)
            has_fee = amount > 0
        except (ValueError, TypeError, ArithmeticError):
            message = f"{self.column} {value!r} is not an amount"
            reading.problems.append(Reason(self.field, "invalid_number", message))
            return
        reading.fields[self.field] = has_fee
        paid = self.paid
        if has_fee and paid and not any(reading.absent(reading.value(c)) for c in paid.columns):
            paid.read(reading)


@dataclass(frozen=True)
class Count(OneColumn):
    """A number of documents written as ASCII digits; anything else is "invalid_number"."""

    max_digits: int = 9

    def read(self, reading: RecordBeingMapped) -> None:
        value = reading.value(self.column)
        if value is None:
            return
        number = whole_number(value, max_digits=self.max_digits)
        if number is None:
            message = f"{self.column} {value!r} is not a number of documents"
            reading.problems.append(Reason(self.field, "invalid_number", message))
        else:
            reading.fields[self.field] = number


# -- readers a spec can use --------------------------------------------------------------
def whole_number(value: Any, *, max_digits: int | None = None) -> int | None:
    """A whole number written as a number or as ASCII digits (around spaces); None otherwise.

    `str.isdigit` alone would take "²" (which int() refuses) and other scripts' digits, and
    int() alone would read "٢", "２" or "0_2" as 2; a bool is not a number here."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not (text.isascii() and text.isdigit()):
        return None
    if max_digits is not None and len(text) > max_digits:
        return None
    return int(text)


def folded(text: str) -> str:
    """Words compared whatever their Unicode form (composed or not), case or spacing."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def decimal_amount(value: Any) -> Any:
    """An amount as a database gives it (a number), or as JSON keeps one (decimal text)."""
    return Decimal(value) if isinstance(value, str) else value


def text_only(value: Any) -> str | None:
    """The value when it is text, else None: a JSON number or list is never a text code."""
    return value if isinstance(value, str) else None
