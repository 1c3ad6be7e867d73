"""The five counting rules the statistics office signs off, one test each (docs/statistics.md).

Each scenario is the smallest that tells the rule apart from the mistake it replaces; times
are local (Asia/Ho_Chi_Minh).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine

from dossierhub import api, export, stats, store, tokens
from dossierhub.cli import common
from models.dossier import DossierRecord
from models.period import Period
from tests.dossierhub.test_api import serving

PORTAL_CODE = "000.00.00.H56-260110-0001"


def record(source: str, sid: str, **fields: Any) -> DossierRecord:
    base: dict[str, Any] = {
        "source_system": source,
        "source_id": sid,
        "dossier_code": f"000.00.06.H56-260101-{sid}",
        "procedure_code": "1.000123",
        "agency_code": "000.00.06.H56",
        "sector": "Thuế",
        "channel": "online",
        "status": 4,
        "received_at": datetime(2026, 1, 10, 9),
        "source_updated_at": datetime(2026, 1, 10, 9),
    }
    return DossierRecord.model_validate({**base, **fields})


def load(engine: Engine, *records: DossierRecord) -> None:
    for source in sorted({r.source_system for r in records}):
        with engine.begin() as conn:
            store.write_batch(
                conn,
                context=store.BatchContext(source),
                records=[r for r in records if r.source_system == source],
            )
    stats.refresh(engine)


def month(engine: Engine, period: str) -> dict[str, Any]:
    with engine.connect() as conn:
        [row] = stats.indicators(conn, period=Period.parse(period))
    return row


def opened(engine: Engine, **kwargs: Any) -> tuple[int, int]:
    with engine.connect() as conn:
        rows = stats.open_at_end(conn, **kwargs)
    return (rows[0]["open"], rows[0]["overdue"]) if rows else (0, 0)


def test_refused_at_intake_is_not_received(registry: Engine) -> None:
    load(
        registry,
        record("tax", "R1", status=3, finished_at=datetime(2026, 1, 10, 10)),
        record("tax", "R2", status=3, channel="postal"),
        record("tax", "A1", channel="in_person"),
    )
    jan = month(registry, "2026-01")
    # Received is A1 alone, in person; the refused ones stay out of the online-rate denominator.
    assert (jan["received"], jan["received_online"], jan["online_rate"]) == (1, 0, 0.0)
    assert jan["refused_intake"] == 2
    assert (jan["resolved"], jan["on_time_rate"]) == (0, None)
    assert opened(registry, period=Period.parse("2026-01")) == (1, 0)


def test_only_resolved_or_returned_dossiers_are_resolved(registry: Engine) -> None:
    due = datetime(2026, 1, 12, 17)
    end = datetime(2026, 1, 20, 9)  # after the due time: late, were it resolved
    load(
        registry,
        record("tax", "W", status=7, due_at=due, finished_at=end),
        record("tax", "S", status=8, due_at=due, finished_at=end),
        record("tax", "N", status=3, due_at=due, finished_at=end),
        record("tax", "D", status=9, due_at=due, finished_at=datetime(2026, 1, 12, 9)),
        record("tax", "R", status=10, due_at=due, returned_at=datetime(2026, 1, 13, 9)),
    )
    jan = month(registry, "2026-01")
    assert (jan["resolved"], jan["resolved_on_time"], jan["resolved_late"]) == (2, 1, 1)
    assert jan["on_time_rate"] == 0.5
    assert (jan["withdrawn"], jan["stopped"], jan["refused_intake"]) == (1, 1, 1)
    assert jan["received"] == 4  # withdrawn and stopped were received; refused was not


def test_the_sector_copy_decides_a_forwarded_dossiers_progress(registry: Engine) -> None:
    """Tax returned the dossier on 15 January; the portal touched its own copy (still 'in
    progress') on 5 March. January keeps its resolution and nothing turns overdue."""
    load(
        registry,
        record(
            "one_stop",
            "P",
            dossier_code=PORTAL_CODE,
            status=4,
            due_at=datetime(2026, 1, 20, 17),
            has_fee=True,
            paid_online=True,
            source_updated_at=datetime(2026, 3, 5, 9),
        ),
        record(
            "tax",
            "T",
            national_dossier_code=PORTAL_CODE,
            received_at=datetime(2026, 1, 10, 14),
            status=10,
            due_at=datetime(2026, 1, 20, 17),
            finished_at=datetime(2026, 1, 15, 9),
            source_updated_at=datetime(2026, 1, 15, 9),
        ),
    )
    jan = month(registry, "2026-01")
    assert (jan["received"], jan["resolved"], jan["resolved_early"]) == (1, 1, 1)
    # What Tax lacks (the fee and its payment) the portal's copy fills.
    assert (jan["with_fee"], jan["paid_online"]) == (1, 1)
    assert opened(registry, period=Period.parse("2026-03")) == (0, 0)


def test_open_as_of_a_past_date_follows_the_status_history(registry: Engine) -> None:
    """Open and overdue at the end of February, withdrawn in March: February keeps it."""
    due = datetime(2026, 2, 10, 17)
    load(registry, record("tax", "X", due_at=due))
    load(registry, record("tax", "X", due_at=due, status=7, source_updated_at=datetime(2026, 3, 5)))
    assert opened(registry, period=Period.parse("2026-02")) == (1, 1)
    assert opened(registry, as_of=date(2026, 2, 28)) == (1, 1)
    assert opened(registry, as_of=date(2026, 1, 31)) == (1, 0)
    assert opened(registry, period=Period.parse("2026-03")) == (0, 0)
    assert month(registry, "2026-03")["withdrawn"] == 1


def test_overdue_in_a_period_not_over_is_judged_now(registry: Engine) -> None:
    now = datetime.now(UTC)
    load(
        registry,
        record(
            "tax",
            "F",
            received_at=now - timedelta(days=2),
            due_at=now + timedelta(days=5),
            source_updated_at=now - timedelta(days=2),
        ),
        record(
            "tax",
            "G",
            received_at=now - timedelta(days=9),
            due_at=now - timedelta(days=1),
            source_updated_at=now - timedelta(days=9),
        ),
    )
    until = Period(date(now.year - 1, 1, 1), date(now.year + 2, 1, 1))
    # Both are open; only G is past its due time now, F's due time is still ahead.
    assert opened(registry, period=until) == (2, 1)
    assert opened(registry, as_of=(now + timedelta(days=30)).date()) == (2, 1)


def test_a_field_no_source_reports_is_not_reported(
    registry: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Tax gives neither service level nor digitisation: its rates are "not reported" (None,
    blank, a dash), never 0.0; with one Finance-like record that does report them, the rates
    are over that record alone and the coverage says how few carry the field."""
    load(registry, record("tax", "A"), record("tax", "B", channel="in_person"))
    jan = month(registry, "2026-01")
    assert (jan["full_online_rate"], jan["digitisation_rate"]) == (None, None)
    assert (jan["service_level_coverage"], jan["digitisation_coverage"]) == (0.0, 0.0)
    assert jan["online_rate"] == 0.5  # reported by every source: a real figure

    rows = [{"month": "2026-01", **jan}]
    assert json.loads(export.to_json(rows))[0]["digitisation_rate"] is None
    [parsed] = csv.DictReader(io.StringIO(export.to_csv(rows)))
    assert (parsed["digitisation_rate"], parsed["online_rate"]) == ("", "0.5")
    export.write_xlsx(rows, tmp_path / "jan.xlsx", title="jan")
    sheet = load_workbook(tmp_path / "jan.xlsx").active
    assert sheet is not None
    header = [cell.value for cell in sheet[1]]
    assert sheet.cell(2, header.index("digitisation_rate") + 1).value is None
    common.export_rows(
        [{k: jan[k] for k in ("online_rate", "digitisation_rate")}],
        common.ExportFormat.table,
        None,
        "jan",
    )
    shown = capsys.readouterr().out
    assert common.NOT_REPORTED in shown and "0.0" not in shown

    load(
        registry,
        record("tax", "C", service_level="full_online", docs_submitted=2, docs_digitised=2),
    )
    jan = month(registry, "2026-01")
    assert (jan["full_online_rate"], jan["digitisation_rate"]) == (1.0, 1.0)
    assert (jan["service_level_coverage"], jan["digitisation_coverage"]) == (0.3333, 0.3333)


def test_open_is_asked_for_a_period_or_a_day_not_both(registry: Engine) -> None:
    load(registry, record("tax", "X", due_at=datetime(2026, 2, 10, 17)))
    token = tokens.create_token(registry, role="statistics", name="rules")
    headers = {"Authorization": f"Bearer {token}"}
    path = f"{api.API_PREFIX}/open"
    with serving(api.create_app(registry)) as url, httpx.Client(base_url=url) as client:
        both = {"period": "2026-02", "as_of": "2026-02-28"}
        refused = client.get(path, params=both, headers=headers)
        assert refused.status_code == 422 and "as_of" in refused.text
        before = datetime.now(UTC)
        now = client.get(path, headers=headers).json()  # neither: as of today, judged now
        after = datetime.now(UTC)
        assert now["as_of"] == (before + timedelta(hours=7)).date().isoformat()
        assert before <= datetime.fromisoformat(now["judged_at"]) <= after
        assert now["rows"] == [{"group": {}, "open": 1, "overdue": 1}]
        bad_day = client.get(path, params={"as_of": "2026-02-30"}, headers=headers)
        assert bad_day.status_code == 422
        day = client.get(path, params={"as_of": "2026-02-28"}, headers=headers).json()
        month = client.get(path, params={"period": "2026-02"}, headers=headers).json()
    assert day["rows"] == month["rows"] == [{"group": {}, "open": 1, "overdue": 1}]
    assert day["judged_at"] == month["judged_at"] == "2026-02-28T17:00:00Z"
