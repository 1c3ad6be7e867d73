"""A year of indicators by sector: the rollup path against a naive GROUP BY, on PostgreSQL.

    python bench/stats_bench.py [--rows 5000000] [--repeat 5] [--check] [--keep NAME]
                                [--server postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

In a scratch database (dropped at the end, also on error; with `--keep NAME` the database
NAME instead, built on the first run and kept, and reused as it is by the next runs) it:

* generates N dossiers straight into `dossier` with one INSERT ... SELECT over
  generate_series, secondary indexes built after the load, and one case per dossier into
  `dossier_case` with one INSERT ... SELECT mirroring `linkage.build_case` for a one-member
  case;
* builds `stats_daily` from the cases with one set-based aggregation, equivalent to
  `stats.rebuild_days` over every day, and `stats_monthly` and `stats_monthly_overview`
  from it as `stats.rebuild_months` does (`--check` proves it on this N: the SQL-built cases
  and rollups are compared row for row with what `stats.refresh` builds), then VACUUM ANALYZE;
* times, after one untimed warm-up, the median of `--repeat` runs of
  (a) the rollup path, `stats.indicators(period=2026, by=["sector"])`;
  (b) the naive path, one GROUP BY sector over `dossier_case` computing the same measures;
  (c) for reference, the same GROUP BY over `dossier` itself (the same numbers only because
      every case here has one member: over real data it double-counts forwarded dossiers);
  and requires (a), (b) and (c) to give identical rows. For comparison only, it also times
  (a) with jit=off, the same year read from the daily rollup instead of the monthly one, and
  the rollup path grouped by procedure (a dimension the overview leaves out, so it sums the
  full monthly rollup), required equal to (a) once folded by sector.

The data: two years of receipts (2024-12-01 to 2026-12-01 local, when the horizon "now"
falls; later finishing times leave the case open), 50 procedures with a skewed popularity,
each with a fixed sector (10), service level, fee and legal deadline; 10 provincial
departments (one per sector) handle the provincial procedures at province level, 20
commune-level agencies handle the commune procedures of 5 communes each (100 communes,
skewed by population); channel depends on the service level; Tax, Land, Social Insurance and
Finance dossiers come 70% from their own systems, 30% and every other sector from the
one-stop portal. The rollup's size, and so its speed, follows from these correlations: it has
one row per day and distinct combination of its nine dimensions.

The last line is machine-readable:
`stats_bench dossiers=N rollup_ms=A naive_ms=B speedup=S`
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from datetime import time as clock
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, text
from sync_bench import scratch_database  # run as a script: bench/ is on the path

from dossierhub import linkage, stats, store
from models import migrate
from models.period import Period
from models.tables import dossier, dossier_case

LOCAL_TZ = "Asia/Ho_Chi_Minh"
FIRST_DAY = date(2024, 12, 1)
HORIZON = date(2026, 12, 1)  # "now": nothing finishes after it
YEAR = "2026"
SEED = 0.42

SECTORS = [
    "Tư pháp",
    "Đất đai",
    "Thuế",
    "Bảo hiểm xã hội",
    "Tài chính",
    "Xây dựng",
    "Giáo dục và Đào tạo",
    "Y tế",
    "Nội vụ",
    "Công Thương",
]
# Sectors 1..4 have their own systems; the rest reach the registry through the portal.
OWN_SYSTEMS = ["land", "tax", "social_insurance", "finance"]
STATUS_RAW = [
    "MOI_DANG_KY",
    "DA_TIEP_NHAN",
    "KHONG_TIEP_NHAN",
    "DANG_XU_LY",
    "YEU_CAU_BO_SUNG",
    "CHO_NGHIA_VU_TAI_CHINH",
    "CONG_DAN_RUT",
    "DUNG_XU_LY",
    "DA_XU_LY",
    "DA_TRA_KET_QUA",
]

# One pass over generate_series. The innermost subquery draws the random numbers once per
# row (PostgreSQL never flattens a subquery whose output calls a volatile function); the
# levels above derive the correlated attributes from them.
GENERATE_DOSSIERS = text(
    """
