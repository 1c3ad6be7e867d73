"""The connector conformance kit: the promises of `connectors.base`, checked on a real source.

An agency runs it on its connector with a few lines of pytest:

    from connectors.testing import ConnectorConformance, context_for

    class TestConstructionPermits(ConnectorConformance):
        def setup_source(self, tmp_path):      # optional: a fresh source for each check
            self.path = write_sample_export(tmp_path)

        def make_connector(self):
            return PermitConnector(context_for("permits", {"path": str(self.path)}))

        def make_changes(self):                # optional: change the source, return the ids
            return touch_two_permits(self.path)

Every check is also a plain function (`check_health`, `check_mapping`, `check_unique_ids`,
`check_pagination`, `check_resume`, `check_changes`, `check_count`) that raises
`AssertionError` with a message naming the connector and what to fix, so the kit runs outside
a test class too. What is checked:

* `check()` reports the source healthy;
* every record `read()` yields maps to a valid `DossierRecord` of this source and id, or is
  rejected with `RecordRejected` and at least one reason — never another exception — and no
  personal identifier survives in clear, in the record or in the payload kept in quarantine;
* source ids are unique across a full read;
* a read ends within a bound of batches and time, every batch fits the batch size and carries
  a JSON-storable cursor that moves on, and the batch size does not change what is read;
* a read resumed from a saved cursor skips nothing and re-reads only what the look-back
  window allows; from the last cursor of an unchanged source it returns nothing new;
* after `make_changes()` an incremental read returns the changed records and nothing older;
* `count(None)` equals the records read, and `count(period)` the records received in it.

The kit needs to know when a raw record was received and last updated. By default it maps the
record, and for a rejected one falls back to the SQL transport's declared columns; a connector
whose rejected records carry these elsewhere overrides `received_date` / `updated_at`.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import SecretStr

from connectors.base import HASHED, Batch, Connector, ConnectorContext, Cursor, Period, RawRecord
from connectors.errors import Reason, RecordRejected
from connectors.identifiers import IdentifierHasher
from models.dossier import DossierRecord
from models.localtime import LOCAL

# Dates are local (Asia/Ho_Chi_Minh): UTC+7 all year round.
_SHOWN = 5  # examples quoted in a failure message

ReceivedDate = Callable[[Connector, RawRecord], date | None]
UpdatedAt = Callable[[Connector, RawRecord], datetime | None]


def context_for(
    source: str,
    settings: dict[str, Any],
    *,
    batch_size: int = 100,
    lookback: timedelta = timedelta(0),
) -> ConnectorContext:
    """A connector context for tests, with a throw-away hashing key."""
    return ConnectorContext(
        source=source,
        settings=settings,
        hasher=IdentifierHasher(SecretStr("conformance-kit-test-key-" + "k" * 16)),
        batch_size=batch_size,
        lookback=lookback,
    )


def who(connector: Connector) -> str:
    """How failure messages name a connector."""
    return f"connector {type(connector).__name__} (source {connector.source!r})"


def _examples(items: Iterable[Any], *, quote: bool = True) -> str:
    """The first few items, for a failure message (source ids quoted, descriptions not)."""
    shown = sorted(items, key=str)
    more = f" and {len(shown) - _SHOWN} more" if len(shown) > _SHOWN else ""
    return ", ".join(repr(i) if quote else str(i) for i in shown[:_SHOWN]) + more


@contextmanager
def opened(connector: Connector) -> Iterator[Connector]:
    """The connector, closed afterwards whatever happens."""
    try:
        yield connector
    finally:
        connector.close()


def resized(connector: Connector, batch_size: int) -> Connector:
    """A new connector of the same class and settings reading `batch_size` records a batch."""
    return type(connector)(replace(connector.context, batch_size=batch_size))


# -- reading --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Limits:
    """When a read counts as endless."""

    max_batches: int = 10_000
    max_seconds: float = 300.0


@dataclass
class Reading:
    """The batches one bounded read gave."""

    batches: list[Batch] = field(default_factory=list)

    @property
    def records(self) -> list[RawRecord]:
        return [record for batch in self.batches for record in batch.records]

    @property
    def ids(self) -> list[str | None]:
        return [record.source_id for record in self.records]

    @property
    def cursor(self) -> Cursor | None:
        """The cursor after the last batch, as the registry would store it (JSON)."""
        for batch in reversed(self.batches):
            if batch.cursor is not None:
                return stored(batch.cursor)
        return None


def stored(cursor: Cursor) -> Cursor:
    """The cursor after a round trip through the registry's JSON column."""
    return dict(json.loads(json.dumps(cursor)))


