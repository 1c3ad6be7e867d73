"""Indicators against a small province worked out by hand.

The scenario (local Asia/Ho_Chi_Minh times):

  portal P1  code A   received 2026-01-10 09:00 in person, forwarded to Tax (T1)
  tax    T1  nat. A   received 2026-01-10 14:00, finished 01-20 16:00, due 01-20 17:00 -> on time
  tax    T2           received 2026-01-15 online, due 01-25, never finished -> overdue at end of Jan
  tax    T3           received 2026-01-31 23:30 online, due 02-09 17:00, finished 02-10 -> late;
                      fee, not paid online
  tax    T4           received 2026-01-05 in person, withdrawn 01-06 -> closed, not open
  portal P2           received 2026-02-01 00:30 in person (2026-01-31 17:30 UTC: February)
  portal P3           received 2026-02-03 08:00 online, full online, fee paid online,
                      finished 02-03 10:00, due 02-05 17:00 -> early

January, unified: cases A, T2, T3, T4 = 4 received (A counted once), 2 online -> 0.5;
  resolved 1 (A, on time) -> on-time rate 1.0; fee 1 (T3), paid online 0 -> 0.0;
  open at end 2 (T2, T3), overdue 1 (T2).
January, portal only: A = 1 received, 0 online -> 0.0.
February, unified: P2, P3 = 2 received, 1 online -> 0.5; resolved 2 (P3 early, T3 late)
  -> on-time rate 0.5; fee 1 (P3) paid online -> 1.0; open at end 2 (T2 overdue, P2 with
  no due time).
2026, unified: 6 received, 3 online -> 0.5; portal only: 3 received (A, P2, P3), 1 online.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, select

from dossierhub import stats, store
from dossierhub.errors import ConfigError
from models import migrate
from models.dossier import DossierRecord
from models.period import Period
from models.tables import dossier_case, stats_change, stats_daily, stats_monthly


def record(source: str, sid: str, **fields: Any) -> DossierRecord:
    base: dict[str, Any] = {
        "source_system": source,
        "source_id": sid,
        "dossier_code": f"000.00.06.H56-260101-{sid}",
        "procedure_code": "1.000123",
        "agency_code": "000.00.06.H56",
        "sector": "Thuế",
        "channel": "in_person",
        "status": 4,
        "source_updated_at": datetime(2026, 3, 1),
    }
    return DossierRecord.model_validate({**base, **fields})


A = "000.00.00.H56-260110-9001"
SCENARIO = [
    record(
        "one_stop",
        "P1",
        dossier_code=A,
        received_at=datetime(2026, 1, 10, 9),
        sector=None,
        source_updated_at=datetime(2026, 1, 10, 9),
    ),
    record(
        "tax",
        "T1",
        national_dossier_code=A,
        received_at=datetime(2026, 1, 10, 14),
        channel="online",
        status=9,
        finished_at=datetime(2026, 1, 20, 16),
        due_at=datetime(2026, 1, 20, 17),
        source_updated_at=datetime(2026, 1, 20, 16),
    ),
    record(
        "tax",
        "T2",
        received_at=datetime(2026, 1, 15, 10),
        channel="online",
        service_level="full_online",
        due_at=datetime(2026, 1, 25, 17),
    ),
    record(
        "tax",
        "T3",
        received_at=datetime(2026, 1, 31, 23, 30),
        channel="online",
        service_level="partial_online",
        status=9,
        due_at=datetime(2026, 2, 9, 17),
        finished_at=datetime(2026, 2, 10, 9),
        has_fee=True,
        paid_online=False,
    ),
    record(
        "tax",
        "T4",
        received_at=datetime(2026, 1, 5, 8),
        status=7,
        source_updated_at=datetime(2026, 1, 6, 8),
    ),
    record(
        "one_stop",
        "P2",
        received_at=datetime(2026, 2, 1, 0, 30),
        sector="Tư pháp",
        procedure_code="2.000889",
    ),
    record(
        "one_stop",
        "P3",
        received_at=datetime(2026, 2, 3, 8),
        channel="online",
        service_level="full_online",
        sector="Tư pháp",
        status=10,
        has_fee=True,
        paid_online=True,
        finished_at=datetime(2026, 2, 3, 10),
        due_at=datetime(2026, 2, 5, 17),
        procedure_code="2.000889",
    ),
]


@pytest.fixture
def province(registry: Engine) -> Engine:
    for source in ("one_stop", "tax"):
        with registry.begin() as conn:
            store.write_batch(
                conn,
                context=store.BatchContext(source),
                records=[r for r in SCENARIO if r.source_system == source],
            )
    stats.refresh(registry)
    return registry


def one(engine: Engine, period: str, **kwargs: Any) -> dict[str, Any]:
    with engine.connect() as conn:
        [row] = stats.indicators(conn, period=Period.parse(period), **kwargs)
    return row


def test_january_counts_the_forwarded_dossier_once(province: Engine) -> None:
    jan = one(province, "2026-01")
    assert (jan["received"], jan["received_online"], jan["online_rate"]) == (4, 2, 0.5)
    assert (
        jan["resolved"],
        jan["resolved_on_time"],
        jan["resolved_early"],
        jan["resolved_late"],
    ) == (1, 1, 0, 0)
    assert jan["on_time_rate"] == 1.0
    assert (jan["with_fee"], jan["paid_online"], jan["online_payment_rate"]) == (1, 0, 0.0)
    with province.connect() as conn:
        assert conn.execute(select(func.count()).select_from(dossier_case)).scalar_one() == 6


def test_portal_only_sees_a_fraction(province: Engine) -> None:
    jan = one(province, "2026-01", portal_only=True)
    assert (jan["received"], jan["online_rate"]) == (1, 0.0)
    year = one(province, "2026", portal_only=True)
    assert (year["received"], year["received_online"]) == (3, 1)


def test_local_midnight_decides_the_month(province: Engine) -> None:
    feb = one(province, "2026-02")
    assert (feb["received"], feb["received_online"]) == (2, 1)  # P2 at 00:30 on 1 Feb is February
    assert (feb["resolved"], feb["resolved_early"], feb["resolved_late"], feb["on_time_rate"]) == (
        2,
        1,
        1,
        0.5,
    )
    assert (feb["with_fee"], feb["paid_online"], feb["online_payment_rate"]) == (1, 1, 1.0)


def test_year_and_quarter_add_up(province: Engine) -> None:
    year = one(province, "2026")
    assert (year["received"], year["received_online"], year["online_rate"]) == (6, 3, 0.5)
    assert one(province, "2026-Q1")["received"] == 6
    assert one(province, "2025")["received"] == 0


def test_grouping_by_sector_and_month(province: Engine) -> None:
    with province.connect() as conn:
        rows = stats.indicators(conn, period=Period.parse("2026"), by=["sector", "month"])
    got = {(r["sector"], r["month"]): r["received"] for r in rows if r["received"]}
    # The forwarded case takes its sector from Tax, which reported last.
    assert got == {("Thuế", "2026-01"): 4, ("Tư pháp", "2026-02"): 2}


def test_open_and_overdue_at_period_end(province: Engine) -> None:
    with province.connect() as conn:
        [jan] = stats.open_at_end(conn, period=Period.parse("2026-01"))
        [feb] = stats.open_at_end(conn, period=Period.parse("2026-02"))
    assert (jan["open"], jan["overdue"]) == (2, 1)  # T2 overdue, T3 still within its due time
    assert (feb["open"], feb["overdue"]) == (2, 1)  # T2 still overdue; P2 open, no due time


def test_coverage_puts_portal_and_unified_side_by_side(province: Engine) -> None:
    with province.connect() as conn:
        [row] = stats.coverage(conn, period=Period.parse("2026-01"))
    assert (row["portal_received"], row["unified_received"]) == (1, 4)
    assert (row["portal_online_rate"], row["unified_online_rate"]) == (0.0, 0.5)


def t2_resolved_late() -> DossierRecord:
    """A later sync of T2 (received 15 January): resolved on 2 February, after its due date."""
    return record(
        "tax",
        "T2",
        received_at=datetime(2026, 1, 15, 10),
        channel="online",
        service_level="full_online",
        due_at=datetime(2026, 1, 25, 17),
        status=9,
        finished_at=datetime(2026, 2, 2, 9),
        source_updated_at=datetime(2026, 3, 2),
    )


def test_refresh_touches_only_changed_days_and_repeats_harmlessly(province: Engine) -> None:
    assert stats.refresh(province) == stats.RefreshResult(0, 0)
    with province.begin() as conn:
        store.write_batch(conn, context=store.BatchContext("tax"), records=[t2_resolved_late()])
    result = stats.refresh(province)
    assert result.cases == 1 and result.days == 2  # its receipt day and its finishing day
    feb = one(province, "2026-02")
    assert (feb["resolved"], feb["resolved_late"]) == (3, 2)
    assert one(province, "2026-01")["received"] == 4


def test_a_dossier_that_learns_its_national_code_leaves_its_old_case(province: Engine) -> None:
    """T2 turns out to be the Tax side of portal dossier P2: the next sync brings its national
    code. It must move into P2's case, and its old case (keyed by its own receipt code) must
    go, or January would count it twice."""
    before = one(province, "2026-01")["received"]
    linked = record(
        "tax",
        "T2",
        national_dossier_code="000.00.06.H56-260101-P2",
        received_at=datetime(2026, 1, 15, 10),
        channel="online",
        service_level="full_online",
        due_at=datetime(2026, 1, 25, 17),
        source_updated_at=datetime(2026, 3, 2),
    )
    with province.begin() as conn:
        store.write_batch(conn, context=store.BatchContext("tax"), records=[linked])
    stats.refresh(province)
    with province.connect() as conn:
        keys = set(conn.execute(select(dossier_case.c.case_key)).scalars())
        [members] = conn.execute(
            select(dossier_case.c.members).where(
                dossier_case.c.case_key == "000.00.06.H56-260101-P2"
            )
        ).scalars()
        queued = conn.execute(select(func.count()).select_from(stats_change)).scalar_one()
    assert "000.00.06.H56-260101-T2" not in keys and len(keys) == 5
    assert members == 2 and queued == 0  # the old key is consumed once rebuilt
    # T2's receipt (15 January) is now the case's first receipt; P2's February one is not.
    assert one(province, "2026-01")["received"] == before
    assert one(province, "2026-02")["received"] == 1


@pytest.mark.parametrize("bad", ["sector,nope", "'; DROP TABLE dossier; --", "day,month"])
def test_unknown_grouping_is_refused_with_the_choices(province: Engine, bad: str) -> None:
    with province.connect() as conn, pytest.raises(ConfigError, match=r"choose from|at most one"):
        stats.indicators(conn, period=Period.parse("2026"), by=bad.split(","))


def test_daily_series_adds_up_to_the_monthly_rollup(province: Engine) -> None:
    with province.connect() as conn:
        days = stats.indicators(conn, period=Period.parse("2026-01"), by=["day"])
    month = one(province, "2026-01")
    for measure in stats.MEASURES:
        assert sum(row[measure] for row in days) == month[measure], measure
    assert [row["day"] for row in days if row["received"]] == [
        "2026-01-05",
        "2026-01-10",
        "2026-01-15",
        "2026-01-31",
    ]


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the case table and the rollups, in a stable order."""
    with engine.connect() as conn:
        return {
            table.name: sorted(
                (tuple(row) for row in conn.execute(select(table))), key=lambda r: repr(r)
            )
            for table in (dossier_case, stats_daily, stats_monthly)
        }


