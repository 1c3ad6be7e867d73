"""Partitions of a SQL source on real SQLite, PostgreSQL and MariaDB: the n slices of a table
are disjoint, hold every row between them and are about even, whether its key is text (hashed)
or an integer (`key % n`, as before)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import ClassVar

import pytest
from pydantic import SecretStr
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, create_engine, insert

from connectors.base import ConnectorContext, RawRecord
from connectors.errors import ConfigError
from connectors.identifiers import IdentifierHasher
from connectors.sql import SqlConnector
from connectors.sql_partitions import in_partition, key_hash_of
from models.dossier import DossierRecord

HASHER = IdentifierHasher(SecretStr("partition-test-key-" + "p" * 32))
FIRST = datetime(2026, 3, 2, 8, 0)
ROWS = 3000


class Keyed(SqlConnector):
    """A source read only for its keys: the mapping is not what these tests are about."""

    mapping_file = "tests/connectors/test_sql_partitions.py"
    table_name = "ho_so"
    columns: ClassVar[tuple[str, ...]] = ("ma", "cap_nhat", "nhan")
    updated_at_column = "cap_nhat"
    key_column = "ma"
    received_column = "nhan"

    def to_canonical(self, raw: RawRecord) -> DossierRecord:
        raise NotImplementedError


def make_table(url: str, key: Column[object], keys: list[object]) -> None:
    """`ho_so` with the given keys; 7 rows share each change time (ties across pages), and
    every 500th row has none (read apart from the keyset, in its slice too)."""
    table = Table("ho_so", MetaData(), key, Column("cap_nhat", DateTime), Column("nhan", DateTime))
    engine = create_engine(url)
    table.create(engine)
    rows = [
        {
            "ma": value,
            "cap_nhat": None if n % 500 == 0 else FIRST + timedelta(seconds=n // 7),
            "nhan": FIRST,
        }
        for n, value in enumerate(keys)
    ]
    with engine.begin() as conn:
        conn.execute(insert(table), rows)
    engine.dispose()


def read_partition(url: str, index: int, count: int) -> list[object]:
    connector = Keyed(
        ConnectorContext(
            source="keyed",
            settings={"url": url},
            hasher=HASHER,
            batch_size=97,
            partition=f"{index}/{count}",
        )
    )
    try:
        return [raw.payload["ma"] for batch in connector.read(None) for raw in batch.records]
    finally:
        connector.close()


def assert_slices_partition(url: str, keys: list[object], count: int) -> list[list[object]]:
    """The `count` slices are disjoint, cover every row once, and are within 20% of even."""
    slices = [read_partition(url, i, count) for i in range(count)]
    seen = Counter(key for part in slices for key in part)
    assert set(seen) == set(keys), "a row is in no slice"
    assert max(seen.values()) == 1, "a row is in two slices, or read twice in one"
    even = len(keys) / count
    sizes = [len(part) for part in slices]
    assert all(abs(size - even) <= 0.2 * even for size in sizes), sizes
    return slices


def text_keys() -> list[object]:
    # Receipt codes, and some keys beyond ASCII: every database must hash the same UTF-8.
    codes: list[object] = [f"000.00.06.H56-2603{n % 28 + 1:02d}-{n:04d}" for n in range(ROWS)]
    for n in range(0, ROWS, 10):
        codes[n] = f"HS-Đà Nẵng-{n}"
    return codes


@pytest.mark.parametrize("count", [2, 3, 5])
def test_the_slices_of_a_text_keyed_table_are_disjoint_complete_and_even(
    source_url: str, count: int
) -> None:
    keys = text_keys()
    make_table(source_url, Column("ma", String(60), primary_key=True), keys)
    slices = assert_slices_partition(source_url, keys, count)
    # Every database puts a key where the others (and Python) do: the first 32 bits of MD5.
    for index, part in enumerate(slices):
        assert {key_hash_of(str(key)) % count for key in part} == {index}


def test_the_slices_of_an_integer_keyed_table_stay_key_mod_n_and_take_negative_keys(
    source_url: str,
) -> None:
    keys: list[object] = list(range(-30, ROWS - 30))  # a source that numbered from below zero
    make_table(source_url, Column("ma", Integer, primary_key=True, autoincrement=False), keys)
    slices = assert_slices_partition(source_url, keys, 3)
    for index, part in enumerate(slices):
        assert {int(str(key)) % 3 for key in part} == {index}  # Python's %: never negative


def test_a_text_key_on_a_database_without_the_hash_is_refused_with_the_fix() -> None:
    key = Column("ma", String(60))
    with pytest.raises(ConfigError) as refused:
        in_partition(key, (0, 2), dialect="mssql", source="keyed")
    message = str(refused.value)
    assert "'keyed'" in message and "ma" in message and "'partitions' to 1" in message
    assert in_partition(Column("id", Integer), (0, 2), dialect="mssql", source="keyed") is not None
