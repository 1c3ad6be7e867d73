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
name with `#`, `%` and `~` escaped, a long name its head and digest (`export.name_key`): a key names
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

The package: `connector.py` (the connector and its read loop), `folder.py` (listing, links,
private copies), `manifest.py` (the cursor), `export.py` (the format strategy contract and what
formats share), `csv.py` and `xml.py` (the two formats, strategies picked by file suffix).
"""

from __future__ import annotations

from connectors.files.connector import FileDropConnector, FileDropSettings
from connectors.files.csv import MAX_LINE, CsvExport
from connectors.files.export import (
    MAX_NAME_IN_KEY,
    ORIGIN,
    REJECTED,
    TEXT,
    Envelope,
    ExportFormat,
    FileProblem,
)
from connectors.files.folder import DropFolder, Listed, Snapshot
from connectors.files.manifest import MANIFEST_VERSION, Manifest
from connectors.files.xml import MAX_DEPTH, MAX_MARKUP, MAX_RECORD, MAX_VALUE, XmlExport

SUFFIXES = (CsvExport.suffix, XmlExport.suffix)  # the formats a connector reads by default

__all__ = [
    "MANIFEST_VERSION",
    "MAX_DEPTH",
    "MAX_LINE",
    "MAX_MARKUP",
    "MAX_NAME_IN_KEY",
    "MAX_RECORD",
    "MAX_VALUE",
    "ORIGIN",
    "REJECTED",
    "SUFFIXES",
    "TEXT",
    "CsvExport",
    "DropFolder",
    "Envelope",
    "ExportFormat",
    "FileDropConnector",
    "FileDropSettings",
    "FileProblem",
    "Listed",
    "Manifest",
    "Snapshot",
    "XmlExport",
]
