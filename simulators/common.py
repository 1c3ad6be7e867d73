"""What every reference system does the same way, whatever its native shape.

The simulators differ in their columns, codes, formats and defects; they share how a seeded
data set is planned (which dossiers are forwarded, which are spoiled and how), how a dossier
arrives, where it is handled and how it ends, the `Truth` each reports, and (for the HTTP
systems) how the served records are kept, picked for a change, moved on and counted.
Everything here draws from the generator it is given, in a fixed order, so a simulator's
output depends only on its seed.
"""

from __future__ import annotations

import json
import random
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, ClassVar, Generic, Self, TypeVar

from simulators.http_server import Faults, RecordSet, SimulatedApi, SortKey
from simulators.scenario import (
    COMMUNES_THREE_LEVEL,
    COMMUNES_TWO_LEVEL,
    DISTRICTS,
    LAST,
    PROVINCE_LOCALITY,
    START,
)

T = TypeVar("T")
R = TypeVar("R")  # what a defect spoils: a row or a record
Id = TypeVar("Id")  # how a simulator identifies its dossiers
Record = dict[str, Any]  # one dossier as an HTTP simulator keeps and serves it


# -- planning a data set ------------------------------------------------------------------
@dataclass(frozen=True)
class Defect(Generic[R]):
    """One kind of malformed dossier a simulator plants, for its connector to reject."""

    kind: str
    plant: Callable[[R], None]  # spoils one generated row or record in place


def assign(**values: Any) -> Callable[[Record], None]:
    """A defect's plant that gives a record's fields these values."""

    def plant(record: Record) -> None:
        record.update(values)

    return plant


