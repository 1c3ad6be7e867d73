"""File-drop transport: daily export files (CSV or XML) a sector system leaves in a folder.

A connector for one such system subclasses `FileDropConnector`, declares its columns and the
envelope of its files (CSV trailer marker; XML root, record and count elements), and writes one
mapping function, `map_row`. Everything below is done here, once.

**Which files.** Every `*.csv` and `*.xml` in the folder named by the setting `folder`, read in
file-name order (sector systems name exports by day, so name order is day order). Hidden files
(`.name`) and other suffixes (`.tmp`, `.part`, markers) are ignored. A symbolic link is never
followed, wherever it points (`link_outside_folder`, `symlink_refused`; files are opened with
O_NOFOLLOW, so a link put in place after the listing is refused too), and a name that is not
UTF-8 is not read (`bad_file_name`): each is reported every run until the file itself is there.

**Completeness.** A file still being written is left alone, without a trace, for a later run:

* CSV: complete when its last non-blank line is the trailer `<marker>,<n>`; `n` must equal the
  number of data lines, or the whole file is reported (a lost or extra line is not guessed at).
  The header is judged as soon as its line is complete, so a file that is no UTF-8 CSV (binary,
  UTF-16) or lacks a column is reported at once instead of waited for;
* XML: complete when it ends with the root's closing tag; it must then be well formed, carry no
  DOCTYPE, and its count element must equal the number of records, or the whole file is reported.
  An incomplete file whose start already breaks these rules (binary, UTF-16, a DOCTYPE, text
  after the root) is reported at once, as it can never become valid;
* any file: its size and modification time must not change while it is copied (an in-place
  writer still at work). Each file is read from a private copy, so the rows read are exactly
  the bytes that were hashed, whatever the exporter does to the original meanwhile.

**The manifest lives in the cursor.** The cursor the engine commits with each batch is

    {"manifest": 1,
     "done": {"<sha256>": {"name": ..., "size": ..., "mtime_ns": ...}, ...},
     "current": {"name": ..., "sha256": ..., "row": <records of it already in a batch>} | null}

so data and manifest move in one transaction. A file whose content hash is in `done` is never
read again, whatever its name (a re-delivered copy loads nothing). A corrected file re-issued
for a past day has a new hash and is read in full; its records carry the source's version (the
connector maps a last-change column to `source_updated_at`), so the engine updates exactly the
records whose version moved and leaves the others unchanged. After a crash, the file named in
`current` is resumed after its last committed record when its hash is unchanged, and read from
the start when it was replaced meanwhile. `(name, size, mtime_ns)` of a done file lets a run skip
it without hashing it again. The manifest grows by one entry per distinct file content.

**Bad input never stops a run and never loads.** A line that is not UTF-8, breaks CSV quoting or
has the wrong number of fields becomes a record the connector rejects with the reason (its id
recovered from the line when it is plainly there, else `<file>#row<n>`); it keeps only the
line's text with identifier-like digit runs masked. A file that cannot be read, or whose
envelope is broken, becomes one rejected record `<file>#file` naming the problem. A record whose
id is implausible (blank, with spaces or control characters, over 128 characters) is keyed by its
origin `<file>#row<n>` instead: it is rejected anyway, and its key stays printable and unique.
A new content under a file's name (a corrected re-issue) replaces the old one whole: as it is
read from its start, the quarantine entries of the old one under `<file>#` are resolved (the
batch `settles` them), and the lines still bad are held again. In these keys `<file>` is the
name with `#`, `%` and `~` escaped, a long name its head and digest (`_name_key`): a key names
one file and one line however long the name, and settling one file's name touches no other's.

**One id, one record per file.** When an id appears on several rows of one file, its row with the
newest version (`version_column`; the last of equal ones, an unreadable version counting as
oldest) is the record, and the others are older versions of it: skipped, with a warning naming
the rows, as the registry would have replaced them anyway. Quarantining them would count one
dossier twice against the source's own count. The outcome depends on the file alone, never on
batch sizes or on where a crashed run resumed.

Memory is bounded by the batch size (rows are streamed; a line, an XML value or record is capped;
XML markup that would make expat rescan without end refuses the file), plus
the manifest and, while a file is read, the id and version of each of its records.
`count(period)` streams the files too, but remembers the ids it counted.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import logging
import os
import re
import stat
import tempfile
import traceback
from abc import abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any, BinaryIO, ClassVar
from xml.parsers import expat

from pydantic import BaseModel

from connectors.base import Batch, Connector, ConnectorContext, Cursor, Health, Period, RawRecord
from connectors.errors import FatalSourceError, Reason, RecordRejected
from models.dossier import DossierRecord

log = logging.getLogger(__name__)

# Payload keys the transport adds to a record (native columns never start with "_").
ORIGIN = "_origin"  # where the record was read: "<file>#row<n>", or "<file>" for a whole file
REJECTED = "_rejected"  # why the transport could not read it: a Reason as a dict
TEXT = "_text"  # the unreadable line, identifier-like digit runs masked

MANIFEST_VERSION = 1
SUFFIXES = (".csv", ".xml")
MAX_LINE = 1 << 20  # bytes; a longer CSV line is rejected, not held in memory
MAX_VALUE = 100_000  # characters of one XML value, same reason
# A longer file name stands in quarantine keys as its head and digest (see `_name_key`):
# `<head>~<sha256>#row<n>` stays well within the registry's 128-character keys.
MAX_NAME_IN_KEY = 100
_NAME_HEAD = 40
_CHUNK = 1 << 16
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
# XML guards. expat re-scans a token cut by a chunk's end from its start at every chunk (expat
# before 2.6 has no reparse deferral): one huge comment, tag or instruction costs the square of
# its size, so markup over MAX_MARKUP refuses the file. A record over MAX_RECORD bytes is
# rejected (its values are no longer kept), and nesting deeper than MAX_DEPTH refuses the file.
MAX_MARKUP = 1 << 20
MAX_RECORD = 1 << 20
MAX_DEPTH = 32
_BOM = b"\xef\xbb\xbf"
_WIDE_BOMS = (b"\xff\xfe", b"\xfe\xff")  # UTF-16 (and UTF-32 LE): never a UTF-8 export
# A field may fill a whole line: past csv's default limit (128 KiB) a long value would be
# reported as broken CSV. The limit is process-wide, so it is only ever raised.
csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE))
# A row or record count in a trailer or count element: ASCII digits, a bounded number of them.
# (int() also takes "٣", "３", "1_0" and " +3 "; "²".isdigit() is true yet int("²") fails.)
_COUNT = re.compile(r"[0-9]{1,12}")
# 9+ digit runs (citizen IDs, tax codes, 0101234567-001) in text kept from unreadable lines.
_IDENTIFIER_LIKE = re.compile(r"(?<!\d)\d{9,}(?:-\d{3})?(?!\d)")


class FileDropSettings(BaseModel):
    folder: Path


@dataclass(frozen=True, slots=True)
class _Listed:
    name: str
    path: Path
    size: int
    mtime_ns: int
    problem: Reason | None = None  # why it is refused unread (a link, a name that is no text)


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """A private, immutable copy of one file and the hash of exactly those bytes."""

    name: str
    path: Path
    sha256: str
    size: int
    mtime_ns: int

    @property
    def is_xml(self) -> bool:
        return self.name.lower().endswith(".xml")


@dataclass(frozen=True, slots=True)
class _Envelope:
    complete: bool
    problem: Reason | None = None
    header: tuple[str, ...] = ()  # CSV column names
    records: int = 0
    waiting: str = ""  # why an incomplete file is not complete yet
    superseded: dict[int, int] = field(default_factory=dict)  # row -> row of its id that won


class _Versions:
    """Settles ids repeated in one file: the row with the newest version wins, else the last."""

    def __init__(self, connector: FileDropConnector) -> None:
        self._connector = connector
        self._newest: dict[str, tuple[str | None, int]] = {}  # versions parsed only on a repeat
        self._beaten: dict[int, str] = {}

    def add(self, row: int, key: str | None, version: str | None) -> None:
        if key is None:
            return
        known = self._newest.get(key)
        if known is None:
            self._newest[key] = (version, row)
        elif self._connector.version_of(version) >= self._connector.version_of(known[0]):
            self._beaten[known[1]] = key
            self._newest[key] = (version, row)
        else:
            self._beaten[row] = key

    def superseded(self) -> dict[int, int]:
        return {row: self._newest[key][1] for row, key in self._beaten.items()}


class _FileProblem(Exception):
    def __init__(self, reason: Reason) -> None:
        super().__init__(reason.message)
        self.reason = reason


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
            raise FatalSourceError(
                source,
                "the saved cursor is not a file-drop manifest (version "
                f"{MANIFEST_VERSION}); run the sync with --full-refresh to read every file again",
            )
        return cls({h: dict(e) for h, e in done.items()}, dict(current) if current else None)

    def skips(self, listed: _Listed) -> bool:
        """A file already done under this name, size and modification time: not even hashed."""
        return (listed.name, listed.size, listed.mtime_ns) in self._seen

    def resume_at(self, snapshot: _Snapshot) -> int:
        """Records of this content already committed (0 unless a crash cut it short)."""
        if self.current is not None and self.current["sha256"] == snapshot.sha256:
            return int(self.current["row"])
        return 0

    def finish(self, snapshot: _Snapshot) -> None:
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


class FileDropConnector(Connector[FileDropSettings]):
    """Declarations a file-drop connector makes; listing, reading and counting are done here.

    A subclass declares the native `columns` its mapping reads (a CSV header lacking one
    rejects the file), the `key_column` holding the record's id, the `version_column` (one of
    the columns, a time) holding its last change, which settles an id repeated in one file, the
    `received_column` and the `time_formats` (strptime) that date a dossier for `count`, the CSV
    `csv_trailer` marker and the XML `xml_root`, `xml_record` and `xml_count` element names;
    and implements `map_row`.
    Record payloads hold native values as text, None for an empty value.
    """

    Settings: ClassVar[type[BaseModel]] = FileDropSettings
    columns: ClassVar[tuple[str, ...]]
    key_column: ClassVar[str]
    # Ids recovered from an unreadable line must look like this (a receipt code by default).
    key_pattern: ClassVar[str] = r"[0-9A-Za-z][0-9A-Za-z.\-/_]{2,127}"
    version_column: ClassVar[str | None] = None
    received_column: ClassVar[str]
    time_formats: ClassVar[tuple[str, ...]]
    csv_delimiter: ClassVar[str] = ","
    csv_trailer: ClassVar[str]
    xml_root: ClassVar[str]
    xml_record: ClassVar[str]
    xml_count: ClassVar[str]

    def __init__(self, context: ConnectorContext) -> None:
        super().__init__(context)
        self.folder: Path = self.settings.folder
        self._key = re.compile(self.key_pattern)

    @abstractmethod
    def map_row(self, raw: RawRecord) -> DossierRecord:
        """The canonical record of one readable native row (see `Connector.to_canonical`)."""

    def to_canonical(self, raw: RawRecord) -> DossierRecord:
        """A record the transport could not read is rejected with its reason; others are mapped."""
        rejected = raw.payload.get(REJECTED)
        if isinstance(rejected, dict):
            raise RecordRejected(
                [Reason(str(rejected["field"]), str(rejected["code"]), str(rejected["message"]))]
            )
        return self.map_row(raw)

    def parse_time(self, value: str) -> datetime:
        """A native time in one of `time_formats` (naive local time); ValueError otherwise."""
        text = value.strip()
        if not text.isascii():  # strptime reads "٢٠٢٦" (or "２０２６") as 2026
            raise ValueError(f"{value!r} is not written in ASCII digits")
        for pattern in self.time_formats:
            try:
                return datetime.strptime(text, pattern)
            except ValueError:
                continue
        raise ValueError(f"{value!r} matches none of {', '.join(self.time_formats)}")

    def version_of(self, value: str | None) -> datetime:
        """A row's version for settling a repeated id; the oldest possible when unreadable."""
        try:
            return self.parse_time(value) if value else datetime.min
        except ValueError:
            return datetime.min

    # -- the contract -----------------------------------------------------------------------
    def check(self) -> Health:
        files = self._listing()
        return Health(True, f"drop folder {self.folder} readable, {len(files)} export files")

    def read(self, cursor: Cursor | None) -> Iterator[Batch]:
        manifest = Manifest.from_cursor(cursor, self.source)
        limit = self.context.batch_size
        pending: list[RawRecord] = []
        moved = False  # the manifest changed since the last cursor handed out
        # Names read anew from their start: their earlier contents' quarantine is replaced.
        settles: list[str] = []
        with tempfile.TemporaryDirectory(prefix="dossierhub-drop-") as scratch:
            for listed in self._listing():
                if listed.problem is not None:
                    # Not recorded as done: reported each run until replaced by the file itself.
                    pending.append(self._file_rejected(listed.name, listed.problem))
                    continue
                if manifest.skips(listed):
                    continue
                try:
                    snapshot = self._snapshot(listed, Path(scratch))
                except OSError as exc:
                    # Not recorded as done: a later run tries again (permissions fixed, ...).
                    pending.append(self._file_rejected(listed.name, self._unreadable(listed, exc)))
                    continue
                if snapshot is None or snapshot.sha256 in manifest.done:
                    continue  # still being written, or a content already loaded
                envelope = self._envelope(snapshot)
                if not envelope.complete:
                    log.info(
                        "source %r: %s is not complete yet (%s); left for the next run",
                        self.source,
                        snapshot.name,
                        envelope.waiting,
                    )
                elif envelope.problem is not None:
                    settles.append(_origins(snapshot.name))
                    pending.append(self._file_rejected(snapshot.name, envelope.problem))
                    manifest.finish(snapshot)
                    moved = True
                else:
                    start = manifest.resume_at(snapshot)
                    if start == 0:  # (when resumed, the batch that settled has committed)
                        settles.append(_origins(snapshot.name))
                    current = {"name": snapshot.name, "sha256": snapshot.sha256, "row": start}
                    manifest.current = current
                    try:
                        for number, raw in self._records(snapshot, envelope, start):
                            pending.append(raw)
                            current["row"] = number
                            if len(pending) >= limit:
                                yield Batch(pending, manifest.cursor(), tuple(settles))
                                pending, moved, settles = [], False, []
                    except Exception as exc:  # as in _envelope
                        # The records read before stay: each was read whole and judged alone.
                        reason = _unreadable_content(snapshot.name, exc)
                        pending.append(self._file_rejected(snapshot.name, reason))
                    manifest.finish(snapshot)
                    moved = True
                snapshot.path.unlink()
            if pending or moved:
                yield Batch(pending, manifest.cursor(), tuple(settles))

    def count(self, period: Period | None) -> int:
        """Distinct ids of the readable records received in `period` (every one when None).

        Copies of one content are counted once; ids are remembered, so memory grows with the
        dossiers counted (unlike `read`).
        """
        counted: set[str] = set()
        hashes: set[str] = set()
        with tempfile.TemporaryDirectory(prefix="dossierhub-drop-") as scratch:
            for listed in self._listing():
                if listed.problem is not None:
                    continue
                try:
                    snapshot = self._snapshot(listed, Path(scratch))
                except OSError:
                    continue
                if snapshot is None or snapshot.sha256 in hashes:
                    continue
                hashes.add(snapshot.sha256)
                envelope = self._envelope(snapshot)
                if envelope.complete and envelope.problem is None:
                    # A repeated id is one dossier: every row of it counts once, by its id.
                    envelope = replace(envelope, superseded={})
                    of_file: set[str] = set()
                    try:
                        for _, raw in self._records(snapshot, envelope, 0):
                            if raw.source_id is not None and self._received_in(raw, period):
                                of_file.add(raw.source_id)
                    except Exception as exc:  # as in read: set aside, not counted
                        _unreadable_content(snapshot.name, exc)
                    else:
                        counted |= of_file
                snapshot.path.unlink()
        return len(counted)

    def _received_in(self, raw: RawRecord, period: Period | None) -> bool:
        if period is None:
            return True
        if REJECTED in raw.payload:
            return False
        day = self.receipt_day(raw.payload)
        return day is not None and period.start <= day < period.end

    def receipt_day(self, payload: dict[str, Any]) -> date | None:
        value = payload.get(self.received_column)
        if not isinstance(value, str):
            return None
        try:
            return self.parse_time(value).date()
        except ValueError:
            return None

    # -- the folder -------------------------------------------------------------------------
    def _listing(self) -> list[_Listed]:
        folder = self.folder
        if not folder.is_dir():
            what = "is not a folder" if folder.exists() else "does not exist"
            raise FatalSourceError(
                self.source,
                f"drop folder {folder} {what} (check the 'folder' setting of the source, "
                "and that the share is mounted)",
            )
        try:
            with os.scandir(folder) as scan:
                names = sorted(
                    (e.name, e.path)
                    for e in scan
                    if not e.name.startswith(".") and e.name.lower().endswith(SUFFIXES)
                )
        except OSError as exc:
            raise FatalSourceError(
                self.source,
                f"drop folder {folder} cannot be listed ({exc.strerror}); check the 'folder' "
                "setting and the folder's permissions",
            ) from None
        listed = []
        for name, path in names:
            try:
                info = os.lstat(path)
            except OSError:
                listed.append(_Listed(name, Path(path), -1, -1))  # reported when opened
                continue
            problem = None
            if stat.S_ISLNK(info.st_mode):
                problem = self._link_refused(name, path)
            elif not stat.S_ISREG(info.st_mode):
                continue  # a folder, a pipe, ...: no export
            elif not _is_utf8(name):
                problem = Reason(
                    "file",
                    "bad_file_name",
                    f"{_shown(name)}: the file name is not UTF-8 text (bytes shown as \\xNN); "
                    "it is not read: rename it in UTF-8 (or ask the source to)",
                )
            listed.append(_Listed(name, Path(path), info.st_size, info.st_mtime_ns, problem))
        return listed

    def _link_refused(self, name: str, path: str) -> Reason:
        """Why a symbolic link in the folder is not followed, wherever it points."""
        root = os.path.realpath(self.folder)
        target = os.path.realpath(path)
        if os.path.commonpath([root, target]) != root or target == root:
            return Reason(
                "file",
                "link_outside_folder",
                f"{_shown(name)} is a symbolic link to a path outside the drop folder; it is "
                "not followed: remove it, and have the export written into the folder itself",
            )
        return Reason(
            "file",
            "symlink_refused",
            f"{_shown(name)} is a symbolic link; links are not followed, even within the drop "
            "folder: have the export written under this name itself",
        )

    def _unreadable(self, listed: _Listed, exc: OSError) -> Reason:
        if exc.errno == errno.ELOOP:  # became a link after the listing: O_NOFOLLOW refused it
            return self._link_refused(listed.name, str(listed.path))
        return _unreadable(listed, exc)

    def _snapshot(self, listed: _Listed, scratch: Path) -> _Snapshot | None:
        """Copy and hash the file; None when it changed while being copied.

        One copy at a time: each snapshot overwrites the previous one in `scratch`.
        """
        digest = hashlib.sha256()
        copy = scratch / "snapshot"
        # Never through a link (one put in place since the listing fails with ELOOP), and
        # never blocking on a pipe put in place since.
        fd = os.open(listed.path, _OPEN_FLAGS)
        with os.fdopen(fd, "rb") as source, copy.open("wb") as target:
            before = os.fstat(source.fileno())
            if not stat.S_ISREG(before.st_mode):
                raise OSError(errno.EINVAL, "it is no longer a regular file")
            while chunk := source.read(1 << 20):
                digest.update(chunk)
                target.write(chunk)
            after = os.fstat(source.fileno())
        if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
            log.info("source %r: %s changed while being read", self.source, listed.name)
            copy.unlink()
            return None
        return _Snapshot(listed.name, copy, digest.hexdigest(), after.st_size, after.st_mtime_ns)

    def _file_rejected(self, name: str, reason: Reason) -> RawRecord:
        log.warning("source %r: %s", self.source, reason.message)
        payload = {ORIGIN: _shown(name), REJECTED: reason.as_dict()}
        return RawRecord(f"{_name_key(name)}#file", payload)

    # -- envelopes --------------------------------------------------------------------------
    def _envelope(self, snapshot: _Snapshot) -> _Envelope:
        try:
            if snapshot.is_xml:
                return self._xml_envelope(snapshot)
            return self._csv_envelope(snapshot)
        except _FileProblem as problem:
            return _Envelope(True, problem.reason)
        except Exception as exc:  # one file no rule foresaw must not stop the sync
            return _Envelope(True, _unreadable_content(snapshot.name, exc))

    def _csv_envelope(self, snapshot: _Snapshot) -> _Envelope:
        name = snapshot.name
        versions = _Versions(self)
        with snapshot.path.open("rb") as fh:
            lines = _lines(fh)
            first = next(lines, None)
            header: tuple[str, ...] = ()
            if first is not None and (b"\x00" in first or first.startswith(_WIDE_BOMS)):
                header = self._csv_header(first, name)  # binary or UTF-16: raises at once
            data, last, seen = 0, None, False  # `last`: the latest non-blank line, if `seen`
            for line in lines:
                # Followed by another line, the header line is complete: judge it now.
                header = header or self._csv_header(first, name)
                if line is not None and not line.strip():
                    continue
                if seen:  # the line before this one is data, not the trailer
                    data += 1
                    versions.add(data, *self._key_and_version(last, header))
                last, seen = line, True
        if not seen:
            waiting = "it is empty" if first is None else "it has no line after the header yet"
            return _Envelope(False, waiting=waiting)
        declared = self._trailer(last, name)
        if declared is None:
            waiting = (
                f"its last line is not the trailer '{self.csv_trailer}{self.csv_delimiter}<rows>'"
            )
            return _Envelope(False, waiting=waiting)
        if declared != data:
            raise _FileProblem(
                Reason(
                    "file",
                    "row_count_mismatch",
                    f"{name}: the trailer declares {declared} rows but the file "
                    f"holds {data}; ask the source to re-issue the file",
                )
            )
        return _Envelope(True, header=header, records=data, superseded=versions.superseded())

    def _key_and_version(
        self, line: bytes | None, header: tuple[str, ...]
    ) -> tuple[str | None, str | None]:
        """The id (when plausible) and version of a data line, as `_csv_record` will read it."""
        if line is None:
            return None, None
        try:
            values = next(csv.reader([line.decode()], delimiter=self.csv_delimiter, strict=True))
        except (UnicodeDecodeError, csv.Error, StopIteration):
            values = []
        if len(values) != len(header):
            return self._recover_key(line.decode(errors="backslashreplace"), header), None
        key = self._plausible_key(values[header.index(self.key_column)])
        if self.version_column is None:
            return key, None
        return key, values[header.index(self.version_column)]

    def _plausible_key(self, value: str | None) -> str | None:
        # Never "#": it separates a file's name from the line in origin keys (`_origin_key`).
        key = (value or "").strip()
        return key if self._key.fullmatch(key) and "#" not in key else None

    def _trailer(self, line: bytes | None, name: str) -> int | None:
        """The row count of a trailer line, or None when the line is no trailer."""
        try:
            fields = next(csv.reader([(line or b"").decode()], delimiter=self.csv_delimiter))
        except (UnicodeDecodeError, csv.Error, StopIteration):
            return None
        if not fields or fields[0].strip() != self.csv_trailer:
            return None
        if len(fields) != 2 or not _COUNT.fullmatch(fields[1].strip()):
            raise _FileProblem(
                Reason(
                    "file",
                    "bad_trailer",
                    f"{name}: trailer {','.join(fields)[:80]!r} is not "
                    f"'{self.csv_trailer}{self.csv_delimiter}<rows>' (rows: 1 to 12 digits "
                    "0-9); ask the source to re-issue the file",
                )
            )
        return int(fields[1])

    def _csv_header(self, line: bytes | None, name: str) -> tuple[str, ...]:
        try:
            if b"\x00" in (line or b""):
                raise ValueError("NUL")  # UTF-16 or binary: valid UTF-8, yet no text
            text = (line or b"").removeprefix(_BOM).decode()
            header = tuple(
                h.strip()
                for h in next(csv.reader([text], delimiter=self.csv_delimiter, strict=True))
            )
        except (ValueError, csv.Error, StopIteration):  # UnicodeDecodeError is a ValueError
            raise _FileProblem(
                Reason(
                    "file",
                    "bad_header",
                    f"{name}: the header line is not UTF-8 CSV (a binary or UTF-16 file?); "
                    "ask the source to re-issue the file as UTF-8 CSV",
                )
            ) from None
        missing = [column for column in self.columns if column not in header]
        if missing or len(set(header)) != len(header):
            problem = f"columns {', '.join(missing)} missing" if missing else "repeated columns"
            raise _FileProblem(
                Reason(
                    "file",
                    "bad_header",
                    f"{name}: {problem} in the header (check the export at the source or the "
                    f"mapping in {self.mapping_file})",
                )
            )
        return header

    def _xml_envelope(self, snapshot: _Snapshot) -> _Envelope:
        name = snapshot.name
        with snapshot.path.open("rb") as fh:
            head = fh.read(4)
            fh.seek(max(0, snapshot.size - 512))
            tail = fh.read().rstrip()
        if head.startswith(_WIDE_BOMS) or b"\x00" in head:
            raise _FileProblem(
                Reason(
                    "file",
                    "bad_encoding",
                    f"{name} is not UTF-8 XML (a UTF-16 or binary file?); ask the source to "
                    "re-issue the file in UTF-8",
                )
            )
        parser = self._xml_parser(name)
        if not tail.endswith(f"</{self.xml_root}>".encode()):
            # Still being written, unless what is there already breaks the rules (raises).
            for _ in parser.records(snapshot.path, final=False):
                pass
            return _Envelope(False, waiting=f"it does not end with </{self.xml_root}> yet")
        versions = _Versions(self)
        records = 0
        for records, (values, _) in enumerate(parser.records(snapshot.path), start=1):
            version = values.get(self.version_column) if self.version_column else None
            versions.add(records, self._plausible_key(values.get(self.key_column)), version)
        if parser.declared != records:
            declared = "no" if parser.declared is None else str(parser.declared)
            raise _FileProblem(
                Reason(
                    "file",
                    "row_count_mismatch",
                    f"{name}: <{self.xml_count}> declares {declared} records but the "
                    f"file holds {records}; ask the source to re-issue the file",
                )
            )
        return _Envelope(True, records=records, superseded=versions.superseded())

    def _xml_parser(self, name: str) -> _XmlRecords:
        return _XmlRecords(name, self.xml_root, self.xml_record, self.xml_count)

    # -- records ----------------------------------------------------------------------------
    def _records(
        self, snapshot: _Snapshot, envelope: _Envelope, start: int
    ) -> Iterator[tuple[int, RawRecord]]:
        """(number, record) of each record after the first `start` ones."""
        name, superseded = snapshot.name, envelope.superseded
        if snapshot.is_xml:
            parsed = self._xml_parser(name).records(snapshot.path)
            for number, (values, problem) in enumerate(parsed, start=1):
                if number > start and not self._superseded(name, number, superseded):
                    yield number, self._xml_record(name, number, values, problem)
            return
        with snapshot.path.open("rb") as fh:
            lines = _lines(fh)
            next(lines)  # the header, read by the envelope
            number = 0
            for line in lines:
                if line is not None and not line.strip():
                    continue
                number += 1
                if number > envelope.records:
                    return  # the trailer
                if number > start and not self._superseded(name, number, superseded):
                    yield number, self._csv_record(name, number, envelope.header, line)

    def _superseded(self, name: str, number: int, superseded: dict[int, int]) -> bool:
        """Whether row `number` is an older version of an id a later row holds (logged)."""
        winner = superseded.get(number)
        if winner is None:
            return False
        newer = f"as new or newer by {self.version_column}" if self.version_column else "later"
        log.warning(
            "source %r: row %d of %s repeats the %s of row %d (%s); row %d is skipped",
            self.source,
            number,
            name,
            self.key_column,
            winner,
            newer,
            number,
        )
        return True

    def _csv_record(
        self, name: str, number: int, header: tuple[str, ...], line: bytes | None
    ) -> RawRecord:
        origin = f"{name}#row{number}"
        if line is None:
            message = f"row {number} of {name} is over {MAX_LINE} bytes"
            return self._line_rejected(name, number, header, "", "line_too_long", message)
        try:
            text = line.decode()
        except UnicodeDecodeError as exc:
            return self._line_rejected(
                name,
                number,
                header,
                line.decode(errors="backslashreplace"),
                "invalid_encoding",
                f"row {number} of {name} is not UTF-8 text (byte 0x{line[exc.start]:02X} at "
                f"position {exc.start}); ask the source to re-issue the file in UTF-8",
            )
        try:
            values = next(csv.reader([text], delimiter=self.csv_delimiter, strict=True))
        except csv.Error as exc:
            return self._line_rejected(
                name,
                number,
                header,
                text,
                "broken_csv",
                f"row {number} of {name} is not valid CSV ({exc}: a quote left open?)",
            )
        if len(values) != len(header):
            return self._line_rejected(
                name,
                number,
                header,
                text,
                "field_count",
                f"row {number} of {name} has {len(values)} fields, the header {len(header)} "
                "(a separator or quote out of place?)",
            )
        payload: dict[str, Any] = {k: (v or None) for k, v in zip(header, values, strict=True)}
        payload[ORIGIN] = origin
        key = self._plausible_key(payload[self.key_column])
        return RawRecord(key or _origin_key(name, number), payload)

    def _line_rejected(
        self, name: str, number: int, header: tuple[str, ...], text: str, code: str, message: str
    ) -> RawRecord:
        # A line that cannot be split into columns cannot have its identifiers hashed field
        # by field: keep it for the operator with every identifier-like digit run masked.
        masked = _IDENTIFIER_LIKE.sub("<masked>", text)[:2000]
        payload = {
            ORIGIN: f"{name}#row{number}",
            REJECTED: Reason("record", code, message).as_dict(),
            TEXT: masked,
        }
        return RawRecord(self._recover_key(text, header) or _origin_key(name, number), payload)

    def _recover_key(self, text: str, header: tuple[str, ...]) -> str | None:
        """The record's id, when the fields up to its column are plainly intact."""
        index = header.index(self.key_column)
        parts = text.split(self.csv_delimiter)
        if index >= len(parts) or '"' in self.csv_delimiter.join(parts[: index + 1]):
            return None
        return self._plausible_key(parts[index])

    def _xml_record(
        self, name: str, number: int, values: dict[str, str], problem: tuple[str, str] | None
    ) -> RawRecord:
        origin = f"{name}#row{number}"
        payload: dict[str, Any] = dict.fromkeys(self.columns)
        payload.update((k, v or None) for k, v in values.items())
        payload[ORIGIN] = origin
        if problem is not None:
            code, detail = problem
            message = f"record {number} of {name}: {detail}"
            payload[REJECTED] = Reason("record", code, message).as_dict()
        key = self._plausible_key(payload.get(self.key_column))
        return RawRecord(key or _origin_key(name, number), payload)


