"""`generate`: Social Insurance's dossier records drawn from a seed, and the `Truth` about them."""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

from simulators import common, scenario
from simulators.common import Record
from simulators.social_insurance.defects import _DEFECTS, DEFECT_KINDS
from simulators.social_insurance.schema import (
    _BY_NATIONAL,
    _OUTCOMES,
    CITIZEN,
    COMMUNES_THREE_LEVEL,
    COMMUNES_TWO_LEVEL,
    DISTRICT_OFFICES,
    DISTRICTS,
    END,
    ENTERPRISE,
    IN_PERSON,
    LAST,
    OFFLINE,
    ONLINE,
    OTHER,
    POSTAL,
    PROCEDURES,
    PROVINCE,
    PROVINCE_OFFICE,
    START,
    STATE_BODY,
    TWO_LEVEL_FROM,
    timestamp,
)


@dataclass(frozen=True)
class Truth(common.LinkedTruth[str]):
    """What `generate` made; `online` counts valid records with kenhNop = dienTu."""

    source: ClassVar[str] = "social_insurance"
    forwarded: int = 0  # records received at a one-stop centre (all valid)

    def own_counts(self) -> dict[str, Any]:
        return {"forwarded": self.forwarded}


def generate(
    *,
    rows: int,
    seed: int,
    malformed_share: float = 0.0,
    forwarded: int = 0,
    shared_updated_at: int = 0,
) -> tuple[list[dict[str, Any]], Truth]:
    """`rows` Social Insurance dossiers drawn from `seed`, and the truth about them.

    `forwarded` of them are the dossiers `scenario.forwarded(seed, sector="social_insurance",
    ...)` gives: received at a one-stop centre, they carry its code in maHoSoQuocGia and are
    never malformed. `malformed_share` of the rows (rounded) carry one defect each, the kinds
    dealt round-robin over `DEFECT_KINDS`. The first `shared_updated_at` records share one
    ngayCapNhat, so paging has ties to cross.
    """
    malformed = common.malformed_count(rows, malformed_share, shared_updated_at)
    if not 0 <= forwarded <= rows - malformed:
        raise ValueError(f"forwarded must be within 0..{rows - malformed}, got {forwarded}")
    picker = random.Random(f"social-insurance-plan-{seed}")
    forwarded_numbers, plan = common.deal(
        picker, rows, forwarded=forwarded, malformed=malformed, defects=_DEFECTS
    )
    incoming = dict(
        zip(
            forwarded_numbers,
            scenario.forwarded(seed, sector="social_insurance", count=forwarded),
            strict=True,
        )
    )
    records = _generate(rows, seed, incoming)
    common.tie(records[:shared_updated_at], "ngayCapNhat")
    online = common.spoil(records, plan, online=lambda record: record["kenhNop"] == ONLINE)
    truth = Truth.of_deal(
        forwarded_numbers,
        plan,
        rows=rows,
        kinds=DEFECT_KINDS,
        online=online,
        ident=_id,
        forwarded=forwarded,
    )
    return records, truth


def _id(number: int) -> str:
    return f"BH{number:08d}"


def _generate(rows: int, seed: int, incoming: dict[int, scenario.Forwarded]) -> list[Record]:
    # The record stream has its own generator, so the same seed gives the same dossiers
    # whatever share of them is then spoiled.
    rng = random.Random(f"social-insurance-rows-{seed}")
    r = rng.random
    weighted = [p for p in PROCEDURES for _ in range(p.weight)]
    online_capable = [p for p in weighted if p.level != OFFLINE]
    nfd_names = {p.name: unicodedata.normalize("NFD", p.name) for p in PROCEDURES}
    online_share = scenario.ONLINE_SHARE["social_insurance"]
    n_days = (END - START).days
    sequence: dict[tuple[str, int], int] = {}  # yearly dossier counter per office
    records: list[Record] = []

    for number in range(1, rows + 1):
        centre = incoming.get(number)
        if centre is not None:
            # Received at a one-stop centre: its time, place, procedure and channel.
            proc = _BY_NATIONAL[centre.procedure_code]
            received = submitted = centre.received_at
            channel = ONLINE if centre.channel == 2 else IN_PERSON
            locality = centre.locality_code
            office = PROVINCE_OFFICE if len(locality) == 2 else DISTRICT_OFFICES[number % 3]
            received_by: str | None = centre.centre
            national: str | None = centre.national_code
        else:
            if r() < online_share:
                channel = ONLINE
                proc = online_capable[int(r() * len(online_capable))]
            else:
                channel = IN_PERSON if r() < 0.95 else POSTAL
                proc = weighted[int(r() * len(weighted))]
            day = START + timedelta(days=int(r() * n_days))
            submitted, received = common.arrival(
                r, day, online=channel == ONLINE, postal=channel == POSTAL, online_wait=28800
            )
            places: tuple[str, ...]
            if received >= TWO_LEVEL_FROM:
                places = (PROVINCE, *COMMUNES_TWO_LEVEL)
            else:
                places = (PROVINCE, *DISTRICTS, *COMMUNES_THREE_LEVEL)
            locality = places[int(r() * len(places))]
            office = PROVINCE_OFFICE if locality == PROVINCE else DISTRICT_OFFICES[number % 3]
            received_by = national = None

        key = (office, received.year)
        seq = sequence[key] = sequence.get(key, 0) + 1
        due = received.replace(hour=16, minute=30, second=0) + timedelta(days=proc.days)
        finish = received + timedelta(seconds=int(proc.days * 86400 * (0.1 + r())))
        status, finished, returned = _OUTCOMES.draw(r, finish)

        u = r()
        applicant = CITIZEN if u < 0.85 else ENTERPRISE if u < 0.97 else STATE_BODY
        if u >= 0.99:
            applicant = OTHER
        insurance_number = f"{int(r() * 10**10):010d}" if applicant == CITIZEN else None
        paid = bool(proc.fee) and r() < (0.8 if channel == ONLINE else 0.1)
        docs = 1 + int(r() * 5)
        digitised = docs if channel == ONLINE else int(r() * (docs + 1))
        last = returned or finished or received
        changed = min(last + timedelta(seconds=int(r() * 259200)), LAST)

        records.append(
            {
                "id": _id(number),
                "soHoSo": f"{office}/{received.year}/{seq:05d}",
                "maHoSoQuocGia": national,
                "maThuTuc": proc.code,
                "tenThuTuc": nfd_names[proc.name] if r() < 0.03 else proc.name,
                "linhVuc": proc.sector,
                "maCoQuan": office,
                "maDonViTiepNhan": received_by,
                "maDiaBan": locality,
                "kenhNop": channel,
                "mucDo": proc.level,
                "trangThai": status,
                "ngayNop": timestamp(submitted),
                "ngayTiepNhan": timestamp(received),
                "ngayHenTra": timestamp(due),
                "ngayCoKetQua": None if finished is None else timestamp(finished),
                "ngayTraKetQua": None if returned is None else timestamp(returned),
                "loaiDoiTuong": applicant,
                "maSoBhxh": insurance_number,
                "lePhi": proc.fee,
                "thanhToanTrucTuyen": paid,
                "soGiayTo": docs,
                "soGiayToSoHoa": digitised,
                "ketQuaDienTu": finished is not None and r() < 0.8,
                "ngayCapNhat": timestamp(changed),
            }
        )
    return records
