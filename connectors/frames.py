"""Helpers the SQL connectors' frame mappings share (connectors/tax_frame.py, land_frame.py).

A frame mapping is the columnar form of a connector's `to_canonical`: the same code tables,
the same decisions, on whole columns. Where Python semantics matter (an identifier's
`str.strip` and `re.fullmatch`, an amount's `Decimal`), the Python code runs once per
distinct value of the page, never per row.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

import polars as pl

from connectors.base import HASHED, Connector
from models.dossier import DossierRecord

LOCAL_OFFSET = timedelta(hours=7)  # naive source times are Asia/Ho_Chi_Minh (UTC+7)
Mapped = tuple[Any, bool]  # a canonical value, and whether the row path would accept it


def coded(column: str, table: Mapping[Any, Enum], *, required: bool) -> tuple[pl.Expr, pl.Expr]:
    """A native code through its code table: the canonical value, and whether it was known
    (an absent optional code is known: it maps to None)."""
    values = {native: member.value for native, member in table.items()}
    sample = next(iter(values.values()))
    dtype = pl.String if isinstance(sample, str) else pl.Int64
    mapped = pl.col(column).replace_strict(values, default=None, return_dtype=dtype)
    known = mapped.is_not_null() if required else pl.col(column).is_null() | mapped.is_not_null()
    return mapped, known


def identifiers(connector: Connector, column: pl.Series, pattern: re.Pattern[str]) -> pl.DataFrame:
    """A personal identifier column hashed as `to_canonical` does: stripped, a valid or
    already hashed value keyed, a blank one absent, another refused (`ok` False)."""
    distinct = [v for v in column.drop_nulls().unique().to_list()]
    keys: dict[Any, Mapped] = {}
    to_hash = []
    for value in distinct:
        text = str(value).strip()
        if not text:
            keys[value] = (None, True)
        elif text.startswith(HASHED):
            keys[value] = (text[len(HASHED) :], True)
        elif pattern.fullmatch(text):
            to_hash.append((value, text))
        else:
            keys[value] = (None, False)
    for (value, _), key in zip(
        to_hash, connector.hasher.hash_many(t for _, t in to_hash), strict=True
    ):
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


def per_distinct(column: pl.Series, convert: Any, dtype: Any) -> pl.DataFrame:
    """`convert(value) -> (canonical value, ok)` once per distinct non-null value."""
    return per_lookup(column, {v: convert(v) for v in column.drop_nulls().unique()}, dtype)


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


def fee_of(value: Any) -> Mapped:
    """`to_canonical`'s has_fee of one amount (ADBC gives NUMERIC as text)."""
    try:
        return (Decimal(value) if isinstance(value, str) else value) > 0, True
    except (InvalidOperation, TypeError):
        return None, False


def canonical(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame's columns in DossierRecord's order (absent optional fields as nulls)."""
    missing = [pl.lit(None).alias(name) for name in DossierRecord.model_fields if name not in frame]
    return frame.with_columns(missing).select(*DossierRecord.model_fields, "mapped_ok")
