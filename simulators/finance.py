"""The Finance department's reference exports: daily files dropped in a folder, in its own shape.

Finance's software exports, each day, the register of the dossiers received that day: one file
per day, `HoSo_TaiChinh_yyyyMMdd.csv` on most days and `.xml` on every third (two exporters are
in use). Its native shape, which nothing here translates (that is `connectors/finance.py`'s job):

* Vietnamese column names (SoHoSo, MaThuTuc, NgayNhan, TrangThai, MaSoThue, PhiLePhi, ...);
* `dd/MM/yyyy HH:mm:ss` local times, a `dd/MM/yyyy` due date (HanXuLy);
* statuses, channels and yes/no as Vietnamese words (TrangThai "Đang xử lý", HinhThucNop
  "Trực tuyến", "Có"/"Không"), now and then decomposed (NFD) or upper case;
* legacy service levels 2/3/4 (MucDo), fees with dot thousands separators ("1.250.000");
* CSV in UTF-8 with a byte-order mark and CRLF line ends, closed by the trailer
  `#KETTHUC,<rows>`; XML `<DanhSachHoSo>` of `<HoSo>` records (empty values left out), closed by
  `<TongSo>` and the root's end tag. A file without its trailer or end tag is still being written.
* MaSoThue: the applicant's tax code or 12-digit citizen ID (personal data).

`generate` rebuilds the folder from a seed; `reissue`, `redeliver` and `start_partial` make the
deliveries a file-drop connector must cope with. A dossier's file never changes day; a re-issued
file carries every row again, the changed ones with a later NgayCapNhat.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, NamedTuple
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from simulators import common, scenario
from simulators.common import assign

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


# -- planted defects ------------------------------------------------------------------------
@dataclass(frozen=True)
class _Defect(common.Defect[dict[str, str]]):
    csv_only: bool = False  # spoils the bytes of a CSV line, not a value
    hides_received: bool = False  # the export no longer states a readable NgayNhan


def _iso_received(values: dict[str, str]) -> None:
    received = datetime.strptime(values["NgayNhan"], TIME)
    values["NgayNhan"] = received.isoformat(sep=" ")


def _cut_tax_code(values: dict[str, str]) -> None:
    values["MaSoThue"] = (values["MaSoThue"] or "4201234567").replace("-", "")[:9]


def _finished_before_received(values: dict[str, str]) -> None:
    received = datetime.strptime(values["NgayNhan"], TIME)
    values["TrangThai"] = RESOLVED
    values["NgayHoanThanh"] = (received - timedelta(days=2)).strftime(TIME)
    values["NgayTraKetQua"] = ""


def _as_is(_values: dict[str, str]) -> None:
    pass


DEFECTS = (
    _Defect("received_missing", assign(NgayNhan=""), hides_received=True),
    _Defect("foreign_date_format", _iso_received, hides_received=True),
    _Defect("unknown_status", assign(TrangThai="Đang thẩm định lại")),
    _Defect("malformed_procedure_code", assign(MaThuTuc="2.00181O")),  # letter O
    _Defect("malformed_tax_code", _cut_tax_code),
    _Defect("finished_before_received", _finished_before_received),
    _Defect("fee_with_currency", assign(PhiLePhi="45.000 đồng")),
    _Defect("unknown_channel", assign(HinhThucNop="Fax")),
    # A name pasted with an opening quote and no closing one.
    _Defect("broken_quoting", _as_is, csv_only=True, hides_received=True),
    # A name typed on an old Windows-1258 machine, pasted as raw bytes.
    _Defect("not_utf8", _as_is, csv_only=True, hides_received=True),
)
DEFECT_KINDS: tuple[str, ...] = tuple(d.kind for d in DEFECTS)
_BY_KIND = {d.kind: d for d in DEFECTS}


# -- public API -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Truth(common.Truth[str]):
    """What `generate` wrote; `online` counts valid rows with HinhThucNop Trực tuyến.

    `malformed_ids` are the SoHoSo of the malformed rows.
    """

    source: ClassVar[str] = "finance"
    files: tuple[str, ...] = field(default=(), repr=False)
    # National codes of the scenario's forwarded dossiers the files carry.
    forwarded: tuple[str, ...] = field(default=(), repr=False)
    # Dossiers per receipt day (ISO date) whose NgayNhan the export states readably.
    received_per_day: dict[str, int] = field(default_factory=dict, repr=False)

    def own_counts(self) -> dict[str, Any]:
        return {"files": len(self.files), "forwarded": len(self.forwarded)}


@dataclass(frozen=True)
class Partial:
    """A day's file caught half-written; `complete()` lets the exporter finish it."""

    name: str
    path: Path
    ids: tuple[str, ...]  # SoHoSo of every row the finished file holds
    malformed_ids: tuple[str, ...]
    rest: bytes = field(repr=False)

    def complete(self) -> None:
        with self.path.open("ab") as fh:
            fh.write(self.rest)


