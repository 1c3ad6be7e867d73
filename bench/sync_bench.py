"""Sync throughput against the binary COPY ceiling and the registry write floor, on PostgreSQL.

    python bench/sync_bench.py [--rows 200000] [--path row|columnar] [--floor-variants]
        [--server postgresql+psycopg://postgres@127.0.0.1/postgres]

Builds a Tax source database with N rows, then in one run measures:

* a full sync of the source into an empty registry (rows/s), through the row path or the
  columnar path (`--path`);
* the ceiling: a binary COPY of the same canonical rows, pre-rendered, into a table keyed
  like the registry (one UNIQUE index, no events);
* the registry write floor: the rows the sync wrote and their status events, pre-rendered,
  binary-COPYed in 5,000-row transactions into fresh copies of the registry's `dossier` and
  `dossier_event` tables with all their indexes. A sync has to do at least that much work on
  the server, so `floor_ratio` says how close to the possible it is; `ratio` compares with a
  table that keeps neither the registry's indexes nor its history;
* with `--floor-variants`, the floor again into copies changed as each schema change under
  consideration would change the registry (identifier columns `COLLATE "C"`; no events
  index), each followed by the registry's floor again, same run;
* the registry's digest after the full sync (`store.digest`: dossiers and status history),
  the same for both paths on the same rows: run `--path row` and `--path columnar` and
  compare the two `registry digest` lines;
* an incremental sync after 1% of the source rows changed;
* the peak RSS of the syncs. Each sync runs in a child process and reports its own VmHWM,
  so the figure is the sync's, not this process's nor the data generator's.

The last line is machine-readable:
`sync_bench rows=N path=P sync_rows_per_s=X copy_rows_per_s=Y ratio=R floor_rows_per_s=F
floor_ratio=Q incremental_1pct_s=T peak_rss_mb=M` (one line).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import IO, Any

from pydantic import SecretStr
from sqlalchemy import Connection, Engine, create_engine, text

from connectors.base import ConnectorContext
from connectors.identifiers import IdentifierHasher
from connectors.tax import TaxConnector
from dossierhub import store
from dossierhub.store import batches
from dossierhub.sync import sync_source
from models import migrate
from models.tables import CANONICAL_COLUMNS
from simulators import tax

# The Tax connector setting that turns the columnar sync path on (issue 15, item 2).
COLUMNAR_OPTION = "columnar"
FLOOR_BATCH = 5000  # rows per transaction in the floor, the sync's default batch
_SOURCE_ENV, _REGISTRY_ENV = "DH_BENCH_SOURCE_URL", "DH_BENCH_REGISTRY_URL"  # not in argv


@contextmanager
def scratch_database(server_url: str, label: str) -> Iterator[str]:
    server = create_engine(server_url, isolation_level="AUTOCOMMIT")
    name = f"dh_bench_{label}_{secrets.token_hex(3)}"
    with server.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


def check_path(path: str) -> None:
    """Exit naming what is missing when the columnar path cannot be switched on."""
    if path == "columnar" and COLUMNAR_OPTION not in TaxConnector.Settings.model_fields:
        sys.exit(
            f"sync_bench: --path columnar needs the columnar sync path, but the Tax connector's "
            f"settings ({TaxConnector.Settings.__name__}) have no {COLUMNAR_OPTION!r} option in "
            "this tree; merge the columnar path, or set COLUMNAR_OPTION in bench/sync_bench.py "
            "to the name of the setting that turns it on"
        )


def connector(source_url: str, batch_size: int, path: str = "row") -> TaxConnector:
    settings: dict[str, Any] = {"url": source_url}
    if COLUMNAR_OPTION in TaxConnector.Settings.model_fields:
        settings[COLUMNAR_OPTION] = path == "columnar"
    return TaxConnector(
        ConnectorContext(
            source="tax",
            settings=settings,
            hasher=IdentifierHasher(SecretStr("bench-key-" + "x" * 32)),
            batch_size=batch_size,
            lookback=timedelta(minutes=5),
        )
    )


# -- the sync, in a child process ---------------------------------------------------------
def child_sync(path: str, batch_size: int) -> None:
    """Run one sync and print its counts and this process's peak RSS as one JSON line."""
    registry = store.open_registry(os.environ[_REGISTRY_ENV])
    result = sync_source(registry, connector(os.environ[_SOURCE_ENV], batch_size, path))
    registry.dispose()
    fields = ("rows_read", "inserted", "updated", "quarantined", "duration_s")
    figures = {name: getattr(result, name) for name in fields}
    print(json.dumps({**figures, "peak_rss_mb": own_peak_rss_mb()}))


def own_peak_rss_mb() -> float:
    """This process's peak RSS in MB, its own: not `getrusage`'s ru_maxrss, which on Linux
    starts an exec'd child at its parent's peak (the kernel keeps the high-water mark of the
    address space the exec replaced), so every sync child would look as large as this
    bench's process once was. VmHWM is the mark of the process's current address space."""
    with contextlib.suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # no /proc: the upper bound


