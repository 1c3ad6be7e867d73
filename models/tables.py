"""Registry tables (SQLAlchemy Core): how the unified registry stores dossiers.

The schema runs on SQLite (the embedded default) and PostgreSQL. Migrations in
`models/migrations` create exactly these tables; a test compares the two.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored in UTC on every dialect.

    SQLite has no time zone type, so values are stored as naive UTC there and made
    aware again on the way out; PostgreSQL keeps `timestamptz`.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} cannot be stored")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


# SQLite only auto-increments an INTEGER PRIMARY KEY.
Id = BigInteger().with_variant(Integer(), "sqlite")


def identifier(length: int) -> Any:
    """A code or key column: compared byte by byte on PostgreSQL too (COLLATE "C"), as SQLite
    does, so its indexes cost no locale-aware comparisons; only equality is asked of it."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


# The canonical columns, in DossierRecord's field order; shared by the dossier table
# and the per-batch staging table the engine loads before one set-based upsert.
def canonical_columns() -> list[Column[Any]]:
    return [
        Column("source_system", identifier(64), nullable=False),
        Column("source_id", identifier(128), nullable=False),
        Column("dossier_code", identifier(64), nullable=False),
        Column("national_dossier_code", identifier(64)),
        Column("procedure_code", String(32), nullable=False),
        Column("procedure_name", Text),
        Column("sector", String(255)),
        Column("agency_code", String(64), nullable=False),
        Column("received_by", String(64)),
        Column("locality_code", String(8)),
        Column("locality_version", String(16)),
        Column("admin_level", String(16)),
        Column("channel", String(16), nullable=False),
        Column("service_level", String(16)),
        Column("status", SmallInteger, nullable=False),
        Column("status_raw", String(64)),
        Column("submitted_at", UtcDateTime),
        Column("received_at", UtcDateTime, nullable=False),
        Column("due_at", UtcDateTime),
        Column("finished_at", UtcDateTime),
        Column("returned_at", UtcDateTime),
        Column("applicant_type", String(24)),
        Column("applicant_key", String(64)),
        Column("has_fee", Boolean),
        Column("paid_online", Boolean),
        Column("docs_submitted", Integer),
        Column("docs_digitised", Integer),
        Column("result_digitised", Boolean),
        Column("source_updated_at", UtcDateTime, nullable=False),
    ]


CANONICAL_COLUMNS = tuple(column.name for column in canonical_columns())

dossier = Table(
    "dossier",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    *canonical_columns(),
    Column("first_seen_at", UtcDateTime, nullable=False),
    Column("last_changed_at", UtcDateTime, nullable=False),
    # source_id leads so that looking up a batch of ids (= ANY(array)) probes this index
    # whatever the planner believes about the table's size mid-load.
    UniqueConstraint("source_id", "source_system"),
    Index(None, "dossier_code"),
    Index(None, "national_dossier_code"),
    Index(None, "received_at"),
)

# Status history: one row per status a dossier was seen in, append-only.
dossier_event = Table(
    "dossier_event",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("source_system", String(64), nullable=False),
    Column("source_id", String(128), nullable=False),
    Column("status_from", SmallInteger),
    Column("status_to", SmallInteger, nullable=False),
    Column("status_raw", String(64)),
    Column("changed_at", UtcDateTime, nullable=False),
    Column("run_id", BigInteger),
    Index(None, "source_system", "source_id"),
)

source = Table(
    "source",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("connector", String(128), nullable=False),
    Column("description", Text),
    Column("registered_at", UtcDateTime, nullable=False),
)

sync_state = Table(
    "sync_state",
    metadata,
    Column("source_system", String(64), primary_key=True),
    Column("partition", String(64), primary_key=True, server_default=""),
    Column("cursor", JSON),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("run_id", BigInteger),
)

