"""The columnar form of a declared mapping (connectors/frames.py): what it cannot state exactly
on columns, it leaves to the row path."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

import pyarrow as pa
from pydantic import SecretStr

from connectors.base import ConnectorContext
from connectors.identifiers import IdentifierHasher
from connectors.mapping import Code, FieldMapping, Time, Value
from connectors.sql import SqlConnector
from models.dossier import Status

_NUMERIC = {b"POSTGRESQL:type": b"numeric"}
NOW = datetime(2026, 3, 2, 8, 0)


class Numeric(SqlConnector):
    mapping_file = "tests/connectors/test_frames.py"
    table_name = "ho_so"
    key_column = "id"
    mapping: ClassVar[FieldMapping] = FieldMapping(
        Value("so", "sector"),  # NUMERIC: a Decimal on the row path, text in Arrow
        Code("tt", "status", {"xong": Status.RESOLVED}, raw_field="status_raw"),
        Time("nhan", "received_at", required=True),
        Time("cap_nhat", "source_updated_at"),
    )


def frame(rows: dict[str, list[Any]]) -> Any:
    schema = pa.schema(
        [
            ("id", pa.int64()),
            pa.field("so", pa.string(), metadata=_NUMERIC),
            ("tt", pa.string()),
            ("nhan", pa.timestamp("us")),
            ("cap_nhat", pa.timestamp("us")),
        ]
    )
    context = ConnectorContext(
        source="numeric",
        settings={"url": "postgresql+psycopg://nobody@127.0.0.1:1/none"},  # never opened
        hasher=IdentifierHasher(SecretStr("frames-test-key-" + "f" * 32)),
    )
    return Numeric(context).to_canonical_frame(pa.Table.from_pydict(rows, schema=schema))


def test_the_columns_read_follow_from_the_mapping() -> None:
    assert Numeric.columns == ("id", "so", "tt", "nhan", "cap_nhat")
    assert (Numeric.updated_at_column, Numeric.received_column) == ("cap_nhat", "nhan")


def test_a_value_the_columns_hold_otherwise_than_the_rows_takes_the_row_path() -> None:
    mapped = frame(
        {
            "id": [1, 2],
            "so": [str(Decimal("1.5")), None],
            "tt": ["xong", "xong"],
            "nhan": [NOW, NOW],
            "cap_nhat": [NOW, NOW],
        }
    )
    assert mapped.get_column("mapped_ok").to_list() == [False, True]


def test_each_distinct_code_is_read_by_the_spec_itself() -> None:
    mapped = frame(
        {
            "id": [1, 2, 3],
            "so": [None, None, None],
            "tt": ["xong", "khac", "xong"],
            "nhan": [NOW, NOW, None],
            "cap_nhat": [NOW, NOW, NOW],
        }
    )
    resolved = Status.RESOLVED.value
    assert mapped.get_column("status").to_list() == [resolved, None, resolved]
    assert mapped.get_column("status_raw").to_list() == ["xong", None, "xong"]
    assert mapped.get_column("mapped_ok").to_list() == [True, False, False]
