"""The Tax office's reference database: its own native schema, a seeded generator and faults.

The Tax office keeps its dossiers in one table, `tb_hoso`, in the shape its own software chose:
upper-case Vietnamese column names, numeric status codes of its own, string channel and
service-level codes, naive local times, tax codes (MST) as applicant identifiers. Nothing here
knows the canonical record; translating is the job of `connectors/tax.py`.

* `generate` rebuilds the table from a seed: the same seed and arguments give the same rows on
  SQLite, MariaDB and PostgreSQL. It can plant malformed rows, each with exactly one defect the
  connector must reject with a specific reason, and returns the `Truth` about what it planted.
* `touch` and `repair` change rows the way the live system does (a dossier moves on; an
  operator fixes bad data at the source), always with a last-change time past every other row,
  so an incremental sync must pick them up.

The package's modules: `schema` (the vocabulary and `tb_hoso`), `defects` (the malformed
rows it plants), `generation` (`generate` and its row stream) and `changes` (`touch`, `repair`).
"""

from __future__ import annotations

from simulators.tax.changes import repair, status_of, touch
from simulators.tax.defects import DEFECT_KINDS
from simulators.tax.generation import Truth, generate
from simulators.tax.schema import (
    ACCEPTED,
    AGENCIES,
    APPLICANT_TYPES,
    AWAITING_PAYMENT,
    CHANNELS,
    COLUMNS,
    COMMUNES_THREE_LEVEL,
    COMMUNES_TWO_LEVEL,
    DISTRICTS,
    END,
    FULL,
    IN_PERSON,
    IN_PROGRESS,
    NEXT_STATUS,
    OFFLINE,
    ONLINE,
    PARTIAL,
    POSTAL,
    PROCEDURES,
    PROVINCE,
    PROVINCE_AGENCY,
    REFUSED,
    RESOLVED,
    RETURNED,
    SERVICE_LEVELS,
    START,
    STATUSES,
    STOPPED,
    SUPPLEMENT,
    TABLE,
    TEAM_AGENCIES,
    TWO_LEVEL_FROM,
    WAITING,
    WITHDRAWN,
    Procedure,
    create_schema,
    metadata,
    tb_hoso,
)

__all__ = [
    "ACCEPTED",
    "AGENCIES",
    "APPLICANT_TYPES",
    "AWAITING_PAYMENT",
    "CHANNELS",
    "COLUMNS",
    "COMMUNES_THREE_LEVEL",
    "COMMUNES_TWO_LEVEL",
    "DEFECT_KINDS",
    "DISTRICTS",
    "END",
    "FULL",
    "IN_PERSON",
    "IN_PROGRESS",
    "NEXT_STATUS",
    "OFFLINE",
    "ONLINE",
    "PARTIAL",
    "POSTAL",
    "PROCEDURES",
    "PROVINCE",
    "PROVINCE_AGENCY",
    "REFUSED",
    "RESOLVED",
    "RETURNED",
    "SERVICE_LEVELS",
    "START",
    "STATUSES",
    "STOPPED",
    "SUPPLEMENT",
    "TABLE",
    "TEAM_AGENCIES",
    "TWO_LEVEL_FROM",
    "WAITING",
    "WITHDRAWN",
    "Procedure",
    "Truth",
    "create_schema",
    "generate",
    "metadata",
    "repair",
    "status_of",
    "tb_hoso",
    "touch",
]