def _name_key(name: str) -> str:
    """A file's name as its quarantine keys hold it: one name, one form, and never too long.

    `#`, `%` and `~` are escaped (`%23`, `%25`, `%7E`), so `<name>#` can only start keys of that
    very file (not those of a file named `<name>#2.csv`). A name longer than MAX_NAME_IN_KEY
    characters escaped, or not UTF-8, becomes its first characters, `~` and the SHA-256 of its
    bytes: keys stay within the registry's 128 characters, distinct for every name.
    """
    escaped = name.replace("%", "%25").replace("#", "%23").replace("~", "%7E")
    if len(escaped) <= MAX_NAME_IN_KEY and _is_utf8(name):
        return escaped
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()
    return f"{_shown(escaped)[:_NAME_HEAD]}~{digest}"


def _origin_key(name: str, number: int) -> str:
    """The quarantine key of row `number` of a file when the row has no plausible id."""
    return f"{_name_key(name)}#row{number}"


def _origins(name: str) -> str:
    """The quarantine-key prefix of what a file's lines and envelope are kept under."""
    return f"{_name_key(name)}#"


def _is_utf8(name: str) -> bool:
    """Whether a listed name was UTF-8 (undecodable bytes arrive as lone surrogates)."""
    try:
        name.encode()
    except UnicodeEncodeError:
        return False
    return True


