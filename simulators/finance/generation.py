"""`generate`: the drop folder rebuilt from a seed, one file a day, and the `Truth` about it.

Each day's rows are a pure function of the generation parameters (kept in the folder), so
any day can be rebuilt later."""

from __future__ import annotations

import json
import random
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from simulators import common, scenario
from simulators.finance.defects import _BY_KIND, DEFECT_KINDS, DEFECTS
from simulators.finance.files import _render, _write
from simulators.finance.schema import (
    _BY_CODE,
    _CHANNEL_OF_CODE,
    _ONLINE_WHEN_CAPABLE,
    _OUTCOMES,
    _WEIGHTED,
    COMMUNE_OFFICES,
    DATE,
    DEPARTMENT,
    DISTRICT_OFFICES,
    END,
    FORWARDED,
    IN_PERSON,
    NO,
    ONLINE,
    PARAMETERS,
    POSTAL,
    PREFIX,
    START,
    TIME,
    TWO_LEVEL_FROM,
    YES,
    Procedure,
)


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