def check_share(name: str, share: float) -> None:
    """Refuse a share outside 0..1, naming the argument."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"{name} must be within 0..1, got {share}")


def malformed_count(rows: int, malformed_share: float, shared_updated_at: int = 0) -> int:
    """How many of `rows` dossiers `generate` spoils; refuses arguments it cannot honour."""
    if rows < 0:
        raise ValueError(f"rows must be >= 0, got {rows}")
    check_share("malformed_share", malformed_share)
    if not 0 <= shared_updated_at <= rows:
        raise ValueError(f"shared_updated_at must be within 0..rows, got {shared_updated_at}")
    return round(rows * malformed_share)


def deal(
    picker: random.Random, rows: int, *, forwarded: int, malformed: int, defects: Sequence[T]
) -> tuple[list[int], dict[int, T]]:
    """Numbers (1..`rows`) of the forwarded dossiers, and of the malformed ones with their defect.

    No number is both: a forwarded dossier must reach the registry to be linked. The defects
    are dealt round-robin in number order, so every kind is planted about as often.
    """
    forwarded_numbers = sorted(picker.sample(range(1, rows + 1), forwarded))
    taken = set(forwarded_numbers)
    free = [number for number in range(1, rows + 1) if number not in taken]
    chosen = sorted(picker.sample(free, malformed))
    return forwarded_numbers, {number: defects[i % len(defects)] for i, number in enumerate(chosen)}


def draw(
    movable: Sequence[T],
    *,
    valid: int,
    share: float,
    rng: random.Random,
    order: Callable[[T], Any],
    verb: str = "touch",
    able: str = "can still move",
) -> list[T]:
    """`share` of the `valid` dossiers (rounded), drawn with `rng` among the `movable` ones and
    sorted by `order`; raises `ValueError` when too few can move."""
    wanted = round(valid * share)
    if wanted > len(movable):
        raise ValueError(
            f"cannot {verb} {wanted} rows ({share:.1%} of {valid} valid): only "
            f"{len(movable)} {able}"
        )
    return sorted(rng.sample(movable, wanted), key=order)


def count_kinds(kinds: Sequence[str], planted: Iterable[Defect[Any]]) -> dict[str, int]:
    """Planted defects per kind, every kind listed in `kinds` order."""
    counts = dict.fromkeys(kinds, 0)
    for defect in planted:
        counts[defect.kind] += 1
    return counts


def spoil(
    records: Sequence[Record],
    plan: Mapping[int, Defect[Record]],
    *,
    online: Callable[[Record], bool],
) -> int:
    """Plant the planned defects (records numbered from 1); return the valid records `online`."""
    count = 0
    for number, record in enumerate(records, start=1):
        if (defect := plan.get(number)) is not None:
            defect.plant(record)
        elif online(record):
            count += 1
    return count


def tie(records: Sequence[Record], changed: str) -> None:
    """Give `records` one last-change time, so paging has ties to cross.

    It is the latest of theirs, so still no earlier than any of their own dates (the field's
    text must sort as its time does).
    """
    if records:
        latest = max(record[changed] for record in records)
        for record in records:
            record[changed] = latest


# -- a dossier's life -----------------------------------------------------------------------
def arrival(
    r: Callable[[], float], day: datetime, *, online: bool, postal: bool, online_wait: int
) -> tuple[datetime, datetime]:
    """When a dossier arriving on `day` was submitted and received.

    Online it is submitted at any hour and received within `online_wait` seconds (by `LAST`);
    at the counter both happen in office hours; by post it was posted one to three days before.
    """
    if online:
        submitted = day + timedelta(seconds=int(r() * 86400))
        return submitted, min(submitted + timedelta(seconds=int(r() * online_wait)), LAST)
    received = day + timedelta(seconds=27000 + int(r() * 34200))
    if postal:
        return max(received - timedelta(days=1 + int(r() * 3)), START), received
    return received, received


def place(
    r: Callable[[], float],
    *,
    two_level: bool,
    province: str,
    offices: Sequence[str],
    province_share: float,
    districts_below: float,
) -> tuple[str, str]:
    """Where a dossier is handled: (locality code, agency).

    The provincial office (`province`) takes 30% of the dossiers before the reform and
    `province_share` after it. The rest go to a district (draws below `districts_below`,
    before the reform only) or a commune; the k-th such unit is served by `offices[k]`,
    wrapping round.
    """
    units: Sequence[str]
    if two_level:
        if r() < province_share:
            return PROVINCE_LOCALITY, province
        units = COMMUNES_TWO_LEVEL
    else:
        u = r()
        if u < 0.3:
            return PROVINCE_LOCALITY, province
        units = DISTRICTS if u < districts_below else COMMUNES_THREE_LEVEL
    k = int(r() * len(units))
    return units[k], offices[k % len(offices)]


@dataclass(frozen=True)
class Outcomes:
    """How a system's dossiers end up, in its own status words, and how often each way.

    A draw below 0.03 is refused, below 0.05 withdrawn, below 0.06 stopped; below `open_below`
    (or when it would finish from `open_from` on) it is still open; otherwise it is resolved,
    and from `returned_from` on also returned within `return_within` seconds.
    """

    refused: str
    withdrawn: str
    stopped: str
    still_open: Sequence[str]  # open statuses, repeated by weight
    resolved: str
    returned: str
    open_below: float
    returned_from: float
    return_within: int
    open_from: datetime  # a dossier that would finish from here on is still open

    def draw(
        self, r: Callable[[], float], finish: datetime
    ) -> tuple[str, datetime | None, datetime | None]:
        """(status, finished, returned) of a dossier that would finish at `finish`."""
        u = r()
        if u < 0.03:
            return self.refused, None, None
        if u < 0.05:
            return self.withdrawn, None, None
        if u < 0.06:
            return self.stopped, None, None
        if u < self.open_below or finish >= self.open_from:
            return self.still_open[int(r() * len(self.still_open))], None, None
        if u < self.returned_from:
            return self.resolved, finish, None
        returned = min(finish + timedelta(seconds=int(r() * self.return_within)), LAST)
        return self.returned, finish, returned


# -- what was generated ---------------------------------------------------------------------
@dataclass(frozen=True)
class Truth(Generic[Id]):
    """What a simulator generated: the counts its connector and the registry must reproduce."""

    source: ClassVar[str]
    rows: int
    malformed: int
    valid: int
    defects: dict[str, int]  # planted dossiers per defect kind (every kind listed)
    online: int  # valid dossiers submitted online
    malformed_ids: tuple[Id, ...] = field(repr=False)

    @classmethod
    def of_plan(
        cls,
        plan: Mapping[int, Defect[Any]],
        *,
        rows: int,
        kinds: Sequence[str],
        online: int,
        ident: Callable[[int], Id],
        **own: Any,
    ) -> Self:
        """The truth of `rows` dossiers of which `plan` spoiled some (by number, see `deal`);
        `ident` gives a number's id in the source, `own` the subclass's further fields."""
        return cls(
            rows=rows,
            malformed=len(plan),
            valid=rows - len(plan),
            defects=count_kinds(kinds, plan.values()),
            online=online,
            malformed_ids=tuple(ident(number) for number in plan),
            **own,
        )

    def as_json(self) -> str:
        """One JSON line with the counts (no ids), for scripts and benchmarks."""
        return json.dumps(
            {
                "rows": self.rows,
                "malformed": self.malformed,
                "valid": self.valid,
                "defects": self.defects,
                "online": self.online,
                **self.own_counts(),
                "source": self.source,
            }
        )

    def own_counts(self) -> dict[str, Any]:
        """The source's further counts, listed after the shared ones."""
        return {}


