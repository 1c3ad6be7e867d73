"""A small, reusable JSON API server for the reference systems, with seeded fault injection.

`SimulatedApi` serves one simulated sector API from a `ThreadingHTTPServer` on 127.0.0.1 (port
0 picks a free port; `url` gives the actual one) in a background thread, as a context manager:

    with SocialInsuranceApi(rows=500, seed=1, faults=Faults(server_error=0.2)) as api:
        connector = ...(base_url=api.url)

A subclass implements `handle(request) -> Response`; this module does the HTTP, the faults
and the request log.

Faults (`Faults`) model what a real API on a real network does: 5xx answers, 429 with
`Retry-After`, requests held past the client's timeout, slow answers and connections closed
without any response. Which request gets which fault is drawn from a seeded generator in
arrival order, so a test with one client is repeatable; `Faults.script` pins faults to given
request numbers. A faulted request never reaches `handle`, so it changes no data: it simply
fails and the client retries.

Every request is logged (`served()`, the latest `LOG_LIMIT`): method, path, query, the
status answered (None when none was) and the fault injected, so tests can assert what the
server actually saw. Request bodies and headers, where credentials travel, are not kept.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import threading
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

log = logging.getLogger(__name__)

SortKey = tuple[datetime, str]  # (last change, id)

# Loopback only: the simulators hold generated personal data. A container of the compose
# stack, reachable only on its private network, sets DOSSIERHUB_SIMULATOR_HOST=0.0.0.0.
HOST = os.environ.get("DOSSIERHUB_SIMULATOR_HOST", "127.0.0.1")
LOG_LIMIT = 100_000  # requests kept in the log (the latest)

# Fault kinds, in the order their shares are laid out on [0, 1).
SERVER_ERROR = "server_error"
RATE_LIMIT = "rate_limit"
TIMEOUT = "timeout"
DROP = "drop"
SLOW = "slow"
FAULT_KINDS = (SERVER_ERROR, RATE_LIMIT, TIMEOUT, DROP, SLOW)


@dataclass(frozen=True)
class Faults:
    """Shares of requests that fail, and how; all zero is a well-behaved server.

    * `server_error`: answered 500, 502, 503 or 504 (502/503 as a gateway's HTML page);
    * `rate_limit`: answered 429 with `Retry-After: <retry_after>` seconds;
    * `timeout`: held `hang` seconds (longer than the client waits), then closed unanswered;
    * `drop`: the connection is closed at once without any response;
    * `slow`: answered normally after `slow_delay` seconds (shorter than the client waits).

    `script` maps request numbers (1-based, in arrival order) to a fault kind, or to None for
    "no fault", overriding the draw for those requests.
    """

    server_error: float = 0.0
    rate_limit: float = 0.0
    timeout: float = 0.0
    drop: float = 0.0
    slow: float = 0.0
    retry_after: int = 1
    hang: float = 35.0
    slow_delay: float = 0.2
    seed: int = 0
    script: Mapping[int, str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        shares = [getattr(self, kind) for kind in FAULT_KINDS]
        if any(not 0.0 <= share <= 1.0 for share in shares) or sum(shares) > 1.0:
            raise ValueError(f"fault shares must be within 0..1 and sum to at most 1: {shares}")
        unknown = {kind for kind in self.script.values() if kind not in (*FAULT_KINDS, None)}
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {FAULT_KINDS}")
        if self.retry_after < 0:
            raise ValueError("retry_after must be >= 0 seconds")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]  # the first value of each parameter
    headers: Message
    body: bytes

    def header(self, name: str) -> str | None:
        value = self.headers.get(name)
        return None if value is None else str(value)

    def form(self) -> dict[str, str]:
        """An application/x-www-form-urlencoded body."""
        return dict(parse_qsl(self.body.decode("utf-8", errors="replace")))


@dataclass
class Response:
    status: int = 200
    body: Any = None  # JSON-serialisable; sent as application/json
    text: str | None = None  # sent instead of `body` when set, as `content_type`
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


def error(status: int, message: str, **extra: Any) -> Response:
    return Response(status, {"error": message, **extra})


@dataclass(frozen=True)
class Served:
    """One request as the server saw it."""

    number: int
    method: str
    path: str
    query: dict[str, str]
    status: int | None  # None: no answer was sent (dropped, or held past the timeout)
    fault: str | None


_GATEWAY_PAGE = "<html><head><title>{0}</title></head><body><h1>{0}</h1></body></html>"


class SimulatedApi:
    """Base of the simulated sector APIs: HTTP on 127.0.0.1, faults and a request log."""

    name = "api"

    def __init__(self, *, faults: Faults | None = None, port: int = 0) -> None:
        self.faults = faults or Faults()
        self._port = port
        self._rng = random.Random(f"faults-{self.faults.seed}")
        self._lock = threading.Lock()  # request numbering, fault draws and the log
        # Bounded, so a simulator serving for days does not grow without end.
        self._log: deque[Served] = deque(maxlen=LOG_LIMIT)
        self._arrived = 0
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        # Called after a request is answered: (request, status). Tests use it to change the
        # data between two pages of a read, as a live system would.
        self.after_response: Callable[[Request, int], None] | None = None

    # -- what a subclass provides -------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        raise NotImplementedError

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> Self:
        if self._server is not None:
            return self
        handler = type("Handler", (_Handler,), {"api": self})
        server = ThreadingHTTPServer((HOST, self._port), handler)
        server.daemon_threads = True  # a request held by a timeout fault never blocks exit
        self._server = server
        self._stopping.clear()
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{self.name}-http",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # releases requests held by timeout faults
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def run_until_interrupted(self) -> None:
        """Serve in the foreground until Ctrl-C (for `dossierhub simulate ...`)."""
        self.start()
        try:
            while not self._stopping.wait(3600):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{self.name} simulator is not running; call start() first")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    # -- the log --------------------------------------------------------------------------------
    def served(self) -> list[Served]:
        with self._lock:
            return list(self._log)

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    # -- serving --------------------------------------------------------------------------------
    def _next(self) -> tuple[int, str | None]:
        with self._lock:
            self._arrived += 1
            number = self._arrived
            draw = self._rng.random()  # drawn for every request, so scripts shift nothing
            if number in self.faults.script:
                return number, self.faults.script[number]
            edge = 0.0
            for kind in FAULT_KINDS:
                edge += getattr(self.faults, kind)
                if draw < edge:
                    return number, kind
            return number, None

    def _record(self, number: int, request: Request, status: int | None, fault: str | None) -> None:
        served = Served(number, request.method, request.path, request.query, status, fault)
        with self._lock:
            self._log.append(served)

    def _serve(self, handler: _Handler) -> None:
        split = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length > 0 else b""
        request = Request(
            method=handler.command,
            path=split.path,
            query=dict(parse_qsl(split.query, keep_blank_values=True)),
            headers=handler.headers,
            body=body,
        )
        number, fault = self._next()
        faults = self.faults
        if fault in (DROP, TIMEOUT):
            self._record(number, request, None, fault)  # no answer will ever be sent
            if fault == TIMEOUT:
                self._stopping.wait(faults.hang)
            handler.close_connection = True
            with contextlib.suppress(OSError):
                handler.connection.shutdown(2)  # SHUT_RDWR: the client sees no response at all
            return
        if fault == SLOW:
            self._stopping.wait(faults.slow_delay)
        if fault == SERVER_ERROR:
            status = (500, 502, 503, 504)[number % 4]
            if status in (502, 503):  # a gateway's error page, not the API's JSON
                title = f"{status} {'Bad Gateway' if status == 502 else 'Service Unavailable'}"
                response = Response(
                    status, text=_GATEWAY_PAGE.format(title), content_type="text/html"
                )
            else:
                response = error(status, "injected server error")
        elif fault == RATE_LIMIT:
            response = error(429, "too many requests")
            response.headers["Retry-After"] = str(faults.retry_after)
        else:
            try:
                response = self.handle(request)
            except Exception:  # a simulator bug answers 500 and shows in the test log
                log.exception("%s simulator failed on %s %s", self.name, request.method, split.path)
                response = error(500, "simulator error")
            if self.after_response is not None:
                # Before the answer leaves: the client cannot ask for the next page until
                # the change is made, so "between two pages" is exact.
                try:
                    self.after_response(request, response.status)
                except Exception:  # a broken test hook shows in the log, the answer still goes
                    log.exception("%s simulator: after_response hook failed", self.name)
        _write(handler, response)
        self._record(number, request, response.status, fault)


def _write(handler: BaseHTTPRequestHandler, response: Response) -> None:
    if response.text is not None:
        payload = response.text.encode("utf-8")
        content_type = response.content_type
    else:
        payload = json.dumps(response.body, ensure_ascii=False).encode("utf-8")
        content_type = "application/json; charset=utf-8"
    handler.send_response(response.status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(payload)))
    for name, value in response.headers.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(payload)


class _Handler(BaseHTTPRequestHandler):
    api: SimulatedApi
    protocol_version = "HTTP/1.1"  # keep-alive, as a client's session expects
    # One write per answer, sent at once: headers and body in separate small writes would
    # meet the client's delayed ACK (about 40 ms a request on a kept-alive connection).
    wbufsize = -1
    disable_nagle_algorithm = True
    server_version = "DossierHubSimulator"
    sys_version = ""

    def do_GET(self) -> None:
        self.api._serve(self)

    def do_POST(self) -> None:
        self.api._serve(self)

    def do_PUT(self) -> None:
        self.api._serve(self)

    def do_DELETE(self) -> None:
        self.api._serve(self)

    def log_message(self, format: str, *args: Any) -> None:  # the stdlib names it `format`
        # Paths and statuses only: no header (where credentials travel) is ever logged.
        log.debug("%s %s", self.api.name, format % args)


class RecordSet:
    """Records in `(last change, id)` order: the order a sector API pages them in.

    A simulator keeps its dossiers here and answers a page by position among the records
    changed since a time (page/offset APIs) or by key after a record (cursor APIs). Callers
    hold their own lock; `refresh` re-sorts after records changed in place.
    """

    def __init__(
        self, records: Iterable[dict[str, Any]], key: Callable[[dict[str, Any]], SortKey]
    ) -> None:
        self._key = key
        self._records = list(records)
        self._keys: list[SortKey] = []
        self.refresh()

    def refresh(self) -> None:
        self._records.sort(key=self._key)
        self._keys = [self._key(record) for record in self._records]

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._records)

    def first_since(self, since: datetime | None) -> int:
        """Index of the first record changed at or after `since` (inclusive)."""
        return 0 if since is None else bisect_left(self._keys, (since, ""))

    def window(self, since: datetime | None, start: int, size: int) -> list[dict[str, Any]]:
        """Copies of records `start` .. `start + size` among those changed since `since`."""
        first = self.first_since(since) + start
        return [dict(record) for record in self._records[first : first + size]]

    def after(self, key: SortKey, size: int) -> list[dict[str, Any]]:
        """Copies of the `size` records that come after `key`."""
        first = bisect_right(self._keys, key)
        return [dict(record) for record in self._records[first : first + size]]

    def more_after(self, key: SortKey) -> bool:
        return bisect_right(self._keys, key) < len(self._keys)

    def latest(self) -> datetime | None:
        return self._keys[-1][0] if self._keys else None
