"""The deliveries a file-drop connector must cope with after `generate`: a day re-issued
corrected, a file delivered twice, a file caught half-written."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from simulators import common
from simulators.finance.files import _parse, _render, _write
from simulators.finance.generation import _day, _load
from simulators.finance.schema import NEXT_STATUS, RESOLVED, RETURNED, TIME


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
