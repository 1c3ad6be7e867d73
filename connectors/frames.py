"""A SQL connector's declared mapping, applied to a whole page of columns (the columnar sync).

Nothing here is declared twice: the frame mapping is derived from the connector's
`FieldMapping`. A spec that can say what it does on columns offers `on_columns(page)` and
names one of the page's column operations (`ColumnPage.copied`, `ColumnPage.hashed`); every
other spec (a code table, a fee, a count, a connector's own) runs its own `read` once per
distinct value of its columns, on values rebuilt as the row reader gives them, so it cannot
map differently. A value a spec refuses makes `mapped_ok` False: the row goes through
`to_canonical`, which gives the exact reasons. What a connector's `adjust` changes it
restates for columns in `adjust_frame`.

Python runs once per distinct value of a page, never per row: an identifier's `str.strip`
and `re.fullmatch` (then one `hash_many` for the page), a code's table lookup, a fee's amount.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

import polars as pl

from connectors.base import Connector
from connectors.mapping import RecordBeingMapped, Spec, identifier_text
from connectors.sql_arrow import is_numeric
from models.dossier import DossierRecord
from models.localtime import LOCAL_OFFSET  # naive source times are local (UTC+7)

if TYPE_CHECKING:
    import pyarrow as pa

    from connectors.sql import SqlConnector

Mapped = tuple[Any, bool]  # a canonical value, and whether the row path would accept it
Columns = tuple[dict[str, pl.Expr], pl.Expr]  # canonical fields, and whether the row maps

# What `str.strip()` strips: Rust's `trim` (polars' default) keeps \x1c-\x1f.
PYTHON_BLANKS = "".join(ch for ch in map(chr, range(0x3001)) if ch.isspace())


def mapped_frame(connector: SqlConnector, table: pa.Table) -> pl.DataFrame:
    """The page's canonical columns, by the connector's declared mapping and `adjust_frame`."""
    mapping = connector.mapping
    if mapping is None:
        raise TypeError(f"{type(connector).__name__} declares no mapping to apply to columns")
    page = ColumnPage(connector, table)
    fields: dict[str, pl.Expr] = {
        "source_system": pl.lit(connector.source, dtype=pl.String),
        "source_id": pl.col(connector.key_column).cast(pl.String),
    }
    oks = []
    for spec in mapping.specs:
        on_columns = getattr(spec, "on_columns", None)
        spec_fields, ok = page.read_distinct(spec) if on_columns is None else on_columns(page)
        fields.update(spec_fields)
        oks.append(ok)
    connector.adjust_frame(fields)
    native = page.native
    mapped = native.with_columns(**page.added).select(
        **fields,
        mapped_ok=pl.all_horizontal(oks).fill_null(False)
        & plausible(native, connector.updated_at_column, connector.horizon),
    )
    return canonical(mapped)


class ColumnPage:
    """One Arrow page being mapped: its native columns, and the columns specs computed."""

    def __init__(self, connector: SqlConnector, table: pa.Table) -> None:
        native = pl.from_arrow(table)
        assert isinstance(native, pl.DataFrame)
        assert connector.mapping is not None
        self.connector = connector
        self.mapping = connector.mapping
        self.table = table
        self.native = native
        self.added: dict[str, pl.Series] = {}  # named apart from any native column

    def _add(self, series: pl.Series) -> pl.Expr:
        name = f"\x00{len(self.added)}"
        self.added[name] = series.alias(name)
        return pl.col(name)

    def copied(self, column: str, field: str, *, required: bool, blank: bool) -> Columns:
        """A native value copied as it is (`Value`, a `Time` passed on): with `required`, a
        row without one does not map; with `blank`, neither does one of only spaces."""
        value = pl.col(column)
        if is_numeric(self.table.schema.field(column)):
            # A Decimal on the row path, text here: a row holding one takes the row path.
            return {field: value}, value.is_null() & pl.lit(not required)
        if not required:
            return {field: value}, pl.lit(True)
        ok = value.is_not_null()
        if blank and self.native.schema[column] == pl.String:
            ok = ok & (value.str.strip_chars(PYTHON_BLANKS) != "")
        return {field: value}, ok

    def hashed(self, column: str, field: str, pattern: re.Pattern[str]) -> Columns:
        """A personal identifier keyed as `Identifier` keys it (`hash_many` for the page)."""
        key = identifiers(self.connector, self.native.get_column(column), pattern)
        return {field: self._add(key.get_column("value"))}, self._add(key.get_column("ok"))

    def read_distinct(self, spec: Spec) -> Columns:
        """The spec's own `read` once per distinct value (of its columns) on the page."""
        names = list(spec.columns)
        native = self.table.select(names)
        distinct = native.group_by(names, use_threads=False).aggregate([])
        distinct = distinct.select(names).cast(native.schema)  # NUMERIC metadata kept
        readings = []
        for row in self.connector.native_rows(distinct):
            reading = RecordBeingMapped(row, self.connector, self.mapping, {}, [])
            spec.read(reading)
            readings.append(reading)
        produced = dict.fromkeys(f for r in readings for f in r.fields)
        lookup = pl.from_arrow(distinct)
        assert isinstance(lookup, pl.DataFrame)
        outputs = [
            pl.Series(f"\x01{n}", [_canonical(r.fields.get(f)) for r in readings])
            for n, f in enumerate(produced)
        ]
        ok = pl.Series("\x01ok", [not r.problems for r in readings], dtype=pl.Boolean)
        joined = self.native.select(names).join(
            lookup.with_columns(*outputs, ok),
            on=names,
            how="left",
            nulls_equal=True,
            maintain_order="left",
        )
        fields = {f: self._add(joined.get_column(f"\x01{n}")) for n, f in enumerate(produced)}
        return fields, self._add(joined.get_column("\x01ok"))


