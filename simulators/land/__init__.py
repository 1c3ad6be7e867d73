"""The Land registration office's reference database: native schema, seeded generator, faults.

The land registration office (Văn phòng Đăng ký đất đai) runs its own software on PostgreSQL
(SQLite works too, for quick tests). Its shape is its own, unlike Tax's:

* `ho_so_dang_ky`, one row per dossier: lower-case Vietnamese snake_case columns, text status
  codes ('TIEP_NHAN', 'DANG_XU_LY', 'CHO_BO_SUNG', 'TAM_DUNG', ...), a zero-based submission
  channel (0 at the counter, 1 online, 2 by post), the legacy service levels 2/3/4, 12-digit
  citizen IDs (or old 9-digit ID cards) in clear, and a change time with its time zone
  (`timestamptz` on PostgreSQL) while every other time is naive local time;
* `lich_su_xu_ly`, the append-only log of status changes. Land dossiers run long: they wait for
  supplements (CHO_BO_SUNG), are suspended (TAM_DUNG) for disputes or surveys, wait for the
  applicant's financial obligations, and go back to processing many times. While a dossier
  waits for a supplement or is suspended, its clock stops: the due date (ngay_hen_tra) moves
  on by the length of the interval.

Dossiers received at a one-stop centre and forwarded to Land (`simulators.scenario.forwarded`)
carry the centre's receipt code in `ma_ho_so_mot_cua` and the centre in `ma_don_vi_tiep_nhan`.

* `generate` rebuilds both tables from a seed (COPY on PostgreSQL) and can plant malformed rows,
  each with exactly one defect, returning the `Truth` about what it planted;
* `advance` moves dossiers through their next status steps the way the live system does;
* `repair` fixes malformed rows at the source, as an operator would.

Every change gets a change time past every other row, so an incremental sync must pick it up.
Nothing here knows the canonical record; translating is the job of `connectors/land.py`.

The package's modules: `schema` (the vocabulary and both tables), `defects` (the malformed
rows it plants), `generation` (`generate`, each dossier's walk through its statuses) and
`changes` (`advance`, `repair` and the reads of a dossier's status and history).
"""

from __future__ import annotations

from simulators.land.changes import Change, advance, history_of, repair, status_of
from simulators.land.defects import DEFECT_KINDS
from simulators.land.generation import Truth, generate
from simulators.land.schema import (
    AGENCIES,
    APPLICANT_TYPES,
    BRANCHES,
    CHANNELS,
    CHO_BO_SUNG,
    CHO_NGHIA_VU_TC,
    COLUMNS,
    DA_GIAI_QUYET,
    DA_TRA,
    DANG_XU_LY,
    END,
    HISTORY,
    HISTORY_COLUMNS,
    IN_PERSON,
    LEVEL_FULL,
    LEVEL_NONE,
    LEVEL_PARTIAL,
    NEXT_STEPS,
    ONLINE,
    OPEN,
    PAUSED,
    POSTAL,
    PROCEDURES,
    PROVINCE,
    PROVINCE_OFFICE,
    RUT_HO_SO,
    START,
    STATUSES,
    TABLE,
    TAM_DUNG,
    TIEP_NHAN,
    TU_CHOI,
    TWO_LEVEL_FROM,
    Procedure,
    create_schema,
    ho_so_dang_ky,
    lich_su_xu_ly,
    metadata,
)

__all__ = [
    "AGENCIES",
    "APPLICANT_TYPES",
    "BRANCHES",
    "CHANNELS",
    "CHO_BO_SUNG",
    "CHO_NGHIA_VU_TC",
    "COLUMNS",
    "DANG_XU_LY",
    "DA_GIAI_QUYET",
    "DA_TRA",
    "DEFECT_KINDS",
    "END",
    "HISTORY",
    "HISTORY_COLUMNS",
    "IN_PERSON",
    "LEVEL_FULL",
    "LEVEL_NONE",
    "LEVEL_PARTIAL",
    "NEXT_STEPS",
    "ONLINE",
    "OPEN",
    "PAUSED",
    "POSTAL",
    "PROCEDURES",
    "PROVINCE",
    "PROVINCE_OFFICE",
    "RUT_HO_SO",
    "START",
    "STATUSES",
    "TABLE",
    "TAM_DUNG",
    "TIEP_NHAN",
    "TU_CHOI",
    "TWO_LEVEL_FROM",
    "Change",
    "Procedure",
    "Truth",
    "advance",
    "create_schema",
    "generate",
    "history_of",
    "ho_so_dang_ky",
    "lich_su_xu_ly",
    "metadata",
    "repair",
    "status_of",
]
