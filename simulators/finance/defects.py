"""The malformed rows the Finance exporter plants: spoiled values, and CSV lines spoiled byte
for byte."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from simulators import common
from simulators.common import assign
from simulators.finance.schema import RESOLVED, TIME


@dataclass(frozen=True)
class _Defect(common.Defect[dict[str, str]]):
    csv_only: bool = False  # spoils the bytes of a CSV line, not a value
    hides_received: bool = False  # the export no longer states a readable NgayNhan


def _iso_received(values: dict[str, str]) -> None:
    received = datetime.strptime(values["NgayNhan"], TIME)
    values["NgayNhan"] = received.isoformat(sep=" ")


def _cut_tax_code(values: dict[str, str]) -> None:
    values["MaSoThue"] = (values["MaSoThue"] or "4201234567").replace("-", "")[:9]


def _finished_before_received(values: dict[str, str]) -> None:
    received = datetime.strptime(values["NgayNhan"], TIME)
    values["TrangThai"] = RESOLVED
    values["NgayHoanThanh"] = (received - timedelta(days=2)).strftime(TIME)
    values["NgayTraKetQua"] = ""


def _as_is(_values: dict[str, str]) -> None:
    pass


DEFECTS = (
    _Defect("received_missing", assign(NgayNhan=""), hides_received=True),
    _Defect("foreign_date_format", _iso_received, hides_received=True),
    _Defect("unknown_status", assign(TrangThai="Đang thẩm định lại")),
    _Defect("malformed_procedure_code", assign(MaThuTuc="2.00181O")),  # letter O
    _Defect("malformed_tax_code", _cut_tax_code),
    _Defect("finished_before_received", _finished_before_received),
    _Defect("fee_with_currency", assign(PhiLePhi="45.000 đồng")),
    _Defect("unknown_channel", assign(HinhThucNop="Fax")),
    # A name pasted with an opening quote and no closing one.
    _Defect("broken_quoting", _as_is, csv_only=True, hides_received=True),
    # A name typed on an old Windows-1258 machine, pasted as raw bytes.
    _Defect("not_utf8", _as_is, csv_only=True, hides_received=True),
)
DEFECT_KINDS: tuple[str, ...] = tuple(d.kind for d in DEFECTS)
_BY_KIND = {d.kind: d for d in DEFECTS}
