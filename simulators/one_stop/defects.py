"""The malformed records the portal generator plants."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from simulators.common import Defect, Record, assign
from simulators.one_stop.schema import parse_stamp, stamp


def _due_before_received(record: dict[str, Any]) -> None:
    record["NgayHenTra"] = stamp(parse_stamp(record["NgayTiepNhan"]) - timedelta(days=1))


def _short_citizen_id(record: dict[str, Any]) -> None:
    # A citizen ID with its last digit lost: 11 digits are no ID card nor tax code either.
    holder = str(record["SoGiayToChuHoSo"] or "")
    record["LoaiDoiTuong"] = 1
    record["SoGiayToChuHoSo"] = (holder if len(holder) == 12 else "056123456789")[:11]


_DISTRICT_AFTER_REFORM = "district_after_reform"
_DEFECTS: tuple[Defect[Record], ...] = (
    Defect("received_missing", assign(NgayTiepNhan="")),
    Defect("received_not_a_time", assign(NgayTiepNhan="20260230083000")),  # 30 February
    Defect("unknown_channel", assign(KenhThucHien=4)),
    Defect("unknown_status", assign(TrangThaiHoSo="11")),
    Defect("malformed_procedure_code", assign(MaTTHC="2.00O908")),  # letter O for a zero
    Defect("malformed_agency_code", assign(MaCoQuan="H56")),
    Defect("due_before_received", _due_before_received),
    Defect(_DISTRICT_AFTER_REFORM, assign(MaDonVi="568")),  # generated after the reform
    Defect("malformed_citizen_id", _short_citizen_id),
    Defect("unknown_service_level", assign(MucDo=5)),
)
DEFECT_KINDS: tuple[str, ...] = tuple(defect.kind for defect in _DEFECTS)
