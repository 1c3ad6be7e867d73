"""statistics rules: refused/withdrawn/stopped apart, the authoritative member, field coverage,
unplaceable quarantine in reconciliation snapshots

Cases and rollups are derived data; the upgrade (and the downgrade) empties them and the
refresh watermark, so the next refresh rebuilds every case under the rules of this version.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

NEW_MEASURES = (
    "refused_intake",
    "withdrawn",
    "stopped",
    "service_level_reported",
    "digitisation_reported",
    "result_digitisation_reported",
)
ROLLUPS = ("stats_daily", "stats_monthly")


def _empty_derived() -> None:
    for table in ("stats_daily", "stats_monthly", "dossier_case", "stats_state"):
        op.execute(sa.text(f"DELETE FROM {table}"))  # noqa: S608 - fixed table names


def upgrade() -> None:
    _empty_derived()
    with op.batch_alter_table("dossier_case", schema=None) as batch_op:
        batch_op.add_column(sa.Column("authority_source", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("authority_id", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("ended_day", sa.Date(), nullable=True))
        batch_op.create_index(batch_op.f("ix_dossier_case_ended_day"), ["ended_day"], unique=False)
    with op.batch_alter_table("reconciliation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unplaceable", sa.Integer(), nullable=True))
    for table in ROLLUPS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name in NEW_MEASURES:
                batch_op.add_column(
                    sa.Column(name, sa.Integer(), server_default="0", nullable=False)
                )


def downgrade() -> None:
    _empty_derived()
    with op.batch_alter_table("reconciliation", schema=None) as batch_op:
        batch_op.drop_column("unplaceable")
    for table in ROLLUPS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name in reversed(NEW_MEASURES):
                batch_op.drop_column(name)
    with op.batch_alter_table("dossier_case", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dossier_case_ended_day"))
        batch_op.drop_column("ended_day")
        batch_op.drop_column("authority_id")
        batch_op.drop_column("authority_source")
