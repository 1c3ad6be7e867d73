"""The sync engine: one function the CLI, the tests and the Airflow tasks all call.

`sync_source` reads a connector batch by batch from the saved cursor, maps and validates each
record, and writes each batch — upserts, status events, quarantine, the new cursor and the run
counters — in one registry transaction. Hence the engine's promises:

* nothing is lost and nothing is counted twice: a record lands in the registry or in
  quarantine, and re-running (also after a crash) leaves the registry as one clean run would;
* the saved cursor never stands past data that did not land;
* one sync per source (and partition) at a time, enforced by a lock in the registry;
* memory bounded by the batch size.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from connectors.base import ArrowBatch, Batch, Connector, Cursor, RawRecord, beyond
from connectors.masking import mask_text
from dossierhub import reads, store
from dossierhub.errors import DossierHubError, Reason, RecordRejected, SyncLockLostError
from models.dossier import DossierRecord

log = logging.getLogger(__name__)


@dataclass
class SyncResult:
    run_id: int
    source: str
    partition: str = ""
    status: str = "running"
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    batches: int = 0
    cursor_before: Cursor | None = None
    cursor_after: Cursor | None = None
    duration_s: float = 0.0
    error: str | None = None

    def add(self, counts: store.BatchCounts) -> None:
        self.rows_read += counts.read
        self.inserted += counts.inserted
        self.updated += counts.updated
        self.unchanged += counts.unchanged
        self.quarantined += counts.quarantined
        self.batches += 1


ProgressCallback = Callable[[SyncResult], None]


@dataclass
class Mapped:
    records: list[DossierRecord] = field(default_factory=list)
    rejections: list[store.Rejection] = field(default_factory=list)
    frame: Any = None  # a columnar batch's checked rows (polars), written from Arrow
    encoded: store.NewFrame | None = None  # the frame encoded ahead for a first load


def map_records(connector: Connector, raws: list[RawRecord]) -> Mapped:
    """Map native records; a record that cannot be mapped is set aside with its reasons.

    A batch that repeats an id keeps its last delivery (sources read in change order), so a
    valid and a malformed version of one dossier never both land from one batch.
    """
    mapped = Mapped()
    last = {raw.source_id: raw for raw in raws if raw.source_id is not None}
    for raw in raws:
        if raw.source_id is not None and last[raw.source_id] is not raw:
            continue
        # The transport's own findings (no id, no readable or plausible change time) come
        # first; the mapping's reasons about other fields follow.
        reasons = connector.screen(raw)
        try:
            record = connector.to_canonical(raw)
        except RecordRejected as rejected:
            named = {reason.field for reason in reasons}
            reasons = [*reasons, *(r for r in rejected.reasons if r.field not in named)]
        except Exception as exc:  # a mapping bug must not stop the sync nor lose the record
            reasons = [*reasons, Reason("record", "mapping_error", f"{type(exc).__name__}: {exc}")]
        else:
            if not reasons:
                mapped.records.append(record)
                continue
        # Personal identifiers are hashed before the payload is kept in quarantine.
        kept = RawRecord(raw.source_id, connector.redact(raw.payload, reasons))
        mapped.rejections.append(store.Rejection(kept, reasons))
    return mapped


def sync_source(
    engine: Engine,
    connector: Connector,
    *,
    connector_name: str | None = None,
    description: str | None = None,
    full_refresh: bool = False,
    progress: ProgressCallback | None = None,
) -> SyncResult:
    """Sync one source into the registry and return the run's counts.

    `full_refresh` reads the whole source again, ignoring the saved cursor (the registry is
    upserted, never emptied); for a connector whose full read is the source's current state
    (`full_read_is_current`) that state wins, even over a copy the source dated later. A
    connector made for one partition syncs that slice with its own cursor and lock, so
    partitions of one source can sync at once on several workers. Raises `SyncLockedError`
    when the same source and partition is already syncing, and `SyncLockLostError` (the run
    recorded as failed) when the lock is lost mid-sync, before another batch commits;
    re-raises any source error after recording the run as failed.
    """
    from dossierhub import columnar  # it builds on map_records below

    source = connector.source
    partition = connector.context.partition  # each partition has its own cursor and lock
    store.ensure_ready(engine)
    with engine.begin() as conn:
        store.register_source(
            conn,
            name=source,
            connector=connector_name or type(connector).__name__,
            description=description,
        )
    started = time.monotonic()
    try:
        with store.sync_lock_held(engine, source_system=source, partition=partition) as lock:
            with engine.begin() as conn:
                store.prove_lock(conn, lock)
                saved = store.load_cursor(conn, source_system=source, partition=partition)
                cursor = None if full_refresh else _sane_cursor(conn, connector, saved)
                # A first load: batches skip the stored-version lookup until one finds an id
                # already stored (see store.write_batch's `fresh`).
                fresh = not store.holds_dossiers(conn, source_system=source)
                run_id = store.start_run(
                    conn,
                    source_system=source,
                    partition=partition,
                    full_refresh=full_refresh,
                    cursor_before=saved,
                    holder=lock.holder,
                )
            result = SyncResult(run_id, source, partition, cursor_before=saved, cursor_after=saved)
            # While batch N is written (mostly waiting on the database), batch N+1 is read
            # and mapped. Writes stay strictly in order, one at a time, so each batch and
            # its cursor still commit together and in sequence.
            writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"write-{source}")
            pending: Future[None] | None = None

            next_analyze = 1000
            lookups_analyzed = True  # whether dossier's statistics kept up with the run
            # A full read of a table or an API is the source's current state: it wins, also
            # where the source dated a change backwards (the version guard alone would keep
            # the registry's later-dated copy forever).
            overwrite = full_refresh and connector.full_read_is_current
            # What every batch of the run shares; each adds its cursor, size and settlements.
            run_context = store.BatchContext(
                source_system=source, partition=partition, run_id=run_id, overwrite=overwrite
            )

            def write(mapped: Mapped, batch: Batch | ArrowBatch) -> None:
                nonlocal next_analyze, fresh, lookups_analyzed
                context = replace(
                    run_context,
                    cursor=batch.cursor,
                    read=_size(batch),
                    settles=batch.settles,
                    fresh=fresh,
                )
                with engine.begin() as conn:
                    store.prove_lock(conn, lock)  # fencing: no batch once the lock is lost
                    # A columnar batch's checked rows are written from their frame.
                    write_rows = (
                        store.write_batch
                        if mapped.frame is None
                        else functools.partial(
                            store.write_frame_batch, frame=mapped.frame, encoded=mapped.encoded
                        )
                    )
                    counts = write_rows(
                        conn, context=context, records=mapped.records, rejections=mapped.rejections
                    )
                fresh = fresh and not (counts.updated or counts.unchanged)
                result.add(counts)
                if batch.cursor is not None:
                    result.cursor_after = batch.cursor
                grown = result.inserted >= next_analyze
                if grown or not (fresh or lookups_analyzed):
                    # A bulk load outgrows the planner's statistics; refresh them as the
                    # table grows tenfold, so batch lookups keep using the indexes. While
                    # the load is fresh no batch looks dossiers up: their statistics wait
                    # until one does.
                    store.analyze(engine, lookups=not fresh)
                    lookups_analyzed = not fresh
                    while result.inserted >= next_analyze:
                        next_analyze *= 10

            def settle() -> None:
                nonlocal pending
                if pending is not None:
                    done, pending = pending, None
                    done.result()  # re-raises a failed write
                    if progress is not None:
                        progress(result)

            try:
                # Columnar when the connector offers it (dossierhub/columnar.py), else row by row.
                for mapped, batch in columnar.mapped_batches(connector, cursor):
                    if mapped.frame is not None and fresh:
                        # Encoded here while the previous batch is written: the writer,
                        # the slowest stage, then only sends it.
                        mapped.encoded = store.encode_new_frame(engine, mapped.frame, run_id=run_id)
                    settle()
                    pending = writer.submit(write, mapped, batch)
                settle()
            except BaseException as exc:
                # A write in flight is valid data with its own cursor: let it land first.
                if pending is not None:
                    with contextlib.suppress(Exception):
                        pending.result()
                result.status = "failed"
                result.error = _describe(exc)
                with engine.begin() as conn:
                    store.finish_run(conn, run_id=run_id, status="failed", error=result.error)
                raise
            finally:
                writer.shutdown(wait=True)
            try:
                with engine.begin() as conn:
                    store.prove_lock(conn, lock)
                    store.finish_run(conn, run_id=run_id, status="succeeded")
            except SyncLockLostError as exc:
                result.status, result.error = "failed", str(exc)
                with engine.begin() as conn:
                    store.finish_run(conn, run_id=run_id, status="failed", error=result.error)
                raise
            result.status = "succeeded"
    except SQLAlchemyError as exc:
        during = f"the sync of source {source!r}"
        lost = store.connection_lost(exc, during=during, engine=engine)
        if lost is None:
            raise
        raise lost from None
    finally:
        connector.close()
    result.duration_s = time.monotonic() - started
    return result


@dataclass(frozen=True)
class RetryResult:
    loaded: int
    still_rejected: int


def retry_quarantine(
    engine: Engine, connector: Connector, *, ids: list[int] | None = None
) -> RetryResult:
    """Map quarantined payloads again (after a mapping or code-list fix) and load those that pass.

    Loaded records resolve their quarantine entries; the others get their new reasons. An
    older payload never overwrites a newer version already in the registry.
    """
    source = connector.source
    store.ensure_ready(engine)
    with store.sync_lock_held(engine, source_system=source) as lock:
        with engine.connect() as conn:
            raws = reads.quarantined_records(conn, source=source, ids=ids)
        mapped = map_records(connector, raws)
        with engine.begin() as conn:
            store.prove_lock(conn, lock)
            store.write_batch(
                conn,
                context=store.BatchContext(source),
                records=mapped.records,
                rejections=mapped.rejections,
            )
    connector.close()
    return RetryResult(loaded=len(mapped.records), still_rejected=len(mapped.rejections))


def _sane_cursor(conn: Connection, connector: Connector, saved: Cursor | None) -> Cursor | None:
    """The saved cursor, or, when it stands past now + the future tolerance (left by an
    implausible change time before such times were quarantined), the latest cursor of the
    source's runs that does not; None (read from the start) when there is none."""
    horizon = connector.context.horizon()

    def sane(cursor: Cursor) -> bool:
        moment = connector.cursor_time(cursor)
        return moment is None or not beyond(moment, horizon)

    if saved is None or sane(saved):
        return saved
    partition = connector.context.partition
    earlier = store.run_cursors(conn, source_system=connector.source, partition=partition)
    found = next((cursor for cursor in earlier if sane(cursor)), None)
    log.warning(
        "source %r: the saved cursor %s stands past now + the future tolerance; it is ignored "
        "and the read starts from %s",
        connector.source,
        saved,
        found if found is not None else "the beginning",
    )
    return found


def _size(batch: Batch | ArrowBatch) -> int:
    """Rows read in a batch, repeats included."""
    return len(batch.records) if isinstance(batch, Batch) else batch.table.num_rows


def _describe(exc: BaseException) -> str:
    if isinstance(exc, DossierHubError):
        return str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    text: Any = str(exc).strip().splitlines()
    return mask_text(f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": "))
