"""The SQL transport against real SQLite, PostgreSQL and MariaDB sources: rows the keyset order
cannot place (no id, no readable or plausible change time) are quarantined and reading goes on;
the cursor never moves onto an implausible change time; the page query uses the index."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import (
    Column,
    Engine,
    MetaData,
    Table,
    create_engine,
    event,
    func,
    insert,
    select,
    text,
)

from connectors.base import ConnectorContext
from connectors.identifiers import IdentifierHasher
from connectors.tax import TaxConnector
from dossierhub import store
from dossierhub.settings import Settings, SourceConfig
from dossierhub.sources import open_connector
from dossierhub.sync import sync_source
from models.tables import dossier, quarantine, sync_state
from simulators import tax

HASHER = IdentifierHasher(SecretStr("sql-transport-key-" + "k" * 32))
CHANGED = datetime(2026, 11, 2, 9, 0)  # after every generated row, before today


def tax_connector(url: str, batch_size: int = 50, lookback: float = 0) -> TaxConnector:
    return TaxConnector(
        ConnectorContext(
            source="tax",
            settings={"url": url},
            hasher=HASHER,
            batch_size=batch_size,
            lookback=timedelta(seconds=lookback),
        )
    )


def row(number: int, **overrides: Any) -> dict[str, Any]:
    """A valid Tax row, changed `number` seconds after the first."""
    return {
        "ID": number,
        "MA_HS": f"000.00.06.H56-260105-{number:04d}",
        "MA_HS_QG": None,
        "MA_TTHC": "1.000123",
        "TEN_TTHC": "Đăng ký thuế lần đầu",
        "LINH_VUC": "Thuế",
        "MA_CQ": "000.00.06.H56",
        "MA_DVHC": "22333",
        "NGAY_NOP": datetime(2026, 1, 5, 7, 50),
        "NGAY_NHAN": datetime(2026, 1, 5, 8, 0),
        "NGAY_HEN_TRA": datetime(2026, 1, 12, 17, 0),
        "NGAY_TRA": None,
        "KENH_NOP": "TRUC_TUYEN",
        "MUC_DO": "TOAN_TRINH",
        "TRANG_THAI": 2,
        "LOAI_DT": 2,
        "MST": "0101234567",
        "LE_PHI": 0,
        "NOP_PHI_TT": 0,
        "SO_TP": 3,
        "SO_TP_SO_HOA": 2,
        "KQ_SO_HOA": 0,
        "NGAY_CAP_NHAT": datetime(2026, 1, 6, 9, 0) + timedelta(seconds=number),
        **overrides,
    }


def loose_table(url: str) -> tuple[Engine, Table]:
    """The Tax table's shape without a primary key or NOT NULL rules, as a careless source has."""
    engine = create_engine(url)
    table = Table(tax.TABLE, MetaData(), *(Column(c.name, c.type) for c in tax.tb_hoso.c))
    table.create(engine)
    return engine, table


def count(engine: Engine, table: Any, *where: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def reasons(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(quarantine.c.reason).order_by(quarantine.c.id)).scalars())


# -- 12.1: a change time in year 9999 ------------------------------------------------------
@pytest.mark.parametrize("batch_size", [7, 50, 1000])
def test_rows_changed_after_a_year_9999_row_are_all_applied(
    sqlite_registry: Engine, sqlite_url: str, batch_size: int
) -> None:
    tax.generate(sqlite_url, rows=300, seed=3)
    source = create_engine(sqlite_url)
    c = tax.tb_hoso.c
    with source.begin() as conn:
        conn.execute(
            tax.tb_hoso.update().where(c["ID"] == 1).values(NGAY_CAP_NHAT=datetime(9999, 12, 31))
        )
    first = sync_source(sqlite_registry, tax_connector(sqlite_url, batch_size))
    assert first.quarantined == 1
    assert reasons(sqlite_registry) == ["source_updated_at:in_future"]
    with sqlite_registry.connect() as conn:
        cursor = conn.execute(select(sync_state.c.cursor)).scalar_one()
    assert not cursor["updated_at"].startswith("9999")
    # 100 rows change after the 9999 row was read: every one of them must be applied.
    with source.begin() as conn:
        for n in range(2, 102):
            conn.execute(
                tax.tb_hoso.update()
                .where(c["ID"] == n)
                .values(LINH_VUC="Thuế (sửa)", NGAY_CAP_NHAT=CHANGED + timedelta(seconds=n))
            )
    source.dispose()
    second = sync_source(sqlite_registry, tax_connector(sqlite_url, batch_size))
    assert second.updated == 100
    assert count(sqlite_registry, dossier, dossier.c.sector == "Thuế (sửa)") == 100


