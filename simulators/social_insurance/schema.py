"""Social Insurance's endpoints and vocabulary: status and channel words, offices, its own
procedure codes with the national codes they map to, its time format."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from simulators import common, scenario

TOKEN_PATH = "/oauth2/token"
DOSSIERS_PATH = "/api/v1/dossiers"
COUNT_PATH = "/api/v1/dossiers/count"
DEMO_CLIENT_ID = "dossierhub"
DEMO_CLIENT_SECRET = "bhxh-demo-secret-not-for-production"
MAX_LIMIT = 500  # largest page the API serves; a larger `limit` is refused, never cut
FORWARDED = 400  # dossiers the portal forwards to Social Insurance over the scenario's span

START = scenario.START
END = scenario.END  # exclusive: nothing is received or changed from here on
LAST = scenario.LAST
TWO_LEVEL_FROM = scenario.TWO_LEVEL_FROM

# -- Social Insurance's own vocabulary -------------------------------------------------------
WAITING = "choTiepNhan"  # chờ tiếp nhận
ACCEPTED = "daTiepNhan"  # đã tiếp nhận
REFUSED = "tuChoi"  # từ chối tiếp nhận
IN_PROGRESS = "dangXuLy"  # đang xử lý
SUPPLEMENT = "yeuCauBoSung"  # yêu cầu bổ sung
WITHDRAWN = "daRut"  # người nộp rút hồ sơ
STOPPED = "dungXuLy"  # dừng xử lý
RESOLVED = "daCoKetQua"  # đã có kết quả, chưa trả
RETURNED = "daTraKetQua"  # đã trả kết quả
STATUSES: tuple[str, ...] = (WAITING, ACCEPTED, REFUSED, IN_PROGRESS, SUPPLEMENT, WITHDRAWN)
STATUSES += (STOPPED, RESOLVED, RETURNED)
# The next step of a dossier still moving; `touch` applies it.
NEXT_STATUS = {
    WAITING: ACCEPTED,
    ACCEPTED: IN_PROGRESS,
    IN_PROGRESS: RESOLVED,
    SUPPLEMENT: IN_PROGRESS,
    RESOLVED: RETURNED,
}
ONLINE, IN_PERSON, POSTAL = "dienTu", "trucTiep", "buuChinh"
CHANNELS = (ONLINE, IN_PERSON, POSTAL)
FULL, PARTIAL, OFFLINE = "toanTrinh", "motPhan", "khongTrucTuyen"
CITIZEN, ENTERPRISE, STATE_BODY, OTHER = "caNhan", "doanhNghiep", "coQuanNhaNuoc", "toChucKhac"
# How a generated dossier ends up (the shares are Social Insurance's own).
_OUTCOMES = common.Outcomes(
    refused=REFUSED,
    withdrawn=WITHDRAWN,
    stopped=STOPPED,
    still_open=[WAITING] * 2 + [ACCEPTED] * 3 + [IN_PROGRESS] * 9 + [SUPPLEMENT] * 3,
    resolved=RESOLVED,
    returned=RETURNED,
    open_below=0.25,
    returned_from=0.35,
    return_within=2 * 86400,
    open_from=LAST,
)

PROVINCE = scenario.PROVINCE_LOCALITY
PROVINCE_OFFICE = "56001"  # BHXH tỉnh
DISTRICT_OFFICES = ("56101", "56102", "56103")  # BHXH cơ sở
OFFICES = (PROVINCE_OFFICE, *DISTRICT_OFFICES)
DISTRICTS = ("568", "569", "570")
COMMUNES_THREE_LEVEL = ("22333", "22366", "22390", "22411", "22435")
COMMUNES_TWO_LEVEL = ("22333", "22390", "22411", "22480", "22504")


class Procedure(NamedTuple):
    code: str  # Social Insurance's own 3-digit code
    national: str  # the national procedure code (mã TTHC) the connector maps it to
    name: str
    sector: str
    level: str
    days: int  # statutory processing time
    fee: int  # đồng; 0 = free
    weight: int  # relative volume


PROCEDURES = (
    Procedure("601", "1.001234", "Cấp lại sổ bảo hiểm xã hội", "Sổ, thẻ", FULL, 10, 0, 14),
    Procedure("602", "1.002345", "Giải quyết hưởng chế độ thai sản", "Chế độ", FULL, 6, 0, 16),
    Procedure("603", "1.000401", "Cấp lại thẻ bảo hiểm y tế", "Sổ, thẻ", FULL, 3, 0, 18),
    Procedure(
        "604", "1.003567", "Đăng ký đóng bảo hiểm xã hội tự nguyện", "Thu", PARTIAL, 5, 0, 10
    ),
    Procedure("605", "2.000765", "Giải quyết hưởng trợ cấp ốm đau", "Chế độ", PARTIAL, 6, 0, 12),
    Procedure("606", "1.004890", "Giải quyết hưởng lương hưu", "Chế độ", OFFLINE, 20, 0, 6),
    Procedure("607", "1.001991", "Cấp bản sao thẻ bảo hiểm y tế", "Sổ, thẻ", PARTIAL, 3, 20000, 6),
)
_BY_NATIONAL = {p.national: p for p in PROCEDURES}
if not all(code in _BY_NATIONAL for code, _ in scenario.PROCEDURES["social_insurance"]):
    raise RuntimeError("every scenario procedure of social_insurance needs a BHXH code here")


def timestamp(moment: datetime) -> str:
    """Social Insurance's time format: local ISO 8601 with its offset, whole seconds."""
    return f"{moment:%Y-%m-%dT%H:%M:%S}+07:00"
