"""Typed SQL cursors against real SQLite and PostgreSQL sources: a cursor saved before cursors
were versioned still resumes where it stood; a cursor another connector or version wrote is
refused with one message naming the source, what was found and the fix."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, create_engine, select

from connectors.base import ConnectorContext
from connectors.cursors import SQL_CURSOR_VERSION, SqlCursor, describe_cursor
from connectors.errors import FatalSourceError
from connectors.identifiers import IdentifierHasher
from connectors.tax import TaxConnector
from dossierhub.sync import sync_source
from models.tables import sync_state
from simulators import tax

HASHER = IdentifierHasher(SecretStr("cursor-test-key-" + "c" * 32))
CHANGED = datetime(2026, 11, 2, 9, 0)  # after every generated row, before today


@pytest.fixture(params=["sqlite", "postgresql"])
def tax_url(request: pytest.FixtureRequest) -> str:
    """A Tax source of 60 generated rows on SQLite and on PostgreSQL."""
    url = str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))
    tax.generate(url, rows=60, seed=11)
    return url


def tax_connector(url: str) -> TaxConnector:
    context = ConnectorContext(
        source="tax", settings={"url": url}, hasher=HASHER, batch_size=25, lookback=timedelta(0)
    )
    return TaxConnector(context)


def save_cursor(registry: Engine, cursor: Any) -> None:
    with registry.begin() as conn:
        conn.execute(sync_state.update().values(cursor=cursor))


def change_rows(url: str, ids: list[int]) -> None:
    source = create_engine(url)
    with source.begin() as conn:
        conn.execute(
            tax.tb_hoso.update()
            .where(tax.tb_hoso.c.ID.in_(ids))
            .values(LINH_VUC="Thuế (sửa)", NGAY_CAP_NHAT=CHANGED)
        )
    source.dispose()


def test_the_cursor_saved_is_typed_versioned_and_names_the_keyset_order(
    sqlite_registry: Engine, tax_url: str
) -> None:
    result = sync_source(sqlite_registry, tax_connector(tax_url))
    cursor = result.cursor_after
    assert cursor is not None
    assert (cursor["cursor"], cursor["version"]) == ("sql", SQL_CURSOR_VERSION)
    assert cursor["order"] == ["NGAY_CAP_NHAT", "ID"]
    position = SqlCursor.from_cursor(cursor, source="tax", order=("NGAY_CAP_NHAT", "ID"))
    assert position is not None and position.key == cursor["key"]
    assert position.updated_at == datetime.fromisoformat(cursor["updated_at"])


def test_a_cursor_saved_before_versioning_resumes_where_it_stood(
    sqlite_registry: Engine, tax_url: str
) -> None:
    first = sync_source(sqlite_registry, tax_connector(tax_url))
    assert first.cursor_after is not None
    # The cursor as the code before versioned cursors saved it.
    legacy = {"updated_at": first.cursor_after["updated_at"], "key": first.cursor_after["key"]}
    save_cursor(sqlite_registry, legacy)
    change_rows(tax_url, [3, 4, 5])
    again = sync_source(sqlite_registry, tax_connector(tax_url))
    assert again.status == "succeeded"
    assert (again.rows_read, again.updated) == (3, 3)  # resumed: no full read
    assert again.cursor_after is not None and again.cursor_after["version"] == SQL_CURSOR_VERSION


FOREIGN = {
    "a file-drop manifest": (
        {"manifest": 1, "done": {}, "current": None},
        "a file-drop manifest (version 1)",
    ),
    "an HTTP cursor saved before versioning": (
        {"updated_at": "2026-03-01T08:00:00+07:00", "id": "0001"},
        "a cursor with the fields id, updated_at",
    ),
    "an HTTP cursor": (
        {"cursor": "http", "version": 1, "updated_at": "20260301080000", "id": "0001"},
        "a 'http' cursor of version 1",
    ),
    "a newer version": (
        {
            "cursor": "sql",
            "version": 2,
            "order": ["NGAY_CAP_NHAT", "ID"],
            "updated_at": "2026-03-01T08:00:00",
        },
        "a 'sql' cursor of version 2",
    ),
    "another table's keyset": (
        {
            "cursor": "sql",
            "version": 1,
            "order": ["ngay_cap_nhat", "id"],
            "updated_at": "2026-03-01T08:00:00",
            "key": 4,
        },
        "a SQL keyset cursor over (ngay_cap_nhat, id)",
    ),
    "an unreadable time": (
        {"updated_at": "yesterday", "key": 4},
        "a keyset cursor whose updated_at 'yesterday' is not an ISO date and time",
    ),
}


@pytest.mark.parametrize("kind", list(FOREIGN))
def test_a_foreign_cursor_is_refused_naming_the_source_what_was_found_and_the_fix(
    sqlite_registry: Engine, tax_url: str, kind: str
) -> None:
    cursor, found = FOREIGN[kind]
    with pytest.raises(FatalSourceError) as refused:
        list(tax_connector(tax_url).read(cursor))
    message = str(refused.value)
    assert "'tax'" in message
    assert f"found {found}" in message
    assert "a SQL keyset cursor (version 1) over (NGAY_CAP_NHAT, ID)" in message
    assert "--full-refresh" in message

    # Through the engine: the run fails with that message; a full refresh is the fix.
    sync_source(sqlite_registry, tax_connector(tax_url))
    save_cursor(sqlite_registry, cursor)
    with pytest.raises(FatalSourceError, match="--full-refresh"):
        sync_source(sqlite_registry, tax_connector(tax_url))
    refreshed = sync_source(sqlite_registry, tax_connector(tax_url), full_refresh=True)
    assert refreshed.status == "succeeded" and refreshed.rows_read == 60
    with sqlite_registry.connect() as conn:
        saved = conn.execute(select(sync_state.c.cursor)).scalar_one()
    assert (saved["cursor"], saved["version"]) == ("sql", SQL_CURSOR_VERSION)


def test_a_foreign_cursor_shows_field_names_never_values() -> None:
    shown = describe_cursor({"updated_at": "2026-03-01", "id": "000.00.06.H56-260105-0001"})
    assert shown == "a cursor with the fields id, updated_at"
    assert "H56" not in shown
    with pytest.raises(FatalSourceError, match="found a JSON list, not an object"):
        SqlCursor.from_cursor(["2026-03-01", 4], source="tax", order=("NGAY_CAP_NHAT", "ID"))  # type: ignore[arg-type]
