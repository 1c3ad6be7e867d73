"""Sync throughput against the COPY ceiling, incremental cost and memory, on PostgreSQL.

    python bench/sync_bench.py [--rows 200000] [--server postgresql+psycopg://postgres@127.0.0.1/postgres]

Builds a Tax source database with N rows (in a child process, so this process's peak RSS is
the sync's), then in one run measures:

* a full sync of the source into an empty registry (rows/s);
* the ceiling: a raw COPY of the same canonical rows into a table keyed like the registry;
* their ratio;
* an incremental sync after 1% of the source rows changed;
* the peak RSS of this process.

The last line is machine-readable:
`sync_bench rows=N sync_rows_per_s=X copy_rows_per_s=Y ratio=R incremental_1pct_s=T peak_rss_mb=M`
"""

from __future__ import annotations

import argparse
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from pydantic import SecretStr
from sqlalchemy import create_engine, text

from connectors.base import ConnectorContext
from connectors.identifiers import IdentifierHasher
from connectors.tax import TaxConnector
from dossierhub import store
from dossierhub.sync import sync_source
from models import migrate
from models.tables import CANONICAL_COLUMNS
from simulators import tax


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


def connector(source_url: str, batch_size: int) -> TaxConnector:
    return TaxConnector(
        ConnectorContext(
            source="tax",
            settings={"url": source_url},
            hasher=IdentifierHasher(SecretStr("bench-key-" + "x" * 32)),
            batch_size=batch_size,
            lookback=timedelta(minutes=5),
        )
    )


def copy_ceiling(registry_url: str) -> tuple[int, float]:
    """COPY the registry's canonical rows, pre-rendered, into a fresh table with the same key."""
    engine = create_engine(registry_url)
    columns = ", ".join(CANONICAL_COLUMNS)
    # Spooled to a file, not memory, so the ceiling does not inflate the peak RSS figure.
    with tempfile.TemporaryFile() as spool, engine.connect() as conn:
        driver = conn.connection.driver_connection
        with (
            driver.cursor() as cur,
            cur.copy(f"COPY (SELECT {columns} FROM dossier) TO STDOUT") as out,  # noqa: S608 - fixed column names
        ):
            for block in out:
                spool.write(block)
        conn.execute(text("CREATE TABLE copy_ceiling AS SELECT * FROM dossier WITH NO DATA"))
        conn.execute(text("ALTER TABLE copy_ceiling ADD UNIQUE (source_system, source_id)"))
        conn.commit()
        rows = 0
        spool.seek(0)
        started = time.perf_counter()
        with driver.cursor() as cur, cur.copy(f"COPY copy_ceiling ({columns}) FROM STDIN") as copy:
            while block := spool.read(1 << 20):
                rows += block.count(b"\n")
                copy.write(block)
        conn.commit()
        elapsed = time.perf_counter() - started
    engine.dispose()
    return rows, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--server", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()

    with (
        scratch_database(args.server, "src") as source_url,
        scratch_database(args.server, "reg") as registry_url,
    ):
        started = time.perf_counter()
        truth = subprocess.run(
            [
                sys.executable,
                "-m",
                "dossierhub",
                "simulate",
                "tax",
                "--url",
                source_url,
                "--rows",
                str(args.rows),
                "--seed",
                "7",
                "--malformed-share",
                "0.01",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        print(f"source built in {time.perf_counter() - started:.1f} s: {truth}")

        registry = store.open_registry(registry_url)
        migrate.upgrade(registry)

        full = sync_source(registry, connector(source_url, args.batch_size))
        sync_rate = full.rows_read / full.duration_s
        print(
            f"full sync: {full.rows_read:,} rows in {full.duration_s:.2f} s = {sync_rate:,.0f} rows/s "
            f"(inserted {full.inserted:,}, quarantined {full.quarantined:,})"
        )

        copied, copy_s = copy_ceiling(registry_url)
        copy_rate = copied / copy_s
        print(f"raw COPY ceiling: {copied:,} rows in {copy_s:.2f} s = {copy_rate:,.0f} rows/s")

        touched = tax.touch(source_url, share=0.01, seed=11)
        incremental = sync_source(registry, connector(source_url, args.batch_size))
        print(
            f"incremental sync after {len(touched):,} changed rows: {incremental.duration_s:.2f} s "
            f"(read {incremental.rows_read:,}, updated {incremental.updated:,})"
        )
        registry.dispose()

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ratio = sync_rate / copy_rate
    print(f"ratio sync/copy = {ratio:.2f}; peak RSS {peak_mb:.0f} MB")
    print(
        f"sync_bench rows={args.rows} sync_rows_per_s={sync_rate:.0f} copy_rows_per_s={copy_rate:.0f} "
        f"ratio={ratio:.2f} incremental_1pct_s={incremental.duration_s:.2f} peak_rss_mb={peak_mb:.0f}"
    )


if __name__ == "__main__":
    main()
