"""The malformed records the Social Insurance generator plants."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from simulators.common import Defect, Record, assign
from simulators.social_insurance.schema import CITIZEN, timestamp


def _due_before_received(record: dict[str, Any]) -> None:
    received = datetime.fromisoformat(record["ngayTiepNhan"])
    record["ngayHenTra"] = timestamp(received.replace(tzinfo=None) - timedelta(days=1))


def _short_insurance_number(record: dict[str, Any]) -> None:
    record["loaiDoiTuong"] = CITIZEN
    record["maSoBhxh"] = (record["maSoBhxh"] or "0123456789")[:9]


def _too_many_digitised(record: dict[str, Any]) -> None:
    record["soGiayToSoHoa"] = record["soGiayTo"] + 2


_DEFECTS: tuple[Defect[Record], ...] = (
    Defect("received_missing", assign(ngayTiepNhan=None)),
    Defect("received_not_a_time", assign(ngayTiepNhan="2026-02-30T08:00:00+07:00")),
    Defect("unknown_procedure", assign(maThuTuc="699")),
    Defect("unknown_office", assign(maCoQuan="99999")),
    Defect("unknown_status", assign(trangThai="daHuy")),
    Defect("malformed_insurance_number", _short_insurance_number),
    Defect("due_before_received", _due_before_received),
    Defect("blank_dossier_number", assign(soHoSo="  ")),
    Defect("unknown_channel", assign(kenhNop="zalo")),
    Defect("digitised_exceeds_submitted", _too_many_digitised),
)
DEFECT_KINDS: tuple[str, ...] = tuple(defect.kind for defect in _DEFECTS)
