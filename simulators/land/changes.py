"""What happens to the Land database after it is generated: dossiers move on (`advance`), an
operator repairs bad rows (`repair`), and the reads a test checks them with."""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam, func, insert, select, update

from simulators import common, database
from simulators.database import DOSSIER_CODE, chunks
from simulators.land.defects import _VALID
from simulators.land.generation import _choose
from simulators.land.schema import (
    _BY_CODE,
    _BY_NAME,
    _CITIZEN_ID,
    _MOJIBAKE,
    _NOTES,
    CHANNELS,
    DA_GIAI_QUYET,
    DA_TRA,
    DANG_XU_LY,
    END,
    IN_PERSON,
    NEXT_STEPS,
    OPEN,
    PAUSED,
    PROCEDURES,
    PROVINCE,
    STATUSES,
    ho_so_dang_ky,
    lich_su_xu_ly,
)


class Change(NamedTuple):
    """One entry of `lich_su_xu_ly`."""

    status_from: str | None
    status_to: str
    at: datetime  # naive local time
    note: str | None


def advance(url: str, *, share: float, seed: int, steps: int = 1) -> list[int]:
    """Move `share` of the valid rows (rounded) `steps` status steps on; return their ids.

    The rows are drawn from `seed` among valid dossiers still open. Each step picks the next
    status as the live system would (from DANG_XU_LY a dossier may be resolved, sent back for a
    supplement, suspended or held for financial obligations), appends it to `lich_su_xu_ly`,
    and stamps the row with a `ngay_cap_nhat` later than every other row, increasing with id.
    Leaving CHO_BO_SUNG or TAM_DUNG moves `ngay_hen_tra` on by the time spent there; resolving
    sets `ngay_hoan_thanh`, returning sets `ngay_tra_ket_qua`. A dossier reaching a final
    status stops early. Malformed rows are never touched. Raises `ValueError` when too few
    rows can move.
    """
    common.check_share("share", share)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    c = ho_so_dang_ky.c
    with database.opened(url) as engine, engine.begin() as conn:
        total = conn.execute(select(func.count()).where(_VALID)).scalar_one()
        movable = conn.execute(
            select(
                c.id,
                c.trang_thai,
                c.ngay_hen_tra,
                c.ngay_hoan_thanh,
                c.ngay_tra_ket_qua,
                c.ngay_cap_nhat,
            )
            .where(_VALID, c.trang_thai.in_(OPEN))
            .order_by(c.id)
        ).all()
        rng = random.Random(f"land-advance-{seed}")  # also draws each dossier's steps
        picked = common.draw(
            movable,
            valid=total,
            share=share,
            rng=rng,
            order=lambda row: row.id,
            verb="advance",
            able="are still open",
        )
        clock = _latest(conn)
        changed: list[dict[str, Any]] = []
        logged: list[dict[str, Any]] = []
        for row in picked:
            status, entered = row.trang_thai, row.ngay_cap_nhat
            due, finished, returned = (
                row.ngay_hen_tra,
                row.ngay_hoan_thanh,
                row.ngay_tra_ket_qua,
            )
            for _ in range(steps):
                if status not in NEXT_STEPS:
                    break
                clock += timedelta(milliseconds=1)
                target = _choose(rng, NEXT_STEPS[status])
                if status in PAUSED and due is not None:
                    due += timedelta(seconds=round((clock - entered).total_seconds()))
                if target == DA_GIAI_QUYET:
                    finished = clock.replace(microsecond=0)
                elif target == DA_TRA:
                    returned = clock.replace(microsecond=0)
                logged.append(
                    {
                        "b_ho_so_id": row.id,
                        "b_from": status,
                        "b_to": target,
                        "b_at": clock,
                        "b_note": rng.choice(_NOTES[target]),
                    }
                )
                status, entered = target, clock
            changed.append(
                {
                    "b_id": row.id,
                    "b_status": status,
                    "b_due": due,
                    "b_finished": finished,
                    "b_returned": returned,
                    "b_when": entered,
                }
            )
        change = (
            update(ho_so_dang_ky)
            .where(c.id == bindparam("b_id"))
            .values(
                trang_thai=bindparam("b_status"),
                ngay_hen_tra=bindparam("b_due"),
                ngay_hoan_thanh=bindparam("b_finished"),
                ngay_tra_ket_qua=bindparam("b_returned"),
                ngay_cap_nhat=bindparam("b_when"),
            )
        )
        for batch in chunks(changed, database.CHUNK):
            conn.execute(change, batch)
        _log(conn, logged)
    return [row.id for row in picked]