def _canonical(value: Any) -> Any:
    """A mapped value as the canonical frame holds it: an enum member as its value."""
    return value.value if isinstance(value, Enum) else value


def identifiers(connector: Connector, column: pl.Series, pattern: re.Pattern[str]) -> pl.DataFrame:
    """A personal identifier column hashed as `to_canonical` does: stripped, a valid or
    already hashed value keyed, a blank one absent, another refused (`ok` False)."""
    keys: dict[Any, Mapped] = {}
    to_key = []
    for value in column.drop_nulls().unique().to_list():
        text, ok = identifier_text(value, pattern)
        if text is not None and ok:
            to_key.append((value, text))
        else:
            keys[value] = (None, ok)
    found = connector.identifier_keys([text for _, text in to_key])
    for (value, _), key in zip(to_key, found, strict=True):
        keys[value] = (key, True)
    return per_lookup(column, keys, pl.String)


def per_lookup(column: pl.Series, done: dict[Any, Mapped], dtype: Any) -> pl.DataFrame:
    """Each value's entry in `done` (by distinct value): a frame of `value` and `ok`; a null
    maps to a null value, and is ok."""
    if not done:
        return pl.DataFrame(
            {
                "value": pl.Series([None] * len(column), dtype=dtype),
                "ok": pl.Series([True] * len(column), dtype=pl.Boolean),
            }
        )
    old = list(done)
    values = column.replace_strict(old, [done[v][0] for v in old], default=None, return_dtype=dtype)
    ok = column.replace_strict(
        old, [done[v][1] for v in old], default=True, return_dtype=pl.Boolean
    )
    return pl.DataFrame({"value": values, "ok": ok.fill_null(True)})


def plausible(native: pl.DataFrame, column: str, horizon: datetime) -> pl.Expr:
    """True where the change time is present and not past the horizon (`screen()` would
    quarantine the others, and the cursor never stands on them)."""
    dtype = native.schema[column]
    if not isinstance(dtype, pl.Datetime):
        return pl.lit(False)
    moment = pl.col(column)
    if dtype.time_zone is None:  # naive: local time
        utc = (moment - LOCAL_OFFSET).dt.replace_time_zone("UTC")
    else:
        utc = moment.dt.convert_time_zone("UTC")
    return (moment.is_not_null() & (utc <= horizon.astimezone(UTC))).fill_null(False)


def canonical(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame's columns in DossierRecord's order (absent optional fields as nulls)."""
    missing = [pl.lit(None).alias(name) for name in DossierRecord.model_fields if name not in frame]
    return frame.with_columns(missing).select(*DossierRecord.model_fields, "mapped_ok")
