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

from connectors.base import HASHED, RawRecord
from connectors.errors import Reason
from connectors.http import HttpConnector, NextCursor, OAuth2ClientCredentials
from models.dossier import ApplicantType, Channel, DossierRecord, ServiceLevel, Status

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
_CHANNEL = {"trucTiep": Channel.IN_PERSON, "dienTu": Channel.ONLINE, "buuChinh": Channel.POSTAL}
_SERVICE_LEVEL = {
    "toanTrinh": ServiceLevel.FULL_ONLINE,
    "motPhan": ServiceLevel.PARTIAL_ONLINE,
    "khongTrucTuyen": ServiceLevel.NOT_ONLINE,
}
_APPLICANT = {
    "caNhan": ApplicantType.CITIZEN,
    "doanhNghiep": ApplicantType.ENTERPRISE,
    "coQuanNhaNuoc": ApplicantType.STATE_BODY,
    "toChucKhac": ApplicantType.OTHER_ORGANISATION,
}
_INSURANCE_NUMBER = re.compile(r"[0-9]{10}")  # \d would take any script's digits


def _code(table: dict[str, Any], value: Any) -> Any:
    """The translation of a native code; None for an unknown one (or a non-text value)."""
    return table.get(value) if isinstance(value, str) else None


def _unknown(field: str, native: str, value: Any, known: dict[str, Any]) -> Reason:
    listed = ", ".join(known)
    return Reason(
        field,
        "unknown_code",
        f"{native} {value!r} is not a Social Insurance code (known: {listed}; new codes go "
        "in connectors/social_insurance.py)",
    )


class SocialInsuranceConnector(HttpConnector):
    """The Social Insurance dossier API, one JSON object per dossier."""

    mapping_file = "connectors/social_insurance.py"
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
    personal_fields: ClassVar[dict[str, str]] = {"maSoBhxh": "applicant_key"}

    def to_canonical(self, raw: RawRecord) -> DossierRecord:
        # The payload is the API's JSON, straight from a page or back from quarantine.
        row = raw.payload
        problems: list[Reason] = []
        fields: dict[str, Any] = {
            "source_system": self.source,
            "source_id": raw.source_id,
            "national_dossier_code": row.get("maHoSoQuocGia"),
            "procedure_name": row.get("tenThuTuc"),
            "sector": row.get("linhVuc"),
            "received_by": row.get("maDonViTiepNhan"),
            "docs_submitted": row.get("soGiayTo"),
            "docs_digitised": row.get("soGiayToSoHoa"),
            "result_digitised": row.get("ketQuaDienTu"),
        }
        self.map_time(row, "ngayNop", "submitted_at", fields, problems)
        self.map_time(row, "ngayTiepNhan", "received_at", fields, problems, required=True)
        self.map_time(row, "ngayHenTra", "due_at", fields, problems)
        self.map_time(row, "ngayCoKetQua", "finished_at", fields, problems)
        self.map_time(row, "ngayTraKetQua", "returned_at", fields, problems)
        self.map_time(row, "ngayCapNhat", "source_updated_at", fields, problems, required=True)

        number = row.get("soHoSo")
        if number is None or not str(number).strip():
            problems.append(Reason("dossier_code", "missing", "soHoSo is blank: no dossier number"))
        else:
            fields["dossier_code"] = number
        native = row.get("maThuTuc")
        if (procedure := _code(_PROCEDURE, native)) is None:
            problems.append(_unknown("procedure_code", "maThuTuc", native, _PROCEDURE))
        else:
            fields["procedure_code"] = procedure
        native = row.get("maCoQuan")
        if (agency := _code(_AGENCY, native)) is None:
            problems.append(_unknown("agency_code", "maCoQuan", native, _AGENCY))
        else:
            fields["agency_code"] = agency

        locality = row.get("maDiaBan")  # the model derives the admin level from its length
        fields["locality_code"] = None if locality is None else str(locality)

        native = row.get("trangThai")
        if (status := _code(_STATUS, native)) is None:
            problems.append(_unknown("status", "trangThai", native, _STATUS))
        else:
            fields["status"], fields["status_raw"] = status, native
        native = row.get("kenhNop")
        if (channel := _code(_CHANNEL, native)) is None:
            problems.append(_unknown("channel", "kenhNop", native, _CHANNEL))
        else:
            fields["channel"] = channel
        native = row.get("mucDo")
        if native is not None:
            if (level := _code(_SERVICE_LEVEL, native)) is None:
                problems.append(_unknown("service_level", "mucDo", native, _SERVICE_LEVEL))
            else:
                fields["service_level"] = level
        native = row.get("loaiDoiTuong")
        if native is not None:
            if (applicant := _code(_APPLICANT, native)) is None:
                problems.append(_unknown("applicant_type", "loaiDoiTuong", native, _APPLICANT))
            else:
                fields["applicant_type"] = applicant

        insurance_number = row.get("maSoBhxh")
        if insurance_number is not None and (insurance_number := str(insurance_number).strip()):
            if insurance_number.startswith(HASHED) or _INSURANCE_NUMBER.fullmatch(insurance_number):
                fields["applicant_key"] = self.identifier_key(insurance_number)
            else:
                # The value is personal data: name its shape, never the value.
                problems.append(
                    Reason(
                        "applicant_key",
                        "invalid_format",
                        f"maSoBhxh ({len(insurance_number)} characters) is not a 10-digit "
                        "social insurance number",
                    )
                )

        fee = row.get("lePhi")
        if fee is not None:
            if isinstance(fee, bool) or not isinstance(fee, int | float) or not 0 <= fee < inf:
                problems.append(
                    Reason("has_fee", "invalid_number", f"lePhi {fee!r} is not an amount")
                )
            else:
                fields["has_fee"] = fee > 0
                # Online payment only means something when there is a fee to pay; the model
                # reads the flag (true/false, 1/0), so a word like "no" is not taken as true.
                if fee > 0 and row.get("thanhToanTrucTuyen") is not None:
                    fields["paid_online"] = row["thanhToanTrucTuyen"]

        return self.build(fields, problems)
