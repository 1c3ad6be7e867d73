"""Bad input through the SQL transport (the Tax connector): a table of malformed rows, each
quarantined with its specific reason or loaded clean — never a crash, never garbage — and
property-based tests of mapping and validation."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError
from sqlalchemy import Engine, create_engine, insert

from connectors.base import ConnectorContext, RawRecord
from connectors.identifiers import IdentifierHasher
from connectors.tax import TaxConnector
from dossierhub.errors import RecordRejected
from models.dossier import DossierRecord
from simulators import tax
from tests.reliability.sql_corpus import loose, through_both_paths

GOOD: dict[str, Any] = {
    "ID": 1,
    "MA_HS": "000.00.06.H56-260105-0001",
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
    "LE_PHI": Decimal("50000"),
    "NOP_PHI_TT": 1,
    "SO_TP": 3,
    "SO_TP_SO_HOA": 2,
    "KQ_SO_HOA": 0,
    "NGAY_CAP_NHAT": datetime(2026, 1, 6, 9, 0),
}
NFD = unicodedata.normalize("NFD", "Đăng ký thuế lần đầu")
MOJIBAKE = "Đăng ký thuế".encode().decode("cp1252", errors="replace")  # UTF-8 read as Windows-1252
TCVN3 = "§¨ng ký thuÕ"  # a legacy 8-bit Vietnamese encoding shown as Latin-1

# (case, overrides, expected first reason "field:code", or None when the row must load)
CASES: list[tuple[str, dict[str, Any], str | None]] = [
    ("received missing", {"NGAY_NHAN": None}, "received_at:missing"),
    (
        "received before 2000",
        {"NGAY_NHAN": datetime(1900, 1, 1), "NGAY_NOP": None},
        "received_at:out_of_range",
    ),
    (
        "received in the future",
        {"NGAY_NHAN": datetime(2099, 1, 1), "NGAY_HEN_TRA": None},
        "received_at:out_of_range",
    ),
    (
        "received as text garbage",
        {"NGAY_NHAN": "31/02/2026"},
        "received_at:datetime_from_date_parsing",
    ),
    (
        "finished before received",
        {"NGAY_TRA": datetime(2026, 1, 1), "TRANG_THAI": 5},
        "finished_at:inconsistent",
    ),
    ("due before received", {"NGAY_HEN_TRA": datetime(2026, 1, 4)}, "due_at:inconsistent"),
    ("unknown status", {"TRANG_THAI": 42}, "status:unknown_code"),
    ("status as text", {"TRANG_THAI": "abc"}, "status:unknown_code"),
    ("status missing", {"TRANG_THAI": None}, "status:unknown_code"),
    ("procedure with letter O", {"MA_TTHC": "2.00O477"}, "procedure_code:invalid_format"),
    ("procedure missing", {"MA_TTHC": None}, "procedure_code:string_type"),
    ("procedure huge", {"MA_TTHC": "1." + "0" * 10_000}, "procedure_code:string_too_long"),
    (
        "procedure one over its length",  # 33 characters, the pattern otherwise kept
        {"MA_TTHC": "1.000123." + "0" * 24},
        "procedure_code:string_too_long",
    ),
    ("agency short form", {"MA_CQ": "H56"}, "agency_code:invalid_format"),
    ("agency with NUL", {"MA_CQ": "000.00.06.H\x0056"}, "agency_code:invalid_format"),
    ("unknown channel", {"KENH_NOP": "X"}, "channel:unknown_code"),
    ("channel missing", {"KENH_NOP": None}, "channel:unknown_code"),
    ("tax code too short", {"MST": "123456789"}, "applicant_key:invalid_format"),
    ("tax code with letters", {"MST": "01O1234567"}, "applicant_key:invalid_format"),
    ("receipt code blank", {"MA_HS": "   "}, "dossier_code:missing"),
    (
        "receipt code with spaces",
        {"MA_HS": "000.00.06.H56 260105 0001"},
        "dossier_code:invalid_format",
    ),
    ("receipt code huge", {"MA_HS": "A" * 5000}, "dossier_code:invalid_format"),
    ("receipt code NUL", {"MA_HS": "000.00.06.H56-260105\x00-0001"}, "dossier_code:invalid_format"),
    ("national code with spaces", {"MA_HS_QG": "G22 99"}, "national_dossier_code:invalid_format"),
    ("name legacy TCVN3", {"TEN_TTHC": TCVN3}, "procedure_name:invalid_text"),
    ("name mis-decoded UTF-8", {"TEN_TTHC": MOJIBAKE}, "procedure_name:invalid_text"),
    ("name with NUL", {"TEN_TTHC": "Đăng\x00ký"}, "procedure_name:invalid_text"),
    ("name too long", {"TEN_TTHC": "Đăng ký " * 400}, "procedure_name:string_too_long"),
    ("sector with control char", {"LINH_VUC": "Thuế\x07"}, "sector:invalid_text"),
    ("negative documents", {"SO_TP": -1}, "docs_submitted:greater_than_equal"),
    ("more digitised than submitted", {"SO_TP_SO_HOA": 9}, "docs_digitised:inconsistent"),
    ("fee not a number", {"LE_PHI": "năm mươi nghìn"}, "has_fee:invalid_number"),
    ("locality four digits", {"MA_DVHC": "1234"}, "locality_code:invalid_format"),
    ("district after the reform", {"MA_DVHC": "568"}, "admin_level:inconsistent"),
    ("unknown applicant type", {"LOAI_DT": 7}, "applicant_type:unknown_code"),
    ("unknown service level", {"MUC_DO": "Z"}, "service_level:unknown_code"),
    (
        "updated time garbage",
        {"NGAY_CAP_NHAT": "yesterday"},
        "source_updated_at:datetime_from_date_parsing",
    ),
    # These must load, cleaned:
    ("name decomposed NFD", {"TEN_TTHC": NFD}, None),
    ("blank optional text", {"LINH_VUC": "   ", "MA_HS_QG": ""}, None),
    ("branch tax code with dash", {"MST": "0101234567-001"}, None),
    ("paid online without a fee", {"LE_PHI": 0, "NOP_PHI_TT": 1}, None),
    ("localised procedure code", {"MA_TTHC": "1.000123.000.00.00.H56"}, None),
]


def connector(url: str = "sqlite://", *, columnar: bool = True) -> TaxConnector:
    return TaxConnector(
        ConnectorContext(
            source="tax",
            settings={"url": url, "columnar": columnar},
            hasher=IdentifierHasher(SecretStr("k" * 40)),
            batch_size=50,
            lookback=timedelta(0),
        )
    )


def outcome(overrides: dict[str, Any]) -> DossierRecord | list[str]:
    try:
        return connector().to_canonical(RawRecord("1", {**GOOD, **overrides}))
    except RecordRejected as rejected:
        return [reason.key for reason in rejected.reasons]


def test_the_corpus_is_big_enough() -> None:
    assert len([c for c in CASES if c[2] is not None]) >= 30


@pytest.mark.parametrize(("case", "overrides", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_malformed_row_gets_its_specific_reason(
    case: str, overrides: dict[str, Any], expected: str | None
) -> None:
    got = outcome(overrides)
    if expected is None:
        assert isinstance(got, DossierRecord), got
        assert got.procedure_name is None or unicodedata.is_normalized("NFC", got.procedure_name)
        assert got.sector != "" and got.national_dossier_code != ""
    else:
        assert isinstance(got, list), f"{case} loaded: {got}"
        assert got[0] == expected, got


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_whole_corpus_through_the_engine_lands_or_quarantines_every_row(
    kind: str,
    registry: Engine,
    databases: Callable[[], str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The corpus as a table in a SQLite and in a PostgreSQL source: on PostgreSQL the
    columnar path reads it, and every row ends as the row path ends it."""
    url = f"sqlite:///{tmp_path / 'tax.db'}" if kind == "sqlite" else databases()
    source = create_engine(url)
    table = loose(tax.tb_hoso)
    table.create(source)
    rows, expected = [], {}
    for number, (_case, overrides, first_reason) in enumerate(CASES, start=1):
        row = {
            **GOOD,
            **overrides,
            "ID": number,
            "NGAY_CAP_NHAT": datetime(2026, 1, 6, 9, 0, number),
        }
        rows.append(row)
        if "NGAY_CAP_NHAT" not in overrides:  # the case's own change time is replaced here
            expected[str(number)] = first_reason
    # The source database itself refuses some values; store what a real table could hold:
    # no text in typed columns, and on PostgreSQL no NUL in text (SQLite stores it).
    storable = [
        r
        for r in rows
        if isinstance(r["NGAY_NHAN"], datetime | None)
        and isinstance(r["TRANG_THAI"], int | None)
        and isinstance(r["LE_PHI"], Decimal | int)
        and (kind == "sqlite" or not any("\x00" in v for v in r.values() if isinstance(v, str)))
    ]
    with source.begin() as conn:
        conn.execute(insert(table), storable)
    source.dispose()

    result, got = through_both_paths(
        registry,
        lambda columnar: connector(url, columnar=columnar),
        tmp_path,
        caplog,
        reads_columns=kind == "postgresql",
    )
    # Each row ends as mapping it alone ends: loaded, or quarantined with the same reasons.
    alone = {str(r["ID"]): outcome({k: v for k, v in r.items() if k != "ID"}) for r in storable}
    assert got.loaded == {i for i, o in alone.items() if not isinstance(o, list)}
    assert {i: got.keys(i) for i in got.reasons} == {
        i: o for i, o in alone.items() if isinstance(o, list)
    }
    for source_id in alone:
        if source_id in expected:
            first = got.keys(source_id)[0] if source_id in got.reasons else None
            assert first == expected[source_id], source_id
    assert result.rows_read == len(storable)
    assert (result.inserted, result.quarantined) == (len(got.loaded), len(got.reasons))
    assert len(got.loaded) + len(got.reasons) == len(storable)