@dataclass(frozen=True)
class LinkedTruth(Truth[Id]):
    """The truth of a system that also receives dossiers forwarded by a one-stop centre."""

    forwarded_ids: tuple[Id, ...] = field(default=(), repr=False)  # all valid
    defect_of: dict[Id, str] = field(default_factory=dict, repr=False)  # id -> defect kind

    @classmethod
    def of_deal(
        cls,
        forwarded_numbers: Sequence[int],
        plan: Mapping[int, Defect[Any]],
        /,
        *,
        ident: Callable[[int], Id],
        **counts: Any,
    ) -> Self:
        """`of_plan` (`counts` are its other arguments), with the ids of the forwarded
        dossiers (by number, see `deal`) and each spoiled id's defect."""
        return cls.of_plan(
            plan,
            ident=ident,
            forwarded_ids=tuple(ident(number) for number in forwarded_numbers),
            defect_of={ident(number): defect.kind for number, defect in plan.items()},
            **counts,
        )


# -- the HTTP systems -----------------------------------------------------------------------
class DossierApi(SimulatedApi):
    """A sector API over generated dossier records that change as the live system's do.

    Subclasses answer from `_records` (in paging order) and find a record by id in `_by_id`,
    holding `_data` for either.
    """

    truth: Truth[str]

    def __init__(
        self,
        records: list[Record],
        *,
        key: str,
        sort_key: Callable[[Record], SortKey],
        faults: Faults | None,
        port: int,
    ) -> None:
        super().__init__(faults=faults, port=port)
        self._data = threading.Lock()
        self._records = RecordSet(records, sort_key)
        self._by_id = {record[key]: record for record in records}

    def dossiers(self) -> list[Record]:
        """Copies of every record, in id order."""
        with self._data:
            return [dict(self._by_id[ident]) for ident in sorted(self._by_id)]

    def _draw(self, *, share: float, seed: str, can_move: Callable[[Record], bool]) -> list[str]:
        """Ids of `share` of the valid records (rounded), drawn from `seed` among the movable.

        Malformed records never move. The ids come sorted; raises `ValueError` when too few can
        move. The caller holds `_data`.
        """
        check_share("share", share)
        malformed = set(self.truth.malformed_ids)
        movable = sorted(
            ident
            for ident, record in self._by_id.items()
            if ident not in malformed and can_move(record)
        )
        return draw(
            movable, valid=self.truth.valid, share=share, rng=random.Random(seed), order=str
        )

    def _move_on(
        self,
        picked: Iterable[str],
        when: str,
        *,
        status: str,
        next_status: Mapping[Any, Any],
        stamps: Mapping[Any, str],
        changed: str,
    ) -> None:
        """Move each picked record to its next status, as the live system would.

        The record's `status` field takes its `next_status`; reaching a status that `stamps`
        names a field for (resolved, returned) sets that field to `when`, and `changed` (the
        last-change time) always is. The caller holds `_data`.
        """
        for ident in picked:
            record = self._by_id[ident]
            record[status] = next_status[record[status]]
            if (stamped := stamps.get(record[status])) is not None:
                record[stamped] = when
            record[changed] = when
        self._records.refresh()

    def _received(self, start: date, end: date, day: Callable[[Record], date | None]) -> int:
        """How many records were received on local days `start <= day < end`."""
        with self._data:
            return sum(
                1
                for record in self._records
                if (at := day(record)) is not None and start <= at < end
            )

    def serve_until_interrupted(self, reach: str) -> None:
        """Run in the foreground until Ctrl-C, as `dossierhub simulate` does.

        Prints the truth as one JSON line on stdout, and where it listens (with `reach`, how a
        client gets in: never a secret) on stderr.
        """
        self.start()
        print(self.truth.as_json(), flush=True)
        print(
            f"{self.name} simulator on {self.url} ({reach}); Ctrl-C to stop",
            file=sys.stderr,
            flush=True,
        )
        self.run_until_interrupted()
