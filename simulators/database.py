"""What the two SQL reference systems (Tax, Land) share: loading, finding and rewriting rows.

Each keeps its own tables, columns and defects; this module knows only what any such table
has: a single-column primary key, planted defects that SQL can find again, and a receipt code
`{agency}-{yyMMdd}-{seq}` an operator may have to issue anew when repairing a row.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Engine,
    Table,
    and_,
    bindparam,
    create_engine,
    insert,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.schema import CreateTable
from sqlalchemy.types import TypeDecorator

from simulators.common import Defect

T = TypeVar("T")
CHUNK = 5000  # rows per statement (or per COPY) when loading and rewriting
DOSSIER_CODE = re.compile(r"[0-9A-Za-z][0-9A-Za-z.\-/_]{2,63}")


@dataclass(frozen=True)
class RowDefect(Defect[list[Any]]):
    """A defect planted in a generated row, with the SQL that finds it in the table again."""

    found: Callable[[Any], ColumnElement[bool]]  # SQL test for the planted value, never NULL


def assign(at: Mapping[str, int], **values: Any) -> Callable[[list[Any]], None]:
    """A defect's plant that gives the named columns (at the positions `at` gives) these values."""

    def plant(row: list[Any]) -> None:
        for name, value in values.items():
            row[at[name]] = value

    return plant


def valid(table: Table, defects: Iterable[RowDefect]) -> ColumnElement[bool]:
    """Rows carrying none of the planted defects."""
    return not_(or_(*(defect.found(table.c) for defect in defects)))


def earlier(column: ColumnElement[Any], than: ColumnElement[Any]) -> ColumnElement[bool]:
    """Rows where both times are set and `column` comes before `than` (a date before receipt)."""
    return and_(column.is_not(None), than.is_not(None), column < than)


@contextmanager
def opened(url: str) -> Iterator[Engine]:
    """An engine for `url`, disposed of on the way out: a simulator call keeps no connections."""
    engine = create_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def create(conn: Connection, tables: Sequence[Table], *, indexes: bool) -> None:
    """Drop and create `tables` (in dependency order), with their indexes or without."""
    for table in reversed(tables):
        table.drop(conn, checkfirst=True)
    for table in tables:
        conn.execute(CreateTable(table))
        if indexes:
            for index in table.indexes:
                index.create(conn)


def fill(url: str, tables: Sequence[Table], batches: Iterable[Sequence[list[list[Any]]]]) -> None:
    """Rebuild `tables` at `url` from batches holding a list of rows for each table, in order.

    Indexes are built after the load: one sort instead of a million index updates.
    PostgreSQL loads by COPY.
    """
    with opened(url) as engine:
        with engine.begin() as conn:
            create(conn, tables, indexes=False)
        if engine.dialect.name == "postgresql":
            _copy(engine, tables, batches)
        else:
            names = [[column.name for column in table.columns] for table in tables]
            with engine.begin() as conn:
                for batch in batches:
                    for table, columns, rows in zip(tables, names, batch, strict=True):
                        if rows:
                            values = [dict(zip(columns, row, strict=True)) for row in rows]
                            conn.execute(insert(table), values)
        with engine.begin() as conn:
            for table in tables:
                for index in table.indexes:
                    index.create(conn)


def _copy(
    engine: Engine, tables: Sequence[Table], batches: Iterable[Sequence[list[list[Any]]]]
) -> None:
    from psycopg import sql

    statements = [
        sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table.name),
            sql.SQL(", ").join(sql.Identifier(column.name) for column in table.columns),
        )
        for table in tables
    ]
    # COPY bypasses the column types: a custom type's bind step (a time zone, say) runs here.
    custom = [
        [
            (i, column.type)
            for i, column in enumerate(table.columns)
            if isinstance(column.type, TypeDecorator)
        ]
        for table in tables
    ]
    raw = engine.raw_connection()
    try:
        driver = raw.driver_connection
        assert driver is not None
        with driver.cursor() as cursor:
            for batch in batches:
                for statement, types, rows in zip(statements, custom, batch, strict=True):
                    with cursor.copy(statement) as copy:
                        for row in rows:
                            for i, type_ in types:
                                row[i] = type_.process_bind_param(row[i], engine.dialect)
                            copy.write_row(row)
            # Keys were given explicitly: move the sequences past them for later inserts.
            for table in tables:
                if table.autoincrement_column is not None:
                    cursor.execute(
                        sql.SQL(
                            "SELECT setval(pg_get_serial_sequence({}, {}), "
                            "GREATEST((SELECT max({}) FROM {}), 1))"
                        ).format(
                            sql.Literal(table.name),
                            sql.Literal(table.autoincrement_column.name),
                            sql.Identifier(table.autoincrement_column.name),
                            sql.Identifier(table.name),
                        )
                    )
        raw.commit()
    finally:
        raw.close()