def read_bounded(
    connector: Connector, cursor: Cursor | None = None, *, limits: Limits = Limits()
) -> Reading:
    """Every batch of `connector.read(cursor)`, failing if the read does not end or misbehaves."""
    name = who(connector)
    reading = Reading()
    started = time.monotonic()
    previous: Cursor | None = None
    try:
        for batch in connector.read(cursor):
            assert isinstance(batch, Batch), (
                f"{name}: read() yielded {type(batch).__name__}, not a Batch"
            )
            bad = [r for r in batch.records if not isinstance(r, RawRecord)]
            assert not bad, f"{name}: read() yielded {type(bad[0]).__name__} records, not RawRecord"
            assert len(batch.records) <= connector.context.batch_size, (
                f"{name}: a batch of {len(batch.records)} records exceeds the batch size "
                f"{connector.context.batch_size}; memory must stay bounded by it"
            )
            if batch.records:
                assert batch.cursor is not None, (
                    f"{name}: batch {len(reading.batches) + 1} has no cursor; every batch must "
                    "carry the cursor after its last record so a sync can resume"
                )
                try:
                    again = stored(batch.cursor)
                except (TypeError, ValueError) as exc:
                    raise AssertionError(
                        f"{name}: cursor {batch.cursor!r} is not JSON ({exc}); the registry "
                        "stores cursors as JSON"
                    ) from None
                assert again == batch.cursor, (
                    f"{name}: cursor {batch.cursor!r} changes through JSON (to {again!r}); "
                    "use strings and numbers only"
                )
                assert batch.cursor != previous, (
                    f"{name}: batch {len(reading.batches) + 1} ends at the same cursor as the "
                    f"one before ({batch.cursor!r}): the read is not moving on"
                )
                previous = batch.cursor
            reading.batches.append(batch)
            assert len(reading.batches) <= limits.max_batches, (
                f"{name}: read() did not end after {limits.max_batches} batches "
                f"({len(reading.records)} records); pagination must stop at the end of the source"
            )
            elapsed = time.monotonic() - started
            assert elapsed <= limits.max_seconds, (
                f"{name}: read() did not end within {limits.max_seconds:.0f} s "
                f"({len(reading.batches)} batches so far)"
            )
    except AssertionError:
        raise
    except Exception as exc:
        raise AssertionError(
            f"{name}: read({'cursor' if cursor else 'None'}) raised {type(exc).__name__}: {exc}"
        ) from exc
    return reading


# -- what the kit needs to know about a raw record ------------------------------------------
def _as_utc(value: Any) -> datetime | None:
    moment: datetime
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:  # naive source times are local
        moment = moment.replace(tzinfo=LOCAL)
    return moment.astimezone(UTC)


def _mapped(connector: Connector, raw: RawRecord) -> DossierRecord | None:
    try:
        return connector.to_canonical(raw)
    except Exception:  # check_mapping reports mapping failures; here only the dates matter
        return None


def default_received_date(connector: Connector, raw: RawRecord) -> date | None:
    """The local day a record was received: from its mapping, else the SQL received column."""
    record = _mapped(connector, raw)
    if record is not None:
        return record.received_at.astimezone(LOCAL).date()
    column = getattr(connector, "received_column", None)
    if column is None:
        return None
    value = raw.payload.get(column)
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    moment = _as_utc(value)
    return None if moment is None else moment.astimezone(LOCAL).date()


def default_updated_at(connector: Connector, raw: RawRecord) -> datetime | None:
    """A record's last change (UTC): from its mapping, else the SQL update column."""
    record = _mapped(connector, raw)
    if record is not None:
        return record.source_updated_at
    column = getattr(connector, "updated_at_column", None)
    return None if column is None else _as_utc(raw.payload.get(column))


# -- the checks -----------------------------------------------------------------------------
def check_health(connector: Connector) -> None:
    """`check()` says the source is readable, with a detail for the operator."""
    name = who(connector)
    try:
        health = connector.check()
    except Exception as exc:
        raise AssertionError(f"{name}: check() raised {type(exc).__name__}: {exc}") from exc
    assert health.ok, f"{name}: check() reports the source unhealthy: {health.detail}"
    assert isinstance(health.detail, str) and health.detail.strip(), (
        f"{name}: check() gives no detail; say what was checked (e.g. 'table X readable, N rows')"
    )


Outcome = DossierRecord | list[Reason]


