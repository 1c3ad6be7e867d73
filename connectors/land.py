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
from typing import ClassVar

from connectors.codes import LEGACY_SERVICE_LEVEL, applicant_types, channels
from connectors.mapping import Code, Fee, FieldMapping, Identifier, Time, Value, decimal_amount
from connectors.sql import SqlConnector
from models.dossier import Status

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
_CHANNEL = channels(in_person=0, online=1, postal=2)
_APPLICANT = applicant_types(
    citizen="CA_NHAN",
    enterprise="DOANH_NGHIEP",
    state_body="CO_QUAN_NHA_NUOC",
    other="TO_CHUC_KHAC",
)
# 12-digit citizen ID (CCCD) or an old 9-digit ID card (CMND).
_CITIZEN_ID = re.compile(r"\d{12}|\d{9}")


class LandConnector(SqlConnector):
    """The land registration office's ho_so_dang_ky table, one row per dossier."""

    table_name = "ho_so_dang_ky"
    key_column = "id"
    # ngay_cap_nhat arrives zoned (timestamptz); the model converts it to UTC.
    mapping: ClassVar[FieldMapping] = FieldMapping(
        Value("ma_ho_so", "dossier_code", required="no receipt code"),
        *Value.each(ma_ho_so_mot_cua="national_dossier_code", ma_thu_tuc="procedure_code"),
        *Value.each(ten_thu_tuc="procedure_name", linh_vuc="sector", ma_don_vi_xu_ly="agency_code"),
        Value("ma_don_vi_tiep_nhan", "received_by"),
        Value("ma_dvhc", "locality_code", convert=str),  # the model derives the admin level
        Time("ngay_nop", "submitted_at"),
        Time("ngay_tiep_nhan", "received_at", required="no time of receipt"),
        *Time.each(
            ngay_hen_tra="due_at", ngay_hoan_thanh="finished_at", ngay_tra_ket_qua="returned_at"
        ),
        Time("ngay_cap_nhat", "source_updated_at"),
        Code("trang_thai", "status", _STATUS, raw_field="status_raw"),
        Code("hinh_thuc_nop", "channel", _CHANNEL),
        # muc_do_dvc: the legacy levels 4, 3, 2.
        Code("muc_do_dvc", "service_level", LEGACY_SERVICE_LEVEL, known="2, 3, 4", optional=True),
        Code("loai_nguoi_nop", "applicant_type", _APPLICANT, optional=True),
        Identifier("so_cccd", _CITIZEN_ID, "a 12-digit citizen ID or a 9-digit ID card number"),
        Fee(
            "le_phi",
            decimal_amount,
            paid=Value("thanh_toan_truc_tuyen", "paid_online", convert=bool),
        ),
        *Value.each(so_giay_to="docs_submitted", so_giay_to_so_hoa="docs_digitised"),
        Value("ket_qua_so_hoa", "result_digitised", convert=bool),
        unknown="{column} {value!r} is not a Land code (known: {known})",
    )
