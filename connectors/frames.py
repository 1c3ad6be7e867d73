"""Helpers the SQL connectors' frame mappings share (connectors/tax_frame.py, land_frame.py).

A frame mapping is the columnar form of a connector's `to_canonical`: the same code tables,
the same decisions, on whole columns. Where Python semantics matter (an identifier's
`str.strip` and `re.fullmatch`, an amount's `Decimal`), the Python code runs once per
distinct value of the page, never per row.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import TYPE_CHECKING, Any

import polars as pl

from connectors.base import HASHED, Connector
from models.dossier import DossierRecord
from models.localtime import LOCAL_OFFSET  # naive source times are local (UTC+7)

if TYPE_CHECKING:
    from connectors.sql import SqlConnector

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


@dataclass(frozen=True, slots=True)
class Coded:
    """The canonical code columns of a page (each already through its code table)."""

    status: pl.Expr
    channel: pl.Expr
    service_level: pl.Expr
    applicant_type: pl.Expr


@dataclass(frozen=True, slots=True)
class SqlFrame:
    """What a SQL connector's frame mapping shares with the others: the native columns of its
    codes (each with its code table), its personal identifier, fee, receipt code, receipt
    time and last-change time."""

    status: tuple[str, Mapping[Any, Enum]]
    channel: tuple[str, Mapping[Any, Enum]]
    service_level: tuple[str, Mapping[Any, Enum]]
    applicant_type: tuple[str, Mapping[Any, Enum]]
    identifier: tuple[str, re.Pattern[str]]
    fee: str
    dossier_code: str
    received_at: str
    updated_at: str

    def map(
        self,
        connector: SqlConnector,
        table: Any,
        fields: Callable[[Coded], dict[str, pl.Expr]],
    ) -> pl.DataFrame:
        """The page mapped: the shared columns and checks, plus the connector's own `fields`
        (native column -> canonical field expressions, given the coded columns)."""
        native = pl.from_arrow(table)
        assert isinstance(native, pl.DataFrame)
        status, status_known = coded(*self.status, required=True)
        channel, channel_known = coded(*self.channel, required=True)
        level, level_known = coded(*self.service_level, required=False)
        applicant, applicant_known = coded(*self.applicant_type, required=False)
        column, pattern = self.identifier
        key = identifiers(connector, native.get_column(column), pattern)
        fee = per_distinct(native.get_column(self.fee), fee_of, pl.Boolean)
        frame = native.with_columns(
            applicant_key=key.get_column("value"),
            key_ok=key.get_column("ok"),
            has_fee=fee.get_column("value"),
            fee_ok=fee.get_column("ok"),
        )
        c = pl.col
        mapped = frame.select(
            source_system=pl.lit(connector.source, dtype=pl.String),
            channel=channel,
            service_level=level,
            status=status,
            applicant_type=applicant,
            applicant_key=c("applicant_key"),
            has_fee=c("has_fee"),
            source_updated_at=c(self.updated_at),
            **fields(Coded(status, channel, level, applicant)),
            # A blank receipt code is refused by the model's cleaning and pattern; a missing
            # one, or one the mapping names, goes to the row path for its exact reason.
            mapped_ok=c(self.dossier_code).is_not_null()
            & c(self.received_at).is_not_null()
            & status_known
            & channel_known
            & level_known
            & applicant_known
            & c("key_ok")
            & c("fee_ok")
            & plausible(native, self.updated_at, connector.horizon),
        )
        return canonical(mapped)
