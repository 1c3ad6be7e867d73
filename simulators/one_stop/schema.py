"""The portal's endpoints and vocabulary: channel, level and status codes, the sector agencies
it forwards to, its procedures and its time format."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from simulators import common, scenario

DOSSIERS_PATH = "/api/v1/hoso"
COUNT_PATH = "/api/v1/hoso/dem"
API_KEY_HEADER = "X-API-Key"
DEMO_API_KEY = "motcua-demo-key-not-for-production"
MAX_PAGE_SIZE = 200  # largest SoBanGhi the portal serves; more is refused, never cut
TIME = "%Y%m%d%H%M%S"
DAY = "%Y%m%d"
# Dossiers forwarded to each sector by default: the counts the sector simulators use.
DEFAULT_FORWARDED: dict[str, int] = {
    "tax": 0,  # the Tax simulator carries no forwarded dossiers
    "social_insurance": 400,  # simulators.social_insurance.FORWARDED
    "finance": 600,  # simulators.finance.FORWARDED
    "land": 0,  # simulators.land.generate's default
}

START = scenario.START
END = scenario.END  # exclusive: nothing is received or changed from here on
LAST = scenario.LAST
TWO_LEVEL_FROM = scenario.TWO_LEVEL_FROM

# -- the portal's vocabulary ----------------------------------------------------------------
IN_PERSON, ONLINE, POSTAL = 1, 2, 3  # KenhThucHien
LEVEL_FULL, LEVEL_PARTIAL, LEVEL_NONE = 4, 3, 2  # MucDo (legacy levels)
# TrangThaiHoSo: the ten shared codes, as strings.
REGISTERED, ACCEPTED, NOT_ACCEPTED, IN_PROGRESS, SUPPLEMENT = "1", "2", "3", "4", "5"
AWAITING_PAYMENT, WITHDRAWN, STOPPED, RESOLVED, RETURNED = "6", "7", "8", "9", "10"
NEXT_STATUS = {
    REGISTERED: ACCEPTED,
    ACCEPTED: IN_PROGRESS,
    IN_PROGRESS: RESOLVED,
    SUPPLEMENT: IN_PROGRESS,
    AWAITING_PAYMENT: RESOLVED,
    RESOLVED: RETURNED,
}
# The sector agencies dossiers are forwarded to, and the portal's short name for each sector.
SECTOR_AGENCIES = {
    "tax": "000.00.06.H56",  # Cục Thuế tỉnh
    "social_insurance": "000.00.15.H56",  # Bảo hiểm xã hội tỉnh
    "finance": "000.00.10.H56",  # Sở Tài chính
    "land": "000.00.13.H56",  # Văn phòng Đăng ký đất đai
}
SECTOR_NAMES = {"tax": "THUE", "social_insurance": "BHXH", "finance": "TAICHINH", "land": "DATDAI"}
if set(SECTOR_AGENCIES) != set(scenario.SECTORS):
    raise RuntimeError("every scenario sector needs its agency here")
# How a generated dossier ends up (the shares are the portal's own).
_STILL_OPEN = [REGISTERED] * 2 + [ACCEPTED] * 3 + [IN_PROGRESS] * 9
_STILL_OPEN += [SUPPLEMENT] * 3 + [AWAITING_PAYMENT] * 2
_OUTCOMES = common.Outcomes(
    refused=NOT_ACCEPTED,
    withdrawn=WITHDRAWN,
    stopped=STOPPED,
    still_open=_STILL_OPEN,
    resolved=RESOLVED,
    returned=RETURNED,
    open_below=0.25,
    returned_from=0.35,
    return_within=2 * 86400,
    open_from=LAST,
)


class Procedure(NamedTuple):
    code: str
    name: str
    sector: str
    level: int
    days: int
    fee: int  # đồng; 0 = free
    weight: int
    places: tuple[str, ...]  # admin levels of the centres that receive it


PROCEDURES = (
    Procedure("1.001193", "Đăng ký khai sinh", "Hộ tịch", LEVEL_FULL, 1, 0, 18, ("commune",)),
    Procedure("1.000894", "Đăng ký kết hôn", "Hộ tịch", LEVEL_PARTIAL, 5, 0, 10, ("commune",)),
    Procedure(
        "2.000908",
        "Chứng thực bản sao từ bản chính giấy tờ, văn bản",
        "Chứng thực",
        LEVEL_NONE,
        1,
        2000,
        22,
        ("district", "commune"),
    ),
    Procedure(
        "1.001612",
        "Đăng ký thành lập hộ kinh doanh",
        "Thành lập và hoạt động của hộ kinh doanh",
        LEVEL_PARTIAL,
        3,
        100000,
        8,
        ("district", "commune"),
    ),
    Procedure(
        "1.009994",
        "Cấp giấy phép xây dựng nhà ở riêng lẻ",
        "Hoạt động xây dựng",
        LEVEL_PARTIAL,
        15,
        75000,
        6,
        ("province", "district"),
    ),
    Procedure(
        "2.000488",
        "Cấp Phiếu lý lịch tư pháp cho công dân Việt Nam",
        "Lý lịch tư pháp",
        LEVEL_FULL,
        10,
        200000,
        8,
        ("province",),
    ),
)


def stamp(moment: datetime | None) -> str:
    """The portal's time format: yyyyMMddHHmmss, local; "" for no time."""
    return "" if moment is None else moment.strftime(TIME)


def parse_stamp(text: str) -> datetime:
    return datetime.strptime(text, TIME)