def fetch(conn: Connection, table: Table, keys: Sequence[Any]) -> dict[Any, dict[str, Any]]:
    """The rows with these primary keys, by key; raises `ValueError` naming keys not found."""
    key = _key(table)
    found: dict[Any, dict[str, Any]] = {}
    for some in chunks(keys, 1000):
        for row in conn.execute(select(table).where(key.in_(some))).mappings():
            found[row[key.name]] = dict(row)
    missing = [ident for ident in keys if ident not in found]
    if missing:
        raise ValueError(f"no rows with {key.name} {missing[:10]} in {table.name}")
    return found


def recode(
    conn: Connection,
    rows: Sequence[dict[str, Any]],
    code: Column[Any],
    *,
    agency: str,
    received: str,
) -> None:
    """Give each row whose `code` is blank or malformed an unused `{agency}-{yyMMdd}-{seq}`."""
    uncoded = [row for row in rows if not DOSSIER_CODE.fullmatch(row[code.name] or "")]
    if not uncoded:
        return

    def prefix(row: dict[str, Any]) -> str:
        return f"{row[agency]}-{row[received]:%y%m%d}-"

    following = dict.fromkeys(map(prefix, uncoded), 1)  # prefix -> next free sequence number
    # The code column has no index, so any filter is a full scan anyway; one plain scan
    # filtered here is far cheaper than the server testing a LIKE pattern per prefix.
    for stored in conn.execute(select(code).execution_options(yield_per=10_000)).scalars():
        head, _, tail = stored.rpartition("-")
        known = f"{head}-"
        if known in following and tail.isdigit():
            following[known] = max(following[known], int(tail) + 1)
    for row in uncoded:
        stem = prefix(row)
        row[code.name] = f"{stem}{following[stem]:04d}"
        following[stem] += 1


def repair_receipt(
    row: dict[str, Any], when: datetime, *, days: int, submitted: str, received: str, due: str
) -> datetime:
    """Make a row's receipt dates consistent, as an operator would; return the receipt time.

    A missing receipt time is taken from the submission, else from `when` (whole seconds); a
    submission after the receipt moves to it; a due date missing or before the receipt
    becomes `days` after it.
    """
    receipt: datetime = row[received] or row[submitted] or when.replace(microsecond=0)
    row[received] = receipt
    if row[submitted] is not None and row[submitted] > receipt:
        row[submitted] = receipt
    if row[due] is None or row[due] < receipt:
        row[due] = receipt + timedelta(days=days)
    return receipt


def rewrite(conn: Connection, table: Table, rows: Iterable[dict[str, Any]]) -> None:
    """Store every column of `rows`, each by its primary key."""
    key = _key(table)
    change = (
        update(table)
        .where(key == bindparam(f"b_{key.name}"))
        .values({c.name: bindparam(f"b_{c.name}") for c in table.columns if c is not key})
    )
    for batch in chunks(rows, CHUNK):
        conn.execute(change, [{f"b_{name}": value for name, value in row.items()} for row in batch])


def column_of(url: str, column: Column[Any], keys: Iterable[Any]) -> dict[Any, Any]:
    """`column` of the rows with these primary keys, by key (absent keys are left out)."""
    key = _key(column.table)
    with opened(url) as engine, engine.connect() as conn:
        return {
            ident: value
            for chunk in chunks(sorted(set(keys)), 1000)
            for ident, value in conn.execute(select(key, column).where(key.in_(chunk)))
        }


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """`items` in lists of `size` (the last one shorter), for batched statements."""
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _key(table: Table) -> Column[Any]:
    (key,) = table.primary_key.columns
    return key