INSERT INTO dossier (
    source_system, source_id, dossier_code, national_dossier_code, procedure_code,
    procedure_name, sector, agency_code, received_by, locality_code, locality_version,
    admin_level, channel, service_level, status, status_raw, submitted_at, received_at,
    due_at, finished_at, returned_at, applicant_type, applicant_key, has_fee, paid_online,
    docs_submitted, docs_digitised, result_digitised, source_updated_at, first_seen_at,
    last_changed_at
)
SELECT
    source_system,
    lpad(g::text, 10, '0'),
    dossier_code,
    CASE WHEN source_system = 'one_stop' THEN dossier_code END,
    procedure_code,
    'Thủ tục ' || procedure_code,
    CASE WHEN u_misc >= 0.005 THEN (CAST(:sectors AS text[]))[s + 1] END,
    agency_code,
    agency_code,
    locality_code,
    CASE WHEN received_at < :two_level_from THEN 'three_level' ELSE 'two_level' END,
    CASE WHEN commune_level THEN 'commune' ELSE 'province' END,
    channel,
    service_level,
    status,
    (CAST(:status_raw AS text[]))[status],
    CASE WHEN channel = 'online' THEN received_at - u_hour * interval '30 minutes'
         ELSE received_at END,
    received_at,
    due_at,
    CASE WHEN status IN (9, 10) THEN finish END,
    CASE WHEN status = 10 THEN returned END,
    CASE WHEN u_pay < 0.85 THEN 'citizen' WHEN u_pay < 0.97 THEN 'enterprise'
         ELSE 'other_organisation' END,
    encode(sha256(int8send(g)), 'hex'),
    has_fee,
    CASE WHEN has_fee THEN u_pay < CASE WHEN channel = 'online' THEN 0.85 ELSE 0.10 END END,
    docs,
    CASE WHEN channel = 'online' OR u_docs < 0.7 THEN docs ELSE 0 END,
    CASE WHEN status IN (9, 10) THEN u_docs < 0.6 END,
    CASE WHEN status = 10 THEN returned WHEN status IN (9, 10) THEN finish
         ELSE received_at END + interval '5 minutes',
    now(),
    now()
FROM (
    SELECT *,
        CASE WHEN u_status < 0.02 THEN 3
             WHEN u_status < 0.04 THEN 7
             WHEN u_status < 0.05 THEN 8
             WHEN u_status < 0.08 THEN 5
             WHEN finish >= :horizon THEN 4
             WHEN u_misc < 0.8 AND returned < :horizon THEN 10
             ELSE 9 END AS status,
        agency_code || '-' || to_char(received_at AT TIME ZONE :tz, 'YYMMDD') || '-'
            || lpad(g::text, 8, '0') AS dossier_code
    FROM (
        SELECT *,
            received_at + due_days * interval '1 day' AS due_at,
            received_at + coalesce(due_days, 10) * (0.05 + 1.1 * u_duration)
                * interval '1 day' AS finish,
            received_at + coalesce(due_days, 10) * (0.05 + 1.1 * u_duration)
                * interval '1 day' + u_misc * interval '2 days' AS returned
        FROM (
            SELECT *,
                :first_day + floor(u_day * :days) * interval '1 day'
                    + CASE WHEN channel = 'online' THEN u_hour * interval '24 hours'
                           ELSE interval '7 hours 30 minutes' + u_hour * interval '9 hours'
                      END AS received_at,
                CASE WHEN s BETWEEN 1 AND 4 AND u_source >= 0.3
                     THEN (CAST(:own_systems AS text[]))[s] ELSE 'one_stop' END
                    AS source_system,
                '000.00.' || lpad((CASE WHEN commune_level THEN 11 + l / 5 ELSE s + 1 END)::text,
                                  2, '0') || '.H22' AS agency_code,
                CASE WHEN commune_level THEN lpad((6700 + 3 * l)::text, 5, '0') ELSE '22' END
                    AS locality_code,
                '2.' || lpad((1000 + p)::text, 6, '0') AS procedure_code,
                fee_procedure AND u_fee >= 0.1 AS has_fee,
                1 + floor(u_docs * 5)::int AS docs
            FROM (
                SELECT *,
                    CASE service_level
                        WHEN 'full_online' THEN CASE WHEN u_channel < 0.70 THEN 'online'
                                                     WHEN u_channel < 0.98 THEN 'in_person'
                                                     ELSE 'postal' END
                        WHEN 'partial_online' THEN CASE WHEN u_channel < 0.45 THEN 'online'
                                                        WHEN u_channel < 0.95 THEN 'in_person'
                                                        ELSE 'postal' END
                        ELSE CASE WHEN u_channel < 0.95 THEN 'in_person' ELSE 'postal' END
                    END AS channel
                FROM (
                    SELECT *,
                        p % 10 AS s,
                        (p / 10) % 2 = 0 AS commune_level,
                        (ARRAY['full_online', 'full_online', 'partial_online',
                               'partial_online', 'not_online'])[(p * 3) % 5 + 1]
                            AS service_level,
                        CASE WHEN p % 17 <> 16 THEN 1 + (p * 7) % 15 END AS due_days,
                        p % 3 = 0 AS fee_procedure
                    FROM (
                        SELECT *,
                            floor(50 * u_procedure * u_procedure)::int AS p,
                            floor(100 * u_locality * u_locality)::int AS l
                        FROM (
                            SELECT g,
                                random() AS u_procedure, random() AS u_locality,
                                random() AS u_day, random() AS u_hour, random() AS u_source,
                                random() AS u_channel, random() AS u_status,
                                random() AS u_duration, random() AS u_fee, random() AS u_pay,
                                random() AS u_docs, random() AS u_misc
                            FROM generate_series(1, :rows) AS g
                            OFFSET 0
                        ) AS draws
                        OFFSET 0
                    ) AS picks
                    OFFSET 0
                ) AS procedures
                OFFSET 0
            ) AS channels
            OFFSET 0
        ) AS receipts
        OFFSET 0
    ) AS progress
) AS dossiers
"""
)

# One case per dossier: what linkage.build_case gives for a one-member case.
BUILD_CASES = text(
    """
