"""The HTTP transport against a real server on 127.0.0.1: paging, retries, auth errors, secrets.

`Catalogue` is a tiny JSON API of numbered items behind an API key, paged every way the
transport supports; small connectors over it declare one pagination style each, as a sector
connector would.
"""

from __future__ import annotations

import base64
import gzip
import http.server
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar

import pytest
import requests
from sqlalchemy import Engine, select

from connectors.base import Connector, RawRecord
from connectors.http import (
    ApiKey,
    HttpConnector,
    JsonResponse,
    NextCursor,
    NextLink,
    Offset,
    PageNumber,
)
from connectors.testing import check_pagination, check_resume, context_for, read_bounded
from dossierhub.errors import ConfigError, FatalSourceError, RetriableSourceError
from dossierhub.sync import sync_source
from models.dossier import Channel, DossierRecord, Status
from models.tables import dossier, quarantine, sync_state
from simulators.http_server import (
    Faults,
    RecordSet,
    Request,
    Response,
    SimulatedApi,
    error,
)

LOCAL = timezone(timedelta(hours=7))
KEY = "catalogue-key-" + "s3cr3t" * 4
START = datetime(2026, 3, 1, 8, 0, tzinfo=LOCAL)


# -- the test API ---------------------------------------------------------------------------
def _key(record: dict[str, Any]) -> tuple[datetime, str]:
    return datetime.fromisoformat(record["changed"]), record["id"]


