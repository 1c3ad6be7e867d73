"""Land's own vocabulary and its two tables: status codes and the steps between them,
channels, service levels, procedures, `ho_so_dang_ky` and `lich_su_xu_ly`."""

from __future__ import annotations

import re
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from models.localtime import LOCAL
from simulators import database, scenario

TABLE = "ho_so_dang_ky"
HISTORY = "lich_su_xu_ly"

START = scenario.START
END = scenario.END  # exclusive: nothing is received or changed from here on
TWO_LEVEL_FROM = scenario.TWO_LEVEL_FROM
# Vietnam keeps UTC+7 all year: the zone Land stamps its change times with.

# -- the Land office's own vocabulary -------------------------------------------------------
# trang_thai: Land's text status codes. Land opens a row only once a dossier is accepted.
TIEP_NHAN = "TIEP_NHAN"  # đã tiếp nhận
DANG_XU_LY = "DANG_XU_LY"  # đang xử lý
CHO_BO_SUNG = "CHO_BO_SUNG"  # chờ bổ sung hồ sơ (the clock stops)
CHO_NGHIA_VU_TC = "CHO_NGHIA_VU_TC"  # chờ thực hiện nghĩa vụ tài chính
TAM_DUNG = "TAM_DUNG"  # tạm dừng xử lý: dispute, survey, court (the clock stops)
DA_GIAI_QUYET = "DA_GIAI_QUYET"  # đã giải quyết, chưa trả
DA_TRA = "DA_TRA"  # đã trả kết quả
TU_CHOI = "TU_CHOI"  # từ chối: the dossier does not qualify
RUT_HO_SO = "RUT_HO_SO"  # người nộp rút hồ sơ
STATUSES = (
    TIEP_NHAN,
    DANG_XU_LY,
    CHO_BO_SUNG,
    CHO_NGHIA_VU_TC,
    TAM_DUNG,
    DA_GIAI_QUYET,
    DA_TRA,
    TU_CHOI,
    RUT_HO_SO,
)
# Statuses a dossier can still move on from, and where it may go next (with weights).
NEXT_STEPS: dict[str, tuple[tuple[str, float], ...]] = {
    TIEP_NHAN: ((DANG_XU_LY, 0.96), (TU_CHOI, 0.04)),
    DANG_XU_LY: (
        (CHO_BO_SUNG, 0.25),
        (TAM_DUNG, 0.10),
        (CHO_NGHIA_VU_TC, 0.20),
        (DA_GIAI_QUYET, 0.45),
    ),
    CHO_BO_SUNG: ((DANG_XU_LY, 0.93), (RUT_HO_SO, 0.07)),
    TAM_DUNG: ((DANG_XU_LY, 1.0),),
    CHO_NGHIA_VU_TC: ((DANG_XU_LY, 1.0),),
    DA_GIAI_QUYET: ((DA_TRA, 1.0),),
}
OPEN = tuple(NEXT_STEPS)
PAUSED = (CHO_BO_SUNG, TAM_DUNG)  # the statutory clock stops while in these
# How long a dossier stays in a status before its next step, in seconds (low, high).
_STAY = {
    TIEP_NHAN: (3600, 2 * 86400),
    DANG_XU_LY: (86400, 8 * 86400),
    CHO_BO_SUNG: (2 * 86400, 40 * 86400),
    TAM_DUNG: (7 * 86400, 75 * 86400),
    CHO_NGHIA_VU_TC: (86400, 15 * 86400),
    DA_GIAI_QUYET: (7200, 7 * 86400),
}
_NOTES = {
    TIEP_NHAN: ("Tiếp nhận hồ sơ",),
    DANG_XU_LY: ("Chuyển xử lý", "Tiếp tục giải quyết", "Kiểm tra hồ sơ, xác minh thực địa"),
    CHO_BO_SUNG: (
        "Bổ sung bản vẽ sơ đồ thửa đất",
        "Bổ sung hợp đồng chuyển nhượng có công chứng",
        "Bổ sung trích lục bản đồ địa chính",
        "Bổ sung giấy tờ về quyền sử dụng đất",
    ),
    CHO_NGHIA_VU_TC: ("Chuyển thông tin sang cơ quan thuế xác định nghĩa vụ tài chính",),
    TAM_DUNG: (
        "Tạm dừng do có đơn tranh chấp",
        "Tạm dừng chờ kết quả đo đạc",
        "Tạm dừng theo yêu cầu của Tòa án",
    ),
    DA_GIAI_QUYET: ("Ký Giấy chứng nhận",),
    DA_TRA: ("Trả kết quả cho người nộp",),
    TU_CHOI: ("Hồ sơ không đủ điều kiện giải quyết",),
    RUT_HO_SO: ("Người nộp có đơn rút hồ sơ",),
}
_MAX_STEPS = 24

# hinh_thuc_nop: zero-based, unlike the KenhThucHien codes 1/2/3.
IN_PERSON, ONLINE, POSTAL = 0, 1, 2
CHANNELS = (IN_PERSON, ONLINE, POSTAL)
# muc_do_dvc: Land still records the legacy online service levels.
LEVEL_FULL, LEVEL_PARTIAL, LEVEL_NONE = 4, 3, 2
APPLICANT_TYPES = ("CA_NHAN", "DOANH_NGHIEP", "CO_QUAN_NHA_NUOC", "TO_CHUC_KHAC")

PROVINCE = scenario.PROVINCE_LOCALITY
PROVINCE_OFFICE = "000.00.13.H56"  # Văn phòng Đăng ký đất đai tỉnh
BRANCHES = ("000.21.13.H56", "000.22.13.H56", "000.23.13.H56")  # its district branches
AGENCIES = (PROVINCE_OFFICE, *BRANCHES)


