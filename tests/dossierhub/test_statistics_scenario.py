"""A province worked out by hand, checked the way the statistics office meets it.

Three sector systems in their native shapes: the provincial portal (REST, `one_stop`), the tax
office (SQL table `tb_hoso`) and Finance (daily CSV exports). 32 records, 29 real dossiers
(three were forwarded by the portal: F1 and F2 to Tax, F3 to Finance). Two syncs: the first
sees everything up to 4 March; between the two, Tax resolves F2 (5 March) and records
that T06 was withdrawn (4 March), the portal touches its own copy of F1 (5 March, still "in
progress" there), Finance re-issues its 16 February file with N04 resolved, and two new
dossiers arrive (T12, N06).

Every expected figure below was worked out by hand from the table in this docstring, before
the code ran; none is computed by the code under test. Local (Asia/Ho_Chi_Minh) times.

  id   source    received      channel    level   outcome (status; day)         due
  P01  portal    01-05 09:00   in person  2       returned; fin 01-08           01-12 -> early
  P02  portal    01-12 10:00   online     4       resolved; fin 01-20 09:00     01-20 16:30 -> on time
  P03  portal    01-20 14:00   in person  3       in progress                   02-03
  P04  portal    01-25 08:00   in person  3       refused at intake (3)
  P05  portal    02-02 09:00   postal     2       resolved; fin 02-16           02-13 -> late
  P06  portal    02-10 09:00   online     4       withdrawn (7); changed 02-11  02-24
  P07  portal    03-03 09:00   in person  3       in progress                   03-10
  P08  portal    01-31 23:30   online     4       returned; fin 02-02           02-04 -> early
  F1   portal    01-15 09:00   in person  3       in progress (touched 03-05)   01-29
       tax       01-15 14:00                      returned (6); fin 01-27       01-29 -> early
  F2   portal    02-05 09:00   online     4       in progress                   02-19
       tax       02-05 15:00                      in progress; sync 2: resolved 03-05 -> late
  F3   portal    03-02 08:00   in person  3       in progress                   03-16
       finance   03-02 10:00                      in progress                   03-16 (date)
  T01  tax       01-06         online     -       returned; fin 01-10           01-13 -> early
  T02  tax       01-08         online     -       resolved; fin 01-16 18:00     01-16 17:00 -> late
  T03  tax       01-09         in person  -       refused at intake; end 01-09
  T04  tax       01-12         online     -       withdrawn; end 01-14          01-26
  T05  tax       01-14         in person  -       stopped; end 02-03            01-28
  T06  tax       01-20         online     -       in progress; sync 2: withdrawn 03-04   02-10
  T07  tax       02-03         online     -       in progress                   02-24
  T08  tax       02-09         online     full    returned; fin 02-12           02-20 -> early
  T09  tax       02-20         in person  -       resolved; fin 02-27 17:00     02-27 17:00 -> on time
  T10  tax       03-04         online     -       accepted                      03-18
  T11  tax       02-14         postal     -       refused at intake
  T12  tax       03-10 (sync 2) online    -       returned; fin 03-12           03-20 -> early
  N01  finance   01-07         in person  3       returned; fin 01-13 15:00     01-13 (date) -> on time
  N02  finance   01-19         online     4       resolved; fin 01-21           01-26 -> early
  N03  finance   02-04         in person  2       stopped; end 02-06            02-18
  N04  finance   02-16         online     4       in progress; sync 2: fin 03-02 20:00  03-02 (date) -> on time
  N05  finance   02-25         in person  3       refused at intake
  N06  finance   03-05 (sync 2) online    4       returned; fin 03-09           03-12 -> early

Fees: P02 (paid online), T02 (paid online), N01 (not online), N02 (paid online), F2 (Tax: paid
online), T08 (not online); all others none. Tax reports no service level (except T08) and
no digitisation: for the forwarded F1 and F2 the portal's copy fills the digitisation.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, create_engine, insert, update
from typer.testing import CliRunner

from dossierhub import api, cli, tokens
from simulators import finance as finance_simulator
from simulators import tax as tax_simulator
from simulators.one_stop import OneStopApi
from tests.dossierhub.test_api import serving

API_KEY = "scenario-portal-key-" + "k" * 32
CENTRE = "000.00.00.H56"
TAX = "000.00.06.H56"
FINANCE = "000.00.07.H56"
C1, C2, C3 = f"{CENTRE}-260115-5001", f"{CENTRE}-260205-5002", f"{CENTRE}-260302-7001"


# -- the portal (REST): native records -----------------------------------------------------
def stamp(moment: datetime | None) -> str:
    return "" if moment is None else f"{moment:%Y%m%d%H%M%S}"


def portal(
    ident: str,
    code: str,
    received: datetime,
    channel: int,
    level: int,
    status: int,
    changed: datetime,
    *,
    due: datetime | None = None,
    finished: datetime | None = None,
    returned: datetime | None = None,
    fee: int = 0,
    paid: int = 0,
    docs: int = 1,
    digitised: int = 0,
    result: int = 0,
    handler: str = CENTRE,
) -> dict[str, Any]:
    return {
        "Id": ident,
        "MaHoSo": code,
        "MaTTHC": "1.001193",
        "TenTTHC": "Đăng ký khai sinh",
        "LinhVuc": "Hộ tịch",
        "MaCoQuan": handler,
        "MaNoiTiepNhan": CENTRE,
        "MaDonVi": "56",
        "MaCoQuanChuyenDen": None if handler == CENTRE else handler,
        "NganhChuyenDen": None,
        "KenhThucHien": channel,
        "MucDo": level,
        "NgayNop": stamp(received),
        "NgayTiepNhan": stamp(received),
        "NgayHenTra": stamp(due),
        "NgayKetThuc": stamp(finished),
        "NgayTraKetQua": stamp(returned),
        "TrangThaiHoSo": status,
        "LoaiDoiTuong": 1,
        "SoGiayToChuHoSo": "",
        "LePhi": fee,
        "ThanhToanTrucTuyen": paid,
        "SoThanhPhan": docs,
        "SoThanhPhanSoHoa": digitised,
        "KetQuaDienTu": result,
        "NgayCapNhat": stamp(changed),
    }


def d(month: int, day: int, hour: int = 8, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute)


def portal_records(second_sync: bool) -> list[dict[str, Any]]:
    own = f"{CENTRE}-2601"
    return [
        portal("P01", own + "05-0001", d(1, 5, 9), 1, 2, 10, d(1, 9, 9), due=d(1, 12, 16, 30),
               finished=d(1, 8, 10), returned=d(1, 9, 9), docs=2, digitised=1, result=1),
        portal("P02", own + "12-0001", d(1, 12, 10), 2, 4, 9, d(1, 20, 9), due=d(1, 20, 16, 30),
               finished=d(1, 20, 9), fee=50000, paid=1, docs=3, digitised=3, result=1),
        portal("P03", own + "20-0001", d(1, 20, 14), 1, 3, 4, d(1, 20, 14), due=d(2, 3, 16, 30)),
        portal("P04", own + "25-0001", d(1, 25, 8), 1, 3, 3, d(1, 25, 8, 30)),
        portal("P05", f"{CENTRE}-260202-0001", d(2, 2, 9), 3, 2, 9, d(2, 16, 10),
               due=d(2, 13, 16, 30), finished=d(2, 16, 10), digitised=1),
        portal("P06", f"{CENTRE}-260210-0001", d(2, 10, 9), 2, 4, 7, d(2, 11, 9),
               due=d(2, 24, 16, 30), docs=2, digitised=2),
        portal("P07", f"{CENTRE}-260303-0001", d(3, 3, 9), 1, 3, 4, d(3, 3, 9),
               due=d(3, 10, 16, 30), digitised=1),
        portal("P08", own + "31-0001", d(1, 31, 23, 30), 2, 4, 10, d(2, 2, 10),
               due=d(2, 4, 16, 30), finished=d(2, 2, 9), returned=d(2, 2, 10), digitised=1,
               result=1),
        portal("F1", C1, d(1, 15, 9), 1, 3, 4, d(3, 5, 9) if second_sync else d(1, 15, 9, 5),
               due=d(1, 29, 16, 30), docs=2, digitised=2, handler=TAX),
        portal("F2", C2, d(2, 5, 9), 2, 4, 4, d(2, 5, 9, 5), due=d(2, 19, 16, 30),
               fee=100000, paid=1, digitised=1, handler=TAX),
        portal("F3", C3, d(3, 2, 8), 1, 3, 4, d(3, 2, 8, 5), due=d(3, 16, 16, 30), docs=2,
               handler=FINANCE),
    ]  # fmt: skip


# -- the tax office (SQL): native rows -------------------------------------------------------
IN_PERSON, ONLINE, POSTAL = "TRUC_TIEP", "TRUC_TUYEN", "BUU_CHINH"


def tax(
    ident: int,
    received: datetime,
    channel: str,
    status: int,
    changed: datetime,
    *,
    due: datetime | None = None,
    done: datetime | None = None,
    national: str | None = None,
    level: str | None = None,
    fee: int = 0,
    paid: int = 0,
    result: int | None = None,
) -> dict[str, Any]:
    return {
        "ID": ident,
        "MA_HS": f"{TAX}-{received:%y%m%d}-{ident:04d}",
        "MA_HS_QG": national,
        "MA_TTHC": "1.000123",
        "TEN_TTHC": "Đăng ký thuế",
        "LINH_VUC": "Thuế",
        "MA_CQ": TAX,
        "MA_DVHC": "56",
        "NGAY_NOP": received,
        "NGAY_NHAN": received,
        "NGAY_HEN_TRA": due,
        "NGAY_TRA": done,
        "KENH_NOP": channel,
        "MUC_DO": level,
        "TRANG_THAI": status,  # Tax's codes: 1 accepted, 2 in progress, 5 resolved,
        "LOAI_DT": 1,  # 6 returned, 7 refused, 8 withdrawn, 9 stopped
        "MST": None,
        "LE_PHI": fee,
        "NOP_PHI_TT": paid,
        "SO_TP": 1,
        "SO_TP_SO_HOA": None,
        "KQ_SO_HOA": result,
        "NGAY_CAP_NHAT": changed,
    }


def tax_rows() -> list[dict[str, Any]]:
    return [
        tax(101, d(1, 15, 14), IN_PERSON, 6, d(1, 27, 10), due=d(1, 29, 16, 30),
            done=d(1, 27, 10), national=C1),
        tax(102, d(2, 5, 15), ONLINE, 2, d(2, 5, 15), due=d(2, 19, 16, 30), national=C2,
            fee=100000, paid=1),
        tax(1, d(1, 6), ONLINE, 6, d(1, 10, 9), due=d(1, 13, 17), done=d(1, 10, 9)),
        tax(2, d(1, 8), ONLINE, 5, d(1, 16, 18), due=d(1, 16, 17), done=d(1, 16, 18),
            fee=30000, paid=1),
        tax(3, d(1, 9), IN_PERSON, 7, d(1, 9, 10), done=d(1, 9, 10)),
        tax(4, d(1, 12), ONLINE, 8, d(1, 14, 9), due=d(1, 26, 17), done=d(1, 14, 9)),
        tax(5, d(1, 14), IN_PERSON, 9, d(2, 3, 9), due=d(1, 28, 17), done=d(2, 3, 9)),
        tax(6, d(1, 20), ONLINE, 2, d(1, 20), due=d(2, 10, 17)),
        tax(7, d(2, 3), ONLINE, 2, d(2, 3), due=d(2, 24, 17)),
        tax(8, d(2, 9), ONLINE, 6, d(2, 12, 9), due=d(2, 20, 17), done=d(2, 12, 9),
            level="TOAN_TRINH", fee=20000, result=1),
        tax(9, d(2, 20), IN_PERSON, 5, d(2, 27, 17), due=d(2, 27, 17), done=d(2, 27, 17)),
        tax(10, d(3, 4), ONLINE, 1, d(3, 4), due=d(3, 18, 17)),
        tax(11, d(2, 14), POSTAL, 7, d(2, 14, 9)),
    ]  # fmt: skip


def tax_second_sync(url: str) -> None:
    engine = create_engine(url)
    t = tax_simulator.tb_hoso
    with engine.begin() as conn:
        conn.execute(  # F2 resolved by Tax, late
            update(t)
            .where(t.c.ID == 102)
            .values(TRANG_THAI=5, NGAY_TRA=d(3, 5, 9), NGAY_CAP_NHAT=d(3, 5, 9))
        )
        conn.execute(  # T06 withdrawn
            update(t).where(t.c.ID == 6).values(TRANG_THAI=8, NGAY_CAP_NHAT=d(3, 4, 9))
        )
        conn.execute(
            insert(t).values(
                tax(12, d(3, 10), ONLINE, 6, d(3, 12, 9), due=d(3, 20, 17), done=d(3, 12, 9))
            )
        )
    engine.dispose()


# -- Finance (CSV exports): native lines ----------------------------------------------------
FINANCE_COLUMNS = finance_simulator.COLUMNS  # the reference Finance system's native header


def finance(
    code: str,
    received: str,
    channel: str,
    level: str,
    status: str,
    changed: str,
    *,
    due: str = "",
    done: str = "",
    returned: str = "",
    fee: str = "0",
    paid: str = "",
    docs: str = "1",
    digitised: str = "",
    result: str = "",
    national: str = "",
) -> dict[str, str]:
    return {
        "SoHoSo": code,
        "MaHoSoQuocGia": national,
        "MaThuTuc": "1.010090",
        "TenThuTuc": "Đăng ký mã số đơn vị có quan hệ với ngân sách",
        "LinhVuc": "Tài chính",
        "DonViXuLy": FINANCE,
        "DonViTiepNhan": FINANCE,
        "MaDiaBan": "56",
        "NgayNop": received,
        "NgayNhan": received,
        "HanXuLy": due,
        "NgayHoanThanh": done,
        "NgayTraKetQua": returned,
        "HinhThucNop": channel,
        "MucDo": level,
        "TrangThai": status,
        "LoaiDoiTuong": "2",
        "MaSoThue": "",
        "PhiLePhi": fee,
        "ThanhToanTrucTuyen": paid,
        "SoGiayTo": docs,
        "SoGiayToSoHoa": digitised,
        "KetQuaDienTu": result,
        "NgayCapNhat": changed,
    }


def write_export(folder: Path, day: str, rows: list[dict[str, str]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(FINANCE_COLUMNS)
    for row in rows:
        writer.writerow([row[c] for c in FINANCE_COLUMNS])
    writer.writerow(["#KETTHUC", str(len(rows))])
    (folder / f"STC_{day}.csv").write_bytes(b"\xef\xbb\xbf" + buffer.getvalue().encode())


def n04(second_sync: bool) -> dict[str, str]:
    if second_sync:  # the re-issued file: resolved on its due date, in the evening
        return finance(
            "000.00.07.H56-260216-0001",
            "16/02/2026 08:00:00",
            "Trực tuyến",
            "4",
            "Đã giải quyết",
            "02/03/2026 20:00:00",
            due="02/03/2026",
            done="02/03/2026 20:00:00",
            docs="2",
            digitised="2",
            result="Có",
        )
    return finance("000.00.07.H56-260216-0001", "16/02/2026 08:00:00", "Trực tuyến", "4",
                   "Đang xử lý", "16/02/2026 10:00:00", due="02/03/2026", docs="2", digitised="2")  # fmt: skip


def finance_first_sync(folder: Path) -> None:
    write_export(
        folder,
        "20260107",
        [
            finance(
                "000.00.07.H56-260107-0001",
                "07/01/2026 08:00:00",
                "Trực tiếp",
                "3",
                "Đã trả kết quả",
                "14/01/2026 09:00:00",
                due="13/01/2026",
                done="13/01/2026 15:00:00",
                returned="14/01/2026 09:00:00",
                fee="45.000",
                paid="Không",
                docs="2",
                digitised="2",
                result="Có",
            ),
        ],
    )
    write_export(
        folder,
        "20260119",
        [
            finance(
                "000.00.07.H56-260119-0001",
                "19/01/2026 08:00:00",
                "Trực tuyến",
                "4",
                "Đã giải quyết",
                "21/01/2026 10:00:00",
                due="26/01/2026",
                done="21/01/2026 10:00:00",
                fee="1.250.000",
                paid="Có",
                digitised="1",
                result="Không",
            ),
        ],
    )
    write_export(
        folder,
        "20260204",
        [
            finance(
                "000.00.07.H56-260204-0001",
                "04/02/2026 08:00:00",
                "Trực tiếp",
                "2",
                "Dừng xử lý",
                "06/02/2026 09:00:00",
                due="18/02/2026",
                done="06/02/2026 09:00:00",
                docs="3",
                digitised="0",
            ),
        ],
    )
    write_export(folder, "20260216", [n04(second_sync=False)])
    write_export(
        folder,
        "20260225",
        [
            finance(
                "000.00.07.H56-260225-0001",
                "25/02/2026 08:00:00",
                "Trực tiếp",
                "3",
                "Từ chối tiếp nhận",
                "25/02/2026 09:00:00",
                digitised="0",
            ),
        ],
    )
    write_export(folder, "20260302", [
        finance("000.00.07.H56-260302-0001", "02/03/2026 10:00:00", "Trực tiếp", "3",
                "Đang xử lý", "02/03/2026 10:00:00", due="16/03/2026", docs="2", national=C3),
    ])  # fmt: skip


def finance_second_sync(folder: Path) -> None:
    write_export(folder, "20260216", [n04(second_sync=True)])
    write_export(folder, "20260305", [
        finance("000.00.07.H56-260305-0001", "05/03/2026 08:00:00", "Trực tuyến", "4",
                "Đã trả kết quả", "09/03/2026 11:00:00", due="12/03/2026",
                done="09/03/2026 10:00:00", returned="09/03/2026 11:00:00", digitised="1",
                result="Có"),
    ])  # fmt: skip


# -- the figures, worked by hand ------------------------------------------------------------
# January: received P01 P02 P03 P08 F1 T01 T02 T04 T05 T06 N01 N02 (P04, T03 refused).
JANUARY = {
    "received": 12,
    "received_online": 7,  # P02 P08 T01 T02 T04 T06 N02
    "online_rate": 0.5833,  # 7 / 12
    "refused_intake": 2,  # P04 T03
    "service_level_reported": 7,  # P01 P02 P03 P08 F1 N01 N02
    "received_full_online": 3,  # P02 P08 N02
    "full_online_rate": 0.4286,  # 3 / 7
    "service_level_coverage": 0.5833,  # 7 / 12
    "digitisation_reported": 7,  # P01 P02 P03 P08 F1 (the portal's copy) N01 N02
    "digitised": 6,  # all of them but P03
    "digitisation_rate": 0.8571,  # 6 / 7
    "digitisation_coverage": 0.5833,
    "with_fee": 4,  # P02 T02 N01 N02
    "paid_online": 3,  # P02 T02 N02
    "online_payment_rate": 0.75,
    "resolved": 7,  # P01 P02 F1 T01 T02 N01 N02
    "resolved_early": 4,  # P01 F1 T01 N02
    "resolved_on_time": 2,  # P02 (same day, before the time) N01 (due date, any time)
    "resolved_late": 1,  # T02
    "on_time_rate": 0.8571,  # 6 / 7
    "result_digitisation_reported": 5,  # P01 P02 F1 N01 N02
    "result_digitised": 3,  # P01 P02 N01
    "result_digitisation_rate": 0.6,
    "withdrawn": 1,  # T04 (14 January)
    "stopped": 0,  # T05 stopped on 3 February
}
# February: received P05 P06 F2 T07 T08 T09 N03 N04 (T11, N05 refused).
FEBRUARY = {
    "received": 8,
    "received_online": 5,  # P06 F2 T07 T08 N04
    "online_rate": 0.625,
    "refused_intake": 2,  # T11 N05
    "service_level_reported": 6,  # P05 P06 F2 T08 N03 N04
    "received_full_online": 4,  # P06 F2 T08 N04
    "full_online_rate": 0.6667,
    "service_level_coverage": 0.75,
    "digitisation_reported": 5,  # P05 P06 F2 N03 N04
    "digitised": 4,  # P05 P06 F2 N04
    "digitisation_rate": 0.8,
    "digitisation_coverage": 0.625,
    "with_fee": 2,  # F2 T08
    "paid_online": 1,  # F2
    "online_payment_rate": 0.5,
    "resolved": 4,  # P08 P05 T08 T09
    "resolved_early": 2,  # P08 T08
    "resolved_on_time": 1,  # T09 (at its due time exactly)
    "resolved_late": 1,  # P05
    "on_time_rate": 0.75,
    "result_digitisation_reported": 3,  # P08 P05 T08
    "result_digitised": 2,  # P08 T08
    "result_digitisation_rate": 0.6667,
    "withdrawn": 1,  # P06 (its last change, 11 February: no end time given)
    "stopped": 2,  # T05 (3 February) N03 (6 February)
}
# March, after the second sync: received P07 F3 T10 T12 N06.
MARCH = {
    "received": 5,
    "received_online": 3,  # T10 T12 N06
    "online_rate": 0.6,
    "refused_intake": 0,
    "service_level_reported": 3,  # P07 F3 N06
    "received_full_online": 1,  # N06
    "full_online_rate": 0.3333,
    "service_level_coverage": 0.6,
    "digitisation_reported": 3,  # P07 F3 (the portal's copy: 0) N06
    "digitised": 2,  # P07 N06
    "digitisation_rate": 0.6667,
    "digitisation_coverage": 0.6,
    "with_fee": 0,
    "paid_online": 0,
    "online_payment_rate": None,  # no dossier with a fee: not a rate of 0
    "resolved": 4,  # F2 N04 T12 N06
    "resolved_early": 2,  # T12 N06
    "resolved_on_time": 1,  # N04
    "resolved_late": 1,  # F2
    "on_time_rate": 0.75,
    "result_digitisation_reported": 3,  # F2 (the portal's copy) N04 N06
    "result_digitised": 2,  # N04 N06
    "result_digitisation_rate": 0.6667,
    "withdrawn": 1,  # T06 (4 March)
    "stopped": 0,
}
# Open and overdue at the end of a day, as the history stood then.
OPEN_END_OF_JANUARY = {"open": 4, "overdue": 1}  # P03 P08 T05 T06; T05 (due 01-28)
OPEN_END_OF_FEBRUARY = {"open": 5, "overdue": 4}  # P03 T06 F2 T07 N04; all but N04
OPEN_END_OF_MARCH = {"open": 5, "overdue": 5}  # P03 T07 P07 F3 T10


# -- the harness ----------------------------------------------------------------------------
class Province:
    def __init__(self, folder: Path, registry_url: str, portal_api: OneStopApi) -> None:
        self.folder = folder
        self.registry_url = registry_url
        self.portal = portal_api
        self.tax_url = f"sqlite:///{folder / 'tax.db'}"
        self.drop = folder / "finance-drop"
        self.drop.mkdir()
        sources = folder / "sources.yaml"
        sources.write_text(
            "sources:\n"
            "  one_stop:\n    connector: one_stop\n    settings:\n"
            f"      base_url: {portal_api.url}\n      api_key: ${{ONE_STOP_API_KEY}}\n"
            "  tax:\n    connector: tax\n    settings:\n      url: ${TAX_URL}\n"
            f"  finance:\n    connector: finance\n    settings:\n      folder: {self.drop}\n",
            encoding="utf-8",
        )
        self.env = {
            "DOSSIERHUB_REGISTRY_URL": registry_url,
            "DOSSIERHUB_SOURCES_FILE": str(sources),
            "DOSSIERHUB_HASH_KEY": "scenario-key-" + "s" * 32,
            "ONE_STOP_API_KEY": API_KEY,
            "TAX_URL": self.tax_url,
        }

    def cli(self, *args: str) -> Any:
        # The commands run in this process (typer's CliRunner) with this province's settings
        # alone; tests/dossierhub/test_cli.py runs them as processes.
        env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("DOSSIERHUB_")}
        env.update(self.env, COLUMNS="200", NO_COLOR="1")
        done = CliRunner().invoke(cli.app, list(args), env=env, prog_name="dossierhub")
        assert done.exit_code == 0, (done.output, done.exception)
        return json.loads(done.stdout)

    def first_sync(self) -> None:
        self.portal.replace(portal_records(second_sync=False))
        engine = create_engine(self.tax_url)
        tax_simulator.create_schema(engine)
        with engine.begin() as conn:
            conn.execute(insert(tax_simulator.tb_hoso), tax_rows())
        engine.dispose()
        finance_first_sync(self.drop)
        self.sync()

    def second_sync(self) -> None:
        self.portal.replace(portal_records(second_sync=True))
        tax_second_sync(self.tax_url)
        finance_second_sync(self.drop)
        self.sync()

    def sync(self, *extra: str) -> None:
        results = self.cli("sync", "--all", "--format", "json", *extra)
        assert all(r["quarantined"] == 0 for r in results), results

    def months(self, *extra: str) -> dict[str, dict[str, Any]]:
        rows = self.cli("stats", "--period", "2026-Q1", "--by", "month", "-f", "json", *extra)
        return {row["month"]: row for row in rows}

    def open_at(self, day: str) -> dict[str, int]:
        [row] = self.cli("stats", "--as-of", day, "-f", "json")
        return dict(row)


def agree(got: dict[str, Any], expected: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The figures that differ from the hand-worked ones: {name: (got, expected)}."""
    return {k: (got.get(k), v) for k, v in expected.items() if got.get(k) != v}


