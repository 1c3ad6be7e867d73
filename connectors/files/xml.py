"""XML exports: a root element holding record elements and a count element.

A file is complete when it ends with the root's closing tag; it must then be well formed,
carry no DOCTYPE, and its count element must equal the number of records, or the whole file
is reported. An incomplete file whose start already breaks these rules (binary, UTF-16, a
DOCTYPE, text after the root) is reported at once, as it can never become valid.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from xml.parsers import expat

from connectors.base import RawRecord
from connectors.errors import Reason
from connectors.files.export import (
    COUNT,
    ORIGIN,
    REJECTED,
    WIDE_BOMS,
    Envelope,
    ExportFormat,
    FileProblem,
    Versions,
)
from connectors.files.folder import Snapshot

MAX_VALUE = 100_000  # characters of one XML value; a longer one is rejected, not held
# expat re-scans a token cut by a chunk's end from its start at every chunk (expat before 2.6
# has no reparse deferral): one huge comment, tag or instruction costs the square of its size,
# so markup over MAX_MARKUP refuses the file. A record over MAX_RECORD bytes is rejected (its
# values are no longer kept), and nesting deeper than MAX_DEPTH refuses the file.
MAX_MARKUP = 1 << 20
MAX_RECORD = 1 << 20
MAX_DEPTH = 32
_CHUNK = 1 << 16


class XmlExport(ExportFormat):
    """The connector's `xml_root`, `xml_record` and `xml_count` name the envelope's elements."""

    suffix = ".xml"

    def envelope(self, snapshot: Snapshot) -> Envelope:
        name, c = snapshot.name, self.connector
        with snapshot.path.open("rb") as fh:
            head = fh.read(4)
            fh.seek(max(0, snapshot.size - 512))
            tail = fh.read().rstrip()
        if head.startswith(WIDE_BOMS) or b"\x00" in head:
            raise FileProblem(
                Reason(
                    "file",
                    "bad_encoding",
                    f"{name} is not UTF-8 XML (a UTF-16 or binary file?); ask the source to "
                    "re-issue the file in UTF-8",
                )
            )
        parser = self._parser(name)
        if not tail.endswith(f"</{c.xml_root}>".encode()):
            # Still being written, unless what is there already breaks the rules (raises).
            for _ in parser.records(snapshot.path, final=False):
                pass
            return Envelope(False, waiting=f"it does not end with </{c.xml_root}> yet")
        versions = Versions(c.version_of)
        records = 0
        for records, (values, _) in enumerate(parser.records(snapshot.path), start=1):
            version = values.get(c.version_column) if c.version_column else None
            versions.add(records, c.plausible_key(values.get(c.key_column)), version)
        if parser.declared != records:
            declared = "no" if parser.declared is None else str(parser.declared)
            raise FileProblem(
                Reason(
                    "file",
                    "row_count_mismatch",
                    f"{name}: <{c.xml_count}> declares {declared} records but the "
                    f"file holds {records}; ask the source to re-issue the file",
                )
            )
        return Envelope(True, records=records, superseded=versions.superseded())

    def records(
        self, snapshot: Snapshot, envelope: Envelope, wanted: Callable[[int], bool]
    ) -> Iterator[tuple[int, RawRecord]]:
        parsed = self._parser(snapshot.name).records(snapshot.path)
        for number, (values, problem) in enumerate(parsed, start=1):
            if wanted(number):
                yield number, self._record(snapshot.name, number, values, problem)

    def _parser(self, name: str) -> XmlRecords:
        c = self.connector
        return XmlRecords(name, c.xml_root, c.xml_record, c.xml_count)

    def _record(
        self, name: str, number: int, values: dict[str, str], problem: tuple[str, str] | None
    ) -> RawRecord:
        payload: dict[str, Any] = dict.fromkeys(self.connector.columns)
        payload.update((k, v or None) for k, v in values.items())
        payload[ORIGIN] = f"{name}#row{number}"
        if problem is not None:
            code, detail = problem
            message = f"record {number} of {name}: {detail}"
            payload[REJECTED] = Reason("record", code, message).as_dict()
        return RawRecord(
            self.record_key(name, number, payload.get(self.connector.key_column)), payload
        )


class XmlRecords:
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
        """(values, problem) per record element; raises FileProblem for a broken file.

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
                    raise FileProblem(
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

    def _problem_at(self, exc: expat.ExpatError) -> FileProblem:
        return FileProblem(
            Reason(
                "file",
                "malformed_xml",
                f"{self.name} is not well-formed XML: {expat.ErrorString(exc.code)} at line "
                f"{exc.lineno}, column {exc.offset}; ask the source to re-issue the file",
            )
        )

    def _refuse_doctype(self, *_: Any) -> None:
        raise FileProblem(
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
            raise FileProblem(
                Reason(
                    "file",
                    "too_deep",
                    f"{self.name}: elements nest deeper than {MAX_DEPTH} levels at line "
                    f"{self._parser.CurrentLineNumber}; ask the source to re-issue the file",
                )
            )
        elif depth == 1 and name != self.root:
            raise FileProblem(
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
            if self.declared is not None or not COUNT.fullmatch(text):
                what = "appears twice" if self.declared is not None else f"{text[:40]!r}"
                raise FileProblem(
                    Reason(
                        "file",
                        "bad_count",
                        f"{self.name}: <{self.count}> {what} is not a number of records (1 to "
                        "12 digits 0-9); ask the source to re-issue the file",
                    )
                )
            self.declared = int(text)
            self._count_text = None