INSERT INTO dossier_case (
    case_key, members, in_portal, first_source, channel, service_level, sector,
    agency_code, procedure_code, locality_code, admin_level, status, received_at,
    received_day, due_at, finished_at, finished_day, has_fee, paid_online, digitised,
    result_digitised, authority_source, authority_id, ended_day
)
SELECT
    coalesce(national_dossier_code, dossier_code), 1, source_system = :portal, source_system,
    channel, service_level, nullif(sector, ''), agency_code, procedure_code, locality_code,
    admin_level, status, received_at, (received_at AT TIME ZONE :tz)::date, due_at,
    resolved_at, (resolved_at AT TIME ZONE :tz)::date, has_fee, paid_online,
    docs_digitised <> 0, result_digitised, source_system, source_id,
    CASE WHEN status IN (7, 8)
         THEN (coalesce(finished_at, source_updated_at) AT TIME ZONE :tz)::date END
FROM (
    SELECT *,
           CASE WHEN status IN (9, 10) THEN coalesce(finished_at, returned_at) END
               AS resolved_at
    FROM dossier
) AS resolutions
"""
)

# stats.rebuild_days over every day, in one statement: receipt measures on the receiving
# day (refused at intake apart), resolution measures on the finishing day, withdrawn and
# stopped on the day they ended, absent dimensions as ''.
BUILD_ROLLUP = text(
    """
INSERT INTO stats_daily (
    day, month, in_portal, source_system, sector, agency_code, locality_code, admin_level,
    procedure_code, channel, service_level, received, received_online,
    received_full_online, with_fee, paid_online, digitised, resolved, resolved_early,
    resolved_on_time, resolved_late, result_digitised, refused_intake, withdrawn, stopped,
    service_level_reported, digitisation_reported, result_digitisation_reported
)
SELECT day, date_trunc('month', day)::date, in_portal, source_system, sector, agency_code,
       locality_code, admin_level, procedure_code, channel, service_level,
       sum(received), sum(received_online), sum(received_full_online), sum(with_fee),
       sum(paid_online), sum(digitised), sum(resolved), sum(resolved_early),
       sum(resolved_on_time), sum(resolved_late), sum(result_digitised),
       sum(refused_intake), sum(withdrawn), sum(stopped), sum(service_level_reported),
       sum(digitisation_reported), sum(result_digitisation_reported)
