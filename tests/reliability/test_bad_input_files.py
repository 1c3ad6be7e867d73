"""Bad input through the file transport (the Finance connector): tables of malformed rows and
lines in real CSV and XML exports, each quarantined with its specific reason — or loaded clean —
while the good rows of the same file load; a table of malformed files, each refused, held or
ignored with a clear reason; and property-based tests of the mapping and of arbitrary bytes in
an export file. Nothing here is mocked: files in a folder, the real connector, the real engine.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import os
import random
import re
import tempfile
import unicodedata
import zipfile
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple
from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlalchemy import Engine, String, cast, select

from connectors.base import ConnectorContext, RawRecord
from connectors.files import ORIGIN, REJECTED
from connectors.finance import FinanceConnector
from connectors.identifiers import IdentifierHasher
from dossierhub.errors import RecordRejected
from dossierhub.sync import SyncResult, sync_source
from models.dossier import DossierRecord
from models.tables import dossier, dossier_event, quarantine, sync_state
from simulators import finance

HASHER = IdentifierHasher(SecretStr("bad-files-test-key-" + "b" * 32))
COLUMNS = FinanceConnector.columns
TAX_CODE = "4201234567"
BOM = b"\xef\xbb\xbf"
DAY = "HoSo_TaiChinh_20260105"  # the export name of the day every case file stands for
ID = "000.00.10.H56-260105-{:04d}"
SECRET = "do-not-read-this-file"

# A row as Finance exports it; None is a value the export leaves empty (XML: leaves out).
GOOD: dict[str, str | None] = {
    "SoHoSo": ID.format(1),
    "MaHoSoQuocGia": None,
    "MaThuTuc": "1.005432",
    "TenThuTuc": "Đăng ký giá",
    "LinhVuc": "Quản lý giá",
    "DonViXuLy": "000.00.10.H56",
    "DonViTiepNhan": "000.00.10.H56",
    "MaDiaBan": "56",
    "NgayNop": "05/01/2026 07:50:00",
    "NgayNhan": "05/01/2026 08:00:00",
    "HanXuLy": "12/01/2026",
    "NgayHoanThanh": None,
    "NgayTraKetQua": None,
    "HinhThucNop": "Trực tuyến",
    "MucDo": "4",
    "TrangThai": "Đang xử lý",
    "LoaiDoiTuong": "2",
    "MaSoThue": TAX_CODE,
    "PhiLePhi": "45.000",
    "ThanhToanTrucTuyen": "Có",
    "SoGiayTo": "3",
    "SoGiayToSoHoa": "2",
    "KetQuaDienTu": "Không",
    "NgayCapNhat": "06/01/2026 09:00:00",
}
NAME = "Đăng ký giá"
NFD = unicodedata.normalize("NFD", NAME)
TCVN3 = "§¨ng ký gi¸"  # TCVN3 (ABC) bytes shown as Latin-1
VNI = "Ñaêng kyù giaù"  # VNI-Windows bytes shown as Latin-1
AS_CP1252 = NAME.encode().decode("cp1252", errors="replace")  # UTF-8 read as Windows-1252
AS_LATIN1 = NAME.encode().decode("latin-1")  # UTF-8 read as Latin-1: C1 controls
BIG = "Đăng ký " * 1300  # 10 kB
MEGA = "x" * 1_000_000  # a 1 MB value: under the CSV line cap, over the XML value cap
OVER_LINE = "x" * (1 << 20)  # a CSV line over 1 MiB

SAME = "same in XML"
NOT_XML = "XML cannot carry the value: the whole file is refused (see FILES)"


class Row(NamedTuple):
    """A row-level case: values changed in a good row and the first quarantine reason
    ("field:code") the row must get in a CSV export, and in an XML export; None: it loads."""

    name: str
    change: dict[str, str | None]
    reason: str | None
    xml: str | None = SAME


# An empty value ("") is an empty CSV field and an empty XML element.
ROWS: list[Row] = [
    # text where a time or a number belongs
    Row("received as words", {"NgayNhan": "hôm qua"}, "received_at:invalid_date"),
    Row("received in ISO form", {"NgayNhan": "2026-01-05 08:00:00"}, "received_at:invalid_date"),
    Row("received on 31 February", {"NgayNhan": "31/02/2026 08:00:00"}, "received_at:invalid_date"),
    Row("due date as words", {"HanXuLy": "sau Tết"}, "due_at:invalid_date"),
    Row("version as words", {"NgayCapNhat": "yesterday"}, "source_updated_at:invalid_date"),
    Row("documents in words", {"SoGiayTo": "ba"}, "docs_submitted:invalid_number"),
    Row("documents as a superscript", {"SoGiayTo": "²"}, "docs_submitted:invalid_number"),
    Row("documents negative", {"SoGiayToSoHoa": "-1"}, "docs_digitised:invalid_number"),
    Row("fee in words", {"PhiLePhi": "năm mươi nghìn"}, "has_fee:invalid_number"),
    Row("fee in Arabic-Indic digits", {"PhiLePhi": "٤٥٠٠٠"}, "has_fee:invalid_number"),
    Row("applicant type in words", {"LoaiDoiTuong": "hai"}, "applicant_type:unknown_code"),
    Row("service level in words", {"MucDo": "bốn"}, "service_level:unknown_code"),
    # digits int() and strptime take, yet no export writes: only ASCII digits are numbers
    Row("applicant type in Arabic-Indic digits", {"LoaiDoiTuong": "٢"}, "applicant_type:unknown_code"),
    Row("applicant type in full-width digits", {"LoaiDoiTuong": "２"}, "applicant_type:unknown_code"),
    Row("applicant type with an underscore", {"LoaiDoiTuong": "0_2"}, "applicant_type:unknown_code"),
    Row("received in Arabic-Indic digits", {"NgayNhan": "05/01/٢٠٢٦ 08:00:00"}, "received_at:invalid_date"),
    Row("version in full-width digits", {"NgayCapNhat": "０６/01/2026 09:00:00"}, "source_updated_at:invalid_date"),
    # missing and empty values
    Row("receipt code empty", {"SoHoSo": ""}, "dossier_code:missing"),
    Row("received empty", {"NgayNhan": ""}, "received_at:missing"),
    Row("version empty", {"NgayCapNhat": ""}, "source_updated_at:missing"),
    Row("procedure code empty", {"MaThuTuc": ""}, "procedure_code:missing"),
    Row("agency empty", {"DonViXuLy": ""}, "agency_code:missing"),
    Row("status empty", {"TrangThai": ""}, "status:missing"),
    Row("channel empty", {"HinhThucNop": ""}, "channel:missing"),
    Row("status only spaces", {"TrangThai": "   "}, "status:unknown_code"),
    # times out of range, and out of order
    Row(
        "received in 1900",
        {"NgayNhan": "01/01/1900 08:00:00", "NgayNop": None},
        "received_at:out_of_range",
    ),
    Row("received in 2099", {"NgayNhan": "01/01/2099 08:00:00"}, "received_at:out_of_range"),
    Row("received in year 1", {"NgayNhan": "01/01/0001 00:00:00"}, "received_at:out_of_range"),
    Row("submitted in 1900", {"NgayNop": "01/01/1900 00:00:00"}, "submitted_at:out_of_range"),
    Row(
        "finished in 2099",
        {"NgayHoanThanh": "01/01/2099 10:00:00", "TrangThai": "Đã giải quyết"},
        "finished_at:out_of_range",
    ),
    Row("version in 2099", {"NgayCapNhat": "01/01/2099 00:00:00"}, "source_updated_at:out_of_range"),
    Row("due before received", {"HanXuLy": "04/01/2026"}, "due_at:inconsistent"),
    Row(
        "finished before received",
        {"NgayHoanThanh": "04/01/2026 10:00:00", "TrangThai": "Đã giải quyết"},
        "finished_at:inconsistent",
    ),
    Row(
        "returned before received",
        {"NgayTraKetQua": "04/01/2026 10:00:00", "TrangThai": "Đã trả kết quả"},
        "returned_at:inconsistent",
    ),
    Row("more digitised than submitted", {"SoGiayToSoHoa": "9"}, "docs_digitised:inconsistent"),
    # text in the wrong encoding, control characters
    Row("name legacy TCVN3", {"TenThuTuc": TCVN3}, "procedure_name:invalid_text"),
    Row("name legacy VNI", {"TenThuTuc": VNI}, "procedure_name:invalid_text"),
    Row("name UTF-8 read as Windows-1252", {"TenThuTuc": AS_CP1252}, "procedure_name:invalid_text"),
    Row("name UTF-8 read as Latin-1", {"TenThuTuc": AS_LATIN1}, "procedure_name:invalid_text"),
    Row(
        "status UTF-8 read as Windows-1252",
        {"TrangThai": "Đang xử lý".encode().decode("cp1252", errors="replace")},
        "status:unknown_code",
    ),
    Row("name with U+FFFD", {"TenThuTuc": "Đăng k\ufffd giá"}, "procedure_name:invalid_text"),
    Row("name with NUL", {"TenThuTuc": "Đăng\x00ký"}, "procedure_name:invalid_text", NOT_XML),
    Row("sector with a bell", {"LinhVuc": "Quản lý\x07giá"}, "sector:invalid_text", NOT_XML),
    Row("procedure code with NUL", {"MaThuTuc": "1.00\x005432"}, "procedure_code:invalid_format", NOT_XML),
    Row("receipt code with NUL", {"SoHoSo": "000.00.10.H56\x00-2"}, "dossier_code:invalid_format", NOT_XML),
    # huge values
    Row("name of 10 kB", {"TenThuTuc": BIG}, "procedure_name:string_too_long"),
    Row("sector of 10 kB", {"LinhVuc": BIG}, "sector:string_too_long"),
    Row("receipt code of 10 kB", {"SoHoSo": "A" * 10_000}, "dossier_code:invalid_format"),
    Row("procedure code of 10 kB", {"MaThuTuc": "1." + "0" * 10_000}, "procedure_code:string_too_long"),
    Row("name of 1 MB", {"TenThuTuc": MEGA}, "procedure_name:string_too_long", "record:value_too_long"),
    Row("line over 1 MiB", {"TenThuTuc": OVER_LINE}, "record:line_too_long", "record:value_too_long"),
    # codes Finance does not have, malformed codes
    Row("unknown status word", {"TrangThai": "Đang thẩm định lại"}, "status:unknown_code"),
    Row("status as a national code", {"TrangThai": "4"}, "status:unknown_code"),
    Row("unknown channel", {"HinhThucNop": "Fax"}, "channel:unknown_code"),
    Row("unknown yes/no", {"KetQuaDienTu": "Chắc có"}, "result_digitised:unknown_code"),
    Row("unknown paid online", {"ThanhToanTrucTuyen": "x"}, "paid_online:unknown_code"),
    Row("procedure code with letter O", {"MaThuTuc": "1.00543O"}, "procedure_code:invalid_format"),
    Row("agency short form", {"DonViXuLy": "H56"}, "agency_code:invalid_format"),
    Row("locality of four digits", {"MaDiaBan": "5612"}, "locality_code:invalid_format"),
    Row("district after the reform", {"MaDiaBan": "568"}, "admin_level:inconsistent"),
    Row("receipt code with spaces", {"SoHoSo": "000.00.10.H56 260105 0002"}, "dossier_code:invalid_format"),
    Row("tax code of nine digits", {"MaSoThue": "420123456"}, "applicant_key:invalid_format"),
    Row("tax code with letter O", {"MaSoThue": "42O1234567"}, "applicant_key:invalid_format"),
    Row("tax code in Arabic-Indic digits", {"MaSoThue": "٤٢٠١٢٣٤٥٦٧"}, "applicant_key:invalid_format"),
    Row("branch tax code cut short", {"MaSoThue": "4201234567-01"}, "applicant_key:invalid_format"),
    # odd but valid: these load, cleaned
    Row("name decomposed NFD", {"TenThuTuc": NFD}, None),
    Row("status decomposed in upper case", {"TrangThai": unicodedata.normalize("NFD", "ĐANG XỬ LÝ")}, None),
    Row("channel in upper case", {"HinhThucNop": "TRỰC TUYẾN"}, None),
    Row("values padded with spaces", {"NgayNhan": " 05/01/2026 08:00:00 ", "TenThuTuc": f" {NAME} "}, None),
    Row("branch tax code", {"MaSoThue": "4201234567-001"}, None),
    Row("localised procedure code", {"MaThuTuc": "1.005432.000.00.00.H56"}, None),
    Row("paid online without a fee", {"PhiLePhi": "0"}, None),
]  # fmt: skip


def csv_line(values: Mapping[str, str | None]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow([values.get(c) or "" for c in COLUMNS])
    return buffer.getvalue().encode()


def xml_record(values: Mapping[str, str | None]) -> bytes:
    inner = "".join(f"<{c}>{escape(v)}</{c}>" for c in COLUMNS if (v := values.get(c)) is not None)
    return f"<HoSo>{inner}</HoSo>".encode()


def good(number: int) -> dict[str, str | None]:
    return {**GOOD, "SoHoSo": ID.format(number)}


BAD = good(2)
LINE = csv_line(BAD)
RECORD = xml_record(BAD)

# CSV lines broken as lines, not in one value: (case, line, first reason).
LINES: list[tuple[str, bytes, str | None]] = [
    ("too many columns", LINE + b",thua", "record:field_count"),
    ("too few columns", LINE.rsplit(b",", 1)[0], "record:field_count"),
    ("separator unquoted in a value", LINE.replace(NAME.encode(), "Đăng ký, giá".encode()), "record:field_count"),
    ("quote left open", LINE.replace(NAME.encode(), f'"{NAME}'.encode()), "record:broken_csv"),
    ("text after a closing quote", LINE.replace(NAME.encode(), '"Đăng ký" giá'.encode()), "record:broken_csv"),
    ("carriage return in a value", LINE.replace(NAME.encode(), "Đăng\rký".encode()), "record:broken_csv"),
    ("Windows-1258 bytes", LINE.replace(NAME.encode(), "Đăng giá".encode("cp1258")), "record:invalid_encoding"),
    ("a Latin-1 byte", LINE.replace(NAME.encode(), "Giá".encode("latin-1")), "record:invalid_encoding"),
    ("a stray continuation byte", LINE.replace(b"1.005432", b"1.005432\x80"), "record:invalid_encoding"),
    ("only separators", b"," * (len(COLUMNS) - 1), "dossier_code:missing"),
]  # fmt: skip

# XML records of an unusual shape: (case, record, first reason; None: it loads).
RECORDS: list[tuple[str, bytes, str | None]] = [
    ("received left out", xml_record(BAD | {"NgayNhan": None}), "received_at:missing"),
    ("receipt code left out", xml_record(BAD | {"SoHoSo": None}), "dossier_code:missing"),
    ("empty record", b"<HoSo/>", "dossier_code:missing"),
    ("element repeated", RECORD.replace(b"<HoSo>", b"<HoSo><NgayNhan>01/01/2026 08:00:00</NgayNhan>"), "record:repeated_element"),
    ("element inside a value", RECORD.replace(NAME.encode(), "Đăng <b>ký</b> giá".encode()), "record:nested_element"),
    ("unknown element", RECORD.replace(b"</HoSo>", "<GhiChu>gọi lại</GhiChu></HoSo>".encode()), None),
    ("CDATA and character references", RECORD.replace(NAME.encode(), b"<![CDATA[\xc4\x90\xc4\x83ng]]> k&#253; gi&#xE1;"), None),
    ("attributes on values", RECORD.replace(b"<NgayNhan>", b'<NgayNhan kieu="gio">'), None),
    ("record over 1 MiB", RECORD.replace(b"</HoSo>", b"".join(b"<X%d>%s</X%d>" % (i, b"x" * 99_000, i) for i in range(12)) + b"</HoSo>"), "record:record_too_long"),
]  # fmt: skip


def csv_export(lines: Sequence[bytes], *, bom: bool = True, newline: bytes = b"\r\n") -> bytes:
    """A CSV export as the reference exporter writes it: BOM, CRLF, closed by its trailer."""
    head = (BOM if bom else b"") + ",".join(COLUMNS).encode()
    return newline.join([head, *lines, f"#KETTHUC,{len(lines)}".encode()]) + newline


def xml_export(records: Sequence[bytes], *, newline: bytes = b"\n") -> bytes:
    head = (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        + newline
        + b'<DanhSachHoSo NgayBaoCao="05/01/2026">'
    )
    tail = f"<TongSo>{len(records)}</TongSo>".encode() + newline + b"</DanhSachHoSo>"
    return newline.join([head, *records, tail]) + newline


def export(kind: str, middle: bytes) -> bytes:
    """A day's export of three rows: a good one, the case's, and another good one."""
    if kind == "csv":
        return csv_export([csv_line(good(1)), middle, csv_line(good(3))])
    return xml_export([xml_record(good(1)), middle, xml_record(good(3))])


def row_cases() -> list[Any]:
    """(kind, the case's row as written, expected reason) for every row-level case."""
    cases = []
    for row in ROWS:
        values = BAD | row.change
        cases.append(pytest.param("csv", csv_line(values), row.reason, id=f"csv-{row.name}"))
        if row.xml != NOT_XML:
            reason = row.reason if row.xml == SAME else row.xml
            cases.append(pytest.param("xml", xml_record(values), reason, id=f"xml-{row.name}"))
    cases += [pytest.param("csv", line, reason, id=f"csv-{name}") for name, line, reason in LINES]
    cases += [pytest.param("xml", rec, reason, id=f"xml-{name}") for name, rec, reason in RECORDS]
    return cases


# -- the engine -----------------------------------------------------------------------------
def connector(folder: Path, *, source: str = "finance", batch_size: int = 100) -> FinanceConnector:
    context = ConnectorContext(
        source=source, settings={"folder": str(folder)}, hasher=HASHER, batch_size=batch_size
    )
    return FinanceConnector(context)


def sync(engine: Engine, folder: Path, **options: Any) -> SyncResult:
    return sync_source(engine, connector(folder, **options))


def loaded(engine: Engine, source: str = "finance") -> dict[str, Any]:
    with engine.connect() as conn:
        rows = conn.execute(select(dossier).where(dossier.c.source_system == source)).all()
    return {r.source_id: r for r in rows}


def quarantined(engine: Engine, source: str = "finance") -> dict[str, Any]:
    """Unresolved quarantine entries by id."""
    q = quarantine.c
    query = select(quarantine).where(q.source_system == source, q.resolved.is_(False))
    with engine.connect() as conn:
        return {r.source_id: r for r in conn.execute(query).all()}


def by_origin(engine: Engine, source: str = "finance") -> dict[str, Any]:
    return {entry.payload[ORIGIN]: entry for entry in quarantined(engine, source).values()}


def done_files(engine: Engine, source: str = "finance") -> set[str]:
    query = select(sync_state.c.cursor).where(sync_state.c.source_system == source)
    with engine.connect() as conn:
        cursor = conn.execute(query).scalar_one_or_none()
    return {entry["name"] for entry in cursor["done"].values()} if cursor else set()


def everything_stored(engine: Engine) -> str:
    """Every value of the registry's dossiers and quarantine, as one text."""
    with engine.connect() as conn:
        return " ".join(
            str(value)
            for table in (dossier, quarantine)
            for row in conn.execute(select(*(cast(c, String) for c in table.c)))
            for value in row
        )


def assert_clean_text(record: Any) -> None:
    for value in record._mapping.values():
        if isinstance(value, str):
            assert unicodedata.is_normalized("NFC", value), value
            assert value == value.strip() and not re.search(r"[\x00-\x1f\x7f-\x9f]", value)


# -- rows -----------------------------------------------------------------------------------
def test_the_corpus_is_big_enough() -> None:
    malformed_rows = [c for c in ROWS if c.reason] + [c for c in LINES + RECORDS if c[2]]
    assert len(malformed_rows) >= 30
    assert len({c.reason for c in ROWS} | {c[2] for c in LINES + RECORDS}) >= 30  # not one reason
    assert len([f for f in FILES if f.outcome != LOADS]) >= 30


@pytest.mark.parametrize(("kind", "middle", "expected"), row_cases())
def test_each_malformed_row_gets_its_specific_reason_and_its_neighbours_load(
    sqlite_registry: Engine, tmp_path: Path, kind: str, middle: bytes, expected: str | None
) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    name = f"{DAY}.{kind}"
    (folder / name).write_bytes(export(kind, middle))
    result = sync(sqlite_registry, folder)
    assert result.rows_read == 3
    found, held = loaded(sqlite_registry), by_origin(sqlite_registry)
    assert {ID.format(1), ID.format(3)} <= found.keys()
    if expected is None:
        assert (result.inserted, held) == (3, {})
        assert_clean_text(found[ID.format(2)])
        return
    assert (result.inserted, result.quarantined, list(held)) == (2, 1, [f"{name}#row2"])
    entry = held[f"{name}#row2"]
    assert entry.reason == expected, entry.reasons
    assert all(r["message"] and r["code"] != "mapping_error" for r in entry.reasons)
    assert TAX_CODE not in json.dumps(entry.payload)


def test_the_whole_corpus_through_the_engine_lands_or_quarantines_every_row(
    registry: Engine, tmp_path: Path
) -> None:
    # Every case in one CSV and one XML export, each row under a receipt code of its own.
    ids = itertools.count(10)

    def own(data: bytes) -> bytes:
        return data.replace(ID.format(2).encode(), ID.format(next(ids)).encode())

    in_csv = [(csv_line(BAD | r.change), r.reason) for r in ROWS]
    in_csv += [(line, reason) for _, line, reason in LINES]
    in_xml = [
        (xml_record(BAD | r.change), r.reason if r.xml == SAME else r.xml)
        for r in ROWS
        if r.xml != NOT_XML
    ]
    in_xml += [(record, reason) for _, record, reason in RECORDS]
    files = {f"{DAY}.csv": in_csv, "HoSo_TaiChinh_20260107.xml": in_xml}
    drop = tmp_path / "drop"
    drop.mkdir()
    for name, cases in files.items():
        body = [own(data) for data, _ in cases]
        (drop / name).write_bytes(csv_export(body) if name.endswith(".csv") else xml_export(body))

    result = sync(registry, drop, batch_size=25)
    wanted = {
        f"{name}#row{n}": reason
        for name, cases in files.items()
        for n, (_, reason) in enumerate(cases, start=1)
    }
    rejected = {origin: reason for origin, reason in wanted.items() if reason is not None}
    assert result.rows_read == len(wanted)
    assert (result.inserted, result.quarantined) == (len(wanted) - len(rejected), len(rejected))
    assert {origin: entry.reason for origin, entry in by_origin(registry).items()} == rejected
    assert len(loaded(registry)) == len(wanted) - len(rejected)
    assert TAX_CODE not in everything_stored(registry)


# -- one receipt code on several rows of a file ---------------------------------------------
OLDER = {"TrangThai": "Đang xử lý", "NgayCapNhat": "06/01/2026 09:00:00"}
NEWER = {
    "TrangThai": "Đã giải quyết",
    "NgayHoanThanh": "07/01/2026 10:00:00",
    "NgayCapNhat": "07/01/2026 10:00:00",
}
TIED = NEWER | {"TrangThai": "Đã trả kết quả", "NgayTraKetQua": "07/01/2026 10:00:00"}


@pytest.mark.parametrize("batch_size", [1, 100])
@pytest.mark.parametrize("kind", ["csv", "xml"])
@pytest.mark.parametrize(
    ("first", "second", "status", "loser"),
    [
        (OLDER, NEWER, 9, 1),  # a later correction appended: the newer row wins
        (NEWER, OLDER, 9, 3),  # the newer row first: still the newer row
        (NEWER, TIED, 10, 1),  # the same NgayCapNhat: the later row of the file wins
    ],
    ids=["older-first", "newer-first", "tie"],
)
def test_a_receipt_code_repeated_in_one_file_loads_its_newest_row_exactly_once(
    sqlite_registry: Engine,
    tmp_path: Path,
    kind: str,
    batch_size: int,
    first: dict[str, str],
    second: dict[str, str],
    status: int,
    loser: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The rule depends on the file alone: the same outcome whatever the batch boundaries."""
    rows = [good(2) | first, good(3), good(2) | second]
    content = (
        csv_export([csv_line(r) for r in rows])
        if kind == "csv"
        else xml_export([xml_record(r) for r in rows])
    )
    name = f"{DAY}.{kind}"
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / name).write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="connectors.files"):
        result = sync(sqlite_registry, drop, batch_size=batch_size)
    assert (result.rows_read, result.inserted, result.updated, result.quarantined) == (2, 2, 0, 0)
    assert loaded(sqlite_registry)[ID.format(2)].status == status
    assert quarantined(sqlite_registry) == {}  # an older version, not bad data
    assert f"row {loser} of {name} repeats the SoHoSo of row {4 - loser}" in caplog.text
    with sqlite_registry.connect() as conn:
        events = conn.execute(
            select(dossier_event.c.status_from, dossier_event.c.status_to).where(
                dossier_event.c.source_id == ID.format(2)
            )
        ).all()
    assert [tuple(e) for e in events] == [(None, status)]  # it entered the registry once


def test_a_repeated_receipt_code_whose_newest_row_is_malformed_loads_neither_row(
    sqlite_registry: Engine, tmp_path: Path
) -> None:
    rows = [good(2), good(2) | NEWER | {"MaThuTuc": "1.00543O"}]
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / f"{DAY}.csv").write_bytes(csv_export([csv_line(r) for r in rows]))
    sync(sqlite_registry, drop)
    assert loaded(sqlite_registry) == {}
    assert {k: e.reason for k, e in quarantined(sqlite_registry).items()} == {
        ID.format(2): "procedure_code:invalid_format",
    }


# -- whole files ----------------------------------------------------------------------------
HELD, IGNORED, LOADS = "held for the next run", "never read", "loads"
Make = Callable[[Path, Path], None]  # (where the file goes, a secret file it must not read)


def written(data: bytes) -> Make:
    def make(path: Path, secret: Path) -> None:
        path.write_bytes(data.replace(b"@SECRET@", secret.as_uri().encode()))

    return make


def fifo(path: Path, _secret: Path) -> None:
    os.mkfifo(path)  # opening it to read would wait for a writer forever


def directory(path: Path, _secret: Path) -> None:
    path.mkdir()
    (path / "HoSo_TaiChinh_20260105.csv").write_bytes(TWO_ROWS)


class File(NamedTuple):
    """A file-level case: what lands in the drop folder, and what must become of it."""

    name: str
    file: str
    make: Make
    outcome: str  # "file:<code>" (refused: one quarantine entry), HELD, IGNORED or LOADS
    says: str = ""  # in the refusal's message, or in the log line of a held file
    rows: int = 0  # rows loaded (LOADS)


TWO_ROWS = csv_export([csv_line(good(1)), csv_line(good(2))])
TWO_RECORDS = xml_export([xml_record(good(1)), xml_record(good(2))])
CSV, XML = f"{DAY}.csv", f"{DAY}.xml"
LAUGHS = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10 if i else "lol"}">' for i in range(10))


def with_doctype(doctype: str, value: str = "") -> bytes:
    """The two-record export with a DOCTYPE, and `value` as a receipt code when given."""
    data = TWO_RECORDS.replace(b"<DanhSachHoSo ", f"{doctype}\n<DanhSachHoSo ".encode(), 1)
    return data.replace(ID.format(1).encode(), value.encode()) if value else data


def zipped(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(CSV, data)
    return buffer.getvalue()


def reordered(rows: Sequence[Mapping[str, str | None]]) -> bytes:
    """A CSV export whose columns come in reverse order, after one Finance added."""
    columns = ["GhiChu", *reversed(COLUMNS)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows([columns, *([r.get(c) or "" for c in columns] for r in rows)])
    return buffer.getvalue().encode() + f"#KETTHUC,{len(rows)}\r\n".encode()


def one_bad_value(value: str) -> bytes:
    return xml_export([xml_record(good(1)), xml_record(good(2) | {"TenThuTuc": value})])


NOISE = random.Random(5).randbytes(4096)

FILES: list[File] = [
    # XML entities and DTDs: refused before any entity is declared, let alone expanded or read
    File("xml billion laughs", XML, written(with_doctype(f"<!DOCTYPE DanhSachHoSo [{LAUGHS}]>", "&l9;")), "file:doctype_refused", "DOCTYPE"),
    File("xml external entity on a local file", XML, written(with_doctype('<!DOCTYPE DanhSachHoSo [<!ENTITY x SYSTEM "@SECRET@">]>', "&x;")), "file:doctype_refused", "DOCTYPE"),
    File("xml external parameter entity", XML, written(with_doctype('<!DOCTYPE DanhSachHoSo [<!ENTITY % p SYSTEM "@SECRET@"> %p;]>')), "file:doctype_refused", "DOCTYPE"),
    File("xml external DTD", XML, written(with_doctype('<!DOCTYPE DanhSachHoSo SYSTEM "@SECRET@">')), "file:doctype_refused", "DOCTYPE"),
    File("xml internal DTD without entities", XML, written(with_doctype("<!DOCTYPE DanhSachHoSo [<!ELEMENT HoSo ANY>]>")), "file:doctype_refused", "DOCTYPE"),
    File("xml DTD in a file still being written", XML, written(with_doctype(f"<!DOCTYPE DanhSachHoSo [{LAUGHS}]>")[:-40]), "file:doctype_refused", "DOCTYPE"),
    # XML that is not well formed: refused whole (a parser must stop at the first fatal error)
    File("xml NUL byte in one value", XML, written(one_bad_value("Đăng\x00ký")), "file:malformed_xml", "line 4"),
    File("xml control character in one value", XML, written(one_bad_value("Đăng\x07ký")), "file:malformed_xml", "not well-formed"),
    File("xml NUL as a character reference", XML, written(TWO_RECORDS.replace(b"k\xc3\xbd", b"k&#0;", 1)), "file:malformed_xml", "reference to invalid character"),
    File("xml wrong root element", XML, written(TWO_RECORDS.replace(b"<DanhSachHoSo ", b"<DanhSach ", 1)), "file:malformed_xml", "the root element is <DanhSach>"),
    File("xml text after the root", XML, written(TWO_RECORDS + b"<DanhSachHoSo></DanhSachHoSo>\n"), "file:malformed_xml", "junk after document element"),
    File("xml without its count", XML, written(re.sub(rb"<TongSo>2</TongSo>", b"", TWO_RECORDS)), "file:row_count_mismatch", "declares no records but the file holds 2"),
    File("xml count as a superscript", XML, written(TWO_RECORDS.replace(b"<TongSo>2<", "<TongSo>²<".encode())), "file:bad_count", "<TongSo> '²' is not a number of records"),
    File("xml count in Arabic-Indic digits", XML, written(TWO_RECORDS.replace(b"<TongSo>2<", "<TongSo>٢<".encode())), "file:bad_count", "is not a number of records"),
    File("xml count of 5,000 digits", XML, written(TWO_RECORDS.replace(b"<TongSo>2<", b"<TongSo>" + b"9" * 5000 + b"<")), "file:bad_count", "is not a number of records"),
    File("xml count given twice", XML, written(TWO_RECORDS.replace(b"<TongSo>2</TongSo>", b"<TongSo>2</TongSo><TongSo>2</TongSo>")), "file:bad_count", "<TongSo> appears twice"),
    # XML whose shape would cost time or memory without bound: refused whole, at once
    File("xml comment of 3 MiB", XML, written(TWO_RECORDS.replace(b"<TongSo>", b"<!--" + b"x" * (3 << 20) + b"--><TongSo>")), "file:markup_too_long", "runs over 1048576 bytes"),
    File("xml attribute of 3 MiB", XML, written(TWO_RECORDS.replace(b"<HoSo>", b'<HoSo ghichu="' + b"x" * (3 << 20) + b'">', 1)), "file:markup_too_long", "a comment, tag or instruction"),
    File("xml instruction of 3 MiB", XML, written(TWO_RECORDS.replace(b"<TongSo>", b"<?note " + b"x" * (3 << 20) + b"?><TongSo>")), "file:markup_too_long", "runs over"),
    File("xml nested 100,000 deep", XML, written(TWO_RECORDS.replace(b"</HoSo>", b"<a>" * 100_000 + b"</a>" * 100_000 + b"</HoSo>", 1)), "file:too_deep", "deeper than 32 levels"),
    File("xml in UTF-16", XML, written(TWO_RECORDS.decode().replace("UTF-8", "UTF-16").encode("utf-16")), "file:bad_encoding", "UTF-16"),
    File("xml random bytes", XML, written(NOISE), "file:malformed_xml", "not well-formed"),
    File("xml zip archive", XML, written(zipped(TWO_RECORDS)), "file:malformed_xml", "not well-formed"),
    # XML still being written
    File("xml without its end tag", XML, written(TWO_RECORDS[: TWO_RECORDS.index(b"<TongSo>")]), HELD, "does not end with </DanhSachHoSo>"),
    File("xml cut inside a character", XML, written(TWO_RECORDS[: TWO_RECORDS.index("ký".encode()) + 2]), HELD, "does not end with"),
    File("xml empty", XML, written(b""), HELD, "does not end with"),
    # CSV envelopes
    File("csv without its trailer", CSV, written(TWO_ROWS[: TWO_ROWS.index(b"#KETTHUC")]), HELD, "not the trailer '#KETTHUC,<rows>'"),
    File("csv cut inside a line", CSV, written(TWO_ROWS[:-30]), HELD, "not the trailer"),
    File("csv empty", CSV, written(b""), HELD, "it is empty"),
    File("csv of only a header", CSV, written(TWO_ROWS.split(b"\r\n")[0] + b"\r\n"), HELD, "no line after the header"),
    File("csv trailer that is no number", CSV, written(TWO_ROWS.replace(b"#KETTHUC,2", b"#KETTHUC,hai")), "file:bad_trailer", "'#KETTHUC,<rows>'"),
    File("csv trailer count as a superscript", CSV, written(TWO_ROWS.replace(b"#KETTHUC,2", "#KETTHUC,²".encode())), "file:bad_trailer", "1 to 12 digits 0-9"),
    File("csv trailer count in Arabic-Indic digits", CSV, written(TWO_ROWS.replace(b"#KETTHUC,2", "#KETTHUC,٢".encode())), "file:bad_trailer", "1 to 12 digits 0-9"),
    File("csv trailer count of 5,000 digits", CSV, written(TWO_ROWS.replace(b"#KETTHUC,2", b"#KETTHUC," + b"9" * 5000)), "file:bad_trailer", "1 to 12 digits 0-9"),
    File("csv header missing a column", CSV, written(TWO_ROWS.replace(b",NgayNhan", b"", 1)), "file:bad_header", "columns NgayNhan missing"),
    File("csv header with a column renamed", CSV, written(TWO_ROWS.replace(b"NgayNhan", b"NgayTiepNhan", 1)), "file:bad_header", "columns NgayNhan missing"),
    File("csv header with a column twice", CSV, written(TWO_ROWS.replace(b"MaDiaBan", b"MaThuTuc", 1)), "file:bad_header", "MaDiaBan missing"),
    File("csv header missing a column, still being written", CSV, written(TWO_ROWS.replace(b",NgayNhan", b"", 1)[:-20]), "file:bad_header", "columns NgayNhan missing"),
    File("csv in UTF-16", CSV, written(TWO_ROWS.decode("utf-8-sig").encode("utf-16")), "file:bad_header", "not UTF-8 CSV"),
    File("csv in UTF-16 without a byte-order mark", CSV, written(TWO_ROWS.decode("utf-8-sig").encode("utf-16-le")), "file:bad_header", "not UTF-8 CSV"),
    File("csv random bytes", CSV, written(NOISE), "file:bad_header", "not UTF-8 CSV"),
    File("csv zip archive", CSV, written(zipped(TWO_ROWS)), "file:bad_header", "not UTF-8 CSV"),
    File("another system's CSV", "bao_cao_thang.csv", written(b"Thang,SoLuong\r\n01,5\r\n#KETTHUC,1\r\n"), "file:bad_header", "columns SoHoSo,"),
    # names that are no export: never read, whatever they hold
    File("still being copied (.part)", f"{CSV}.part", written(TWO_ROWS), IGNORED),
    File("hidden", f".{CSV}", written(TWO_ROWS), IGNORED),
    File("exporter temporary file", f".{CSV}.tmp", written(TWO_ROWS), IGNORED),
    File("text suffix", f"{DAY}.txt", written(TWO_ROWS), IGNORED),
    File("zip archive named .zip", f"{DAY}.zip", written(zipped(TWO_ROWS)), IGNORED),
    File("a folder named like an export", CSV, directory, IGNORED),
    File("a named pipe named like an export", CSV, fifo, IGNORED),
    # odd but valid: these load
    File("csv with BOM and CRLF (the reference export)", CSV, written(TWO_ROWS), LOADS, rows=2),
    File("csv without BOM, LF", CSV, written(csv_export([csv_line(good(1)), csv_line(good(2))], bom=False, newline=b"\n")), LOADS, rows=2),
    File("csv with BOM, LF", CSV, written(TWO_ROWS.replace(b"\r\n", b"\n")), LOADS, rows=2),
    File("csv without BOM, CRLF", CSV, written(TWO_ROWS.removeprefix(BOM)), LOADS, rows=2),
    File("csv with blank lines", CSV, written(TWO_ROWS.replace(b"\r\n", b"\r\n\r\n  \r\n")), LOADS, rows=2),
    File("csv of a day without dossiers", CSV, written(csv_export([])), LOADS, rows=0),
    File("csv columns reordered, one added", CSV, written(reordered([good(1), good(2)])), LOADS, rows=2),
    File("xml with BOM and CRLF", XML, written(BOM + xml_export([xml_record(good(1)), xml_record(good(2))], newline=b"\r\n")), LOADS, rows=2),
]  # fmt: skip


@pytest.mark.parametrize("case", FILES, ids=[f.name for f in FILES])
def test_each_malformed_file_is_refused_held_or_ignored_with_a_clear_reason(
    sqlite_registry: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture, case: File
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    case.make(drop / case.file, secret)
    other = "HoSo_TaiChinh_20260106.csv"  # a good file beside it always loads
    (drop / other).write_bytes(csv_export([csv_line(good(101)), csv_line(good(102))]))
    caplog.set_level(logging.INFO, logger="connectors.files")

    result = sync(sqlite_registry, drop)
    assert {ID.format(101), ID.format(102)} <= loaded(sqlite_registry).keys()
    assert SECRET not in everything_stored(sqlite_registry)
    held = quarantined(sqlite_registry)
    about = [r.getMessage() for r in caplog.records if case.file in r.getMessage()]
    if case.outcome == LOADS:
        assert (result.inserted, held) == (2 + case.rows, {})
        assert case.file in done_files(sqlite_registry)
    elif case.outcome in (HELD, IGNORED):
        assert (result.rows_read, result.inserted, held) == (2, 2, {})
        assert case.file not in done_files(sqlite_registry)
        if case.outcome == HELD:
            assert len(about) == 1 and "not complete yet" in about[0] and case.says in about[0]
        else:
            assert about == []
    else:
        assert (result.inserted, result.quarantined) == (2, 1)
        ((key, entry),) = held.items()
        assert (key, entry.reason) == (f"{case.file}#file", case.outcome)
        message = entry.payload[REJECTED]["message"]
        assert case.says in message and case.file in message
        assert any(case.says in line for line in about)  # logged as well
        assert case.file in done_files(sqlite_registry)

    again = sync(sqlite_registry, drop)  # a refused file is not reported twice; a held one waits
    assert (again.rows_read, again.inserted, again.quarantined) == (0, 0, 0)


class UnforeseenVersion(FinanceConnector):
    """A version rule that fails on a value nobody foresaw: a bug, not bad data."""

    def version_of(self, value: str | None) -> datetime:
        if value == "31/12/2025 23:59:59":
            raise RuntimeError(f"unforeseen version {value}")
        return super().version_of(value)


def test_a_file_whose_content_cannot_be_read_is_set_aside_and_the_others_load(
    sqlite_registry: Engine, tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    odd = good(2) | {"NgayCapNhat": "31/12/2025 23:59:59", "MaSoThue": TAX_CODE}
    (drop / CSV).write_bytes(csv_export([csv_line(good(2)), csv_line(odd)]))
    (drop / XML).write_bytes(xml_export([xml_record(good(2)), xml_record(odd)]))
    (drop / "HoSo_TaiChinh_20260106.csv").write_bytes(csv_export([csv_line(good(101))]))
    context = connector(drop).context
    result = sync_source(sqlite_registry, UnforeseenVersion(context))
    assert result.status == "succeeded"
    assert (result.inserted, result.quarantined) == (1, 2)
    held = quarantined(sqlite_registry)
    assert {key: entry.reason for key, entry in held.items()} == {
        f"{CSV}#file": "file:unreadable_content",
        f"{XML}#file": "file:unreadable_content",
    }
    message = held[f"{CSV}#file"].payload[REJECTED]["message"]
    assert "RuntimeError" in message and "re-issue" in message
    assert "31/12/2025" not in message and TAX_CODE not in everything_stored(sqlite_registry)
    assert UnforeseenVersion(context).count(None) == 1  # counting sets them aside as well
    again = sync_source(sqlite_registry, UnforeseenVersion(context))  # not reported twice
    assert (again.rows_read, again.quarantined) == (0, 0)


# -- properties -----------------------------------------------------------------------------
def local_time(moment: datetime) -> str:
    return f"{moment.day:02d}/{moment.month:02d}/{moment.year:04d} {moment:%H:%M:%S}"


texts = st.text(max_size=40)
times = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23))
recent = st.datetimes(min_value=datetime(2025, 6, 1), max_value=datetime(2026, 10, 31))
finance_times = st.one_of(times.map(local_time), recent.map(local_time), texts)
numbers = st.one_of(st.integers(-5, 20_000).map(str), texts, st.sampled_from(["²", "٤", " 3 "]))
words = [*finance.STATUSES, finance.IN_PERSON, finance.ONLINE, finance.POSTAL, "Có", "Không"]
vietnamese = st.one_of(
    texts,
    st.sampled_from([*words, TCVN3, VNI, AS_CP1252, NFD, "ĐANG XỬ LÝ", "Fax", "4"]),
)
VALUES: dict[str, st.SearchStrategy[str | None]] = {
    "SoHoSo": st.one_of(texts, st.from_regex(r"[0-9A-Za-z][0-9A-Za-z.\-/_]{2,70}", fullmatch=True)),
    "MaHoSoQuocGia": texts,
    "MaThuTuc": st.one_of(texts, st.sampled_from(["1.005432", "1.005432.000.00.00.H56", "2.00O477"])),
    "TenThuTuc": vietnamese,
    "LinhVuc": vietnamese,
    "DonViXuLy": st.one_of(texts, st.sampled_from(["000.00.10.H56", "H56", "000.41.10.H56"])),
    "DonViTiepNhan": st.one_of(texts, st.sampled_from(["000.00.10.H56", "H56"])),
    "MaDiaBan": st.one_of(texts, st.sampled_from(["56", "22333", "568", "5612"])),
    "NgayNop": finance_times,
    "NgayNhan": finance_times,
    "HanXuLy": st.one_of(finance_times, recent.map(lambda d: f"{d:%d/%m/%Y}")),
    "NgayHoanThanh": finance_times,
    "NgayTraKetQua": finance_times,
    "HinhThucNop": vietnamese,
    "MucDo": st.one_of(texts, st.sampled_from(["1", "2", "3", "4", "5", " 4 "])),
    "TrangThai": vietnamese,
    "LoaiDoiTuong": numbers,
    "MaSoThue": st.one_of(texts, st.from_regex(r"[0-9]{9,13}|[0-9]{10}-[0-9]{3}", fullmatch=True)),
    "PhiLePhi": st.one_of(numbers, st.sampled_from(["1.250.000", "45.000", "0", "1.25", "45,5"])),
    "ThanhToanTrucTuyen": vietnamese,
    "SoGiayTo": numbers,
    "SoGiayToSoHoa": numbers,
    "KetQuaDienTu": vietnamese,
    "NgayCapNhat": finance_times,
}  # fmt: skip
PAYLOAD = st.fixed_dictionaries(
    {}, optional={c: st.one_of(st.none(), strategy) for c, strategy in VALUES.items()}
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(overrides=PAYLOAD)
def test_mapping_any_row_either_loads_a_valid_record_or_rejects_with_reasons(
    overrides: dict[str, str | None],
) -> None:
    row = {**GOOD, **overrides}
    source = connector(Path("."))
    try:
        record = source.to_canonical(RawRecord(ID.format(2), dict(row)))
    except RecordRejected as rejected:
        fields = DossierRecord.model_fields.keys() | {"record"}
        assert rejected.reasons and all(
            r.field in fields and re.fullmatch(r"[a-z_]+", r.code) for r in rejected.reasons
        )
        tax_code = (row["MaSoThue"] or "").strip()
        for reason in rejected.reasons:
            if reason.field == "applicant_key":  # personal data: described, never shown
                assert reason.message.startswith(f"MaSoThue ({len(tax_code)} characters) ")
                assert repr(tax_code) not in reason.message
        return
    assert DossierRecord.model_validate(record.model_dump()) == record
    assert record.received_at.utcoffset() is not None and not record.received_at.utcoffset()
    for value in record.model_dump().values():
        if isinstance(value, str):
            assert unicodedata.is_normalized("NFC", value) and value == value.strip()
    if row["MaSoThue"] and row["MaSoThue"].strip():
        assert row["MaSoThue"].strip() not in record.model_dump_json()


HEADER = ",".join(COLUMNS).encode()
good_lines = st.builds(
    lambda values: csv_line(GOOD | values),
    st.fixed_dictionaries(
        {"SoHoSo": st.sampled_from([ID.format(n) for n in (1, 2, 3)])},  # repeats on purpose
        optional={c: s for c, s in VALUES.items() if c != "SoHoSo"},
    ),
)
lines = st.lists(st.one_of(good_lines, st.binary(max_size=120)), max_size=6)
trailers = st.one_of(st.none(), st.just(-1), st.integers(0, 8), st.binary(max_size=12))


def made_export(bom: bool, body: list[bytes], trailer: int | bytes | None, crlf: bool) -> bytes:
    """A CSV export around arbitrary lines; the trailer right (-1), wrong, garbage or absent."""
    newline = b"\r\n" if crlf else b"\n"
    end: list[bytes] = []
    if isinstance(trailer, bytes):
        end = [trailer]
    elif trailer is not None:
        end = [f"#KETTHUC,{len(body) if trailer == -1 else trailer}".encode()]
    return newline.join([(BOM if bom else b"") + HEADER, *body, *end]) + newline


exports = st.one_of(
    st.binary(max_size=600),
    st.builds(made_export, st.booleans(), lines, trailers, st.booleans()),
)
_fuzzed = itertools.count()


@settings(
    max_examples=120,
    deadline=None,
    # One registry for every example: each syncs its own folder under its own source name.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(content=exports, suffix=st.sampled_from([".csv", ".csv", ".xml"]))
def test_any_bytes_in_an_export_file_load_quarantine_or_wait_never_crash(
    sqlite_registry: Engine,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    content: bytes,
    suffix: str,
) -> None:
    source = f"fuzz_{next(_fuzzed)}"
    drop = Path(tempfile.mkdtemp(dir=tmp_path))
    name = f"{DAY}{suffix}"
    (drop / name).write_bytes(content)
    caplog.clear()
    caplog.set_level(logging.INFO, logger="connectors.files")
    result = sync_source(sqlite_registry, connector(drop, source=source, batch_size=4))

    found, held = loaded(sqlite_registry, source), quarantined(sqlite_registry, source)
    assert result.status == "succeeded"
    assert result.rows_read == result.inserted + result.quarantined == len(found) + len(held)
    for entry in held.values():
        assert (
            re.fullmatch(r"[a-z_]+:[a-z_]+", entry.reason) and "mapping_error" not in entry.reason
        )
    for record in found.values():
        assert_clean_text(record)
    if name not in done_files(sqlite_registry, source):
        # Held: nothing read, and the log says why.
        assert result.rows_read == 0
        assert any(
            name in r.getMessage() and "not complete yet (" in r.getMessage()
            for r in caplog.records
        )
    elif f"{name}#file" in held:
        assert (result.rows_read, len(held)) == (1, 1)  # refused whole: one clear entry
