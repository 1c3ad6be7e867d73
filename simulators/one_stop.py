"""The provincial one-stop portal (Cổng dịch vụ công / Hệ thống một cửa điện tử): its REST API.

The portal records every dossier received at the province's one-stop centres (Bộ phận một
cửa) — the provincial public administration centre, district centres until 2025-07-01 and
commune centres — and the dossiers those centres forward to a sector agency. Today's
statistics come from it alone. Its native shape, which nothing here translates (that is
`connectors/one_stop.py`'s job):

* PascalCase Vietnamese field names (MaHoSo, MaTTHC, TenTTHC, MaCoQuan, MaDonVi,
  KenhThucHien, MucDo, NgayTiepNhan, NgayHenTra, NgayKetThuc, TrangThaiHoSo, NgayCapNhat);
* `yyyyMMddHHmmss` naive local times, and "" for a time not (yet) set;
* the shared channel codes (KenhThucHien 1 in person, 2 online, 3 postal), the legacy service
  levels (MucDo 2, 3, 4) and the ten shared status codes as strings ("1".."10");
* mostly in-person intake (`scenario.ONLINE_SHARE`), and the applicant's citizen ID or tax
  code (SoGiayToChuHoSo, personal data);
* for a forwarded dossier, the sector agency it went to (MaCoQuanChuyenDen) and the sector
  (NganhChuyenDen); MaHoSo, the receipt code the centre printed, is the code the national
  portal and the sector system know it by. Every dossier also has the portal's own key, Id.

The API (API key in the `X-API-Key` header):

* `GET /api/v1/hoso?NgayCapNhatTu=&SoTrang=&SoBanGhi=` — dossiers changed at or after
  NgayCapNhatTu, ordered by (NgayCapNhat, Id), one page by number (from 1);
  `{"TongSo": n, "SoTrang": p, "SoBanGhi": s, "DuLieu": [...]}`. Pages are positions in the
  current data, so a change during a read shifts them (the connector copes);
* `GET /api/v1/hoso/dem?TuNgay=yyyyMMdd&DenNgay=yyyyMMdd` — dossiers received on local days
  TuNgay <= day < DenNgay (all without the parameters), `{"TongSo": n}`.
"""

from __future__ import annotations

import hmac
import random
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, ClassVar, NamedTuple

from simulators import common, scenario
from simulators.common import Defect, DossierApi, Record, assign
from simulators.http_server import Faults, RecordSet, Request, Response

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


# -- planted defects ------------------------------------------------------------------------
def _due_before_received(record: dict[str, Any]) -> None:
    record["NgayHenTra"] = stamp(parse_stamp(record["NgayTiepNhan"]) - timedelta(days=1))


def _short_citizen_id(record: dict[str, Any]) -> None:
    # A citizen ID with its last digit lost: 11 digits are no ID card nor tax code either.
    holder = str(record["SoGiayToChuHoSo"] or "")
    record["LoaiDoiTuong"] = 1
    record["SoGiayToChuHoSo"] = (holder if len(holder) == 12 else "056123456789")[:11]


_DISTRICT_AFTER_REFORM = "district_after_reform"
_DEFECTS: tuple[Defect[Record], ...] = (
    Defect("received_missing", assign(NgayTiepNhan="")),
    Defect("received_not_a_time", assign(NgayTiepNhan="20260230083000")),  # 30 February
    Defect("unknown_channel", assign(KenhThucHien=4)),
    Defect("unknown_status", assign(TrangThaiHoSo="11")),
    Defect("malformed_procedure_code", assign(MaTTHC="2.00O908")),  # letter O for a zero
    Defect("malformed_agency_code", assign(MaCoQuan="H56")),
    Defect("due_before_received", _due_before_received),
    Defect(_DISTRICT_AFTER_REFORM, assign(MaDonVi="568")),  # generated after the reform
    Defect("malformed_citizen_id", _short_citizen_id),
    Defect("unknown_service_level", assign(MucDo=5)),
)
DEFECT_KINDS: tuple[str, ...] = tuple(defect.kind for defect in _DEFECTS)


# -- what was generated ---------------------------------------------------------------------
@dataclass(frozen=True)
class Truth(common.Truth[str]):
    """What `generate` made; `online` counts valid records with KenhThucHien = 2."""

    source: ClassVar[str] = "one_stop"
    forwarded: dict[str, int] = field(default_factory=dict)  # per sector (all valid)
    forwarded_ids: tuple[str, ...] = field(default=(), repr=False)
    defect_of: dict[str, str] = field(default_factory=dict, repr=False)  # Id -> defect kind

    def own_counts(self) -> dict[str, Any]:
        return {"forwarded": self.forwarded}


