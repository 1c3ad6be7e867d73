"""`FileDropConnector`: the declarations a file-drop connector makes, and the read loop.

Listing and copying are the drop folder's (`folder.py`), what is done stays in the manifest
(`manifest.py`), and each export format is a strategy picked by file suffix (`csv.py`,
`xml.py`). The package docstring (`connectors/files/__init__.py`) states the promises.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel

from connectors.base import Batch, Connector, ConnectorContext, Cursor, Health, Period, RawRecord
from connectors.errors import Reason, RecordRejected
from connectors.files.csv import CsvExport
from connectors.files.export import (
    ORIGIN,
    REJECTED,
    Envelope,
    ExportFormat,
    FileProblem,
    name_key,
    origins,
    shown,
    unreadable_content,
)
from connectors.files.folder import DropFolder, Listed, Snapshot
from connectors.files.manifest import Manifest
from connectors.files.xml import XmlExport
from models.dossier import DossierRecord

log = logging.getLogger(__name__)


class FileDropSettings(BaseModel):
    folder: Path


class FileDropConnector(Connector[FileDropSettings]):
    """Declarations a file-drop connector makes; listing, reading and counting are done here.

    A subclass declares the native `columns` its mapping reads (a CSV header lacking one
    rejects the file), the `key_column` holding the record's id, the `version_column` (one of
    the columns, a time) holding its last change, which settles an id repeated in one file, the
    `received_column` and the `time_formats` (strptime) that date a dossier for `count`, the CSV
    `csv_trailer` marker and the XML `xml_root`, `xml_record` and `xml_count` element names;
    and implements `map_row`. `formats` lists the export formats read, as strategies picked
    by file suffix (CSV and XML by default); files of other suffixes are not exports.
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
    formats: ClassVar[tuple[type[ExportFormat], ...]] = (CsvExport, XmlExport)

    def __init__(self, context: ConnectorContext) -> None:
        super().__init__(context)
        self.folder: Path = self.settings.folder
        self._key = re.compile(self.key_pattern)
        self._formats = {kind.suffix: kind(self) for kind in self.formats}
        self._drop = DropFolder(self.folder, source=self.source, suffixes=tuple(self._formats))

    def map_row(self, raw: RawRecord) -> DossierRecord:
        """The canonical record of one readable native row: by default the declared mapping
        and `adjust` (see `Connector.to_canonical`)."""
        return super().to_canonical(raw)

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
                    snapshot = self._drop.snapshot(listed, Path(scratch))
                except OSError as exc:
                    # Not recorded as done: a later run tries again (permissions fixed, ...).
                    pending.append(
                        self._file_rejected(listed.name, self._drop.unreadable(listed, exc))
                    )
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
                    settles.append(origins(snapshot.name))
                    pending.append(self._file_rejected(snapshot.name, envelope.problem))
                    manifest.finish(snapshot)
                    moved = True
                else:
                    start = manifest.resume_at(snapshot)
                    if start == 0:  # (when resumed, the batch that settled has committed)
                        settles.append(origins(snapshot.name))
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
                        reason = unreadable_content(snapshot.name, exc)
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
                    snapshot = self._drop.snapshot(listed, Path(scratch))
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
                        unreadable_content(snapshot.name, exc)
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

    def _listing(self) -> list[Listed]:
        return self._drop.listing()

    def _file_rejected(self, name: str, reason: Reason) -> RawRecord:
        log.warning("source %r: %s", self.source, reason.message)
        payload = {ORIGIN: shown(name), REJECTED: reason.as_dict()}
        return RawRecord(f"{name_key(name)}#file", payload)

    def _format(self, name: str) -> ExportFormat:
        """The format strategy of a listed file (the listing keeps only known suffixes)."""
        return self._formats[os.path.splitext(name)[1].lower()]

    def _envelope(self, snapshot: Snapshot) -> Envelope:
        try:
            return self._format(snapshot.name).envelope(snapshot)
        except FileProblem as problem:
            return Envelope(True, problem.reason)
        except Exception as exc:  # one file no rule foresaw must not stop the sync
            return Envelope(True, unreadable_content(snapshot.name, exc))

    def plausible_key(self, value: str | None) -> str | None:
        """A native id fit to key a record, or None (blank, spaces, control characters, `#`)."""
        # Never "#": it separates a file's name from the line in origin keys (`origin_key`).
        key = (value or "").strip()
        return key if self._key.fullmatch(key) and "#" not in key else None

    # -- records ----------------------------------------------------------------------------
    def _records(
        self, snapshot: Snapshot, envelope: Envelope, start: int
    ) -> Iterator[tuple[int, RawRecord]]:
        """(number, record) of each record after the first `start` ones."""
        name, superseded = snapshot.name, envelope.superseded

        def wanted(number: int) -> bool:
            return number > start and not self._superseded(name, number, superseded)

        return self._format(name).records(snapshot, envelope, wanted)

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
