"""`generate`: both tables rebuilt from a seed (each dossier walked through its statuses up to
the end of the data), and the `Truth` about what was planted."""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from simulators import common, database, scenario
from simulators.database import RowDefect
from simulators.land.defects import _DEFECTS, DEFECT_KINDS
from simulators.land.schema import (
    _BY_CODE,
    _MAX_STEPS,
    _NOTES,
    _STAY,
    _TABLES,
    APPLICANT_TYPES,
    BRANCHES,
    CHO_BO_SUNG,
    CHO_NGHIA_VU_TC,
    DA_GIAI_QUYET,
    DA_TRA,
    DANG_XU_LY,
    END,
    IN_PERSON,
    LEVEL_PARTIAL,
    NEXT_STEPS,
    ONLINE,
    PAUSED,
    POSTAL,
    PROCEDURES,
    PROVINCE,
    PROVINCE_OFFICE,
    START,
    TAM_DUNG,
    TIEP_NHAN,
    TWO_LEVEL_FROM,
)


@dataclass(frozen=True)
class Truth(common.LinkedTruth[int]):
    """What `generate` loaded; `online` counts valid rows with hinh_thuc_nop = 1."""

    source: ClassVar[str] = "land"
    forwarded: int = 0  # rows received at a one-stop centre (all valid)
    history: int = 0  # entries in lich_su_xu_ly

    def own_counts(self) -> dict[str, Any]:
        return {"forwarded": self.forwarded, "history": self.history}


def generate(
    url: str,
    *,
    rows: int,
    seed: int,
    malformed_share: float = 0.0,
    forwarded: int = 0,
) -> Truth:
    """Rebuild the Land database at `url` with `rows` dossiers drawn from `seed`.

    `forwarded` of them are the dossiers `scenario.forwarded(seed, sector="land", ...)` gives:
    received at a one-stop centre, they carry its code in `ma_ho_so_mot_cua` and are never
    malformed. `malformed_share` of the rows (rounded) carry one defect each, the kinds dealt
    round-robin over `DEFECT_KINDS`. Rows are streamed: memory stays flat whatever `rows` is.
    """
    malformed = common.malformed_count(rows, malformed_share)
    if not 0 <= forwarded <= rows - malformed:
        raise ValueError(
            f"forwarded must be within 0..{rows - malformed} (rows less malformed), got {forwarded}"
        )
    picker = random.Random(f"land-plan-{seed}")
    forwarded_ids, plan = common.deal(
        picker, rows, forwarded=forwarded, malformed=malformed, defects=_DEFECTS
    )
    incoming = dict(
        zip(forwarded_ids, scenario.forwarded(seed, sector="land", count=forwarded), strict=True)
    )
    stats = _Stats()
    database.fill(url, _TABLES, _generate(rows, seed, plan, incoming, stats))
    return Truth.of_deal(
        forwarded_ids,
        plan,
        rows=rows,
        kinds=DEFECT_KINDS,
        online=stats.online,
        ident=int,
        forwarded=forwarded,
        history=stats.history,
    )


# -- generation -----------------------------------------------------------------------------
@dataclass
class _Stats:
    online: int = 0
    history: int = 0


def _choose(rng: random.Random, options: tuple[tuple[str, float], ...]) -> str:
    """One status drawn from `options`, whose weights sum to 1."""
    u = rng.random()
    for status, weight in options:
        u -= weight
        if u < 0:
            return status
    return options[-1][0]


def _walk(
    r: Callable[[], float], rng: random.Random, ident: int, received: datetime, days: int
) -> tuple[list[list[Any]], str, datetime, datetime | None, datetime | None]:
    """A dossier's life from acceptance up to END: its log, status, due, finished, returned.

    Each visit to DANG_XU_LY makes resolution likelier, but a dossier can bounce between
    processing, supplements, suspensions and financial obligations many times; some stall
    (the long-running dossiers every land office has).
    """
    at = received + timedelta(microseconds=int(r() * 999_999))
    log = [[ident, None, TIEP_NHAN, at, _NOTES[TIEP_NHAN][0]]]
    due = datetime.combine(received.date(), datetime.min.time()) + timedelta(
        days=days, hours=16, minutes=30
    )
    limit = _MAX_STEPS if r() >= 0.18 else 1 + int(r() * 6)
    status, visits = TIEP_NHAN, 0
    finished = returned = None
    while status in NEXT_STEPS and len(log) <= limit:
        if status == DANG_XU_LY:
            resolve = min(0.25 + 0.2 * visits, 0.95)
            rest = 1.0 - resolve
            options = (
                (DA_GIAI_QUYET, resolve),
                (CHO_BO_SUNG, 0.45 * rest),
                (CHO_NGHIA_VU_TC, 0.35 * rest),
                (TAM_DUNG, 0.20 * rest),
            )
            target = _choose(rng, options)
        else:
            target = _choose(rng, NEXT_STEPS[status])
        low, high = _STAY[status]
        stay = timedelta(seconds=low + r() * (high - low))
        if at + stay >= END:
            break  # still in `status` when the data ends
        at += stay
        if status in PAUSED:
            due += timedelta(seconds=round(stay.total_seconds()))
        if target == DANG_XU_LY:
            visits += 1
        elif target == DA_GIAI_QUYET:
            finished = at.replace(microsecond=0)
        elif target == DA_TRA:
            returned = at.replace(microsecond=0)
        notes = _NOTES[target]
        log.append([ident, status, target, at, notes[int(r() * len(notes))]])
        status = target
    return log, status, due, finished, returned


