"""Per-period reconciliation places quarantined records by their native receipt date."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, insert

from connectors.finance import FinanceConnector
from connectors.one_stop import OneStopConnector
from connectors.social_insurance import SocialInsuranceConnector
from connectors.tax import TaxConnector
from dossierhub import stats
from dossierhub.sync import sync_source
from simulators import tax as tax_simulator
from tests.dossierhub.test_statistics_scenario import tax
from tests.dossierhub.test_sync_tax import tax_connector


def test_reconcile_by_period_places_quarantine_by_receipt_date(
    registry: Engine, tmp_path: Path
) -> None:
    """Tax holds 5 dossiers: 2 clean in February, 1 clean in March, 1 in February with an
    unknown status code (quarantined, dated), 1 without a receipt time (quarantined, no
    period can hold it). February: source 3 = registry 2 + quarantined 1, gap 0, with the
    undated one beside it; March: 1 = 1 + 0."""
    url = f"sqlite:///{tmp_path / 'tax.db'}"
    rows: list[dict[str, Any]] = [
        tax(1, datetime(2026, 2, 3, 8), "TRUC_TUYEN", 2, datetime(2026, 2, 3, 8)),
        tax(2, datetime(2026, 2, 9, 8), "TRUC_TIEP", 2, datetime(2026, 2, 9, 8)),
        tax(3, datetime(2026, 3, 4, 8), "TRUC_TUYEN", 2, datetime(2026, 3, 4, 8)),
        tax(4, datetime(2026, 2, 20, 8), "TRUC_TUYEN", 42, datetime(2026, 2, 20, 8)),
        {**tax(5, datetime(2026, 2, 25, 8), "TRUC_TUYEN", 2, datetime(2026, 2, 25, 8)),
         "NGAY_NHAN": None},
    ]  # fmt: skip
    source = create_engine(url)
    tax_simulator.create_schema(source)
    with source.begin() as conn:
        conn.execute(insert(tax_simulator.tb_hoso), rows)
    source.dispose()
    connector = tax_connector(url)
    assert sync_source(registry, connector).quarantined == 2

    def reconcile(period: str) -> dict[str, Any]:
        [row] = stats.reconcile(
            registry,
            counters={"tax": connector.count},
            period_text=period,
            receipt_days={"tax": connector.receipt_day},
        )
        return row

    feb = reconcile("2026-02")
    assert (feb["source_count"], feb["registry_count"], feb["quarantined"]) == (3, 2, 1)
    assert (feb["gap"], feb["unplaceable"]) == (0, 1)
    mar = reconcile("2026-03")
    assert (mar["source_count"], mar["registry_count"], mar["quarantined"]) == (1, 1, 0)
    assert (mar["gap"], mar["unplaceable"]) == (0, 1)
    every = reconcile(stats.ALL_TIME)
    assert (every["source_count"], every["registry_count"], every["quarantined"]) == (5, 3, 2)
    assert every["gap"] == 0
    with registry.connect() as conn:
        assert [r["unplaceable"] for r in stats.latest_reconciliation(conn)] == [1, 1, 1]


@pytest.mark.parametrize(
    ("connector", "payload", "day"),
    [
        (OneStopConnector, {"NgayTiepNhan": "20260131233000"}, date(2026, 1, 31)),
        (OneStopConnector, {"NgayTiepNhan": "31/01/2026"}, None),
        (OneStopConnector, {"NgayTiepNhan": ""}, None),
        (OneStopConnector, {}, None),
        (FinanceConnector, {"NgayNhan": "31/01/2026 23:30:00"}, date(2026, 1, 31)),
        (FinanceConnector, {"NgayNhan": "2026-01-31"}, None),
        (FinanceConnector, {"NgayNhan": None}, None),
        (
            SocialInsuranceConnector,
            {"ngayTiepNhan": "2026-01-31T23:30:00+07:00"},
            date(2026, 1, 31),
        ),
        (
            SocialInsuranceConnector,
            {"ngayTiepNhan": "2026-01-31T16:30:00+00:00"},
            date(2026, 1, 31),
        ),
        (SocialInsuranceConnector, {"ngayTiepNhan": 20260131}, None),
        (TaxConnector, {"NGAY_NHAN": "2026-01-31T23:30:00"}, date(2026, 1, 31)),
        (TaxConnector, {"NGAY_NHAN": "31/02/2026"}, None),
        (TaxConnector, {"NGAY_NHAN": None}, None),
    ],
)
def test_each_transport_dates_a_native_payload(
    connector: type[Any], payload: dict[str, Any], day: date | None
) -> None:
    # The receipt day is read without any setting, as reconciliation reads quarantine.
    assert connector.receipt_day(connector.__new__(connector), payload) == day