def _shown(name: str) -> str:
    """A listed name as text, its bytes that are not UTF-8 shown as `\\xNN`."""
    return os.fsencode(name).decode(errors="backslashreplace")


def _unreadable_content(name: str, exc: Exception) -> Reason:
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


def _unreadable(listed: _Listed, exc: OSError) -> Reason:
    return Reason(
        "file",
        "unreadable",
        f"{listed.name} cannot be read ({exc.strerror or type(exc).__name__}); check the file "
        "and its permissions in the drop folder",
    )


def _lines(fh: BinaryIO) -> Iterator[bytes | None]:
    """Physical lines without their ending; None for a line over MAX_LINE bytes (skipped)."""
    while True:
        line = fh.readline(MAX_LINE + 1)
        if not line:
            return
        if len(line) > MAX_LINE and not line.endswith(b"\n"):
            while (rest := fh.readline(MAX_LINE)) and not rest.endswith(b"\n"):
                pass
            yield None
            continue
        yield line.rstrip(b"\r\n")


class _XmlRecords:
    """Streams the record elements of one XML export with expat, refusing any DTD.

    A DOCTYPE is refused as soon as it starts, so no entity is ever declared: entity expansion
    (billion laughs) and external entities (XXE) cannot happen, and undeclared entities are
    well-formedness errors. Records are handed out per 64 KiB chunk parsed: time grows with
    the file's size and memory with the largest record (MAX_RECORD), never with the file, and
    pathological markup (MAX_MARKUP, MAX_DEPTH) refuses the file instead of stalling the sync.
    One instance reads one file once.
    """

    def __init__(self, name: str, root: str, record: str, count: str) -> None:
        self.name, self.root, self.record, self.count = name, root, record, count
        self.declared: int | None = None
        self._parser = expat.ParserCreate()
        self._record_at = 0  # byte offset where the open record started
        self._depth = 0
        self._values: dict[str, str] | None = None
        self._problem: tuple[str, str] | None = None  # (code, detail) of the record
        self._field: str | None = None
        self._value = ""
        self._size = 0
        self._count_text: list[str] | None = None
        self._ready: list[tuple[dict[str, str], tuple[str, str] | None]] = []

    def records(
        self, path: Path, *, final: bool = True
    ) -> Iterator[tuple[dict[str, str], tuple[str, str] | None]]:
        """(values, problem) per record element; raises _FileProblem for a broken file.

        With `final` false the file may be cut anywhere (still being written): only what is
        already there is judged.
        """
        parser = self._parser
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        parser.buffer_text = True
        parser.StartDoctypeDeclHandler = self._refuse_doctype
        parser.EntityDeclHandler = self._refuse_doctype
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._chars
        fed = 0
        with path.open("rb") as fh:
            while True:
                chunk = fh.read(_CHUNK)
                if not (chunk or final):
                    return
                try:
                    parser.Parse(chunk, not chunk)
                except expat.ExpatError as exc:
                    raise self._problem_at(exc) from None
                fed += len(chunk)
                # Bytes expat holds as one unfinished token (it resumes at its start).
                if fed - max(parser.CurrentByteIndex, 0) > MAX_MARKUP:
                    raise _FileProblem(
                        Reason(
                            "file",
                            "markup_too_long",
                            f"{self.name}: a comment, tag or instruction starting at byte "
                            f"{max(parser.CurrentByteIndex, 0)} runs over {MAX_MARKUP} bytes; "
                            "ask the source to re-issue the file",
                        )
                    )
                ready, self._ready = self._ready, []
                yield from ready
                if not chunk:
                    return

    def _problem_at(self, exc: expat.ExpatError) -> _FileProblem:
        return _FileProblem(
            Reason(
                "file",
                "malformed_xml",
                f"{self.name} is not well-formed XML: {expat.ErrorString(exc.code)} at line "
                f"{exc.lineno}, column {exc.offset}; ask the source to re-issue the file",
            )
        )

    def _refuse_doctype(self, *_: Any) -> None:
        raise _FileProblem(
            Reason(
                "file",
                "doctype_refused",
                f"{self.name} declares a DOCTYPE; entity declarations are refused (they can "
                "expand without limit or read other files): ask the source for plain XML",
            )
        )

    # The three handlers run for every element: the common case (a value of a record) first.
    def _start(self, name: str, _attributes: dict[str, str]) -> None:
        depth = self._depth = self._depth + 1
        values = self._values
        if depth == 3 and values is not None:
            if self._parser.CurrentByteIndex - self._record_at > MAX_RECORD:
                too_long = f"the record is over {MAX_RECORD} bytes"
                self._problem = self._problem or ("record_too_long", too_long)
                return  # nothing more of it is kept
            if name in values:
                self._problem = self._problem or ("repeated_element", f"<{name}> appears twice")
            self._field, self._value, self._size = name, "", 0
        elif depth > MAX_DEPTH:
            raise _FileProblem(
                Reason(
                    "file",
                    "too_deep",
                    f"{self.name}: elements nest deeper than {MAX_DEPTH} levels at line "
                    f"{self._parser.CurrentLineNumber}; ask the source to re-issue the file",
                )
            )
        elif depth == 1 and name != self.root:
            raise _FileProblem(
                Reason(
                    "file",
                    "malformed_xml",
                    f"{self.name}: the root element is <{name}>, not <{self.root}>",
                )
            )
        elif depth == 2:
            if name == self.record:
                self._values, self._problem = {}, None
                self._record_at = self._parser.CurrentByteIndex
            elif name == self.count:
                self._count_text = []
        elif depth > 3 and values is not None:
            nested = f"element <{name}> inside <{self._field}>"
            self._problem = self._problem or ("nested_element", nested)

    def _chars(self, data: str) -> None:
        if self._depth == 3 and self._field is not None:
            self._size += len(data)
            if self._size > MAX_VALUE:
                too_long = f"<{self._field}> is over {MAX_VALUE} characters"
                self._problem = self._problem or ("value_too_long", too_long)
            else:
                self._value += data  # one piece mostly (buffer_text), a few for long values
        elif self._depth == 2 and self._count_text is not None and len(self._count_text) < 64:
            self._count_text.append(data)  # (a longer count is refused anyway: memory bounded)

    def _end(self, name: str) -> None:
        depth = self._depth
        self._depth = depth - 1
        if depth == 3:
            if self._field == name and self._values is not None:
                self._values.setdefault(name, self._value)
                self._field = None
        elif depth == 2 and name == self.record and self._values is not None:
            if self._parser.CurrentByteIndex - self._record_at > MAX_RECORD:
                too_long = f"the record is over {MAX_RECORD} bytes"
                self._problem = self._problem or ("record_too_long", too_long)
            self._ready.append((self._values, self._problem))
            self._values = None
        elif depth == 2 and name == self.count and self._count_text is not None:
            text = "".join(self._count_text).strip()
            if self.declared is not None or not _COUNT.fullmatch(text):
                what = "appears twice" if self.declared is not None else f"{text[:40]!r}"
                raise _FileProblem(
                    Reason(
                        "file",
                        "bad_count",
                        f"{self.name}: <{self.count}> {what} is not a number of records (1 to "
                        "12 digits 0-9); ask the source to re-issue the file",
                    )
                )
            self.declared = int(text)
            self._count_text = None
