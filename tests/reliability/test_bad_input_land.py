"""Bad input from the Land office's PostgreSQL table: the rows `simulators.land` spoils (one of
each defect kind, twice) and hand-made edge rows, read through the columnar path and the row
path alike — every row loaded or quarantined, each one the same way on both paths."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, create_engine, insert, select

from connectors.base import ConnectorContext
from connectors.identifiers import IdentifierHasher
from connectors.land import LandConnector
from simulators import land
from tests.reliability.sql_corpus import loose, through_both_paths

GOOD: dict[str, Any] = {
    "ma_ho_so": "000.00.13.H56-260105-0001",
    "ma_ho_so_mot_cua": None,
    "ma_thu_tuc": "1.004227",
    "ten_thu_tuc": "Đăng ký biến động quyền sử dụng đất",
    "linh_vuc": "Đất đai",
    "ma_don_vi_xu_ly": "000.00.13.H56",
    "ma_don_vi_tiep_nhan": None,
    "ma_dvhc": "56",
    "ngay_nop": datetime(2026, 1, 5, 7, 50),
    "ngay_tiep_nhan": datetime(2026, 1, 5, 8, 0),
    "ngay_hen_tra": datetime(2026, 1, 19, 17, 0),
    "ngay_hoan_thanh": None,
    "ngay_tra_ket_qua": None,
    "hinh_thuc_nop": 1,
    "muc_do_dvc": 3,
    "trang_thai": "DANG_XU_LY",
    "loai_nguoi_nop": "CA_NHAN",
    "so_cccd": "012345678901",
    "le_phi": 50000,
    "thanh_toan_truc_tuyen": True,
    "so_giay_to": 3,
    "so_giay_to_so_hoa": 2,
    "ket_qua_so_hoa": None,
}
NAME = GOOD["ten_thu_tuc"]
END_OF_TIME = datetime(9999, 12, 31, 23, 59, 59, 999999)
# (case, overrides, expected first reason "field:code", or None when the row must load)
EDGES: list[tuple[str, dict[str, Any], str | None]] = [
    ("received missing", {"ngay_tiep_nhan": None}, "received_at:missing"),
    ("received in year 1", {"ngay_tiep_nhan": datetime(1, 1, 1)}, "received_at:out_of_range"),
    (
        "received a microsecond before 2000 UTC",
        {"ngay_tiep_nhan": datetime(2000, 1, 1, 6, 59, 59, 999999), "ngay_nop": None},
        "received_at:out_of_range",
    ),
    (
        "received at 2000 UTC exactly",
        {
            "ngay_tiep_nhan": datetime(2000, 1, 1, 7),
            "ngay_nop": None,
            "ngay_hen_tra": datetime(2000, 1, 10),
        },
        None,
    ),
    ("received at the calendar's end", {"ngay_tiep_nhan": END_OF_TIME}, "received_at:out_of_range"),
    ("received on an odd microsecond", {"ngay_tiep_nhan": datetime(2026, 1, 5, 8, 0, 0, 1)}, None),
    ("submitted in year 1", {"ngay_nop": datetime(1, 1, 1)}, "submitted_at:out_of_range"),
    ("due at the calendar's end", {"ngay_hen_tra": END_OF_TIME}, None),
    ("due before received", {"ngay_hen_tra": datetime(2026, 1, 4)}, "due_at:inconsistent"),
    (
        "finished before received",
        {"ngay_hoan_thanh": datetime(2026, 1, 1), "trang_thai": "DA_GIAI_QUYET"},
        "finished_at:inconsistent",
    ),
    (  # no rule orders the return after the finish: it loads (both paths alike)
        "returned before finished",
        {
            "ngay_hoan_thanh": datetime(2026, 1, 10),
            "ngay_tra_ket_qua": datetime(2026, 1, 9),
            "trang_thai": "DA_TRA",
        },
        None,
    ),
    (
        "changed before 2000",
        {"ngay_cap_nhat": datetime(1999, 12, 31, 12)},
        "source_updated_at:out_of_range",
    ),
    ("status Land added later", {"trang_thai": "CHO_KY_SO"}, "status:unknown_code"),
    ("status in lower case", {"trang_thai": "da_tra"}, "status:unknown_code"),
    ("status empty", {"trang_thai": ""}, "status:unknown_code"),
    ("status missing", {"trang_thai": None}, "status:unknown_code"),
    ("channel counted from 1", {"hinh_thuc_nop": 3}, "channel:unknown_code"),
    ("channel negative", {"hinh_thuc_nop": -1}, "channel:unknown_code"),
    ("channel missing", {"hinh_thuc_nop": None}, "channel:unknown_code"),
    ("service level 1", {"muc_do_dvc": 1}, "service_level:unknown_code"),
    ("applicant type in lower case", {"loai_nguoi_nop": "ca_nhan"}, "applicant_type:unknown_code"),
    ("citizen ID with dashes", {"so_cccd": "0123-4567-8901"}, "applicant_key:invalid_format"),
    ("citizen ID of 10 digits", {"so_cccd": "1234567890"}, "applicant_key:invalid_format"),
    # Another script's digits would hash to another key: an identifier is ASCII only
    (
        "citizen ID in Arabic-Indic digits",
        {"so_cccd": "٠١٢٣٤٥٦٧٨٩٠١"},
        "applicant_key:invalid_format",
    ),
    ("citizen ID padded", {"so_cccd": " 123456789 "}, None),
    ("citizen ID empty", {"so_cccd": ""}, None),
    ("fee negative", {"le_phi": -1}, None),  # has_fee is "above zero": false
    ("fee missing", {"le_phi": None}, None),
    ("fee at BIGINT's end", {"le_phi": 2**63 - 1}, None),
    ("fee zero, paid online", {"le_phi": 0, "thanh_toan_truc_tuyen": True}, None),
    ("payment flag missing", {"thanh_toan_truc_tuyen": None}, None),
    ("name decomposed NFD", {"ten_thu_tuc": unicodedata.normalize("NFD", NAME)}, None),
    (
        "name mis-decoded UTF-8",
        {"ten_thu_tuc": NAME.encode().decode("cp1252", "replace")},
        "procedure_name:invalid_text",
    ),
    ("name legacy TCVN3", {"ten_thu_tuc": "§¨ng ký biÕn ®éng"}, "procedure_name:invalid_text"),
    ("sector with control char", {"linh_vuc": "Đất đai\x07"}, "sector:invalid_text"),
    ("blank optional text", {"linh_vuc": "   ", "ma_ho_so_mot_cua": ""}, None),
    ("receipt code blank", {"ma_ho_so": "  "}, "dossier_code:missing"),
    ("receipt code missing", {"ma_ho_so": None}, "dossier_code:missing"),
    ("procedure with letter O", {"ma_thu_tuc": "1.OO4227"}, "procedure_code:invalid_format"),
    ("negative documents", {"so_giay_to": -1}, "docs_submitted:greater_than_equal"),
    ("more digitised than submitted", {"so_giay_to_so_hoa": 9}, "docs_digitised:inconsistent"),
    ("documents at SMALLINT's end", {"so_giay_to": 32767}, "docs_submitted:less_than_equal"),
    ("district after the reform", {"ma_dvhc": "568"}, "admin_level:inconsistent"),
]
GENERATED = 36


def connector(url: str, *, columnar: bool) -> LandConnector:
    return LandConnector(
        ConnectorContext(
            source="land",
            settings={"url": url, "columnar": columnar},
            hasher=IdentifierHasher(SecretStr("k" * 40)),
            batch_size=25,
            lookback=timedelta(0),
        )
    )


def test_the_land_corpus_lands_or_quarantines_every_row_alike_on_both_paths(
    registry: Engine,
    databases: Callable[[], str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = databases()
    truth = land.generate(url, rows=GENERATED, seed=7, malformed_share=0.5)
    assert all(count >= 2 for count in truth.defects.values())
    source = create_engine(url)
    table = loose(land.ho_so_dang_ky)  # nullable: the edge rows leave required fields empty
    expected = {}
    with source.begin() as conn:
        generated = conn.execute(select(land.ho_so_dang_ky)).mappings().all()
        land.ho_so_dang_ky.drop(conn)
        table.create(conn)
        edges = []
        for number, (_case, overrides, first_reason) in enumerate(EDGES, start=GENERATED + 1):
            changed = datetime(2026, 10, 31, 9) + timedelta(seconds=number)
            edges.append({**GOOD, "ngay_cap_nhat": changed, **overrides, "id": number})
            expected[str(number)] = first_reason
        conn.execute(insert(table), [*generated, *edges])
    source.dispose()

    result, got = through_both_paths(
        registry,
        lambda columnar: connector(url, columnar=columnar),
        tmp_path,
        caplog,
        reads_columns=True,
    )
    malformed = {str(i) for i in truth.malformed_ids}
    assert malformed <= set(got.reasons)
    assert {str(i) for i in range(1, GENERATED + 1)} - malformed <= got.loaded
    firsts = {i: got.keys(i)[0] if i in got.reasons else None for i in expected}
    assert firsts == expected
    assert result.rows_read == GENERATED + len(EDGES)
    assert len(got.loaded) + len(got.reasons) == result.rows_read
