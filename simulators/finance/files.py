"""A day's export as bytes, CSV or XML, read back, and written so readers see all or nothing."""

from __future__ import annotations

import csv
import io
import os
import unicodedata
from datetime import date
from pathlib import Path
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from simulators.finance.schema import COLUMNS, CSV_TRAILER, DATE, XML_COUNT, XML_RECORD, XML_ROOT

_HOLE = "@@TenThuTuc@@"
_NAME_AT = COLUMNS.index("TenThuTuc")
# Windows-1258 writes Vietnamese tone marks as separate combining characters.
_TONES = frozenset("\u0300\u0301\u0303\u0309\u0323")

Record = dict[str, str] | bytes  # a parsed row, or a CSV line kept byte for byte


def _render(day: date, xml: bool, items: list[tuple[Record, str | None]]) -> bytes:
    """A whole export file: (row, defect kind) pairs, CSV or XML."""
    if xml:
        out = [
            '<?xml version="1.0" encoding="UTF-8"?>\n',
            f'<{XML_ROOT} NgayBaoCao="{day:{DATE}}">\n',
        ]
        for values, _ in items:
            assert isinstance(values, dict)
            inner = "".join(f"<{c}>{escape(v)}</{c}>" for c in COLUMNS if (v := values.get(c)))
            out.append(f"  <{XML_RECORD}>{inner}</{XML_RECORD}>\n")
        out.append(f"  <{XML_COUNT}>{len(items)}</{XML_COUNT}>\n</{XML_ROOT}>\n")
        return "".join(out).encode()
    lines = [b"\xef\xbb\xbf" + ",".join(COLUMNS).encode()]
    lines += [_csv_line(values, defect) for values, defect in items]
    lines.append(f"{CSV_TRAILER},{len(items)}".encode())
    return b"\r\n".join(lines) + b"\r\n"


def _csv_line(values: Record, defect: str | None) -> bytes:
    if isinstance(values, bytes):
        return values
    fields = [values.get(c, "") for c in COLUMNS]
    if defect in ("broken_quoting", "not_utf8"):
        fields[_NAME_AT] = _HOLE
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(fields)
    text = buffer.getvalue()
    name = values["TenThuTuc"]
    if defect == "broken_quoting":
        return text.replace(_HOLE, '"' + name).encode()
    if defect == "not_utf8":
        head, tail = text.split(_HOLE)
        spoiled = _windows_1258(name)
        try:
            spoiled.decode()
        except UnicodeDecodeError:
            return head.encode() + spoiled + tail.encode()
        raise RuntimeError(f"{name!r} in Windows-1258 happens to be UTF-8")  # pragma: no cover
    return text.encode()


def _windows_1258(text: str) -> bytes:
    """Text as a Windows-1258 machine stores it: letters precomposed, tone marks apart."""
    out: list[str] = []
    base = -1
    for ch in unicodedata.normalize("NFD", text):
        if unicodedata.combining(ch) and ch not in _TONES and base >= 0:
            out[base] = unicodedata.normalize("NFC", out[base] + ch)
        else:
            if not unicodedata.combining(ch):
                base = len(out)
            out.append(ch)
    return "".join(out).encode("cp1258", errors="replace")


def _parse(path: Path) -> list[Record]:
    """The simulator reading back its own file (trusted: it wrote it)."""
    data = path.read_bytes()
    if path.suffix == ".xml":
        root = ElementTree.fromstring(data)
        return [
            {c: (record.findtext(c) or "") for c in COLUMNS} for record in root.iter(XML_RECORD)
        ]
    lines = data.removeprefix(b"\xef\xbb\xbf").split(b"\r\n")
    records: list[Record] = []
    for line in lines[1:]:
        if not line or line.startswith(CSV_TRAILER.encode()):
            continue
        try:
            values = next(csv.reader([line.decode()], strict=True))
        except (UnicodeDecodeError, csv.Error):
            records.append(line)
            continue
        if len(values) != len(COLUMNS):
            records.append(line)
            continue
        records.append(dict(zip(COLUMNS, values, strict=True)))
    return records


def _write(path: Path, data: bytes) -> None:
    """Write beside the target under a hidden name, then rename: readers see all or nothing."""
    hidden = path.with_name(f".{path.name}.tmp")
    hidden.write_bytes(data)
    os.replace(hidden, path)
