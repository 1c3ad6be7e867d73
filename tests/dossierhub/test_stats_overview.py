"""The overview rollup: the monthly rollup without agency, locality and procedure.

An indicator query that neither groups nor filters by those three reads the overview, a few
hundred rows a month instead of one per procedure and commune; its figures must be exactly
those of the full monthly rollup, which the queries that do ask for them still read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, insert, select

from dossierhub import stats, store
from models.period import Period
from models.tables import (
    OVERVIEW_DIMENSIONS,
    ROLLUP_MEASURES,
    stats_monthly,
    stats_monthly_overview,
)
from tests.dossierhub.test_stats import SCENARIO, record, t2_resolved_late

ROLLUPS = ("stats_monthly_overview", "stats_monthly", "stats_daily")
WIDE = ["agency", "locality", "procedure"]


@pytest.fixture
def province(registry: Engine) -> Engine:
    """The hand-worked province of test_stats.py, plus a March dossier at a commune."""
    extra = record(
        "tax",
        "T9",
        received_at=datetime(2026, 3, 2, 9),
        channel="online",
        service_level="full_online",
        locality_code="06790",
        admin_level="commune",
        agency_code="000.31.06.H56",
        status=10,
        finished_at=datetime(2026, 3, 4, 9),
        due_at=datetime(2026, 3, 6, 17),
        has_fee=True,
        paid_online=True,
        source_updated_at=datetime(2026, 3, 4, 9),
    )
    for source in ("one_stop", "tax"):
        with registry.begin() as conn:
            store.write_batch(
                conn,
                context=store.BatchContext(source),
                records=[r for r in [*SCENARIO, extra] if r.source_system == source],
            )
    stats.refresh(registry)
    return registry


def folded(rows: Sequence[dict[str, Any]], names: Sequence[str]) -> list[dict[str, Any]]:
    """Indicator rows summed over every output name not in `names`, rates derived again:
    what `stats.indicators(by=names)` must give."""
    merged: dict[tuple[Any, ...], dict[str, int]] = {}
    for row in rows:
        totals = merged.setdefault(tuple(row[n] for n in names), dict.fromkeys(ROLLUP_MEASURES, 0))
        for m in ROLLUP_MEASURES:
            totals[m] += row[m]
    if not merged and not names:
        merged[()] = dict.fromkeys(ROLLUP_MEASURES, 0)
    return [
        {**dict(zip(names, key, strict=True)), **stats.derive(totals)}
        for key, totals in sorted(merged.items(), key=lambda kv: tuple(str(k) for k in kv[0]))
    ]


def tables_read(engine: Engine, query: Callable[[], object]) -> set[str]:
    """The rollups named after FROM in the statements `query` sends to the database."""
    sent: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        query()
    finally:
        event.remove(engine, "before_cursor_execute", note)
    return {t for t in ROLLUPS if any(re.search(rf"\bFROM {t}\b", s) for s in sent)}


@pytest.mark.parametrize(
    ("by", "filters", "portal_only", "online_capable_only"),
    [
        ([], {}, False, False),
        (["sector"], {}, False, False),
        (["sector"], {}, True, False),
        (["channel", "month"], {"source": "tax"}, False, False),
        (["source", "service_level", "quarter"], {}, False, True),
        (["admin_level", "year"], {"sector": "Thuế", "channel": "online"}, False, False),
        ([], {"admin_level": "commune"}, False, False),
    ],
)
def test_the_overview_gives_the_figures_of_the_full_monthly_rollup(
    province: Engine,
    by: list[str],
    filters: dict[str, str],
    portal_only: bool,
    online_capable_only: bool,
) -> None:
    options: dict[str, Any] = {
        "filters": filters,
        "portal_only": portal_only,
        "online_capable_only": online_capable_only,
    }
    for period in ("2026", "2026-Q1", "2026-02", "2025"):
        with province.connect() as conn:
            narrow = stats.indicators(conn, period=Period.parse(period), by=by, **options)
            wide = stats.indicators(conn, period=Period.parse(period), by=[*by, *WIDE], **options)
        assert narrow == folded(wide, by), period
        if period == "2026":  # the comparison is not between two empty lists
            assert any(row["received"] for row in wide)


def test_only_queries_without_agency_locality_or_procedure_read_the_overview(
    province: Engine,
) -> None:
    year = Period.parse("2026")

    def read(period: Period = year, **options: Any) -> set[str]:
        def query() -> None:
            with province.connect() as conn:
                stats.indicators(conn, period=period, **options)

        return tables_read(province, query)

    assert read() == {"stats_monthly_overview"}
    assert read(by=["sector", "channel", "month"]) == {"stats_monthly_overview"}
    assert read(by=["source"], filters={"service_level": "full_online"}, portal_only=True) == {
        "stats_monthly_overview"
    }
    assert read(by=["procedure"]) == {"stats_monthly"}
    assert read(by=["sector"], filters={"agency": "000.00.06.H56"}) == {"stats_monthly"}
    assert read(filters={"locality": "06790"}) == {"stats_monthly"}
    assert read(by=["sector", "day"]) == {"stats_daily"}
    assert read(Period(date(2026, 1, 5), date(2026, 2, 5))) == {"stats_daily"}

    def coverage() -> None:
        with province.connect() as conn:
            stats.coverage(conn, period=year, by=["sector"])

    assert tables_read(province, coverage) == {"stats_monthly_overview"}


def overview_rows(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        rows = conn.execute(select(stats_monthly_overview))
        return sorted((tuple(row) for row in rows), key=repr)


def monthly_folded(engine: Engine) -> list[tuple[Any, ...]]:
    """The monthly rollup summed over the overview's dimensions, in SQL."""
    m = stats_monthly.c
    keys = [m.month, *(m[name] for name in OVERVIEW_DIMENSIONS)]
    query = select(*keys, *(func.sum(m[name]) for name in ROLLUP_MEASURES)).group_by(*keys)
    with engine.connect() as conn:
        return sorted((tuple(row) for row in conn.execute(query)), key=repr)


def test_every_refresh_keeps_the_overview_equal_to_the_monthly_rollup_folded(
    province: Engine,
) -> None:
    assert overview_rows(province) == monthly_folded(province) != []
    # T2 resolved in February: its January receipt row and a new February row change.
    with province.begin() as conn:
        store.write_batch(conn, context=store.BatchContext("tax"), records=[t2_resolved_late()])
    assert stats.refresh(province).cases == 1
    assert overview_rows(province) == monthly_folded(province)
    with province.connect() as conn:
        [feb] = stats.indicators(conn, period=Period.parse("2026-02"))
    assert (feb["resolved"], feb["resolved_late"]) == (3, 2)

    # A rebuild forgets every overview row, even one no month of the registry would replace.
    with province.begin() as conn:
        conn.execute(
            insert(stats_monthly_overview).values(
                {
                    **dict.fromkeys(OVERVIEW_DIMENSIONS, ""),
                    "in_portal": False,
                    "month": date(2020, 1, 1),
                    "received": 7,
                }
            )
        )
    stats.rebuild(province)
    assert overview_rows(province) == monthly_folded(province)
    assert date(2020, 1, 1) not in {row[0] for row in overview_rows(province)}