FROM (
    SELECT received_day AS day, in_portal, first_source AS source_system,
           coalesce(sector, '') AS sector, agency_code,
           coalesce(locality_code, '') AS locality_code,
           coalesce(admin_level, '') AS admin_level, procedure_code, channel,
           coalesce(service_level, '') AS service_level,
           r AS received,
           r * (channel = 'online')::int AS received_online,
           r * (channel = 'online' AND coalesce(service_level = 'full_online', false))::int
               AS received_full_online,
           r * coalesce(has_fee, false)::int AS with_fee,
           r * coalesce(has_fee AND paid_online, false)::int AS paid_online,
           r * coalesce(digitised, false)::int AS digitised,
           0 AS resolved, 0 AS resolved_early, 0 AS resolved_on_time, 0 AS resolved_late,
           0 AS result_digitised,
           1 - r AS refused_intake, 0 AS withdrawn, 0 AS stopped,
           r * (service_level IS NOT NULL)::int AS service_level_reported,
           r * (digitised IS NOT NULL)::int AS digitisation_reported,
           0 AS result_digitisation_reported
    FROM (SELECT *, (status <> 3)::int AS r FROM dossier_case) AS receipts
    UNION ALL
    SELECT finished_day, in_portal, first_source, coalesce(sector, ''), agency_code,
           coalesce(locality_code, ''), coalesce(admin_level, ''), procedure_code, channel,
           coalesce(service_level, ''),
           0, 0, 0, 0, 0, 0,
           1,
           coalesce(finished_at <= due_at
                    AND finished_day < (due_at AT TIME ZONE :tz)::date, false)::int,
           coalesce(finished_at <= due_at
                    AND finished_day >= (due_at AT TIME ZONE :tz)::date, false)::int,
           coalesce(finished_at > due_at, false)::int,
           coalesce(result_digitised, false)::int,
           0, 0, 0, 0, 0, (result_digitised IS NOT NULL)::int
    FROM dossier_case
    WHERE finished_day IS NOT NULL
    UNION ALL
    SELECT ended_day, in_portal, first_source, coalesce(sector, ''), agency_code,
           coalesce(locality_code, ''), coalesce(admin_level, ''), procedure_code, channel,
           coalesce(service_level, ''),
           0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
           0, (status = 7)::int, (status = 8)::int, 0, 0, 0
    FROM dossier_case
    WHERE ended_day IS NOT NULL
) AS facts
GROUP BY day, in_portal, source_system, sector, agency_code, locality_code, admin_level,
         procedure_code, channel, service_level
"""
)

# The naive path: the period's cases grouped by sector, every measure the rollup holds.
NAIVE_OVER_CASES = text(
    """
SELECT coalesce(sector, '') AS sector,
       count(*) FILTER (WHERE received) AS received,
       count(*) FILTER (WHERE received AND channel = 'online') AS received_online,
       count(*) FILTER (WHERE received AND channel = 'online'
                        AND service_level = 'full_online') AS received_full_online,
       count(*) FILTER (WHERE received AND has_fee) AS with_fee,
       count(*) FILTER (WHERE received AND has_fee AND paid_online) AS paid_online,
       count(*) FILTER (WHERE received AND digitised) AS digitised,
       count(*) FILTER (WHERE resolved) AS resolved,
       count(*) FILTER (WHERE resolved AND finished_at <= due_at
                        AND finished_day < (due_at AT TIME ZONE :tz)::date) AS resolved_early,
       count(*) FILTER (WHERE resolved AND finished_at <= due_at
                        AND finished_day >= (due_at AT TIME ZONE :tz)::date)
           AS resolved_on_time,
       count(*) FILTER (WHERE resolved AND finished_at > due_at) AS resolved_late,
       count(*) FILTER (WHERE resolved AND result_digitised) AS result_digitised,
       count(*) FILTER (WHERE refused) AS refused_intake,
       count(*) FILTER (WHERE ended AND status = 7) AS withdrawn,
       count(*) FILTER (WHERE ended AND status = 8) AS stopped,
       count(*) FILTER (WHERE received AND service_level IS NOT NULL)
           AS service_level_reported,
       count(*) FILTER (WHERE received AND digitised IS NOT NULL) AS digitisation_reported,
       count(*) FILTER (WHERE resolved AND result_digitised IS NOT NULL)
           AS result_digitisation_reported
FROM (
    SELECT *,
           received_day >= :start AND received_day < :end AND status <> 3 AS received,
           received_day >= :start AND received_day < :end AND status = 3 AS refused,
           finished_day >= :start AND finished_day < :end AS resolved,
           coalesce(ended_day >= :start AND ended_day < :end, false) AS ended
    FROM dossier_case
    WHERE received_day >= :start AND received_day < :end
       OR finished_day >= :start AND finished_day < :end
       OR ended_day >= :start AND ended_day < :end
) AS period_cases
GROUP BY 1
"""
)

# The same straight over the dossier table, local days worked out from UTC times.
NAIVE_OVER_DOSSIERS = text(
    """
