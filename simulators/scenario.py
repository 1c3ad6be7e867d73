"""The province the reference systems share: one seeded scenario behind every simulator.

Each reference system generates most of its dossiers on its own, in its own native shape. What
ties them together is the flow of dossiers received at a one-stop centre (Bộ phận một cửa) and
forwarded to a sector agency: such a dossier appears in the provincial portal *and* in the
sector system, and both carry its national dossier code. `forwarded(seed, sector=..., count=...)`
gives the same list to the portal simulator and to the sector's simulator, so the registry
can link them into one case and count it once.

Calibration (the problem DossierHub exists for): the portal sees mostly in-person dossiers,
while Tax and Social Insurance receive mostly online — so "portal only" and "unified" online
rates differ sharply. `ONLINE_SHARE` is the share each system's own intake is online.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

PROVINCE = "H56"  # the province's letter group in the agency code list (Decision 20/2020)
PROVINCE_LOCALITY = "56"
START = datetime(2025, 1, 1)
END = datetime(2026, 11, 1)  # exclusive: nothing is received from here on
LAST = END - timedelta(seconds=1)  # the last moment anything happens
# Decision 19/2025: from this day the unit table has no district level.
TWO_LEVEL_FROM = datetime(2025, 7, 1)
# The unit table: district codes until the reform, commune codes before and after it.
DISTRICTS = ("568", "569", "570", "572", "573", "574")
COMMUNES_THREE_LEVEL = ("22333", "22366", "22390", "22402", "22411", "22435", "22450")
COMMUNES_TWO_LEVEL = ("22333", "22390", "22411", "22480", "22504", "22528")
SECTORS = ("tax", "social_insurance", "finance", "land")
# A centre numbers its receipts per day; forwarded dossiers take a block per sector (the
# centre's own intake stays below 5000), so two sectors never print the same code.
_BLOCK = {"tax": 5000, "social_insurance": 6000, "finance": 7000, "land": 8000}

# Share of each system's own intake submitted online.
ONLINE_SHARE = {
    "one_stop": 0.12,
    "tax": 0.80,
    "social_insurance": 0.85,
    "finance": 0.40,
    "land": 0.25,
}

# One-stop centres: provincial public administration centre, district and commune centres.
CENTRES = (
    ("000.00.00.H56", "56", "province"),
    ("000.00.31.H56", "568", "district"),
    ("000.00.32.H56", "569", "district"),
    ("000.00.33.H56", "570", "district"),
    ("000.31.31.H56", "22333", "commune"),
    ("000.32.32.H56", "22390", "commune"),
    ("000.33.33.H56", "22411", "commune"),
)
# Centres still receiving after the district level was abolished.
CENTRES_TWO_LEVEL = tuple(c for c in CENTRES if c[2] != "district")

# Procedures each sector handles, as national procedure codes (mã TTHC) with names.
PROCEDURES = {
    "tax": (("1.000123", "Đăng ký thuế lần đầu"), ("1.007567", "Khai thuế thu nhập cá nhân")),
    "social_insurance": (
        ("1.001234", "Cấp lại sổ bảo hiểm xã hội"),
        ("1.002345", "Giải quyết hưởng chế độ thai sản"),
    ),
    "finance": (
        ("2.001810", "Cấp mã số đơn vị có quan hệ với ngân sách"),
        ("1.009876", "Thẩm tra quyết toán dự án hoàn thành"),
    ),
    "land": (
        ("1.004227", "Đăng ký biến động quyền sử dụng đất"),
        ("2.000889", "Cấp Giấy chứng nhận quyền sử dụng đất lần đầu"),
    ),
}


@dataclass(frozen=True, slots=True)
class Forwarded:
    """A dossier received at a one-stop centre and forwarded to a sector agency."""

    national_code: str  # the receipt code the centre printed; the national portal knows it by it
    sector: str
    centre: str  # agency code of the receiving centre
    locality_code: str
    admin_level: str
    procedure_code: str
    procedure_name: str
    channel: int  # KenhThucHien: 1 in person, 2 online, 3 postal
    received_at: datetime  # naive local time (Asia/Ho_Chi_Minh)


def forwarded(seed: int, *, sector: str, count: int) -> list[Forwarded]:
    """The dossiers the portal forwards to `sector`: identical for every simulator given the seed."""
    if sector not in SECTORS:
        raise ValueError(f"unknown sector {sector!r}; sectors: {', '.join(SECTORS)}")
    rng = random.Random(f"{seed}:forwarded:{sector}")
    span = int((END - START).total_seconds())
    sequence: dict[tuple[str, str], int] = {}
    result = []
    for _ in range(count):
        received = START + timedelta(seconds=rng.randrange(span))
        received = received.replace(microsecond=0)
        centres = CENTRES_TWO_LEVEL if received >= TWO_LEVEL_FROM else CENTRES
        centre, locality, level = rng.choice(centres)
        day = received.strftime("%y%m%d")
        number = sequence[(centre, day)] = sequence.get((centre, day), 0) + 1
        code, name = rng.choice(PROCEDURES[sector])
        result.append(
            Forwarded(
                national_code=f"{centre}-{day}-{_BLOCK[sector] + number:04d}",
                sector=sector,
                centre=centre,
                locality_code=locality,
                admin_level=level,
                procedure_code=code,
                procedure_name=name,
                channel=2 if rng.random() < ONLINE_SHARE["one_stop"] else 1,
                received_at=received,
            )
        )
    return sorted(result, key=lambda f: (f.received_at, f.national_code))
