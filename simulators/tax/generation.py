"""`generate`: `tb_hoso` rebuilt from a seed, and the `Truth` about what was planted."""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

from simulators import common, database
from simulators.database import RowDefect, chunks
from simulators.tax.defects import _DEFECTS, _DISTRICT_DEFECT, DEFECT_KINDS
from simulators.tax.schema import (
    _AT,
    ACCEPTED,
    AWAITING_PAYMENT,
    END,
    IN_PERSON,
    IN_PROGRESS,
    OFFLINE,
    ONLINE,
    POSTAL,
    PROCEDURES,
    PROVINCE,
    PROVINCE_AGENCY,
    REFUSED,
    RESOLVED,
    RETURNED,
    START,
    STOPPED,
    SUPPLEMENT,
    TEAM_AGENCIES,
    TWO_LEVEL_FROM,
    WAITING,
    WITHDRAWN,
    tb_hoso,
)


@dataclass(frozen=True)
class Truth(common.Truth[int]):
    """What `generate` loaded; `online` counts valid rows with KENH_NOP = TRUC_TUYEN."""

    source: ClassVar[str] = "tax"


def generate(
    url: str,
    *,
    rows: int,
    seed: int,
    malformed_share: float = 0.0,
    shared_updated_at: int = 0,
) -> Truth:
    """Rebuild `tb_hoso` at `url` with `rows` dossiers drawn from `seed`.

    `malformed_share` of the rows (rounded) carry one defect each, the kinds dealt round-robin
    over `DEFECT_KINDS`. The first `shared_updated_at` rows by ID share one NGAY_CAP_NHAT, so
    paging has ties to cross. Rows are streamed: memory stays flat whatever `rows` is.
    """
    malformed = common.malformed_count(rows, malformed_share, shared_updated_at)
    picker = random.Random(f"tax-defects-{seed}")
    _, plan = common.deal(picker, rows, forwarded=0, malformed=malformed, defects=_DEFECTS)
    stats = _Stats()
    stream = _generate_rows(rows, seed, plan, shared_updated_at, stats)
    database.fill(url, (tb_hoso,), ([batch] for batch in chunks(stream, database.CHUNK)))
    return Truth.of_plan(plan, rows=rows, kinds=DEFECT_KINDS, online=stats.online, ident=int)


@dataclass
class _Stats:
    online: int = 0


def _generate_rows(
    rows: int, seed: int, plan: dict[int, RowDefect], shared: int, stats: _Stats
) -> Iterator[list[Any]]:
    # The row stream uses its own generator, so the same seed gives the same dossiers
    # whatever share of them is then spoiled.
    rng = random.Random(f"tax-rows-{seed}")
    r = rng.random
    procedures = [p for p in PROCEDURES for _ in range(p.weight)]
    nfd_names = {p.name: unicodedata.normalize("NFD", p.name) for p in PROCEDURES}
    open_statuses = [WAITING] * 2 + [ACCEPTED] * 3 + [IN_PROGRESS] * 9
    open_statuses += [SUPPLEMENT] * 3 + [AWAITING_PAYMENT] * 3
    n_days = (END - START).days
    day_starts = [START + timedelta(days=d) for d in range(n_days)]
    day_codes = [day.strftime("%y%m%d") for day in day_starts]
    reform_day = (TWO_LEVEL_FROM - START).days
    sequence: dict[tuple[str, int], int] = {}  # daily receipt counter per agency
    national: dict[int, int] = {}  # daily counter of the national portal
    held: list[list[Any]] = []
    i_cap = _AT["NGAY_CAP_NHAT"]

    for ident in range(1, rows + 1):
        defect = plan.get(ident)
        proc = procedures[int(r() * len(procedures))]
        if proc.level == OFFLINE:
            channel = IN_PERSON if r() < 0.85 else POSTAL
        else:
            # 92% of the volume is online-capable; 87% of that comes online: ~80% overall.
            u = r()
            channel = ONLINE if u < 0.87 else IN_PERSON if u < 0.97 else POSTAL

        u = r()
        if defect is _DISTRICT_DEFECT:  # needs a dossier received under the two-level table
            day = reform_day + int(u * (n_days - reform_day))
        else:
            day = int(u * n_days)
        submitted, received = common.arrival(
            r,
            day_starts[day],
            online=channel == ONLINE,
            postal=channel == POSTAL,
            online_wait=57600,
        )
        rday = (received - START).days

        locality, agency = common.place(
            r,
            two_level=rday >= reform_day,
            province=PROVINCE_AGENCY,
            offices=TEAM_AGENCIES,
            province_share=0.4,
            districts_below=0.7,
        )

        key = (agency, rday)
        seq = sequence[key] = sequence.get(key, 0) + 1
        dossier_code = f"{agency}-{day_codes[rday]}-{seq:04d}"
        national_code = None
        if channel == ONLINE and r() < 0.6:
            n = national[rday] = national.get(rday, 0) + 1
            national_code = f"G22.56-{day_codes[rday]}-{n:06d}"

        due = day_starts[rday] + timedelta(days=proc.days, hours=16, minutes=30)
        # Most dossiers finish within the statutory time; about one in ten is late.
        finish = received + timedelta(seconds=int(proc.days * 86400 * (0.1 + r())))
        u = r()
        finished = None
        if u < 0.04:
            status = REFUSED
        elif u < 0.06:
            status = WITHDRAWN
        elif u < 0.07:
            status = STOPPED
        elif u < 0.25 or finish >= END:
            status = open_statuses[int(r() * len(open_statuses))]
        else:
            status = RESOLVED if u < 0.35 else RETURNED
            finished = finish

        u = r()
        if u < 0.45:
            applicant = 1
            if r() < 0.7:  # citizen ID: province of birth, century/sex, year, serial
                tax_code = f"0{PROVINCE}{int(r() * 10**9):09d}"
            else:
                tax_code = f"8{int(r() * 10**9):09d}"  # personal tax code
        else:
            applicant = 2 if u < 0.95 else 3 if u < 0.97 else 4
            tax_code = f"42{int(r() * 10**8):08d}"
            if applicant == 2 and r() < 0.25:
                tax_code = f"{tax_code}-{1 + int(r() * 30):03d}"  # a branch

        fee = proc.fee
        paid = 1 if fee and r() < (0.75 if channel == ONLINE else 0.1) else 0
        docs = 1 + int(r() * 6)
        digitised = docs if channel == ONLINE else int(r() * (docs + 1))
        result_digitised = 1 if finished is not None and r() < 0.8 else 0

        last = finished or received
        room = min((END - last).total_seconds(), 259200.0) * 1e6
        changed = last + timedelta(microseconds=int(r() * room))

        row = [
            ident,
            dossier_code,
            national_code,
            f"{proc.code}.000.00.00.H56" if r() < 0.3 else proc.code,
            nfd_names[proc.name] if r() < 0.03 else proc.name,
            proc.sector,
            agency,
            locality,
            submitted,
            received,
            due,
            finished,
            channel,
            proc.level,
            status,
            applicant,
            tax_code,
            fee,
            paid,
            docs,
            digitised,
            result_digitised,
            changed,
        ]
        if defect is not None:
            defect.plant(row)
        elif channel == ONLINE:
            stats.online += 1
        if ident <= shared:
            held.append(row)
            if ident < shared:
                continue
            # One last-change time for the whole group: the latest of theirs, so it is
            # still no earlier than any of their own dates.
            tie = max(held_row[i_cap] for held_row in held)
            for held_row in held:
                held_row[i_cap] = tie
            yield from held
            held = []
            continue
        yield row