def generate(
    *,
    rows: int,
    seed: int,
    malformed_share: float = 0.0,
    forwarded: int | Mapping[str, int] = 0,
    shared_updated_at: int = 0,
) -> tuple[list[dict[str, Any]], Truth]:
    """`rows` portal dossiers drawn from `seed`, and the truth about them.

    Among them are *all* the dossiers `scenario.forwarded(seed, sector=s, count=n)` gives for
    each sector s, with n from `forwarded` (one count for every sector, or a count per
    sector; missing sectors forward none); they are never malformed. `malformed_share` of the
    rows (rounded) carry one defect each, the kinds dealt round-robin over `DEFECT_KINDS`.
    The first `shared_updated_at` records share one NgayCapNhat, so paging has ties to cross.
    """
    if isinstance(forwarded, int):
        counts = dict.fromkeys(scenario.SECTORS, forwarded)
    else:
        if unknown := set(forwarded) - set(scenario.SECTORS):
            raise ValueError(f"unknown sectors {sorted(unknown)}; sectors: {scenario.SECTORS}")
        counts = {sector: int(forwarded.get(sector, 0)) for sector in scenario.SECTORS}
    if rows < 0 or any(n < 0 for n in counts.values()):
        raise ValueError("rows and forwarded counts must be >= 0")
    malformed = common.malformed_count(rows, malformed_share, shared_updated_at)
    total_forwarded = sum(counts.values())
    if total_forwarded > rows - malformed:
        raise ValueError(
            f"rows ({rows}) must hold the {total_forwarded} forwarded dossiers and the "
            f"{malformed} malformed ones"
        )
    incoming_all = [
        dossier
        for sector in scenario.SECTORS
        for dossier in scenario.forwarded(seed, sector=sector, count=counts[sector])
    ]
    picker = random.Random(f"one-stop-plan-{seed}")
    forwarded_numbers, plan = common.deal(
        picker, rows, forwarded=total_forwarded, malformed=malformed, defects=_DEFECTS
    )
    picker.shuffle(incoming_all)  # forwarded dossiers of every sector, interleaved
    incoming = dict(zip(forwarded_numbers, incoming_all, strict=True))
    records = _generate(rows, seed, incoming, plan)
    common.tie(records[:shared_updated_at], "NgayCapNhat")
    online = common.spoil(records, plan, online=lambda record: record["KenhThucHien"] == ONLINE)
    truth = Truth.of_plan(
        plan,
        rows=rows,
        kinds=DEFECT_KINDS,
        online=online,
        ident=_id,
        forwarded=counts,
        forwarded_ids=tuple(_id(number) for number in forwarded_numbers),
        defect_of={_id(number): defect.kind for number, defect in plan.items()},
    )
    return records, truth


def _id(number: int) -> str:
    return f"{number:08d}"


