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
from decimal import Decimal
from functools import partial
from typing import Any, ClassVar

from connectors.base import RawRecord
from connectors.codes import (
    LEGACY_SERVICE_LEVEL,
    SHARED_APPLICANT,
    channels,
    tax_code_or_citizen_id,
)
from connectors.files import FileDropConnector
from connectors.mapping import Code, Count, Fee, FieldMapping, Time, TimeText, Value, whole_number
from models.dossier import ServiceLevel, Status

# TrangThai: Finance's status words. Its words are compared folded (Code's `words`), so a
# decomposed, upper-case or oddly spaced one still reads.
_STATUS = {
    "Chờ tiếp nhận": Status.REGISTERED,
    "Đã tiếp nhận": Status.ACCEPTED,
    "Từ chối tiếp nhận": Status.NOT_ACCEPTED,
    "Đang xử lý": Status.IN_PROGRESS,
    "Chờ bổ sung": Status.SUPPLEMENT_REQUESTED,
    "Chờ thực hiện nghĩa vụ tài chính": Status.AWAITING_FINANCIAL_OBLIGATION,
    "Đã rút": Status.WITHDRAWN,
    "Dừng xử lý": Status.STOPPED,
    "Đã giải quyết": Status.RESOLVED,
    "Đã trả kết quả": Status.RESULT_RETURNED,
}
_CHANNEL = channels(in_person="Trực tiếp", online="Trực tuyến", postal="Bưu chính")
# MucDo: the legacy levels of Decree 43/2011 as text, level 1 too.
_SERVICE_LEVEL = {str(level): new for level, new in LEGACY_SERVICE_LEVEL.items()}
_SERVICE_LEVEL["1"] = ServiceLevel.NOT_ONLINE
_YES_NO = {"Có": True, "Không": False, "1": True, "0": False}
# "45.000", "1.250.000", "45000", with an optional decimal part after a comma.
_AMOUNT = re.compile(r"(\d{1,3}(?:\.\d{3})+|\d+)(?:,(\d+))?", re.ASCII)


def _amount(text: str) -> Decimal | None:
    """An amount as Finance writes it ("1.250.000"), None when it is not one."""
    amount = _AMOUNT.fullmatch(text.strip())
    return None if amount is None else Decimal(amount.group(1).replace(".", ""))


class FinanceConnector(FileDropConnector):
    """The Finance department's daily exports of the dossiers received each day."""

    columns: ClassVar[tuple[str, ...]] = (
        *("SoHoSo", "MaHoSoQuocGia", "MaThuTuc", "TenThuTuc", "LinhVuc", "DonViXuLy"),
        *("DonViTiepNhan", "MaDiaBan", "NgayNop", "NgayNhan", "HanXuLy", "NgayHoanThanh"),
        *("NgayTraKetQua", "HinhThucNop", "MucDo", "TrangThai", "LoaiDoiTuong", "MaSoThue"),
        *("PhiLePhi", "ThanhToanTrucTuyen", "SoGiayTo", "SoGiayToSoHoa", "KetQuaDienTu"),
        "NgayCapNhat",
    )
    key_column = "SoHoSo"
    version_column = "NgayCapNhat"
    received_column = "NgayNhan"
    time_formats = ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y")
    csv_trailer = "#KETTHUC"
    xml_root, xml_record, xml_count = "DanhSachHoSo", "HoSo", "TongSo"
    # Every value is text or None, straight from the file or back from quarantine.
    mapping: ClassVar[FieldMapping] = FieldMapping(
        Value("SoHoSo", "dossier_code", required="no receipt code"),
        *Value.each(MaHoSoQuocGia="national_dossier_code", MaThuTuc="procedure_code"),
        *Value.each(TenThuTuc="procedure_name", LinhVuc="sector", DonViXuLy="agency_code"),
        Value("DonViTiepNhan", "received_by"),
        Time("NgayNop", "submitted_at"),
        Time("NgayNhan", "received_at", required=True),
        *Time.each(HanXuLy="due_at", NgayHoanThanh="finished_at", NgayTraKetQua="returned_at"),
        Time("NgayCapNhat", "source_updated_at", required=True),
        Value("MaDiaBan", "locality_code"),  # the model derives the admin level
        Code("TrangThai", "status", _STATUS, words=True, optional=True, raw_field="status_raw"),
        Code("HinhThucNop", "channel", _CHANNEL, words=True, optional=True),
        Code("MucDo", "service_level", _SERVICE_LEVEL, key=str.strip, optional=True),
        # LoaiDoiTuong: the shared applicant codes, in ASCII digits ("²".isdigit() is true).
        Code(
            "LoaiDoiTuong",
            "applicant_type",
            SHARED_APPLICANT,
            key=partial(whole_number, max_digits=9),
            optional=True,
            message="{column} {value!r} is not 1-4",
        ),
        tax_code_or_citizen_id("MaSoThue"),
        Fee(
            "PhiLePhi",
            _amount,
            paid=Code("ThanhToanTrucTuyen", "paid_online", _YES_NO, words=True, optional=True),
        ),
        Count("SoGiayTo", "docs_submitted"),
        Count("SoGiayToSoHoa", "docs_digitised"),
        Code("KetQuaDienTu", "result_digitised", _YES_NO, words=True, optional=True),
        unknown="{column} {value!r} is not a Finance value ({known})",
        times=TimeText(FileDropConnector.parse_time, "invalid_date", "a dd/MM/yyyy HH:mm:ss time"),
        none_is_missing=True,
    )

    def adjust(self, fields: dict[str, Any], raw: RawRecord) -> None:
        if fields.get("due_at") is not None and ":" not in raw.payload["HanXuLy"]:
            # A due date, not a time: finishing any time that day is on time.
            fields["due_at"] = fields["due_at"].replace(hour=23, minute=59, second=59)
