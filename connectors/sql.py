"""SQL transport: reads any table of a sector database with keyset pagination.

Rows are read in `(updated_at, key)` order, one bounded page per query:

    WHERE updated_at >= :u AND (updated_at > :u OR key > :k) ORDER BY updated_at, key LIMIT n

so rows sharing one `updated_at` across a page boundary are neither skipped nor repeated, and
memory stays bounded by the batch size whatever the table size. The first page of an
incremental read starts `lookback` before the saved cursor, to catch rows a source committed
late with an older `updated_at`; the engine's upsert makes the overlap harmless.

A row the keyset cannot place is quarantined, never a crash and never skipped: a row without a
key or a change time is read apart on every sync; a change time the column type cannot read
(an empty string, a zero date) stays raw for `screen()` to name; and the cursor only stands on
a readable change time no later than now + `future_tolerance`, so a row dated 9999 cannot hide
every later change behind it.

The cursor saved with each batch is a typed, versioned keyset position (`SqlCursor` in
`connectors/cursors.py`); one another connector or version wrote is refused with the fix.
Partitions slice the table by its key (`connectors/sql_partitions.py`).

A connector for one SQL system subclasses `SqlConnector` and declares its table, its key and
its mapping; the columnar sync derives its frame mapping from that (connectors/frames.py).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any, ClassVar

from pydantic import BaseModel, SecretStr
from sqlalchemy import (
    ColumnElement,
    Date,
    DateTime,
    Engine,
    MetaData,
    Table,
    Time,
    and_,
    bindparam,
    create_engine,
    func,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, NoSuchTableError, SQLAlchemyError
from sqlalchemy.types import NullType

from connectors import sql_arrow
from connectors.base import (
    ArrowBatch,
    Batch,
    Connector,
    ConnectorContext,
    Cursor,
    Health,
    RawRecord,
    as_utc,
    beyond,
)
from connectors.cursors import SqlCursor
from connectors.errors import ConfigError, FatalSourceError, Reason
from connectors.masking import first_line as _first_line
from connectors.masking import mask_url
from connectors.sql_partitions import in_partition, prepare
from models.period import Period

log = logging.getLogger(__name__)


class SqlSettings(BaseModel):
    url: SecretStr
    table: str | None = None  # defaults to the connector's declared table
    # Read, map and check whole pages as columns when the connector declares its mapping and
    # the source is PostgreSQL (connectors/sql_arrow.py); false keeps the row-by-row path.
    columnar: bool = True


def safe_url(url: SecretStr | str) -> str:
    """The database URL with its password and secret query parameters masked (messages, logs)."""
    text = url.get_secret_value() if isinstance(url, SecretStr) else url
    try:
        make_url(text)
    except ArgumentError:
        return "<unparseable URL>"
    return mask_url(text)


# The driver each database is reached with: the ones installed with DossierHub.
BUNDLED_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}
URL_FORMS = (
    "postgresql+psycopg://user:***@host:5432/db, mysql+pymysql://user:***@host:3306/db, "
    "mariadb+pymysql://user:***@host:3306/db or sqlite:///path/to/file.db"
)


def with_bundled_driver(url: URL) -> URL:
    """The URL with the bundled driver when it names none (`mysql://` is mysql+pymysql://)."""
    driver = BUNDLED_DRIVERS.get(url.drivername)
    return url.set(drivername=driver) if driver else url


def open_database(url: SecretStr | str, *, where: str, **options: Any) -> Engine:
    """An engine on a database URL, the bundled driver filled in; a ConfigError naming the fix
    for a URL that is not one, or a driver that is not installed."""
    text = url.get_secret_value() if isinstance(url, SecretStr) else url
    try:
        parsed = with_bundled_driver(make_url(text))
    except ArgumentError:
        raise ConfigError(f"{where} is not a database URL; write one of {URL_FORMS}") from None
    try:
        return create_engine(parsed, **options)
    except NoSuchModuleError:
        raise ConfigError(
            f"{where}: {safe_url(text)} names a database DossierHub has no dialect for "
            f"({parsed.drivername}); write one of {URL_FORMS}"
        ) from None
    except ImportError as exc:
        module = getattr(exc, "name", None) or "its module"
        raise ConfigError(
            f"{where}: driver {parsed.get_driver_name()!r} of {safe_url(text)} is not installed "
            f"(no module {module!r}); use a bundled driver: {URL_FORMS}"
        ) from None


# Declarations a mapping makes unless declared: the column it reads into each field.
_MAPPED_COLUMNS = {"updated_at_column": "source_updated_at", "received_column": "received_at"}


class SqlConnector(Connector[SqlSettings]):
    """Declarations a SQL connector makes; reading, paging and counting are done here.

    A mapping must map a row from the database and one back from quarantine as JSON (times,
    decimals as text) the same; naive times are local (the model reads them so)."""

    Settings: ClassVar[type[BaseModel]] = SqlSettings
    full_read_is_current = True  # a full read is the source's current state
    supports_partitions = True  # slices by key % n, or a hash of a text key (sql_partitions)
    table_name: ClassVar[str]
    key_column: ClassVar[str]
    # With a declared mapping, these follow from it (_MAPPED_COLUMNS; `columns`: the key's and
    # the mapping's, read in the table's order) unless declared (to read more, for `adjust`).
    updated_at_column: ClassVar[str]
    received_column: ClassVar[str]  # local-time column that dates a dossier, for count()
    columns: ClassVar[tuple[str, ...]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        mapping = cls.__dict__.get("mapping")
        for name, field in _MAPPED_COLUMNS.items():
            if mapping is not None and name not in cls.__dict__ and mapping.column_of(field):
                setattr(cls, name, mapping.column_of(field))
        if mapping is not None and "columns" not in cls.__dict__:
            read = (cls.key_column, *mapping.columns, cls.updated_at_column, cls.received_column)
            cls.columns = tuple(dict.fromkeys(read))
        super().__init_subclass__(**kwargs)

    def __init__(self, context: ConnectorContext) -> None:
        super().__init__(context)
        self._url: SecretStr = self.settings.url
        self._table_name: str = self.settings.table or self.table_name
        self._engine: Engine | None = None
        self._table: Table | None = None
        self._convert: dict[str, Any] | None = None
        self._pages: sql_arrow.ArrowPages | None = None
        self.horizon = context.horizon()

    # -- connection and schema ------------------------------------------------------------
    def _fail(self, message: str) -> FatalSourceError:
        text = message.replace(self._url.get_secret_value(), safe_url(self._url))
        return FatalSourceError(self.source, text)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = open_database(
                self._url, where=f"source {self.source!r}: setting 'url'", pool_pre_ping=True
            )
            prepare(self._engine)
        return self._engine

    def _reflect(self) -> Table:
        if self._table is not None:
            return self._table
        try:
            with self.engine.connect() as conn:
                table = Table(self._table_name, MetaData(), autoload_with=conn)
        except NoSuchTableError:
            raise self._fail(
                f"table {self._table_name} not found in {safe_url(self._url)} "
                f"(check the 'table' setting or the mapping in {self.mapping_file})"
            ) from None
        except SQLAlchemyError as exc:
            raise self._fail(
                f"cannot reach the database at {safe_url(self._url)}: {_first_line(exc)} "
                "(check the 'url' setting and that the database is running)"
            ) from None
        missing = [name for name in self.columns if name not in table.c]
        if missing:
            raise self._fail(
                f"column{'s' if len(missing) > 1 else ''} {', '.join(missing)} missing in table "
                f"{self._table_name} (check the mapping in {self.mapping_file})"
            )
        self._table = table
        return table

    def check(self) -> Health:
        table = self._reflect()
        rows = self._scalar(select(func.count()).select_from(table), "counting rows")
        return Health(True, f"table {self._table_name} readable, {rows} rows")

    def _scalar(self, query: Any, doing: str) -> int:
        try:
            with self.engine.connect() as conn:
                return int(conn.execute(query).scalar_one())
        except SQLAlchemyError as exc:
            raise self._fail(f"{doing} in {self._table_name} failed: {_first_line(exc)}") from None

    # -- reading --------------------------------------------------------------------------
    def read(self, cursor: Cursor | None) -> Iterator[Batch]:
        keyed, updated, key, apart = self._queries()
        yield from self._read_keyed(keyed, updated, key, cursor)
        yield from self._read_apart(apart)

    def read_arrow(self, cursor: Cursor | None) -> Iterator[ArrowBatch | Batch] | None:
        why = sql_arrow.unavailable(self)
        if why is not None:
            log.info("source %r: reading row by row: %s", self.source, why)
            return None
        return self._read_arrow(cursor)

    def _read_arrow(self, cursor: Cursor | None) -> Iterator[ArrowBatch | Batch]:
        keyed, updated, key, apart = self._queries()
        with sql_arrow.arrow_pages(self) as pages:
            self._pages = pages
            yield from self._read_keyed(keyed, updated, key, cursor, fetch=pages.fetch)
        # The few rows the keyset cannot place are read and mapped row by row.
        yield from self._read_apart(apart)

    def raw_records(self, table: Any) -> list[RawRecord]:
        return [RawRecord(_text(row[self.key_column]), row) for row in self.native_rows(table)]

    def native_rows(self, table: Any) -> list[dict[str, Any]]:
        """An Arrow table's rows as the row reader gives them (NUMERIC as Decimal...)."""
        zone = None if self._pages is None else self._pages.session_tz
        return sql_arrow.native_rows(table, session_tz=zone)

    def to_canonical_frame(self, table: Any) -> Any:
        """The declared mapping on the page's columns (connectors/frames.py)."""
        from connectors.frames import mapped_frame  # polars: the optional columnar extra

        return mapped_frame(self, table)

    def adjust_frame(self, fields: dict[str, Any]) -> None:
        """`adjust` on columns (polars expressions by canonical field); a connector that
        overrides `adjust` without this beside it is read row by row."""

    def _queries(self) -> tuple[Any, Any, Any, Any]:
        """The keyset query (without its page bounds), its two order columns, and the query
        of the rows the keyset cannot place."""
        table = self._reflect()
        updated, key = table.c[self.updated_at_column], table.c[self.key_column]
        # Time columns are read as the driver gives them and converted here, one value at a
        # time: an empty string or a zero date (0000-00-00) in one row must not fail the page.
        query = select(*(_raw(column) for column in table.c if column.name in self.columns))
        part = self.context.slice()
        # No dossier changed before 2000: an earlier value is a broken one (a zero date, an
        # empty string) that sorts before every cursor, so the keyset would only ever reach
        # it on a full read. It is read apart instead, with rows lacking an id or a time.
        column, floor = _bound(updated, FLOOR)
        keyed = query.where(
            column >= floor, *(c.is_not(None) for c in (updated, key) if c.nullable)
        ).order_by(updated, key)
        if part is not None:
            keyed = keyed.where(self._in_partition(key, part))
        # Rows the keyset order cannot place (PostgreSQL would never reach a NULL, SQLite and
        # MariaDB would crash on it) are read apart on every sync and quarantined. A NULL id
        # is in no slice: the first slice reads it.
        misplaced: ColumnElement[bool] = or_(updated.is_(None), column < floor)
        if part is not None:
            misplaced = and_(misplaced, self._in_partition(key, part))
        apart = [misplaced]
        if key.nullable and (part is None or part[0] == 0):
            apart.append(key.is_(None))
        return keyed, updated, key, query.where(or_(*apart))

    def _in_partition(self, key: Any, part: tuple[int, int]) -> ColumnElement[bool]:
        return in_partition(key, part, dialect=self.engine.dialect.name, source=self.source)

    @property
    def keyset_order(self) -> tuple[str, str]:
        """The columns rows are read in order of, as a saved cursor names them."""
        return (self.updated_at_column, self.key_column)

    def _read_keyed(
        self, query: Any, updated: Any, key: Any, cursor: Cursor | None, fetch: Any = None
    ) -> Iterator[Any]:
        """Keyset pages after `cursor`; `fetch(query)` gives (page, rows, last (updated, key)),
        None when the page is empty (rows as dicts by default, an Arrow table for read_arrow)."""
        fetch = fetch or self._fetch_batch
        limit = self.context.batch_size
        last: tuple[Any, Any] | None = None
        saved = SqlCursor.from_cursor(cursor, source=self.source, order=self.keyset_order)
        if saved is not None:
            last = (saved.updated_at, saved.key)
        first_page = True
        while True:
            page = query
            if last is not None:
                if first_page and self.context.lookback.total_seconds() > 0:
                    column, at = _bound(updated, last[0] - self.context.lookback)
                    page = page.where(column >= at)
                else:
                    # `updated >= u` is an index condition on (updated, key); the OR form
                    # `updated > u OR (updated = u AND key > k)` is not, and made every page
                    # scan the rows before it on PostgreSQL.
                    column, at = _bound(updated, last[0])
                    page = page.where(column >= at, or_(column > at, key > last[1]))
            first_page = False
            fetched = fetch(page.limit(limit))
            if fetched is None:
                return
            batch, size, last = fetched
            yield batch
            if size < limit:
                return

    def _fetch_batch(self, query: Any) -> tuple[Batch, int, tuple[Any, Any]] | None:
        rows = self._fetch(query)
        if not rows:
            return None
        tail = rows[-1]
        last = (tail[self.updated_at_column], tail[self.key_column])
        batch = Batch(
            [RawRecord(_text(row[self.key_column]), row) for row in rows], self._cursor(rows)
        )
        return batch, len(rows), last

    def _read_apart(self, query: Any) -> Iterator[Batch]:
        """Rows outside the keyset order, streamed in batches (few, but never all in memory)."""
        self.horizon = self.context.horizon()
        try:
            with self.engine.connect().execution_options(stream_results=True) as conn:
                result = conn.execute(query)
                names = list(result.keys())
                for chunk in result.partitions(self.context.batch_size):
                    rows = self._converted([dict(zip(names, row, strict=True)) for row in chunk])
                    yield Batch([RawRecord(_text(r[self.key_column]), r) for r in rows], None)
        except SQLAlchemyError as exc:
            raise self._fail(f"reading {self._table_name} failed: {_first_line(exc)}") from None

    def _fetch(self, query: Any) -> list[dict[str, Any]]:
        self.horizon = self.context.horizon()
        try:
            with self.engine.connect() as conn:
                result = conn.execute(query)
                names = list(result.keys())
                rows = [dict(zip(names, row, strict=True)) for row in result]
        except SQLAlchemyError as exc:
            raise self._fail(f"reading {self._table_name} failed: {_first_line(exc)}") from None
        return self._converted(rows)

    def _converted(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for row in rows:
            for name, convert in self._converters().items():
                row[name] = convert(row[name])
        return rows

    def _converters(self) -> dict[str, Any]:
        """Each time column's own conversion, made safe: a value it cannot read stays raw."""
        if self._convert is None:
            table, dialect = self._reflect(), self.engine.dialect
            self._convert = {}
            for name in self.columns:
                column_type = table.c[name].type
                if isinstance(column_type, _TIME_TYPES):
                    process = column_type.dialect_impl(dialect).result_processor(dialect, None)
                    if process is not None:
                        self._convert[name] = _guarded(process)
        return self._convert

    def _cursor(self, rows: list[dict[str, Any]]) -> Cursor | None:
        """The cursor after the page's last row with a readable change time that is not past
        the horizon, or None: a row dated in year 9999 must not move the cursor there, or every
        later change would sort before it and be skipped."""
        for row in reversed(rows):
            moment = row[self.updated_at_column]
            if isinstance(moment, datetime) and not beyond(moment, self.horizon):
                return SqlCursor(moment, row[self.key_column], self.keyset_order).to_cursor()
        return None

    def screen(self, raw: RawRecord) -> list[Reason]:
        reasons = []
        if raw.source_id is None:
            reasons.append(
                Reason(
                    "source_id",
                    "missing",
                    f"{self.key_column} is empty: the row has no id (kept under the SHA-256 of "
                    f"its content; give it an id in {self._table_name})",
                )
            )
        column, moment = self.updated_at_column, raw.payload.get(self.updated_at_column)
        if isinstance(moment, str):  # back from quarantine as JSON, or as the source wrote it
            with contextlib.suppress(ValueError):
                moment = datetime.fromisoformat(moment.strip())
        if moment is None or (isinstance(moment, str) and not moment.strip()):
            reasons.append(Reason("source_updated_at", "missing", f"{column} is empty"))
        elif not isinstance(moment, datetime):
            reasons.append(
                Reason(
                    "source_updated_at",
                    "invalid_datetime",
                    f"{column} {str(moment)[:40]!r} is not a date and time",
                )
            )
        elif beyond(moment, self.horizon):
            reasons.append(_in_future(column, moment, self.context.future_tolerance))
        return reasons

    def cursor_time(self, cursor: Cursor) -> datetime | None:
        moment = SqlCursor.time_of(cursor)
        return None if moment is None else as_utc(moment)

    def count(self, period: Period | None) -> int:
        table = self._reflect()
        if period is None:
            return self._scalar(select(func.count()).select_from(table), "counting rows")
        received = table.c[self.received_column]
        start, end = datetime.combine(period.start, time()), datetime.combine(period.end, time())
        query = select(func.count()).where(received >= start, received < end)
        return self._scalar(query, f"counting dossiers received {period.start}..{period.end}")

    def receipt_day(self, payload: dict[str, Any]) -> date | None:
        # From the database a datetime; back from quarantine's JSON an ISO string.
        value = payload.get(self.received_column)
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value.strip())
            except ValueError:
                return None
        return value.date() if isinstance(value, datetime) else None

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


_TIME_TYPES = (DateTime, Date, Time)
FLOOR = datetime(2000, 1, 1)  # no dossier changed before: an earlier change time is broken


def _raw(column: Any) -> Any:
    """A column as the driver gives it, when it is a time (converted row by row instead)."""
    if isinstance(column.type, _TIME_TYPES):
        return type_coerce(column, NullType()).label(column.name)
    return column


def _bound(column: Any, value: Any) -> tuple[Any, Any]:
    """A keyset bound on `column`: a time bound as the column's type; a value the column's
    type could not read (an empty string in SQLite) compared as the driver gave it."""
    if isinstance(value, datetime):
        return column, bindparam(None, value, type_=column.type)
    return type_coerce(column, NullType()), bindparam(None, value, type_=NullType())


def _guarded(process: Any) -> Any:
    def convert(value: Any) -> Any:
        try:
            return process(value)
        except (ValueError, TypeError):
            return value  # kept as the source wrote it; screen() names the problem

    return convert


def _in_future(column: str, moment: datetime, tolerance: timedelta) -> Reason:
    return Reason(
        "source_updated_at",
        "in_future",
        f"{column} {moment.isoformat()} is later than now + future_tolerance_seconds "
        f"({tolerance.total_seconds():g} s): a clock or data error at the source; the cursor "
        "does not move past it",
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
