"""The Land mapping on whole columns: `LandConnector.to_canonical` for the columnar sync.

Same code tables, same decisions as connectors/land.py, on a page of ho_so_dang_ky as Arrow.
A row this mapping is unsure of gets `mapped_ok` False and goes through `to_canonical`, which
gives the exact reasons; tests/models/test_frame_equivalence.py holds the two equal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from connectors.codes import LEGACY_SERVICE_LEVEL
from connectors.frames import Coded, SqlFrame
from connectors.land import _APPLICANT, _CHANNEL, _CITIZEN_ID, _STATUS

if TYPE_CHECKING:
    import pyarrow as pa

    from connectors.land import LandConnector

HO_SO_DANG_KY = SqlFrame(
    status=("trang_thai", _STATUS),
    channel=("hinh_thuc_nop", _CHANNEL),
    service_level=("muc_do_dvc", LEGACY_SERVICE_LEVEL),
    applicant_type=("loai_nguoi_nop", _APPLICANT),
    identifier=("so_cccd", _CITIZEN_ID),
    fee="le_phi",
    dossier_code="ma_ho_so",
    received_at="ngay_tiep_nhan",
    updated_at="ngay_cap_nhat",
)


def _fields(coded: Coded) -> dict[str, pl.Expr]:
    c = pl.col
    paid = c("thanh_toan_truc_tuyen")
    return {
        "source_id": c("id").cast(pl.String),
        "dossier_code": c("ma_ho_so").cast(pl.String),
        "national_dossier_code": c("ma_ho_so_mot_cua").cast(pl.String),
        "procedure_code": c("ma_thu_tuc").cast(pl.String),
        "procedure_name": c("ten_thu_tuc").cast(pl.String),
        "sector": c("linh_vuc").cast(pl.String),
        "agency_code": c("ma_don_vi_xu_ly").cast(pl.String),
        "received_by": c("ma_don_vi_tiep_nhan").cast(pl.String),
        "locality_code": c("ma_dvhc").cast(pl.String),
        "status_raw": c("trang_thai").cast(pl.String),
        "submitted_at": c("ngay_nop"),
        "received_at": c("ngay_tiep_nhan"),
        "due_at": c("ngay_hen_tra"),
        "finished_at": c("ngay_hoan_thanh"),
        "returned_at": c("ngay_tra_ket_qua"),
        # Online payment only means something when there is a fee to pay.
        "paid_online": pl.when(c("has_fee").fill_null(False) & paid.is_not_null()).then(
            paid.cast(pl.Boolean)
        ),
        "docs_submitted": c("so_giay_to"),
        "docs_digitised": c("so_giay_to_so_hoa"),
        "result_digitised": c("ket_qua_so_hoa").cast(pl.Boolean),
    }


def land_frame(connector: LandConnector, table: pa.Table) -> pl.DataFrame:
    return HO_SO_DANG_KY.map(connector, table, _fields)