def _generate(
    rows: int,
    seed: int,
    incoming: dict[int, scenario.Forwarded],
    plan: dict[int, Defect[Record]],
) -> list[Record]:
    # The record stream has its own generator, so the same seed gives the same dossiers
    # whatever share of them is then spoiled.
    rng = random.Random(f"one-stop-rows-{seed}")
    r = rng.random
    nfd_names = {p.name: unicodedata.normalize("NFD", p.name) for p in PROCEDURES}
    by_place = {
        place: [p for p in PROCEDURES if place in p.places for _ in range(p.weight)]
        for place in ("province", "district", "commune")
    }
    # Without districts, communes take over the district-level procedures.
    two_level_commune = [
        p for p in PROCEDURES if {"district", "commune"} & set(p.places) for _ in range(p.weight)
    ]
    n_days = (END - START).days
    reform_day = (TWO_LEVEL_FROM - START).days
    sequence: dict[tuple[str, str], int] = {}  # daily receipt counter per centre
    records: list[Record] = []

    for number in range(1, rows + 1):
        sent = incoming.get(number)
        if sent is not None:
            # A dossier forwarded to a sector: the scenario fixes where, when and what.
            code, name, sector = sent.procedure_code, sent.procedure_name, None
            level, days, fee = LEVEL_PARTIAL, 10, 0
            received = submitted = sent.received_at
            centre, locality, channel = sent.centre, sent.locality_code, sent.channel
            handler: str = SECTOR_AGENCIES[sent.sector]
            forwarded_to: str | None = handler
            sector_name: str | None = SECTOR_NAMES[sent.sector]
            receipt = sent.national_code
        else:
            u = r()
            channel = IN_PERSON if u < 0.88 else ONLINE if u < 0.995 else POSTAL
            defect = plan.get(number)
            if defect is not None and defect.kind == _DISTRICT_AFTER_REFORM:
                day = reform_day + int(r() * (n_days - reform_day))
            else:
                day = int(r() * n_days)
            submitted, received = common.arrival(
                r,
                START + timedelta(days=day),
                online=channel == ONLINE,
                postal=channel == POSTAL,
                online_wait=28800,
            )
            two_level = received >= TWO_LEVEL_FROM
            centres = scenario.CENTRES_TWO_LEVEL if two_level else scenario.CENTRES
            centre, locality, place = centres[int(r() * len(centres))]
            choices = two_level_commune if two_level and place == "commune" else by_place[place]
            proc = choices[int(r() * len(choices))]
            code = f"{proc.code}.000.00.00.H56" if r() < 0.3 else proc.code
            name = nfd_names[proc.name] if r() < 0.03 else proc.name
            sector, level, days, fee = proc.sector, proc.level, proc.days, proc.fee
            handler, forwarded_to, sector_name = centre, None, None
            day_code = f"{received:%y%m%d}"
            seq = sequence[(centre, day_code)] = sequence.get((centre, day_code), 0) + 1
            receipt = f"{centre}-{day_code}-{seq:04d}"  # forwarded ones use 5001 up

        due = received.replace(hour=16, minute=30, second=0) + timedelta(days=max(days, 1))
        finish = received + timedelta(seconds=int(max(days, 1) * 86400 * (0.1 + r())))
        status, finished, returned = _OUTCOMES.draw(r, finish)

        u = r()
        applicant = 1 if u < 0.8 else 2 if u < 0.95 else 3 if u < 0.98 else 4
        if applicant == 1:
            holder = f"0{scenario.PROVINCE_LOCALITY}{int(r() * 10**9):09d}"  # citizen ID
        else:
            holder = f"43{int(r() * 10**8):08d}"  # tax code of the organisation
        paid = 1 if fee and r() < (0.7 if channel == ONLINE else 0.05) else 0
        docs = 1 + int(r() * 5)
        digitised = docs if channel == ONLINE else int(r() * (docs + 1))
        last = returned or finished or received
        changed = min(last + timedelta(seconds=int(r() * 259200)), LAST)

        records.append(
            {
                "Id": _id(number),
                "MaHoSo": receipt,
                "MaTTHC": code,
                "TenTTHC": name,
                "LinhVuc": sector,
                "MaCoQuan": handler,
                "MaNoiTiepNhan": centre,
                "MaDonVi": locality,
                "MaCoQuanChuyenDen": forwarded_to,
                "NganhChuyenDen": sector_name,
                "KenhThucHien": channel,
                "MucDo": level,
                "NgayNop": stamp(submitted),
                "NgayTiepNhan": stamp(received),
                "NgayHenTra": stamp(due),
                "NgayKetThuc": stamp(finished),
                "NgayTraKetQua": stamp(returned),
                "TrangThaiHoSo": status,
                "LoaiDoiTuong": applicant,
                "SoGiayToChuHoSo": holder,
                "LePhi": fee,
                "ThanhToanTrucTuyen": paid,
                "SoThanhPhan": docs,
                "SoThanhPhanSoHoa": digitised,
                "KetQuaDienTu": 1 if finished is not None and r() < 0.6 else 0,
                "NgayCapNhat": stamp(changed),
            }
        )
    return records


# -- the service ----------------------------------------------------------------------------
def _sort_key(record: dict[str, Any]) -> tuple[datetime, str]:
    return parse_stamp(record["NgayCapNhat"]), str(record["Id"])


def _refusal(status: int, message: str) -> Response:
    return Response(status, {"MaLoi": status, "ThongBao": message})


