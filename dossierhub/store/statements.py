"""Statement helpers the batch writers share: ids in chunks, `= ANY` lookups, binary COPY."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    any_,
    bindparam,
)
from sqlalchemy.dialects import postgresql

from models.tables import (
    UtcDateTime,
)


def _id_chunks(conn: Connection, ids: list[str]) -> Iterator[list[str]]:
    # PostgreSQL takes the whole list as one array parameter; SQLite limits bound parameters.
    size = len(ids) or 1 if conn.dialect.name == "postgresql" else 10_000
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _among(conn: Connection, column: Any, ids: list[str]) -> Any:
    """`column IN ids`: one array parameter on PostgreSQL (= ANY), expanded elsewhere."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, ids, type_=postgresql.ARRAY(String)))
    return column.in_(ids)


def _copy(
    conn: Connection, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """COPY rows into a table on the caller's PostgreSQL transaction."""
    with _binary_copy(conn, table.name, columns) as copy:
        copy.set_types([_PG_TYPES[type(table.c[name].type)] for name in columns])
        for row in rows:
            copy.write_row(row)


@contextmanager
def _binary_copy(conn: Connection, table: str, columns: Sequence[str]) -> Iterator[Any]:
    """A binary COPY into `table` on the caller's PostgreSQL transaction (psycopg's `Copy`)."""
    driver = conn.connection.driver_connection
    assert driver is not None
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    with driver.cursor() as cur, cur.copy(statement) as copy:
        yield copy


_PG_TYPES = {
    String: "text",
    Text: "text",
    SmallInteger: "int2",
    Integer: "int4",
    BigInteger: "int8",
    Boolean: "bool",
    UtcDateTime: "timestamptz",
}
