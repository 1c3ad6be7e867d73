"""The columnar path and the row path give the same records, reasons and quarantined payloads.

A differential property test: pages of native Tax and Land rows (tests/models/frame_draws.py,
valid and malformed) go through both paths; the columnar path's records must equal the row
path's value for value, and its rejections must carry the same reasons and the same
redacted payloads. `mutants` plants one bug at a time in the columnar twin and shows this
test catches each, so the test has teeth.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from connectors.base import ArrowBatch, Connector, ConnectorContext, RawRecord, jsonable
from connectors.identifiers import IdentifierHasher
from connectors.land import LandConnector
from connectors.tax import TaxConnector
from dossierhub.columnar import map_page
from dossierhub.store import quarantine_key
from dossierhub.sync import Mapped, map_records
from models.frame import records as frame_records
from tests.models import frame_draws as draws

HASHER = IdentifierHasher(SecretStr("frame-equivalence-key-" + "e" * 32))
SETTINGS = settings(
    max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)


def connector(kind: type[Connector], source: str) -> Connector:
    context = ConnectorContext(
        source=source,
        settings={"url": "postgresql+psycopg://nobody@127.0.0.1:1/none"},  # never opened
        hasher=HASHER,
    )
    return kind(context)


def shown(value: Any) -> Any:
    """A value with its type, so 2 and Status(2), or two time zones, are told apart."""
    if isinstance(value, datetime):
        return ("datetime", value.isoformat(), value.utcoffset())
    return (type(value).__name__, value)


def outcome(mapped: Mapped) -> tuple[dict[str, Any], list[Any]]:
    """Records and rejections; a columnar page's checked rows (written to the registry from
    their frame, as they are) count as the records their values make."""
    checked = [] if mapped.frame is None else frame_records(mapped.frame)
    records = {
        r.source_id: {k: shown(v) for k, v in r.__dict__.items()}
        for r in [*checked, *mapped.records]
    }
    rejections = [
        (
            quarantine_key(rejection.raw),
            [reason.as_dict() for reason in rejection.reasons],
            jsonable(rejection.raw.payload),
        )
        for rejection in mapped.rejections
    ]
    return records, rejections


def both_paths(kind: type[Connector], rows: list[dict[str, Any]], schema: Any) -> None:
    source = kind.__name__.removesuffix("Connector").lower()
    table = draws.arrow_page(rows, schema)
    # The columnar path first: its "tomorrow" is then never later than the row path's.
    columnar = outcome(map_page(connector(kind, source), ArrowBatch(table, None)))
    key = "ID" if kind is TaxConnector else "id"
    raws = [RawRecord(str(row[key]), dict(row)) for row in rows]
    by_rows = outcome(map_records(connector(kind, source), raws))
    assert columnar[0] == by_rows[0]
    assert columnar[1] == by_rows[1]


def tax_property(rows: list[dict[str, Any]]) -> None:
    both_paths(TaxConnector, rows, draws.TAX_SCHEMA)


def land_property(rows: list[dict[str, Any]]) -> None:
    both_paths(LandConnector, rows, draws.LAND_SCHEMA)


@SETTINGS
@given(draws.pages(draws.tax_rows))
def test_tax_pages_give_the_same_records_reasons_and_payloads(rows: list[dict[str, Any]]) -> None:
    tax_property(rows)


@pytest.mark.slow
@SETTINGS
@given(draws.pages(draws.land_rows))
def test_land_pages_give_the_same_records_reasons_and_payloads(rows: list[dict[str, Any]]) -> None:
    land_property(rows)


def test_a_land_row_received_in_year_1_is_drawn_with_a_readable_change_time() -> None:
    """The change time follows the receipt time; as `timestamptz` it must still be a time
    psycopg can give (from 0001-01-01 UTC), even when the receipt is in year 1 local time."""
    row = find(
        draws.land_rows(st.just(1)),
        lambda row: row["ngay_tiep_nhan"] == datetime(1, 1, 1),
        settings=settings(max_examples=5000, database=None, derandomize=True),
    )
    assert row["ngay_cap_nhat"] >= datetime(1, 1, 1, tzinfo=UTC)


def test_the_draws_reach_both_paths() -> None:
    """Most drawn rows pass the columnar check, and malformed ones reach the row path."""
    seen = {"fast": 0, "rejected": 0}

    @settings(max_examples=60, deadline=None, derandomize=True, database=None)
    @given(draws.pages(draws.tax_rows))
    def count(rows: list[dict[str, Any]]) -> None:
        table = draws.arrow_page(rows, draws.TAX_SCHEMA)
        mapped = map_page(connector(TaxConnector, "tax"), ArrowBatch(table, None))
        seen["fast"] += 0 if mapped.frame is None else len(mapped.frame)
        seen["rejected"] += len(mapped.rejections)

    count()
    assert seen["fast"] > 50 and seen["rejected"] > 50, seen


def caught(run: Callable[[], None]) -> bool:
    try:
        run()
    except AssertionError:
        return True
    return False


def differential(
    property_: Callable[[list[dict[str, Any]]], None], rows: Any
) -> Callable[[], None]:
    """The differential test as a callable, without shrinking (only "is it caught" matters)."""

    @settings(
        max_examples=400,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(draws.pages(rows))
    def run(page: list[dict[str, Any]]) -> None:
        property_(page)

    return run


def _nfc_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    from models import frame

    monkeypatch.setattr(frame, "clean_value", lambda v: v.strip() or None)


def _offset_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    from models import frame

    monkeypatch.setattr(frame, "LOCAL_OFFSET", timedelta(hours=14))


def _max_length_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from models import frame

    rule = replace(frame.RULES["procedure_code"], max_length=None)
    monkeypatch.setitem(frame.RULES, "procedure_code", rule)


def _docs_rule_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    from models import frame

    monkeypatch.delitem(frame.LIFECYCLE_RULES, "docs")


def _district_rule_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    from models import frame

    monkeypatch.delitem(frame.LIFECYCLE_RULES, "district")


def _dash_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    def hash_many(self: IdentifierHasher, values: Any) -> list[str | None]:
        out = []
        for value in values:
            text = "".join(ch for ch in str(value) if ch.isalnum() or ch == "-").upper()
            out.append(self._digest(text.encode()) if text else None)  # the hasher's own HMAC
        return out

    monkeypatch.setattr(IdentifierHasher, "hash_many", hash_many)


def _distinct_refusals_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    import polars as pl

    from connectors.frames import ColumnPage

    read_distinct = ColumnPage.read_distinct

    def accepting(self: ColumnPage, spec: Any) -> Any:
        fields, _ = read_distinct(self, spec)
        return fields, pl.lit(True)

    monkeypatch.setattr(ColumnPage, "read_distinct", accepting)


MUTANTS = {
    "NFC dropped": (_nfc_dropped, tax_property, draws.tax_rows),
    "local time offset wrong": (_offset_wrong, land_property, draws.land_rows),
    "procedure_code max_length ignored": (_max_length_ignored, tax_property, draws.tax_rows),
    "docs rule dropped": (_docs_rule_dropped, land_property, draws.land_rows),
    "district rule dropped": (_district_rule_dropped, tax_property, draws.tax_rows),
    "dash kept in the hashed identifier": (_dash_kept, tax_property, draws.tax_rows),
    "a spec's refusal ignored on columns": (
        _distinct_refusals_ignored,
        land_property,
        draws.land_rows,
    ),
}


@pytest.mark.parametrize("mutant", list(MUTANTS))
def test_the_differential_test_catches_a_planted_bug(
    mutant: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    plant, property_, rows = MUTANTS[mutant]
    plant(monkeypatch)  # the unmutated twin passes the tests above
    assert caught(differential(property_, rows)), f"mutant not caught: {mutant}"
    # A mutant that raises would only send its pages down the row path: it must run.
    assert "the columnar mapping failed" not in caplog.text, f"mutant raised: {mutant}"


def test_a_broken_frame_mapping_falls_back_to_the_row_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = [
        {
            "ID": 1,
            "MA_HS": "000.00.06.H56-231027-0361",
            "MA_HS_QG": None,
            "MA_TTHC": "1.000123",
            "TEN_TTHC": draws.NAME,
            "LINH_VUC": None,
            "MA_CQ": "000.00.06.H56",
            "MA_DVHC": None,
            "NGAY_NOP": None,
            "NGAY_NHAN": draws.BASES[4],
            "NGAY_HEN_TRA": None,
            "NGAY_TRA": None,
            "KENH_NOP": "TRUC_TIEP",
            "MUC_DO": None,
            "TRANG_THAI": 1,
            "LOAI_DT": None,
            "MST": "0101234567",
            "LE_PHI": draws.Decimal(0),
            "NOP_PHI_TT": 0,
            "SO_TP": None,
            "SO_TP_SO_HOA": None,
            "KQ_SO_HOA": None,
            "NGAY_CAP_NHAT": draws.BASES[4],
        }
    ]
    made = connector(TaxConnector, "tax")

    def broken(table: Any) -> Any:
        raise KeyError("a bug in the frame mapping")

    monkeypatch.setattr(made, "to_canonical_frame", broken)
    mapped = map_page(made, ArrowBatch(draws.arrow_page(rows, draws.TAX_SCHEMA), None))
    assert [r.source_id for r in mapped.records] == ["1"] and not mapped.rejections
    assert mapped.records[0].applicant_key == HASHER.hash("0101234567")