# -- properties ---------------------------------------------------------------------------
texts = st.text(max_size=60)
maybe_dates = st.one_of(
    st.none(), st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2030, 12, 31)), texts
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    overrides=st.fixed_dictionaries(
        {},
        optional={
            "MA_HS": st.one_of(st.none(), texts),
            "MA_TTHC": st.one_of(st.none(), texts, st.integers()),
            "TEN_TTHC": st.one_of(st.none(), texts),
            "MA_CQ": st.one_of(st.none(), texts),
            "MA_DVHC": st.one_of(st.none(), texts, st.integers()),
            "NGAY_NHAN": maybe_dates,
            "NGAY_HEN_TRA": maybe_dates,
            "NGAY_TRA": maybe_dates,
            "KENH_NOP": st.one_of(st.none(), texts, st.integers()),
            "TRANG_THAI": st.one_of(st.none(), st.integers(-5, 50), texts),
            "LOAI_DT": st.one_of(st.none(), st.integers(-5, 10), texts),
            "MST": st.one_of(st.none(), texts, st.integers()),
            "LE_PHI": st.one_of(st.none(), st.integers(-10, 10**9), texts),
            "SO_TP": st.one_of(st.none(), st.integers(-5, 20_000)),
        },
    )
)
def test_mapping_any_row_either_loads_a_valid_record_or_rejects_with_reasons(
    overrides: dict[str, Any],
) -> None:
    got = outcome(overrides)
    if isinstance(got, list):
        assert got and all(":" in key for key in got)
        return
    # A loaded record satisfies every rule again when re-validated, and holds no clear ID.
    again = DossierRecord.model_validate(got.model_dump())
    assert again == got
    assert got.received_at.tzinfo is not None and got.received_at.utcoffset() == timedelta(0)
    mst = overrides.get("MST", GOOD["MST"])
    if mst:
        assert str(mst) not in got.model_dump_json()


@settings(max_examples=300, deadline=None)
@given(name=st.text(min_size=1, max_size=80))
def test_validated_text_is_nfc_trimmed_and_never_blank(name: str) -> None:
    try:
        record = DossierRecord.model_validate({**_canonical(), "procedure_name": name})
    except ValidationError:
        return
    value = record.procedure_name
    assert value is None or (
        value == value.strip() and value and unicodedata.is_normalized("NFC", value)
    )


def _canonical() -> dict[str, Any]:
    return {
        "source_system": "tax",
        "source_id": "1",
        "dossier_code": "000.00.06.H56-260105-0001",
        "procedure_code": "1.000123",
        "agency_code": "000.00.06.H56",
        "channel": "online",
        "status": 4,
        "received_at": datetime(2026, 1, 5, 8),
        "source_updated_at": datetime(2026, 1, 6),
    }
