"""The SQL transport's columnar read: the same keyset pages as `SqlConnector.read`, as Arrow.

On PostgreSQL each page query (the very statement `read()` would run, its cursor values
rendered as literals) is fetched through ADBC, which decodes PostgreSQL's binary COPY
straight into Arrow columns: no Python object per value. What a row-path read would have
made of a row (its `RawRecord`, the cursor after a page) is rebuilt from the table exactly
as psycopg gives it: NUMERIC as `Decimal`, `timestamptz` in the session's time zone.

The libraries are an optional extra (`pip install 'dossierhub[columnar]'`); without them, or
on another database, `read_arrow` answers None and the sync reads row by row.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

from connectors.base import ArrowBatch, Cursor, RawRecord, beyond
from connectors.cursors import SqlCursor
from connectors.masking import mask_text

if TYPE_CHECKING:
    import pyarrow as pa

    from connectors.sql import SqlConnector

log = logging.getLogger(__name__)

REQUIRES = ("pyarrow", "polars", "adbc_driver_postgresql.dbapi")


def unavailable(connector: SqlConnector) -> str | None:
    """Why this connector cannot read columns (shown in the log), or None when it can."""
    kind = type(connector)
    if connector.mapping is None and _defining(kind, "to_canonical_frame") is _sql_connector():
        return "its connector declares no mapping"
    unfollowed = _unfollowed(kind)
    if unfollowed:
        # A subclass changing the row mapping or the read (a mapping fix, a test double)
        # would no longer match the frame mapping it inherits.
        return f"{kind.__name__} overrides {unfollowed}"
    if not getattr(connector.settings, "columnar", True):
        return "the source's setting 'columnar' is false"
    if connector.engine.dialect.name != "postgresql":
        return f"the columnar read supports PostgreSQL, not {connector.engine.dialect.name}"
    for module in REQUIRES:
        try:
            importlib.import_module(module)
        except ImportError:
            return f"{module.split('.')[0]} is not installed (pip install 'dossierhub[columnar]')"
    return None


# Each row-path method, and the frame-path method that must follow it.
_FOLLOWED_BY = (
    ("to_canonical", "to_canonical_frame"),
    ("read", "to_canonical_frame"),
    ("adjust", "adjust_frame"),
)


def _unfollowed(kind: type) -> str | None:
    """The first row-path method a class redefines below the frame-path method meant to follow
    it (`adjust` without its `adjust_frame` beside it), or None."""
    for row, frame in _FOLLOWED_BY:
        below, frame_class = _defining(kind, row), _defining(kind, frame)
        if below is not frame_class and issubclass(below, frame_class):
            return f"{row}() below its {frame}()"
    return None


def _defining(kind: type, name: str) -> type:
    return next(c for c in kind.__mro__ if name in vars(c))


def _sql_connector() -> type:
    from connectors.sql import SqlConnector

    return SqlConnector


class ArrowPages:
    """One ADBC connection serving a read's page queries, and the Arrow → row-path rebuild."""

    def __init__(self, connector: SqlConnector) -> None:
        import adbc_driver_postgresql.dbapi as adbc

        self.connector = connector
        url = make_url(connector._url.get_secret_value()).set(drivername="postgresql")
        self._uri = url.render_as_string(hide_password=False)
        # The statement runs as text: a paramstyle without %-escaping keeps `key % n` as is.
        self._dialect = type(connector.engine.dialect)(paramstyle="named")  # type: ignore[call-arg]
        with connector.engine.connect() as conn:
            driver = conn.connection.driver_connection
            # psycopg gives timestamptz values in the session's zone: so must the rebuild.
            self.session_tz: tzinfo | None = getattr(
                getattr(driver, "info", None), "timezone", None
            )
        try:
            self._conn = adbc.connect(self._uri, autocommit=True)
        except Exception as exc:
            raise self._failed("connecting for a columnar read", exc) from None

    def _failed(self, doing: str, exc: Exception) -> Exception:
        text = mask_text(str(exc).replace(self._uri, "<url>").strip().splitlines()[0])
        return self.connector._fail(f"{doing} {self.connector._table_name} failed: {text}")

    def close(self) -> None:
        self._conn.close()

    def fetch(self, query: Any) -> tuple[ArrowBatch, int, tuple[Any, Any]] | None:
        """A page as an ArrowBatch, its size and its last (updated, key), or None when empty."""
        connector = self.connector
        connector.horizon = connector.context.horizon()
        sql = str(query.compile(dialect=self._dialect, compile_kwargs={"literal_binds": True}))
        try:
            with self._conn.cursor() as cur:
                cur.execute(sql)
                table = plain(cur.fetch_arrow_table())
        except Exception as exc:
            raise self._failed("reading", exc) from None
        if table.num_rows == 0:
            return None
        updated = table.column(connector.updated_at_column)
        key = table.column(connector.key_column)
        last = (self.value(updated[-1].as_py()), key[-1].as_py())
        return ArrowBatch(table, self.cursor(table)), table.num_rows, last

    def value(self, moment: Any) -> Any:
        if isinstance(moment, datetime) and moment.tzinfo is not None and self.session_tz:
            return moment.astimezone(self.session_tz)
        return moment

    def cursor(self, table: pa.Table) -> Cursor | None:
        """`SqlConnector._cursor` of the page: the last row whose change time is readable
        and not past the horizon."""
        connector = self.connector
        updated = table.column(connector.updated_at_column)
        key = table.column(connector.key_column)
        for index in range(table.num_rows - 1, -1, -1):
            moment = self.value(updated[index].as_py())
            if isinstance(moment, datetime) and not beyond(moment, connector.horizon):
                order = connector.keyset_order
                return SqlCursor(moment, key[index].as_py(), order).to_cursor()
        return None

    def raw_records(self, table: pa.Table) -> list[RawRecord]:
        return raw_records(table, key=self.connector.key_column, session_tz=self.session_tz)


