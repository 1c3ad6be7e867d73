"""`generate`: the portal's dossier records drawn from a seed (with every dossier the scenario
forwards to a sector), and the `Truth` about them."""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

from simulators import common, scenario
from simulators.common import Defect, Record
from simulators.one_stop.defects import _DEFECTS, _DISTRICT_AFTER_REFORM, DEFECT_KINDS
from simulators.one_stop.schema import (
    _OUTCOMES,
    END,
    IN_PERSON,
    LAST,
    LEVEL_PARTIAL,
    ONLINE,
    POSTAL,
    PROCEDURES,
    SECTOR_AGENCIES,
    SECTOR_NAMES,
    START,
    TWO_LEVEL_FROM,
    stamp,
)


@dataclass(frozen=True)
class Truth(common.LinkedTruth[str]):
    """What `generate` made; `online` counts valid records with KenhThucHien = 2."""

    source: ClassVar[str] = "one_stop"
    forwarded: dict[str, int] = field(default_factory=dict)  # per sector (all valid)

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
    truth = Truth.of_deal(
        forwarded_numbers,
        plan,
        rows=rows,
        kinds=DEFECT_KINDS,
        online=online,
        ident=_id,
        forwarded=counts,
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
