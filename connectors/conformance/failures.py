"""How the conformance kit reports a broken promise: one error naming the promise and records.

Checks raise `ConformanceError` explicitly rather than with `assert`, so they keep working
under `python -O` (which strips asserts) and without pytest. It subclasses `AssertionError`
so a pytest suite reports a broken promise as a failed test, as it always did.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from connectors.base import Connector

_SHOWN = 5  # examples quoted in a failure message


class Promise(StrEnum):
    """The promises of `connectors.base` the kit checks, as a failure names them."""

    HEALTH = "check() reports the source healthy"
    MAPPING = "every record maps to a record of its source and id, or is rejected with reasons"
    PERSONAL_DATA = "no personal identifier is kept in clear"
    UNIQUE_IDS = "source ids are unique across a full read"
    PAGINATION = (
        "read() ends without raising, in batches of at most batch_size records, each with a "
        "JSON cursor that moves on, and the batch size changes nothing"
    )
    RESUME = "a read resumed from a saved cursor skips nothing and repeats only the look-back"
    CHANGES = "an incremental read returns the changed records and nothing older"
    COUNT = "count() agrees with read()"


class ConformanceError(AssertionError):
    """A connector broke one of its promises: which one, and the records that show it."""

    def __init__(self, promise: Promise, detail: str, *, source_ids: Iterable[Any] = ()) -> None:
        self.promise = promise
        self.detail = detail
        self.source_ids = tuple(str(i) for i in source_ids)
        super().__init__(f"{detail}\npromise broken: {promise}")


def name_of(connector: Connector) -> str:
    """How failure messages name a connector."""
    return f"connector {type(connector).__name__} (source {connector.source!r})"


def examples(items: Iterable[Any], *, quote: bool = True) -> str:
    """The first few items, for a failure message (source ids quoted, descriptions not)."""
    shown = sorted(items, key=str)
    more = f" and {len(shown) - _SHOWN} more" if len(shown) > _SHOWN else ""
    return ", ".join(repr(i) if quote else str(i) for i in shown[:_SHOWN]) + more
