"""Tax's own vocabulary and its table `tb_hoso`: status, channel and level codes, procedures."""

from __future__ import annotations

import re
from typing import NamedTuple

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
)
from sqlalchemy.dialects import mysql

from simulators import database, scenario

TABLE = "tb_hoso"

START = scenario.START
END = scenario.END  # exclusive: nothing is received or changed from here on
TWO_LEVEL_FROM = scenario.TWO_LEVEL_FROM

# -- the Tax office's own vocabulary --------------------------------------------------------
# TRANG_THAI: Tax's numeric status codes (not the shared 1-10 codes).
WAITING = 0  # chờ tiếp nhận
ACCEPTED = 1  # đã tiếp nhận
IN_PROGRESS = 2  # đang xử lý
SUPPLEMENT = 3  # chờ bổ sung hồ sơ
AWAITING_PAYMENT = 4  # chờ thực hiện nghĩa vụ tài chính
RESOLVED = 5  # đã giải quyết, chưa trả
RETURNED = 6  # đã trả kết quả
REFUSED = 7  # từ chối tiếp nhận
WITHDRAWN = 8  # công dân rút hồ sơ
STOPPED = 9  # dừng xử lý
STATUSES = tuple(range(10))
# The next step of a dossier still moving; `touch` applies it.
NEXT_STATUS = {
    WAITING: ACCEPTED,
    ACCEPTED: IN_PROGRESS,
    IN_PROGRESS: RESOLVED,
    SUPPLEMENT: IN_PROGRESS,
    AWAITING_PAYMENT: RESOLVED,
    RESOLVED: RETURNED,
}

IN_PERSON, ONLINE, POSTAL = "TRUC_TIEP", "TRUC_TUYEN", "BUU_CHINH"
CHANNELS = (IN_PERSON, ONLINE, POSTAL)
FULL, PARTIAL, OFFLINE = "TOAN_TRINH", "MOT_PHAN", "KHONG"
SERVICE_LEVELS = (FULL, PARTIAL, OFFLINE)
APPLICANT_TYPES = (1, 2, 3, 4)  # citizen, enterprise, state body, other organisation

PROVINCE = scenario.PROVINCE_LOCALITY
PROVINCE_AGENCY = "000.00.06.H56"  # the provincial tax department
TEAM_AGENCIES = ("000.21.06.H56", "000.22.06.H56", "000.23.06.H56", "000.24.06.H56")
AGENCIES = (PROVINCE_AGENCY, *TEAM_AGENCIES)
DISTRICTS = scenario.DISTRICTS
COMMUNES_THREE_LEVEL = scenario.COMMUNES_THREE_LEVEL
COMMUNES_TWO_LEVEL = scenario.COMMUNES_TWO_LEVEL


class Procedure(NamedTuple):
    code: str
    name: str
    sector: str
    level: str
    days: int  # statutory processing time
    fee: int  # đồng; 0 = free
    weight: int  # relative volume


PROCEDURES = (
    Procedure("1.000123", "Đăng ký thuế lần đầu", "Thuế", FULL, 3, 0, 14),
    Procedure("1.000456", "Thay đổi thông tin đăng ký thuế", "Thuế", FULL, 3, 0, 12),
    Procedure("2.000288", "Khai thuế giá trị gia tăng", "Thuế", FULL, 1, 0, 16),
    Procedure("2.000315", "Quyết toán thuế thu nhập cá nhân", "Thuế", FULL, 5, 0, 10),
    Procedure("1.007541", "Hoàn thuế thu nhập cá nhân", "Thuế", PARTIAL, 6, 0, 6),
    Procedure("1.010094", "Đăng ký sử dụng hóa đơn điện tử", "Hóa đơn", FULL, 1, 0, 9),
    Procedure("1.002367", "Mua hóa đơn do cơ quan thuế đặt in", "Hóa đơn", PARTIAL, 2, 45000, 8),
    Procedure("1.004512", "Cấp bản sao giấy chứng nhận đăng ký thuế", "Thuế", PARTIAL, 3, 20000, 6),
    Procedure("1.003019", "Xác nhận việc thực hiện nghĩa vụ thuế", "Thuế", PARTIAL, 5, 0, 6),
    Procedure("2.001872", "Khai lệ phí trước bạ nhà, đất", "Lệ phí trước bạ", PARTIAL, 5, 0, 5),
    Procedure("2.000960", "Miễn, giảm thuế sử dụng đất phi nông nghiệp", "Thuế", OFFLINE, 10, 0, 4),
    Procedure("1.001640", "Gia hạn nộp thuế", "Thuế", OFFLINE, 10, 0, 4),
)
_PROCEDURE_BY_NAME = {p.name: p for p in PROCEDURES}
_PROCEDURE_CODES = frozenset(
    code for p in PROCEDURES for code in (p.code, f"{p.code}.000.00.00.H56")
)
_TAX_ID = re.compile(r"\d{10}(?:-?\d{3})?|\d{12}")

# -- the table ------------------------------------------------------------------------------
# Upper-case names are quoted by SQLAlchemy on every dialect, so PostgreSQL keeps them as-is.
# NGAY_CAP_NHAT orders versions and pages, so it keeps microseconds everywhere (MariaDB's
# plain DATETIME would round them away).
_PRECISE_DATETIME = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
metadata = MetaData()
tb_hoso = Table(
    TABLE,
    metadata,
    Column("ID", Integer, primary_key=True, autoincrement=False),
    Column("MA_HS", String(64), nullable=False),
    Column("MA_HS_QG", String(64)),
    Column("MA_TTHC", String(64), nullable=False),
    Column("TEN_TTHC", String(500), nullable=False),
    Column("LINH_VUC", String(255)),
    Column("MA_CQ", String(32), nullable=False),
    Column("MA_DVHC", String(8)),
    Column("NGAY_NOP", DateTime),
    Column("NGAY_NHAN", DateTime),  # nullable: a legacy import left some empty
    Column("NGAY_HEN_TRA", DateTime),
    Column("NGAY_TRA", DateTime),
    Column("KENH_NOP", String(16), nullable=False),
    Column("MUC_DO", String(16)),
    Column("TRANG_THAI", SmallInteger, nullable=False),
    Column("LOAI_DT", SmallInteger),
    Column("MST", String(20)),
    Column("LE_PHI", Numeric(12, 0), nullable=False),
    Column("NOP_PHI_TT", SmallInteger, nullable=False),
    Column("SO_TP", SmallInteger),
    Column("SO_TP_SO_HOA", SmallInteger),
    Column("KQ_SO_HOA", SmallInteger),
    Column("NGAY_CAP_NHAT", _PRECISE_DATETIME, nullable=False),
    Index("ix_tb_hoso_ngay_cap_nhat_id", "NGAY_CAP_NHAT", "ID"),
    Index("ix_tb_hoso_ngay_nhan", "NGAY_NHAN"),
)
COLUMNS: tuple[str, ...] = tuple(column.name for column in tb_hoso.columns)
_AT = {name: index for index, name in enumerate(COLUMNS)}


def create_schema(engine: Engine) -> None:
    """Drop and create `tb_hoso` with its indexes."""
    with engine.begin() as conn:
        database.create(conn, (tb_hoso,), indexes=True)
