"""statistics: cases, daily and monthly rollups, reconciliation, API tokens

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_token",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=96), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=True),
        sa.Column("created_at", models.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", models.tables.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_token")),
        sa.UniqueConstraint("digest", name=op.f("uq_api_token_digest")),
    )
    op.create_table(
        "dossier_case",
        sa.Column("case_key", sa.String(length=64), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("in_portal", sa.Boolean(), nullable=False),
        sa.Column("first_source", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("service_level", sa.String(length=16), nullable=True),
        sa.Column("sector", sa.String(length=255), nullable=True),
        sa.Column("agency_code", sa.String(length=64), nullable=False),
        sa.Column("procedure_code", sa.String(length=32), nullable=False),
        sa.Column("locality_code", sa.String(length=8), nullable=True),
        sa.Column("admin_level", sa.String(length=16), nullable=True),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("received_at", models.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("received_day", sa.Date(), nullable=False),
        sa.Column("due_at", models.tables.UtcDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", models.tables.UtcDateTime(timezone=True), nullable=True),
        sa.Column("finished_day", sa.Date(), nullable=True),
        sa.Column("has_fee", sa.Boolean(), nullable=True),
        sa.Column("paid_online", sa.Boolean(), nullable=True),
        sa.Column("digitised", sa.Boolean(), nullable=True),
        sa.Column("result_digitised", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("case_key", name=op.f("pk_dossier_case")),
    )
    with op.batch_alter_table("dossier_case", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dossier_case_finished_day"), ["finished_day"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_dossier_case_received_day"), ["received_day"], unique=False
        )

    op.create_table(
        "reconciliation",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("source_system", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("source_count", sa.Integer(), nullable=True),
        sa.Column("registry_count", sa.Integer(), nullable=False),
        sa.Column("quarantined", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("taken_at", models.tables.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation")),
    )
    with op.batch_alter_table("reconciliation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reconciliation_source_system_period_taken_at"),
            ["source_system", "period", "taken_at"],
            unique=False,
        )

    op.create_table(
        "stats_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("in_portal", sa.Boolean(), nullable=False),
        sa.Column("source_system", sa.String(length=64), nullable=False),
        sa.Column("sector", sa.String(length=255), nullable=False),
        sa.Column("agency_code", sa.String(length=64), nullable=False),
        sa.Column("locality_code", sa.String(length=8), nullable=False),
        sa.Column("admin_level", sa.String(length=16), nullable=False),
        sa.Column("procedure_code", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("service_level", sa.String(length=16), nullable=False),
        sa.Column("received", sa.Integer(), server_default="0", nullable=False),
        sa.Column("received_online", sa.Integer(), server_default="0", nullable=False),
        sa.Column("received_full_online", sa.Integer(), server_default="0", nullable=False),
        sa.Column("with_fee", sa.Integer(), server_default="0", nullable=False),
        sa.Column("paid_online", sa.Integer(), server_default="0", nullable=False),
        sa.Column("digitised", sa.Integer(), server_default="0", nullable=False),
        sa.Column("resolved", sa.Integer(), server_default="0", nullable=False),
        sa.Column("resolved_early", sa.Integer(), server_default="0", nullable=False),
        sa.Column("resolved_on_time", sa.Integer(), server_default="0", nullable=False),
        sa.Column("resolved_late", sa.Integer(), server_default="0", nullable=False),
        sa.Column("result_digitised", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint(
            "day",
            "in_portal",
            "source_system",
            "sector",
            "agency_code",
            "locality_code",
            "admin_level",
            "procedure_code",
            "channel",
            "service_level",
            name=op.f("pk_stats_daily"),
        ),
    )
    with op.batch_alter_table("stats_daily", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stats_daily_month"), ["month"], unique=False)

    op.create_table(
        "stats_monthly",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("in_portal", sa.Boolean(), nullable=False),
        sa.Column("source_system", sa.String(length=64), nullable=False),
        sa.Column("sector", sa.String(length=255), nullable=False),
        sa.Column("agency_code", sa.String(length=64), nullable=False),
        sa.Column("locality_code", sa.String(length=8), nullable=False),
        sa.Column("admin_level", sa.String(length=16), nullable=False),
        sa.Column("procedure_code", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("service_level", sa.String(length=16), nullable=False),
        sa.Column("received", sa.Integer(), server_default="0", nullable=False),
        sa.Column("received_online", sa.Integer(), server_default="0", nullable=False),
        sa.Column("received_full_online", sa.Integer(), server_default="0", nullable=False),
        sa.Column("with_fee", sa.Integer(), server_default="0", nullable=False),
        sa.Column("paid_online", sa.Integer(), server_default="0", nullable=False),
        sa.Column("digitised", sa.Integer(), server_default="0", nullable=False),
        sa.Column("resolved", sa.Integer(), server_default="0", nullable=False),
        sa.Column("resolved_early", sa.Integer(), server_default="0", nullable=False),
        sa.Column("resolved_on_time", sa.Integer(), server_default="0", nullable=False),
        sa.Column("resolved_late", sa.Integer(), server_default="0", nullable=False),
        sa.Column("result_digitised", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint(
            "month",
            "in_portal",
            "source_system",
            "sector",
            "agency_code",
            "locality_code",
            "admin_level",
            "procedure_code",
            "channel",
            "service_level",
            name=op.f("pk_stats_monthly"),
        ),
    )
    op.create_table(
        "stats_state",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("watermark", models.tables.UtcDateTime(timezone=True), nullable=True),
        sa.Column("refreshed_at", models.tables.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_stats_state")),
    )


def downgrade() -> None:
    op.drop_table("stats_state")
    op.drop_table("stats_monthly")
    with op.batch_alter_table("stats_daily", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stats_daily_month"))

    op.drop_table("stats_daily")
    with op.batch_alter_table("reconciliation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reconciliation_source_system_period_taken_at"))

    op.drop_table("reconciliation")
    with op.batch_alter_table("dossier_case", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dossier_case_received_day"))
        batch_op.drop_index(batch_op.f("ix_dossier_case_finished_day"))

    op.drop_table("dossier_case")
    op.drop_table("api_token")