def generate(
    folder: str | Path,
    *,
    days: int,
    rows_per_day: int,
    seed: int,
    malformed_share: float = 0.0,
    start: date = START,
    forwarded: int = FORWARDED,
) -> Truth:
    """Rebuild the drop folder with `days` daily exports from `start`, drawn from `seed`.

    Each day holds `rows_per_day` of Finance's own dossiers plus the scenario's dossiers the
    portal forwarded to Finance that day (`scenario.forwarded(seed, sector="finance",
    count=forwarded)`, carrying their national code). `malformed_share` of each day's own rows
    (rounded) carry one defect each, kinds dealt round-robin (CSV-only kinds on CSV days).
    """
    if days < 0 or rows_per_day < 0 or forwarded < 0:
        raise ValueError("days, rows_per_day and forwarded must be >= 0")
    common.check_share("malformed_share", malformed_share)
    if datetime.combine(start + timedelta(days=days), time()) > END:
        raise ValueError(f"the days must end by {END:%Y-%m-%d}; start earlier or fewer days")
    where = Path(folder)
    where.mkdir(parents=True, exist_ok=True)
    for old in where.glob(f"{PREFIX}*"):
        old.unlink()
    params = _Params(start, seed, rows_per_day, malformed_share, forwarded)
    (where / PARAMETERS).write_text(json.dumps(params.as_dict()))
    counts = dict.fromkeys(DEFECT_KINDS, 0)
    rows = online = 0
    malformed: list[str] = []
    files: list[str] = []
    national: list[str] = []
    per_day: dict[str, int] = {}
    for index in range(days):
        day = _day(params, index)
        _write(where / day.name, day.render())
        files.append(day.name)
        rows += len(day.rows)
        per_day[day.day.isoformat()] = 0
        for row in day.rows:
            if row.defect is None:
                online += row.online
            else:
                counts[row.defect] += 1
                malformed.append(row.values["SoHoSo"])
            if row.national is not None:
                national.append(row.national)
            if row.defect is None or not _BY_KIND[row.defect].hides_received:
                per_day[day.day.isoformat()] += 1
    return Truth(
        rows=rows,
        malformed=len(malformed),
        valid=rows - len(malformed),
        defects=counts,
        online=online,
        malformed_ids=tuple(malformed),
        files=tuple(files),
        forwarded=tuple(national),
        received_per_day=per_day,
    )


def file_name(folder: str | Path, *, day: int) -> str:
    """The export file name of day `day` (0 = the generated start day)."""
    return _day(_load(Path(folder)), day, plan_only=True).name