def test_a_saved_cursor_left_in_year_9999_is_ignored_and_the_read_resumes_from_the_last_sane_one(
    sqlite_registry: Engine, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    tax.generate(sqlite_url, rows=120, seed=4)
    sync_source(sqlite_registry, tax_connector(sqlite_url))
    with sqlite_registry.begin() as conn:
        sane = conn.execute(select(sync_state.c.cursor)).scalar_one()
        # What the old code saved after reading a row dated 9999.
        conn.execute(
            sync_state.update().values(cursor={"updated_at": "9999-12-31T00:00:00", "key": 7})
        )
    source = create_engine(sqlite_url)
    with source.begin() as conn:
        conn.execute(
            tax.tb_hoso.update()
            .where(tax.tb_hoso.c.ID.in_([3, 4, 5]))
            .values(LINH_VUC="Thuế (sửa)", NGAY_CAP_NHAT=CHANGED)
        )
    source.dispose()
    caplog.set_level(logging.WARNING)
    again = sync_source(sqlite_registry, tax_connector(sqlite_url))
    assert again.updated == 3 and again.rows_read == 3  # from the last sane cursor, not all
    assert again.cursor_before is not None and again.cursor_before["updated_at"].startswith("9999")
    assert "stands past now + the future tolerance" in caplog.text
    assert count(sqlite_registry, dossier, dossier.c.sector == "Thuế (sửa)") == 3
    assert sane["updated_at"] < again.cursor_after["updated_at"]  # type: ignore[index]


# -- 12.5: NULL primary key ------------------------------------------------------------------
@pytest.mark.parametrize("lookback", [0, 300])
def test_rows_without_an_id_are_quarantined_by_content_and_reading_goes_on(
    source_url: str, sqlite_registry: Engine, lookback: float
) -> None:
    engine, table = loose_table(source_url)
    rows = [row(n) for n in range(1, 31)]
    # Rows without an id at a batch end, mid-batch, and sharing a change time with a keyed row.
    for n in (10, 17, 25):
        rows[n - 1] = row(n, ID=None)
    rows.append(row(40, ID=None, NGAY_CAP_NHAT=rows[29]["NGAY_CAP_NHAT"]))
    with engine.begin() as conn:
        conn.execute(insert(table), rows)
    engine.dispose()
    result = sync_source(sqlite_registry, tax_connector(source_url, 10, lookback))
    assert (result.rows_read, result.inserted, result.quarantined) == (31, 27, 4)
    with sqlite_registry.connect() as conn:
        held = conn.execute(select(quarantine.c.source_id, quarantine.c.reason)).all()
    assert len({key for key, _ in held}) == 4
    assert all(key.startswith("sha256:") and len(key) == 71 for key, _ in held)
    assert {reason for _, reason in held} == {"source_id:missing"}
    # An incremental read afterwards still reaches new rows, and keeps no duplicate entries.
    engine = create_engine(source_url)
    with engine.begin() as conn:
        conn.execute(insert(table), [row(50, NGAY_CAP_NHAT=CHANGED)])
    engine.dispose()
    again = sync_source(sqlite_registry, tax_connector(source_url, 10, lookback))
    assert again.inserted == 1
    assert count(sqlite_registry, quarantine) == 4


# -- 12.6: empty or zero-date change times ---------------------------------------------------
@pytest.mark.parametrize("batch_size", [1, 2, 3, 5, 8, 13, 100])
def test_an_empty_or_zero_date_change_time_is_quarantined_whatever_the_batch_size(
    source_url: str, sqlite_registry: Engine, batch_size: int
) -> None:
    engine, table = loose_table(source_url)
    with engine.begin() as conn:
        conn.execute(insert(table), [row(n) for n in range(1, 21)])
        blank = "0000-00-00 00:00:00" if engine.dialect.name == "mysql" else ""
        if engine.dialect.name == "mysql":
            conn.execute(text("SET SESSION sql_mode = ''"))  # lets the zero date in
        if engine.dialect.name != "postgresql":  # a timestamp column holds neither
            conn.execute(
                text(f"UPDATE {tax.TABLE} SET NGAY_CAP_NHAT = :blank WHERE ID IN (4, 12)"),
                {"blank": blank},
            )
        conn.execute(table.update().where(table.c.ID.in_([7, 20])).values(NGAY_CAP_NHAT=None))
    engine.dispose()
    result = sync_source(sqlite_registry, tax_connector(source_url, batch_size))
    bad = 2 if engine.dialect.name == "postgresql" else 4
    assert (result.status, result.rows_read, result.quarantined) == ("succeeded", 20, bad)
    assert result.inserted == 20 - bad
    expected = {"source_updated_at:missing"}
    if engine.dialect.name == "mysql":
        expected.add("source_updated_at:invalid_datetime")  # a zero date is no time
    assert set(reasons(sqlite_registry)) == expected
    with sqlite_registry.connect() as conn:
        quarantined = set(conn.execute(select(quarantine.c.source_id)).scalars())
    assert quarantined == ({"4", "7", "12", "20"} if bad == 4 else {"7", "20"})


# -- 15.1: the keyset page query uses the index ----------------------------------------------
def test_the_keyset_page_query_is_an_index_condition_on_postgresql(pg_url: str) -> None:
    tax.generate(pg_url, rows=3000, seed=6)
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    connector = tax_connector(pg_url, batch_size=100)
    statements: list[tuple[str, Any]] = []

    @event.listens_for(connector.engine, "before_cursor_execute")
    def seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    batches = connector.read(None)
    next(batches), next(batches)  # the second page's query continues from a key
    connector.close()
    statement, parameters = next(s for s in reversed(statements) if "LIMIT" in s[0])
    with engine.connect() as conn:
        plan = "\n".join(conn.exec_driver_sql(f"EXPLAIN {statement}", parameters).scalars())
    engine.dispose()
    assert re.search(r'Index Cond: .*"NGAY_CAP_NHAT" >= ', plan), plan
    assert "Seq Scan" not in plan and "Sort" not in plan.split("Index")[0], plan


# -- 12.4: a full refresh applies the source's current content --------------------------------
def test_a_full_refresh_applies_a_change_the_source_dated_backwards(
    registry: Engine, sqlite_url: str
) -> None:
    tax.generate(sqlite_url, rows=80, seed=5)
    sync_source(registry, tax_connector(sqlite_url))
    source = create_engine(sqlite_url)
    c = tax.tb_hoso.c
    with source.begin() as conn:
        before = conn.execute(select(c.NGAY_CAP_NHAT).where(c["ID"] == 5)).scalar_one()
        conn.execute(
            tax.tb_hoso.update()
            .where(c["ID"] == 5)
            .values(LINH_VUC="Thuế (lùi)", NGAY_CAP_NHAT=before - timedelta(days=1))
        )
    source.dispose()
    # An incremental sync keeps the later-dated copy (the version guard): the change is older.
    assert sync_source(registry, tax_connector(sqlite_url)).updated == 0
    refreshed = sync_source(registry, tax_connector(sqlite_url), full_refresh=True)
    assert refreshed.updated == 1
    with registry.connect() as conn:
        sector = conn.execute(select(dossier.c.sector).where(dossier.c.source_id == "5"))
        assert sector.scalar_one() == "Thuế (lùi)"
        first = store.digest(conn)
    # The registry now equals the source: another full refresh changes nothing.
    again = sync_source(registry, tax_connector(sqlite_url), full_refresh=True)
    assert (again.inserted, again.updated) == (0, 0)
    with registry.connect() as conn:
        assert store.digest(conn) == first


def test_future_tolerance_seconds_sets_how_late_a_change_time_may_be(
    sqlite_registry: Engine, sqlite_url: str
) -> None:
    engine, table = loose_table(sqlite_url)
    local_now = datetime.now(timezone(timedelta(hours=7))).replace(tzinfo=None)
    soon = local_now + timedelta(hours=2)  # naive local time, as the Tax system writes
    with engine.begin() as conn:
        conn.execute(insert(table), [row(1), row(2, NGAY_CAP_NHAT=soon)])
    engine.dispose()
    strict = sync_source(sqlite_registry, tax_connector(sqlite_url))  # the default: one hour
    assert (strict.inserted, strict.quarantined) == (1, 1)
    config = SourceConfig(
        connector="tax",
        lookback_seconds=0,
        future_tolerance_seconds=4 * 3600,
        settings={"url": sqlite_url},
    )
    lenient = open_connector(Settings(mode="demo"), "tax", config=config)
    assert lenient.context.future_tolerance == timedelta(hours=4)
    assert sync_source(sqlite_registry, lenient).inserted == 1


def test_a_row_with_an_unreadable_change_time_added_after_the_first_sync_is_still_quarantined(
    source_url: str, sqlite_registry: Engine
) -> None:
    engine, table = loose_table(source_url)
    with engine.begin() as conn:
        conn.execute(insert(table), [row(n) for n in range(1, 11)])
    first = sync_source(sqlite_registry, tax_connector(source_url, 4))
    assert first.inserted == 10
    # A broken change time sorts before the cursor (or nowhere): only reading apart finds it.
    with engine.begin() as conn:
        conn.execute(insert(table), [row(11), row(12)])
        if engine.dialect.name == "mysql":
            conn.execute(text("SET SESSION sql_mode = ''"))
            conn.execute(text(f"UPDATE {tax.TABLE} SET NGAY_CAP_NHAT = '0000-00-00' WHERE ID = 11"))
        elif engine.dialect.name == "sqlite":
            conn.execute(text(f"UPDATE {tax.TABLE} SET NGAY_CAP_NHAT = '' WHERE ID = 11"))
        else:  # a timestamp holds neither: a year-1 time stands for them
            conn.execute(
                table.update().where(table.c.ID == 11).values(NGAY_CAP_NHAT=datetime(1, 1, 1))
            )
        conn.execute(table.update().where(table.c.ID == 12).values(NGAY_CAP_NHAT=None))
    engine.dispose()
    again = sync_source(sqlite_registry, tax_connector(source_url, 4))
    assert (again.inserted, again.quarantined) == (0, 2)
    with sqlite_registry.connect() as conn:
        held = set(conn.execute(select(quarantine.c.source_id)).scalars())
    assert held == {"11", "12"}


def test_a_sql_connector_reads_the_columns_its_mapping_names() -> None:
    """Columns, change time and receipt time follow from the mapping: each stated once."""
    from connectors.land import LandConnector
    from simulators import land

    assert TaxConnector.updated_at_column == "NGAY_CAP_NHAT"
    assert TaxConnector.received_column == "NGAY_NHAN"
    assert LandConnector.updated_at_column == "ngay_cap_nhat"
    assert LandConnector.received_column == "ngay_tiep_nhan"
    for kind, table in ((TaxConnector, tax.tb_hoso), (LandConnector, land.ho_so_dang_ky)):
        assert sorted(kind.columns) == sorted(column.name for column in table.columns)