def check_mapping(connector: Connector, records: Iterable[RawRecord]) -> list[Outcome]:
    """Each record maps to a record of this source and id, or is rejected with reasons.

    Also checks that no personal identifier (the connector's `personal_fields`) is left in
    clear, neither in a mapped record nor in a rejected record's payload as kept in quarantine.
    """
    name = who(connector)
    outcomes: list[Outcome] = []
    crashed: list[str] = []
    wrong: list[str] = []
    leaked: list[str] = []
    undeclared: list[str] = []
    for raw in records:
        try:
            record = connector.to_canonical(raw)
        except RecordRejected as rejected:
            reasons = list(rejected.reasons)
            if not reasons or not all(isinstance(r, Reason) for r in reasons):
                wrong.append(f"id {raw.source_id!r}: RecordRejected without Reason objects")
            outcomes.append(reasons)
            kept = connector.redact(raw.payload, reasons)
            for native in connector.personal_fields:
                value = kept.get(native)
                if value is not None and not str(value).startswith((HASHED, "<redacted")):
                    leaked.append(f"id {raw.source_id!r}: quarantined payload field {native}")
            continue
        except Exception as exc:
            crashed.append(f"id {raw.source_id!r}: {type(exc).__name__}: {exc}")
            continue
        if not isinstance(record, DossierRecord):
            wrong.append(f"id {raw.source_id!r}: returned {type(record).__name__}")
            continue
        if record.source_system != connector.source or record.source_id != raw.source_id:
            wrong.append(
                f"id {raw.source_id!r}: record says source {record.source_system!r}, id "
                f"{record.source_id!r}"
            )
        if record.applicant_key is not None and not connector.personal_fields:
            undeclared.append(f"id {raw.source_id!r}")
        dumped = record.model_dump_json()
        for native in connector.personal_fields:
            value = raw.payload.get(native)
            clear = str(value).strip() if value is not None else ""
            if len(clear) >= 6 and not clear.startswith(HASHED) and clear in dumped:
                leaked.append(f"id {raw.source_id!r}: {native} in clear in the mapped record")
        outcomes.append(record)
    assert not crashed, (
        f"{name}: to_canonical() raised an unexpected exception for {len(crashed)} record(s) "
        f"({_examples(crashed, quote=False)}); a mapping must return a DossierRecord or raise "
        f"RecordRejected with a Reason per problem (see {connector.mapping_file})"
    )
    assert not wrong, f"{name}: to_canonical() broke the contract: {_examples(wrong, quote=False)}"
    assert not undeclared, (
        f"{name}: records carry an applicant_key ({_examples(undeclared, quote=False)}) but personal_fields "
        "is empty, so a rejected record's identifier would be kept in clear in quarantine; "
        "declare the native identifier fields in personal_fields"
    )
    assert not leaked, (
        f"{name}: personal identifiers left in clear ({_examples(leaked, quote=False)}); hash them with "
        "identifier_key() and list their native fields in personal_fields"
    )
    return outcomes


def check_unique_ids(connector: Connector, reading: Reading) -> None:
    """No source id appears twice in one full read."""
    counts = Counter(source_id for source_id in reading.ids if source_id is not None)
    repeated = {source_id: n for source_id, n in counts.items() if n > 1}
    assert not repeated, (
        f"{who(connector)}: {len(repeated)} source id(s) read more than once in one full read "
        f"({_examples((f'{i!r} x{n}' for i, n in repeated.items()), quote=False)}); source ids must be unique "
        "and pages must not overlap"
    )


def check_pagination(
    connector: Connector, *, small_batch_size: int = 7, limits: Limits = Limits()
) -> Reading:
    """A full read ends, and reading in small batches gives the very same records.

    Returns the small-batch reading (several batches, for the resume check).
    """
    name = who(connector)
    with opened(resized(connector, connector.context.batch_size)) as full:
        whole = read_bounded(full, limits=limits)
    with opened(resized(connector, small_batch_size)) as small:
        paged = read_bounded(small, limits=limits)
    a, b = Counter(whole.ids), Counter(paged.ids)
    assert a == b, (
        f"{name}: reading {small_batch_size} records a batch gives other records than "
        f"{connector.context.batch_size} a batch: missing {_examples((a - b).elements())}, "
        f"extra {_examples((b - a).elements())}; page boundaries skip or repeat records"
    )
    return paged