def reissue(folder: str | Path, *, day: int, seed: int, share: float) -> list[str]:
    """Re-issue day `day`'s file corrected, as Finance does for a past day; return changed ids.

    `share` of the day's valid rows (rounded), drawn from `seed` among dossiers still able to
    move, change: most take their next status (resolving sets NgayHoanThanh, returning sets
    NgayTraKetQua), every third gets a digitisation correction instead (status unchanged). Each
    changed row gets a NgayCapNhat later than every row of the file; the others stay
    byte-identical. The file keeps its name and is replaced atomically.
    """
    common.check_share("share", share)
    where = Path(folder)
    plan = _day(_load(where), day)
    path = where / plan.name
    if not path.exists():
        raise ValueError(f"day {day} has no file {plan.name} in {where}")
    records = _parse(path)
    planted = {row.values["SoHoSo"] for row in plan.rows if row.defect is not None}
    valid = [r for r in records if isinstance(r, dict) and r["SoHoSo"] not in planted]
    movable = [r for r in valid if r["TrangThai"] in NEXT_STATUS]
    picked = common.draw(
        movable,
        valid=len(valid),
        share=share,
        rng=random.Random(f"finance-reissue-{seed}-{day}"),
        order=lambda r: r["SoHoSo"],
        verb="change",
    )
    latest = max(datetime.strptime(r["NgayCapNhat"], TIME) for r in valid)
    for step, values in enumerate(picked, start=1):
        when = (latest + timedelta(seconds=step)).strftime(TIME)
        if step % 3 == 0:
            docs, digitised = int(values["SoGiayTo"]), int(values["SoGiayToSoHoa"])
            if digitised < docs:
                values["SoGiayToSoHoa"] = str(docs)  # documents digitised after the fact
            else:
                values["SoGiayTo"], values["SoGiayToSoHoa"] = str(docs + 1), str(docs + 1)
        else:
            status = values["TrangThai"] = NEXT_STATUS[values["TrangThai"]]
            if status == RESOLVED:
                values["NgayHoanThanh"] = when
            elif status == RETURNED:
                values["NgayTraKetQua"] = when
        values["NgayCapNhat"] = when
    _write(path, _render(plan.day, plan.xml, [(record, None) for record in records]))
    return [values["SoHoSo"] for values in picked]


def redeliver(folder: str | Path, *, day: int) -> str:
    """Drop an identical copy of day `day`'s file under another name; return that name."""
    where = Path(folder)
    name = file_name(where, day=day)
    stem, _, suffix = name.rpartition(".")
    copies = sum(1 for _ in where.glob(f"{stem}_gui_lai*"))
    copy = f"{stem}_gui_lai{copies + 1 if copies else ''}.{suffix}"
    _write(where / copy, (where / name).read_bytes())
    return copy


def start_partial(folder: str | Path, *, day: int) -> Partial:
    """Begin writing day `day`'s file in place and stop halfway, as a slow exporter would.

    The day may lie past the generated ones (its rows follow from the seed as if `generate`
    had made it). The half-written file has neither CSV trailer nor XML end tag.
    """
    where = Path(folder)
    plan = _day(_load(where), day)
    data = plan.render()
    cut = len(data) // 2
    path = where / plan.name
    path.write_bytes(data[:cut])
    return Partial(
        name=plan.name,
        path=path,
        ids=tuple(row.values["SoHoSo"] for row in plan.rows),
        malformed_ids=tuple(row.values["SoHoSo"] for row in plan.rows if row.defect),
        rest=data[cut:],
    )


# -- one day --------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Params:
    start: date
    seed: int
    rows_per_day: int
    malformed_share: float
    forwarded: int

    def as_dict(self) -> dict[str, object]:
        return {
            "start": self.start.isoformat(),
            "seed": self.seed,
            "rows_per_day": self.rows_per_day,
            "malformed_share": self.malformed_share,
            "forwarded": self.forwarded,
        }


def _load(folder: Path) -> _Params:
    try:
        raw = json.loads((folder / PARAMETERS).read_text())
    except FileNotFoundError:
        raise ValueError(f"{folder} was not made by simulators.finance.generate") from None
    return _Params(
        date.fromisoformat(raw["start"]),
        int(raw["seed"]),
        int(raw["rows_per_day"]),
        float(raw["malformed_share"]),
        int(raw["forwarded"]),
    )


