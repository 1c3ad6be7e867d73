"""The canonical record's rules on whole columns: the columnar sync's twin of `DossierRecord`.

The columnar sync maps a page of native rows to a polars frame of canonical columns and
checks it here, a column at a time, instead of building one `DossierRecord` per row. The
twin only has to be *sound*: a row it passes must be one the model accepts, with exactly the
values the model would give. Every row it does not pass goes through the row path
(`to_canonical` → `DossierRecord`), which gives the exact reasons and has the last word; a
stricter twin costs speed, never correctness.

* The field rules are compiled from `DossierRecord.__pydantic_core_schema__` (patterns,
  lengths, ge/le, enum members, nullability), not written a second time; a constraint or a
  validator this module does not know raises at import, so a rule added to the model cannot
  be skipped silently. Patterns run on the same engine as pydantic-core's (Rust `regex`).
* The model's text cleaning runs as Python (`clean_value`), once per distinct value that
  could change: Python's `str.strip` and Rust's `trim` disagree on some control characters.
* `_lifecycle` is the one hand-written twin (`lifecycle` below); a differential property
  test (tests/models/test_frame_equivalence.py) holds the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from models.dossier import (
    _SPACE,
    EARLIEST,
    TWO_LEVEL_FROM,
    AdminLevel,
    DossierRecord,
    LocalityVersion,
    clean_value,
)
from models.localtime import LOCAL_OFFSET

# The model's own validators this twin reproduces; any other makes compile_rules() raise.
_KNOWN_VALIDATORS = {"before": "_clean_text", "after": "_lifecycle"}
_STR_KEYS = {"type", "pattern", "min_length", "max_length", "metadata"}
_INT_KEYS = {"type", "ge", "le", "metadata"}
_DATETIME_KEYS = {"type", "microseconds_precision"}
_ENUM_KEYS = {"type", "cls", "members", "sub_type", "ref", "metadata"}
_BOOL_KEYS = {"type"}
# A string the model's cleaning could change: empty, space-edged, or not ASCII.
_EDGE = "".join(f"\\x{ord(ch):02x}" if ord(ch) < 256 else ch for ch in sorted(_SPACE))
_MAY_CHANGE = rf"^$|^[{_EDGE}]|[{_EDGE}]$|[^\x00-\x7f]"


class UnknownRuleError(RuntimeError):
    """The canonical model has a rule the columnar twin does not know how to check."""


@dataclass(frozen=True, slots=True)
class FieldRule:
    """One canonical field's rule, as read from the model's core schema."""

    name: str
    kind: str  # str, int, bool, datetime, enum
    nullable: bool
    pattern: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    ge: int | None = None
    le: int | None = None
    members: tuple[Any, ...] = ()

    def dtype_ok(self, dtype: pl.DataType) -> bool:
        if dtype == pl.Null:
            return True
        if self.kind in ("str",) or (self.kind == "enum" and isinstance(self.members[0], str)):
            return dtype == pl.String
        if self.kind in ("int", "enum"):
            return dtype.is_integer()
        if self.kind == "bool":
            return dtype == pl.Boolean
        return isinstance(dtype, pl.Datetime)

    def valid(self, column: pl.Expr) -> pl.Expr:
        """True where the value passes the field's own rule (lifecycle rules apart)."""
        checks: list[pl.Expr] = []
        if self.pattern is not None:
            checks.append(column.str.contains(self.pattern))
        if self.min_length is not None:
            checks.append(column.str.len_chars() >= self.min_length)
        if self.max_length is not None:
            checks.append(column.str.len_chars() <= self.max_length)
        if self.ge is not None:
            checks.append(column >= self.ge)
        if self.le is not None:
            checks.append(column <= self.le)
        if self.members:
            checks.append(column.is_in([_member_value(m) for m in self.members]))
        passed = pl.all_horizontal(checks) if checks else pl.lit(True)
        if self.nullable:
            return column.is_null() | passed.fill_null(False)
        return column.is_not_null() & passed.fill_null(False)


