"""Partitions of a SQL source: n disjoint slices that together hold every row.

A source configured with `partitions: n` is read by n syncs at once, slice i of n each. A row
belongs to exactly one slice, chosen from its key column:

* an integer (or other numeric) key: `key % n`, as always (so existing deployments keep their
  slices and cursors); a negative key is taken modulo n too (`(key % n + n) % n`), where the
  bare `%` of SQL left it in no slice;
* any other key (text, UUID): the first 32 bits of the MD5 of the key's text, as an unsigned
  integer, `% n`. `key % n` on text put every row in slice 0. MD5 is built into PostgreSQL and
  MariaDB/MySQL and given to SQLite as a function, and all three hash the key's UTF-8 text, so
  a key lands in the same slice on each (`python: int(md5(key.encode()).hexdigest()[:8], 16)`).

A row without a key is in no slice of the keyset read; the transport reads it in slice 0.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Engine, Integer, Numeric, String, cast, event
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from connectors.errors import ConfigError

HASHED_DIALECTS = ("sqlite", "postgresql", "mysql", "mariadb")
_SQLITE_FUNCTION = "dossierhub_key_hash"


def key_hash_of(text: str) -> int:
    """The hash a text key is partitioned by, as every database computes it."""
    return int(hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()[:8], 16)


class KeyHash(FunctionElement[int]):
    """The first 32 bits of MD5 of a key's text, as an unsigned integer (see `key_hash_of`)."""

    type = BigInteger()
    inherit_cache = True


@compiles(KeyHash, "postgresql")
def _key_hash_postgresql(element: KeyHash, compiler: SQLCompiler, **kw: Any) -> str:
    text = compiler.process(element.clauses, **kw)
    return f"('x' || substr(md5({text}), 1, 8))::bit(32)::bigint"


@compiles(KeyHash, "mysql")
@compiles(KeyHash, "mariadb")
def _key_hash_mysql(element: KeyHash, compiler: SQLCompiler, **kw: Any) -> str:
    text = compiler.process(element.clauses, **kw)
    return f"CAST(CONV(SUBSTRING(MD5(CONVERT({text} USING utf8mb4)), 1, 8), 16, 10) AS UNSIGNED)"


@compiles(KeyHash, "sqlite")
def _key_hash_sqlite(element: KeyHash, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{_SQLITE_FUNCTION}({compiler.process(element.clauses, **kw)})"


def _sqlite_key_hash(value: Any) -> int | None:
    if value is None:
        return None
    return key_hash_of(value if isinstance(value, str) else str(value))


def prepare(engine: Engine) -> None:
    """Give a SQLite source the hash function (PostgreSQL and MariaDB have MD5 built in)."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _register(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.create_function(_SQLITE_FUNCTION, 1, _sqlite_key_hash, deterministic=True)


def in_partition(
    key: Any, part: tuple[int, int], *, dialect: str, source: str
) -> ColumnElement[bool]:
    """Whether a row is in slice `part` = (index, count), judged by its key column."""
    index, count = part
    if is_numeric(key):
        return (key % count + count) % count == index
    if dialect not in HASHED_DIALECTS:
        raise ConfigError(
            f"source {source!r}: key column {key.name} is not an integer, and partitions of a "
            "text key are hashed with MD5, which DossierHub computes only on SQLite, "
            f"PostgreSQL and MariaDB/MySQL, not {dialect}: set 'partitions' to 1 for this source"
        )
    return KeyHash(cast(key, String)) % count == index


def is_numeric(key: Any) -> bool:
    """Whether a key column holds numbers (`key % n` slices it), by its declared type."""
    return isinstance(key.type, Integer | Numeric)
