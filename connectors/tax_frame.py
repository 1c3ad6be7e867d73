"""The Tax mapping on whole columns: `TaxConnector.to_canonical` for the columnar sync.

Same code tables, same decisions as connectors/tax.py, on a page of tb_hoso as Arrow. A row
this mapping is unsure of gets `mapped_ok` False and goes through `to_canonical`, which
gives the exact reasons; tests/models/test_frame_equivalence.py holds the two equal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from connectors.codes import TAX_CODE_OR_CITIZEN_ID
from connectors.frames import Coded, SqlFrame
from connectors.tax import _CHANNEL, _SERVICE_LEVEL, _STATUS
from models.dossier import _APPLICANT_CODES, Status

if TYPE_CHECKING:
    import pyarrow as pa

    from connectors.tax import TaxConnector

TB_HOSO = SqlFrame(
    status=("TRANG_THAI", _STATUS),
    channel=("KENH_NOP", _CHANNEL),
    service_level=("MUC_DO", _SERVICE_LEVEL),
    applicant_type=("LOAI_DT", _APPLICANT_CODES),
    identifier=("MST", TAX_CODE_OR_CITIZEN_ID),
    fee="LE_PHI",
    dossier_code="MA_HS",
    received_at="NGAY_NHAN",
    updated_at="NGAY_CAP_NHAT",
)


def _fields(coded: Coded) -> dict[str, pl.Expr]:
    c = pl.col
    returned = c("NGAY_TRA").is_not_null() & (coded.status == Status.RESULT_RETURNED.value)
    return {
        "source_id": c("ID").cast(pl.String),
        "dossier_code": c("MA_HS").cast(pl.String),
        "national_dossier_code": c("MA_HS_QG").cast(pl.String),
        "procedure_code": c("MA_TTHC").cast(pl.String),
        "procedure_name": c("TEN_TTHC").cast(pl.String),
        "sector": c("LINH_VUC").cast(pl.String),
        "agency_code": c("MA_CQ").cast(pl.String),
        "locality_code": c("MA_DVHC").cast(pl.String),
        "status_raw": c("TRANG_THAI").cast(pl.String),
        "submitted_at": c("NGAY_NOP"),
        "received_at": c("NGAY_NHAN"),
        "due_at": c("NGAY_HEN_TRA"),
        "finished_at": c("NGAY_TRA"),
        "returned_at": pl.when(returned).then(c("NGAY_TRA")),
        # Online payment only means something when there is a fee to pay.
        "paid_online": pl.when(c("has_fee").fill_null(False) & c("NOP_PHI_TT").is_not_null()).then(
            c("NOP_PHI_TT") != 0
        ),
        "docs_submitted": c("SO_TP"),
        "docs_digitised": c("SO_TP_SO_HOA"),
        "result_digitised": c("KQ_SO_HOA") != 0,
    }


def tax_frame(connector: TaxConnector, table: pa.Table) -> pl.DataFrame:
    return TB_HOSO.map(connector, table, _fields)
