"""Tax office: its dossier database (MariaDB in production, SQLite in the demo), table tb_hoso.

Native quirks translated here: upper-case column names; Tax's own numeric status codes and
string channel / service-level codes; tax codes (MST) or citizen IDs as applicant identifiers,
hashed at once; one completion time (NGAY_TRA) standing for both resolution and hand-over.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from connectors.base import HASHED, RawRecord
from connectors.errors import Reason
from connectors.sql import SqlConnector
from models.dossier import ApplicantType, Channel, DossierRecord, ServiceLevel, Status

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
_CHANNEL = {
    "TRUC_TIEP": Channel.IN_PERSON,
    "TRUC_TUYEN": Channel.ONLINE,
    "BUU_CHINH": Channel.POSTAL,
}
_SERVICE_LEVEL = {
    "TOAN_TRINH": ServiceLevel.FULL_ONLINE,
    "MOT_PHAN": ServiceLevel.PARTIAL_ONLINE,
    "KHONG": ServiceLevel.NOT_ONLINE,
}
# 10-digit tax code, 13-digit branch code (0101234567-001, dash optional), 12-digit citizen ID.
_TAX_ID = re.compile(r"\d{10}(?:-?\d{3})?|\d{12}")


def _unknown(field: str, column: str, value: Any, known: str) -> Reason:
    return Reason(field, "unknown_code", f"{column} {value!r} is not a Tax code (known: {known})")


class TaxConnector(SqlConnector):
    """The Tax office's tb_hoso table, one row per dossier."""

    mapping_file = "connectors/tax.py"
    table_name = "tb_hoso"
    columns: ClassVar[tuple[str, ...]] = (
        "ID",
        "MA_HS",
        "MA_HS_QG",
        "MA_TTHC",
        "TEN_TTHC",
        "LINH_VUC",
        "MA_CQ",
        "MA_DVHC",
        "NGAY_NOP",
        "NGAY_NHAN",
        "NGAY_HEN_TRA",
        "NGAY_TRA",
        "KENH_NOP",
        "MUC_DO",
        "TRANG_THAI",
        "LOAI_DT",
        "MST",
        "LE_PHI",
        "NOP_PHI_TT",
        "SO_TP",
        "SO_TP_SO_HOA",
        "KQ_SO_HOA",
        "NGAY_CAP_NHAT",
    )
    frame_mapping = "connectors.tax_frame:tax_frame"  # the columnar form of to_canonical
    personal_fields: ClassVar[dict[str, str]] = {"MST": "applicant_key"}
    updated_at_column = "NGAY_CAP_NHAT"
    key_column = "ID"
    received_column = "NGAY_NHAN"

    def to_canonical(self, raw: RawRecord) -> DossierRecord:
        # The payload may come straight from the database or back from quarantine as JSON
        # (datetimes as ISO strings, decimals as strings): both must map the same. Naive
        # local times pass through; the model reads them as Asia/Ho_Chi_Minh.
        row = raw.payload
        problems: list[Reason] = []
        fields: dict[str, Any] = {
            "source_system": self.source,
            "source_id": raw.source_id,
            "national_dossier_code": row["MA_HS_QG"],
            "procedure_code": row["MA_TTHC"],
            "procedure_name": row["TEN_TTHC"],
            "sector": row["LINH_VUC"],
            "agency_code": row["MA_CQ"],
            "submitted_at": row["NGAY_NOP"],
            "due_at": row["NGAY_HEN_TRA"],
            "docs_submitted": row["SO_TP"],
            "docs_digitised": row["SO_TP_SO_HOA"],
            "source_updated_at": row["NGAY_CAP_NHAT"],
        }

        code = row["MA_HS"]
        if code is None or not str(code).strip():
            problems.append(Reason("dossier_code", "missing", "MA_HS is blank: no receipt code"))
        else:
            fields["dossier_code"] = code
        if row["NGAY_NHAN"] is None:
            problems.append(
                Reason("received_at", "missing", "NGAY_NHAN is empty: no time of receipt")
            )
        else:
            fields["received_at"] = row["NGAY_NHAN"]

        locality = row["MA_DVHC"]  # the model derives the admin level from its length
        fields["locality_code"] = None if locality is None else str(locality)

        native = row["TRANG_THAI"]
        status = _STATUS.get(native)
        if status is None:
            problems.append(_unknown("status", "TRANG_THAI", native, "0-9"))
        else:
            fields["status"] = status
            fields["status_raw"] = str(native)
        # Tax records one completion time: when the result was issued, and for a returned
        # dossier also when it was handed over.
        if row["NGAY_TRA"] is not None:
            fields["finished_at"] = row["NGAY_TRA"]
            if status is Status.RESULT_RETURNED:
                fields["returned_at"] = row["NGAY_TRA"]

        native = row["KENH_NOP"]
        if (channel := _CHANNEL.get(native)) is None:
            problems.append(_unknown("channel", "KENH_NOP", native, ", ".join(_CHANNEL)))
        else:
            fields["channel"] = channel
        native = row["MUC_DO"]
        if native is not None:
            if (level := _SERVICE_LEVEL.get(native)) is None:
                known = ", ".join(_SERVICE_LEVEL)
                problems.append(_unknown("service_level", "MUC_DO", native, known))
            else:
                fields["service_level"] = level
        native = row["LOAI_DT"]
        if native is not None:
            try:
                fields["applicant_type"] = ApplicantType.from_code(native)
            except (KeyError, TypeError):
                problems.append(_unknown("applicant_type", "LOAI_DT", native, "1-4"))

        tax_code = row["MST"]
        if tax_code is not None and (tax_code := str(tax_code).strip()):
            if tax_code.startswith(HASHED) or _TAX_ID.fullmatch(tax_code):
                fields["applicant_key"] = self.identifier_key(tax_code)
            else:
                # The value is personal data: name its shape, never the value.
                problems.append(
                    Reason(
                        "applicant_key",
                        "invalid_format",
                        f"MST ({len(tax_code)} characters) is not a 10-digit tax code, a "
                        "13-digit branch tax code (0101234567-001) or a 12-digit citizen ID",
                    )
                )

        fee = row["LE_PHI"]
        if fee is not None:
            try:
                has_fee = Decimal(fee) > 0 if isinstance(fee, str) else fee > 0
            except (InvalidOperation, TypeError):
                problems.append(
                    Reason("has_fee", "invalid_number", f"LE_PHI {fee!r} is not an amount")
                )
            else:
                fields["has_fee"] = has_fee
                # Online payment only means something when there is a fee to pay.
                if has_fee and row["NOP_PHI_TT"] is not None:
                    fields["paid_online"] = bool(row["NOP_PHI_TT"])
        if row["KQ_SO_HOA"] is not None:
            fields["result_digitised"] = bool(row["KQ_SO_HOA"])

        return self.build(fields, problems)
