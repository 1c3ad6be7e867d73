"""Finance's export shape and vocabulary: file names, columns, status and channel words,
offices, procedures and how its dossiers end up."""

from __future__ import annotations

from datetime import date
from typing import NamedTuple

from simulators import common, scenario

PREFIX = "HoSo_TaiChinh_"
CSV_TRAILER = "#KETTHUC"
XML_ROOT, XML_RECORD, XML_COUNT = "DanhSachHoSo", "HoSo", "TongSo"
PARAMETERS = ".simulator.json"  # hidden: the connector ignores it
START = date(2025, 6, 21)  # default first day: ten days before the two-level reform
END = scenario.END  # exclusive: nothing is received or changed from here on
TWO_LEVEL_FROM = scenario.TWO_LEVEL_FROM.date()
FORWARDED = 600  # dossiers the portal forwards to Finance over the scenario's span
DATE, TIME = "%d/%m/%Y", "%d/%m/%Y %H:%M:%S"

COLUMNS: tuple[str, ...] = (
    "SoHoSo",
    "MaHoSoQuocGia",
    "MaThuTuc",
    "TenThuTuc",
    "LinhVuc",
    "DonViXuLy",
    "DonViTiepNhan",
    "MaDiaBan",
    "NgayNop",
    "NgayNhan",
    "HanXuLy",
    "NgayHoanThanh",
    "NgayTraKetQua",
    "HinhThucNop",
    "MucDo",
    "TrangThai",
    "LoaiDoiTuong",
    "MaSoThue",
    "PhiLePhi",
    "ThanhToanTrucTuyen",
    "SoGiayTo",
    "SoGiayToSoHoa",
    "KetQuaDienTu",
    "NgayCapNhat",
)

# -- Finance's own vocabulary ---------------------------------------------------------------
WAITING = "Chờ tiếp nhận"
ACCEPTED = "Đã tiếp nhận"
REFUSED = "Từ chối tiếp nhận"
IN_PROGRESS = "Đang xử lý"
SUPPLEMENT = "Chờ bổ sung"
AWAITING_PAYMENT = "Chờ thực hiện nghĩa vụ tài chính"
WITHDRAWN = "Đã rút"
STOPPED = "Dừng xử lý"
RESOLVED = "Đã giải quyết"
RETURNED = "Đã trả kết quả"
STATUSES: tuple[str, ...] = (WAITING, ACCEPTED, REFUSED, IN_PROGRESS, SUPPLEMENT)
STATUSES += (AWAITING_PAYMENT, WITHDRAWN, STOPPED, RESOLVED, RETURNED)
# The next step of a dossier still moving; `reissue` applies it.
NEXT_STATUS = {
    WAITING: ACCEPTED,
    ACCEPTED: IN_PROGRESS,
    IN_PROGRESS: RESOLVED,
    SUPPLEMENT: IN_PROGRESS,
    AWAITING_PAYMENT: RESOLVED,
    RESOLVED: RETURNED,
}
IN_PERSON, ONLINE, POSTAL = "Trực tiếp", "Trực tuyến", "Bưu chính"
_CHANNEL_OF_CODE = {1: IN_PERSON, 2: ONLINE, 3: POSTAL}  # the scenario's KenhThucHien codes
YES, NO = "Có", "Không"

DEPARTMENT = "000.00.10.H56"  # Sở Tài chính
# District finance offices until the district level was abolished, commune offices after.
DISTRICT_OFFICES = (("000.41.10.H56", "568"), ("000.42.10.H56", "569"), ("000.43.10.H56", "570"))
COMMUNE_OFFICES = (
    ("000.51.10.H56", "22333"),
    ("000.52.10.H56", "22390"),
    ("000.53.10.H56", "22411"),
)


class Procedure(NamedTuple):
    code: str
    name: str
    sector: str
    level: str  # MucDo: legacy level 4 (full online), 3 (partial), 2 (not online)
    days: int  # statutory processing time
    fee: int  # đồng; 0 = free
    weight: int  # relative volume


PROCEDURES = (
    Procedure(
        "2.001810", "Cấp mã số đơn vị có quan hệ với ngân sách", "Quản lý ngân sách", "4", 2, 0, 16
    ),
    Procedure("1.009876", "Thẩm tra quyết toán dự án hoàn thành", "Đầu tư", "3", 20, 0, 8),
    Procedure("1.005432", "Đăng ký giá", "Quản lý giá", "4", 5, 0, 10),
    Procedure("2.002034", "Thẩm định, phê duyệt giá đất cụ thể", "Quản lý giá", "2", 15, 0, 6),
    Procedure(
        "1.008321", "Xác lập sở hữu toàn dân về tài sản", "Quản lý công sản", "3", 30, 0, 5
    ),
    Procedure("1.006781", "Mua hóa đơn bán tài sản công", "Quản lý công sản", "4", 1, 45000, 8),
    Procedure(
        "2.000312", "Cấp chứng nhận đủ điều kiện kinh doanh thẩm định giá", "Quản lý giá", "3",
        10, 1250000, 3,
    ),
    Procedure("1.004455", "Quyết toán vốn ngân sách xã", "Quản lý ngân sách", "2", 10, 0, 6),
)  # fmt: skip
_BY_CODE = {p.code: p for p in PROCEDURES}
_WEIGHTED = [p for p in PROCEDURES for _ in range(p.weight)]
_CAPABLE = sum(p.weight for p in PROCEDURES if p.level != "2") / sum(p.weight for p in PROCEDURES)
# ~40% of all Finance dossiers come online: all of them through online-capable procedures.
_ONLINE_WHEN_CAPABLE = scenario.ONLINE_SHARE["finance"] / _CAPABLE
# How a generated dossier ends up (the shares are Finance's own).
_OPEN = [WAITING] * 2 + [ACCEPTED] * 3 + [IN_PROGRESS] * 8 + [SUPPLEMENT] * 3
_OPEN += [AWAITING_PAYMENT] * 2
_OUTCOMES = common.Outcomes(
    refused=REFUSED,
    withdrawn=WITHDRAWN,
    stopped=STOPPED,
    still_open=_OPEN,
    resolved=RESOLVED,
    returned=RETURNED,
    open_below=0.3,
    returned_from=0.45,
    return_within=86400,
    open_from=END,
)
