"""The malformed rows the Land generator plants, each with the predicate that finds it again."""

from __future__ import annotations

import unicodedata
from datetime import timedelta
from functools import partial
from typing import Any

from sqlalchemy import and_, func

from simulators import database
from simulators.database import RowDefect
from simulators.land.schema import (
    _AT,
    _MOJIBAKE,
    CHANNELS,
    DA_GIAI_QUYET,
    PROVINCE,
    STATUSES,
    ho_so_dang_ky,
)

_set = partial(database.assign, _AT)


def _finished_early(row: list[Any]) -> None:
    row[_AT["trang_thai"]] = DA_GIAI_QUYET
    row[_AT["ngay_hoan_thanh"]] = row[_AT["ngay_tiep_nhan"]] - timedelta(days=3)
    row[_AT["ngay_tra_ket_qua"]] = None


def _short_citizen_id(row: list[Any]) -> None:
    # A digit lost when typed at the counter: 11 digits.
    row[_AT["loai_nguoi_nop"]] = "CA_NHAN"
    row[_AT["so_cccd"]] = f"0{PROVINCE}1{row[_AT['id']] % 10**7:07d}"


def _mojibake(row: list[Any]) -> None:
    name = unicodedata.normalize("NFC", row[_AT["ten_thu_tuc"]])
    row[_AT["ten_thu_tuc"]] = name.encode().decode("cp1252", errors="replace")


def _spaced_one_stop_code(row: list[Any]) -> None:
    # A one-stop code typed by hand with spaces for dashes.
    received = row[_AT["ngay_tiep_nhan"]]
    row[_AT["ma_ho_so_mot_cua"]] = f"000.00.31.H56 {received:%y%m%d} {9000 + row[_AT['id']] % 999}"


_DEFECTS = (
    RowDefect("received_missing", _set(ngay_tiep_nhan=None), lambda c: c.ngay_tiep_nhan.is_(None)),
    RowDefect(
        "unknown_status",
        _set(trang_thai="CHO_KY_SO"),  # "awaiting digital signature": a step Land added later
        lambda c: c.trang_thai.not_in(STATUSES),
    ),
    RowDefect(
        "finished_before_received",
        _finished_early,
        lambda c: database.earlier(c.ngay_hoan_thanh, c.ngay_tiep_nhan),
    ),
    RowDefect(
        "malformed_procedure_code",
        _set(ma_thu_tuc="1.OO4227"),  # letter O for zero, typed by hand
        lambda c: c.ma_thu_tuc == "1.OO4227",
    ),
    RowDefect(
        "malformed_citizen_id",
        _short_citizen_id,
        lambda c: and_(c.so_cccd.is_not(None), func.length(c.so_cccd) == 11),
    ),
    RowDefect("unknown_channel", _set(hinh_thuc_nop=9), lambda c: c.hinh_thuc_nop.not_in(CHANNELS)),
    RowDefect("legacy_encoded_name", _mojibake, lambda c: c.ten_thu_tuc.in_(sorted(_MOJIBAKE))),
    RowDefect("blank_dossier_code", _set(ma_ho_so="  "), lambda c: func.trim(c.ma_ho_so) == ""),
    RowDefect(
        "malformed_one_stop_code",
        _spaced_one_stop_code,
        lambda c: and_(c.ma_ho_so_mot_cua.is_not(None), c.ma_ho_so_mot_cua.like("% %")),
    ),
)
DEFECT_KINDS: tuple[str, ...] = tuple(defect.kind for defect in _DEFECTS)
_VALID = database.valid(ho_so_dang_ky, _DEFECTS)
