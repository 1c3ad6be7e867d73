"""stale cases: link keys a dossier left, for the statistics refresh to rebuild

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.tables

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stale_case",
        sa.Column("case_key", sa.String(length=64), nullable=False),
        sa.Column("noted_at", models.tables.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("case_key", name=op.f("pk_stale_case")),
    )


def downgrade() -> None:
    op.drop_table("stale_case")