def _member_value(member: Any) -> Any:
    return member.value


def compile_rules(model: type[DossierRecord] = DossierRecord) -> dict[str, FieldRule]:
    """Each field's rule from the model's core schema; raises UnknownRuleError on anything
    this twin cannot check, so the twin never passes a row the model would refuse."""
    schema = model.__pydantic_core_schema__
    fields_schema = _model_fields(dict(schema))
    rules = {}
    for name, field in fields_schema["fields"].items():
        rules[name] = _rule(name, field["schema"])
    if tuple(rules) != tuple(model.model_fields):
        raise UnknownRuleError("the model's fields are not the core schema's fields")
    return rules


def _model_fields(schema: dict[str, Any]) -> dict[str, Any]:
    """The model-fields schema, checking the validators wrapped around it are the known two."""
    seen = {}
    while schema["type"] != "model-fields":
        kind = schema["type"]
        if kind in ("function-after", "function-before"):
            function = schema["function"]["function"]
            seen[kind.removeprefix("function-")] = getattr(function, "__name__", repr(function))
        elif kind == "model":
            if schema.get("root_model") or schema.get("custom_init"):
                raise UnknownRuleError("the canonical model has a custom __init__ or root")
        else:
            raise UnknownRuleError(f"core schema node {kind!r} is unknown to models/frame.py")
        schema = schema["schema"]
    if seen != _KNOWN_VALIDATORS:
        raise UnknownRuleError(
            f"DossierRecord's validators are {seen}, models/frame.py knows {_KNOWN_VALIDATORS}:"
            " add the new validator's twin to models/frame.py"
        )
    if schema.get("computed_fields") or schema.get("model_validators"):
        raise UnknownRuleError("DossierRecord has computed fields unknown to models/frame.py")
    return schema


def _rule(name: str, schema: dict[str, Any]) -> FieldRule:
    nullable = False
    if schema["type"] == "default":
        if schema.get("default", ...) is not None:
            raise UnknownRuleError(f"field {name}: only a default of None is known")
        schema = schema["schema"]
    if schema["type"] == "nullable":
        nullable = True
        schema = schema["schema"]
    kind = schema["type"]
    allowed = {
        "str": _STR_KEYS,
        "int": _INT_KEYS,
        "bool": _BOOL_KEYS,
        "datetime": _DATETIME_KEYS,
        "enum": _ENUM_KEYS,
    }.get(kind)
    if allowed is None:
        raise UnknownRuleError(f"field {name}: type {kind!r} is unknown to models/frame.py")
    unknown = set(schema) - allowed
    if kind == "datetime" and schema.get("microseconds_precision", "truncate") != "truncate":
        unknown.add("microseconds_precision")
    if unknown:
        raise UnknownRuleError(
            f"field {name}: constraint {sorted(unknown)[0]!r} is unknown to models/frame.py;"
            " teach compile_rules() to check it"
        )
    return FieldRule(
        name=name,
        kind=kind,
        nullable=nullable,
        pattern=schema.get("pattern"),
        min_length=schema.get("min_length"),
        max_length=schema.get("max_length"),
        ge=schema.get("ge"),
        le=schema.get("le"),
        members=tuple(schema.get("members", ())),
    )


_DTYPES: dict[str, Any] = {
    "str": pl.String,
    "int": pl.Int64,
    "bool": pl.Boolean,
    "datetime": pl.Datetime("us"),
}
RULES = compile_rules()  # at import: an unknown rule stops the columnar path from loading
_TEXT_FIELDS = tuple(name for name, rule in RULES.items() if rule.kind == "str")


def clean_text(frame: pl.DataFrame) -> pl.DataFrame:
    """The model's `_clean_text` on every string column: `clean_value` once per distinct
    value that could change (most values are plain ASCII and stay as they are)."""
    replaced = []
    for name in _TEXT_FIELDS:
        column = frame.get_column(name)
        if column.dtype != pl.String:
            continue
        may_change = column.str.contains(_MAY_CHANGE).fill_null(False)
        if not may_change.any():
            continue
        distinct = column.filter(may_change).unique().to_list()
        mapping = {value: clean_value(value) for value in distinct}
        changed = {old: new for old, new in mapping.items() if new != old}
        if changed:
            replaced.append(column.replace(changed))
    return frame.with_columns(replaced) if replaced else frame


