"""The malformed rows the Tax generator plants, each with the predicate that finds it again."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

from sqlalchemy import and_, func

from simulators import database
from simulators.database import RowDefect
from simulators.tax.schema import (
    _AT,
    APPLICANT_TYPES,
    CHANNELS,
    DISTRICTS,
    RETURNED,
    STATUSES,
    TWO_LEVEL_FROM,
    tb_hoso,
)

_set = partial(database.assign, _AT)


def _shift(name: str, days: int, **values: Any) -> Callable[[list[Any]], None]:
    def plant(row: list[Any]) -> None:
        row[_AT[name]] = row[_AT["NGAY_NHAN"]] + timedelta(days=days)
        _set(**values)(row)

    return plant


def _cut_tax_code(row: list[Any]) -> None:
    row[_AT["MST"]] = row[_AT["MST"]].replace("-", "")[:9]


def _district(row: list[Any]) -> None:
    row[_AT["MA_DVHC"]] = DISTRICTS[row[_AT["ID"]] % len(DISTRICTS)]


_DEFECTS = (
    RowDefect("received_missing", _set(NGAY_NHAN=None), lambda c: c.NGAY_NHAN.is_(None)),
    RowDefect(
        "returned_before_received",
        _shift("NGAY_TRA", -2, TRANG_THAI=RETURNED),
        lambda c: database.earlier(c.NGAY_TRA, c.NGAY_NHAN),
    ),
    RowDefect(
        "due_before_received",
        _shift("NGAY_HEN_TRA", -1),
        lambda c: database.earlier(c.NGAY_HEN_TRA, c.NGAY_NHAN),
    ),
    RowDefect("unknown_status", _set(TRANG_THAI=42), lambda c: c.TRANG_THAI.not_in(STATUSES)),
    RowDefect(
        "malformed_procedure_code",
        _set(MA_TTHC="2.00O477"),  # letter O for a zero, as typed by hand
        lambda c: c.MA_TTHC == "2.00O477",
    ),
    RowDefect("malformed_agency_code", _set(MA_CQ="H56"), lambda c: c.MA_CQ == "H56"),
    RowDefect("unknown_channel", _set(KENH_NOP="X"), lambda c: c.KENH_NOP.not_in(CHANNELS)),
    RowDefect(
        "malformed_tax_code",
        _cut_tax_code,
        lambda c: and_(c.MST.is_not(None), func.length(c.MST) == 9),
    ),
    RowDefect("blank_dossier_code", _set(MA_HS="  "), lambda c: func.trim(c.MA_HS) == ""),
    RowDefect(
        "unknown_applicant_type",
        _set(LOAI_DT=7),
        lambda c: and_(c.LOAI_DT.is_not(None), c.LOAI_DT.not_in(APPLICANT_TYPES)),
    ),
    RowDefect(
        "district_after_reform",  # a district code on a dossier received after 2025-07-01
        _district,
        lambda c: and_(
            c.MA_DVHC.is_not(None),
            c.NGAY_NHAN.is_not(None),
            func.length(c.MA_DVHC) == 3,
            c.NGAY_NHAN >= TWO_LEVEL_FROM,
        ),
    ),
)
DEFECT_KINDS: tuple[str, ...] = tuple(defect.kind for defect in _DEFECTS)
_DISTRICT_DEFECT = _DEFECTS[-1]
_VALID = database.valid(tb_hoso, _DEFECTS)