def run_sync(source_url: str, registry_url: str, path: str, batch_size: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child-sync", "--path", path]
    command += ["--batch-size", str(batch_size)]
    env = {**os.environ, _SOURCE_ENV: source_url, _REGISTRY_ENV: registry_url}
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        sys.exit(f"sync_bench: the {path} sync failed (exit {done.returncode}), see above")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# -- pre-rendered rows, spooled to files (not memory) --------------------------------------
@dataclass(frozen=True)
class Spool:
    """Binary COPY streams in one temporary file: (offset, length) of each complete stream."""

    file: IO[bytes]
    streams: list[tuple[int, int]]
    rows: int

    def blocks(self, index: int, size: int = 1 << 20) -> Iterator[bytes]:
        offset, length = self.streams[index]
        self.file.seek(offset)
        while length > 0:
            block = self.file.read(min(size, length))
            length -= len(block)
            yield block


def spool_binary(conn: Connection, queries: list[str], rows: int) -> Spool:
    """COPY each query's rows out in binary format, one complete COPY stream per query."""
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed with the run
    driver = conn.connection.driver_connection
    streams = []
    for query in queries:
        start = spool.tell()
        with driver.cursor() as cur, cur.copy(f"COPY ({query}) TO STDOUT (FORMAT BINARY)") as out:
            for block in out:
                spool.write(block)
        streams.append((start, spool.tell() - start))
    return Spool(spool, streams, rows)


def chunked_by_id(conn: Connection, table: str, columns: str) -> tuple[list[str], int]:
    """Queries selecting `table` in FLOOR_BATCH-row chunks of ascending id, and the row count."""
    numbered = f"SELECT id, row_number() OVER (ORDER BY id) AS n FROM {table}"  # noqa: S608
    every = f"SELECT id FROM ({numbered}) t WHERE n % {FLOOR_BATCH} = 0 ORDER BY id"  # noqa: S608
    bounds = list(conn.execute(text(every)).scalars())
    rows = conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()  # noqa: S608
    queries, low = [], 0
    for high in [*bounds, None]:
        upper = f" AND id <= {high}" if high is not None else ""
        queries.append(f"SELECT {columns} FROM {table} WHERE id > {low}{upper} ORDER BY id")  # noqa: S608
        low = high if high is not None else low
    return queries, int(rows)


def copy_in(conn: Connection, table: str, columns: str, blocks: Iterator[bytes]) -> None:
    driver = conn.connection.driver_connection
    statement = f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)"
    with driver.cursor() as cur, cur.copy(statement) as copy:
        for block in blocks:
            copy.write(block)


# -- the ceiling and the floor -------------------------------------------------------------
def copy_ceiling(engine: Engine) -> tuple[int, float]:
    """Binary COPY of the registry's canonical rows, pre-rendered, into a fresh keyed table."""
    columns = ", ".join(CANONICAL_COLUMNS)
    with engine.connect() as conn:
        rows = int(conn.execute(text("SELECT count(*) FROM dossier")).scalar_one())
        spool = spool_binary(conn, [f"SELECT {columns} FROM dossier"], rows)  # noqa: S608
        keyed = f"CREATE TABLE copy_ceiling AS SELECT {columns} FROM dossier WITH NO DATA"  # noqa: S608
        conn.execute(text(keyed))
        conn.execute(text("ALTER TABLE copy_ceiling ADD UNIQUE (source_system, source_id)"))
        conn.commit()
        with spool.file:
            started = time.perf_counter()
            copy_in(conn, "copy_ceiling", columns, spool.blocks(0))
            conn.commit()
            elapsed = time.perf_counter() - started
        conn.execute(text("DROP TABLE copy_ceiling"))
        conn.commit()
    return rows, elapsed


_DOSSIER = ", ".join(batches._DOSSIER_COLUMNS)
_EVENT = ", ".join(batches._EVENT_COLUMNS)


def registry_floor(engine: Engine, *, variant: str = "") -> tuple[int, float]:
    """The rows the sync wrote and their events, COPYed in FLOOR_BATCH-row transactions into
    fresh copies of `dossier` and `dossier_event` with all their indexes, changed as the
    named `variant` (FLOOR_VARIANTS) says."""
    with engine.connect() as conn:
        dossier_queries, rows = chunked_by_id(conn, "dossier", _DOSSIER)
        event_queries, events = chunked_by_id(conn, "dossier_event", _EVENT)
        dossiers = spool_binary(conn, dossier_queries, rows)
        history = spool_binary(conn, event_queries, events)
        for table in ("dossier", "dossier_event"):
            conn.execute(text(f"CREATE TABLE {table}_floor (LIKE {table} INCLUDING ALL)"))
        if variant:
            FLOOR_VARIANTS[variant][1](conn)
        conn.commit()
        with dossiers.file, history.file:
            started = time.perf_counter()
            for index in range(max(len(dossiers.streams), len(history.streams))):
                if index < len(dossiers.streams):
                    copy_in(conn, "dossier_floor", _DOSSIER, dossiers.blocks(index))
                if index < len(history.streams):
                    copy_in(conn, "dossier_event_floor", _EVENT, history.blocks(index))
                conn.commit()
            elapsed = time.perf_counter() - started
        conn.execute(text("DROP TABLE dossier_floor, dossier_event_floor"))
        conn.commit()
    return rows, elapsed