sync_run = Table(
    "sync_run",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("source_system", String(64), nullable=False),
    Column("partition", String(64), nullable=False, server_default=""),
    Column("status", String(16), nullable=False),  # running, succeeded, failed, abandoned
    Column("full_refresh", Boolean, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime),
    Column("duration_s", Float),
    Column("rows_read", Integer, nullable=False, server_default="0"),
    Column("inserted", Integer, nullable=False, server_default="0"),
    Column("updated", Integer, nullable=False, server_default="0"),
    Column("unchanged", Integer, nullable=False, server_default="0"),
    Column("quarantined", Integer, nullable=False, server_default="0"),
    Column("batches", Integer, nullable=False, server_default="0"),
    Column("cursor_before", JSON),
    Column("cursor_after", JSON),
    Column("holder", String(255)),
    Column("error", Text),
    Index(None, "source_system", "started_at"),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("source_system", String(64), nullable=False),
    Column("source_id", String(128), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("reasons", JSON, nullable=False),
    Column("reason", String(255), nullable=False),  # the first reason's key, for grouping
    Column("first_seen_at", UtcDateTime, nullable=False),
    Column("last_seen_at", UtcDateTime, nullable=False),
    Column("seen_count", Integer, nullable=False, server_default="1"),
    Column("resolved", Boolean, nullable=False, server_default=false()),
    Column("resolved_at", UtcDateTime),
    Column("run_id", BigInteger),
    # source_id leads so that looking up a batch of ids (= ANY(array)) probes this index
    # whatever the planner believes about the table's size mid-load.
    UniqueConstraint("source_id", "source_system"),
    Index(None, "source_system", "resolved"),
)

# The holder of each sync lock. On SQLite the row is the lock; on PostgreSQL an advisory
# lock is, and the row names its holder. `token` is drawn anew by each holder: every batch
# transaction checks it (and locks the row), so a sync whose lock was lost or taken over
# cannot commit another batch (fencing).
sync_lock = Table(
    "sync_lock",
    metadata,
    Column("source_system", String(64), primary_key=True),
    Column("partition", String(64), primary_key=True, server_default=""),
    Column("holder", String(255), nullable=False),
    Column("acquired_at", UtcDateTime, nullable=False),
    Column("token", BigInteger, nullable=False, server_default="0"),
)

# -- statistics ---------------------------------------------------------------------------
# One row per real dossier across systems (a dossier forwarded by a one-stop centre to a
# sector is one case). Its facts come from its members; see dossierhub/linkage.py.
dossier_case = Table(
    "dossier_case",
    metadata,
    Column("case_key", String(64), primary_key=True),
    Column("members", Integer, nullable=False),
    Column("in_portal", Boolean, nullable=False),
    Column("first_source", String(64), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("service_level", String(16)),
    Column("sector", String(255)),
    Column("agency_code", String(64), nullable=False),
    Column("procedure_code", String(32), nullable=False),
    Column("locality_code", String(8)),
    Column("admin_level", String(16)),
    Column("status", SmallInteger, nullable=False),
    # The member whose progress counts (the handling sector's copy of a forwarded dossier);
    # its status history answers "open as of" a past date.
    Column("authority_source", String(64)),
    Column("authority_id", String(128)),
    Column("received_at", UtcDateTime, nullable=False),
    Column("received_day", Date, nullable=False),  # local (Asia/Ho_Chi_Minh) date
    Column("due_at", UtcDateTime),
    Column("finished_at", UtcDateTime),  # resolution time: status 9 or 10 only
    Column("finished_day", Date),
    Column("ended_day", Date),  # withdrawn (7) or stopped (8): the day it ended
    Column("has_fee", Boolean),
    Column("paid_online", Boolean),
    Column("digitised", Boolean),  # documents submitted were digitised
    Column("result_digitised", Boolean),
    Index(None, "received_day"),
    Index(None, "finished_day"),
    Index(None, "ended_day"),
)

# Rollups of cases, maintained for the days a sync touched: an indicator query reads
# O(groups x periods) rows here instead of scanning dossiers. Received counts sit on the
# receipt day, resolution counts on the finishing day. The monthly table folds the daily one;
# whole-month periods (months, quarters, years) read it, day-level series read the daily one.
ROLLUP_DIMENSIONS = (
    "in_portal",
    "source_system",
    "sector",
    "agency_code",
    "locality_code",
    "admin_level",
    "procedure_code",
    "channel",
    "service_level",
)
ROLLUP_MEASURES = (
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
    # Refused at intake (status 3): never received, counted apart on its receipt day.
    "refused_intake",
    # Closed without a result, on the day they ended.
    "withdrawn",
    "stopped",
    # How many cases carry an optional field a source may not provide (coverage).
    "service_level_reported",
    "digitisation_reported",
    "result_digitisation_reported",
)


def _rollup_columns(dimensions: tuple[str, ...] = ROLLUP_DIMENSIONS) -> list[Column[Any]]:
    kinds: dict[str, Any] = {
        "in_portal": Boolean,
        "source_system": String(64),
        "sector": String(255),
        "agency_code": String(64),
        "locality_code": String(8),
        "admin_level": String(16),
        "procedure_code": String(32),
        "channel": String(16),
        "service_level": String(16),
    }
    return [
        *(Column(name, kinds[name], primary_key=True) for name in dimensions),
        *(Column(name, Integer, nullable=False, server_default="0") for name in ROLLUP_MEASURES),
    ]


stats_daily = Table(
    "stats_daily",
    metadata,
    Column("day", Date, primary_key=True),
    Column("month", Date, nullable=False),  # first day of the day's month
    *_rollup_columns(),
    Index(None, "month"),
)

stats_monthly = Table(
    "stats_monthly",
    metadata,
    Column("month", Date, primary_key=True),
    *_rollup_columns(),
)

# The monthly rollup without its three widest dimensions (agency, locality, procedure),
# folded from it for the same months. An indicator query that neither groups nor filters by
# those reads this one: a few hundred rows a month instead of tens of thousands, the same sums.
OVERVIEW_DIMENSIONS = tuple(
    name
    for name in ROLLUP_DIMENSIONS
    if name not in ("agency_code", "locality_code", "procedure_code")
)

stats_monthly_overview = Table(
    "stats_monthly_overview",
    metadata,
    Column("month", Date, primary_key=True),
    *_rollup_columns(OVERVIEW_DIMENSIONS),
)

# The change queue of the statistics: the link key of every case a batch touches (its
# dossiers' keys) or leaves (a key a dossier no longer has), written in the batch's own
# transaction. The refresh deletes what it consumes in its own transaction, so every
# committed change is seen exactly when it is visible, whatever order batches commit in.
stats_change = Table(
    "stats_change",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("case_key", String(64), nullable=False),
)

# When the statistics were last refreshed.
stats_state = Table(
    "stats_state",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("refreshed_at", UtcDateTime, nullable=False),
)

# What each source reported about itself, for reconciliation over time.
reconciliation = Table(
    "reconciliation",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("source_system", String(64), nullable=False),
    Column("period", String(16), nullable=False),
    Column("source_count", Integer),
    Column("registry_count", Integer, nullable=False),
    Column("quarantined", Integer, nullable=False),
    # Of the source's quarantine, records whose receipt time cannot be read (so no period can
    # hold them); null in snapshots taken before it was counted.
    Column("unplaceable", Integer),
    Column("error", Text),
    Column("taken_at", UtcDateTime, nullable=False),
    Index(None, "source_system", "period", "taken_at"),
)

# API bearer tokens, stored as SHA-256 digests only.
api_token = Table(
    "api_token",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("digest", String(64), nullable=False, unique=True),
    Column("role", String(96), nullable=False),  # statistics, admin, agency:<source>
    Column("name", String(128)),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime),
)
