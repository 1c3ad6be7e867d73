"""statistics change queue: stats_change replaces the watermark and stale_case

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04

The refresh used to take every dossier changed after a watermark; a batch committing late
(its transaction open while the refresh moved the watermark past its change time) was never
counted. Batches now queue the link keys they touch in their own transaction, and the
refresh consumes the queue. The queue is seeded with every dossier's link key and every key
still noted stale, so the first refresh after the upgrade re-checks every case.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.tables

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "stats_change",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("case_key", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stats_change")),
    )
    op.execute(
        "INSERT INTO stats_change (case_key) "
        "SELECT DISTINCT COALESCE(national_dossier_code, dossier_code) FROM dossier"
    )
    op.execute("INSERT INTO stats_change (case_key) SELECT case_key FROM stale_case")
    op.drop_table("stale_case")
    with op.batch_alter_table("stats_state", schema=None) as batch_op:
        batch_op.drop_column("watermark")


def downgrade() -> None:
    with op.batch_alter_table("stats_state", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("watermark", models.tables.UtcDateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "stale_case",
        sa.Column("case_key", sa.String(length=64), nullable=False),
        sa.Column("noted_at", models.tables.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("case_key", name=op.f("pk_stale_case")),
    )
    # Keys still queued are changes the statistics have not seen: the watermark refresh
    # rebuilds them as stale cases, and takes up from the newest change on.
    op.execute(
        "INSERT INTO stale_case (case_key, noted_at) "
        "SELECT case_key, CURRENT_TIMESTAMP FROM stats_change GROUP BY case_key"
    )
    op.execute("UPDATE stats_state SET watermark = (SELECT MAX(last_changed_at) FROM dossier)")
    op.drop_table("stats_change")
