"""Bad input through the HTTP transport, from a real server on 127.0.0.1.

A table of malformed records, each served in a page and synced through the real connector
(Social Insurance, and the one-stop portal for a few) into a registry: each lands in
quarantine with its specific "field:code" reason, or loads exactly as the clean record would.
A table of broken pages, each failing the run with an error that names the source and what to
fix. Never a crash, never an endless read, never garbage; and property-based tests of both
connectors' mapping.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlalchemy import Engine, select

from connectors.base import ConnectorContext, RawRecord
from connectors.http import HttpConnector
from connectors.identifiers import IdentifierHasher
from connectors.one_stop import OneStopConnector
from connectors.social_insurance import SocialInsuranceConnector
from dossierhub.errors import (
    DossierHubError,
    FatalSourceError,
    RecordRejected,
    RetriableSourceError,
)
from dossierhub.sync import sync_source
from models.dossier import DossierRecord, Status
from models.tables import CANONICAL_COLUMNS, dossier, dossier_event, quarantine, sync_run
from simulators import social_insurance as si
from simulators.http_server import Request, Response, SimulatedApi, error

SI, PORTAL = SocialInsuranceConnector, OneStopConnector
Kind = type[HttpConnector]
SOURCE: dict[Kind, str] = {SI: "social_insurance", PORTAL: "one_stop"}
PERSONAL: dict[Kind, str] = {SI: "maSoBhxh", PORTAL: "SoGiayToChuHoSo"}
CLIENT_SECRET = "bhxh-bad-input-secret-" + "Qz8" * 6
API_KEY = "portal-bad-input-key-" + "Jw4" * 6
TOKEN = "bad-input-token-" + "T" * 24
HASHER = IdentifierHasher(SecretStr("bad-input-key-" + "h" * 32))
FAST: dict[str, Any] = {
    "connect_timeout": 0.5,
    "read_timeout": 5.0,
    "max_attempts": 2,
    "backoff_initial": 0.001,
    "backoff_max": 0.01,
}
BATCH = 10
RUNAWAY = 25  # record requests after which the test server refuses: a read must end before

# One dossier as each API serves it (shapes copied from the reference simulators).
NAME = "Cấp lại sổ bảo hiểm xã hội"
GOOD: dict[Kind, dict[str, Any]] = {
    SI: {
        "id": "BH00000001",
        "soHoSo": "56101/2026/00001",
        "maHoSoQuocGia": None,
        "maThuTuc": "601",
        "tenThuTuc": NAME,
        "linhVuc": "Sổ, thẻ",
        "maCoQuan": "56101",
        "maDonViTiepNhan": None,
        "maDiaBan": "22411",
        "kenhNop": "dienTu",
        "mucDo": "toanTrinh",
        "trangThai": "dangXuLy",
        "ngayNop": "2026-03-02T07:40:00+07:00",
        "ngayTiepNhan": "2026-03-02T08:00:00+07:00",
        "ngayHenTra": "2026-03-12T16:30:00+07:00",
        "ngayCoKetQua": None,
        "ngayTraKetQua": None,
        "loaiDoiTuong": "caNhan",
        "maSoBhxh": "0123456789",
        "lePhi": 20000,
        "thanhToanTrucTuyen": True,
        "soGiayTo": 3,
        "soGiayToSoHoa": 3,
        "ketQuaDienTu": False,
        "ngayCapNhat": "2026-03-03T09:00:00+07:00",
    },
    PORTAL: {
        "Id": "00000001",
        "MaHoSo": "000.31.31.H56-260302-0001",
        "MaTTHC": "2.000908.000.00.00.H56",
        "TenTTHC": "Chứng thực bản sao từ bản chính giấy tờ, văn bản",
        "LinhVuc": "Chứng thực",
        "MaCoQuan": "000.31.31.H56",
        "MaNoiTiepNhan": "000.31.31.H56",
        "MaDonVi": "22333",
        "MaCoQuanChuyenDen": None,
        "NganhChuyenDen": None,
        "KenhThucHien": 1,
        "MucDo": 2,
        "NgayNop": "20260302080000",
        "NgayTiepNhan": "20260302080000",
        "NgayHenTra": "20260303163000",
        "NgayKetThuc": "",
        "NgayTraKetQua": "",
        "TrangThaiHoSo": "4",
        "LoaiDoiTuong": 1,
        "SoGiayToChuHoSo": "056564381480",
        "LePhi": 2000,
        "ThanhToanTrucTuyen": 0,
        "SoThanhPhan": 4,
        "SoThanhPhanSoHoa": 4,
        "KetQuaDienTu": 0,
        "NgayCapNhat": "20260302090000",
    },
}
NFD = unicodedata.normalize("NFD", NAME)
TCVN3 = "CÊp l¹i sæ b¶o hiÓm x· héi"  # the legacy 8-bit encodings, shown as Latin-1
VNI = "Caáp laïi soå baûo hieåm xaõ hoäi"
MOJIBAKE = NAME.encode().decode("cp1252", errors="replace")  # UTF-8 read as Windows-1252
ABSENT: Any = object()  # an override that drops the field

# (case, connector, overrides of the good record, expected reasons or None when it must load)
CASES: list[tuple[str, Kind, dict[str, Any], str | None]] = [
    ("dossier number as a number", SI, {"soHoSo": 5610120260001}, "dossier_code:string_type"),
    (
        "dossier number as an object",
        SI,
        {"soHoSo": {"so": "56101/2026/00001"}},
        "dossier_code:string_type",
    ),
    ("procedure code as a list", SI, {"maThuTuc": ["601"]}, "procedure_code:unknown_code"),
    ("status as a list", SI, {"trangThai": ["dangXuLy"]}, "status:unknown_code"),
    (
        "received date as an object",
        SI,
        {"ngayTiepNhan": {"date": "2026-03-02"}},
        "received_at:invalid_datetime",
    ),
    (
        "received date as epoch seconds",
        SI,
        {"ngayTiepNhan": 1772413200},
        "received_at:invalid_datetime",
    ),
    ("procedure name as a number", SI, {"tenThuTuc": 601}, "procedure_name:string_type"),
    ("document count as a word", SI, {"soGiayTo": "ba"}, "docs_submitted:int_parsing"),
    ("fee as text", SI, {"lePhi": "20000"}, "has_fee:invalid_number"),
    ("paid-online flag as a word", SI, {"thanhToanTrucTuyen": "có"}, "paid_online:bool_parsing"),
    ("dossier number absent", SI, {"soHoSo": ABSENT}, "dossier_code:missing"),
    ("received date absent", SI, {"ngayTiepNhan": ABSENT}, "received_at:missing"),
    ("status absent", SI, {"trangThai": ABSENT}, "status:unknown_code"),
    ("channel null", SI, {"kenhNop": None}, "channel:unknown_code"),
    ("office null", SI, {"maCoQuan": None}, "agency_code:unknown_code"),
    (
        "received in 1900",
        SI,
        {"ngayTiepNhan": "1900-01-01T08:00:00+07:00", "ngayNop": None},
        "received_at:out_of_range",
    ),
    (
        "received in 2099",
        SI,
        {"ngayTiepNhan": "2099-01-01T08:00:00+07:00", "ngayHenTra": None},
        "received_at:out_of_range",
    ),
    ("received date as words", SI, {"ngayTiepNhan": "hôm qua"}, "received_at:invalid_datetime"),
    ("due before received", SI, {"ngayHenTra": "2026-03-01T16:30:00+07:00"}, "due_at:inconsistent"),
    (
        "finished before received",
        SI,
        {"ngayCoKetQua": "2026-03-01T10:00:00+07:00", "trangThai": "daCoKetQua"},
        "finished_at:inconsistent",
    ),
    ("name in TCVN3", SI, {"tenThuTuc": TCVN3}, "procedure_name:invalid_text"),
    ("name in VNI", SI, {"tenThuTuc": VNI}, "procedure_name:invalid_text"),
    ("name mis-decoded UTF-8", SI, {"tenThuTuc": MOJIBAKE}, "procedure_name:invalid_text"),
    ("name of 12 kB", SI, {"tenThuTuc": "Cấp lại " * 1500}, "procedure_name:string_too_long"),
    ("dossier number of 20 kB", SI, {"soHoSo": "5" * 20_000}, "dossier_code:invalid_format"),
    ("name with NUL", SI, {"tenThuTuc": "Cấp lại\x00sổ"}, "procedure_name:invalid_text"),
    ("sector with an escape", SI, {"linhVuc": "Sổ\x1b, thẻ"}, "sector:invalid_text"),
    (
        "dossier number with NUL",
        SI,
        {"soHoSo": "56101/2026\x00/00001"},
        "dossier_code:invalid_format",
    ),
    ("status with a bell", SI, {"trangThai": "dangXuLy\x07"}, "status:unknown_code"),
    ("status in capitals", SI, {"trangThai": "DANGXULY"}, "status:unknown_code"),
    ("unknown channel", SI, {"kenhNop": "email"}, "channel:unknown_code"),
    ("unknown service level", SI, {"mucDo": "muc4"}, "service_level:unknown_code"),
    (
        "insurance number lost its leading zero",
        SI,
        {"maSoBhxh": 123456789},
        "applicant_key:invalid_format",
    ),
    (
        "insurance number with letter O",
        SI,
        {"maSoBhxh": "01234O6789"},
        "applicant_key:invalid_format",
    ),
    (
        "insurance number in full-width digits",
        SI,
        {"maSoBhxh": "０１２３４５６７８９"},
        "applicant_key:invalid_format",
    ),
    (
        "insurance number with NUL",
        SI,
        {"maSoBhxh": "01234\x0056789"},
        "applicant_key:invalid_format",
    ),
    ("fee not a number (NaN)", SI, {"lePhi": math.nan}, "has_fee:invalid_number"),
    ("fee negative", SI, {"lePhi": -20000}, "has_fee:invalid_number"),
    ("portal: status as a superscript", PORTAL, {"TrangThaiHoSo": "²"}, "status:unknown_code"),
    ("portal: status full-width", PORTAL, {"TrangThaiHoSo": "４"}, "status:unknown_code"),
    (
        "portal: citizen ID of 11 digits",
        PORTAL,
        {"SoGiayToChuHoSo": "05656438148"},
        "applicant_key:invalid_format",
    ),
    (
        "portal: citizen ID as a number",
        PORTAL,
        {"SoGiayToChuHoSo": 56564381480},
        "applicant_key:invalid_format",
    ),
    (
        "portal: ISO time, not its own",
        PORTAL,
        {"NgayTiepNhan": "2026-03-02T08:00:00"},
        "received_at:invalid_datetime",
    ),
    ("portal: procedure code a number", PORTAL, {"MaTTHC": 2000908}, "procedure_code:string_type"),
    ("portal: result flag 2", PORTAL, {"KetQuaDienTu": 2}, "result_digitised:bool_parsing"),
    (
        "portal: paid flag as a word",
        PORTAL,
        {"ThanhToanTrucTuyen": "có"},
        "paid_online:bool_parsing",
    ),
    ("portal: fee negative", PORTAL, {"LePhi": -2000}, "has_fee:invalid_number"),
    (
        "portal: name in VNI",
        PORTAL,
        {"TenTTHC": "Chöùng thöïc baûn sao töø baûn chính"},
        "procedure_name:invalid_text",
    ),
    # These must load, exactly as the good record does:
    ("name decomposed NFD", SI, {"tenThuTuc": NFD}, None),
    ("local time without an offset", SI, {"ngayTiepNhan": "2026-03-02T08:00:00"}, None),
    ("locality as a number", SI, {"maDiaBan": 22411}, None),
    (
        "portal: name decomposed NFD",
        PORTAL,
        {"TenTTHC": unicodedata.normalize("NFD", GOOD[PORTAL]["TenTTHC"])},
        None,
    ),
    ("portal: result flag as text", PORTAL, {"KetQuaDienTu": "0"}, None),
]


# -- the test API -----------------------------------------------------------------------------
Answer = Response | Callable[[Request], Response]


class Crafted(SimulatedApi):
    """A sector API at one connector's paths, answering its record requests as crafted.

    The n-th record request gets `answers[n - 1]` (the last one again after that) up to
    `RUNAWAY` requests, then a 410: a read that would never end fails instead of hanging.
    Tokens and counts are answered as the reference simulators answer them.
    """

    def __init__(self, kind: Kind, answers: Sequence[Answer]) -> None:
        super().__init__()
        self.kind, self.answers, self.asked = kind, list(answers), 0

    def handle(self, request: Request) -> Response:
        kind = self.kind
        if request.path == getattr(kind.auth, "token_path", None):
            return Response(200, {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 300})
        if request.path == kind.count_endpoint:
            return Response(200, {kind.count_path: 1})
        if request.path != kind.records_endpoint:
            return error(404, f"no endpoint {request.path}")
        self.asked += 1
        if self.asked > RUNAWAY:
            return error(410, "crafted answers ran out: the read does not end")
        answer = self.answers[min(self.asked, len(self.answers)) - 1]
        return answer(request) if callable(answer) else answer


class Bytes(str):
    """A body the server sends as these exact bytes (it encodes any other text as UTF-8)."""

    raw: bytes

    def __new__(cls, raw: bytes) -> Bytes:
        text = super().__new__(cls, raw.decode("latin-1"))
        text.raw = raw
        return text

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return self.raw


def page(kind: Kind, records: Sequence[Any], next_cursor: Any = None) -> Response:
    """A page of records as the API wraps it."""
    if kind is SI:
        return Response(200, {"data": list(records), "nextCursor": next_cursor})
    return Response(
        200, {"TongSo": len(records), "SoTrang": 1, "SoBanGhi": BATCH, "DuLieu": list(records)}
    )


def body(text: str | bytes, content_type: str = "application/json; charset=utf-8") -> Response:
    """A 200 answer of exactly this body."""
    raw = text if isinstance(text, bytes) else text.encode()
    return Response(200, text=Bytes(raw), content_type=content_type)


def spoil(kind: Kind, overrides: dict[str, Any], number: int = 1) -> dict[str, Any]:
    """The good record as dossier `number`, one second newer per number, with overrides."""
    record = dict(GOOD[kind])
    if kind is SI:
        changed = datetime(2026, 3, 3, 9) + timedelta(seconds=number)
        record.update(
            id=f"BH{number:08d}",
            soHoSo=f"56101/2026/{number:05d}",
            ngayCapNhat=f"{changed:%Y-%m-%dT%H:%M:%S}+07:00",
        )
    else:
        changed = datetime(2026, 3, 2, 9) + timedelta(seconds=number)
        record.update(
            Id=f"{number:08d}",
            MaHoSo=f"000.31.31.H56-260302-{number:04d}",
            NgayCapNhat=f"{changed:%Y%m%d%H%M%S}",
        )
    for name, value in overrides.items():
        if value is ABSENT:
            del record[name]
        else:
            record[name] = value
    return record


def connect(kind: Kind, url: str, *, batch_size: int = BATCH) -> HttpConnector:
    credentials = (
        {"client_id": "dossierhub", "client_secret": CLIENT_SECRET}
        if kind is SI
        else {"api_key": API_KEY}
    )
    return kind(
        ConnectorContext(
            source=SOURCE[kind],
            settings={"base_url": url, **credentials, **FAST},
            hasher=HASHER,
            batch_size=batch_size,
            lookback=timedelta(0),
        )
    )


@cache
def offline(kind: Kind) -> HttpConnector:
    """A connector for mapping only: it never calls the API."""
    return connect(kind, "http://127.0.0.1:9")


def canonical(kind: Kind, record: dict[str, Any]) -> DossierRecord:
    return offline(kind).to_canonical(RawRecord(str(record[kind.id_field]), record))


def held(engine: Engine) -> dict[str, list[str]]:
    """Each quarantined source id with its reasons, "field:code"."""
    with engine.connect() as conn:
        rows = conn.execute(select(quarantine.c.source_id, quarantine.c.reasons)).all()
    return {row.source_id: [f"{r['field']}:{r['code']}" for r in row.reasons] for row in rows}


def loaded(engine: Engine) -> dict[str, dict[str, Any]]:
    """Each registered source id with its canonical columns."""
    columns = [dossier.c[name] for name in CANONICAL_COLUMNS]
    with engine.connect() as conn:
        rows = conn.execute(select(*columns)).mappings().all()
    return {row["source_id"]: dict(row) for row in rows}


def as_stored(record: DossierRecord) -> dict[str, Any]:
    return {name: getattr(value, "value", value) for name, value in record.__dict__.items()}


def stored_payloads(engine: Engine) -> str:
    with engine.connect() as conn:
        payloads = list(conn.execute(select(quarantine.c.payload)).scalars())
    return json.dumps(payloads, ensure_ascii=False)


# -- records ----------------------------------------------------------------------------------
def test_the_corpus_is_big_enough() -> None:
    assert len([case for case in CASES if case[3] is not None]) >= 30
    assert {case[1] for case in CASES if case[3] is not None} == {SI, PORTAL}
    assert len(PAGE_CASES) >= 20


@pytest.mark.parametrize(
    ("case", "kind", "overrides", "expected"), CASES, ids=[case[0] for case in CASES]
)
def test_each_malformed_record_gets_its_specific_reason_through_the_engine(
    sqlite_registry: Engine, case: str, kind: Kind, overrides: dict[str, Any], expected: str | None
) -> None:
    record = spoil(kind, overrides)
    with Crafted(kind, [page(kind, [record])]) as api:
        result = sync_source(sqlite_registry, connect(kind, api.url))
    ident = str(record[kind.id_field])
    if expected is None:
        assert (result.inserted, result.quarantined) == (1, 0), held(sqlite_registry)
        clean = as_stored(canonical(kind, spoil(kind, {})))
        assert loaded(sqlite_registry) == {ident: clean}
        return
    assert (result.rows_read, result.inserted, result.quarantined) == (1, 0, 1)
    assert held(sqlite_registry) == {ident: [expected]}
    assert loaded(sqlite_registry) == {}
    clear = str(record[PERSONAL[kind]]).strip()
    assert clear and clear not in stored_payloads(sqlite_registry)  # hashed, or only described


def test_the_whole_corpus_in_pages_lands_or_quarantines_every_record(registry: Engine) -> None:
    outcomes: dict[Kind, dict[str, str | None]] = {SI: {}, PORTAL: {}}
    served: dict[Kind, list[dict[str, Any]]] = {SI: [], PORTAL: []}
    for number, (_case, kind, overrides, expected) in enumerate(CASES, start=1):
        record = spoil(kind, overrides, number)
        served[kind].append(record)
        outcomes[kind][str(record[kind.id_field])] = expected
    chunks = [served[SI][i : i + BATCH] for i in range(0, len(served[SI]), BATCH)]
    pages = [
        page(SI, chunk, f"page-{n}" if n < len(chunks) else None)
        for n, chunk in enumerate(chunks, start=1)
    ]
    assert len(served[PORTAL]) < 50  # one short page: the portal's read ends with it
    with Crafted(SI, pages) as bhxh, Crafted(PORTAL, [page(PORTAL, served[PORTAL])]) as portal:
        results = [
            sync_source(registry, connect(SI, bhxh.url)),
            sync_source(registry, connect(PORTAL, portal.url, batch_size=50)),
        ]
    assert [r.rows_read for r in results] == [len(served[SI]), len(served[PORTAL])]
    expected = {i: e for by_id in outcomes.values() for i, e in by_id.items()}
    assert set(loaded(registry)) == {i for i, e in expected.items() if e is None}
    assert held(registry) == {i: [e] for i, e in expected.items() if e is not None}


def test_a_page_repeating_an_id_delivers_its_newest_version_once(sqlite_registry: Engine) -> None:
    def version(ident: str, second: int, status: str) -> dict[str, Any]:
        changed = f"2026-03-03T09:00:{second:02d}+07:00"
        return spoil(SI, {"id": ident, "ngayCapNhat": changed, "trangThai": status})

    # In the API's order, so the later of two versions is the newer.
    records = [
        *(version("BH-A", 1, "daTiepNhan"), version("BH-A", 2, "dangXuLy")),
        *(version("BH-B", 3, "daTiepNhan"), version("BH-B", 4, "daHuy")),  # newer is malformed
        *(version("BH-C", 5, "daHuy"), version("BH-C", 6, "dangXuLy")),  # older is malformed
        *(version("BH-D", 7, "daTiepNhan"), version("BH-D", 7, "dangXuLy")),  # one time: last wins
    ]
    with Crafted(SI, [page(SI, records)]) as api:
        result = sync_source(sqlite_registry, connect(SI, api.url))
    assert (result.rows_read, result.inserted, result.quarantined) == (4, 3, 1)
    statuses = {ident: row["status"] for ident, row in loaded(sqlite_registry).items()}
    assert statuses == dict.fromkeys(("BH-A", "BH-C", "BH-D"), Status.IN_PROGRESS)
    # B's valid older version is not loaded behind its newer one, nor C's stale one held.
    assert held(sqlite_registry) == {"BH-B": ["status:unknown_code"]}
    with sqlite_registry.connect() as conn:
        events = conn.execute(select(dossier_event.c.source_id, dossier_event.c.status_to)).all()
    assert sorted(events) == [(i, Status.IN_PROGRESS) for i in ("BH-A", "BH-C", "BH-D")]


def test_a_page_without_a_next_cursor_ends_the_read_and_the_next_run_goes_on(
    sqlite_registry: Engine,
) -> None:
    records = [spoil(SI, {}, number) for number in range(1, 21)]
    first_page = Response(200, {"data": records[:BATCH]})  # no nextCursor at all
    with Crafted(SI, [first_page, page(SI, records[BATCH:])]) as api:
        first = sync_source(sqlite_registry, connect(SI, api.url))
        second = sync_source(sqlite_registry, connect(SI, api.url))
        asked = [s.query for s in api.served() if s.path == SI.records_endpoint]
    last = records[BATCH - 1]
    assert (first.inserted, first.cursor_after) == (
        BATCH,
        {"cursor": "http", "version": 1, "updated_at": last["ngayCapNhat"], "id": last["id"]},
    )
    assert asked[1]["updatedSince"] == last["ngayCapNhat"]  # resumed after the first page
    assert second.inserted == BATCH and len(loaded(sqlite_registry)) == 20


# -- pages ------------------------------------------------------------------------------------
def series(kind: Kind, count: int) -> list[dict[str, Any]]:
    return [spoil(kind, {}, number) for number in range(1, count + 1)]


TEN = series(SI, BATCH)
SI_PAGE = json.dumps({"data": TEN, "nextCursor": None}, ensure_ascii=False)
TRUNCATED = SI_PAGE.encode()[:-40]
HTML = "<!doctype html><html><body><h1>Cổng dịch vụ công</h1></body></html>"
PORTAL_THIRTY = series(PORTAL, 30)


def ignoring_the_page_number(request: Request) -> Response:
    """The first `SoBanGhi` records whatever page is asked for."""
    return page(PORTAL, PORTAL_THIRTY[: int(request.query["SoBanGhi"])])


# (case, connector, answers, error, words of its message, records loaded before it)
PAGE_CASES: list[tuple[str, Kind, list[Answer], type[DossierHubError], str, int]] = [
    (
        "truncated JSON",
        SI,
        [body(TRUNCATED)],
        RetriableSourceError,
        f"GET /api/v1/dossiers failed 2 times, last: answered {len(TRUNCATED)} bytes that are "
        "not whole JSON; try again later",
        0,
    ),
    (
        "200 with an empty body",
        SI,
        [body("")],
        RetriableSourceError,
        "GET /api/v1/dossiers failed 2 times, last: answered 0 bytes that are not whole JSON",
        0,
    ),
    (
        "HTML page instead of JSON",
        SI,
        [body(HTML, "text/html")],
        FatalSourceError,
        "/api/v1/dossiers answered text/html, not JSON; check the 'base_url' setting",
        0,
    ),
    (
        "JSON sent as text/plain",
        SI,
        [body(SI_PAGE, "text/plain")],
        FatalSourceError,
        "/api/v1/dossiers answered text/plain, not JSON; check the 'base_url' setting",
        0,
    ),
    (
        "a list instead of an object",
        SI,
        [Response(200, TEN)],
        FatalSourceError,
        "/api/v1/dossiers answered JSON without a record list at 'data'; check the 'base_url'",
        0,
    ),
    (
        "no data array",
        SI,
        [Response(200, {"nextCursor": None})],
        FatalSourceError,
        "answered JSON without a record list at 'data'",
        0,
    ),
    (
        "data an object",
        SI,
        [Response(200, {"data": TEN[0], "nextCursor": None})],
        FatalSourceError,
        "answered JSON without a record list at 'data'",
        0,
    ),
    (
        "a record that is a string",
        SI,
        [page(SI, [*TEN[:3], "BH00000004"])],
        FatalSourceError,
        "/api/v1/dossiers answered a record that is not a JSON object",
        0,
    ),
    (
        "a record that is a number",
        SI,
        [page(SI, [*TEN[:3], 4])],
        FatalSourceError,
        "/api/v1/dossiers answered a record that is not a JSON object",
        0,
    ),
    (
        "a name in an 8-bit encoding",
        SI,
        [body(SI_PAGE.encode().replace("Cấp".encode(), b"C\xe1p"))],
        FatalSourceError,
        "/api/v1/dossiers answered a body that is not UTF-8 (byte 0xe1 at",
        0,
    ),
    (
        "a stray byte in an id",
        SI,
        [body(SI_PAGE.encode().replace(b"BH00000007", b"BH0000\xff007"))],
        FatalSourceError,
        "answered a body that is not UTF-8 (byte 0xff at",
        0,
    ),
    (
        "JSON nested 100 000 deep",
        SI,
        [body('{"data": [' + "[" * 100_000 + "]" * 100_000 + "]}")],
        FatalSourceError,
        "/api/v1/dossiers answered JSON nested too deeply to read",
        0,
    ),
    (
        "next cursor an object",
        SI,
        [page(SI, TEN, {"after": "BH00000010"})],
        FatalSourceError,
        "/api/v1/dossiers answered a dict at 'nextCursor', not a cursor or link",
        BATCH,
    ),
    (
        "next cursor an empty list",
        SI,
        [page(SI, TEN, [])],
        FatalSourceError,
        "answered a list at 'nextCursor', not a cursor or link",
        BATCH,
    ),
    (
        "next cursor true",
        SI,
        [page(SI, TEN, True)],
        FatalSourceError,
        "answered a bool at 'nextCursor', not a cursor or link",
        BATCH,
    ),
    (
        "the same next cursor forever",
        SI,
        [page(SI, TEN, "eyJ0IjoiMjAyNiJ9")],
        FatalSourceError,
        "the API gave the same continuation 'eyJ0IjoiMjAyNiJ9' twice: its paging does not move on",
        BATCH,
    ),
    (
        "a new cursor each time for the same page",
        SI,
        [page(SI, TEN, f"cursor-{n}") for n in range(1, RUNAWAY + 1)],
        FatalSourceError,
        "/api/v1/dossiers answered a page ending at 'BH00000010', not past the page before",
        BATCH,
    ),
    (
        "a record without an id",
        SI,
        [page(SI, [*TEN[:3], spoil(SI, {"id": ABSENT}, 4)])],
        FatalSourceError,
        "/api/v1/dossiers answered a record with id=None and ngayCapNhat=",
        0,
    ),
    (
        "an id that is an object",
        SI,
        [page(SI, [spoil(SI, {"id": {"nr": 1}})])],
        FatalSourceError,
        "answered a record with id={'nr': 1} and",
        0,
    ),
    (
        "an id with NUL",
        SI,
        [page(SI, [spoil(SI, {"id": "BH\x0000000001"})])],
        FatalSourceError,
        "every record needs an id (text or a whole number, 1 to 128 printable characters)",
        0,
    ),
    (
        "an id of 10 kB",
        SI,
        [page(SI, [spoil(SI, {"id": "B" * 10_000})])],
        FatalSourceError,
        "every record needs an id (text or a whole number, 1 to 128 printable characters)",
        0,
    ),
    (
        "a record without its last-change time",
        SI,
        [page(SI, [spoil(SI, {"ngayCapNhat": ABSENT})])],
        FatalSourceError,
        "answered a record with id='BH00000001' and ngayCapNhat=None; every record needs",
        0,
    ),
    (
        "more records than asked for",
        SI,
        [page(SI, series(SI, BATCH + 1))],
        FatalSourceError,
        "/api/v1/dossiers answered 11 records for a page of 10: it ignores the page size",
        0,
    ),
    (
        "portal: no DuLieu array",
        PORTAL,
        [Response(200, {"TongSo": 0, "SoTrang": 1})],
        FatalSourceError,
        "/api/v1/hoso answered JSON without a record list at 'DuLieu'",
        0,
    ),
    (
        "portal: HTML page",
        PORTAL,
        [body(HTML, "text/html; charset=utf-8")],
        FatalSourceError,
        "/api/v1/hoso answered text/html, not JSON; check the 'base_url' setting",
        0,
    ),
    (
        "portal: the page number ignored",
        PORTAL,
        [ignoring_the_page_number],
        FatalSourceError,
        "for the page after it: it ignores the 'SoTrang' parameter, so the read would never end",
        BATCH,
    ),
]


@pytest.mark.parametrize(
    ("case", "kind", "answers", "failure", "words", "landed"),
    PAGE_CASES,
    ids=[case[0] for case in PAGE_CASES],
)
def test_each_broken_page_fails_the_run_saying_what_to_fix(
    sqlite_registry: Engine,
    case: str,
    kind: Kind,
    answers: list[Answer],
    failure: type[DossierHubError],
    words: str,
    landed: int,
) -> None:
    with Crafted(kind, answers) as api, pytest.raises(DossierHubError) as failed:
        sync_source(sqlite_registry, connect(kind, api.url))
    message = str(failed.value)
    assert type(failed.value) is failure, message
    assert message.startswith(f"source {SOURCE[kind]!r}: ") and words in message, message
    assert len(message) < 600 and all(s not in message for s in (CLIENT_SECRET, API_KEY, TOKEN))
    assert api.asked <= 3  # failed at once, or after its one retry: never read on and on
    # What landed before the failure is the good records of earlier pages, and nothing else.
    assert len(loaded(sqlite_registry)) == landed and held(sqlite_registry) == {}
    with sqlite_registry.connect() as conn:
        run = conn.execute(select(sync_run.c.status, sync_run.c.error)).one()
    assert run == ("failed", message)


# -- properties -------------------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
si_times = st.datetimes(datetime(1899, 1, 1), datetime(2100, 1, 1)).map(
    lambda moment: f"{moment:%Y-%m-%dT%H:%M:%S}+07:00"
)
portal_times = st.datetimes(datetime(1899, 1, 1), datetime(2100, 1, 1)).map(
    lambda moment: f"{moment:%Y%m%d%H%M%S}"
)
digits = st.text(alphabet="0123456789０٣²-", min_size=8, max_size=14)
# Values near the valid ones, so the properties reach the rules past the first wrong type.
PLAUSIBLE: dict[Kind, dict[str, st.SearchStrategy[Any]]] = {
    SI: {
        "maThuTuc": st.sampled_from(["601", "602", "699", "1.001234"]),
        "maCoQuan": st.sampled_from(si.OFFICES),
        "trangThai": st.sampled_from(si.STATUSES),
        "kenhNop": st.sampled_from(si.CHANNELS),
        "mucDo": st.sampled_from((si.FULL, si.PARTIAL, si.OFFLINE)),
        "loaiDoiTuong": st.sampled_from((si.CITIZEN, si.ENTERPRISE, si.OTHER)),
        "maSoBhxh": digits,
        "maDiaBan": st.sampled_from(["56", "568", "22411", "2241", 22411]),
        "lePhi": st.integers(-10, 10**6) | st.floats(),
        "soGiayTo": st.integers(-2, 12_000),
        "soGiayToSoHoa": st.integers(-2, 12_000),
        **{name: si_times for name in ("ngayNop", "ngayTiepNhan", "ngayHenTra", "ngayCoKetQua")},
        "tenThuTuc": st.sampled_from([NAME, NFD, TCVN3, VNI, MOJIBAKE]) | st.text(),
    },
    PORTAL: {
        "MaTTHC": st.sampled_from(["2.000908", "2.000908.000.00.00.H56", "2.00O908"]),
        "MaCoQuan": st.sampled_from(["000.31.31.H56", "H56", "000.31.31.h56"]),
        "TrangThaiHoSo": st.integers(0, 11) | st.text(alphabet="0123456789²４ ", max_size=3),
        "KenhThucHien": st.integers(0, 4) | st.sampled_from(["1", "2", "¹"]),
        "MucDo": st.integers(1, 5) | st.sampled_from(["", "4", "³"]),
        "LoaiDoiTuong": st.integers(0, 5) | st.sampled_from(["", "1", "¹"]),
        "SoGiayToChuHoSo": digits,
        "LePhi": st.integers(-10, 10**6) | st.sampled_from(["", "2000", "²"]),
        "ThanhToanTrucTuyen": st.sampled_from([0, 1, 2, "0", "1", "", "có"]),
        "KetQuaDienTu": st.sampled_from([0, 1, 2, "0", "1", "", "có"]),
        **{name: portal_times for name in ("NgayNop", "NgayTiepNhan", "NgayHenTra", "NgayKetThuc")},
        "TenTTHC": st.sampled_from([NAME, NFD, TCVN3, VNI, MOJIBAKE]) | st.text(),
    },
}


def overrides_of(kind: Kind) -> st.SearchStrategy[dict[str, Any]]:
    """Any field but the id and the last-change time (paging needs those) replaced or dropped."""
    paging = {kind.id_field, kind.updated_at_field}
    return st.fixed_dictionaries(
        {},
        optional={
            name: st.just(ABSENT) | json_values | PLAUSIBLE[kind].get(name, json_values)
            for name in GOOD[kind]
            if name not in paging
        },
    )


@pytest.mark.parametrize("kind", [SI, PORTAL], ids=SOURCE.get)
@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_mapping_any_record_loads_a_valid_dossier_or_rejects_with_field_reasons(
    kind: Kind, data: st.DataObject
) -> None:
    record = spoil(kind, data.draw(overrides_of(kind)))
    try:
        got = canonical(kind, record)
    except RecordRejected as rejected:
        keys = [reason.key for reason in rejected.reasons]
        assert keys and all(r.field in DossierRecord.model_fields for r in rejected.reasons), keys
        return
    # A loaded record passes every rule again, in UTC, NFC, with no identifier in clear.
    assert DossierRecord.model_validate(got.model_dump()) == got
    assert got.received_at.utcoffset() == timedelta(0)
    for text in (got.procedure_name, got.sector):
        assert text is None or (unicodedata.is_normalized("NFC", text) and text == text.strip())
    clear = str(record.get(PERSONAL[kind], "")).strip()
    assert len(clear) < 9 or clear not in got.model_dump_json()
