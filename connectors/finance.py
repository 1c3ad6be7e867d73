"""Finance department: daily export files (CSV some days, XML others) in a drop folder.

Native quirks translated here: Vietnamese column names; `dd/MM/yyyy HH:mm:ss` local times and a
`dd/MM/yyyy` due date (HanXuLy: due any time that day); statuses, channels and yes/no written as
Vietnamese words (now and then decomposed or in upper case); legacy service levels 2/3/4 (MucDo);
fees with dot thousands separators ("1.250.000"); tax codes or citizen IDs (MaSoThue) hashed at
once. Files, completeness, manifest and bad lines are the transport's (`connectors/files.py`).

Version rule: NgayCapNhat, the row's last change in Finance's system, is the record's
`source_updated_at`. A corrected file re-issued for a past day repeats every row of that day;
only the rows Finance changed carry a later NgayCapNhat, so only they update the registry. A
SoHoSo repeated within one file loads from its row with the newest NgayCapNhat (the last of
equal ones); the transport skips its older rows.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from connectors.base import HASHED, RawRecord
from connectors.errors import Reason
from connectors.files import FileDropConnector
from models.dossier import ApplicantType, Channel, DossierRecord, ServiceLevel, Status


def _word(text: str) -> str:
    """Vietnamese words compared whatever their Unicode form, case or spacing."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


# TrangThai: Finance's status words.
_STATUS = {
    _word("Chờ tiếp nhận"): Status.REGISTERED,
    _word("Đã tiếp nhận"): Status.ACCEPTED,
    _word("Từ chối tiếp nhận"): Status.NOT_ACCEPTED,
    _word("Đang xử lý"): Status.IN_PROGRESS,
    _word("Chờ bổ sung"): Status.SUPPLEMENT_REQUESTED,
    _word("Chờ thực hiện nghĩa vụ tài chính"): Status.AWAITING_FINANCIAL_OBLIGATION,
    _word("Đã rút"): Status.WITHDRAWN,
    _word("Dừng xử lý"): Status.STOPPED,
    _word("Đã giải quyết"): Status.RESOLVED,
    _word("Đã trả kết quả"): Status.RESULT_RETURNED,
}
_CHANNEL = {
    _word("Trực tiếp"): Channel.IN_PERSON,
    _word("Trực tuyến"): Channel.ONLINE,
    _word("Bưu chính"): Channel.POSTAL,
}
# MucDo: the legacy levels of Decree 43/2011, mapped onto Decree 42/2022.
_SERVICE_LEVEL = {
    "4": ServiceLevel.FULL_ONLINE,
    "3": ServiceLevel.PARTIAL_ONLINE,
    "2": ServiceLevel.NOT_ONLINE,
    "1": ServiceLevel.NOT_ONLINE,
}
_YES_NO = {_word("Có"): True, _word("Không"): False, "1": True, "0": False}
# 10-digit tax code, 13-digit branch code (0101234567-001, dash optional), 12-digit citizen ID.
# ASCII digits only: `\d` would also take Arabic-Indic or other Unicode digits.
_TAX_ID = re.compile(r"\d{10}(?:-?\d{3})?|\d{12}", re.ASCII)
# "45.000", "1.250.000", "45000", with an optional decimal part after a comma.
_AMOUNT = re.compile(r"(\d{1,3}(?:\.\d{3})+|\d+)(?:,(\d+))?", re.ASCII)
_COUNT = re.compile(r"\d{1,9}", re.ASCII)  # a number of documents ("²".isdigit() is true)


def _unknown(field: str, column: str, value: str, known: dict[str, Any]) -> Reason:
    words = ", ".join(known)
    return Reason(field, "unknown_code", f"{column} {value!r} is not a Finance value ({words})")


