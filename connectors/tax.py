"""Tax office: its dossier database (MariaDB in production, SQLite in the demo), table tb_hoso.

Native quirks translated here: upper-case column names; Tax's own numeric status codes and
string channel / service-level codes; tax codes (MST) or citizen IDs as applicant identifiers,
hashed at once; one completion time (NGAY_TRA) standing for both resolution and hand-over.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from connectors.base import RawRecord
from connectors.codes import SHARED_APPLICANT, channels, service_levels, tax_code_or_citizen_id
from connectors.mapping import Code, Fee, FieldMapping, Time, Value, decimal_amount
from connectors.sql import SqlConnector
from models.dossier import Status

if TYPE_CHECKING:
    import polars as pl

# TRANG_THAI: the Tax system's own status codes.
_STATUS = {
    0: Status.REGISTERED,  # chờ tiếp nhận
    1: Status.ACCEPTED,  # đã tiếp nhận
    2: Status.IN_PROGRESS,  # đang xử lý
    3: Status.SUPPLEMENT_REQUESTED,  # chờ bổ sung
    4: Status.AWAITING_FINANCIAL_OBLIGATION,  # chờ thực hiện nghĩa vụ tài chính
    5: Status.RESOLVED,  # đã giải quyết
    6: Status.RESULT_RETURNED,  # đã trả kết quả
    7: Status.NOT_ACCEPTED,  # từ chối tiếp nhận
    8: Status.WITHDRAWN,  # rút hồ sơ
    9: Status.STOPPED,  # dừng xử lý
}
_CHANNEL = channels(in_person="TRUC_TIEP", online="TRUC_TUYEN", postal="BUU_CHINH")
_SERVICE_LEVEL = service_levels(full="TOAN_TRINH", partial="MOT_PHAN", not_online="KHONG")


class TaxConnector(SqlConnector):
    """The Tax office's tb_hoso table, one row per dossier."""

    table_name = "tb_hoso"
    key_column = "ID"
    # LE_PHI is a Decimal from the database and text back from quarantine: decimal_amount
    # reads both.
    mapping: ClassVar[FieldMapping] = FieldMapping(
        Value("MA_HS", "dossier_code", required="no receipt code"),
        *Value.each(MA_HS_QG="national_dossier_code", MA_TTHC="procedure_code"),
        *Value.each(TEN_TTHC="procedure_name", LINH_VUC="sector", MA_CQ="agency_code"),
        Value("MA_DVHC", "locality_code", convert=str),  # the model derives the admin level
        Time("NGAY_NOP", "submitted_at"),
        Time("NGAY_NHAN", "received_at", required="no time of receipt"),
        *Time.each(NGAY_HEN_TRA="due_at", NGAY_CAP_NHAT="source_updated_at"),
        Code("TRANG_THAI", "status", _STATUS, known="0-9", raw_field="status_raw"),
        Code("KENH_NOP", "channel", _CHANNEL),
        Code("MUC_DO", "service_level", _SERVICE_LEVEL, optional=True),
        Code("LOAI_DT", "applicant_type", SHARED_APPLICANT, known="1-4", optional=True),
        tax_code_or_citizen_id("MST"),
        Fee("LE_PHI", decimal_amount, paid=Value("NOP_PHI_TT", "paid_online", convert=bool)),
        *Value.each(SO_TP="docs_submitted", SO_TP_SO_HOA="docs_digitised"),
        Value("KQ_SO_HOA", "result_digitised", convert=bool),
        Value("NGAY_TRA", "finished_at"),
        unknown="{column} {value!r} is not a Tax code (known: {known})",
    )

    def adjust(self, fields: dict[str, Any], raw: RawRecord) -> None:
        # Tax records one completion time: when the result was issued, and for a returned
        # dossier also when it was handed over.
        if fields["finished_at"] is not None and fields.get("status") is Status.RESULT_RETURNED:
            fields["returned_at"] = fields["finished_at"]

    def adjust_frame(self, fields: dict[str, pl.Expr]) -> None:
        import polars as pl

        returned = fields["status"] == Status.RESULT_RETURNED.value
        fields["returned_at"] = pl.when(returned).then(fields["finished_at"])
