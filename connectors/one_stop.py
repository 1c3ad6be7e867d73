"""The provincial one-stop portal: its REST API, an API key, page-number pagination.

Native quirks translated here: PascalCase Vietnamese field names; `yyyyMMddHHmmss` naive
local times, with "" for a time not set; the shared channel codes (KenhThucHien 1, 2, 3),
the legacy service levels (MucDo 4, 3, 2) and the ten shared status codes as strings;
province-localised procedure codes (2.000908.000.00.00.H56, reduced by the model); the
applicant's citizen ID or tax code (SoGiayToChuHoSo), hashed at once. MaHoSo, the receipt
code the centre printed, is the code the national portal and the sector systems know a
forwarded dossier by, so it links the portal's record to the sector's.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from connectors.base import HASHED, RawRecord
from connectors.errors import Reason
from connectors.http import ApiKey, HttpConnector, PageNumber
from models.dossier import ApplicantType, Channel, DossierRecord, ServiceLevel, Status

# MucDo: the legacy levels 4 (toàn trình), 3 (một phần), 2 (not online) — Decree 42/2022.
_SERVICE_LEVEL = {
    4: ServiceLevel.FULL_ONLINE,
    3: ServiceLevel.PARTIAL_ONLINE,
    2: ServiceLevel.NOT_ONLINE,
}
# 12-digit citizen ID, old 9-digit ID card, 10-digit tax code (13 with a branch suffix).
_HOLDER_ID = re.compile(r"[0-9]{12}|[0-9]{9}|[0-9]{10}(?:-?[0-9]{3})?")  # ASCII digits only


def _unknown(field: str, native: str, value: Any, known: str) -> Reason:
    return Reason(
        field, "unknown_code", f"{native} {value!r} is not a portal code (known: {known})"
    )


def _number(value: Any) -> int | None:
    """A whole number the portal wrote as a number or as digits; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    # isdigit() alone would take "²" (which int() refuses) and other scripts' digits.
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value)
    return None


class OneStopConnector(HttpConnector):
    """The portal's dossier API, one JSON object per dossier."""

    mapping_file = "connectors/one_stop.py"
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
    personal_fields: ClassVar[dict[str, str]] = {"SoGiayToChuHoSo": "applicant_key"}

    def to_canonical(self, raw: RawRecord) -> DossierRecord:
        # The payload is the API's JSON, straight from a page or back from quarantine.
        row = raw.payload
        problems: list[Reason] = []
        fields: dict[str, Any] = {
            "source_system": self.source,
            "source_id": raw.source_id,
            "procedure_code": row.get("MaTTHC"),
            "procedure_name": row.get("TenTTHC"),
            "sector": row.get("LinhVuc"),
            "agency_code": row.get("MaCoQuan"),
            "received_by": row.get("MaNoiTiepNhan"),
            "docs_submitted": row.get("SoThanhPhan"),
            "docs_digitised": row.get("SoThanhPhanSoHoa"),
        }
        self.map_time(row, "NgayNop", "submitted_at", fields, problems)
        self.map_time(row, "NgayTiepNhan", "received_at", fields, problems, required=True)
        self.map_time(row, "NgayHenTra", "due_at", fields, problems)
        self.map_time(row, "NgayKetThuc", "finished_at", fields, problems)
        self.map_time(row, "NgayTraKetQua", "returned_at", fields, problems)
        self.map_time(row, "NgayCapNhat", "source_updated_at", fields, problems, required=True)

        code = row.get("MaHoSo")
        if code is None or not str(code).strip():
            problems.append(Reason("dossier_code", "missing", "MaHoSo is blank: no receipt code"))
        else:
            fields["dossier_code"] = code

        locality = row.get("MaDonVi")  # the model derives the admin level from its length
        fields["locality_code"] = None if locality is None else str(locality)

        native = row.get("TrangThaiHoSo")
        code_number = _number(native)
        if code_number is None or not 1 <= code_number <= 10:
            problems.append(_unknown("status", "TrangThaiHoSo", native, "1-10"))
        else:
            fields["status"], fields["status_raw"] = Status(code_number), str(native)
        native = row.get("KenhThucHien")
        if (code_number := _number(native)) not in (1, 2, 3):
            problems.append(_unknown("channel", "KenhThucHien", native, "1, 2, 3"))
        else:
            fields["channel"] = Channel.from_code(code_number)
        native = row.get("MucDo")
        if native is not None and native != "":
            if (level := _SERVICE_LEVEL.get(_number(native) or 0)) is None:
                problems.append(_unknown("service_level", "MucDo", native, "2, 3, 4"))
            else:
                fields["service_level"] = level
        native = row.get("LoaiDoiTuong")
        if native is not None and native != "":
            if (code_number := _number(native)) not in (1, 2, 3, 4):
                problems.append(_unknown("applicant_type", "LoaiDoiTuong", native, "1-4"))
            else:
                fields["applicant_type"] = ApplicantType.from_code(code_number)

        holder = row.get("SoGiayToChuHoSo")
        if holder is not None and (holder := str(holder).strip()):
            if holder.startswith(HASHED) or _HOLDER_ID.fullmatch(holder):
                fields["applicant_key"] = self.identifier_key(holder)
            else:
                # The value is personal data: name its shape, never the value.
                problems.append(
                    Reason(
                        "applicant_key",
                        "invalid_format",
                        f"SoGiayToChuHoSo ({len(holder)} characters) is not a 12-digit citizen "
                        "ID, a 9-digit ID card number or a tax code",
                    )
                )

        fee = _number(row.get("LePhi"))
        if row.get("LePhi") not in (None, "") and (fee is None or fee < 0):
            problems.append(
                Reason("has_fee", "invalid_number", f"LePhi {row['LePhi']!r} is not an amount")
            )
        elif fee is not None:
            fields["has_fee"] = fee > 0
            # Online payment only means something when there is a fee to pay. The model reads
            # the 0/1 flags, so "0" or 2 are not taken as true.
            if fee > 0 and row.get("ThanhToanTrucTuyen") not in (None, ""):
                fields["paid_online"] = row["ThanhToanTrucTuyen"]
        if row.get("KetQuaDienTu") not in (None, ""):
            fields["result_digitised"] = row["KetQuaDienTu"]

        return self.build(fields, problems)
