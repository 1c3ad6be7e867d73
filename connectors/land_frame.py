"""The Land mapping on whole columns: `LandConnector.to_canonical` for the columnar sync.

Same code tables, same decisions as connectors/land.py, on a page of ho_so_dang_ky as Arrow.
A row this mapping is unsure of gets `mapped_ok` False and goes through `to_canonical`, which
gives the exact reasons; tests/models/test_frame_equivalence.py holds the two equal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from connectors import frames
from connectors.codes import LEGACY_SERVICE_LEVEL
from connectors.land import _APPLICANT, _CHANNEL, _CITIZEN_ID, _STATUS

if TYPE_CHECKING:
    import pyarrow as pa

    from connectors.land import LandConnector


def land_frame(connector: LandConnector, table: pa.Table) -> pl.DataFrame:
    native = pl.from_arrow(table)
    assert isinstance(native, pl.DataFrame)
    c = pl.col
    status, status_known = frames.coded("trang_thai", _STATUS, required=True)
    channel, channel_known = frames.coded("hinh_thuc_nop", _CHANNEL, required=True)
    level, level_known = frames.coded("muc_do_dvc", LEGACY_SERVICE_LEVEL, required=False)
    applicant, applicant_known = frames.coded("loai_nguoi_nop", _APPLICANT, required=False)
    key = frames.identifiers(connector, native.get_column("so_cccd"), _CITIZEN_ID)
    fee = frames.per_distinct(native.get_column("le_phi"), frames.fee_of, pl.Boolean)
    frame = native.with_columns(
        applicant_key=key.get_column("value"),
        key_ok=key.get_column("ok"),
        has_fee=fee.get_column("value"),
        fee_ok=fee.get_column("ok"),
    )
    mapped = frame.select(
        source_system=pl.lit(connector.source, dtype=pl.String),
        source_id=c("id").cast(pl.String),
        dossier_code=c("ma_ho_so").cast(pl.String),
        national_dossier_code=c("ma_ho_so_mot_cua").cast(pl.String),
        procedure_code=c("ma_thu_tuc").cast(pl.String),
        procedure_name=c("ten_thu_tuc").cast(pl.String),
        sector=c("linh_vuc").cast(pl.String),
        agency_code=c("ma_don_vi_xu_ly").cast(pl.String),
        received_by=c("ma_don_vi_tiep_nhan").cast(pl.String),
        locality_code=c("ma_dvhc").cast(pl.String),
        channel=channel,
        service_level=level,
        status=status,
        status_raw=c("trang_thai").cast(pl.String),
        submitted_at=c("ngay_nop"),
        received_at=c("ngay_tiep_nhan"),
        due_at=c("ngay_hen_tra"),
        finished_at=c("ngay_hoan_thanh"),
        returned_at=c("ngay_tra_ket_qua"),
        applicant_type=applicant,
        applicant_key=c("applicant_key"),
        has_fee=c("has_fee"),
        # Online payment only means something when there is a fee to pay.
        paid_online=pl.when(
            c("has_fee").fill_null(False) & c("thanh_toan_truc_tuyen").is_not_null()
        ).then(c("thanh_toan_truc_tuyen").cast(pl.Boolean)),
        docs_submitted=c("so_giay_to"),
        docs_digitised=c("so_giay_to_so_hoa"),
        result_digitised=c("ket_qua_so_hoa").cast(pl.Boolean),
        source_updated_at=c("ngay_cap_nhat"),
        # A blank receipt code is refused by the model's cleaning and pattern; a missing
        # one, or one the mapping names, goes to the row path for its exact reason.
        mapped_ok=c("ma_ho_so").is_not_null()
        & c("ngay_tiep_nhan").is_not_null()
        & status_known
        & channel_known
        & level_known
        & applicant_known
        & c("key_ok")
        & c("fee_ok")
        & frames.plausible(native, "ngay_cap_nhat", connector.horizon),
    )
    return frames.canonical(mapped)