def check_resume(
    connector: Connector,
    reading: Reading,
    *,
    updated_at: UpdatedAt = default_updated_at,
    limits: Limits = Limits(),
) -> None:
    """Resuming from a saved cursor skips nothing and re-reads only the look-back window.

    `reading` is a full read of `connector`'s (unchanged) source in at least two batches. The
    read is resumed from the middle batch's cursor and from the last one, each through JSON
    as the registry stores it.
    """
    name = who(connector)
    batches = [batch for batch in reading.batches if batch.records]
    assert len(batches) >= 2, (
        f"{name}: the source gave {len(batches)} batch(es); the resume check needs at least "
        "two (use a larger sample source or a smaller batch size)"
    )
    everything = {r.source_id for r in reading.records}
    lookback = connector.context.lookback
    for k in (len(batches) // 2, len(batches)):
        done, rest = batches[:k], batches[k:]
        cursor = stored(batches[k - 1].cursor or {})
        with opened(resized(connector, connector.context.batch_size)) as again:
            after = read_bounded(again, cursor, limits=limits)
            seen = {r.source_id for r in after.records}
            skipped = {r.source_id for b in rest for r in b.records} - seen
            assert not skipped, (
                f"{name}: read() resumed from the cursor of batch {k} ({cursor!r}) skipped "
                f"{len(skipped)} record(s) that come after it ({_examples(skipped)})"
            )
            invented = seen - everything
            assert not invented, (
                f"{name}: read() resumed from {cursor!r} returned records absent from a full "
                f"read of the unchanged source ({_examples(invented)})"
            )
            earlier = {r.source_id: r for b in done for r in b.records}
            reread = [r for r in after.records if r.source_id in earlier]
            if not rest and lookback <= timedelta(0):
                assert not reread, (
                    f"{name}: the source did not change, yet read() from the last cursor "
                    f"({cursor!r}) returned {len(reread)} record(s) ({_examples(_ids(reread))})"
                )
                continue
            known = [t for t in (updated_at(again, r) for r in earlier.values()) if t]
            if not known:
                # Without times, only a read that starts over can be told apart.
                assert len(reread) < len(earlier), (
                    f"{name}: read() from the cursor of batch {k} returned every earlier record "
                    "again: it ignores the cursor"
                )
                continue
            since = max(known) - lookback
            older = [r for r in reread if (t := updated_at(again, r)) is not None and t < since]
            assert not older, (
                f"{name}: read() from the cursor of batch {k} ({cursor!r}) re-read "
                f"{len(older)} record(s) last updated before the cursor less the look-back "
                f"of {lookback} ({_examples(_ids(older))}); it must resume after the cursor"
            )


def check_changes(
    connector: Connector,
    before: Reading,
    changed: Iterable[str],
    *,
    updated_at: UpdatedAt = default_updated_at,
    limits: Limits = Limits(),
) -> Reading:
    """After the source changed, a read from the last cursor gives the changed records.

    `before` is the full read taken before the change; `changed` the source ids changed or
    added since. Besides them, the read may only return records re-read inside the look-back
    window. Every record returned must map or be rejected with reasons.
    """
    name = who(connector)
    changed = {str(source_id) for source_id in changed}
    assert changed, f"{name}: make_changes() changed nothing; change at least one record"
    cursor = before.cursor
    assert cursor is not None, f"{name}: the full read before the change left no cursor"
    with opened(resized(connector, connector.context.batch_size)) as again:
        after = read_bounded(again, cursor, limits=limits)
        seen = {r.source_id for r in after.records}
        missed = changed - seen
        assert not missed, (
            f"{name}: read() from the last cursor ({cursor!r}) did not return "
            f"{len(missed)} changed record(s) ({_examples(missed)}); a change must move a "
            "record past every cursor given out before it"
        )
        known = [t for t in (updated_at(again, r) for r in before.records) if t]
        stale: list[RawRecord] = []
        if known:  # without times, re-reads cannot be told from stale records
            since = max(known) - again.context.lookback
            stale = [
                r
                for r in after.records
                if r.source_id not in changed and (t := updated_at(again, r)) and t < since
            ]
        assert not stale, (
            f"{name}: read() from the last cursor ({cursor!r}) returned {len(stale)} unchanged "
            f"record(s) older than the cursor ({_examples(_ids(stale))})"
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
    name = who(connector)
    records = reading.records
    try:
        total = connector.count(None)
    except Exception as exc:
        raise AssertionError(f"{name}: count(None) raised {type(exc).__name__}: {exc}") from exc
    assert total == len(records), (
        f"{name}: count(None) is {total} but a full read gives {len(records)} records; "
        "reconciliation compares the two"
    )
    days = [received_date(connector, raw) for raw in records]
    unknown = sum(day is None for day in days)
    known = [day for day in days if day is not None]
    if periods is None:
        assert known, f"{name}: no record's receipt date is known; cannot check count(period)"
        month = Counter(day.strftime("%Y-%m") for day in known).most_common(1)[0][0]
        periods = [Period.parse(month), Period.parse(month[:4])]
    for period in periods:
        inside = sum(period.start <= day < period.end for day in known)
        try:
            counted = connector.count(period)
        except Exception as exc:
            raise AssertionError(
                f"{name}: count({period}) raised {type(exc).__name__}: {exc}"
            ) from exc
        span = f"{period.start}..{period.end}"
        expected = str(inside) if not unknown else f"{inside}..{inside + unknown}"
        assert inside <= counted <= inside + unknown, (
            f"{name}: count() for {span} is {counted}, but the records read say {expected} "
            f"were received then ({unknown} of unknown date); count by the local receipt date"
        )


def _ids(records: Iterable[RawRecord]) -> list[str | None]:
    return [record.source_id for record in records]


# -- the pytest suite -----------------------------------------------------------------------
class ConnectorConformance:
    """The conformance suite: subclass it as `Test<Name>` in a pytest module.

    Define `make_connector()`; optionally `setup_source(tmp_path)` to build a fresh source for
    each check, and `make_changes()` to change the source and return the changed source ids
    (without it the incremental check is skipped, saying so). The source should hold at least
    a few dozen records, a few of them malformed if the connector rejects anything.
    """

    limits: ClassVar[Limits] = Limits()
    # Small enough that a sample source spans many pages (and many page boundaries).
    small_batch_size: ClassVar[int] = 7
    tmp_path: Path

    @pytest.fixture(autouse=True)
    def _conformance_source(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.setup_source(tmp_path)

    # -- hooks ------------------------------------------------------------------------------
    def setup_source(self, tmp_path: Path) -> None:
        """Build the source for one check (each check starts from a fresh one)."""

    def make_connector(self) -> Connector:
        """A new connector over the test source; called several times per check."""
        raise NotImplementedError(
            f"{type(self).__name__}: define make_connector() returning your connector, "
            "e.g. MyConnector(context_for('my_source', {...settings...}))"
        )

    def make_changes(self) -> Iterable[str] | None:
        """Change the source (update some records, add some) and return their source ids."""
        return None

    def received_date(self, connector: Connector, raw: RawRecord) -> date | None:
        """The local day a raw record was received, None when it cannot be told."""
        return default_received_date(connector, raw)

    def updated_at(self, connector: Connector, raw: RawRecord) -> datetime | None:
        """A raw record's last change at the source (aware), None when it cannot be told."""
        return default_updated_at(connector, raw)

    # -- the checks -------------------------------------------------------------------------
    def full_read(self, connector: Connector) -> Reading:
        return read_bounded(connector, limits=self.limits)

    def test_check_reports_the_source_healthy(self) -> None:
        with opened(self.make_connector()) as connector:
            check_health(connector)

    def test_every_record_maps_or_is_rejected_with_reasons(self) -> None:
        with opened(self.make_connector()) as connector:
            reading = self.full_read(connector)
            assert reading.records, f"{who(connector)}: the test source gave no records"
            check_mapping(connector, reading.records)

    def test_source_ids_are_unique_across_a_full_read(self) -> None:
        with opened(self.make_connector()) as connector:
            check_unique_ids(connector, self.full_read(connector))

    def test_pagination_ends_and_batch_size_changes_nothing(self) -> None:
        with opened(self.make_connector()) as connector:
            check_pagination(connector, small_batch_size=self.small_batch_size, limits=self.limits)

    def test_resuming_from_a_saved_cursor_skips_nothing_and_repeats_little(self) -> None:
        with opened(self.make_connector()) as connector:
            small = resized(connector, self.small_batch_size)
            with opened(small):
                reading = read_bounded(small, limits=self.limits)
                check_resume(small, reading, updated_at=self.updated_at, limits=self.limits)

    def test_incremental_read_returns_the_changed_records(self) -> None:
        with opened(self.make_connector()) as connector:
            before = self.full_read(connector)
        changed = self.make_changes()
        if changed is None:
            pytest.skip(
                f"{type(self).__name__} defines no make_changes(): incremental reads unchecked"
            )
        with opened(self.make_connector()) as connector:
            check_changes(
                connector, before, changed, updated_at=self.updated_at, limits=self.limits
            )

    def test_count_agrees_with_read(self) -> None:
        with opened(self.make_connector()) as connector:
            check_count(connector, self.full_read(connector), received_date=self.received_date)
