"""The keyset page query late in a big table, on PostgreSQL: the OR form against the index form.

    python bench/keyset_bench.py [--rows 2000000] [--batch-size 5000] [--server postgresql+psycopg://postgres@127.0.0.1/postgres]

Fills a Tax table (`tb_hoso`, with its `(NGAY_CAP_NHAT, ID)` index) with N rows in the server
(INSERT ... SELECT generate_series; every third row shares a change time, so pages cross
ties), then times one page read from a cursor 10%, 50% and 90% into the table and
`--from-end` rows before its end:

* before: `updated > u OR (updated = u AND key > k)`, which PostgreSQL cannot use as an index
  condition: it walks the index from the start and filters every row before the cursor (near
  the very end the planner may switch to a parallel scan and sort, which is cheap there);
* after: the query the SQL transport builds, `updated >= u AND (updated > u OR key > k)`,
  an index condition: it starts at the cursor.

Each is run `--repeat` times after one warm-up; the median is reported. The last line is
machine-readable:
`keyset_bench rows=N early_before_ms=.. early_after_ms=.. early_ratio=.. middle_... late_... end_...`
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import SecretStr
from sqlalchemy import Engine, and_, create_engine, event, or_, select, text
from sync_bench import scratch_database  # run as a script: bench/ is on the path

from connectors.base import ConnectorContext
from connectors.identifiers import IdentifierHasher
from connectors.tax import TaxConnector
from simulators import tax

FIRST = datetime(2025, 1, 1)


def fill(url: str, rows: int) -> None:
    engine = create_engine(url)
    tax.metadata.create_all(engine, tables=[tax.tb_hoso])
    with engine.begin() as conn:
        conn.execute(
            text(
                """
                INSERT INTO tb_hoso ("ID", "MA_HS", "MA_TTHC", "TEN_TTHC", "MA_CQ", "NGAY_NHAN",
                    "KENH_NOP", "TRANG_THAI", "LE_PHI", "NOP_PHI_TT", "NGAY_CAP_NHAT")
                SELECT i, '000.00.06.H56-250101-' || i, '1.000123', 'Đăng ký thuế lần đầu',
                    '000.00.06.H56', :first, 'TRUC_TUYEN', 2, 0, 0,
                    :first + (i / 3) * interval '1 second'
                FROM generate_series(1, :rows) AS i
                """
            ),
            {"first": FIRST, "rows": rows},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE tb_hoso"))
    engine.dispose()


def timed(run: Callable[[], None], repeat: int) -> float:
    run()  # warm-up: caches and plans
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--from-end", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--server", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()

    with scratch_database(args.server, "keyset") as url:
        started = time.perf_counter()
        fill(url, args.rows)
        print(f"{args.rows:,} rows in {time.perf_counter() - started:.1f} s")
        engine = create_engine(url)
        results = {}
        for label, key in (
            ("early", args.rows // 10),
            ("middle", args.rows // 2),
            ("late", args.rows * 9 // 10),
            ("end", args.rows - args.from_end),
        ):
            results[label] = measure(engine, url, key, args)
        engine.dispose()
    for label, (before_ms, after_ms, plans) in results.items():
        print(
            f"{label:>6} page: OR form {before_ms:9.1f} ms ({plans[0]}), "
            f"index form {after_ms:9.1f} ms ({plans[1]}), ratio {before_ms / after_ms:.1f}"
        )
    summary = " ".join(
        f"{label}_before_ms={b:.1f} {label}_after_ms={a:.1f} {label}_ratio={b / a:.1f}"
        for label, (b, a, _) in results.items()
    )
    print(f"keyset_bench rows={args.rows} {summary}")


def measure(
    engine: Engine, url: str, key: int, args: argparse.Namespace
) -> tuple[float, float, tuple[str, str]]:
    """Median time of one page from the cursor at `key`, OR form and index form, and plans."""
    cursor: dict[str, Any] = {
        "updated_at": (FIRST + timedelta(seconds=key // 3)).isoformat(),
        "key": key,
    }
    connector = TaxConnector(
        ConnectorContext(
            source="tax",
            settings={"url": url},
            hasher=IdentifierHasher(SecretStr("bench-key-" + "x" * 32)),
            batch_size=args.batch_size,
            lookback=timedelta(0),
        )
    )
    # The page query exactly as the transport sends it, captured from one read.
    sent: list[tuple[str, Any]] = []

    @event.listens_for(connector.engine, "before_cursor_execute")
    def capture(_c: object, _cur: object, statement: str, parameters: Any, *_: object) -> None:
        sent.append((statement, parameters))

    next(connector.read(cursor))
    connector.close()
    new_sql, new_params = next(item for item in sent if "LIMIT" in item[0])

    table = tax.tb_hoso
    updated, ident = table.c.NGAY_CAP_NHAT, table.c["ID"]
    at = datetime.fromisoformat(cursor["updated_at"])
    old = (
        select(*(table.c[name] for name in connector.columns))
        .where(or_(updated > at, and_(updated == at, ident > key)))
        .order_by(updated, ident)
        .limit(args.batch_size)
    )
    compiled = old.compile(engine)
    old_sql, old_params = str(compiled), compiled.params

    def page(statement: str, parameters: Any) -> Callable[[], None]:
        def run() -> None:
            with engine.connect() as conn:
                rows = conn.exec_driver_sql(statement, parameters).all()
                assert len(rows) == args.batch_size

        return run

    def plan(statement: str, parameters: Any) -> str:
        with engine.connect() as conn:
            lines = conn.exec_driver_sql(f"EXPLAIN {statement}", parameters).scalars().all()
        return lines[1].strip().removeprefix("->  ").split("  (")[0]

    return (
        timed(page(old_sql, old_params), args.repeat),
        timed(page(new_sql, new_params), args.repeat),
        (plan(old_sql, old_params), plan(new_sql, new_params)),
    )


if __name__ == "__main__":
    main()