SELECT coalesce(nullif(sector, ''), '') AS sector,
       count(*) FILTER (WHERE received) AS received,
       count(*) FILTER (WHERE received AND channel = 'online') AS received_online,
       count(*) FILTER (WHERE received AND channel = 'online'
                        AND service_level = 'full_online') AS received_full_online,
       count(*) FILTER (WHERE received AND has_fee) AS with_fee,
       count(*) FILTER (WHERE received AND has_fee AND paid_online) AS paid_online,
       count(*) FILTER (WHERE received AND docs_digitised <> 0) AS digitised,
       count(*) FILTER (WHERE resolved) AS resolved,
       count(*) FILTER (WHERE resolved AND finished_at <= due_at
                        AND (finished_at AT TIME ZONE :tz)::date
                            < (due_at AT TIME ZONE :tz)::date) AS resolved_early,
       count(*) FILTER (WHERE resolved AND finished_at <= due_at
                        AND (finished_at AT TIME ZONE :tz)::date
                            >= (due_at AT TIME ZONE :tz)::date) AS resolved_on_time,
       count(*) FILTER (WHERE resolved AND finished_at > due_at) AS resolved_late,
       count(*) FILTER (WHERE resolved AND result_digitised) AS result_digitised,
       count(*) FILTER (WHERE refused) AS refused_intake,
       count(*) FILTER (WHERE ended AND status = 7) AS withdrawn,
       count(*) FILTER (WHERE ended AND status = 8) AS stopped,
       count(*) FILTER (WHERE received AND service_level IS NOT NULL)
           AS service_level_reported,
       count(*) FILTER (WHERE received AND docs_digitised IS NOT NULL)
           AS digitisation_reported,
       count(*) FILTER (WHERE resolved AND result_digitised IS NOT NULL)
           AS result_digitisation_reported
FROM (
    SELECT *,
           received_at >= :start AND received_at < :end AND status <> 3 AS received,
           received_at >= :start AND received_at < :end AND status = 3 AS refused,
           status IN (9, 10) AND finished_at >= :start AND finished_at < :end AS resolved,
           status IN (7, 8) AND coalesce(finished_at, source_updated_at) >= :start
               AND coalesce(finished_at, source_updated_at) < :end AS ended
    FROM dossier
    WHERE received_at >= :start AND received_at < :end
       OR finished_at >= :start AND finished_at < :end
       OR status IN (7, 8) AND coalesce(finished_at, source_updated_at) >= :start
          AND coalesce(finished_at, source_updated_at) < :end
) AS period_dossiers
GROUP BY 1
"""
)


_SUMS = ", ".join(f"sum({m}) AS {m}" for m in stats.MEASURES)
_DIMS = (
    "in_portal, source_system, sector, agency_code, locality_code, admin_level, "
    "procedure_code, channel, service_level"
)
# stats.rebuild_months over every month: the monthly rollup folded from the daily one.
BUILD_MONTHLY = text(
    f"INSERT INTO stats_monthly (month, {_DIMS}, {', '.join(stats.MEASURES)}) "  # noqa: S608 - fixed column names
    f"SELECT month, {_DIMS}, {_SUMS} FROM stats_daily GROUP BY month, {_DIMS}"
)
# stats.rebuild_months over every month: the overview folded from the monthly rollup.
_OVERVIEW_DIMS = "in_portal, source_system, sector, admin_level, channel, service_level"
BUILD_OVERVIEW = text(
    f"INSERT INTO stats_monthly_overview (month, {_OVERVIEW_DIMS}, {', '.join(stats.MEASURES)}) "  # noqa: S608 - fixed column names
    f"SELECT month, {_OVERVIEW_DIMS}, {_SUMS} FROM stats_monthly GROUP BY month, {_OVERVIEW_DIMS}"
)
# For comparison only: the same year read from the daily rollup.
DAILY_BY_SECTOR = text(
    f"SELECT sector, {_SUMS} FROM stats_daily "  # noqa: S608 - fixed column names
    "WHERE day >= :start AND day < :end GROUP BY sector"
)


class BenchError(AssertionError):
    """The two paths disagree, or the SQL-built tables differ from the engine's."""


def require(condition: bool, message: str) -> None:
    if not condition:  # not `assert`: the benchmark must check under python -O as well
        raise BenchError(message)


def local_midnight(day: date) -> datetime:
    return datetime.combine(day, clock(), tzinfo=UTC) - linkage.LOCAL_OFFSET


def bulk_session(conn: Connection) -> None:
    """Settings for this loading transaction only (SET LOCAL); the timed queries get the defaults."""
    conn.execute(text("SET LOCAL synchronous_commit = off"))
    conn.execute(text("SET LOCAL jit = off"))  # compiling these wide expressions costs more
    conn.execute(text("SET LOCAL work_mem = '256MB'"))
    conn.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))


