"""The columnar sync path: whole pages mapped and checked as columns, the rest row by row.

For a connector that offers a columnar read (`Connector.read_arrow`, the SQL transport on
PostgreSQL, its declared mapping applied to columns), each page is deduplicated by id (last delivery, as
`map_records` does), mapped to canonical columns by the connector (identifiers hashed
there), and checked against the canonical model's rules on whole columns (`models.frame`).
Rows that pass stay a frame, written to the registry from Arrow (`store.write_frame_batch`:
binary COPY, no record object per row); every other row goes through the row path
(`map_records`: screen, `to_canonical`, the model), which gives the exact reasons, redacts
and quarantines as always. The engine writes both in the batch's one transaction.

So the registry a columnar sync leaves is the one the row path leaves (the same dossiers,
history, quarantine, counters and cursor: tests/dossierhub/test_columnar_sync.py), only
faster: most rows never become a Python object one by one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from connectors.base import ArrowBatch, Batch, Connector, Cursor
from dossierhub.sync import Mapped, map_records

log = logging.getLogger(__name__)


def mapped_batches(
    connector: Connector, cursor: Cursor | None
) -> Iterator[tuple[Mapped, Batch | ArrowBatch]]:
    """Each batch of a read from `cursor`, mapped: columnar when the connector offers it,
    else row by row."""
    pages = connector.read_arrow(cursor)
    if pages is None:
        for batch in connector.read(cursor):
            yield map_records(connector, batch.records), batch
        return
    for page in pages:
        if isinstance(page, Batch):
            yield map_records(connector, page.records), page
        else:
            yield map_page(connector, page), page


def map_page(connector: Connector, page: ArrowBatch) -> Mapped:
    """One Arrow page mapped: checked rows as records, the others through the row path."""
    import pyarrow as pa

    from models import frame as rules

    table = last_delivery(page.table, connector_key(connector))
    try:
        checked = rules.check(connector.to_canonical_frame(table))
    except Exception:  # a frame mapping bug must cost speed, never records
        log.exception(
            "source %r: the columnar mapping failed; this page maps row by row", connector.source
        )
        return map_records(connector, connector.raw_records(table))
    ok = checked.get_column("ok")
    passed = checked.filter(ok)  # written from Arrow as they are: no record object per row
    if ok.all():
        return Mapped([], [], passed)
    slow = table.filter(pa.array((~ok).to_list(), type=pa.bool_()))
    mapped = map_records(connector, connector.raw_records(slow))
    return Mapped(mapped.records, mapped.rejections, passed)


def connector_key(connector: Connector) -> str:
    key = getattr(connector, "key_column", None)
    if not isinstance(key, str):
        raise TypeError(f"{type(connector).__name__}: a columnar read needs a key_column")
    return key


def last_delivery(table: Any, key: str) -> Any:
    """The page with each id's last row only (sources read in change order), as
    `map_records` keeps it; rows without an id all stay."""
    import polars as pl

    ids = pl.Series(table.column(key)).cast(pl.String)
    if ids.null_count() == 0 and ids.n_unique() == len(ids):
        return table
    keep = (
        pl.DataFrame({"id": ids})
        .with_row_index("row")
        .with_columns(last=pl.col("row").max().over("id"))
        .filter(pl.col("id").is_null() | (pl.col("row") == pl.col("last")))
        .get_column("row")
    )
    return table.take(keep.to_list())