def raw_records(table: pa.Table, *, key: str, session_tz: tzinfo | None) -> list[RawRecord]:
    """The table's rows as the row reader (psycopg) builds them: NUMERIC as Decimal, zoned
    times in the session's zone."""
    rows = native_rows(table, session_tz=session_tz)
    return [RawRecord(None if r[key] is None else str(r[key]), r) for r in rows]


def native_rows(table: pa.Table, *, session_tz: tzinfo | None) -> list[dict[str, Any]]:
    """The table's rows as dicts of the values the row reader (psycopg) gives."""
    columns = []
    for name in table.column_names:
        field = table.schema.field(name)
        values = table.column(name).to_pylist()
        if is_numeric(field):
            values = [None if v is None else Decimal(v) for v in values]
        elif session_tz is not None and _zoned(field):
            values = [None if v is None else v.astimezone(session_tz) for v in values]
        columns.append(values)
    names = table.column_names
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


@contextmanager
def arrow_pages(connector: SqlConnector) -> Iterator[ArrowPages]:
    pages = ArrowPages(connector)
    try:
        yield pages
    finally:
        pages.close()


def plain(table: pa.Table) -> pa.Table:
    """The table with PostgreSQL's opaque extension columns (NUMERIC) as their text storage;
    their field metadata still says what they were."""
    import pyarrow as pa

    fields, columns = [], []
    for field, column in zip(table.schema, table.columns, strict=True):
        if isinstance(field.type, pa.ExtensionType) or hasattr(field.type, "storage_type"):
            storage = field.type.storage_type
            column = pa.chunked_array([chunk.storage for chunk in column.chunks], type=storage)
            field = pa.field(field.name, storage, field.nullable, field.metadata)
        fields.append(field)
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def is_numeric(field: Any) -> bool:
    """Whether a column was PostgreSQL NUMERIC (ADBC hands it over as text)."""
    metadata = field.metadata or {}
    return metadata.get(b"POSTGRESQL:type") == b"numeric"


def _zoned(field: Any) -> bool:
    return getattr(field.type, "tz", None) is not None