@pytest.fixture
def province(registry: Engine, tmp_path: Path) -> Iterator[Province]:
    with OneStopApi(rows=0, seed=1, api_key=API_KEY) as portal_api:
        yield Province(tmp_path, registry.url.render_as_string(hide_password=False), portal_api)


def test_the_hand_worked_province_through_the_cli_and_the_api(
    province: Province, registry: Engine
) -> None:
    province.first_sync()
    first = province.months()
    assert agree(first["2026-01"], JANUARY) == {}
    assert agree(first["2026-02"], FEBRUARY) == {}
    assert province.open_at("2026-01-31") == OPEN_END_OF_JANUARY
    assert province.open_at("2026-02-28") == OPEN_END_OF_FEBRUARY

    province.second_sync()
    second = province.months()
    # Closed months stand: the second sync touched January's F1 and T06 and February's F2
    # and N04, but only in ways that belong to March.
    assert second["2026-01"] == first["2026-01"]
    assert second["2026-02"] == first["2026-02"]
    assert agree(second["2026-03"], MARCH) == {}
    assert province.open_at("2026-01-31") == OPEN_END_OF_JANUARY
    assert province.open_at("2026-02-28") == OPEN_END_OF_FEBRUARY
    assert province.open_at("2026-03-31") == OPEN_END_OF_MARCH

    # The same figures through the API.
    token = tokens.create_token(registry, role="statistics", name="scenario")
    headers = {"Authorization": f"Bearer {token}"}
    with serving(api.create_app(registry)) as url, httpx.Client(base_url=url) as client:
        got = client.get(
            f"{api.API_PREFIX}/indicators",
            params={"period": "2026-Q1", "by": "month"},
            headers=headers,
        )
        assert got.status_code == 200, got.text
        by_month = {row["group"]["month"]: row for row in got.json()["rows"]}
        for month, expected in (("2026-01", JANUARY), ("2026-02", FEBRUARY), ("2026-03", MARCH)):
            assert agree(by_month[month], expected) == {}, month
        for day, expected in (
            ("2026-01-31", OPEN_END_OF_JANUARY),
            ("2026-02-28", OPEN_END_OF_FEBRUARY),
            ("2026-03-31", OPEN_END_OF_MARCH),
        ):
            got = client.get(f"{api.API_PREFIX}/open", params={"as_of": day}, headers=headers)
            assert got.status_code == 200, got.text
            [row] = got.json()["rows"]
            assert {k: row[k] for k in ("open", "overdue")} == expected, day
        portal_only = client.get(
            f"{api.API_PREFIX}/indicators",
            params={"period": "2026-Q1", "by": "month", "portal_only": "true"},
            headers=headers,
        ).json()["rows"]
        seen = {r["group"]["month"]: (r["received"], r["received_online"]) for r in portal_only}
        # January: P01 P02 P03 P08 F1, online P02 P08; February: P05 P06 F2, online P06 F2;
        # March: P07 F3, none online.
        assert seen == {"2026-01": (5, 2), "2026-02": (3, 2), "2026-03": (2, 0)}


def test_a_full_refresh_and_a_rebuild_give_the_incremental_figures(province: Province) -> None:
    province.first_sync()
    province.second_sync()
    incremental = province.months()
    province.sync("--full-refresh")
    assert province.months() == incremental
    rebuilt = province.months("--rebuild")
    assert rebuilt == incremental
    assert agree(rebuilt["2026-01"], JANUARY) == {}
    assert agree(rebuilt["2026-03"], MARCH) == {}
    assert province.open_at("2026-02-28") == OPEN_END_OF_FEBRUARY