@dataclass
class _Row:
    values: dict[str, str]
    online: bool
    national: str | None = None
    defect: str | None = None


@dataclass
class _Day:
    day: date
    xml: bool
    rows: list[_Row]

    @property
    def name(self) -> str:
        return f"{PREFIX}{self.day:%Y%m%d}.{'xml' if self.xml else 'csv'}"

    def render(self) -> bytes:
        return _render(self.day, self.xml, [(row.values, row.defect) for row in self.rows])


def _day(params: _Params, index: int, *, plan_only: bool = False) -> _Day:
    """Day `index`'s rows: a pure function of the parameters, so any day can be rebuilt."""
    if index < 0:
        raise ValueError(f"day must be >= 0, got {index}")
    day = params.start + timedelta(days=index)
    xml = index % 3 == 2
    if plan_only:
        return _Day(day, xml, [])
    if datetime.combine(day, time()) >= END:
        raise ValueError(f"day {index} ({day}) is past the scenario's end {END:%Y-%m-%d}")
    rng = random.Random(f"finance-rows-{params.seed}-{index}")
    sequence: dict[str, int] = {}
    rows = [_own_row(rng, day, sequence) for _ in range(params.rows_per_day)]
    for dossier in _forwarded_by_day(params.seed, params.forwarded).get(day, ()):
        rows.append(_forwarded_row(rng, day, sequence, dossier))

    share = params.malformed_share
    spoiled = round(params.rows_per_day * share)
    picker = random.Random(f"finance-defects-{params.seed}-{index}")
    kinds = [d for d in DEFECTS if not (xml and d.csv_only)]
    for j, position in enumerate(sorted(picker.sample(range(params.rows_per_day), spoiled))):
        defect = kinds[(index * spoiled + j) % len(kinds)]
        defect.plant(rows[position].values)
        rows[position].defect = defect.kind
    return _Day(day, xml, rows)


@lru_cache(maxsize=8)
def _forwarded_by_day(seed: int, count: int) -> dict[date, tuple[scenario.Forwarded, ...]]:
    by_day: dict[date, list[scenario.Forwarded]] = {}
    for dossier in scenario.forwarded(seed, sector="finance", count=count):
        by_day.setdefault(dossier.received_at.date(), []).append(dossier)
    return {day: tuple(found) for day, found in by_day.items()}


def _own_row(rng: random.Random, day: date, sequence: dict[str, int]) -> _Row:
    r = rng.random
    proc = _WEIGHTED[int(r() * len(_WEIGHTED))]
    u = r()
    if proc.level != "2" and u < _ONLINE_WHEN_CAPABLE:
        channel = ONLINE
    else:
        channel = IN_PERSON if r() < 0.9 else POSTAL
    opening = datetime.combine(day, time())
    if channel == ONLINE:
        submitted = opening + timedelta(seconds=int(r() * 50_000))
        received = min(submitted + timedelta(seconds=int(r() * 28_800)), _closing(day))
    else:  # at the counter in office hours; by post a few days after posting
        received = opening + timedelta(seconds=27_000 + int(r() * 34_200))
        submitted = received
        if channel == POSTAL:
            submitted = received - timedelta(days=1 + int(r() * 3))
    offices = COMMUNE_OFFICES if day >= TWO_LEVEL_FROM else DISTRICT_OFFICES
    if r() < 0.5:
        agency, locality = DEPARTMENT, scenario.PROVINCE_LOCALITY
    else:
        agency, locality = offices[int(r() * len(offices))]
    values = _dossier(rng, day, sequence, agency, proc, received, online=channel == ONLINE)
    values.update(
        MaThuTuc=f"{proc.code}.000.00.00.H56" if r() < 0.3 else proc.code,
        TenThuTuc=unicodedata.normalize("NFD", proc.name) if r() < 0.03 else proc.name,
        DonViTiepNhan=agency,
        MaDiaBan=locality,
        NgayNop=submitted.strftime(TIME),
        HinhThucNop=channel.upper() if r() < 0.05 else channel,
    )
    return _Row(values, online=channel == ONLINE)