class Procedure(NamedTuple):
    code: str
    name: str
    sector: str
    level: int  # legacy service level 2, 3 or 4
    days: int  # statutory processing time
    fee: int  # đồng; 0 = free
    weight: int  # relative volume


PROCEDURES = (
    Procedure("1.004227", "Đăng ký biến động quyền sử dụng đất", "Đất đai", 3, 10, 50000, 30),
    Procedure(
        "2.000889", "Cấp Giấy chứng nhận quyền sử dụng đất lần đầu", "Đất đai", 3, 20, 100000, 14
    ),
    Procedure(
        "1.003003",
        "Đăng ký thế chấp quyền sử dụng đất",
        "Đăng ký biện pháp bảo đảm",
        LEVEL_FULL,
        1,
        80000,
        16,
    ),
    Procedure(
        "1.004203",
        "Xóa đăng ký thế chấp quyền sử dụng đất",
        "Đăng ký biện pháp bảo đảm",
        LEVEL_FULL,
        1,
        20000,
        9,
    ),
    Procedure("1.005194", "Cấp đổi Giấy chứng nhận quyền sử dụng đất", "Đất đai", 3, 7, 50000, 10),
    Procedure(
        "2.001765", "Cung cấp thông tin, dữ liệu đất đai", "Đất đai", LEVEL_FULL, 2, 30000, 8
    ),
    Procedure("1.001990", "Tách thửa hoặc hợp thửa đất", "Đất đai", LEVEL_NONE, 15, 0, 7),
    Procedure("1.002273", "Chuyển mục đích sử dụng đất", "Đất đai", LEVEL_NONE, 15, 0, 6),
)
_BY_CODE = {p.code: p for p in PROCEDURES}
_BY_NAME = {p.name: p for p in PROCEDURES}
# UTF-8 procedure names read as Windows-1252 somewhere upstream: the legacy-encoding defect.
_MOJIBAKE = {p.name.encode().decode("cp1252", errors="replace"): p for p in PROCEDURES}
_CITIZEN_ID = re.compile(r"\d{12}|\d{9}")


# -- the tables -----------------------------------------------------------------------------
class _ChangeTime(TypeDecorator[datetime]):
    """Land's change stamps: `timestamptz` on PostgreSQL, local wall-clock time on SQLite.

    Python code here always works in naive local time; this converts at the database edge.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if dialect.name == "postgresql":
            return value if value.tzinfo else value.replace(tzinfo=LOCAL)
        return value.astimezone(LOCAL).replace(tzinfo=None) if value.tzinfo else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            return value.astimezone(LOCAL).replace(tzinfo=None)
        return value


# BIGSERIAL on PostgreSQL; INTEGER PRIMARY KEY (the rowid) on SQLite.
_Id = BigInteger().with_variant(Integer, "sqlite")
metadata = MetaData()
ho_so_dang_ky = Table(
    TABLE,
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("ma_ho_so", String(64), nullable=False),
    Column("ma_ho_so_mot_cua", String(64)),  # the one-stop centre's code, when received there
    Column("ma_thu_tuc", String(64), nullable=False),
    Column("ten_thu_tuc", String(500), nullable=False),
    Column("linh_vuc", String(255)),
    Column("ma_don_vi_xu_ly", String(32), nullable=False),
    Column("ma_don_vi_tiep_nhan", String(32)),
    Column("ma_dvhc", String(8)),
    Column("ngay_nop", DateTime),
    Column("ngay_tiep_nhan", DateTime),  # nullable: a migration from the old system lost some
    Column("ngay_hen_tra", DateTime),
    Column("ngay_hoan_thanh", DateTime),
    Column("ngay_tra_ket_qua", DateTime),
    Column("hinh_thuc_nop", SmallInteger, nullable=False),
    Column("muc_do_dvc", SmallInteger),
    Column("trang_thai", String(32), nullable=False),
    Column("loai_nguoi_nop", String(32)),
    Column("so_cccd", String(20)),
    Column("le_phi", BigInteger, nullable=False),
    Column("thanh_toan_truc_tuyen", Boolean, nullable=False),
    Column("so_giay_to", SmallInteger),
    Column("so_giay_to_so_hoa", SmallInteger),
    Column("ket_qua_so_hoa", Boolean),
    Column("ngay_cap_nhat", _ChangeTime, nullable=False),
    Index("ix_ho_so_dang_ky_ngay_cap_nhat_id", "ngay_cap_nhat", "id"),
    Index("ix_ho_so_dang_ky_ngay_tiep_nhan", "ngay_tiep_nhan"),
)
lich_su_xu_ly = Table(
    HISTORY,
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("ho_so_id", BigInteger, nullable=False),
    Column("trang_thai_cu", String(32)),  # NULL on the first entry
    Column("trang_thai_moi", String(32), nullable=False),
    Column("thoi_gian", _ChangeTime, nullable=False),
    Column("ghi_chu", String(500)),
    Index("ix_lich_su_xu_ly_ho_so_id", "ho_so_id", "thoi_gian"),
)
COLUMNS: tuple[str, ...] = tuple(column.name for column in ho_so_dang_ky.columns)
HISTORY_COLUMNS: tuple[str, ...] = tuple(column.name for column in lich_su_xu_ly.columns)
_TABLES = (ho_so_dang_ky, lich_su_xu_ly)  # dossiers first: the history refers to them
_AT = {name: index for index, name in enumerate(COLUMNS)}


def create_schema(engine: Engine) -> None:
    """Drop and create both tables with their indexes."""
    with engine.begin() as conn:
        database.create(conn, _TABLES, indexes=True)