def repair(url: str, *, ids: Sequence[int]) -> None:
    """Fix rows at the source, as an operator would: every column valid, `ngay_cap_nhat` newest.

    Valid columns are left as they are; each repaired row gets a `ngay_cap_nhat` later than
    every other row, and a repaired status is logged in `lich_su_xu_ly`. Raises `ValueError`
    naming ids that are not in the table.
    """
    wanted = sorted(set(ids))
    with database.opened(url) as engine, engine.begin() as conn:
        found = database.fetch(conn, ho_so_dang_ky, wanted)
        clock = _latest(conn)
        fixed: list[dict[str, Any]] = []
        logged: list[dict[str, Any]] = []
        for ident in wanted:
            clock += timedelta(milliseconds=1)
            before = found[ident]
            after = _repaired(before, clock)
            fixed.append(after)
            if after["trang_thai"] != before["trang_thai"]:
                logged.append(
                    {
                        "b_ho_so_id": ident,
                        "b_from": before["trang_thai"],
                        "b_to": after["trang_thai"],
                        "b_at": clock,
                        "b_note": "Cập nhật lại trạng thái (sửa dữ liệu)",
                    }
                )
        database.recode(
            conn,
            fixed,
            ho_so_dang_ky.c.ma_ho_so,
            agency="ma_don_vi_xu_ly",
            received="ngay_tiep_nhan",
        )
        database.rewrite(conn, ho_so_dang_ky, fixed)
        _log(conn, logged)


def status_of(url: str, ids: Sequence[int]) -> dict[int, str]:
    """`trang_thai` of the given rows, by id (absent ids are left out)."""
    return database.column_of(url, ho_so_dang_ky.c.trang_thai, ids)


def history_of(url: str, ids: Sequence[int]) -> dict[int, list[Change]]:
    """The status log of the given dossiers, oldest first (absent ids are left out)."""
    h = lich_su_xu_ly.c
    found: dict[int, list[Change]] = {}
    with database.opened(url) as engine, engine.connect() as conn:
        for chunk in chunks(sorted(set(ids)), 1000):
            query = (
                select(h.ho_so_id, h.trang_thai_cu, h.trang_thai_moi, h.thoi_gian, h.ghi_chu)
                .where(h.ho_so_id.in_(chunk))
                .order_by(h.ho_so_id, h.thoi_gian, h.id)
            )
            for ident, *entry in conn.execute(query):
                found.setdefault(ident, []).append(Change(*entry))
    return found


# -- repair ---------------------------------------------------------------------------------
def _repaired(row: dict[str, Any], when: datetime) -> dict[str, Any]:
    """The row with every column valid; a blank or malformed ma_ho_so is left to the caller."""
    fixed = dict(row)
    name = fixed["ten_thu_tuc"] or ""
    procedure = (
        _MOJIBAKE.get(name)
        or _BY_NAME.get(unicodedata.normalize("NFC", name))
        or _BY_CODE.get(fixed["ma_thu_tuc"])
        or PROCEDURES[0]
    )
    if fixed["ma_thu_tuc"] not in _BY_CODE:
        fixed["ma_thu_tuc"] = procedure.code
    if name in _MOJIBAKE or not name:
        fixed["ten_thu_tuc"] = procedure.name

    received = database.repair_receipt(
        fixed,
        when,
        days=procedure.days,
        submitted="ngay_nop",
        received="ngay_tiep_nhan",
        due="ngay_hen_tra",
    )
    if fixed["trang_thai"] not in STATUSES:
        fixed["trang_thai"] = DANG_XU_LY if fixed["ngay_hoan_thanh"] is None else DA_GIAI_QUYET
    later = min(received + timedelta(days=1), when.replace(microsecond=0))
    for column in ("ngay_hoan_thanh", "ngay_tra_ket_qua"):
        if fixed[column] is not None and fixed[column] < received:
            fixed[column] = later
    if fixed["trang_thai"] in (DA_GIAI_QUYET, DA_TRA) and fixed["ngay_hoan_thanh"] is None:
        fixed["ngay_hoan_thanh"] = later
    if fixed["trang_thai"] == DA_TRA and fixed["ngay_tra_ket_qua"] is None:
        fixed["ngay_tra_ket_qua"] = later

    if fixed["hinh_thuc_nop"] not in CHANNELS:
        fixed["hinh_thuc_nop"] = IN_PERSON
    citizen_id = fixed["so_cccd"]
    if citizen_id is not None and not _CITIZEN_ID.fullmatch(citizen_id):
        # The operator looks the applicant up again; here an id-derived number stands in.
        fixed["so_cccd"] = f"0{PROVINCE}2{fixed['id'] % 10**8:08d}"
    one_stop = fixed["ma_ho_so_mot_cua"]
    if one_stop is not None and not DOSSIER_CODE.fullmatch(one_stop):
        fixed["ma_ho_so_mot_cua"] = "-".join(one_stop.split())
    fixed["ngay_cap_nhat"] = when
    return fixed


# -- helpers --------------------------------------------------------------------------------
def _log(conn: Connection, entries: list[dict[str, Any]]) -> None:
    """Append status changes to lich_su_xu_ly (ids from its own sequence)."""
    add = insert(lich_su_xu_ly).values(
        ho_so_id=bindparam("b_ho_so_id"),
        trang_thai_cu=bindparam("b_from"),
        trang_thai_moi=bindparam("b_to"),
        thoi_gian=bindparam("b_at"),
        ghi_chu=bindparam("b_note"),
    )
    for batch in chunks(entries, database.CHUNK):
        conn.execute(add, batch)


def _latest(conn: Connection) -> datetime:
    """The latest change (naive local), never before END: changes made now come after the data."""
    latest = conn.execute(select(func.max(ho_so_dang_ky.c.ngay_cap_nhat))).scalar_one()
    return END if latest is None else max(latest, END)