def generate(engine: Engine, rows: int) -> dict[str, float]:
    """Fill dossier and dossier_case; secondary indexes are built once, after the load."""
    timings: dict[str, float] = {}
    secondary = [*dossier.indexes, *dossier_case.indexes]
    with engine.begin() as conn:
        bulk_session(conn)
        for index in secondary:
            index.drop(conn)
        conn.execute(text("SELECT setseed(:seed)"), {"seed": SEED})
        started = time.perf_counter()
        conn.execute(
            GENERATE_DOSSIERS,
            {
                "rows": rows,
                "sectors": SECTORS,
                "own_systems": OWN_SYSTEMS,
                "status_raw": STATUS_RAW,
                "first_day": local_midnight(FIRST_DAY),
                "days": (HORIZON - FIRST_DAY).days,
                "horizon": local_midnight(HORIZON),
                "two_level_from": local_midnight(date(2025, 7, 1)),
                "tz": LOCAL_TZ,
            },
        )
        timings["dossiers"] = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute(BUILD_CASES, {"portal": linkage.PORTAL, "tz": LOCAL_TZ})
        timings["cases"] = time.perf_counter() - started
        started = time.perf_counter()
        for index in secondary:
            index.create(conn)
        timings["indexes"] = time.perf_counter() - started
    return timings


def build_rollup(engine: Engine) -> int:
    with engine.begin() as conn:
        bulk_session(conn)
        conn.execute(text("TRUNCATE stats_daily, stats_monthly, stats_monthly_overview"))
        rows = conn.execute(BUILD_ROLLUP, {"tz": LOCAL_TZ}).rowcount
        conn.execute(BUILD_MONTHLY)
        conn.execute(BUILD_OVERVIEW)
        return rows


def vacuum_analyze(engine: Engine) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(
            text(
                "VACUUM (ANALYZE) dossier, dossier_case, stats_daily, stats_monthly,"
                " stats_monthly_overview"
            )
        )


def snapshot(conn: Connection) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    cases = conn.execute(text("SELECT * FROM dossier_case ORDER BY case_key"))
    rollup = conn.execute(text("SELECT * FROM stats_daily ORDER BY 1, 3, 4, 5, 6, 7, 8, 9, 10, 11"))
    monthly = conn.execute(
        text("SELECT * FROM stats_monthly ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10")
    )
    overview = conn.execute(
        text("SELECT * FROM stats_monthly_overview ORDER BY 1, 2, 3, 4, 5, 6, 7")
    )
    rollups = (
        [tuple(r) for r in rollup] + [tuple(r) for r in monthly] + [tuple(r) for r in overview]
    )
    return [tuple(r) for r in cases], rollups


def compare(
    what: str, built: Sequence[tuple[Any, ...]], engine_rows: Sequence[tuple[Any, ...]]
) -> None:
    require(
        len(built) == len(engine_rows),
        f"{what}: SQL built {len(built):,} rows, the engine {len(engine_rows):,}",
    )
    for mine, theirs in zip(built, engine_rows, strict=True):
        require(mine == theirs, f"{what}: SQL row {mine} differs from engine row {theirs}")


def check_against_engine(engine: Engine) -> tuple[int, int, float]:
    """Rebuild cases and rollup through stats.refresh (linkage + rebuild_days) and compare."""
    with engine.connect() as conn:
        cases, rollup = snapshot(conn)
    with engine.begin() as conn:
        conn.execute(
            text(
                "TRUNCATE dossier_case, stats_daily, stats_monthly, stats_monthly_overview,"
                " stats_state"
            )
        )
    started = time.perf_counter()
    stats.refresh(engine, everything=True)
    refresh_s = time.perf_counter() - started
    with engine.connect() as conn:
        engine_cases, engine_rollup = snapshot(conn)
    compare("dossier_case", cases, engine_cases)
    compare("stats_daily", rollup, engine_rollup)
    return len(cases), len(rollup), refresh_s


def rollup_path(conn: Connection, period: Period) -> list[dict[str, Any]]:
    return stats.indicators(conn, period=period, by=["sector"])


def by_procedure_path(conn: Connection, period: Period) -> list[dict[str, Any]]:
    return stats.indicators(conn, period=period, by=["procedure", "sector"])