class OneStopApi(DossierApi):
    """The portal's REST API over generated dossiers, with an API key and faults."""

    name = "one_stop"
    truth: Truth

    def __init__(
        self,
        *,
        rows: int,
        seed: int,
        malformed_share: float = 0.0,
        forwarded: int | Mapping[str, int] = 0,
        shared_updated_at: int = 0,
        api_key: str = DEMO_API_KEY,
        faults: Faults | None = None,
        port: int = 0,
    ) -> None:
        records, self.truth = generate(
            rows=rows,
            seed=seed,
            malformed_share=malformed_share,
            forwarded=forwarded,
            shared_updated_at=shared_updated_at,
        )
        super().__init__(records, key="Id", sort_key=_sort_key, faults=faults, port=port)
        self._api_key = api_key

    def replace(self, records: list[dict[str, Any]]) -> None:
        """Serve exactly these native records from now on (a hand-written scenario)."""
        with self._data:
            copies = [dict(record) for record in records]
            self._records = RecordSet(copies, _sort_key)
            self._by_id = {record["Id"]: record for record in copies}

    # -- changing the data, as the live system does ----------------------------------------
    def touch(self, *, share: float, seed: int, among: set[str] | None = None) -> list[str]:
        """Move `share` of the valid records (rounded) one step on; return their Ids, sorted.

        The records are drawn from `seed` among valid dossiers that can still move (open or
        resolved), or only among the Ids in `among`: each takes its next status (setting
        NgayKetThuc or NgayTraKetQua) and one NgayCapNhat, a second after every other
        record's. Raises `ValueError` when too few records can move.
        """
        with self._data:
            picked = self._draw(
                share=share,
                seed=f"one-stop-touch-{seed}",
                can_move=lambda record: (
                    record["TrangThaiHoSo"] in NEXT_STATUS
                    and (among is None or record["Id"] in among)
                ),
            )
            latest = self._records.latest() or END
            when = stamp(latest + timedelta(seconds=1))
            for ident in picked:
                record = self._by_id[ident]
                record["TrangThaiHoSo"] = NEXT_STATUS[record["TrangThaiHoSo"]]
                if record["TrangThaiHoSo"] == RESOLVED:
                    record["NgayKetThuc"] = when
                elif record["TrangThaiHoSo"] == RETURNED:
                    record["NgayTraKetQua"] = when
                record["NgayCapNhat"] = when
            self._records.refresh()
        return picked

    # -- HTTP -------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        if request.path not in (DOSSIERS_PATH, COUNT_PATH):
            return _refusal(404, f"Không tìm thấy {request.path}")
        if request.method != "GET":
            return _refusal(405, "Chỉ hỗ trợ GET")
        key = request.header(API_KEY_HEADER) or ""
        if not hmac.compare_digest(key.encode(), self._api_key.encode()):
            return _refusal(401, "API key không hợp lệ")
        if request.path == COUNT_PATH:
            return self._count(request)
        return self._page(request)

    def _page(self, request: Request) -> Response:
        query = request.query
        try:
            page = int(query.get("SoTrang", "1"))
            size = int(query.get("SoBanGhi", "50"))
        except ValueError:
            return _refusal(400, "SoTrang và SoBanGhi phải là số nguyên")
        if page < 1 or not 1 <= size <= MAX_PAGE_SIZE:
            return _refusal(400, f"SoTrang >= 1, SoBanGhi trong 1..{MAX_PAGE_SIZE}")
        since: datetime | None = None
        if text := query.get("NgayCapNhatTu"):
            try:
                since = parse_stamp(text)
            except ValueError:
                return _refusal(400, "NgayCapNhatTu phải có dạng yyyyMMddHHmmss")
        with self._data:
            rows = self._records.window(since, (page - 1) * size, size)
            matching = len(self._records) - self._records.first_since(since)
        return Response(
            200, {"TongSo": matching, "SoTrang": page, "SoBanGhi": size, "DuLieu": rows}
        )

    def _count(self, request: Request) -> Response:
        query = request.query
        if "TuNgay" not in query and "DenNgay" not in query:
            with self._data:
                return Response(200, {"TongSo": len(self._records)})
        try:
            start = datetime.strptime(query["TuNgay"], DAY).date()
            end = datetime.strptime(query["DenNgay"], DAY).date()
        except (KeyError, ValueError):
            return _refusal(400, "TuNgay và DenNgay phải cùng có, dạng yyyyMMdd")
        total = self._received(start, end, lambda record: _day(record["NgayTiepNhan"]))
        return Response(200, {"TongSo": total})


def _day(text: Any) -> date | None:
    try:
        return parse_stamp(text).date()
    except (TypeError, ValueError):
        return None


def serve(
    port: int,
    *,
    rows: int = 10_000,
    seed: int = 1,
    malformed_share: float = 0.02,
    forwarded: int | Mapping[str, int] | None = None,
    api_key: str = DEMO_API_KEY,
    faults: Faults | None = None,
) -> None:
    """Serve the portal API on 127.0.0.1:`port` until Ctrl-C.

    `forwarded` defaults to `DEFAULT_FORWARDED`. Prints the truth as one JSON line on
    stdout, and where it listens on stderr (never the API key).
    """
    api = OneStopApi(
        rows=rows,
        seed=seed,
        malformed_share=malformed_share,
        forwarded=DEFAULT_FORWARDED if forwarded is None else forwarded,
        api_key=api_key,
        faults=faults,
        port=port,
    )
    api.serve_until_interrupted(f"API key in the {API_KEY_HEADER} header")
