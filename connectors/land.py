"""Land registration office: its dossier database (PostgreSQL), table ho_so_dang_ky.

Native quirks translated here: lower-case Vietnamese snake_case columns; Land's own text status
codes, among them two "clock stopped" intervals (CHO_BO_SUNG, TAM_DUNG) a dossier enters and
leaves many times; a zero-based channel code (0 counter, 1 online, 2 post) where KenhThucHien
counts from 1; the legacy service levels 2/3/4; 12-digit citizen IDs or old 9-digit ID cards
in clear, hashed at once; a change time with its zone (timestamptz) beside naive local times;
and, for dossiers received at a one-stop centre, the centre's receipt code (MaHoSoMotCua) in
`ma_ho_so_mot_cua`, which is the code the national portal knows them by.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from connectors.base import HASHED, RawRecord
from connectors.errors import Reason
from connectors.sql import SqlConnector
from models.dossier import ApplicantType, Channel, DossierRecord, ServiceLevel, Status

# trang_thai: the Land system's own status codes.
_STATUS = {
    "TIEP_NHAN": Status.ACCEPTED,  # đã tiếp nhận
    "TU_CHOI": Status.NOT_ACCEPTED,  # từ chối: does not qualify
    "DANG_XU_LY": Status.IN_PROGRESS,  # đang xử lý
    "CHO_BO_SUNG": Status.SUPPLEMENT_REQUESTED,  # chờ bổ sung hồ sơ
    "CHO_NGHIA_VU_TC": Status.AWAITING_FINANCIAL_OBLIGATION,  # chờ nghĩa vụ tài chính
    "RUT_HO_SO": Status.WITHDRAWN,  # người nộp rút hồ sơ
    # Tạm dừng is a suspension Land may lift; the shared list has only "stopped" for it,
    # and status_raw keeps the difference.
    "TAM_DUNG": Status.STOPPED,
    "DA_GIAI_QUYET": Status.RESOLVED,  # đã giải quyết, chưa trả
    "DA_TRA": Status.RESULT_RETURNED,  # đã trả kết quả
}
# hinh_thuc_nop counts from 0.
_CHANNEL = {0: Channel.IN_PERSON, 1: Channel.ONLINE, 2: Channel.POSTAL}
# muc_do_dvc: legacy levels 4 (toàn trình), 3 (một phần), 2 (not online) — Decree 42/2022.
_SERVICE_LEVEL = {
    4: ServiceLevel.FULL_ONLINE,
    3: ServiceLevel.PARTIAL_ONLINE,
    2: ServiceLevel.NOT_ONLINE,
}
_APPLICANT = {
    "CA_NHAN": ApplicantType.CITIZEN,
    "DOANH_NGHIEP": ApplicantType.ENTERPRISE,
    "CO_QUAN_NHA_NUOC": ApplicantType.STATE_BODY,
    "TO_CHUC_KHAC": ApplicantType.OTHER_ORGANISATION,
}
# 12-digit citizen ID (CCCD) or an old 9-digit ID card (CMND).
_CITIZEN_ID = re.compile(r"\d{12}|\d{9}")


def _unknown(field: str, column: str, value: Any, known: str) -> Reason:
    return Reason(field, "unknown_code", f"{column} {value!r} is not a Land code (known: {known})")


class LandConnector(SqlConnector):
    """The land registration office's ho_so_dang_ky table, one row per dossier."""

    mapping_file = "connectors/land.py"
    table_name = "ho_so_dang_ky"
    columns: ClassVar[tuple[str, ...]] = (
        "id",
        "ma_ho_so",
        "ma_ho_so_mot_cua",
        "ma_thu_tuc",
        "ten_thu_tuc",
        "linh_vuc",
        "ma_don_vi_xu_ly",
        "ma_don_vi_tiep_nhan",
        "ma_dvhc",
        "ngay_nop",
        "ngay_tiep_nhan",
        "ngay_hen_tra",
        "ngay_hoan_thanh",
        "ngay_tra_ket_qua",
        "hinh_thuc_nop",
        "muc_do_dvc",
        "trang_thai",
        "loai_nguoi_nop",
        "so_cccd",
        "le_phi",
        "thanh_toan_truc_tuyen",
        "so_giay_to",
        "so_giay_to_so_hoa",
        "ket_qua_so_hoa",
        "ngay_cap_nhat",
    )
    frame_mapping = "connectors.land_frame:land_frame"  # the columnar form of to_canonical
    personal_fields: ClassVar[dict[str, str]] = {"so_cccd": "applicant_key"}
    updated_at_column = "ngay_cap_nhat"
    key_column = "id"
    received_column = "ngay_tiep_nhan"

    def to_canonical(self, raw: RawRecord) -> DossierRecord:
        # The payload comes straight from the database or back from quarantine as JSON
        # (datetimes as ISO strings): both map the same. Naive times are local and pass
        # through; ngay_cap_nhat arrives zoned and the model converts it to UTC.
        row = raw.payload
        problems: list[Reason] = []
        fields: dict[str, Any] = {
            "source_system": self.source,
            "source_id": raw.source_id,
            "national_dossier_code": row["ma_ho_so_mot_cua"],
            "procedure_code": row["ma_thu_tuc"],
            "procedure_name": row["ten_thu_tuc"],
            "sector": row["linh_vuc"],
            "agency_code": row["ma_don_vi_xu_ly"],
            "received_by": row["ma_don_vi_tiep_nhan"],
            "submitted_at": row["ngay_nop"],
            "due_at": row["ngay_hen_tra"],
            "finished_at": row["ngay_hoan_thanh"],
            "returned_at": row["ngay_tra_ket_qua"],
            "docs_submitted": row["so_giay_to"],
            "docs_digitised": row["so_giay_to_so_hoa"],
            "source_updated_at": row["ngay_cap_nhat"],
        }

        code = row["ma_ho_so"]
        if code is None or not str(code).strip():
            problems.append(Reason("dossier_code", "missing", "ma_ho_so is blank: no receipt code"))
        else:
            fields["dossier_code"] = code
        if row["ngay_tiep_nhan"] is None:
            problems.append(
                Reason("received_at", "missing", "ngay_tiep_nhan is empty: no time of receipt")
            )
        else:
            fields["received_at"] = row["ngay_tiep_nhan"]

        locality = row["ma_dvhc"]  # the model derives the admin level from its length
        fields["locality_code"] = None if locality is None else str(locality)

        native = row["trang_thai"]
        if (status := _STATUS.get(native)) is None:
            problems.append(_unknown("status", "trang_thai", native, ", ".join(_STATUS)))
        else:
            fields["status"] = status
            fields["status_raw"] = native
        native = row["hinh_thuc_nop"]
        if (channel := _CHANNEL.get(native)) is None:
            problems.append(_unknown("channel", "hinh_thuc_nop", native, "0, 1, 2"))
        else:
            fields["channel"] = channel
        native = row["muc_do_dvc"]
        if native is not None:
            if (level := _SERVICE_LEVEL.get(native)) is None:
                problems.append(_unknown("service_level", "muc_do_dvc", native, "2, 3, 4"))
            else:
                fields["service_level"] = level
        native = row["loai_nguoi_nop"]
        if native is not None:
            if (applicant := _APPLICANT.get(native)) is None:
                known = ", ".join(_APPLICANT)
                problems.append(_unknown("applicant_type", "loai_nguoi_nop", native, known))
            else:
                fields["applicant_type"] = applicant

        citizen_id = row["so_cccd"]
        if citizen_id is not None and (citizen_id := str(citizen_id).strip()):
            if citizen_id.startswith(HASHED) or _CITIZEN_ID.fullmatch(citizen_id):
                fields["applicant_key"] = self.identifier_key(citizen_id)
            else:
                # The value is personal data: name its shape, never the value.
                problems.append(
                    Reason(
                        "applicant_key",
                        "invalid_format",
                        f"so_cccd ({len(citizen_id)} characters) is not a 12-digit citizen ID "
                        "or a 9-digit ID card number",
                    )
                )

        fee = row["le_phi"]
        if fee is not None:
            try:
                amount = Decimal(fee) if isinstance(fee, str) else fee
                has_fee = amount > 0
            except (InvalidOperation, TypeError):
                problems.append(
                    Reason("has_fee", "invalid_number", f"le_phi {fee!r} is not an amount")
                )
            else:
                fields["has_fee"] = has_fee
                # Online payment only means something when there is a fee to pay.
                if has_fee and row["thanh_toan_truc_tuyen"] is not None:
                    fields["paid_online"] = bool(row["thanh_toan_truc_tuyen"])
        if row["ket_qua_so_hoa"] is not None:
            fields["result_digitised"] = bool(row["ket_qua_so_hoa"])

        return self.build(fields, problems)