IDENTIFIERS = ("source_system", "source_id", "dossier_code", "national_dossier_code")


def _collate_identifiers(conn: Connection) -> None:
    for column in IDENTIFIERS:
        kind = conn.execute(
            text(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                " WHERE attrelid = 'dossier_floor'::regclass AND attname = :c"
            ),
            {"c": column},
        ).scalar_one()
        conn.execute(
            text(f'ALTER TABLE dossier_floor ALTER COLUMN {column} TYPE {kind} COLLATE "C"')
        )


def _drop_events_index(conn: Connection) -> None:
    for name in conn.execute(
        text(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'dossier_event_floor'"
            " AND indexdef LIKE '%(source_system, source_id)'"
        )
    ).scalars():
        conn.execute(text(f'DROP INDEX "{name}"'))


FLOOR_VARIANTS = {
    "collated": ('identifier columns COLLATE "C"', _collate_identifiers),
    "no-events-index": ("without the events (source_system, source_id) index", _drop_events_index),
}


def floor_variants(engine: Engine, floor_rate: float) -> None:
    """Each variant's floor beside the registry's, measured again after it (same run)."""
    for name, (what, _) in FLOOR_VARIANTS.items():
        rows, seconds = registry_floor(engine, variant=name)
        again, again_s = registry_floor(engine)
        base = (floor_rate + again / again_s) / 2
        print(
            f"floor variant {name} ({what}): {rows / seconds:,.0f} rows/s against "
            f"{again / again_s:,.0f} for the registry's right after; "
            f"{rows / seconds / base:.2f} x the registry floor"
        )


# -- the run --------------------------------------------------------------------------------
def build_source(source_url: str, rows: int) -> None:
    started = time.perf_counter()
    command = [sys.executable, "-m", "dossierhub", "simulate", "tax", "--url", source_url]
    command += ["--rows", str(rows), "--seed", "7", "--malformed-share", "0.01"]
    truth = subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()
    print(f"source built in {time.perf_counter() - started:.1f} s: {truth}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--path", choices=("row", "columnar"), default="row")
    parser.add_argument(
        "--floor-variants", action="store_true", help="also the floor of each schema variant"
    )
    parser.add_argument("--server", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--child-sync", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    check_path(args.path)
    if args.child_sync:
        child_sync(args.path, args.batch_size)
        return

    with (
        scratch_database(args.server, "src") as source_url,
        scratch_database(args.server, "reg") as registry_url,
    ):
        build_source(source_url, args.rows)
        registry = store.open_registry(registry_url)
        migrate.upgrade(registry)

        full = run_sync(source_url, registry_url, args.path, args.batch_size)
        sync_rate = full["rows_read"] / full["duration_s"]
        print(
            f"full sync ({args.path} path): {full['rows_read']:,} rows in "
            f"{full['duration_s']:.2f} s = {sync_rate:,.0f} rows/s (inserted "
            f"{full['inserted']:,}, quarantined {full['quarantined']:,}); "
            f"peak RSS {full['peak_rss_mb']:.0f} MB"
        )

        with registry.connect() as conn:  # after the child's peak RSS was taken
            print(f"registry digest after the full sync: {store.digest(conn)}")

        copied, copy_s = copy_ceiling(registry)
        copy_rate = copied / copy_s
        print(f"binary COPY ceiling: {copied:,} rows in {copy_s:.2f} s = {copy_rate:,.0f} rows/s")
        floored, floor_s = registry_floor(registry)
        floor_rate = floored / floor_s
        print(
            f"registry write floor: {floored:,} rows and their events in {floor_s:.2f} s "
            f"= {floor_rate:,.0f} rows/s"
        )
        if args.floor_variants:
            floor_variants(registry, floor_rate)

        touched = tax.touch(source_url, share=0.01, seed=11)
        incremental = run_sync(source_url, registry_url, args.path, args.batch_size)
        print(
            f"incremental sync after {len(touched):,} changed rows: "
            f"{incremental['duration_s']:.2f} s (read {incremental['rows_read']:,}, "
            f"updated {incremental['updated']:,}); peak RSS {incremental['peak_rss_mb']:.0f} MB"
        )
        registry.dispose()

    peak_mb = max(full["peak_rss_mb"], incremental["peak_rss_mb"])
    ratio, floor_ratio = sync_rate / copy_rate, sync_rate / floor_rate
    print(
        f"sync_bench rows={args.rows} path={args.path} sync_rows_per_s={sync_rate:.0f} "
        f"copy_rows_per_s={copy_rate:.0f} ratio={ratio:.2f} floor_rows_per_s={floor_rate:.0f} "
        f"floor_ratio={floor_ratio:.2f} incremental_1pct_s={incremental['duration_s']:.2f} "
        f"peak_rss_mb={peak_mb:.0f}"
    )


if __name__ == "__main__":
    main()
