"""The checks: each one promise of `connectors.base`, checked on a real source, in plain Python.

Each `check_*` function returns normally when the promise holds and raises `ConformanceError`
naming the connector, the promise, the records that break it and what to fix. None needs
pytest: `Conformance.run()` and `dossierhub connectors test` call them directly, and the
pytest adapter (`connectors.testing`) calls the very same functions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from contextlib import closing
from datetime import timedelta

from connectors.base import HASHED, Connector, Period, RawRecord
from connectors.conformance.failures import ConformanceError, Promise, examples, name_of
from connectors.conformance.reading import (
    DEFAULT_LIMITS,
    Limits,
    Reading,
    ReceivedDate,
    UpdatedAt,
    default_received_date,
    default_updated_at,
    read_bounded,
    resized,
    stored,
)
from connectors.errors import Reason, RecordRejected
from models.dossier import DossierRecord

Outcome = DossierRecord | list[Reason]


def check_health(connector: Connector) -> None:
    """`check()` says the source is readable, with a detail for the operator."""
    name = name_of(connector)
    try:
        health = connector.check()
    except Exception as exc:
        raise ConformanceError(
            Promise.HEALTH, f"{name}: check() raised {type(exc).__name__}: {exc}"
        ) from exc
    if not health.ok:
        raise ConformanceError(
            Promise.HEALTH, f"{name}: check() reports the source unhealthy: {health.detail}"
        )
    if not (isinstance(health.detail, str) and health.detail.strip()):
        raise ConformanceError(
            Promise.HEALTH,
            f"{name}: check() gives no detail; say what was checked (e.g. 'table X readable, "
            "N rows')",
        )


def check_mapping(connector: Connector, records: Iterable[RawRecord]) -> list[Outcome]:
    """Each record maps to a record of this source and id, or is rejected with reasons.

    Also checks that no personal identifier (the connector's `personal_fields`) is left in
    clear, neither in a mapped record nor in a rejected record's payload as kept in quarantine.
    """
    name = name_of(connector)
    outcomes: list[Outcome] = []
    crashed: list[tuple[str | None, str]] = []
    wrong: list[tuple[str | None, str]] = []
    leaked: list[tuple[str | None, str]] = []
    undeclared: list[tuple[str | None, str]] = []
    for raw in records:
        key = raw.source_id
        try:
            record = connector.to_canonical(raw)
        except RecordRejected as rejected:
            reasons = list(rejected.reasons)
            if not reasons or not all(isinstance(r, Reason) for r in reasons):
                wrong.append((key, f"id {key!r}: RecordRejected without Reason objects"))
            outcomes.append(reasons)
            kept = connector.redact(raw.payload, reasons)
            for native in connector.personal_fields:
                value = kept.get(native)
                if value is not None and not str(value).startswith((HASHED, "<redacted")):
                    leaked.append((key, f"id {key!r}: quarantined payload field {native}"))
            continue
        except Exception as exc:
            crashed.append((key, f"id {key!r}: {type(exc).__name__}: {exc}"))
            continue
        if not isinstance(record, DossierRecord):
            wrong.append((key, f"id {key!r}: returned {type(record).__name__}"))
            continue
        if record.source_system != connector.source or record.source_id != key:
            said = f"source {record.source_system!r}, id {record.source_id!r}"
            wrong.append((key, f"id {key!r}: record says {said}"))
        if record.applicant_key is not None and not connector.personal_fields:
            undeclared.append((key, f"id {key!r}"))
        dumped = record.model_dump_json()
        for native in connector.personal_fields:
            value = raw.payload.get(native)
            clear = str(value).strip() if value is not None else ""
            if len(clear) >= 6 and not clear.startswith(HASHED) and clear in dumped:
                leaked.append((key, f"id {key!r}: {native} in clear in the mapped record"))
        outcomes.append(record)
    if crashed:
        raise _broken(
            Promise.MAPPING,
            f"{name}: to_canonical() raised an unexpected exception for {len(crashed)} "
            f"record(s) ({_listed(crashed)}); a mapping must return a DossierRecord or raise "
            f"RecordRejected with a Reason per problem (see {connector.mapping_file})",
            crashed,
        )
    if wrong:
        raise _broken(
            Promise.MAPPING, f"{name}: to_canonical() broke the contract: {_listed(wrong)}", wrong
        )
    if undeclared:
        raise _broken(
            Promise.PERSONAL_DATA,
            f"{name}: records carry an applicant_key ({_listed(undeclared)}) but personal_fields"
            " is empty, so a rejected record's identifier would be kept in clear in quarantine;"
            " declare the native identifier fields in personal_fields",
            undeclared,
        )
    if leaked:
        raise _broken(
            Promise.PERSONAL_DATA,
            f"{name}: personal identifiers left in clear ({_listed(leaked)}); hash them with "
            "identifier_key() and list their native fields in personal_fields",
            leaked,
        )
    return outcomes


def _listed(found: list[tuple[str | None, str]]) -> str:
    return examples((text for _, text in found), quote=False)


def _broken(promise: Promise, detail: str, found: list[tuple[str | None, str]]) -> ConformanceError:
    return ConformanceError(promise, detail, source_ids=dict.fromkeys(i for i, _ in found))


def check_unique_ids(connector: Connector, reading: Reading) -> None:
    """No source id appears twice in one full read."""
    counts = Counter(source_id for source_id in reading.ids if source_id is not None)
    repeated = {source_id: n for source_id, n in counts.items() if n > 1}
    if repeated:
        shown = examples((f"{i!r} x{n}" for i, n in repeated.items()), quote=False)
        raise ConformanceError(
            Promise.UNIQUE_IDS,
            f"{name_of(connector)}: {len(repeated)} source id(s) read more than once in one "
            f"full read ({shown}); source ids must be unique and pages must not overlap",
            source_ids=repeated,
        )


def check_pagination(
    connector: Connector, *, small_batch_size: int = 7, limits: Limits = DEFAULT_LIMITS
) -> Reading:
    """A full read ends, and reading in small batches gives the very same records.

    Returns the small-batch reading (several batches, for the resume check).
    """
    with closing(resized(connector, connector.context.batch_size)) as full:
        whole = read_bounded(full, limits=limits)
    with closing(resized(connector, small_batch_size)) as small:
        paged = read_bounded(small, limits=limits)
    a, b = Counter(whole.ids), Counter(paged.ids)
    if a != b:
        missing, extra = list((a - b).elements()), list((b - a).elements())
        raise ConformanceError(
            Promise.PAGINATION,
            f"{name_of(connector)}: reading {small_batch_size} records a batch gives other "
            f"records than {connector.context.batch_size} a batch: missing {examples(missing)}, "
            f"extra {examples(extra)}; page boundaries skip or repeat records",
            source_ids=[*missing, *extra],
        )
    return paged


def check_resume(
    connector: Connector,
    reading: Reading,
    *,
    updated_at: UpdatedAt = default_updated_at,
    limits: Limits = DEFAULT_LIMITS,
) -> None:
    """Resuming from a saved cursor skips nothing and re-reads only the look-back window.

    `reading` is a full read of `connector`'s (unchanged) source in at least two batches. The
    read is resumed from the middle batch's cursor and from the last one, each through JSON
    as the registry stores it.
    """
    batches = [batch for batch in reading.batches if batch.records]
    if len(batches) < 2:
        raise ConformanceError(
            Promise.RESUME,
            f"{name_of(connector)}: the source gave {len(batches)} batch(es); the resume check "
            "needs at least two (use a larger sample source or a smaller batch size)",
        )
    for k in (len(batches) // 2, len(batches)):
        with closing(resized(connector, connector.context.batch_size)) as again:
            _resume_at(again, reading, k, updated_at=updated_at, limits=limits)


def _resume_at(
    connector: Connector, reading: Reading, k: int, *, updated_at: UpdatedAt, limits: Limits
) -> None:
    """Resume after the `k`-th non-empty batch of `reading` and judge what comes back."""
    name = name_of(connector)
    batches = [batch for batch in reading.batches if batch.records]
    done, rest = batches[:k], batches[k:]
    cursor = stored(batches[k - 1].cursor or {})
    lookback = connector.context.lookback
    after = read_bounded(connector, cursor, limits=limits)
    seen = {r.source_id for r in after.records}
    skipped = {r.source_id for b in rest for r in b.records} - seen
    if skipped:
        raise ConformanceError(
            Promise.RESUME,
            f"{name}: read() resumed from the cursor of batch {k} ({cursor!r}) skipped "
            f"{len(skipped)} record(s) that come after it ({examples(skipped)})",
            source_ids=skipped,
        )
    invented = seen - {r.source_id for r in reading.records}
    if invented:
        raise ConformanceError(
            Promise.RESUME,
            f"{name}: read() resumed from {cursor!r} returned records absent from a full read "
            f"of the unchanged source ({examples(invented)})",
            source_ids=invented,
        )
    earlier = {r.source_id: r for b in done for r in b.records}
    reread = [r for r in after.records if r.source_id in earlier]
    if not rest and lookback <= timedelta(0):
        if reread:
            raise ConformanceError(
                Promise.RESUME,
                f"{name}: the source did not change, yet read() from the last cursor "
                f"({cursor!r}) returned {len(reread)} record(s) ({examples(_ids(reread))})",
                source_ids=_ids(reread),
            )
        return
    known = [t for t in (updated_at(connector, r) for r in earlier.values()) if t]
    if not known:
        # Without times, only a read that starts over can be told apart.
        if len(reread) >= len(earlier):
            raise ConformanceError(
                Promise.RESUME,
                f"{name}: read() from the cursor of batch {k} returned every earlier record "
                "again: it ignores the cursor",
            )
        return
    since = max(known) - lookback
    older = [r for r in reread if (t := updated_at(connector, r)) is not None and t < since]
    if older:
        raise ConformanceError(
            Promise.RESUME,
            f"{name}: read() from the cursor of batch {k} ({cursor!r}) re-read {len(older)} "
            f"record(s) last updated before the cursor less the look-back of {lookback} "
            f"({examples(_ids(older))}); it must resume after the cursor",
            source_ids=_ids(older),
        )


def check_changes(
    connector: Connector,
    before: Reading,
    changed: Iterable[str],
    *,
    updated_at: UpdatedAt = default_updated_at,
    limits: Limits = DEFAULT_LIMITS,
) -> Reading:
    """After the source changed, a read from the last cursor gives the changed records.

    `before` is the full read taken before the change; `changed` the source ids changed or
    added since. Besides them, the read may only return records re-read inside the look-back
    window. Every record returned must map or be rejected with reasons.
    """
    name = name_of(connector)
    changed = {str(source_id) for source_id in changed}
    if not changed:
        raise ConformanceError(
            Promise.CHANGES, f"{name}: make_changes() changed nothing; change at least one record"
        )
    cursor = before.cursor
    if cursor is None:
        raise ConformanceError(
            Promise.CHANGES, f"{name}: the full read before the change left no cursor"
        )
    with closing(resized(connector, connector.context.batch_size)) as again:
        after = read_bounded(again, cursor, limits=limits)
        missed = changed - {r.source_id for r in after.records}
        if missed:
            raise ConformanceError(
                Promise.CHANGES,
                f"{name}: read() from the last cursor ({cursor!r}) did not return "
                f"{len(missed)} changed record(s) ({examples(missed)}); a change must move a "
                "record past every cursor given out before it",
                source_ids=missed,
            )
        known = [t for t in (updated_at(again, r) for r in before.records) if t]
        if known:  # without times, re-reads cannot be told from stale records
            since = max(known) - again.context.lookback
            stale = [
                r
                for r in after.records
                if r.source_id not in changed and (t := updated_at(again, r)) and t < since
            ]
            if stale:
                raise ConformanceError(
                    Promise.CHANGES,
                    f"{name}: read() from the last cursor ({cursor!r}) returned {len(stale)} "
                    f"unchanged record(s) older than the cursor ({examples(_ids(stale))})",
                    source_ids=_ids(stale),
                )
        check_mapping(again, after.records)
    return after


def check_count(
    connector: Connector,
    reading: Reading,
    *,
    received_date: ReceivedDate = default_received_date,
    periods: Iterable[Period] | None = None,
) -> None:
    """`count(None)` equals the records a full read gives; `count(period)` those received in it.

    A record whose receipt date cannot be told (rejected, no received column) may or may not
    be in the source's own count, so the period count must fall within the range they allow.
    Without `periods`, the busiest month of the sample and its year are checked.
    """
    name = name_of(connector)
    records = reading.records
    total = _counted(connector, None)
    if total != len(records):
        raise ConformanceError(
            Promise.COUNT,
            f"{name}: count(None) is {total} but a full read gives {len(records)} records; "
            "reconciliation compares the two",
        )
    days = [received_date(connector, raw) for raw in records]
    unknown = sum(day is None for day in days)
    known = [day for day in days if day is not None]
    if periods is None:
        if not known:
            raise ConformanceError(
                Promise.COUNT,
                f"{name}: no record's receipt date is known; cannot check count(period)",
            )
        month = Counter(day.strftime("%Y-%m") for day in known).most_common(1)[0][0]
        periods = [Period.parse(month), Period.parse(month[:4])]
    for period in periods:
        inside = sum(period.start <= day < period.end for day in known)
        counted = _counted(connector, period)
        if not inside <= counted <= inside + unknown:
            expected = str(inside) if not unknown else f"{inside}..{inside + unknown}"
            raise ConformanceError(
                Promise.COUNT,
                f"{name}: count() for {period.start}..{period.end} is {counted}, but the "
                f"records read say {expected} were received then ({unknown} of unknown date); "
                "count by the local receipt date",
            )


def _counted(connector: Connector, period: Period | None) -> int:
    try:
        return connector.count(period)
    except Exception as exc:
        raise ConformanceError(
            Promise.COUNT,
            f"{name_of(connector)}: count({period}) raised {type(exc).__name__}: {exc}",
        ) from exc


def _ids(records: Iterable[RawRecord]) -> list[str | None]:
    return [record.source_id for record in records]