def rebuilt(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """The statistics built once from the registry as it stands, from empty tables."""
    with engine.begin() as conn:
        for table in (dossier_case, stats_daily, stats_monthly):
            conn.execute(delete(table))
    stats.refresh(engine, everything=True)
    return snapshot(engine)


def test_a_batch_committing_after_a_refresh_began_is_counted_by_the_next_refresh(
    pg_url: str,
) -> None:
    """Two sources sync at once: Land's batch is written first but commits last, after Tax
    committed and a refresh ran. The next refresh must count Land's dossiers, though they
    were written (and stamped) before Tax's ones the first refresh already saw."""
    registry = store.open_registry(pg_url)
    migrate.upgrade(registry)
    day = datetime(2026, 5, 4, 9)
    land = [record("land", f"L{i}", received_at=day, source_updated_at=day) for i in range(150)]
    tax = [record("tax", f"T{i}", received_at=day, source_updated_at=day) for i in range(150)]
    try:
        with registry.connect() as late:
            late_batch = late.begin()
            store.write_batch(late, context=store.BatchContext("land"), records=land)
            with registry.begin() as conn:
                store.write_batch(conn, context=store.BatchContext("tax"), records=tax)
            assert stats.refresh(registry).cases == 150  # Land is not committed yet
            late_batch.commit()
        assert stats.refresh(registry).cases == 150
        assert one(registry, "2026-05")["received"] == 300
        assert snapshot(registry) == rebuilt(registry)
    finally:
        registry.dispose()


def test_two_refreshes_at_once_on_postgresql_run_one_after_the_other(pg_url: str) -> None:
    """`dossierhub stats` started twice at once (say by a cron and an operator): both finish,
    and the statistics count every dossier once."""
    registry = store.open_registry(pg_url)
    migrate.upgrade(registry)
    day = datetime(2026, 6, 1, 9)
    records = [
        record("tax", f"T{i}", received_at=day + timedelta(hours=i % 500), source_updated_at=day)
        for i in range(3000)
    ]
    with registry.begin() as conn:
        store.write_batch(conn, context=store.BatchContext("tax"), records=records)
    start = threading.Barrier(2)
    results: list[stats.RefreshResult] = []
    failures: list[BaseException] = []

    def refresh() -> None:
        start.wait()
        try:
            results.append(stats.refresh(registry))
        except BaseException as exc:
            failures.append(exc)

    try:
        threads = [threading.Thread(target=refresh) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        assert sorted(result.cases for result in results) == [0, 3000]
        received = one(registry, "2026-06")["received"] + one(registry, "2026-07")["received"]
        assert received == 3000
        assert snapshot(registry) == rebuilt(registry)
    finally:
        registry.dispose()
