"""Row path against columnar path: one Tax source, each path synced into its own registry.

    python bench/columnar_bench.py [--rows 200000] [--batch-size 5000] [--paths row,columnar]

Builds a Tax source on PostgreSQL, then for each path, in a child process of its own (so each
peak RSS is that path's): a full sync into a fresh registry, then an incremental sync after
1% of the rows changed (the change is undone by rebuilding the source between paths, so both
read the same rows). In the same run it measures the binary COPY ceiling: the first
registry's canonical rows, COPYed in binary into a table keyed like the registry. Both
registries must end with the same `store.digest`; the run fails otherwise.

Last line per path:
`columnar_bench rows=N path=P sync_rows_per_s=X copy_rows_per_s=Y ratio=R incremental_1pct_s=T peak_rss_mb=M`
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import timedelta

from pydantic import SecretStr
from sqlalchemy import create_engine, text

from bench.sync_bench import scratch_database
from connectors.base import ConnectorContext
from connectors.identifiers import IdentifierHasher
from connectors.tax import TaxConnector
from dossierhub import store
from dossierhub.sync import sync_source
from models import migrate
from models.tables import CANONICAL_COLUMNS
from simulators import tax


def connector(source_url: str, batch_size: int, path: str) -> TaxConnector:
    return TaxConnector(
        ConnectorContext(
            source="tax",
            settings={"url": source_url, "columnar": path == "columnar"},
            hasher=IdentifierHasher(SecretStr("bench-key-" + "x" * 32)),
            batch_size=batch_size,
            lookback=timedelta(minutes=5),
        )
    )


def build_source(url: str, rows: int) -> None:
    tax.generate(url, rows=rows, seed=7, malformed_share=0.01)


def run_path(source_url: str, registry_url: str, path: str, batch_size: int) -> dict[str, float]:
    """One path's full and 1% incremental sync (run in a child process)."""
    registry = store.open_registry(registry_url)
    migrate.upgrade(registry)
    full = sync_source(registry, connector(source_url, batch_size, path))
    tax.touch(source_url, share=0.01, seed=11)
    incremental = sync_source(registry, connector(source_url, batch_size, path))
    # The sync's peak, before the digest below reads every dossier into memory.
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with registry.connect() as conn:
        digest = store.digest(conn)
    registry.dispose()
    return {
        "rows": full.rows_read,
        "seconds": full.duration_s,
        "incremental_s": incremental.duration_s,
        "updated": incremental.updated,
        "digest": digest,  # type: ignore[dict-item]
        "peak_rss_mb": peak_mb,
    }


def binary_copy_ceiling(registry_url: str) -> tuple[int, float]:
    """COPY the registry's canonical rows, in binary, into a fresh table with the same key."""
    engine = create_engine(registry_url)
    columns = ", ".join(CANONICAL_COLUMNS)
    with tempfile.TemporaryFile() as spool, engine.connect() as conn:
        driver = conn.connection.driver_connection
        select = f"COPY (SELECT {columns} FROM dossier) TO STDOUT (FORMAT BINARY)"  # noqa: S608
        with driver.cursor() as cur, cur.copy(select) as out:
            for block in out:
                spool.write(block)
        rows = conn.execute(text("SELECT count(*) FROM dossier")).scalar_one()
        conn.execute(text("CREATE TABLE copy_ceiling AS SELECT * FROM dossier WITH NO DATA"))
        conn.execute(text("ALTER TABLE copy_ceiling ADD UNIQUE (source_system, source_id)"))
        conn.commit()
        spool.seek(0)
        started = time.perf_counter()
        into = f"COPY copy_ceiling ({columns}) FROM STDIN (FORMAT BINARY)"
        with driver.cursor() as cur, cur.copy(into) as copy:
            while block := spool.read(1 << 20):
                copy.write(block)
        conn.commit()
        elapsed = time.perf_counter() - started
    engine.dispose()
    return int(rows), elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--paths", default="row,columnar")
    parser.add_argument("--server", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "--child", nargs=3, metavar=("SOURCE", "REGISTRY", "PATH"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        source_url, registry_url, path = args.child
        print(json.dumps(run_path(source_url, registry_url, path, args.batch_size)))
        return

    results = {}
    ceiling = None
    with scratch_database(args.server, "src") as source_url:
        for path in args.paths.split(","):
            build_source(source_url, args.rows)  # the same rows for every path
            with scratch_database(args.server, "reg") as registry_url:
                out = (
                    subprocess.run(
                        [
                            sys.executable,
                            "-m",
                            "bench.columnar_bench",
                            "--batch-size",
                            str(args.batch_size),
                            "--child",
                            source_url,
                            registry_url,
                            path,
                        ],
                        check=True,
                        capture_output=True,
                        text=True,
                    )
                    .stdout.strip()
                    .splitlines()[-1]
                )
                results[path] = json.loads(out)
                if ceiling is None:
                    copied, seconds = binary_copy_ceiling(registry_url)
                    ceiling = copied / seconds
                    print(
                        f"binary COPY ceiling: {copied:,} rows in {seconds:.2f} s = {ceiling:,.0f} rows/s"
                    )
    digests = {r["digest"] for r in results.values()}
    for path, r in results.items():
        rate = r["rows"] / r["seconds"]
        print(
            f"columnar_bench rows={args.rows} path={path} sync_rows_per_s={rate:.0f} "
            f"copy_rows_per_s={ceiling:.0f} ratio={rate / ceiling:.3f} "
            f"incremental_1pct_s={r['incremental_s']:.2f} peak_rss_mb={r['peak_rss_mb']:.0f}"
        )
    if len(digests) != 1:
        raise SystemExit(f"the paths left different registries: {results}")
    print("registries equal (store.digest)")


if __name__ == "__main__":
    main()
