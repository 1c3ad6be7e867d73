"""Social Insurance (BHXH): its REST API, OAuth2 client credentials, cursor pagination.

Native quirks translated here: camelCase Vietnamese field names; ISO 8601 times with their
offset (+07:00); its own dossier numbers (56001/2026/07906) kept as the dossier code, and
for dossiers received at a one-stop centre the centre's receipt code (maHoSoQuocGia) as the
national one; 3-digit procedure codes and 5-digit office codes, mapped through the tables
below to national procedure codes and electronic agency ids; its own status, channel,
service-level and applicant words; the applicant's 10-digit social insurance number, hashed
at once.
"""

from __future__ import annotations

import re
from math import inf
from typing import Any, ClassVar

from connectors.codes import applicant_types, channels, service_levels
from connectors.http import HttpConnector, NextCursor, OAuth2ClientCredentials
from connectors.mapping import Code, Fee, FieldMapping, Identifier, Time, Value, text_only
from models.dossier import Status

# maThuTuc: Social Insurance's procedure codes -> national procedure codes (mã TTHC).
_PROCEDURE = {
    "601": "1.001234",  # Cấp lại sổ bảo hiểm xã hội
    "602": "1.002345",  # Giải quyết hưởng chế độ thai sản
    "603": "1.000401",  # Cấp lại thẻ bảo hiểm y tế
    "604": "1.003567",  # Đăng ký đóng bảo hiểm xã hội tự nguyện
    "605": "2.000765",  # Giải quyết hưởng trợ cấp ốm đau
    "606": "1.004890",  # Giải quyết hưởng lương hưu
    "607": "1.001991",  # Cấp bản sao thẻ bảo hiểm y tế
}
# maCoQuan: Social Insurance's office codes -> electronic agency ids (Decision 20/2020).
_AGENCY = {
    "56001": "000.00.15.H56",  # Bảo hiểm xã hội tỉnh
    "56101": "000.21.15.H56",  # Bảo hiểm xã hội cơ sở
    "56102": "000.22.15.H56",
    "56103": "000.23.15.H56",
}
_STATUS = {
    "choTiepNhan": Status.REGISTERED,
    "daTiepNhan": Status.ACCEPTED,
    "tuChoi": Status.NOT_ACCEPTED,
    "dangXuLy": Status.IN_PROGRESS,
    "yeuCauBoSung": Status.SUPPLEMENT_REQUESTED,
    "daRut": Status.WITHDRAWN,
    "dungXuLy": Status.STOPPED,
    "daCoKetQua": Status.RESOLVED,
    "daTraKetQua": Status.RESULT_RETURNED,
}
_CHANNEL = channels(in_person="trucTiep", online="dienTu", postal="buuChinh")
_SERVICE_LEVEL = service_levels(full="toanTrinh", partial="motPhan", not_online="khongTrucTuyen")
_APPLICANT = applicant_types(
    citizen="caNhan", enterprise="doanhNghiep", state_body="coQuanNhaNuoc", other="toChucKhac"
)
_INSURANCE_NUMBER = re.compile(r"[0-9]{10}")  # \d would take any script's digits


def _amount(value: Any) -> Any:
    """A fee as the API writes it: a JSON number, zero or more (a bool is not one)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < inf:
        return None
    return value


def _code(column: str, field: str, table: dict[str, Any], **options: Any) -> Code:
    """A Social Insurance code: only text is looked up (a JSON number is never a code)."""
    return Code(column, field, table, key=text_only, **options)


class SocialInsuranceConnector(HttpConnector):
    """The Social Insurance dossier API, one JSON object per dossier."""

    auth = OAuth2ClientCredentials(token_path="/oauth2/token")
    pagination = NextCursor(
        cursor_param="cursor", size_param="limit", next_cursor_path="nextCursor"
    )
    records_endpoint = "/api/v1/dossiers"
    records_path = "data"
    id_field = "id"
    updated_at_field = "ngayCapNhat"
    received_field = "ngayTiepNhan"
    updated_since_param = "updatedSince"
    max_page_size = 500
    count_endpoint = "/api/v1/dossiers/count"
    count_path = "total"
    count_from_param = "receivedFrom"
    count_to_param = "receivedTo"
    mapping: ClassVar[FieldMapping] = FieldMapping(
        Time("ngayNop", "submitted_at"),
        Time("ngayTiepNhan", "received_at", required=True),
        *Time.each(ngayHenTra="due_at", ngayCoKetQua="finished_at", ngayTraKetQua="returned_at"),
        Time("ngayCapNhat", "source_updated_at", required=True),
        Value("soHoSo", "dossier_code", required="no dossier number"),
        Value("maHoSoQuocGia", "national_dossier_code"),
        _code("maThuTuc", "procedure_code", _PROCEDURE),
        *Value.each(tenThuTuc="procedure_name", linhVuc="sector"),
        _code("maCoQuan", "agency_code", _AGENCY),
        Value("maDonViTiepNhan", "received_by"),
        Value("maDiaBan", "locality_code", convert=str),  # the model derives the admin level
        _code("trangThai", "status", _STATUS, raw_field="status_raw"),
        _code("kenhNop", "channel", _CHANNEL),
        _code("mucDo", "service_level", _SERVICE_LEVEL, optional=True),
        _code("loaiDoiTuong", "applicant_type", _APPLICANT, optional=True),
        Identifier("maSoBhxh", _INSURANCE_NUMBER, "a 10-digit social insurance number"),
        # The model reads the flags (true/false, 1/0), so a word like "no" is not taken as true.
        Fee("lePhi", _amount, paid=Value("thanhToanTrucTuyen", "paid_online")),
        *Value.each(soGiayTo="docs_submitted", soGiayToSoHoa="docs_digitised"),
        Value("ketQuaDienTu", "result_digitised"),
        unknown="{column} {value!r} is not a Social Insurance code (known: {known}; new codes go "
        "in connectors/social_insurance.py)",
        times=HttpConnector.times_like(HttpConnector.time_example),
    )
