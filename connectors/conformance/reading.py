"""Reading a connector the way the engine does, bounded, and what the kit needs of a record.

`read_bounded` is the one reader every check uses: it fails (with `ConformanceError`) when a
read does not end, yields something other than `Batch`es of `RawRecord`s, exceeds the batch
size, or gives out a cursor that is not JSON or does not move on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from pydantic import SecretStr

from connectors.base import Batch, Connector, ConnectorContext, Cursor, RawRecord
from connectors.conformance.failures import ConformanceError, Promise, name_of
from connectors.identifiers import IdentifierHasher
from models.dossier import DossierRecord

# Dates are local (Asia/Ho_Chi_Minh): UTC+7 all year round.
_LOCAL = timezone(timedelta(hours=7))

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


def resized(connector: Connector, batch_size: int) -> Connector:
    """A new connector of the same class and settings reading `batch_size` records a batch."""
    return type(connector)(replace(connector.context, batch_size=batch_size))


@dataclass(frozen=True)
class Limits:
    """When a read counts as endless."""

    max_batches: int = 10_000
    max_seconds: float = 300.0


DEFAULT_LIMITS = Limits()


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
    connector: Connector, cursor: Cursor | None = None, *, limits: Limits = DEFAULT_LIMITS
) -> Reading:
    """Every batch of `connector.read(cursor)`, failing if the read does not end or misbehaves."""
    name = name_of(connector)
    reading = Reading()
    started = time.monotonic()
    previous: Cursor | None = None
    try:
        for batch in connector.read(cursor):
            _check_batch(connector, batch, number=len(reading.batches) + 1, previous=previous)
            previous = batch.cursor if batch.records else previous
            reading.batches.append(batch)
            if len(reading.batches) > limits.max_batches:
                raise _paging(
                    f"{name}: read() did not end after {limits.max_batches} batches "
                    f"({len(reading.records)} records); pagination must stop at the end of "
                    "the source"
                )
            if time.monotonic() - started > limits.max_seconds:
                raise _paging(
                    f"{name}: read() did not end within {limits.max_seconds:.0f} s "
                    f"({len(reading.batches)} batches so far)"
                )
    except ConformanceError:
        raise
    except Exception as exc:
        raise _paging(
            f"{name}: read({'cursor' if cursor else 'None'}) raised {type(exc).__name__}: {exc}"
        ) from exc
    return reading


def _paging(detail: str) -> ConformanceError:
    return ConformanceError(Promise.PAGINATION, detail)


def _check_batch(connector: Connector, batch: Any, *, number: int, previous: Cursor | None) -> None:
    """One batch as the engine needs it: bounded, of raw records, with a cursor that moves on."""
    name = name_of(connector)
    if not isinstance(batch, Batch):
        raise _paging(f"{name}: read() yielded {type(batch).__name__}, not a Batch")
    bad = [r for r in batch.records if not isinstance(r, RawRecord)]
    if bad:
        raise _paging(f"{name}: read() yielded {type(bad[0]).__name__} records, not RawRecord")
    if len(batch.records) > connector.context.batch_size:
        raise _paging(
            f"{name}: a batch of {len(batch.records)} records exceeds the batch size "
            f"{connector.context.batch_size}; memory must stay bounded by it"
        )
    if not batch.records:
        return
    if batch.cursor is None:
        raise _paging(
            f"{name}: batch {number} has no cursor; every batch must carry the cursor after "
            "its last record so a sync can resume"
        )
    try:
        again = stored(batch.cursor)
    except (TypeError, ValueError) as exc:
        raise _paging(
            f"{name}: cursor {batch.cursor!r} is not JSON ({exc}); the registry stores cursors "
            "as JSON"
        ) from None
    if again != batch.cursor:
        raise _paging(
            f"{name}: cursor {batch.cursor!r} changes through JSON (to {again!r}); use strings "
            "and numbers only"
        )
    if batch.cursor == previous:
        raise _paging(
            f"{name}: batch {number} ends at the same cursor as the one before "
            f"({batch.cursor!r}): the read is not moving on"
        )


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
        moment = moment.replace(tzinfo=_LOCAL)
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
        return record.received_at.astimezone(_LOCAL).date()
    column = getattr(connector, "received_column", None)
    if column is None:
        return None
    value = raw.payload.get(column)
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    moment = _as_utc(value)
    return None if moment is None else moment.astimezone(_LOCAL).date()


def default_updated_at(connector: Connector, raw: RawRecord) -> datetime | None:
    """A record's last change (UTC): from its mapping, else the SQL update column."""
    record = _mapped(connector, raw)
    if record is not None:
        return record.source_updated_at
    column = getattr(connector, "updated_at_column", None)
    return None if column is None else _as_utc(raw.payload.get(column))