def to_utc(frame: pl.DataFrame) -> pl.DataFrame:
    """Naive times are local (UTC+7, no summer time since 1975); every time held in UTC."""
    converted = []
    for name in DossierRecord.DATETIME_FIELDS:
        dtype = frame.schema[name]
        column = pl.col(name)
        if not isinstance(dtype, pl.Datetime):  # all null
            converted.append(column.cast(pl.Datetime("us", "UTC")))
        elif dtype.time_zone is None:
            utc = (column.cast(pl.Datetime("us")) - LOCAL_OFFSET).dt.replace_time_zone("UTC")
            converted.append(utc)
        else:
            zoned = column.cast(pl.Datetime("us", dtype.time_zone))
            converted.append(zoned.dt.convert_time_zone("UTC"))
    return frame.with_columns(converted)


def _in_range(latest: datetime) -> pl.Expr:
    # A time before 2000, or after tomorrow (a due date excepted), is a broken value.
    return pl.all_horizontal(
        pl.col(name).is_null()
        | (
            (pl.col(name) >= EARLIEST)
            & (pl.lit(True) if name == "due_at" else pl.col(name) <= latest)
        )
        for name in DossierRecord.DATETIME_FIELDS
    )


def _after_receipt(latest: datetime) -> pl.Expr:
    return pl.all_horizontal(
        pl.col(name).is_null() | (pl.col(name) >= pl.col("received_at"))
        for name in ("due_at", "finished_at", "returned_at")
    )


def _docs(latest: datetime) -> pl.Expr:
    digitised, submitted = pl.col("docs_digitised"), pl.col("docs_submitted")
    return digitised.is_null() | submitted.is_null() | (digitised <= submitted)


def _fee(latest: datetime) -> pl.Expr:
    paid = pl.col("paid_online").fill_null(False)
    return ~(paid & (pl.col("has_fee") == False).fill_null(False))  # noqa: E712 - is False


def _district(latest: datetime) -> pl.Expr:
    # On the derived columns: no district level in the two-level unit table.
    return ~(
        pl.col("locality_code").is_not_null()
        & (pl.col("locality_version") == LocalityVersion.TWO_LEVEL.value)
        & (pl.col("admin_level") == AdminLevel.DISTRICT.value)
    ).fill_null(False)


# `_lifecycle`'s rules by name (the mutation test drops one at a time to prove it is needed).
LIFECYCLE_RULES = {
    "in_range": _in_range,
    "after_receipt": _after_receipt,
    "docs": _docs,
    "fee": _fee,
    "district": _district,
}


def lifecycle(frame: pl.DataFrame, *, latest: datetime) -> pl.DataFrame:
    """The vectorized twin of `DossierRecord._lifecycle` on UTC times: adds `lifecycle_ok`
    and the values the validator derives (cut procedure code, admin level, unit table)."""
    c = pl.col
    length = c("locality_code").str.len_chars()
    by_length = (
        pl.when(length == 2)
        .then(pl.lit(AdminLevel.PROVINCE.value))
        .when(length == 3)
        .then(pl.lit(AdminLevel.DISTRICT.value))
        .otherwise(pl.lit(AdminLevel.COMMUNE.value))
    )
    two_level = (c("received_at") + LOCAL_OFFSET).dt.date() >= TWO_LEVEL_FROM
    by_date = (
        pl.when(two_level)
        .then(pl.lit(LocalityVersion.TWO_LEVEL.value))
        .otherwise(pl.lit(LocalityVersion.THREE_LEVEL.value))
    )
    has_unit = c("locality_code").is_not_null()
    derived = frame.with_columns(
        procedure_code=c("procedure_code").str.slice(0, 8),
        admin_level=pl.when(has_unit & c("admin_level").is_null())
        .then(by_length)
        .otherwise(c("admin_level")),
        locality_version=pl.when(has_unit & c("locality_version").is_null())
        .then(by_date)
        .otherwise(c("locality_version")),
    )
    checks = [rule(latest) for rule in LIFECYCLE_RULES.values()]
    return derived.with_columns(lifecycle_ok=pl.all_horizontal(checks).fill_null(False))