def fold_by_sector(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows grouped by procedure and sector, summed by sector, with the rates derived again."""
    merged: dict[str, dict[str, int]] = {}
    for row in rows:
        totals = merged.setdefault(row["sector"], dict.fromkeys(stats.MEASURES, 0))
        for m in stats.MEASURES:
            totals[m] += row[m]
    return [{"sector": key, **stats.derive(merged[key])} for key in sorted(merged, key=str)]


def naive_path(conn: Connection, query: Any, bounds: tuple[Any, Any]) -> list[dict[str, Any]]:
    rows = conn.execute(query, {"start": bounds[0], "end": bounds[1], "tz": LOCAL_TZ})
    merged = {row.sector: {m: int(row._mapping[m]) for m in stats.MEASURES} for row in rows}
    return [{"sector": key, **stats.derive(merged[key])} for key in sorted(merged, key=str)]


def timed(
    run: Callable[[], list[dict[str, Any]]], repeat: int
) -> tuple[list[dict[str, Any]], list[float]]:
    result = run()  # warm-up, untimed: plans, catalogue caches, pages in shared buffers
    laps = []
    for _ in range(repeat):
        started = time.perf_counter()
        again = run()
        laps.append((time.perf_counter() - started) * 1000)
        require(again == result, "a repeated run gave different numbers")
    return result, laps


def spread(conn: Connection) -> str:
    row = conn.execute(
        text(
            """
SELECT count(DISTINCT sector) AS sectors, count(DISTINCT agency_code) AS agencies,
       count(DISTINCT locality_code) AS localities,
       count(DISTINCT procedure_code) AS procedures,
       avg((channel = 'online')::int) AS online, avg((status IN (9, 10))::int) AS finished,
       min(received_day) AS first, max(received_day) AS last
FROM dossier_case
"""
        )
    ).one()
    return (
        f"spread: {row.sectors} sectors, {row.agencies} agencies, {row.localities} localities, "
        f"{row.procedures} procedures; {row.online:.0%} online, {row.finished:.0%} finished; "
        f"received {row.first} .. {row.last}"
    )


def sizes(conn: Connection) -> str:
    parts = []
    for table in (
        "dossier",
        "dossier_case",
        "stats_daily",
        "stats_monthly",
        "stats_monthly_overview",
    ):
        size = conn.execute(
            text("SELECT pg_size_pretty(pg_total_relation_size(CAST(:t AS regclass)))"),
            {"t": table},
        ).scalar_one()
        parts.append(f"{table} {size}")
    return "sizes with indexes: " + ", ".join(parts)


def server_settings(conn: Connection) -> str:
    version = conn.execute(text("SHOW server_version")).scalar_one()
    shown = []
    for name in ("jit", "max_parallel_workers_per_gather", "work_mem", "shared_buffers"):
        shown.append(f"{name}={conn.execute(text(f'SHOW {name}')).scalar_one()}")
    return f"PostgreSQL {version}: {', '.join(shown)}"


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def prepare(engine: Engine, rows: int, check: bool, period: Period) -> None:
    started = time.perf_counter()
    timings = generate(engine, rows)
    print(
        f"generated {rows:,} dossiers in {timings['dossiers']:.1f} s "
        f"({rows / timings['dossiers']:,.0f} rows/s), their cases in "
        f"{timings['cases']:.1f} s, secondary indexes in {timings['indexes']:.1f} s"
    )
    rollup_started = time.perf_counter()
    rollup_rows = build_rollup(engine)
    rollup_s = time.perf_counter() - rollup_started
    with engine.connect() as conn:
        in_period = conn.execute(
            text("SELECT count(*) FROM stats_daily WHERE day >= :start AND day < :end"),
            {"start": period.start, "end": period.end},
        ).scalar_one()
    print(
        f"rollup: {rollup_rows:,} stats_daily rows in {rollup_s:.1f} s "
        f"({rows / rollup_rows:.1f} cases per row), {in_period:,} of them in {YEAR}"
    )
    if check:
        cases, rollup, refresh_s = check_against_engine(engine)
        print(
            f"check: {cases:,} cases and {rollup:,} rollup rows identical to what "
            f"stats.refresh builds (linkage + rebuild_days, {refresh_s:.1f} s)"
        )
    vacuum_started = time.perf_counter()
    vacuum_analyze(engine)
    print(f"VACUUM ANALYZE in {time.perf_counter() - vacuum_started:.1f} s")
    print(f"prepared in {time.perf_counter() - started:.1f} s")


def report(label: str, laps: Sequence[float]) -> None:
    print(
        f"{label}: median {statistics.median(laps):.1f} ms "
        f"(min {min(laps):.1f}, max {max(laps):.1f}, {len(laps)} runs)"
    )


def measure(conn: Connection, period: Period, repeat: int) -> tuple[float, float]:
    """Median ms of the rollup and the naive path, after requiring identical numbers."""
    days = (period.start, period.end)
    rollup, rollup_laps = timed(lambda: rollup_path(conn, period), repeat)
    naive, naive_laps = timed(lambda: naive_path(conn, NAIVE_OVER_CASES, days), repeat)
    moments = (local_midnight(period.start), local_midnight(period.end))
    flat, flat_laps = timed(lambda: naive_path(conn, NAIVE_OVER_DOSSIERS, moments), repeat)
    require(rollup == naive, f"rollup path {rollup} differs from the naive path {naive}")
    require(flat == naive, f"GROUP BY over dossier {flat} differs from over cases {naive}")
    received = sum(r["received"] for r in rollup)
    resolved = sum(r["resolved"] for r in rollup)
    print(
        f"{YEAR} by sector: {len(rollup)} groups, {received:,} received, {resolved:,} "
        "resolved; rollup path, naive over dossier_case and naive over dossier identical"
    )
    report("(a) rollup path, stats.indicators", rollup_laps)
    report("(b) naive GROUP BY over dossier_case", naive_laps)
    report("    naive GROUP BY over dossier", flat_laps)

    # For comparison only, not project paths: what JIT compilation adds to the rollup
    # query, and what reading the daily rollup instead of the monthly one costs.
    conn.execute(text("SET jit = off"))
    _, unjitted = timed(lambda: rollup_path(conn, period), repeat)
    conn.execute(text("RESET jit"))
    report("    rollup path with jit=off", unjitted)
    daily, daily_laps = timed(lambda: naive_path(conn, DAILY_BY_SECTOR, days), repeat)
    require(daily == naive, f"daily rollup {daily} differs from the naive path")
    report("    the same year from the daily rollup", daily_laps)
    procedures, procedure_laps = timed(lambda: by_procedure_path(conn, period), repeat)
    require(fold_by_sector(procedures) == rollup, "by procedure, folded, differs from (a)")
    report(f"    rollup path by procedure and sector ({len(procedures)} groups)", procedure_laps)
    return statistics.median(rollup_laps), statistics.median(naive_laps)


@contextmanager
def kept_database(server_url: str, name: str) -> Iterator[str]:
    """The database NAME on the server, created when missing and never dropped."""
    require(re.fullmatch(r"[a-z0-9_]+", name) is not None, f"--keep {name!r}: use [a-z0-9_]")
    server = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).first()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield server.url.set(database=name).render_as_string(hide_password=False)
    finally:
        server.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=5_000_000, help="dossiers to generate")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each path")
    parser.add_argument("--server", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "--check",
        action="store_true",
        help="also rebuild cases and rollup through stats.refresh and compare (small N only)",
    )
    parser.add_argument(
        "--keep",
        metavar="NAME",
        help="build into database NAME and keep it; a later run with the same NAME reuses it "
        "as it is (migrated to this code's schema), skipping the several minutes of building",
    )
    args = parser.parse_args()
    period = Period.parse(YEAR)

    print(f"before: {load()}")
    if args.keep:
        database = kept_database(args.server, args.keep)
    else:
        database = scratch_database(args.server, "stats")
    with database as url:
        engine = store.open_registry(url)
        try:
            migrate.upgrade(engine)
            with engine.connect() as conn:
                print(server_settings(conn))
                built = conn.execute(text("SELECT count(*) FROM dossier")).scalar_one()
                rolled = conn.execute(text("SELECT count(*) FROM stats_monthly")).scalar_one()
            if built:
                require(
                    built == args.rows and rolled > 0,
                    f"database {args.keep} holds {built:,} dossiers and {rolled:,} monthly "
                    "rollup rows, not a finished build of --rows: drop it, or pass its --rows",
                )
                print(f"reusing database {args.keep}: {built:,} dossiers, rollups as built")
            else:
                prepare(engine, args.rows, args.check, period)
            with engine.connect() as conn:
                print(spread(conn))
                print(sizes(conn))
                rollup_ms, naive_ms = measure(conn, period, args.repeat)
        finally:
            engine.dispose()
    print(f"after: {load()}")
    print(
        f"stats_bench dossiers={args.rows} rollup_ms={rollup_ms:.1f} naive_ms={naive_ms:.1f} "
        f"speedup={naive_ms / rollup_ms:.1f}"
    )


if __name__ == "__main__":
    main()
