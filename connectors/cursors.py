"""Typed cursors: what a transport saves in the registry, read back with one clear refusal.

The registry stores a cursor as JSON (`connectors.base.Cursor`). A transport reads it back
through a typed, versioned class, so a cursor some other connector or version wrote (the
source's connector was changed, a newer DossierHub wrote it) stops the sync with a message
naming the source, what was found and the fix, never with a `KeyError` deep in a read.

The SQL transport's cursor is a keyset position:

    {"cursor": "sql", "version": 1, "order": ["<updated_at column>", "<key column>"],
     "updated_at": "<ISO time>", "key": <the key>}

(the same `cursor` and `version` fields as the HTTP transport's cursor, `connectors/http`).

A cursor saved before the cursor was versioned, `{"updated_at": ..., "key": ...}`, is read as
the same position (no forced full read after an upgrade).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors.base import Cursor
from connectors.errors import FatalSourceError

SQL_CURSOR_KIND = "sql"
SQL_CURSOR_VERSION = 1
_LEGACY_SQL_FIELDS = {"updated_at", "key"}
_SQL_FIELDS = {"cursor", "version", "order", "updated_at", "key"}


def describe_cursor(cursor: Any) -> str:
    """What a saved cursor looks like, for a refusal: its kind when known, else its fields.

    Only field names and versions are shown, never values (a key may be a dossier code).
    """
    if not isinstance(cursor, dict):
        return f"a JSON {type(cursor).__name__}, not an object"
    if "manifest" in cursor:
        return f"a file-drop manifest (version {cursor['manifest']!r})"
    if "cursor" in cursor or "version" in cursor:
        kind, version = str(cursor.get("cursor"))[:20], str(cursor.get("version"))[:20]
        return f"a {kind!r} cursor of version {version}"
    names = ", ".join(sorted(str(name) for name in cursor)) or "none"
    return f"a cursor with the fields {names}"


def foreign_cursor(source: str, expected: str, found: str) -> FatalSourceError:
    """The one refusal of a saved cursor this connector cannot read, with the fix."""
    return FatalSourceError(
        source,
        f"the saved cursor is not {expected}: found {found} (written by another connector or "
        "DossierHub version?); run the sync with --full-refresh to read the source again from "
        "its start (upserts keep the registry exact)",
    )


@dataclass(frozen=True, slots=True)
class SqlCursor:
    """A keyset read of a table stands after the row `(updated_at, key)`, in the order of the
    columns `order` names; a later read starts right after it (less the look-back)."""

    updated_at: datetime
    key: Any
    order: tuple[str, str]

    def to_cursor(self) -> Cursor:
        """The cursor as the registry stores it (JSON: the order as a list)."""
        return {
            "cursor": SQL_CURSOR_KIND,
            "version": SQL_CURSOR_VERSION,
            "order": list(self.order),
            "updated_at": self.updated_at.isoformat(),
            "key": self.key,
        }

    @classmethod
    def from_cursor(
        cls, cursor: Cursor | None, *, source: str, order: tuple[str, str]
    ) -> SqlCursor | None:
        """The position a saved cursor holds, None for none; refuses a foreign cursor."""
        if cursor is None:
            return None
        expected = f"a SQL keyset cursor (version {SQL_CURSOR_VERSION}) over ({', '.join(order)})"
        problem = _sql_problem(cursor, order)
        if problem is not None:
            raise foreign_cursor(source, expected, problem)
        moment = datetime.fromisoformat(cursor["updated_at"])
        return cls(moment, cursor["key"], order)

    @staticmethod
    def time_of(cursor: Cursor) -> datetime | None:
        """The change time a saved cursor stands at, None when it holds none readable."""
        try:
            return datetime.fromisoformat(str(cursor["updated_at"]))
        except (KeyError, TypeError, ValueError):
            return None


def _sql_problem(cursor: Any, order: tuple[str, str]) -> str | None:
    """What is wrong with a saved SQL cursor (as the refusal shows it), None when nothing."""
    if not isinstance(cursor, dict):
        return describe_cursor(cursor)
    if "cursor" in cursor or "version" in cursor:
        kind, version = cursor.get("cursor"), cursor.get("version")
        if (kind, version) != (SQL_CURSOR_KIND, SQL_CURSOR_VERSION) or set(cursor) != _SQL_FIELDS:
            return describe_cursor(cursor)
        saved = cursor["order"]
        if saved != list(order):
            shown = ", ".join(map(str, saved)) if isinstance(saved, list) else repr(saved)
            return f"a SQL keyset cursor over ({shown}) (another table's?)"
    elif set(cursor) != _LEGACY_SQL_FIELDS:
        return describe_cursor(cursor)
    moment = cursor["updated_at"]
    try:
        datetime.fromisoformat(moment)
    except (TypeError, ValueError):
        return f"a keyset cursor whose updated_at {str(moment)[:40]!r} is not an ISO date and time"
    if isinstance(cursor["key"], dict | list) or cursor["key"] is None:
        return f"a keyset cursor whose key is a JSON {type(cursor['key']).__name__}"
    return None