def _forwarded_row(
    rng: random.Random, day: date, sequence: dict[str, int], dossier: scenario.Forwarded
) -> _Row:
    # Finance receives a forwarded dossier from the centre a little after the centre did.
    received = dossier.received_at + timedelta(seconds=1800 + int(rng.random() * 9000))
    proc = _BY_CODE[dossier.procedure_code]
    channel = _CHANNEL_OF_CODE[dossier.channel]
    received = min(received, _closing(day))
    values = _dossier(rng, day, sequence, DEPARTMENT, proc, received, online=channel == ONLINE)
    values.update(
        MaHoSoQuocGia=dossier.national_code,
        MaThuTuc=dossier.procedure_code,
        TenThuTuc=dossier.procedure_name,
        DonViTiepNhan=dossier.centre,
        MaDiaBan=dossier.locality_code,
        NgayNop=dossier.received_at.strftime(TIME),
        HinhThucNop=channel,
    )
    return _Row(values, online=channel == ONLINE, national=dossier.national_code)


def _dossier(
    rng: random.Random,
    day: date,
    sequence: dict[str, int],
    agency: str,
    proc: Procedure,
    received: datetime,
    *,
    online: bool,
) -> dict[str, str]:
    """The values every row has, from the handling agency's receipt on."""
    r = rng.random
    seq = sequence[agency] = sequence.get(agency, 0) + 1
    finish = received + timedelta(seconds=int(proc.days * 86400 * (0.1 + r())))
    status, finished, returned = _OUTCOMES.draw(r, finish)

    u = r()
    if u < 0.35:  # a citizen: 12-digit citizen ID, or an older 10-digit personal tax code
        kind = 1
        tax_code = f"056{int(r() * 10**9):09d}" if r() < 0.7 else f"8{int(r() * 10**9):09d}"
    else:  # enterprise, state body (budget units are Finance's main clients), organisation
        kind = 2 if u < 0.7 else 3 if u < 0.95 else 4
        tax_code = f"42{int(r() * 10**8):08d}"
        if kind == 2 and r() < 0.2:
            tax_code += f"-{1 + int(r() * 30):03d}"  # a branch
        elif kind == 3 and r() < 0.3:
            tax_code = ""
    paid = proc.fee > 0 and r() < (0.75 if online else 0.3)
    docs = 1 + int(r() * 6)
    last = returned or finished or received
    room = min((END - last).total_seconds() - 1, 172_800.0)
    changed = last + timedelta(seconds=int(r() * room))
    return {
        "SoHoSo": f"{agency}-{day:%y%m%d}-{seq:04d}",
        "MaHoSoQuocGia": "",
        "LinhVuc": proc.sector,
        "DonViXuLy": agency,
        "NgayNhan": received.strftime(TIME),
        "HanXuLy": (day + timedelta(days=proc.days)).strftime(DATE),
        "NgayHoanThanh": finished.strftime(TIME) if finished else "",
        "NgayTraKetQua": returned.strftime(TIME) if returned else "",
        "MucDo": proc.level,
        "TrangThai": unicodedata.normalize("NFD", status) if r() < 0.03 else status,
        "LoaiDoiTuong": str(kind),
        "MaSoThue": tax_code,
        "PhiLePhi": f"{proc.fee:,}".replace(",", "."),
        "ThanhToanTrucTuyen": YES if paid else NO,
        "SoGiayTo": str(docs),
        "SoGiayToSoHoa": str(docs if online else int(r() * (docs + 1))),
        "KetQuaDienTu": YES if finished is not None and r() < 0.7 else NO,
        "NgayCapNhat": changed.strftime(TIME),
    }


def _closing(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59))


