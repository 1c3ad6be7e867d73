"""initial registry schema

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dossier",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("source_system", sa.String(length=64), nullable=False),
        sa.Column("source_id", sa.String(length=128), nullable=False),
        sa.Column("dossier_code", sa.String(length=64), nullable=False),
        sa.Column("national_dossier_code", sa.String(length=64), nullable=True),
        sa.Column("procedure_code", sa.String(length=32), nullable=False),
        sa.Column("procedure_name", sa.Text(), nullable=True),
        sa.Column("sector", sa.String(length=255), nullable=True),
        sa.Column("agency_code", sa.String(length=64), nullable=False),
        sa.Column("received_by", sa.String(length=64), nullable=True),
        sa.Column("locality_code", sa.String(length=8), nullable=True),
        sa.Column("locality_version", sa.String(length=16), nullable=True),
        sa.Column("admin_level", sa.String(length=16), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("service_level", sa.String(length=16), nullable=True),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("status_raw", sa.String(length=64), nullable=True),
        sa.Column("submitted_at", models.tables.UtcDateTime(timezone=True), nullable=True),
        sa.Column("received_at", models.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("due_at", models.tables.UtcDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", models.tables.UtcDateTime(timezone=True), nullable=True),
        sa.Column("returned_at", models.tables.UtcDateTime(timezone=True), nullable=True),
        sa.Column("applicant_type", sa.String(length=24), nullable=True),
        sa.Column("applicant_key", sa.String(length=64), nullable=True),
        sa.Column("has_fee", sa.Boolean(), nullable=True),
        sa.Column("paid_online", sa.Boolean(), nullable=True),
        sa.Column("docs_submitted", sa.Integer(), nullable=True),
        sa.Column("docs_digitised", sa.Integer(), nullable=True),
        sa.Column("result_digitised", sa.Boolean(), nullable=True),
        sa.Column("source_updated_at", models.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("first_seen_at", models.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("last_changed_at", models.tables.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dossier")),
        sa.UniqueConstraint(
            "source_id", "source_system", name=op.f("uq_dossier_source_id_source_system")
        ),
    )
    with op.batch_alter_table("dossier", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dossier_dossier_code"), ["dossier_code"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_dossier_national_dossier_code"), ["national_dossier_code"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_dossier_received_at"), ["received_at"], unique=False)

    op.create_table(
        "dossier_event",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("source_system", sa.String(length=64), nullable=False),
        sa.Column("source_id", sa.String(length=128), nullable=False),
        sa.Column("status_from", sa.SmallInteger(), nullable=True),
        sa.Column("status_to", sa.SmallInteger(), nullable=False),
        sa.Column("status_raw", sa.String(length=64), nullable=True),
        sa.Column("changed_at", models.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dossier_event")),
    )
    with op.batch_alter_table("dossier_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dossier_event_source_system_source_id"),
            ["source_system", "source_id"],
            unique=False,
        )

    op.create_table(
        "quarantine",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("source_system", sa.String(length=64), nullable=False),
        sa.Column("source_id", sa.String(length=128), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=False),
        sa.Column("first_seen_at", models.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", models.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("seen_count", sa.Integer(), server_default="1", nullable=False),
        sa.Column("resolved", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("resolved_at", models.tables.UtcDateTime(timezone=True), nullable=True),
        sa.Column("run_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantine")),
        sa.UniqueConstraint(
            "source_id", "source_system", name=op.f("uq_quarantine_source_id_source_system")
        ),
    )
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_quarantine_source_system_resolved"),
            ["source_system", "resolved"],
            unique=False,
        )

    op.create_table(
        "source",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("connector", sa.String(length=128), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("registered_at", models.tables.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_source")),
    )
    op.create_table(
        "sync_lock",
        sa.Column("source_system", sa.String(length=64), nullable=False),
        sa.Column("partition", sa.String(length=64), server_default="", nullable=False),
        sa.Column("holder", sa.String(length=255), nullable=False),
        sa.Column("acquired_at", models.tables.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source_system", "partition", name=op.f("pk_sync_lock")),
    )
    op.create_table(
        "sync_run",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("source_system", sa.String(length=64), nullable=False),
        sa.Column("partition", sa.String(length=64), server_default="", nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("full_refresh", sa.Boolean(), nullable=False),
        sa.Column("started_at", models.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", models.tables.UtcDateTime(timezone=True), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("rows_read", sa.Integer(), server_default="0", nullable=False),
        sa.Column("inserted", sa.Integer(), server_default="0", nullable=False),
        sa.Column("updated", sa.Integer(), server_default="0", nullable=False),
        sa.Column("unchanged", sa.Integer(), server_default="0", nullable=False),
        sa.Column("quarantined", sa.Integer(), server_default="0", nullable=False),
        sa.Column("batches", sa.Integer(), server_default="0", nullable=False),
        sa.Column("cursor_before", sa.JSON(), nullable=True),
        sa.Column("cursor_after", sa.JSON(), nullable=True),
        sa.Column("holder", sa.String(length=255), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_run")),
    )
    with op.batch_alter_table("sync_run", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sync_run_source_system_started_at"),
            ["source_system", "started_at"],
            unique=False,
        )

    op.create_table(
        "sync_state",
        sa.Column("source_system", sa.String(length=64), nullable=False),
        sa.Column("partition", sa.String(length=64), server_default="", nullable=False),
        sa.Column("cursor", sa.JSON(), nullable=True),
        sa.Column("updated_at", models.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("source_system", "partition", name=op.f("pk_sync_state")),
    )


def downgrade() -> None:
    op.drop_table("sync_state")
    with op.batch_alter_table("sync_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_run_source_system_started_at"))

    op.drop_table("sync_run")
    op.drop_table("sync_lock")
    op.drop_table("source")
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quarantine_source_system_resolved"))

    op.drop_table("quarantine")
    with op.batch_alter_table("dossier_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dossier_event_source_system_source_id"))

    op.drop_table("dossier_event")
    with op.batch_alter_table("dossier", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dossier_received_at"))
        batch_op.drop_index(batch_op.f("ix_dossier_national_dossier_code"))
        batch_op.drop_index(batch_op.f("ix_dossier_dossier_code"))

    op.drop_table("dossier")