class Catalogue(SimulatedApi):
    """Items 0001.. changed a minute apart; the first `tied` share one change time."""

    name = "catalogue"

    def __init__(self, *, items: int = 60, tied: int = 0, faults: Faults | None = None) -> None:
        super().__init__(faults=faults)
        records = []
        for n in range(1, items + 1):
            changed = START + timedelta(minutes=tied if n <= tied else n)
            records.append({"id": f"{n:04d}", "changed": changed.isoformat(), "name": f"item {n}"})
        self._lock_data = threading.Lock()
        self.records = RecordSet(records, _key)
        self._by_id = {record["id"]: record for record in records}
        self.unordered = False

    def move(self, ids: list[str]) -> str:
        """Change the items, as a live system would: one new change time, after every other."""
        with self._lock_data:
            when = ((self.records.latest() or START) + timedelta(seconds=1)).isoformat()
            for ident in ids:
                self._by_id[ident]["changed"] = when
            self.records.refresh()
        return when

    def redate(self, ids: list[str], when: str, name: str | None = None) -> None:
        """Give the items a change time of the source's choosing (and a new name)."""
        with self._lock_data:
            for ident in ids:
                self._by_id[ident]["changed"] = when
                if name is not None:
                    self._by_id[ident]["name"] = name
            self.records.refresh()

    def current(self) -> dict[str, str]:
        with self._lock_data:
            return {ident: record["changed"] for ident, record in self._by_id.items()}

    def handle(self, request: Request) -> Response:
        if request.header("X-Key") != KEY:
            return error(401, "bad key")
        q = request.query
        since = datetime.fromisoformat(q["since"]) if q.get("since") else None
        with self._lock_data:
            if request.path == "/count":
                return Response(200, {"total": len(self.records)})
            if request.path == "/offset":
                items = self.records.window(since, int(q["offset"]), int(q["limit"]))
                return Response(200, {"items": self._shown(items)})
            if request.path == "/page":
                size = int(q["size"])
                items = self.records.window(since, (int(q["page"]) - 1) * size, size)
                return Response(200, {"items": self._shown(items)})
            if request.path in ("/cursor", "/link", "/link-header"):
                limit = int(q["limit"])
                after = q.get("cursor") or q.get("after")
                if after:
                    moment, ident = json.loads(base64.urlsafe_b64decode(after))
                    items = self.records.after((datetime.fromisoformat(moment), ident), limit)
                else:
                    items = self.records.window(since, 0, limit)
                more = bool(items) and self.records.more_after(_key(items[-1]))
        if request.path not in ("/cursor", "/link", "/link-header"):
            return error(404, "no such endpoint")
        token = None
        if more:
            token = base64.urlsafe_b64encode(
                json.dumps([items[-1]["changed"], items[-1]["id"]]).encode()
            ).decode()
        if request.path == "/cursor":
            return Response(200, {"items": items, "next": token})
        link = f"{request.path}?limit={limit}&after={token}" if token else None
        if request.path == "/link":
            return Response(200, {"items": items, "links": {"next": link}})
        headers = {"Link": f'<{link}>; rel="next"'} if link else {}
        return Response(200, {"items": items}, headers=headers)

    def _shown(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return list(reversed(items)) if self.unordered else items


class Redirecting(SimulatedApi):
    """Answers every request with a redirect to `target`."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target

    def handle(self, request: Request) -> Response:
        return Response(302, {}, headers={"Location": self.target + request.path})


class WebPage(SimulatedApi):
    """A web server where the API should be: every answer is an HTML page."""

    def handle(self, request: Request) -> Response:
        return Response(
            200, text="<html><body>Cổng dịch vụ công</body></html>", content_type="text/html"
        )


# -- connectors over it, one pagination style each ------------------------------------------
class _Items(HttpConnector):
    mapping_file = "tests/connectors/test_http.py"
    auth = ApiKey(header="X-Key")
    records_path = "items"
    id_field = "id"
    updated_at_field = "changed"
    updated_since_param = "since"
    count_endpoint = "/count"
    count_from_param = "from"
    count_to_param = "to"

    def to_canonical(self, raw: RawRecord) -> DossierRecord:
        changed = self.parse_time(raw.payload["changed"])
        fields = {
            "source_system": self.source,
            "source_id": raw.source_id,
            "dossier_code": f"ITEM-{raw.source_id}",
            "procedure_code": "1.000123",
            "agency_code": "000.00.06.H56",
            "channel": Channel.ONLINE,
            "status": Status.ACCEPTED,
            "received_at": changed,
            "source_updated_at": changed,
        }
        return self.build(fields, [])


class ByOffset(_Items):
    pagination = Offset()
    records_endpoint = "/offset"


class ByPage(_Items):
    pagination = PageNumber(page_param="page", size_param="size")
    records_endpoint = "/page"


class ByCursor(_Items):
    pagination = NextCursor(next_cursor_path="next")
    records_endpoint = "/cursor"


class ByLinkInBody(_Items):
    pagination = NextLink(next_link_path="links.next")
    records_endpoint = "/link"


class ByLinkHeader(_Items):
    pagination = NextLink()
    records_endpoint = "/link-header"


STYLES: list[type[_Items]] = [ByOffset, ByPage, ByCursor, ByLinkInBody, ByLinkHeader]
# Tiny backoff; a read timeout long enough that only injected timeouts ever fire, so the
# request counts asserted below hold on a slow machine too.
FAST: dict[str, Any] = {
    "connect_timeout": 0.5,
    "read_timeout": 5.0,
    "max_attempts": 4,
    "backoff_initial": 0.001,
    "backoff_max": 0.01,
}


def make(cls: type[_Items], url: str, *, batch_size: int = 10, **settings: Any) -> _Items:
    options = {"base_url": url, "api_key": KEY, **FAST, **settings}
    return cls(context_for("catalogue", options, batch_size=batch_size))


@pytest.fixture
def catalogue() -> Iterator[Catalogue]:
    with Catalogue(items=60, tied=25) as api:
        yield api


def oks(api: SimulatedApi, path: str) -> list[dict[str, str]]:
    return [s.query for s in api.served() if s.path == path and s.status == 200]


# -- paging ---------------------------------------------------------------------------------
@pytest.mark.parametrize("style", STYLES, ids=lambda c: c.__name__)
def test_every_pagination_style_reads_each_record_once_and_resumes_without_loss(
    catalogue: Catalogue, style: type[_Items]
) -> None:
    connector = make(style, catalogue.url, batch_size=10)
    reading = read_bounded(connector)
    # 25 items share one change time, so pages cross ties; every item comes exactly once.
    assert sorted(reading.ids) == [f"{n:04d}" for n in range(1, 61)]  # type: ignore[type-var]
    assert all(len(batch.records) <= 10 for batch in reading.batches)
    small = check_pagination(connector, small_batch_size=4)
    check_resume(make(style, catalogue.url, batch_size=4), small)
    # From the last cursor of an unchanged source nothing comes back.
    assert read_bounded(connector, reading.cursor).records == []


@pytest.mark.parametrize("style", STYLES, ids=lambda c: c.__name__)
def test_an_incremental_read_returns_exactly_the_changed_records(
    catalogue: Catalogue, style: type[_Items]
) -> None:
    connector = make(style, catalogue.url, batch_size=7)
    before = read_bounded(connector)
    moved = ["0003", "0019", "0042"]
    catalogue.move(moved)
    after = read_bounded(connector, before.cursor)
    assert after.ids == moved


@pytest.mark.parametrize("style", [ByOffset, ByPage], ids=lambda c: c.__name__)
def test_page_and_offset_reads_lose_nothing_when_records_move_between_pages(
    style: type[_Items], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="connectors.http")
    with Catalogue(items=80, tied=40) as api:
        pages: list[dict[str, str]] = []
        # More than a page of items read already, so the shift outgrows any page's slack.
        moved = [f"{n:04d}" for n in range(2, 17)] + ["0062"]

        def live_changes(request: Request, status: int) -> None:
            if request.path == style.records_endpoint and status == 200:
                pages.append(request.query)
                if len(pages) == 2:  # items already read move to the end
                    api.move(moved[:-1])
                if len(pages) == 4:  # and one not read yet
                    api.move(moved[-1:])

        api.after_response = live_changes
        reading = read_bounded(make(style, api.url, batch_size=10))
        final = api.current()
    seen = Counter(reading.ids)
    assert set(seen) == set(final)
    assert all(seen[ident] == 1 for ident in set(final) - set(moved))
    # Each moved item came back with its new change time: the read ends with every latest version.
    last_version = {r.source_id: r.payload["changed"] for r in reading.records}
    assert last_version == final
    assert len(pages) >= 5  # the moves happened mid-read, not after it
    assert "records moved during the read; stepping back" in caplog.text  # and were noticed


def test_the_moving_records_scenario_does_lose_records_with_plain_offsets() -> None:
    # The same scenario read naively (offset += limit) skips records: the test above can fail.
    with Catalogue(items=80, tied=40) as api:
        served = 0

        def live_changes(request: Request, status: int) -> None:
            nonlocal served
            served += 1
            if served == 2:
                api.move(["0003", "0005", "0007"])

        api.after_response = live_changes
        seen: list[str] = []
        offset = 0
        while True:
            page = requests.get(
                f"{api.url}/offset",
                params={"offset": offset, "limit": 10},
                headers={"X-Key": KEY},
                timeout=5,
            ).json()["items"]
            seen += [item["id"] for item in page]
            if len(page) < 10:
                break
            offset += 10
        final = api.current()
    assert set(final) - set(seen), "plain offsets should have skipped the shifted items"


def test_an_api_that_does_not_keep_its_order_is_refused(catalogue: Catalogue) -> None:
    catalogue.unordered = True
    with pytest.raises(FatalSourceError, match=r"does not order records by \(changed, id\)"):
        read_bounded_raw(make(ByOffset, catalogue.url))


def read_bounded_raw(connector: Connector) -> list[RawRecord]:
    return [record for batch in connector.read(None) for record in batch.records]


def test_a_next_link_to_another_address_is_not_followed() -> None:
    with Catalogue(items=30) as api, Catalogue(items=30) as elsewhere:

        @dataclass(frozen=True)
        class LinkElsewhere(NextLink):
            """The API's next link, moved to another address."""

            def continuation(self, answer: JsonResponse) -> tuple[Any, str | None]:
                found, path = super().continuation(answer)
                return (None if found is None else elsewhere.url + found), path

        class Foreign(ByLinkInBody):
            pagination = LinkElsewhere(next_link_path="links.next")

        with pytest.raises(FatalSourceError, match="not the API's own address") as failed:
            read_bounded_raw(make(Foreign, api.url))
        assert elsewhere.served() == []
        assert KEY not in str(failed.value)


# -- retries --------------------------------------------------------------------------------
def test_server_errors_are_retried_until_an_answer_comes() -> None:
    faults = Faults(script={1: "server_error", 2: "server_error"})
    with Catalogue(items=15, faults=faults) as api:
        reading = read_bounded(make(ByOffset, api.url, batch_size=10))
        statuses = [s.status for s in api.served()]
    assert len(reading.records) == 15
    assert statuses[:2] == [502, 503] and statuses[2:] == [200, 200]


def test_retries_are_bounded_and_end_in_a_retriable_error() -> None:
    with Catalogue(items=15, faults=Faults(server_error=1.0)) as api:
        started = time.monotonic()
        with pytest.raises(
            RetriableSourceError, match=r"failed 4 times, last: answered 50\d"
        ) as failed:
            read_bounded_raw(make(ByOffset, api.url, max_attempts=4))
        elapsed = time.monotonic() - started
        assert len(api.served()) == 4
    assert failed.value.response is not None and failed.value.response.status_code >= 500
    assert elapsed < 2


def test_retry_after_is_waited_for() -> None:
    with Catalogue(items=5, faults=Faults(script={1: "rate_limit"}, retry_after=1)) as api:
        started = time.monotonic()
        assert len(read_bounded_raw(make(ByOffset, api.url))) == 5
        elapsed = time.monotonic() - started
        assert [s.status for s in api.served()] == [429, 200]
    # The backoff alone would wait at most 0.001 s: the second came because of Retry-After.
    assert 1.0 <= elapsed < 3.0


def test_a_retry_after_beyond_the_limit_gives_up_at_once() -> None:
    with Catalogue(items=5, faults=Faults(rate_limit=1.0, retry_after=3600)) as api:
        started = time.monotonic()
        with pytest.raises(RetriableSourceError, match="asking to wait 3600 s"):
            read_bounded_raw(make(ByOffset, api.url, max_retry_after=10))
        assert len(api.served()) == 1
    assert time.monotonic() - started < 1


def test_timeouts_and_dropped_connections_are_retried() -> None:
    faults = Faults(script={1: "timeout", 2: "drop"}, hang=2.0)
    with Catalogue(items=5, faults=faults) as api:
        records = read_bounded_raw(make(ByOffset, api.url, read_timeout=0.5))
        served = [(s.fault, s.status) for s in api.served()]
    assert len(records) == 5
    assert served == [("timeout", None), ("drop", None), (None, 200)]


# -- errors that stop -----------------------------------------------------------------------
def test_a_wrong_api_key_is_fatal_and_names_the_setting(catalogue: Catalogue) -> None:
    wrong = "wrong-key-" + "w" * 20
    connector = make(ByOffset, catalogue.url, api_key=wrong)
    with pytest.raises(FatalSourceError) as failed:
        connector.check()
    message = str(failed.value)
    assert "source 'catalogue'" in message and "'api_key'" in message and "401" in message
    assert wrong not in message and KEY not in message
    assert len(catalogue.served()) == 1  # a refused credential is not retried


def test_a_refused_connection_is_fatal_and_names_base_url() -> None:
    with Catalogue(items=1) as gone:
        url = gone.url
    started = time.monotonic()
    with pytest.raises(FatalSourceError) as failed:
        make(ByOffset, url, max_attempts=3).check()
    message = str(failed.value)
    assert "connection refused" in message and "(3 attempts)" in message
    assert "check the 'base_url' setting" in message and KEY not in message
    assert time.monotonic() - started < 2


def test_an_html_answer_is_fatal_and_names_base_url() -> None:
    with (
        WebPage() as page,
        pytest.raises(
            FatalSourceError, match=r"answered text/html, not JSON; check the 'base_url' setting"
        ),
    ):
        make(ByPage, page.url).count(None)


def test_a_redirect_is_not_followed_so_the_key_stays_home() -> None:
    with Catalogue(items=5) as elsewhere, Redirecting(elsewhere.url) as api:
        with pytest.raises(FatalSourceError, match=r"redirects \(302\) to .*'base_url' setting"):
            make(ByOffset, api.url).check()
        assert elsewhere.served() == []


def test_settings_refuse_credentials_or_queries_in_the_url() -> None:
    for url in (f"https://user:{KEY}@api.example.vn", f"https://api.example.vn/?key={KEY}"):
        with pytest.raises(ConfigError, match="setting 'base_url'") as failed:
            make(ByOffset, url)
        assert KEY not in str(failed.value)
    with pytest.raises(ConfigError, match="setting 'api_key'"):
        make(ByOffset, "https://api.example.vn", api_key="  ")


def test_the_key_never_shows_in_logs_urls_or_reprs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # urllib3 logs every request line at DEBUG
    faults = Faults(server_error=0.3, rate_limit=0.2, retry_after=0, seed=3)
    with Catalogue(items=40, faults=faults) as api:
        connector = make(ByCursor, api.url, max_attempts=10)
        assert len(read_bounded_raw(connector)) == 40
        queries = " ".join(json.dumps(s.query) for s in api.served())
    assert "retry" in caplog.text and "GET /cursor" in caplog.text  # logging did happen
    assert KEY not in caplog.text
    assert KEY not in queries
    assert KEY not in repr(vars(connector)) and KEY not in repr(connector.settings)


class LargePages(ByOffset):
    """An API serving pages larger than the batch size: batches must still fit."""

    max_page_size: ClassVar[int] = 50


def test_batches_never_exceed_the_batch_size(catalogue: Catalogue) -> None:
    reading = read_bounded(make(LargePages, catalogue.url, batch_size=3, page_size=50))
    assert len(reading.records) == 60 and max(len(b.records) for b in reading.batches) == 3


# -- implausible change times ---------------------------------------------------------------
@pytest.mark.parametrize("style", STYLES, ids=lambda c: c.__name__)
def test_records_changed_after_a_year_9999_record_are_all_applied(
    style: type[_Items], sqlite_registry: Engine
) -> None:
    with Catalogue(items=150) as api:
        api.redate(["0001"], "9999-12-31T00:00:00+07:00")
        first = sync_source(sqlite_registry, make(style, api.url))
        assert (first.inserted, first.quarantined) == (149, 1)
        with sqlite_registry.connect() as conn:
            held = conn.execute(select(quarantine.c.source_id, quarantine.c.reason)).all()
            cursor = conn.execute(select(sync_state.c.cursor)).scalar_one()
        # 100 records change after the 9999 one was read: every one of them is applied.
        moved = [f"{n:04d}" for n in range(2, 102)]
        api.redate(moved, (START + timedelta(days=1)).isoformat(), name="renamed")
        second = sync_source(sqlite_registry, make(style, api.url))
    assert second.updated == 100
    with sqlite_registry.connect() as conn:
        stored = dict(conn.execute(select(dossier.c.source_id, dossier.c.source_updated_at)).all())
    assert all(stored[i].replace(tzinfo=UTC) == START + timedelta(days=1) for i in moved)
    assert [tuple(entry) for entry in held] == [("0001", "source_updated_at:in_future")]
    assert not cursor["updated_at"].startswith("9999")


def test_a_full_refresh_applies_a_change_the_api_dated_backwards(sqlite_registry: Engine) -> None:
    with Catalogue(items=20) as api:
        sync_source(sqlite_registry, make(ByCursor, api.url))
        earlier = START - timedelta(days=2)
        api.redate(["0007"], earlier.isoformat())
        assert sync_source(sqlite_registry, make(ByCursor, api.url)).updated == 0
        refreshed = sync_source(sqlite_registry, make(ByCursor, api.url), full_refresh=True)
    assert refreshed.updated == 1
    with sqlite_registry.connect() as conn:
        query = select(dossier.c.source_updated_at).where(dossier.c.source_id == "0007")
        assert conn.execute(query).scalar_one() == earlier


# -- page size cap and request deadline ------------------------------------------------------
class RawServer:
    """A bare HTTP server on 127.0.0.1 whose one answer is written by `answer(handler)`; it
    counts the body bytes the client actually took before hanging up."""

    def __init__(self, answer: Any) -> None:
        self.sent = 0
        self.finished = False
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                try:
                    answer(self, owner)
                    owner.finished = True
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *_: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def write(self, handler: http.server.BaseHTTPRequestHandler, data: bytes) -> None:
        handler.wfile.write(data)
        handler.wfile.flush()
        self.sent += len(data)

    def __enter__(self) -> RawServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _headers(handler: Any, **headers: str) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    for name, value in headers.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.end_headers()


MIB = 1024 * 1024


def big_declared(handler: Any, server: RawServer) -> None:
    body = b'{"items": [], "pad": "' + b"x" * (8 * MIB) + b'"}'
    _headers(handler, Content_Length=str(len(body)))
    server.write(handler, body)


def big_undeclared(handler: Any, server: RawServer) -> None:
    """64 MiB without a Content-Length (the connection's end ends it): only streaming stops it."""
    handler.close_connection = True
    _headers(handler)
    server.write(handler, b'{"items": [], "pad": "')
    for _ in range(64):
        server.write(handler, b"x" * MIB)
    server.write(handler, b'"}')


def gzip_bomb(handler: Any, server: RawServer) -> None:
    """A few kilobytes on the wire, 16 MiB once decoded."""
    body = gzip.compress(b'{"items": [], "pad": "' + b"x" * (16 * MIB) + b'"}')
    _headers(handler, Content_Length=str(len(body)), Content_Encoding="gzip")
    server.write(handler, body)


def trickle(handler: Any, server: RawServer) -> None:
    """A valid page, one byte every 50 ms: each read is quick, the whole is not."""
    body = json.dumps({"items": [], "pad": "x" * 200}).encode()
    _headers(handler, Content_Length=str(len(body)))
    for byte in body:
        server.write(handler, bytes([byte]))
        time.sleep(0.05)


@pytest.mark.parametrize("answer", [big_declared, big_undeclared, gzip_bomb])
def test_a_page_larger_than_max_page_bytes_fails_the_run_naming_the_setting(answer: Any) -> None:
    with RawServer(answer) as server:
        connector = make(ByOffset, server.url, max_page_bytes=MIB)
        with pytest.raises(FatalSourceError, match=r"more than max_page_bytes \(1,048,576 bytes\)"):
            read_bounded_raw(connector)
        connector.close()
    if answer is not gzip_bomb:  # (a bomb is small on the wire: its decoded size counts)
        assert not server.finished  # the body was not read to its end
        assert server.sent < 48 * MIB  # at most what the socket buffers held


def test_a_trickling_source_fails_the_run_at_request_deadline_naming_the_setting() -> None:
    with RawServer(trickle) as server:
        connector = make(ByOffset, server.url, read_timeout=5.0, request_deadline=1.0)
        with pytest.raises(RetriableSourceError, match=r"within request_deadline \(1 s"):
            read_bounded_raw(connector)
        connector.close()
        assert server.sent < 200  # the rest of the page was never waited for


def test_a_saved_cursor_left_in_year_9999_is_ignored_and_the_api_read_resumes_from_the_last_sane_one(
    sqlite_registry: Engine,
) -> None:
    with Catalogue(items=30) as api:
        sync_source(sqlite_registry, make(ByCursor, api.url))
        with sqlite_registry.begin() as conn:  # what the old code saved after a 9999 record
            conn.execute(
                sync_state.update().values(
                    cursor={"updated_at": "9999-12-31T00:00:00+07:00", "id": "0001"}
                )
            )
        api.redate(["0003", "0004"], (START + timedelta(days=1)).isoformat())
        again = sync_source(sqlite_registry, make(ByCursor, api.url))
    assert (again.rows_read, again.updated) == (2, 2)  # read on from the last sane cursor
