"""The cursor of a REST source: where its last batch ended, typed and versioned.

Stored as JSON in the registry, beside the batch it ends:
`{"cursor": "http", "version": 1, "updated_at": <the API's own time text>, "id": ...,
"position": ...}` (`position` only for page and offset paging: the record's place among
those sharing its time). A cursor saved before cursors were versioned (the same keys without
`cursor` and `version`) is read as version 1, so no deployment has to read its sources
again. Any other cursor (a SQL keyset, a file-drop manifest, another version, or one whose
time this connector cannot read) stops the sync with one error naming what was found and
the fix: a full refresh.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors.base import Cursor
from connectors.errors import FatalSourceError

KIND = "http"
VERSION = 1


@dataclass(frozen=True)
class HttpCursor:
    """The key of the last record delivered: its time as the API wrote it, and its id."""

    updated_at: str
    id: str
    position: int | None = None  # among the records sharing its time (page/offset paging)

    def to_cursor(self) -> Cursor:
        saved: Cursor = {"cursor": KIND, "version": VERSION, "updated_at": self.updated_at}
        saved["id"] = self.id
        if self.position is not None:
            saved["position"] = self.position
        return saved

    @classmethod
    def from_cursor(
        cls, cursor: Cursor, *, source: str, parse_time: Callable[[str], datetime | None]
    ) -> HttpCursor:
        """The cursor a sync saved, checked; a foreign one raises `FatalSourceError`."""
        found = _foreign(cursor)
        read = None if found else _fields(cursor)
        if read is not None and parse_time(read.updated_at) is None:
            text = read.updated_at[:40]
            found = f"an HTTP cursor of another API (its time {text!r} is not one this API writes)"
            read = None
        if read is None:
            raise FatalSourceError(
                source,
                f"the saved cursor is {found or _shape(cursor)}, not one this connector writes "
                f"(an HTTP cursor, version {VERSION}); run `dossierhub sync {source} "
                "--full-refresh` to read the source again",
            )
        return read


def _foreign(cursor: Cursor) -> str:
    """What the cursor is, when it is plainly another transport's or another version's."""
    if not isinstance(cursor, dict):
        return f"a {type(cursor).__name__}"
    if "manifest" in cursor:
        return "a file-drop manifest"
    kind, version = cursor.get("cursor"), cursor.get("version")
    if kind is None and version is None:
        return ""  # saved before cursors were versioned: read as version 1
    if kind != KIND:
        return f"a {str(kind)[:20]!r} cursor"
    if version != VERSION:
        return f"an HTTP cursor of version {str(version)[:20]} (this DossierHub reads {VERSION})"
    return ""


def _fields(cursor: dict[str, Any]) -> HttpCursor | None:
    text, ident, position = cursor.get("updated_at"), cursor.get("id"), cursor.get("position")
    if not isinstance(text, str) or isinstance(ident, bool) or not isinstance(ident, str | int):
        return None
    if position is not None and (isinstance(position, bool) or not isinstance(position, int)):
        return None
    return HttpCursor(text, str(ident), None if position is None else max(position, 0))


def _shape(cursor: Cursor) -> str:
    if isinstance(cursor, dict) and {"updated_at", "key"} <= cursor.keys():
        return "a SQL keyset cursor"
    keys = ", ".join(sorted(str(k) for k in cursor)[:6]) if isinstance(cursor, dict) else ""
    return f"a cursor with the keys {keys or 'none'}"