def _generate(
    rows: int,
    seed: int,
    plan: dict[int, RowDefect],
    incoming: dict[int, scenario.Forwarded],
    stats: _Stats,
) -> Iterator[tuple[list[list[Any]], list[list[Any]]]]:
    """Chunks of (dossier rows, their history rows), in id order."""
    # The row stream has its own generator, so the same seed gives the same dossiers
    # whatever share of them is then spoiled.
    rng = random.Random(f"land-rows-{seed}")
    r = rng.random
    everything = [p for p in PROCEDURES for _ in range(p.weight)]
    online_capable = [p for p in everything if p.level >= LEVEL_PARTIAL]
    nfd_names = {p.name: unicodedata.normalize("NFD", p.name) for p in PROCEDURES}
    n_days = (END - START).days
    reform_day = (TWO_LEVEL_FROM - START).days
    sequence: dict[tuple[str, str], int] = {}  # Land's daily receipt counter per office
    online_share = scenario.ONLINE_SHARE["land"]
    history_id = 0
    dossiers: list[list[Any]] = []
    history: list[list[Any]] = []

    for ident in range(1, rows + 1):
        defect = plan.get(ident)
        centre = incoming.get(ident)
        if centre is not None:
            # Received at a one-stop centre: its time, place, procedure and channel.
            proc = _BY_CODE[centre.procedure_code]
            received = centre.received_at
            submitted = received
            channel = ONLINE if centre.channel == 2 else IN_PERSON
            locality, received_by = centre.locality_code, centre.centre
            agency = PROVINCE_OFFICE if len(locality) == 2 else BRANCHES[int(r() * len(BRANCHES))]
            one_stop_code: str | None = centre.national_code
        else:
            if r() < online_share:
                channel = ONLINE
                proc = online_capable[int(r() * len(online_capable))]
            else:
                channel = IN_PERSON if r() < 0.97 else POSTAL
                proc = everything[int(r() * len(everything))]
            day = START + timedelta(days=int(r() * n_days))
            submitted, received = common.arrival(
                r, day, online=channel == ONLINE, postal=channel == POSTAL, online_wait=57600
            )
            locality, agency = common.place(
                r,
                two_level=(received - START).days >= reform_day,
                province=PROVINCE_OFFICE,
                offices=BRANCHES,
                province_share=0.35,
                districts_below=0.75,
            )
            received_by = agency
            one_stop_code = None

        day_code = f"{received:%y%m%d}"
        seq = sequence[(agency, day_code)] = sequence.get((agency, day_code), 0) + 1
        log, status, due, finished, returned = _walk(r, rng, ident, received, proc.days)
        for entry in log:
            history_id += 1
            history.append([history_id, *entry])
        stats.history += len(log)

        u = r()
        if u < 0.82:
            applicant = "CA_NHAN"
            if r() < 0.95:  # citizen ID: province of birth, century/sex, year, serial
                citizen_id: str | None = (
                    f"0{PROVINCE}{int(r() * 4)}{int(r() * 100):02d}{int(r() * 10**6):06d}"
                )
            else:
                citizen_id = f"{int(r() * 10**9):09d}"  # an old 9-digit ID card
        else:
            applicant = APPLICANT_TYPES[1] if u < 0.95 else APPLICANT_TYPES[2 + int(r() * 2)]
            citizen_id = None
        fee = proc.fee
        paid = bool(fee) and r() < (0.7 if channel == ONLINE else 0.05)
        docs = 2 + int(r() * 9)
        digitised = docs if channel == ONLINE else int(r() * (docs + 1))
        result_digitised = finished is not None and r() < 0.6

        row = [
            ident,
            f"{agency}-{day_code}-{seq:04d}",
            one_stop_code,
            proc.code,
            nfd_names[proc.name] if r() < 0.03 else proc.name,
            proc.sector,
            agency,
            received_by,
            locality,
            submitted,
            received,
            due,
            finished,
            returned,
            channel,
            proc.level,
            status,
            applicant,
            citizen_id,
            fee,
            paid,
            docs,
            digitised,
            result_digitised,
            log[-1][3],  # the last change is the last status change
        ]
        if defect is not None:
            defect.plant(row)
        elif channel == ONLINE:
            stats.online += 1
        dossiers.append(row)
        if len(dossiers) == database.CHUNK:
            yield dossiers, history
            dossiers, history = [], []
    if dossiers:
        yield dossiers, history
