"""The manifest of delivered files, kept in the cursor so data and manifest commit together.

    {"manifest": 1,
     "done": {"<sha256>": {"name": ..., "size": ..., "mtime_ns": ...}, ...},
     "current": {"name": ..., "sha256": ..., "row": <records of it already in a batch>} | null}

A content whose hash is `done` is never read again; `current` lets a crashed read resume after
its last committed record when the file's content is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connectors.base import Cursor
from connectors.cursors import describe_cursor, foreign_cursor
from connectors.files.folder import Listed, Snapshot

MANIFEST_VERSION = 1


@dataclass
class Manifest:
    """The files a source has delivered, as the cursor records them (see the module doc)."""

    done: dict[str, dict[str, Any]] = field(default_factory=dict)
    current: dict[str, Any] | None = None
    _seen: set[tuple[str, int, int]] = field(default_factory=set, init=False, repr=False)

    def __post_init__(self) -> None:
        self._seen = {(e["name"], e["size"], e["mtime_ns"]) for e in self.done.values()}

    @classmethod
    def from_cursor(cls, cursor: Cursor | None, source: str) -> Manifest:
        if cursor is None:
            return cls()
        done: Any = cursor.get("done")
        current: Any = cursor.get("current")
        valid = (
            cursor.get("manifest") == MANIFEST_VERSION
            and isinstance(done, dict)
            and all(
                isinstance(e, dict) and {"name", "size", "mtime_ns"} <= e.keys()
                for e in done.values()
            )
            and (
                current is None
                or (isinstance(current, dict) and {"name", "sha256", "row"} <= current.keys())
            )
        )
        if not valid:
            expected = f"a file-drop manifest (version {MANIFEST_VERSION})"
            raise foreign_cursor(source, expected, describe_cursor(cursor))
        return cls({h: dict(e) for h, e in done.items()}, dict(current) if current else None)

    def skips(self, listed: Listed) -> bool:
        """A file already done under this name, size and modification time: not even hashed."""
        return (listed.name, listed.size, listed.mtime_ns) in self._seen

    def resume_at(self, snapshot: Snapshot) -> int:
        """Records of this content already committed (0 unless a crash cut it short)."""
        if self.current is not None and self.current["sha256"] == snapshot.sha256:
            return int(self.current["row"])
        return 0

    def finish(self, snapshot: Snapshot) -> None:
        entry = {"name": snapshot.name, "size": snapshot.size, "mtime_ns": snapshot.mtime_ns}
        self.done[snapshot.sha256] = entry
        self._seen.add((snapshot.name, snapshot.size, snapshot.mtime_ns))
        self.current = None

    def cursor(self) -> Cursor:
        """A copy: the engine writes it while the next batch is read."""
        return {
            "manifest": MANIFEST_VERSION,
            "done": {h: dict(e) for h, e in self.done.items()},
            "current": dict(self.current) if self.current else None,
        }
