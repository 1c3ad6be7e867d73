"""CSV exports: a header line, data lines, and a trailer `<marker>,<n>` that ends the file.

A file is complete when its last non-blank line is the trailer; `n` must equal the number of
data lines, or the whole file is reported. The header is judged as soon as its line is
complete, so a file that is no UTF-8 CSV (binary, UTF-16) or lacks a column is reported at
once instead of waited for. A line that is not UTF-8, breaks quoting or has the wrong number
of fields becomes a rejected record that keeps only its text, identifier-like digits masked.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from connectors.base import RawRecord
from connectors.errors import Reason
from connectors.files.export import (
    COUNT,
    ORIGIN,
    REJECTED,
    TEXT,
    WIDE_BOMS,
    Envelope,
    ExportFormat,
    FileProblem,
    Versions,
)
from connectors.files.folder import Snapshot

MAX_LINE = 1 << 20  # bytes; a longer CSV line is rejected, not held in memory
_BOM = b"\xef\xbb\xbf"
# A field may fill a whole line: past csv's default limit (128 KiB) a long value would be
# reported as broken CSV. The limit is process-wide, so it is only ever raised.
csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE))
# 9+ digit runs (citizen IDs, tax codes, 0101234567-001) in text kept from unreadable lines.
_IDENTIFIER_LIKE = re.compile(r"(?<!\d)\d{9,}(?:-\d{3})?(?!\d)")


def lines(fh: BinaryIO) -> Iterator[bytes | None]:
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


class CsvExport(ExportFormat):
    """The connector's `csv_delimiter` and `csv_trailer` declare the dialect and the trailer."""

    suffix = ".csv"

    def envelope(self, snapshot: Snapshot) -> Envelope:
        name = snapshot.name
        versions = Versions(self.connector.version_of)
        with snapshot.path.open("rb") as fh:
            physical = lines(fh)
            first = next(physical, None)
            header: tuple[str, ...] = ()
            if first is not None and (b"\x00" in first or first.startswith(WIDE_BOMS)):
                header = self._header(first, name)  # binary or UTF-16: raises at once
            data, last, seen = 0, None, False  # `last`: the latest non-blank line, if `seen`
            for line in physical:
                # Followed by another line, the header line is complete: judge it now.
                header = header or self._header(first, name)
                if line is not None and not line.strip():
                    continue
                if seen:  # the line before this one is data, not the trailer
                    data += 1
                    versions.add(data, *self._key_and_version(last, header))
                last, seen = line, True
        if not seen:
            waiting = "it is empty" if first is None else "it has no line after the header yet"
            return Envelope(False, waiting=waiting)
        declared = self._trailer(last, name)
        if declared is None:
            c = self.connector
            waiting = f"its last line is not the trailer '{c.csv_trailer}{c.csv_delimiter}<rows>'"
            return Envelope(False, waiting=waiting)
        if declared != data:
            raise FileProblem(
                Reason(
                    "file",
                    "row_count_mismatch",
                    f"{name}: the trailer declares {declared} rows but the file "
                    f"holds {data}; ask the source to re-issue the file",
                )
            )
        return Envelope(True, header=header, records=data, superseded=versions.superseded())

    def records(
        self, snapshot: Snapshot, envelope: Envelope, wanted: Callable[[int], bool]
    ) -> Iterator[tuple[int, RawRecord]]:
        with snapshot.path.open("rb") as fh:
            physical = lines(fh)
            next(physical)  # the header, read by the envelope
            number = 0
            for line in physical:
                if line is not None and not line.strip():
                    continue
                number += 1
                if number > envelope.records:
                    return  # the trailer
                if wanted(number):
                    yield number, self._record(snapshot.name, number, envelope.header, line)

    # -- the envelope -----------------------------------------------------------------------
    def _key_and_version(
        self, line: bytes | None, header: tuple[str, ...]
    ) -> tuple[str | None, str | None]:
        """The id (when plausible) and version of a data line, as `_record` will read it."""
        if line is None:
            return None, None
        c = self.connector
        try:
            values = next(csv.reader([line.decode()], delimiter=c.csv_delimiter, strict=True))
        except (UnicodeDecodeError, csv.Error, StopIteration):
            values = []
        if len(values) != len(header):
            return self._recover_key(line.decode(errors="backslashreplace"), header), None
        key = c.plausible_key(values[header.index(c.key_column)])
        if c.version_column is None:
            return key, None
        return key, values[header.index(c.version_column)]

    def _trailer(self, line: bytes | None, name: str) -> int | None:
        """The row count of a trailer line, or None when the line is no trailer."""
        c = self.connector
        try:
            fields = next(csv.reader([(line or b"").decode()], delimiter=c.csv_delimiter))
        except (UnicodeDecodeError, csv.Error, StopIteration):
            return None
        if not fields or fields[0].strip() != c.csv_trailer:
            return None
        if len(fields) != 2 or not COUNT.fullmatch(fields[1].strip()):
            raise FileProblem(
                Reason(
                    "file",
                    "bad_trailer",
                    f"{name}: trailer {','.join(fields)[:80]!r} is not "
                    f"'{c.csv_trailer}{c.csv_delimiter}<rows>' (rows: 1 to 12 digits "
                    "0-9); ask the source to re-issue the file",
                )
            )
        return int(fields[1])

    def _header(self, line: bytes | None, name: str) -> tuple[str, ...]:
        c = self.connector
        try:
            if b"\x00" in (line or b""):
                raise ValueError("NUL")  # UTF-16 or binary: valid UTF-8, yet no text
            text = (line or b"").removeprefix(_BOM).decode()
            header = tuple(
                h.strip() for h in next(csv.reader([text], delimiter=c.csv_delimiter, strict=True))
            )
        except (ValueError, csv.Error, StopIteration):  # UnicodeDecodeError is a ValueError
            raise FileProblem(
                Reason(
                    "file",
                    "bad_header",
                    f"{name}: the header line is not UTF-8 CSV (a binary or UTF-16 file?); "
                    "ask the source to re-issue the file as UTF-8 CSV",
                )
            ) from None
        missing = [column for column in c.columns if column not in header]
        if missing or len(set(header)) != len(header):
            problem = f"columns {', '.join(missing)} missing" if missing else "repeated columns"
            raise FileProblem(
                Reason(
                    "file",
                    "bad_header",
                    f"{name}: {problem} in the header (check the export at the source or the "
                    f"mapping in {c.mapping_file})",
                )
            )
        return header

    # -- the records ------------------------------------------------------------------------
    def _record(
        self, name: str, number: int, header: tuple[str, ...], line: bytes | None
    ) -> RawRecord:
        if line is None:
            message = f"row {number} of {name} is over {MAX_LINE} bytes"
            return self._rejected(name, number, header, "", "line_too_long", message)
        try:
            text = line.decode()
        except UnicodeDecodeError as exc:
            return self._rejected(
                name,
                number,
                header,
                line.decode(errors="backslashreplace"),
                "invalid_encoding",
                f"row {number} of {name} is not UTF-8 text (byte 0x{line[exc.start]:02X} at "
                f"position {exc.start}); ask the source to re-issue the file in UTF-8",
            )
        try:
            values = next(csv.reader([text], delimiter=self.connector.csv_delimiter, strict=True))
        except csv.Error as exc:
            return self._rejected(
                name,
                number,
                header,
                text,
                "broken_csv",
                f"row {number} of {name} is not valid CSV ({exc}: a quote left open?)",
            )
        if len(values) != len(header):
            return self._rejected(
                name,
                number,
                header,
                text,
                "field_count",
                f"row {number} of {name} has {len(values)} fields, the header {len(header)} "
                "(a separator or quote out of place?)",
            )
        payload: dict[str, Any] = {k: (v or None) for k, v in zip(header, values, strict=True)}
        payload[ORIGIN] = f"{name}#row{number}"
        return RawRecord(self.record_key(name, number, payload[self.connector.key_column]), payload)

    def _rejected(
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
        return RawRecord(self.record_key(name, number, self._recover_key(text, header)), payload)

    def _recover_key(self, text: str, header: tuple[str, ...]) -> str | None:
        """The record's id, when the fields up to its column are plainly intact."""
        c = self.connector
        index = header.index(c.key_column)
        parts = text.split(c.csv_delimiter)
        if index >= len(parts) or '"' in c.csv_delimiter.join(parts[: index + 1]):
            return None
        return c.plausible_key(parts[index])