class FinanceConnector(FileDropConnector):
    """The Finance department's daily exports of the dossiers received each day."""

    mapping_file = "connectors/finance.py"
    columns: ClassVar[tuple[str, ...]] = (
        "SoHoSo",
        "MaHoSoQuocGia",
        "MaThuTuc",
        "TenThuTuc",
        "LinhVuc",
        "DonViXuLy",
        "DonViTiepNhan",
        "MaDiaBan",
        "NgayNop",
        "NgayNhan",
        "HanXuLy",
        "NgayHoanThanh",
        "NgayTraKetQua",
        "HinhThucNop",
        "MucDo",
        "TrangThai",
        "LoaiDoiTuong",
        "MaSoThue",
        "PhiLePhi",
        "ThanhToanTrucTuyen",
        "SoGiayTo",
        "SoGiayToSoHoa",
        "KetQuaDienTu",
        "NgayCapNhat",
    )
    key_column = "SoHoSo"
    version_column = "NgayCapNhat"
    received_column = "NgayNhan"
    time_formats = ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y")
    csv_trailer = "#KETTHUC"
    xml_root, xml_record, xml_count = "DanhSachHoSo", "HoSo", "TongSo"
    personal_fields: ClassVar[dict[str, str]] = {"MaSoThue": "applicant_key"}

    def map_row(self, raw: RawRecord) -> DossierRecord:
        # Every value is text or None, straight from the file or back from quarantine.
        row = raw.payload
        problems: list[Reason] = []
        given = {
            "source_system": self.source,
            "source_id": raw.source_id,
            "dossier_code": row["SoHoSo"],
            "national_dossier_code": row["MaHoSoQuocGia"],
            "procedure_code": row["MaThuTuc"],
            "procedure_name": row["TenThuTuc"],
            "sector": row["LinhVuc"],
            "agency_code": row["DonViXuLy"],
            "received_by": row["DonViTiepNhan"],
        }
        fields: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
        if not (row["SoHoSo"] or "").strip():
            fields.pop("dossier_code", None)
            problems.append(Reason("dossier_code", "missing", "SoHoSo is blank: no receipt code"))

        def when(column: str, field: str, *, required: bool = False) -> datetime | None:
            value = row[column]
            if value is None or not value.strip():
                if required:
                    problems.append(Reason(field, "missing", f"{column} is empty"))
                return None
            try:
                moment = self.parse_time(value)
            except ValueError:
                problems.append(
                    Reason(
                        field,
                        "invalid_date",
                        f"{column} {value[:40]!r} is not a dd/MM/yyyy HH:mm:ss time",
                    )
                )
                return None
            fields[field] = moment
            return moment

        when("NgayNop", "submitted_at")
        when("NgayNhan", "received_at", required=True)
        due = when("HanXuLy", "due_at")
        if due is not None and ":" not in row["HanXuLy"]:
            # A due date, not a time: finishing any time that day is on time.
            fields["due_at"] = due.replace(hour=23, minute=59, second=59)
        when("NgayHoanThanh", "finished_at")
        when("NgayTraKetQua", "returned_at")
        when("NgayCapNhat", "source_updated_at", required=True)

        fields["locality_code"] = row["MaDiaBan"]  # the model derives the admin level

        native = row["TrangThai"]
        if native is not None and (status := _STATUS.get(_word(native))) is not None:
            fields["status"], fields["status_raw"] = status, native
        elif native is not None:
            problems.append(_unknown("status", "TrangThai", native, _STATUS))
        native = row["HinhThucNop"]
        if native is not None and (channel := _CHANNEL.get(_word(native))) is not None:
            fields["channel"] = channel
        elif native is not None:
            problems.append(_unknown("channel", "HinhThucNop", native, _CHANNEL))
        native = row["MucDo"]
        if native is not None:
            if (level := _SERVICE_LEVEL.get(native.strip())) is None:
                problems.append(_unknown("service_level", "MucDo", native, _SERVICE_LEVEL))
            else:
                fields["service_level"] = level
        native = row["LoaiDoiTuong"]
        if native is not None:
            try:
                # ASCII digits only: int() also reads "٢", "２" and "0_2" as 2.
                if not _COUNT.fullmatch(native.strip()):
                    raise ValueError(native)
                fields["applicant_type"] = ApplicantType.from_code(int(native))
            except (KeyError, ValueError):
                problems.append(
                    Reason("applicant_type", "unknown_code", f"LoaiDoiTuong {native!r} is not 1-4")
                )

        tax_code = (row["MaSoThue"] or "").strip()
        if tax_code.startswith(HASHED) or _TAX_ID.fullmatch(tax_code):
            fields["applicant_key"] = self.identifier_key(tax_code)
        elif tax_code:
            # The value is personal data: name its shape, never the value.
            problems.append(
                Reason(
                    "applicant_key",
                    "invalid_format",
                    f"MaSoThue ({len(tax_code)} characters) is not a 10-digit tax code, a "
                    "13-digit branch tax code (0101234567-001) or a 12-digit citizen ID",
                )
            )

        fee = row["PhiLePhi"]
        if fee is not None:
            if (amount := _AMOUNT.fullmatch(fee.strip())) is None:
                problems.append(
                    Reason("has_fee", "invalid_number", f"PhiLePhi {fee!r} is not an amount")
                )
            else:
                fields["has_fee"] = Decimal(amount.group(1).replace(".", "")) > 0
                paid = row["ThanhToanTrucTuyen"]
                # Online payment only means something when there is a fee to pay.
                if fields["has_fee"] and paid is not None:
                    if (paid_online := _YES_NO.get(_word(paid))) is None:
                        problems.append(
                            _unknown("paid_online", "ThanhToanTrucTuyen", paid, _YES_NO)
                        )
                    else:
                        fields["paid_online"] = paid_online
        for column, field in (("SoGiayTo", "docs_submitted"), ("SoGiayToSoHoa", "docs_digitised")):
            if (count := row[column]) is not None:
                if _COUNT.fullmatch(count.strip()):
                    fields[field] = int(count)
                else:
                    message = f"{column} {count!r} is not a number of documents"
                    problems.append(Reason(field, "invalid_number", message))
        native = row["KetQuaDienTu"]
        if native is not None:
            if (digitised := _YES_NO.get(_word(native))) is None:
                problems.append(_unknown("result_digitised", "KetQuaDienTu", native, _YES_NO))
            else:
                fields["result_digitised"] = digitised

        return self.build(fields, problems)
