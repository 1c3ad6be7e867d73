"""What happens to `tb_hoso` after it is generated: dossiers move on (`touch`), an operator
repairs bad rows (`repair`); each change stamps NGAY_CAP_NHAT past every other row."""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Connection, bindparam, func, select, update

from simulators import common, database
from simulators.database import chunks
from simulators.tax.defects import _VALID
from simulators.tax.schema import (
    _PROCEDURE_BY_NAME,
    _PROCEDURE_CODES,
    _TAX_ID,
    AGENCIES,
    APPLICANT_TYPES,
    CHANNELS,
    COMMUNES_THREE_LEVEL,
    COMMUNES_TWO_LEVEL,
    END,
    IN_PROGRESS,
    NEXT_STATUS,
    ONLINE,
    PROCEDURES,
    PROVINCE,
    PROVINCE_AGENCY,
    RESOLVED,
    RETURNED,
    SERVICE_LEVELS,
    STATUSES,
    TWO_LEVEL_FROM,
    tb_hoso,
)


def touch(url: str, *, share: float, seed: int) -> list[int]:
    """Move `share` of the valid rows (rounded) one step on in their life; return their IDs.

    The rows are drawn from `seed` among valid dossiers that can still move (waiting, accepted,
    in progress, awaiting a supplement or payment, resolved): each takes its next status
    (resolving sets NGAY_TRA) and a NGAY_CAP_NHAT later than every other row, increasing with
    ID. Malformed rows are never touched. Raises `ValueError` when too few rows can move.
    """
    common.check_share("share", share)
    c = tb_hoso.c
    with database.opened(url) as engine, engine.begin() as conn:
        total = conn.execute(select(func.count()).where(_VALID)).scalar_one()
        movable = conn.execute(
            select(c.ID, c.TRANG_THAI).where(_VALID, c.TRANG_THAI.in_(NEXT_STATUS)).order_by(c.ID)
        ).all()
        picked = common.draw(
            movable,
            valid=total,
            share=share,
            rng=random.Random(f"tax-touch-{seed}"),
            order=lambda row: row.ID,
            able="are still open or resolved",
        )
        latest = _latest(conn)
        moved, resolved = [], []
        for step, (ident, status) in enumerate(picked, start=1):
            when = latest + timedelta(milliseconds=step)
            params = {"b_id": ident, "b_status": NEXT_STATUS[status], "b_when": when}
            if params["b_status"] == RESOLVED:
                # Whole seconds like every other NGAY_*; still >= NGAY_NHAN, which is a
                # whole second no later than the previous latest change.
                resolved.append({**params, "b_tra": when.replace(microsecond=0)})
            else:
                moved.append(params)
        change = update(tb_hoso).where(_by_id("b_id"))
        values: dict[str, Any] = {
            "TRANG_THAI": bindparam("b_status"),
            "NGAY_CAP_NHAT": bindparam("b_when"),
        }
        for batch in chunks(moved, database.CHUNK):
            conn.execute(change.values(values), batch)
        for batch in chunks(resolved, database.CHUNK):
            conn.execute(change.values({**values, "NGAY_TRA": bindparam("b_tra")}), batch)
    return [ident for ident, _ in picked]


def repair(url: str, *, ids: Sequence[int]) -> None:
    """Fix rows at the source, as an operator would: every column valid, NGAY_CAP_NHAT newest.

    Valid columns are left as they are; each repaired row gets a NGAY_CAP_NHAT later than
    every other row. Raises `ValueError` naming IDs that are not in the table.
    """
    wanted = sorted(set(ids))
    with database.opened(url) as engine, engine.begin() as conn:
        found = database.fetch(conn, tb_hoso, wanted)
        latest = _latest(conn)
        fixed = [
            _repaired(found[ident], latest + timedelta(milliseconds=step))
            for step, ident in enumerate(wanted, start=1)
        ]
        database.recode(conn, fixed, tb_hoso.c.MA_HS, agency="MA_CQ", received="NGAY_NHAN")
        database.rewrite(conn, tb_hoso, fixed)


