"""The provincial one-stop portal: its REST API, an API key, page-number pagination.

Native quirks translated here: PascalCase Vietnamese field names; `yyyyMMddHHmmss` naive
local with "" for a time not set; the shared channel codes (KenhThucHien 1, 2, 3),
the legacy service levels (MucDo 4, 3, 2) and the ten shared status codes as strings;
province-localised procedure codes (2.000908.000.00.00.H56, reduced by the model); the
applicant's citizen ID or tax code (SoGiayToChuHoSo), hashed at once. MaHoSo, the receipt
code the centre printed, is the code the national portal and the sector systems know a
forwarded dossier by, so it links the portal's record to the sector's.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from connectors.codes import LEGACY_SERVICE_LEVEL, SHARED_APPLICANT, SHARED_CHANNEL, SHARED_STATUS
from connectors.http import ApiKey, HttpConnector, PageNumber
from connectors.mapping import (
    Code,
    Fee,
    FieldMapping,
    Identifier,
    Time,
    Value,
    whole_number,
)

# 12-digit citizen ID, old 9-digit ID card, 10-digit tax code (13 with a branch suffix).
_HOLDER_ID = re.compile(r"[0-9]{12}|[0-9]{9}|[0-9]{10}(?:-?[0-9]{3})?")  # ASCII digits only


def _amount(value: Any) -> int | None:
    """A fee the portal wrote as a whole number or as digits, zero or more."""
    fee = whole_number(value)
    return None if fee is None or fee < 0 else fee


def _code(column: str, field: str, table: dict[int, Any], known: str, **options: Any) -> Code:
    """A portal code, written as a number or as digits."""
    return Code(column, field, table, key=whole_number, known=known, **options)


class OneStopConnector(HttpConnector):
    """The portal's dossier API, one JSON object per dossier."""

    auth = ApiKey(header="X-API-Key")
    pagination = PageNumber(page_param="SoTrang", size_param="SoBanGhi", first_page=1)
    records_endpoint = "/api/v1/hoso"
    records_path = "DuLieu"
    id_field = "Id"
    updated_at_field = "NgayCapNhat"
    updated_since_param = "NgayCapNhatTu"
    time_format = "%Y%m%d%H%M%S"
    received_field = "NgayTiepNhan"
    time_example = "20260301083000"
    max_page_size = 200
    count_endpoint = "/api/v1/hoso/dem"
    count_path = "TongSo"
    count_from_param = "TuNgay"
    count_to_param = "DenNgay"
    count_date_format = "%Y%m%d"
    error_fields = ("ThongBao",)
    mapping: ClassVar[FieldMapping] = FieldMapping(
        Time("NgayNop", "submitted_at"),
        Time("NgayTiepNhan", "received_at", required=True),
        *Time.each(NgayHenTra="due_at", NgayKetThuc="finished_at", NgayTraKetQua="returned_at"),
        Time("NgayCapNhat", "source_updated_at", required=True),
        Value("MaHoSo", "dossier_code", required="no receipt code"),
        *Value.each(MaTTHC="procedure_code", TenTTHC="procedure_name", LinhVuc="sector"),
        *Value.each(MaCoQuan="agency_code", MaNoiTiepNhan="received_by"),
        Value("MaDonVi", "locality_code", convert=str),  # the model derives the admin level
        # The shared codes of the national lists, and the legacy service levels (MucDo).
        _code("TrangThaiHoSo", "status", SHARED_STATUS, "1-10", raw_field="status_raw"),
        _code("KenhThucHien", "channel", SHARED_CHANNEL, "1, 2, 3"),
        _code("MucDo", "service_level", LEGACY_SERVICE_LEVEL, "2, 3, 4", optional=True),
        _code("LoaiDoiTuong", "applicant_type", SHARED_APPLICANT, "1-4", optional=True),
        Identifier(
            "SoGiayToChuHoSo",
            _HOLDER_ID,
            "a 12-digit citizen ID, a 9-digit ID card number or a tax code",
        ),
        # The model reads the 0/1 flags, so "0" or 2 are not taken as true.
        Fee("LePhi", _amount, paid=Value("ThanhToanTrucTuyen", "paid_online")),
        *Value.each(SoThanhPhan="docs_submitted", SoThanhPhanSoHoa="docs_digitised"),
        Value("KetQuaDienTu", "result_digitised"),
        unknown="{column} {value!r} is not a portal code (known: {known})",
        absent=(None, ""),  # the portal writes "" for a value not set
        times=HttpConnector.times_like(time_example),
    )