# -- files ----------------------------------------------------------------------------------
_HOLE = "@@TenThuTuc@@"
_NAME_AT = COLUMNS.index("TenThuTuc")
# Windows-1258 writes Vietnamese tone marks as separate combining characters.
_TONES = frozenset("\u0300\u0301\u0303\u0309\u0323")

Record = dict[str, str] | bytes  # a parsed row, or a CSV line kept byte for byte


def _render(day: date, xml: bool, items: list[tuple[Record, str | None]]) -> bytes:
    """A whole export file: (row, defect kind) pairs, CSV or XML."""
    if xml:
        out = [
            '<?xml version="1.0" encoding="UTF-8"?>\n',
            f'<{XML_ROOT} NgayBaoCao="{day:{DATE}}">\n',
        ]
        for values, _ in items:
            assert isinstance(values, dict)
            inner = "".join(f"<{c}>{escape(v)}</{c}>" for c in COLUMNS if (v := values.get(c)))
            out.append(f"  <{XML_RECORD}>{inner}</{XML_RECORD}>\n")
        out.append(f"  <{XML_COUNT}>{len(items)}</{XML_COUNT}>\n</{XML_ROOT}>\n")
        return "".join(out).encode()
    lines = [b"\xef\xbb\xbf" + ",".join(COLUMNS).encode()]
    lines += [_csv_line(values, defect) for values, defect in items]
    lines.append(f"{CSV_TRAILER},{len(items)}".encode())
    return b"\r\n".join(lines) + b"\r\n"


def _csv_line(values: Record, defect: str | None) -> bytes:
    if isinstance(values, bytes):
        return values
    fields = [values.get(c, "") for c in COLUMNS]
    if defect in ("broken_quoting", "not_utf8"):
        fields[_NAME_AT] = _HOLE
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(fields)
    text = buffer.getvalue()
    name = values["TenThuTuc"]
    if defect == "broken_quoting":
        return text.replace(_HOLE, '"' + name).encode()
    if defect == "not_utf8":
        head, tail = text.split(_HOLE)
        spoiled = _windows_1258(name)
        try:
            spoiled.decode()
        except UnicodeDecodeError:
            return head.encode() + spoiled + tail.encode()
        raise RuntimeError(f"{name!r} in Windows-1258 happens to be UTF-8")  # pragma: no cover
    return text.encode()


def _windows_1258(text: str) -> bytes:
    """Text as a Windows-1258 machine stores it: letters precomposed, tone marks apart."""
    out: list[str] = []
    base = -1
    for ch in unicodedata.normalize("NFD", text):
        if unicodedata.combining(ch) and ch not in _TONES and base >= 0:
            out[base] = unicodedata.normalize("NFC", out[base] + ch)
        else:
            if not unicodedata.combining(ch):
                base = len(out)
            out.append(ch)
    return "".join(out).encode("cp1258", errors="replace")


def _parse(path: Path) -> list[Record]:
    """The simulator reading back its own file (trusted: it wrote it)."""
    data = path.read_bytes()
    if path.suffix == ".xml":
        root = ElementTree.fromstring(data)
        return [
            {c: (record.findtext(c) or "") for c in COLUMNS} for record in root.iter(XML_RECORD)
        ]
    lines = data.removeprefix(b"\xef\xbb\xbf").split(b"\r\n")
    records: list[Record] = []
    for line in lines[1:]:
        if not line or line.startswith(CSV_TRAILER.encode()):
            continue
        try:
            values = next(csv.reader([line.decode()], strict=True))
        except (UnicodeDecodeError, csv.Error):
            records.append(line)
            continue
        if len(values) != len(COLUMNS):
            records.append(line)
            continue
        records.append(dict(zip(COLUMNS, values, strict=True)))
    return records


def _write(path: Path, data: bytes) -> None:
    """Write beside the target under a hidden name, then rename: readers see all or nothing."""
    hidden = path.with_name(f".{path.name}.tmp")
    hidden.write_bytes(data)
    os.replace(hidden, path)
