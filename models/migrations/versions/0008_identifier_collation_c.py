"""dossier identifier columns COLLATE "C" on PostgreSQL: byte-order index comparisons

The database's default collation (C.UTF-8, or a language locale) makes every btree comparison
on these columns call strcoll; "C" compares bytes, which makes the registry's own write (its
unique key and code indexes) cheaper per row. Only equality is ever asked of these columns
(lookups, linkage, API filters), which no deterministic collation changes; nothing orders
user-visible output by them. SQLite compares bytes already: nothing to do there.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

IDENTIFIERS = {
    "source_system": 64,
    "source_id": 128,
    "dossier_code": 64,
    "national_dossier_code": 64,
}


def _collate(collation: str | None) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, length in IDENTIFIERS.items():
        op.alter_column(
            "dossier",
            name,
            type_=sa.String(length, collation=collation),
            existing_nullable=name != "national_dossier_code",
        )


def upgrade() -> None:
    _collate("C")  # the indexes on these columns are rebuilt by PostgreSQL


def downgrade() -> None:
    _collate("default")