def check(frame: pl.DataFrame, *, now: datetime | None = None) -> pl.DataFrame:
    """The canonical frame as the model would leave it, plus `ok`: True only where the model
    accepts the row with exactly these values (and the mapping found nothing wrong).

    `frame` holds DossierRecord's columns (enum fields as their values; naive times local)
    and `mapped_ok`. A column of the wrong type is a bug in a frame mapping: it raises.
    """
    wrong = [
        f"{name} ({frame.schema.get(name)})"
        for name, rule in RULES.items()
        if name not in frame.schema or not rule.dtype_ok(frame.schema[name])
    ]
    if wrong or "mapped_ok" not in frame.schema:
        raise TypeError(
            f"canonical frame columns missing or of the wrong type: {', '.join(wrong) or 'mapped_ok'}"
            " (fix the connector's to_canonical_frame)"
        )
    latest = (now or datetime.now(UTC)) + timedelta(days=1)
    typed = frame.with_columns(
        pl.col(name).cast(_DTYPES[RULES[name].kind])
        for name in RULES
        if frame.schema[name] == pl.Null and RULES[name].kind != "enum"
    )
    typed = typed.with_columns(
        pl.col(name).cast(pl.String if isinstance(RULES[name].members[0].value, str) else pl.Int64)
        for name in RULES
        if frame.schema[name] == pl.Null and RULES[name].kind == "enum"
    )
    cleaned = to_utc(clean_text(typed))
    fields_ok = pl.all_horizontal(
        [rule.valid(pl.col(name)) for name, rule in RULES.items()]
    ).fill_null(False)
    # The after-validator runs on values that passed the field rules; so does its twin.
    checked = cleaned.with_columns(fields_ok=fields_ok & pl.col("mapped_ok").fill_null(False))
    checked = lifecycle(checked, latest=latest)
    return checked.with_columns(ok=pl.col("fields_ok") & pl.col("lifecycle_ok")).drop(
        "fields_ok", "lifecycle_ok"
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def records(frame: pl.DataFrame) -> list[DossierRecord]:
    """DossierRecords of checked rows (all `ok`), built without validating them again:
    each holds exactly the values `DossierRecord.model_validate` would have given."""
    names = list(RULES)
    columns = [_python_values(frame.get_column(name), RULES[name]) for name in names]
    new, set_attribute = object.__new__, object.__setattr__
    fields_set = set(names)
    built = []
    for row in zip(*columns, strict=True):
        record = new(DossierRecord)
        set_attribute(record, "__dict__", dict(zip(names, row, strict=True)))
        set_attribute(record, "__pydantic_fields_set__", fields_set)  # frozen: never changes
        set_attribute(record, "__pydantic_extra__", None)
        set_attribute(record, "__pydantic_private__", None)
        built.append(record)
    return built


def _python_values(column: pl.Series, rule: FieldRule) -> list[Any]:
    """A column's values as the model holds them: enum members, times with tzinfo=UTC."""
    if rule.kind == "datetime":
        # From epoch microseconds: tzinfo is datetime.UTC itself, as the model sets it, and
        # it is faster than converting each value from a zoned datetime.
        span = timedelta
        return [
            None if us is None else _EPOCH + span(microseconds=us)
            for us in column.dt.epoch("us").to_list()
        ]
    values = column.to_list()
    if rule.kind == "enum":
        lookup = {member.value: member for member in rule.members}
        return [None if v is None else lookup[v] for v in values]
    return values
