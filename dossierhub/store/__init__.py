"""The registry store: set-based writes of one batch, cursors, runs, quarantine and locks.

Every write of a batch happens inside one transaction the caller owns (`write_batch`, given
the batch's `BatchContext`: its source, cursor, run and how it closes), as a few set-based
statements whatever the batch size: one read of the stored versions of the batch's ids; new
dossiers and status events by COPY on PostgreSQL (executemany on SQLite); newer versions by
one version-guarded INSERT ... ON CONFLICT DO UPDATE; quarantine upserts; the cursor and the
run counters. No per-row round trips. A columnar batch
(`write_frame_batch`) does the same from a polars frame, by binary COPY from Arrow.

The package's modules: `registry` (opening it, digest), `batches` (one batch's writes),
`frames` (the columnar path's write), `quarantine`, `statements` (what the writers share),
`runs` (cursors, sources, runs) and `locks` (one sync per source at a time).
"""

from __future__ import annotations

from dossierhub.store.batches import (
    BatchContext,
    BatchCounts,
    holds_dossiers,
    log,
    write_batch,
)
from dossierhub.store.frames import (
    NewFrame,
    encode_new_frame,
    write_frame_batch,
)
from dossierhub.store.locks import (
    SyncLock,
    holder_id,
    prove_lock,
    sync_lock_held,
)
from dossierhub.store.quarantine import (
    QUARANTINE_KEY_LENGTH,
    Rejection,
    quarantine_key,
)
from dossierhub.store.registry import (
    SUPPORTED,
    analyze,
    connection_lost,
    digest,
    ensure_ready,
    normal,
    now,
    open_registry,
    safe_registry_url,
)
from dossierhub.store.runs import (
    finish_run,
    load_cursor,
    register_source,
    run_cursors,
    start_run,
)

__all__ = [
    "QUARANTINE_KEY_LENGTH",
    "SUPPORTED",
    "BatchContext",
    "BatchCounts",
    "NewFrame",
    "Rejection",
    "SyncLock",
    "analyze",
    "connection_lost",
    "digest",
    "encode_new_frame",
    "ensure_ready",
    "finish_run",
    "holder_id",
    "holds_dossiers",
    "load_cursor",
    "log",
    "normal",
    "now",
    "open_registry",
    "prove_lock",
    "quarantine_key",
    "register_source",
    "run_cursors",
    "safe_registry_url",
    "start_run",
    "sync_lock_held",
    "write_batch",
    "write_frame_batch",
]
