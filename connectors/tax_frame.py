"""The Tax mapping on whole columns: `TaxConnector.to_canonical` for the columnar sync.

Same code tables, same decisions as connectors/tax.py, on a page of tb_hoso as Arrow. A row
this mapping is unsure of gets `mapped_ok` False and goes through `to_canonical`, which
gives the exact reasons; tests/models/test_frame_equivalence.py holds the two equal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from connectors import frames
from connectors.codes import TAX_CODE_OR_CITIZEN_ID
from connectors.tax import _CHANNEL, _SERVICE_LEVEL, _STATUS
from models.dossier import _APPLICANT_CODES, Status

if TYPE_CHECKING:
    import pyarrow as pa

    from connectors.tax import TaxConnector


def tax_frame(connector: TaxConnector, table: pa.Table) -> pl.DataFrame:
    native = pl.from_arrow(table)
    assert isinstance(native, pl.DataFrame)
    c = pl.col
    status, status_known = frames.coded("TRANG_THAI", _STATUS, required=True)
    channel, channel_known = frames.coded("KENH_NOP", _CHANNEL, required=True)
    level, level_known = frames.coded("MUC_DO", _SERVICE_LEVEL, required=False)
    applicant, applicant_known = frames.coded("LOAI_DT", _APPLICANT_CODES, required=False)
    key = frames.identifiers(connector, native.get_column("MST"), TAX_CODE_OR_CITIZEN_ID)
    fee = frames.per_distinct(native.get_column("LE_PHI"), frames.fee_of, pl.Boolean)
    frame = native.with_columns(
        applicant_key=key.get_column("value"),
        key_ok=key.get_column("ok"),
        has_fee=fee.get_column("value"),
        fee_ok=fee.get_column("ok"),
    )
    returned = c("NGAY_TRA").is_not_null() & (status == Status.RESULT_RETURNED.value)
    mapped = frame.select(
        source_system=pl.lit(connector.source, dtype=pl.String),
        source_id=c("ID").cast(pl.String),
        dossier_code=c("MA_HS").cast(pl.String),
        national_dossier_code=c("MA_HS_QG").cast(pl.String),
        procedure_code=c("MA_TTHC").cast(pl.String),
        procedure_name=c("TEN_TTHC").cast(pl.String),
        sector=c("LINH_VUC").cast(pl.String),
        agency_code=c("MA_CQ").cast(pl.String),
        locality_code=c("MA_DVHC").cast(pl.String),
        channel=channel,
        service_level=level,
        status=status,
        status_raw=c("TRANG_THAI").cast(pl.String),
        submitted_at=c("NGAY_NOP"),
        received_at=c("NGAY_NHAN"),
        due_at=c("NGAY_HEN_TRA"),
        finished_at=c("NGAY_TRA"),
        returned_at=pl.when(returned).then(c("NGAY_TRA")),
        applicant_type=applicant,
        applicant_key=c("applicant_key"),
        has_fee=c("has_fee"),
        # Online payment only means something when there is a fee to pay.
        paid_online=pl.when(c("has_fee").fill_null(False) & c("NOP_PHI_TT").is_not_null()).then(
            c("NOP_PHI_TT") != 0
        ),
        docs_submitted=c("SO_TP"),
        docs_digitised=c("SO_TP_SO_HOA"),
        result_digitised=c("KQ_SO_HOA") != 0,
        source_updated_at=c("NGAY_CAP_NHAT"),
        # A blank receipt code is refused by the model's cleaning and pattern; a missing
        # one, or one the mapping names, goes to the row path for its exact reason.
        mapped_ok=c("MA_HS").is_not_null()
        & c("NGAY_NHAN").is_not_null()
        & status_known
        & channel_known
        & level_known
        & applicant_known
        & c("key_ok")
        & c("fee_ok")
        & frames.plausible(native, "NGAY_CAP_NHAT", connector.horizon),
    )
    return frames.canonical(mapped)
