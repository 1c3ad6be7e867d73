"""The file-drop transport: hand-made export files in a real folder, synced by the real engine.

`Drop` is a small export format of its own (five columns, `#END` trailer, `<Export>` XML), so
these tests exercise the transport alone; the Finance format is tested in test_finance.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, func, select

from connectors import files
from connectors.base import Batch, ConnectorContext, Cursor, Period, RawRecord
from connectors.files import REJECTED, TEXT, CsvExport, FileDropConnector, XmlExport
from connectors.identifiers import IdentifierHasher
from dossierhub import store
from dossierhub.errors import FatalSourceError
from dossierhub.sync import SyncResult, sync_source
from models import migrate
from models.dossier import DossierRecord
from models.tables import dossier, dossier_event, quarantine, sync_state

HASHER = IdentifierHasher(SecretStr("files-test-key-" + "f" * 32))
COLUMNS = ("Ma", "TrangThai", "Nhan", "CapNhat", "MST")
TAX_CODE = "0101234567"


class Drop(FileDropConnector):
    """A test export format: just enough columns to make a canonical record."""

    mapping_file = "tests/connectors/test_files.py"
    columns: ClassVar[tuple[str, ...]] = COLUMNS
    key_column = "Ma"
    received_column = "Nhan"
    time_formats = ("%d/%m/%Y %H:%M:%S",)
    csv_trailer = "#END"
    xml_root, xml_record, xml_count = "Export", "Row", "Rows"
    personal_fields: ClassVar[dict[str, str]] = {"MST": "applicant_key"}

    def map_row(self, raw: RawRecord) -> DossierRecord:
        row = raw.payload
        fields: dict[str, Any] = {
            "source_system": self.source,
            "source_id": raw.source_id,
            "dossier_code": row["Ma"],
            "procedure_code": "1.000123",
            "agency_code": "000.00.10.H56",
            "channel": "online",
            "status": int(row["TrangThai"]),
            "received_at": self.parse_time(row["Nhan"]),
            "source_updated_at": self.parse_time(row["CapNhat"]),
        }
        if row["MST"]:
            fields["applicant_key"] = self.identifier_key(row["MST"])
        return self.build(fields, [])


def drop(folder: Path, *, batch_size: int = 100) -> Drop:
    return Drop(
        ConnectorContext(
            source="drops", settings={"folder": str(folder)}, hasher=HASHER, batch_size=batch_size
        )
    )


def row(n: int, *, day: int = 3, status: int = 4, updated: str | None = None) -> dict[str, str]:
    return {
        "Ma": f"000.00.10.H56-2603{day:02d}-{n:04d}",
        "TrangThai": str(status),
        "Nhan": f"{day:02d}/03/2026 08:{n % 60:02d}:00",
        "CapNhat": updated or f"{day:02d}/03/2026 17:00:00",
        "MST": TAX_CODE,
    }


def rows(count: int, *, day: int = 3) -> list[dict[str, str]]:
    return [row(n, day=day) for n in range(1, count + 1)]


def csv_file(items: Sequence[dict[str, str] | bytes], *, trailer: int | None = -1) -> bytes:
    """A CSV export; a bytes item is a raw line; trailer None leaves the file unfinished."""
    lines = [",".join(COLUMNS).encode()]
    lines += [
        i if isinstance(i, bytes) else ",".join(i[c] for c in COLUMNS).encode() for i in items
    ]
    if trailer is not None:
        lines.append(f"#END,{len(items) if trailer == -1 else trailer}".encode())
    return b"\r\n".join(lines) + b"\r\n"


def xml_file(items: list[dict[str, str]], *, closed: bool = True, prolog: str = "") -> bytes:
    body = "".join(
        "<Row>" + "".join(f"<{c}>{i[c]}</{c}>" for c in COLUMNS) + "</Row>\n" for i in items
    )
    text = f'<?xml version="1.0" encoding="UTF-8"?>\n{prolog}<Export>\n{body}'
    if closed:
        text += f"<Rows>{len(items)}</Rows>\n</Export>\n"
    return text.encode()


def put(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def ids_of(batches: list[Batch]) -> list[str | None]:
    return [raw.source_id for batch in batches for raw in batch.records]


def sync(registry: Engine, folder: Path, **options: Any) -> SyncResult:
    return sync_source(registry, drop(folder, **options))


def count(engine: Engine, table: Any, *where: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def saved_cursor(engine: Engine) -> Cursor:
    with engine.connect() as conn:
        return dict(conn.execute(select(sync_state.c.cursor)).scalar_one())


def quarantined(engine: Engine) -> dict[str, tuple[str, dict[str, Any]]]:
    """Unresolved quarantine entries: id -> (reason, payload)."""
    with engine.connect() as conn:
        found = conn.execute(
            select(quarantine.c.source_id, quarantine.c.reason, quarantine.c.payload).where(
                quarantine.c.resolved.is_(False)
            )
        ).all()
    return {r.source_id: (r.reason, r.payload) for r in found}


# -- configuration --------------------------------------------------------------------------
def test_missing_folder_is_fatal_and_names_the_source_and_the_setting(tmp_path: Path) -> None:
    source = drop(tmp_path / "not-mounted")
    for call in (source.check, lambda: list(source.read(None)), lambda: source.count(None)):
        with pytest.raises(FatalSourceError) as failed:
            call()
        message = str(failed.value)
        assert "'drops'" in message and "'folder'" in message and "does not exist" in message
    put(tmp_path, "a-file", b"")
    with pytest.raises(FatalSourceError, match="is not a folder"):
        drop(tmp_path / "a-file").check()


def test_a_cursor_that_is_no_manifest_is_refused_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(FatalSourceError, match="--full-refresh") as refused:
        list(drop(tmp_path).read({"updated_at": "2026-01-01T00:00:00", "key": 4}))
    message = str(refused.value)
    assert "'drops'" in message and "not a file-drop manifest (version 1)" in message
    assert "found a cursor with the fields key, updated_at" in message
    newer = {"manifest": 2, "done": {}, "current": None}
    with pytest.raises(FatalSourceError, match=r"found a file-drop manifest \(version 2\)"):
        list(drop(tmp_path).read(newer))


# -- reading --------------------------------------------------------------------------------
def test_batches_stay_within_the_batch_size_and_a_saved_cursor_resumes_mid_file(
    tmp_path: Path,
) -> None:
    put(tmp_path, "b_20260304.xml", xml_file(rows(30, day=4)))
    put(tmp_path, "a_20260303.csv", csv_file(rows(95, day=3)))
    put(tmp_path, "notes.txt", b"not an export")
    put(tmp_path, ".a_20260305.csv.tmp", csv_file(rows(5, day=5)))
    batches = list(drop(tmp_path, batch_size=20).read(None))
    assert all(len(batch.records) <= 20 for batch in batches)
    everything = ids_of(batches)
    # Name order (day order), every record once, nothing from other files.
    assert everything == [r["Ma"] for r in rows(95, day=3) + rows(30, day=4)]

    saved = json.loads(json.dumps(batches[2].cursor))  # as the registry keeps it
    assert saved["current"]["name"] == "a_20260303.csv" and saved["current"]["row"] == 60
    assert saved["done"] == {}
    rest = ids_of(list(drop(tmp_path, batch_size=20).read(saved)))
    assert rest == everything[60:]
    final = batches[-1].cursor
    assert final is not None and final["current"] is None
    assert sorted(e["name"] for e in final["done"].values()) == ["a_20260303.csv", "b_20260304.xml"]
    assert list(drop(tmp_path).read(final)) == []


def test_check_reports_the_export_files(tmp_path: Path) -> None:
    put(tmp_path, "a.csv", csv_file(rows(1)))
    put(tmp_path, "b.XML", xml_file(rows(1)))
    put(tmp_path, "c.txt", b"")
    health = drop(tmp_path).check()
    assert health.ok and "2 export files" in health.detail


class CsvOnlyDrop(Drop):
    """A system that exports CSV alone: its folder also holds XML reports that are no exports."""

    formats = (CsvExport,)


def test_a_connector_reads_only_the_formats_it_declares(tmp_path: Path) -> None:
    put(tmp_path, "d_20260303.csv", csv_file(rows(2)))
    put(tmp_path, "report.xml", b"<Report>not an export</Report>")
    source = CsvOnlyDrop(drop(tmp_path).context)
    assert "1 export files" in source.check().detail
    assert len(ids_of(list(source.read(None)))) == 2  # the XML is neither read nor reported
    assert source.count(None) == 2
    assert len(ids_of(list(drop(tmp_path).read(None)))) == 3  # both formats: the XML is refused


def test_file_changing_while_it_is_copied_is_left_for_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = put(tmp_path, "a.csv", csv_file(rows(3)))
    real_fstat = os.fstat
    looks: list[int] = []

    def writer_touches_the_file(fd: int) -> os.stat_result:
        # An exporter writing in place, between the copy's first look and its last.
        found = real_fstat(fd)
        looks.append(fd)
        if len(looks) == 1:
            os.utime(path, ns=(found.st_atime_ns, found.st_mtime_ns + 1_000_000))
        return found

    monkeypatch.setattr(os, "fstat", writer_touches_the_file)
    assert list(drop(tmp_path).read(None)) == []
    monkeypatch.undo()
    assert len(ids_of(list(drop(tmp_path).read(None)))) == 3


def test_count_uses_the_receipt_dates_and_counts_a_copy_once(tmp_path: Path) -> None:
    put(tmp_path, "a.csv", csv_file(rows(7, day=3)))
    put(tmp_path, "a_again.csv", csv_file(rows(7, day=3)))
    put(tmp_path, "b.xml", xml_file([row(1, day=31)]))
    put(tmp_path, "c.csv", csv_file(rows(2, day=4), trailer=None))  # unfinished: not counted
    source = drop(tmp_path)
    assert source.count(None) == 8
    assert source.count(Period.parse("2026-03")) == 8
    assert source.count(Period.parse("2026-04")) == 0


# -- syncing --------------------------------------------------------------------------------
def test_full_sync_lands_every_row_and_a_second_run_reads_no_file_again(
    registry: Engine, tmp_path: Path
) -> None:
    put(tmp_path, "d_20260303.csv", csv_file(rows(40, day=3)))
    put(tmp_path, "d_20260304.xml", xml_file(rows(25, day=4)))
    first = sync(registry, tmp_path, batch_size=30)
    assert (first.rows_read, first.inserted, first.quarantined) == (65, 65, 0)
    assert count(registry, dossier) == 65
    cursor = saved_cursor(registry)
    assert cursor["current"] is None and len(cursor["done"]) == 2

    again = sync(registry, tmp_path)
    assert (again.rows_read, again.inserted, again.updated, again.batches) == (0, 0, 0, 0)


def test_redelivered_copy_under_another_name_loads_nothing(
    registry: Engine, tmp_path: Path
) -> None:
    original = put(tmp_path, "d_20260303.csv", csv_file(rows(12)))
    sync(registry, tmp_path)
    with registry.connect() as conn:
        before = store.digest(conn)
    put(tmp_path, "d_20260303_resent.csv", original.read_bytes())
    put(tmp_path, "copy of d_20260303.csv", original.read_bytes())
    result = sync(registry, tmp_path)
    assert (result.rows_read, result.inserted, result.updated, result.quarantined) == (0, 0, 0, 0)
    with registry.connect() as conn:
        assert store.digest(conn) == before


def test_corrected_file_updates_exactly_the_rows_with_a_newer_version(
    registry: Engine, tmp_path: Path
) -> None:
    day = rows(4)
    put(tmp_path, "d_20260303.csv", csv_file(day))
    sync(registry, tmp_path)
    events_before = count(registry, dossier_event)

    corrected = [dict(r) for r in day]
    corrected[0].update(TrangThai="9", CapNhat="05/03/2026 10:00:00")  # resolved, newer version
    corrected[1].update(TrangThai="7")  # changed without a newer version: not a correction
    corrected.append(row(5))  # a dossier the first issue missed
    put(tmp_path, "d_20260303.csv", csv_file(corrected))
    result = sync(registry, tmp_path)
    assert (result.rows_read, result.inserted, result.updated, result.unchanged) == (5, 1, 1, 3)

    with registry.connect() as conn:
        status = dict(conn.execute(select(dossier.c.source_id, dossier.c.status)).all())
        events = conn.execute(
            select(
                dossier_event.c.source_id, dossier_event.c.status_from, dossier_event.c.status_to
            )
            .order_by(dossier_event.c.id)
            .offset(events_before)
        ).all()
    assert status[day[0]["Ma"]] == 9 and status[day[1]["Ma"]] == 4
    assert sorted(tuple(e) for e in events) == sorted(
        [(day[0]["Ma"], 4, 9), (row(5)["Ma"], None, 4)]
    )


def test_incomplete_files_are_left_for_the_next_run_and_loaded_once_complete(
    registry: Engine, tmp_path: Path
) -> None:
    put(tmp_path, "d_20260303.csv", csv_file(rows(3, day=3)))
    day4, day5 = rows(6, day=4), rows(4, day=5)
    full_csv, full_xml = csv_file(day4), xml_file(day5)
    put(tmp_path, "d_20260304.csv", csv_file(day4, trailer=None))  # no trailer yet
    put(tmp_path, "d_20260305.xml", xml_file(day5, closed=False))  # no end tag yet
    put(tmp_path, "d_20260306.csv", b"")  # just created
    first = sync(registry, tmp_path)
    assert (first.rows_read, first.inserted) == (3, 3)
    assert [e["name"] for e in saved_cursor(registry)["done"].values()] == ["d_20260303.csv"]
    assert quarantined(registry) == {}

    put(tmp_path, "d_20260304.csv", full_csv)
    put(tmp_path, "d_20260305.xml", full_xml)
    second = sync(registry, tmp_path)
    assert (second.rows_read, second.inserted, second.quarantined) == (10, 10, 0)
    assert count(registry, dossier) == 13


class CrashAfter(Drop):
    """Fails between two batches, as a killed worker would."""

    crash_at = 4

    def read(self, cursor: Cursor | None) -> Iterator[Batch]:
        for number, batch in enumerate(super().read(cursor)):
            if number == self.crash_at:
                raise ConnectionError("injected: worker killed")
            yield batch


def test_crash_mid_file_then_rerun_equals_one_clean_run(registry: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    for day in (3, 4, 5):
        items: list[dict[str, str] | bytes] = list(rows(25, day=day))
        items[day] = f'000.00.10.H56-2603{day:02d}-9999,"unclosed,x,y,z'.encode()  # a bad line
        put(folder, f"d_202603{day:02d}.csv", csv_file(items))
    clean = store.open_registry(f"sqlite:///{tmp_path / 'clean.db'}")
    migrate.upgrade(clean)
    sync(clean, folder, batch_size=10)

    with pytest.raises(ConnectionError, match="injected"):
        sync_source(registry, CrashAfter(drop(folder, batch_size=10).context))
    cursor = saved_cursor(registry)
    # Four batches of ten landed: the second file stands at its 15th record.
    assert cursor["current"] == {
        "name": "d_20260304.csv",
        "sha256": cursor["current"]["sha256"],
        "row": 15,
    }
    assert [e["name"] for e in cursor["done"].values()] == ["d_20260303.csv"]
    assert count(registry, dossier) + len(quarantined(registry)) == 40

    sync(registry, folder, batch_size=10)
    with registry.connect() as a, clean.connect() as b:
        assert store.digest(a) == store.digest(b)
        keys = select(quarantine.c.source_id, quarantine.c.reason).order_by(quarantine.c.source_id)
        assert a.execute(keys).all() == b.execute(keys).all()
    clean.dispose()


# -- bad input ------------------------------------------------------------------------------
def test_unreadable_lines_are_quarantined_alone_with_their_reasons(
    registry: Engine, tmp_path: Path
) -> None:
    good = rows(4)
    items: list[dict[str, str] | bytes] = [
        good[0],
        b'000.00.10.H56-260303-0101,"4,03/03/2026 08:00:00,03/03/2026 17:00:00,'
        + TAX_CODE.encode(),
        "000.00.10.H56-260303-0102,4,03/03/2026 08:00:00,Ng\xe0y,0101234567".encode("latin-1"),
        f"000.00.10.H56-260303-0103,4,4,03/03/2026 08:00:00,x,{TAX_CODE}".encode(),
        good[1],
        ",".join(row(104)[c] if c != "Ma" else "" for c in COLUMNS).encode(),  # no id
        b"",  # a blank line is no record
        good[2],
        good[3],
    ]
    put(tmp_path, "d_20260303.csv", csv_file(items, trailer=8))
    result = sync(registry, tmp_path)
    assert (result.rows_read, result.inserted, result.quarantined) == (8, 4, 4)
    found = quarantined(registry)
    assert {key: reason for key, (reason, _) in found.items()} == {
        "000.00.10.H56-260303-0101": "record:broken_csv",
        "000.00.10.H56-260303-0102": "record:invalid_encoding",
        "000.00.10.H56-260303-0103": "record:field_count",
        "d_20260303.csv#row6": "dossier_code:string_type",
    }
    assert "not UTF-8" in found["000.00.10.H56-260303-0102"][1][REJECTED]["message"]
    # The tax code never sits in clear in quarantine: masked in kept lines, hashed in fields.
    assert TAX_CODE not in json.dumps([payload for _, payload in found.values()])
    assert "<masked>" in found["000.00.10.H56-260303-0101"][1][TEXT]
    assert count(registry, dossier) + len(found) == 8


def no_id(n: int) -> bytes:
    """A line without its id: quarantined under its origin, `<file>#row<n>`."""
    return ",".join("" if c == "Ma" else row(n)[c] for c in COLUMNS).encode()


def test_a_corrected_reissue_settles_the_quarantine_of_the_content_it_replaces(
    registry: Engine, tmp_path: Path
) -> None:
    name = "d_20260303.csv"
    good = rows(6)
    put(tmp_path, name, csv_file([*good[:2], no_id(3), *good[3:]]))
    assert sync(registry, tmp_path).quarantined == 1
    assert list(quarantined(registry)) == [f"{name}#row3"]

    # Re-issued: row 3 has its id again, row 5 lost its own. Only what is still bad is held.
    put(tmp_path, name, csv_file([*good[:4], no_id(5), good[5]]))
    again = sync(registry, tmp_path)
    assert (again.inserted, again.quarantined) == (1, 1)
    assert list(quarantined(registry)) == [f"{name}#row5"]
    assert count(registry, dossier) == 6  # row 5's earlier version stays, as loaded
    # Entries of other files are not touched; nor is anything by a copy already loaded.
    put(tmp_path, "d_20260304.csv", csv_file([no_id(1), row(2, day=4)]))
    put(tmp_path, "copy.csv", csv_file([*good[:4], no_id(5), good[5]]))
    sync(registry, tmp_path)
    assert sorted(quarantined(registry)) == [f"{name}#row5", "d_20260304.csv#row1"]

    # Re-issued whole but broken, then right: its #file entry is settled in turn.
    put(tmp_path, name, csv_file(good, trailer=7))
    sync(registry, tmp_path)
    assert sorted(quarantined(registry)) == [f"{name}#file", "d_20260304.csv#row1"]
    put(tmp_path, name, csv_file(good))
    sync(registry, tmp_path)
    assert list(quarantined(registry)) == ["d_20260304.csv#row1"]


def test_a_reissue_resumed_after_a_crash_keeps_the_lines_it_held_before_the_crash(
    registry: Engine, tmp_path: Path
) -> None:
    name = "d_20260303.csv"
    lines: list[dict[str, str] | bytes] = [
        no_id(n) if n in (2, 18) else row(n) for n in range(1, 26)
    ]
    put(tmp_path, name, csv_file(lines))
    sync(registry, tmp_path, batch_size=10)
    assert sorted(quarantined(registry)) == [f"{name}#row18", f"{name}#row2"]
    # The re-issue fixes row 18 and keeps row 2 bad; the run dies after its first batch.
    lines[17] = row(18, updated="03/03/2026 18:00:00")
    put(tmp_path, name, csv_file(lines))
    crash = CrashAfter(drop(tmp_path, batch_size=10).context)
    crash.crash_at = 1
    with pytest.raises(ConnectionError, match="injected"):
        sync_source(registry, crash)
    assert saved_cursor(registry)["current"]["row"] == 10
    sync(registry, tmp_path, batch_size=10)  # resumes at row 11: settles nothing again
    assert list(quarantined(registry)) == [f"{name}#row2"]
    assert count(registry, dossier) == 24


def test_xml_declaring_entities_is_refused_whole_without_expanding_them(
    registry: Engine, tmp_path: Path
) -> None:
    laughs = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10 if i else "lol"}">' for i in range(10))
    bomb = row(1, day=4) | {"Ma": "&l9;"}
    put(tmp_path, "d_20260304.xml", xml_file([bomb], prolog=f"<!DOCTYPE Export [{laughs}]>\n"))
    secret = tmp_path / "secret.txt"
    secret.write_text("do-not-read")
    external = row(1, day=5) | {"Ma": "&xxe;"}
    prolog = f'<!DOCTYPE Export [<!ENTITY xxe SYSTEM "file://{secret}">]>\n'
    put(tmp_path, "d_20260305.xml", xml_file([external], prolog=prolog))
    put(tmp_path, "d_20260306.xml", xml_file(rows(2, day=6)))

    result = sync(registry, tmp_path)
    assert (result.inserted, result.quarantined) == (2, 2)
    found = quarantined(registry)
    assert {key: reason for key, (reason, _) in found.items()} == {
        "d_20260304.xml#file": "file:doctype_refused",
        "d_20260305.xml#file": "file:doctype_refused",
    }
    assert "do-not-read" not in json.dumps([payload for _, payload in found.values()])
    # Refused contents are done with: the next run does not report them again.
    assert sync(registry, tmp_path).quarantined == 0


@pytest.mark.parametrize(
    ("name", "content", "reason", "says"),
    [
        (
            "d.xml",
            xml_file([row(1) | {"Ma": "A & B"}, row(2)]),
            "file:malformed_xml",
            "not well-formed (invalid token) at line 3",
        ),
        (
            "d.xml",
            xml_file(rows(2)).replace(b"<Rows>2</Rows>", b"<Rows>3</Rows>"),
            "file:row_count_mismatch",
            "declares 3 records but the file holds 2",
        ),
        (
            "d.csv",
            csv_file(rows(3), trailer=4),
            "file:row_count_mismatch",
            "declares 4 rows but the file holds 3",
        ),
        ("d.csv", csv_file(rows(2)).replace(b"CapNhat", b"Capnhat"), "file:bad_header", "CapNhat"),
        ("d.csv", csv_file(rows(2)).replace(b"Ma,", b"M\xe3,", 1), "file:bad_header", "UTF-8"),
    ],
)
def test_a_broken_file_is_reported_whole_and_nothing_of_it_loads(
    registry: Engine, tmp_path: Path, name: str, content: bytes, reason: str, says: str
) -> None:
    put(tmp_path, name, content)
    put(tmp_path, "e.csv", csv_file(rows(3, day=5)))
    result = sync(registry, tmp_path)
    assert (result.inserted, result.quarantined) == (3, 1)
    ((key, (found, payload)),) = quarantined(registry).items()
    assert (key, found) == (f"{name}#file", reason)
    assert says in payload[REJECTED]["message"] and name in payload[REJECTED]["message"]
    # Re-issued fixed, under the same name: it loads.
    fixed = xml_file(rows(2)) if name.endswith(".xml") else csv_file(rows(2))
    put(tmp_path, name, fixed)
    assert sync(registry, tmp_path).inserted == 2
    assert quarantined(registry) == {}  # the report of the broken content is settled


def test_a_link_is_reported_each_run_until_the_file_itself_is_there(
    registry: Engine, tmp_path: Path
) -> None:
    os.symlink(tmp_path / "gone.dat", tmp_path / "d_20260304.csv")  # points nowhere yet
    put(tmp_path, "d_20260303.csv", csv_file(rows(2)))
    first = sync(registry, tmp_path)
    assert (first.inserted, first.quarantined) == (2, 1)
    assert {k: reason for k, (reason, _) in quarantined(registry).items()} == {
        "d_20260304.csv#file": "file:symlink_refused"
    }
    put(tmp_path, "gone.dat", csv_file(rows(3, day=4)))  # now it points to an export: still no
    assert sync(registry, tmp_path).quarantined == 1  # not recorded as done
    assert count(registry, dossier) == 2

    (tmp_path / "d_20260304.csv").unlink()
    put(tmp_path, "d_20260304.csv", csv_file(rows(3, day=4)))
    assert sync(registry, tmp_path).inserted == 3
    assert quarantined(registry) == {}  # the file itself at last: the report is settled


class Vanishing(Drop):
    """The first export listed is deleted before it is opened (an operator cleaning up)."""

    def _listing(self) -> list[Any]:
        listed = super()._listing()
        listed[0].path.unlink(missing_ok=True)
        return listed


def test_unreadable_file_is_reported_and_tried_again_next_run(
    registry: Engine, tmp_path: Path
) -> None:
    put(tmp_path, "d_20260303.csv", csv_file(rows(2)))
    put(tmp_path, "d_20260304.csv", csv_file(rows(3, day=4)))
    first = sync_source(registry, Vanishing(drop(tmp_path).context))
    assert (first.inserted, first.quarantined) == (3, 1)
    ((key, (reason, payload)),) = quarantined(registry).items()
    assert (key, reason) == ("d_20260303.csv#file", "file:unreadable")
    assert "cannot be read" in payload[REJECTED]["message"]
    put(tmp_path, "d_20260303.csv", csv_file(rows(2)))  # back: not recorded as done, so read
    assert sync(registry, tmp_path).inserted == 2
    assert quarantined(registry) == {}


def test_links_are_never_followed_wherever_they_point(registry: Engine, tmp_path: Path) -> None:
    folder, outside = tmp_path / "drop", tmp_path / "elsewhere"
    folder.mkdir()
    outside.mkdir()
    elsewhere = put(outside, "other.csv", csv_file(rows(4, day=9)))  # an export, not this one's
    os.symlink(elsewhere, folder / "d_20260303.csv")
    os.symlink("../elsewhere/other.csv", folder / "d_20260304.csv")  # relative, still outside
    put(folder, "real.csv", csv_file(rows(2, day=5)))
    os.symlink(folder / "real.csv", folder / "d_20260305.csv")  # inside: still a link
    os.symlink(folder, folder / "d_20260306.csv")  # the folder itself
    result = sync(registry, folder)
    assert (result.inserted, result.quarantined) == (2, 4)
    assert {k: reason for k, (reason, _) in quarantined(registry).items()} == {
        "d_20260303.csv#file": "file:link_outside_folder",
        "d_20260304.csv#file": "file:link_outside_folder",
        "d_20260305.csv#file": "file:symlink_refused",
        "d_20260306.csv#file": "file:link_outside_folder",
    }
    with registry.connect() as conn:
        loaded = set(conn.execute(select(dossier.c.source_id)).scalars())
    assert loaded == {r["Ma"] for r in rows(2, day=5)}
    assert drop(folder).count(None) == 2
    message = quarantined(registry)["d_20260303.csv#file"][1][REJECTED]["message"]
    assert "outside the drop folder" in message and str(outside) not in message


class SwappedForALink(Drop):
    """An export is replaced by a link to a file elsewhere between the listing and the open."""

    target: ClassVar[Path]

    def _listing(self) -> list[Any]:
        listed = super()._listing()
        for entry in listed:
            entry.path.unlink()
            os.symlink(self.target, entry.path)
        return listed


def test_a_file_swapped_for_a_link_after_the_listing_is_not_followed(
    registry: Engine, tmp_path: Path
) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    SwappedForALink.target = put(tmp_path, "other.csv", csv_file(rows(4, day=9)))
    put(folder, "d_20260303.csv", csv_file(rows(2)))
    result = sync_source(registry, SwappedForALink(drop(folder).context))
    assert (result.inserted, result.quarantined) == (0, 1)
    assert {k: reason for k, (reason, _) in quarantined(registry).items()} == {
        "d_20260303.csv#file": "file:link_outside_folder"
    }


def test_a_file_name_that_is_not_utf8_is_reported_unread(registry: Engine, tmp_path: Path) -> None:
    odd = os.path.join(os.fsencode(tmp_path), b"d_2026\xe9_03.csv")
    with open(odd, "wb") as out:
        out.write(csv_file(rows(2)))
    put(tmp_path, "d_20260304.csv", csv_file(rows(3, day=4)))
    result = sync(registry, tmp_path)
    assert result.status == "succeeded"
    assert (result.inserted, result.quarantined) == (3, 1)
    ((key, (reason, payload)),) = quarantined(registry).items()
    assert reason == "file:bad_file_name" and "~" in key and len(key) <= 128
    assert payload[files.ORIGIN] == "d_2026\\xe9_03.csv"
    assert "not UTF-8" in payload[REJECTED]["message"]
    assert drop(tmp_path).count(None) == 3


def test_long_or_odd_file_names_keep_every_bad_line_apart_and_settle_only_their_own_file(
    registry: Engine, tmp_path: Path
) -> None:
    long_a = "d_20260303_" + "x" * 150 + ".csv"  # keys once cut at 128 characters collided
    long_b = "d_20260303_" + "x" * 150 + "_b.csv"  # shares its first 160 characters with long_a
    plain, tricky = "X.csv", "X.csv#2.csv"  # a prefix of the other's keys, once
    put(tmp_path, long_a, csv_file([no_id(1), row(2), no_id(3)]))
    put(tmp_path, long_b, csv_file([no_id(1)]))
    put(tmp_path, plain, csv_file([no_id(1), row(2, day=4)]))
    put(tmp_path, tricky, csv_file([no_id(1), row(2, day=5)]))
    assert sync(registry, tmp_path).quarantined == 5
    found = quarantined(registry)
    assert len(found) == 5
    assert all(len(key) <= 128 for key in found)
    origins = sorted(payload[files.ORIGIN] for _, payload in found.values())
    assert origins == sorted(
        [f"{long_a}#row1", f"{long_a}#row3", f"{long_b}#row1", f"{plain}#row1", f"{tricky}#row1"]
    )

    # Re-issued fixed: each settles its own entries, and no other file's.
    put(tmp_path, plain, csv_file([row(1, day=4), row(2, day=4)]))
    put(tmp_path, long_a, csv_file([row(1), row(2), row(3)]))
    sync(registry, tmp_path)
    left = sorted(payload[files.ORIGIN] for _, payload in quarantined(registry).values())
    assert left == sorted([f"{long_b}#row1", f"{tricky}#row1"])


class CsvFailingOnRow3(CsvExport):
    """Reading row 3 of any file fails in a way no rule foresaw (a bug, not bad data)."""

    def _record(
        self, name: str, number: int, header: tuple[str, ...], line: bytes | None
    ) -> RawRecord:
        if number == 3:
            raise RuntimeError("unforeseen")
        return super()._record(name, number, header, line)


class FailsOnRow3(Drop):
    formats = (CsvFailingOnRow3, XmlExport)


def test_a_file_failing_midway_is_set_aside_and_the_sync_goes_on(
    registry: Engine, tmp_path: Path
) -> None:
    put(tmp_path, "d_20260303.csv", csv_file(rows(5)))
    put(tmp_path, "d_20260304.csv", csv_file(rows(2, day=4)))
    source = FailsOnRow3(drop(tmp_path, batch_size=2).context)
    result = sync_source(registry, source)
    assert result.status == "succeeded"
    # The first two rows were read whole, and stay; the file is reported; the next one loads.
    assert (result.inserted, result.quarantined) == (4, 1)
    assert {k: reason for k, (reason, _) in quarantined(registry).items()} == {
        "d_20260303.csv#file": "file:unreadable_content"
    }
    assert source.count(None) == 2
    assert sync_source(registry, source).rows_read == 0  # set aside: not read again