def status_of(url: str, ids: Sequence[int]) -> dict[int, int]:
    """TRANG_THAI of the given rows, by ID (absent IDs are left out)."""
    return database.column_of(url, tb_hoso.c.TRANG_THAI, ids)


# -- repair ---------------------------------------------------------------------------------
def _repaired(row: dict[str, Any], when: datetime) -> dict[str, Any]:
    """The row with every column valid; a blank or malformed MA_HS is left to the caller."""
    fixed = dict(row)
    name = unicodedata.normalize("NFC", fixed["TEN_TTHC"] or "")
    procedure = _PROCEDURE_BY_NAME.get(name, PROCEDURES[0])
    if fixed["MA_TTHC"] not in _PROCEDURE_CODES:
        fixed["MA_TTHC"] = procedure.code
    if not fixed["TEN_TTHC"]:
        fixed["TEN_TTHC"] = procedure.name
    if fixed["MUC_DO"] not in SERVICE_LEVELS:
        fixed["MUC_DO"] = procedure.level

    received = database.repair_receipt(
        fixed,
        when,
        days=procedure.days,
        submitted="NGAY_NOP",
        received="NGAY_NHAN",
        due="NGAY_HEN_TRA",
    )
    if fixed["TRANG_THAI"] not in STATUSES:
        fixed["TRANG_THAI"] = RETURNED if fixed["NGAY_TRA"] is not None else IN_PROGRESS
    if fixed["TRANG_THAI"] in (RESOLVED, RETURNED):
        if fixed["NGAY_TRA"] is None or fixed["NGAY_TRA"] < received:
            fixed["NGAY_TRA"] = min(received + timedelta(days=1), when.replace(microsecond=0))
    else:
        fixed["NGAY_TRA"] = None

    if fixed["MA_CQ"] not in AGENCIES:
        prefix = str(fixed["MA_HS"]).strip().rsplit("-", 2)[0]
        fixed["MA_CQ"] = prefix if prefix in AGENCIES else PROVINCE_AGENCY
    locality = fixed["MA_DVHC"]
    two_level = received >= TWO_LEVEL_FROM
    if (
        not isinstance(locality, str)
        or not locality.isdigit()
        or len(locality) not in (2, 3, 5)
        or (two_level and len(locality) == 3)
    ):
        fixed["MA_DVHC"] = COMMUNES_TWO_LEVEL[0] if two_level else COMMUNES_THREE_LEVEL[0]
    if fixed["KENH_NOP"] not in CHANNELS:
        fixed["KENH_NOP"] = ONLINE

    tax_code = fixed["MST"]
    if tax_code is not None and not _TAX_ID.fullmatch(tax_code):
        # The operator looks the applicant up again; here an ID-derived code stands in.
        ident = fixed["ID"]
        if fixed["LOAI_DT"] == 1:
            fixed["MST"] = f"0{PROVINCE}{ident % 10**9:09d}"
        else:
            fixed["MST"] = f"42{ident % 10**8:08d}"
    if fixed["LOAI_DT"] not in APPLICANT_TYPES:
        digits = "".join(ch for ch in fixed["MST"] or "" if ch.isdigit())
        fixed["LOAI_DT"] = 1 if len(digits) == 12 else 2

    if Decimal(fixed["LE_PHI"] or 0) <= 0:
        fixed["LE_PHI"], fixed["NOP_PHI_TT"] = 0, 0
    docs, digitised = fixed["SO_TP"], fixed["SO_TP_SO_HOA"]
    if docs is not None and digitised is not None and digitised > docs:
        fixed["SO_TP_SO_HOA"] = docs
    fixed["NGAY_CAP_NHAT"] = when
    return fixed


# -- helpers --------------------------------------------------------------------------------
def _by_id(name: str) -> ColumnElement[bool]:
    # executemany binds each row's ID under `name` (a column's own name is reserved for SET).
    return tb_hoso.c["ID"] == bindparam(name)


def _latest(conn: Connection) -> datetime:
    latest = conn.execute(select(func.max(tb_hoso.c.NGAY_CAP_NHAT))).scalar_one()
    # An empty table has no latest change; anything from END on is later than generated data.
    return latest if latest is not None else END
