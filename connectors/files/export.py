"""What every export format shares: the strategy contract, a file's envelope, the keys and
payload fields under which the transport keeps what it could not read.

A format (`CsvExport`, `XmlExport`) is a strategy object the connector picks by file suffix:
it judges a file's envelope (complete? well formed? its declared count right?) and streams
its records. The connector owns the rest (listing, manifest, batches), the same for every
format.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from connectors.base import RawRecord
from connectors.errors import Reason

if TYPE_CHECKING:
    from connectors.files.connector import FileDropConnector
    from connectors.files.folder import Snapshot

log = logging.getLogger(__name__)

# Payload keys the transport adds to a record (native columns never start with "_").
ORIGIN = "_origin"  # where the record was read: "<file>#row<n>", or "<file>" for a whole file
REJECTED = "_rejected"  # why the transport could not read it: a Reason as a dict
TEXT = "_text"  # the unreadable line, identifier-like digit runs masked

# A longer file name stands in quarantine keys as its head and digest (see `name_key`):
# `<head>~<sha256>#row<n>` stays well within the registry's 128-character keys.
MAX_NAME_IN_KEY = 100
_NAME_HEAD = 40
WIDE_BOMS = (b"\xff\xfe", b"\xfe\xff")  # UTF-16 (and UTF-32 LE): never a UTF-8 export
# A row or record count in a trailer or count element: ASCII digits, a bounded number of them.
# (int() also takes "٣", "３", "1_0" and " +3 "; "²".isdigit() is true yet int("²") fails.)
COUNT = re.compile(r"[0-9]{1,12}")


@dataclass(frozen=True, slots=True)
class Envelope:
    """What a format found around a file's records: complete yet, and if so, sound or not."""

    complete: bool
    problem: Reason | None = None
    header: tuple[str, ...] = ()  # CSV column names
    records: int = 0
    waiting: str = ""  # why an incomplete file is not complete yet
    superseded: dict[int, int] = field(default_factory=dict)  # row -> row of its id that won


class FileProblem(Exception):
    """A whole file is refused; `reason` says why (it becomes the `<file>#file` record)."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(reason.message)
        self.reason = reason


class ExportFormat(ABC):
    """One export format, as a strategy the connector picks by the file's `suffix`.

    It reads the connector's declarations (columns, key and version columns, envelope names)
    and its `plausible_key` and `version_of`, so the outcome of a file is the same whichever
    format carried it.
    """

    suffix: ClassVar[str]

    def __init__(self, connector: FileDropConnector) -> None:
        self.connector = connector

    @abstractmethod
    def envelope(self, snapshot: Snapshot) -> Envelope:
        """The file's envelope; raises `FileProblem` when the file can never be read."""

    @abstractmethod
    def records(
        self, snapshot: Snapshot, envelope: Envelope, wanted: Callable[[int], bool]
    ) -> Iterator[tuple[int, RawRecord]]:
        """(number, record) of each record whose number is `wanted`, numbered from 1."""

    def record_key(self, name: str, number: int, value: str | None) -> str:
        """A record's key: its id when plausible, else its origin in the file."""
        return self.connector.plausible_key(value) or origin_key(name, number)


class Versions:
    """Settles ids repeated in one file: the row with the newest version wins, else the last."""

    def __init__(self, version_of: Callable[[str | None], datetime]) -> None:
        self._version_of = version_of
        self._newest: dict[str, tuple[str | None, int]] = {}  # versions parsed only on a repeat
        self._beaten: dict[int, str] = {}

    def add(self, row: int, key: str | None, version: str | None) -> None:
        if key is None:
            return
        known = self._newest.get(key)
        if known is None:
            self._newest[key] = (version, row)
        elif self._version_of(version) >= self._version_of(known[0]):
            self._beaten[known[1]] = key
            self._newest[key] = (version, row)
        else:
            self._beaten[row] = key

    def superseded(self) -> dict[int, int]:
        return {row: self._newest[key][1] for row, key in self._beaten.items()}


def name_key(name: str) -> str:
    """A file's name as its quarantine keys hold it: one name, one form, and never too long.

    `#`, `%` and `~` are escaped (`%23`, `%25`, `%7E`), so `<name>#` can only start keys of that
    very file (not those of a file named `<name>#2.csv`). A name longer than MAX_NAME_IN_KEY
    characters escaped, or not UTF-8, becomes its first characters, `~` and the SHA-256 of its
    bytes: keys stay within the registry's 128 characters, distinct for every name.
    """
    escaped = name.replace("%", "%25").replace("#", "%23").replace("~", "%7E")
    if len(escaped) <= MAX_NAME_IN_KEY and is_utf8(name):
        return escaped
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()
    return f"{shown(escaped)[:_NAME_HEAD]}~{digest}"


def origin_key(name: str, number: int) -> str:
    """The quarantine key of row `number` of a file when the row has no plausible id."""
    return f"{name_key(name)}#row{number}"


def origins(name: str) -> str:
    """The quarantine-key prefix of what a file's lines and envelope are kept under."""
    return f"{name_key(name)}#"


def is_utf8(name: str) -> bool:
    """Whether a listed name was UTF-8 (undecodable bytes arrive as lone surrogates)."""
    try:
        name.encode()
    except UnicodeEncodeError:
        return False
    return True


def shown(name: str) -> str:
    """A listed name as text, its bytes that are not UTF-8 shown as `\\xNN`."""
    return os.fsencode(name).decode(errors="backslashreplace")


def unreadable_content(name: str, exc: Exception) -> Reason:
    """The reason a file is set aside when reading it failed in a way no rule here foresaw."""
    # Where it failed, never the exception's text: it may quote the file's personal data.
    where = traceback.extract_tb(exc.__traceback__)[-1]
    log.error(
        "%s: %s raised at %s:%s in %s while reading it; the file is set aside",
        name,
        type(exc).__name__,
        where.filename,
        where.lineno,
        where.name,
    )
    return Reason(
        "file",
        "unreadable_content",
        f"{name}: its content cannot be read ({type(exc).__name__}, a case the connector does "
        "not handle); the file is set aside and the other files load: ask the source to "
        "re-issue it, and report it with the file to the connector's maintainers",
    )
