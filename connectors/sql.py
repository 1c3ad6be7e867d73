"""SQL transport: reads any table of a sector database with keyset pagination.

Rows are read in `(updated_at, key)` order, one bounded page per query:

    WHERE updated_at > :u OR (updated_at = :u AND key > :k) ORDER BY updated_at, key LIMIT n

so rows sharing one `updated_at` across a page boundary are neither skipped nor repeated, and
memory stays bounded by the batch size whatever the table size. The first page of an
incremental read starts `lookback` before the saved cursor, to catch rows a source committed
late with an older `updated_at`; the engine's upsert makes the overlap harmless.

A connector for one SQL system subclasses `SqlConnector`, declares its table and columns, and
writes one mapping function.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, time
from typing import Any, ClassVar

from pydantic import BaseModel, SecretStr
from sqlalchemy import Engine, MetaData, Table, and_, create_engine, func, or_, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, NoSuchTableError, SQLAlchemyError

from connectors.base import Batch, Connector, ConnectorContext, Cursor, Health, Period, RawRecord
from connectors.masking import first_line as _first_line
from connectors.masking import mask_url
from dossierhub.errors import ConfigError, FatalSourceError


class SqlSettings(BaseModel):
    url: SecretStr
    table: str | None = None  # defaults to the connector's declared table


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


class SqlConnector(Connector):
    """Declarations a SQL connector makes; reading, paging and counting are done here."""

    Settings: ClassVar[type[BaseModel]] = SqlSettings
    supports_partitions = True  # slices by the integer key: key % n == i
    table_name: ClassVar[str]
    columns: ClassVar[tuple[str, ...]]
    updated_at_column: ClassVar[str]
    key_column: ClassVar[str]
    received_column: ClassVar[str]  # local-time column that dates a dossier, for count()

    def __init__(self, context: ConnectorContext) -> None:
        super().__init__(context)
        self._url: SecretStr = self.settings.url  # type: ignore[attr-defined]
        self._table_name: str = self.settings.table or self.table_name  # type: ignore[attr-defined]
        self._engine: Engine | None = None
        self._table: Table | None = None

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
        table = self._reflect()
        updated, key = table.c[self.updated_at_column], table.c[self.key_column]
        query = select(*(table.c[name] for name in self.columns)).order_by(updated, key)
        if (part := self.context.slice()) is not None:
            query = query.where(key % part[1] == part[0])
        limit = self.context.batch_size
        last: tuple[Any, Any] | None = None
        if cursor is not None:
            last = (datetime.fromisoformat(cursor["updated_at"]), cursor["key"])
        first_page = True
        while True:
            page = query
            if last is not None:
                if first_page and self.context.lookback.total_seconds() > 0:
                    page = page.where(updated >= last[0] - self.context.lookback)
                else:
                    page = page.where(
                        or_(updated > last[0], and_(updated == last[0], key > last[1]))
                    )
            first_page = False
            try:
                with self.engine.connect() as conn:
                    result = conn.execute(page.limit(limit))
                    names = list(result.keys())
                    rows = [dict(zip(names, row, strict=True)) for row in result]
            except SQLAlchemyError as exc:
                raise self._fail(f"reading {self._table_name} failed: {_first_line(exc)}") from None
            if not rows:
                return
            tail = rows[-1]
            last = (tail[self.updated_at_column], tail[self.key_column])
            yield Batch(
                [RawRecord(_text(row[self.key_column]), row) for row in rows],
                {"updated_at": last[0].isoformat(), "key": last[1]},
            )
            if len(rows) < limit:
                return

    def count(self, period: Period | None) -> int:
        table = self._reflect()
        if period is None:
            return self._scalar(select(func.count()).select_from(table), "counting rows")
        received = table.c[self.received_column]
        start, end = datetime.combine(period.start, time()), datetime.combine(period.end, time())
        query = select(func.count()).where(received >= start, received < end)
        return self._scalar(query, f"counting dossiers received {period.start}..{period.end}")

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
