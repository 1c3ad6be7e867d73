"""statistics overview rollup: the monthly rollup without agency, locality and procedure

Indicator queries that neither group nor filter by agency, locality or procedure (the
overall figures, by sector, channel, source, service level, admin level; the coverage
report) read this narrower table instead of summing 17 measures over every monthly row.
It is derived data, filled here by folding the monthly rollup, so no rebuild is needed.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# As in models/tables.py at this revision (a migration must not follow later edits there).
DIMENSIONS: dict[str, sa.types.TypeEngine[Any]] = {
    "in_portal": sa.Boolean(),
    "source_system": sa.String(length=64),
    "sector": sa.String(length=255),
    "admin_level": sa.String(length=16),
    "channel": sa.String(length=16),
    "service_level": sa.String(length=16),
}
MEASURES = (
    "received",
    "received_online",
    "received_full_online",
    "with_fee",
    "paid_online",
    "digitised",
    "resolved",
    "resolved_early",
    "resolved_on_time",
    "resolved_late",
    "result_digitised",
    "refused_intake",
    "withdrawn",
    "stopped",
    "service_level_reported",
    "digitisation_reported",
    "result_digitisation_reported",
)


def upgrade() -> None:
    op.create_table(
        "stats_monthly_overview",
        sa.Column("month", sa.Date(), nullable=False),
        *(sa.Column(name, kind, nullable=False) for name, kind in DIMENSIONS.items()),
        *(sa.Column(name, sa.Integer(), server_default="0", nullable=False) for name in MEASURES),
        sa.PrimaryKeyConstraint("month", *DIMENSIONS, name=op.f("pk_stats_monthly_overview")),
    )
    keys = ", ".join(["month", *DIMENSIONS])
    sums = ", ".join(f"sum({name})" for name in MEASURES)
    op.execute(
        f"INSERT INTO stats_monthly_overview ({keys}, {', '.join(MEASURES)}) "  # noqa: S608 - fixed column names
        f"SELECT {keys}, {sums} FROM stats_monthly GROUP BY {keys}"
    )


def downgrade() -> None:
    op.drop_table("stats_monthly_overview")
