"""HTTP transport: reads any sector REST API on `requests`, with retries, auth and pagination.

A connector for one REST system subclasses `HttpConnector` and only declares its endpoints,
its auth (`ApiKey` or `OAuth2ClientCredentials`), its pagination (`PageNumber`, `Offset`,
`NextCursor` or `NextLink`), where a response holds its records, and which fields are the id
and the last-change time; then it writes one mapping function. The rest is done here, once.

**Requests.** One `requests.Session` per connector, connect and read timeouts, redirects not
followed (a credential never travels to another address). A 429, a 5xx (but 501 and 505), a
timeout, a broken connection or a truncated body is retried up to `max_attempts` times in
all, waiting what `Retry-After` says (seconds or an HTTP date; a wait longer than
`max_retry_after` gives up at once) or else an exponential backoff with full jitter,
uniform(0, min(backoff_max, backoff_initial * 2**n)). Any other answer is final: a wrong
credential, a wrong address (404, HTML instead of JSON, a redirect, a connection refused on
every attempt) raises `FatalSourceError` naming the source and the setting to fix; retries
that run out raise `RetriableSourceError`. A body is streamed: one larger than
`max_page_bytes` (decoded) is fatal, and a request still unfinished after `request_deadline`
seconds (a source trickling bytes, each within `read_timeout`) fails the run as retriable.

**Pages.** A page is JSON in UTF-8 (NaN and Infinity are kept as text) with a list of objects
at `records_path`, each with a usable id and a readable last-change time, in the API's order
and no more than asked for; any other page is fatal, since no cursor could step past it. A
page repeating an id delivers only its last (newest) version. Paging that does not move on —
the same continuation twice, a page ending no further than the one before, or a page with
nothing past a record its position should hold — is fatal rather than read forever.

**Auth.** An API key travels in a header. OAuth2 client credentials are posted in the form
body of the token endpoint; the token is kept until shortly before it expires, and fetched
again when it has expired or when the API answers 401 — once per 401, then the same request
is sent again, so no page is lost or repeated; a fresh token refused again is fatal. Secrets
are `SecretStr` settings, sent only in headers or a POST body: never in a URL, a message, a
log line or a `repr`.

**Incremental reads.** The API filters by last change (`updated_since`, inclusive) and
orders by (last change, id); the transport checks the order on every page. The cursor after
each batch is the key of its last record, `{"updated_at": <the API's own time text>, "id":
...}`. A resumed read asks for the records changed since that time and drops those at or
before the key, so records sharing one time across a batch boundary are neither lost nor
repeated; with a look-back window it starts that much earlier and keeps everything (upserts
make the overlap harmless).

* `NextCursor` / `NextLink`: the server's continuation is followed; it is a keyset, stable
  while the data changes.
* `PageNumber` / `Offset` count positions in data that may change during the read (a record
  that changes jumps to the end, and everything after it shifts back one place). So every
  request starts again from the last record seen: `updated_since` = its time, at its
  position among the records sharing that time (the cursor's `position`), and the page must
  start at or before that record. When it does not, records before it moved: the read steps
  back a page and looks again, dropping what it already delivered. Positions only count
  records sharing one last-change time, so a shift is rare and costs a page. Nothing is
  skipped; a record changed during the read comes again later, newer.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from requests.auth import AuthBase

from connectors.base import (
    Batch,
    Connector,
    ConnectorContext,
    Cursor,
    Health,
    Period,
    RawRecord,
    as_utc,
)
from connectors.errors import FatalSourceError, Reason, RetriableSourceError
from models.localtime import LOCAL

log = logging.getLogger(__name__)

# Answers worth asking again; 501 and 505 will not change, other 4xx are final.
RETRIABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


# -- settings -------------------------------------------------------------------------------
def _http_url(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{name} must be an http(s) URL like https://dvc.example.gov.vn/api")
    if parts.username or parts.password:
        raise ValueError(f"{name} must not carry credentials; they have settings of their own")
    if parts.query or parts.fragment:
        raise ValueError(f"{name} must not carry a query string or fragment")
    return value.rstrip("/")


def _secret(value: SecretStr) -> SecretStr:
    if not value.get_secret_value().strip():
        raise ValueError("must not be empty")
    return value


class HttpSettings(BaseModel):
    """Settings of every REST source; tests set tiny timeouts and backoff delays."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str
    connect_timeout: float = Field(default=5.0, gt=0)  # seconds to open a connection
    read_timeout: float = Field(default=30.0, gt=0)  # seconds to wait for each answer
    max_attempts: int = Field(default=5, ge=1, le=20)  # tries per request, the first included
    backoff_initial: float = Field(default=0.5, ge=0)  # seconds; doubles on each retry
    backoff_max: float = Field(default=30.0, ge=0)
    max_retry_after: float = Field(default=120.0, ge=0)  # longest Retry-After waited for
    page_size: int | None = Field(default=None, ge=2)  # default: the batch size
    # The most bytes one answer may hold (decoded), and the wall-clock seconds one request may
    # take, body included: a huge page or a source trickling bytes must not hold a sync.
    max_page_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    request_deadline: float = Field(default=120.0, gt=0)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return _http_url(value, "base_url") or value


class ApiKeySettings(HttpSettings):
    api_key: SecretStr

    _api_key = field_validator("api_key")(_secret)


class OAuth2Settings(HttpSettings):
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    token_url: str | None = None  # default: base_url + the connector's token path
    scope: str | None = None

    _client_secret = field_validator("client_secret")(_secret)

    @field_validator("token_url")
    @classmethod
    def _token_url(cls, value: str | None) -> str | None:
        return _http_url(value, "token_url")


# -- declarations ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ApiKey:
    """An API key sent in a request header (setting `api_key`)."""

    header: str = "X-API-Key"
    settings: ClassVar[type[HttpSettings]] = ApiKeySettings
    secret_setting: ClassVar[str] = "api_key"


@dataclass(frozen=True)
class OAuth2ClientCredentials:
    """OAuth2 client credentials (settings `client_id`, `client_secret`, optional `scope`)."""

    token_path: str = "/oauth/token"  # under base_url, unless the `token_url` setting is given
    settings: ClassVar[type[HttpSettings]] = OAuth2Settings
    secret_setting: ClassVar[str] = "client_secret"


Auth = ApiKey | OAuth2ClientCredentials


@dataclass(frozen=True)
class PageNumber:
    """Pages by number: `page_param` (from `first_page`) and `size_param`."""

    page_param: str = "page"
    size_param: str = "page_size"
    first_page: int = 1


@dataclass(frozen=True)
class Offset:
    """Pages by position: `offset_param` (from 0) and `limit_param`."""

    offset_param: str = "offset"
    limit_param: str = "limit"


@dataclass(frozen=True)
class NextCursor:
    """The body names the next page's cursor at `next_cursor_path` (absent or null: done)."""

    cursor_param: str = "cursor"
    size_param: str = "limit"
    next_cursor_path: str = "next_cursor"


@dataclass(frozen=True)
class NextLink:
    """The next page's URL: in the body at `next_link_path`, or a `Link: <...>; rel="next"`."""

    size_param: str = "limit"
    next_link_path: str | None = None


Pagination = PageNumber | Offset | NextCursor | NextLink


@dataclass(frozen=True, order=True)
class _Mark:
    """A record's place in the API's order: (last change, id), and the time as the API wrote it."""

    at: datetime
    id: str
    text: str = field(compare=False)


class _Header(AuthBase):
    """Sets one header on each request; its value never shows in a repr."""

    def __init__(self, name: str, value: str) -> None:
        self._name, self._value = name, value

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers[self._name] = self._value
        return request

    def __repr__(self) -> str:
        return f"<header {self._name}: **********>"


@dataclass
class _Answer:
    body: Any
    response: requests.Response


class HttpConnector(Connector[HttpSettings]):
    """Declarations a REST connector makes; requests, auth, paging and counting are done here.

    Subclasses declare `auth`, `pagination`, `records_endpoint`, `records_path`, `id_field`,
    `updated_at_field`, `updated_since_param`, the count endpoint and its parameters, and
    implement `to_canonical`. Their `Settings` follow from `auth` (`ApiKeySettings` or
    `OAuth2Settings`) unless they declare their own.
    """

    Settings: ClassVar[type[BaseModel]] = HttpSettings
    full_read_is_current = True  # a full read is the source's current state
    auth: ClassVar[Auth | None] = None
    pagination: ClassVar[Pagination]
    records_endpoint: ClassVar[str]  # path under base_url
    records_path: ClassVar[str] = "data"  # dotted path of the record list in a page
    id_field: ClassVar[str]
    updated_at_field: ClassVar[str]
    updated_since_param: ClassVar[str]
    # The field holding the time of receipt: dates a quarantined record for reconciliation.
    received_field: ClassVar[str | None] = None
    # How the API writes times: a strptime format of naive local times, or None for ISO 8601
    # (naive ISO times are local too).
    time_format: ClassVar[str | None] = None
    time_example: ClassVar[str] = "2026-03-01T08:30:00+07:00"  # shown in rejection reasons
    max_page_size: ClassVar[int] = 100  # the most records the API serves in one page
    count_endpoint: ClassVar[str]
    count_path: ClassVar[str] = "total"
    count_from_param: ClassVar[str]  # first local day of the period, inclusive
    count_to_param: ClassVar[str]  # the day after the period, exclusive
    count_date_format: ClassVar[str] = "%Y-%m-%d"
    # Fields of a JSON error body that say what went wrong (quoted in error messages).
    error_fields: ClassVar[tuple[str, ...]] = ("error", "message", "detail")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        auth = cls.__dict__.get("auth")
        if auth is not None and "Settings" not in cls.__dict__:
            cls.Settings = auth.settings
        if auth is not None and "secret_setting" not in cls.__dict__:
            cls.secret_setting = auth.secret_setting

    def __init__(self, context: ConnectorContext) -> None:
        super().__init__(context)
        settings = self.settings
        self.http: HttpSettings = settings
        self._session = requests.Session()
        self._session.headers.update(
            {"Accept": "application/json", "User-Agent": f"DossierHub ({self.source})"}
        )
        self._jitter = random.Random()
        self._answered = False  # whether the API ever answered (else: a wrong address?)
        self._token: str | None = None
        self._token_expires = 0.0  # monotonic time to fetch a new token from
        self.horizon = context.horizon()

    # -- what a subclass may override -------------------------------------------------------
    def receipt_day(self, payload: dict[str, Any]) -> date | None:
        if self.received_field is None:
            return None
        moment = self.parse_time(payload.get(self.received_field))
        return None if moment is None else moment.astimezone(LOCAL).date()

    def parse_time(self, value: Any) -> datetime | None:
        """A time as the API writes it, timezone-aware (naive times are local); None if not one."""
        if not isinstance(value, str) or not value.strip():
            return None
        try:
            if self.time_format is None:
                moment = datetime.fromisoformat(value.strip())
            else:
                moment = datetime.strptime(value.strip(), self.time_format)
        except ValueError:
            return None
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=LOCAL)

    def format_time(self, moment: datetime) -> str:
        """A time as the API's `updated_since` parameter expects it."""
        if self.time_format is None:
            return moment.isoformat()
        return moment.astimezone(LOCAL).strftime(self.time_format)

    def map_time(
        self,
        row: dict[str, Any],
        native: str,
        canonical: str,
        fields: dict[str, Any],
        problems: list[Reason],
        *,
        required: bool = False,
    ) -> None:
        """Map the API's time `row[native]` to `fields[canonical]`, or say why it cannot."""
        value = row.get(native)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                problems.append(Reason(canonical, "missing", f"{native} is empty"))
            return
        moment = self.parse_time(value)
        if moment is None:
            problems.append(
                Reason(
                    canonical,
                    "invalid_datetime",
                    f"{native} {str(value)[:40]!r} is not a time like {self.time_example}",
                )
            )
        else:
            fields[canonical] = moment

    def updated_at_of(self, raw: RawRecord) -> datetime | None:
        """A raw record's last change at the source (UTC), None when it cannot be read."""
        moment = self.parse_time(raw.payload.get(self.updated_at_field))
        return None if moment is None else as_utc(moment)

    def screen(self, raw: RawRecord) -> list[Reason]:
        moment = self.updated_at_of(raw)
        if moment is None or moment <= self.horizon:
            return []
        return [
            Reason(
                "source_updated_at",
                "in_future",
                f"{self.updated_at_field} {str(raw.payload.get(self.updated_at_field))[:40]!r} "
                "is later than now + future_tolerance_seconds "
                f"({self.context.future_tolerance.total_seconds():g} s): a clock or data error "
                "at the source; the cursor does not move past it",
            )
        ]

    def cursor_time(self, cursor: Cursor) -> datetime | None:
        moment = self.parse_time(cursor.get("updated_at"))
        return None if moment is None else as_utc(moment)

    # -- the contract -------------------------------------------------------------------------
    def check(self) -> Health:
        total = self.count(None)
        return Health(True, f"API at {self.http.base_url} answered: {total} dossiers")

    def count(self, period: Period | None) -> int:
        params: dict[str, Any] = {}
        if period is not None:
            params[self.count_from_param] = period.start.strftime(self.count_date_format)
            params[self.count_to_param] = period.end.strftime(self.count_date_format)
        answer = self._call("GET", self._url(self.count_endpoint), params=params)
        value = _dig(answer.body, self.count_path)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self._fatal(
                f"the count at {self._url(self.count_endpoint)} has no whole number at "
                f"{self.count_path!r} (check the count declarations in {self.mapping_file})"
            )
        return value

    def read(self, cursor: Cursor | None) -> Iterator[Batch]:
        since, mark, position = self._resume(cursor)
        size = min(self.http.page_size or self.context.batch_size, self.max_page_size)
        size = min(size, self.context.batch_size)
        if isinstance(self.pagination, PageNumber | Offset):
            if size < 2:
                raise self._fatal(
                    f"page and offset paging needs pages of at least 2 records, not {size} "
                    "(raise the source's batch_size or the 'page_size' setting)"
                )
            return self._read_by_position(self.pagination, since, mark, position, size)
        return self._read_by_continuation(self.pagination, since, mark, size)

    def close(self) -> None:
        self._session.close()

    # -- reading ----------------------------------------------------------------------------
    def _resume(self, cursor: Cursor | None) -> tuple[str | None, _Mark | None, int]:
        """(updated_since text, the key already delivered, its position) to start from."""
        if cursor is None:
            return None, None, 0
        try:
            text, ident = str(cursor["updated_at"]), str(cursor["id"])
            position = int(cursor.get("position", 0))
        except (KeyError, TypeError, ValueError):
            text, ident, position = "", "", 0
        moment = self.parse_time(text)
        if moment is None:
            raise self._fatal(
                f"the saved cursor {cursor!r} is not one this connector writes; run "
                f"`dossierhub sync {self.source} --full-refresh` to read the source again"
            )
        lookback = self.context.lookback
        if lookback > timedelta(0):
            # Late commits at the source may carry an older time: read the window again.
            return self.format_time(moment - lookback), None, 0
        return text, _Mark(moment, ident, text), max(position, 0)

    def _read_by_position(
        self,
        paging: PageNumber | Offset,
        since: str | None,
        mark: _Mark | None,
        position: int,
        size: int,
    ) -> Iterator[Batch]:
        url = self._url(self.records_endpoint)
        stuck: _Mark | None = None  # the last record of a full page that brought nothing new
        while True:
            params: dict[str, Any] = {}
            if since is not None:
                params[self.updated_since_param] = since
            if isinstance(paging, Offset):
                first, asked = position, size
                params[paging.offset_param], params[paging.limit_param] = first, asked
            else:
                # The page must hold the last record seen (to check nothing shifted) and the
                # one after it (to move on): choose a page size whose page boundary does
                # not fall right after `position`.
                asked = _page_size_around(position, size, self.max_page_size)
                first = position // asked * asked
                params[paging.page_param] = position // asked + paging.first_page
                params[paging.size_param] = asked
            answer = self._call("GET", url, params=params)
            records, marks = self._page(answer, asked)
            if stuck is not None and len(records) == asked and marks[-1] <= stuck:
                # This page holds the position of `stuck` and one after it, and records only
                # ever move back: an API serving no record past it ignores the position asked
                # for, and would be read forever.
                param = paging.offset_param if isinstance(paging, Offset) else paging.page_param
                raise self._fatal(
                    f"{urlsplit(answer.response.url).path} answered no record past "
                    f"{stuck.id!r} for the page after it: it ignores the {param!r} parameter, "
                    f"so the read would never end (check the pagination declared in "
                    f"{self.mapping_file})"
                )
            stuck = None
            if mark is not None and first > 0 and (not marks or marks[0] > mark):
                # Records before the last one seen changed and moved to the end, or it did
                # itself: the page may start past unseen records. Step back and look again.
                log.info(
                    "source %r: records moved during the read; stepping back from %d",
                    self.source,
                    first,
                )
                position = max(0, first - asked)
                continue
            fresh = _fresh(records, marks, mark)
            if fresh:
                since_at = None if since is None else self.parse_time(since)
                for chunk in _chunks(fresh, self.context.batch_size):
                    cursor: Cursor | None = None
                    if (sane := self._last_sane(marks, chunk)) is not None:
                        where = _position_among(marks, sane, first, since_at)
                        last = marks[sane]
                        cursor = {"updated_at": last.text, "id": last.id, "position": where}
                    yield Batch([records[i] for i in chunk], cursor)
                mark = marks[fresh[-1]]
                position = _position_among(marks, fresh[-1], first, since_at)
                since = mark.text
            else:
                position = first + len(records) - 1  # all seen already: move past them
                stuck = marks[-1] if marks else None
            if len(records) < asked:
                return

    def _read_by_continuation(
        self,
        paging: NextCursor | NextLink,
        since: str | None,
        mark: _Mark | None,
        size: int,
    ) -> Iterator[Batch]:
        url = self._url(self.records_endpoint)
        base: dict[str, Any] = {paging.size_param: size}
        if since is not None:
            base[self.updated_since_param] = since
        params: dict[str, Any] | None = base
        previous: str | None = None
        reached: _Mark | None = None  # the last record of the page before
        while True:
            answer = self._call("GET", url, params=params)
            records, marks = self._page(answer, size)
            fresh = _fresh(records, marks, mark)
            for chunk in _chunks(fresh, self.context.batch_size):
                sane = self._last_sane(marks, chunk)
                cursor = (
                    None if sane is None else {"updated_at": marks[sane].text, "id": marks[sane].id}
                )
                yield Batch([records[i] for i in chunk], cursor)
            if fresh:
                mark = marks[fresh[-1]]
            following = self._continuation(paging, answer)
            if not following or not records:
                return
            if following == previous:  # memory stays flat: only the last one is kept
                raise self._fatal(
                    f"the API gave the same continuation {following[:60]!r} twice: its paging "
                    f"does not move on (check the pagination declared in {self.mapping_file})"
                )
            if reached is not None and marks[-1] <= reached:
                # A new continuation each time, but no record past the page before: an API
                # ignoring the continuation would be read forever.
                raise self._fatal(
                    f"{urlsplit(answer.response.url).path} answered a page ending at "
                    f"{marks[-1].id!r}, not past the page before (ending at {reached.id!r}): "
                    f"its paging does not move on (check the pagination declared in "
                    f"{self.mapping_file})"
                )
            previous, reached = following, marks[-1]
            if isinstance(paging, NextCursor):
                params = {**base, paging.cursor_param: following}
            else:
                url, params = self._same_origin(urljoin(answer.response.url, following)), None

    def _last_sane(self, marks: list[_Mark], chunk: list[int]) -> int | None:
        """The chunk's last record whose change time is not past the horizon: a record dated
        in year 9999 must not move the cursor there, or every later change would be skipped."""
        return next((i for i in reversed(chunk) if marks[i].at <= self.horizon), None)

    def _continuation(self, paging: NextCursor | NextLink, answer: _Answer) -> str | None:
        if isinstance(paging, NextCursor):
            path: str | None = paging.next_cursor_path
            value = _dig(answer.body, paging.next_cursor_path)
        else:
            path, value = paging.next_link_path, None
            if paging.next_link_path is not None:
                value = _dig(answer.body, paging.next_link_path)
            if value is None or value == "":
                value = answer.response.links.get("next", {}).get("url")
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            # Sent back as text, an object or a list would ask for a page nobody defined, and
            # an empty one would end the read early, silently.
            raise self._fatal(
                f"{urlsplit(answer.response.url).path} answered a {type(value).__name__} at "
                f"{path!r}, not a cursor or link; check the pagination declared in "
                f"{self.mapping_file}"
            )
        return str(value)

    def _same_origin(self, url: str) -> str:
        mine, theirs = urlsplit(self.http.base_url), urlsplit(url)
        if (mine.scheme, mine.netloc) != (theirs.scheme, theirs.netloc):
            raise self._fatal(
                f"the next-page link points at {theirs.scheme}://{theirs.netloc}, not the "
                "API's own address; credentials are not sent elsewhere (check the "
                "'base_url' setting)"
            )
        return url

    def _page(self, answer: _Answer, asked: int) -> tuple[list[RawRecord], list[_Mark]]:
        """A page's records and their marks, checked against the paging contract."""
        self.horizon = self.context.horizon()
        where = urlsplit(answer.response.url).path
        found = _dig(answer.body, self.records_path)
        if not isinstance(found, list):
            raise self._fatal(
                f"{where} answered JSON without a record list at {self.records_path!r}; check "
                f"the 'base_url' setting (or records_path in {self.mapping_file})"
            )
        if len(found) > asked:
            raise self._fatal(
                f"{where} answered {len(found)} records for a page of {asked}: it ignores the "
                f"page size, so pages cannot be followed safely (check {self.mapping_file})"
            )
        records: list[RawRecord] = []
        marks: list[_Mark] = []
        for item in found:
            if not isinstance(item, dict):
                raise self._fatal(f"{where} answered a record that is not a JSON object")
            ident, text = item.get(self.id_field), item.get(self.updated_at_field)
            moment = self.parse_time(text)
            if not _usable_id(ident) or moment is None:
                # Paging needs both: the API orders and filters by them. Without them no
                # cursor can say where this record is, so the read cannot go on safely.
                raise self._fatal(
                    f"{where} answered a record with {self.id_field}={repr(ident)[:60]} and "
                    f"{self.updated_at_field}={repr(text)[:60]}; every record needs an id (text "
                    "or a whole number, 1 to 128 printable characters) and a readable "
                    f"last-change time (check the fields declared in {self.mapping_file})"
                )
            mark = _Mark(moment, str(ident), str(text))
            if marks and mark < marks[-1]:
                raise self._fatal(
                    f"{where} does not order records by ({self.updated_at_field}, "
                    f"{self.id_field}): {marks[-1].id!r} comes before {mark.id!r}; incremental "
                    "reads rely on that order"
                )
            records.append(RawRecord(str(ident), item))
            marks.append(mark)
        return records, marks

    # -- requests -----------------------------------------------------------------------------
    def _url(self, path: str) -> str:
        return self.http.base_url + path

    def _call(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        data: dict[str, str] | None = None,
        token_request: bool = False,
    ) -> _Answer:
        """One API call, retried as the module says; the JSON body of a 2xx answer."""
        settings = self.http
        path = urlsplit(url).path
        attempt, refreshed = 0, False
        problem, last = "", None
        while True:
            attempt += 1
            wait: float | None = None
            started = time.monotonic()
            try:
                response = self._session.request(
                    method,
                    url,
                    params=params,
                    data=data,
                    auth=None if token_request else self._credentials(),
                    timeout=(settings.connect_timeout, settings.read_timeout),
                    allow_redirects=False,
                    stream=True,  # the body is read within max_page_bytes and the deadline
                )
                self._load_body(response, method, path, started)
            except requests.ConnectTimeout:
                problem = f"no connection within {settings.connect_timeout:g} s"
            except requests.Timeout:
                problem = f"no answer within {settings.read_timeout:g} s"
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                problem = _connection_problem(exc)
            except requests.RequestException as exc:
                raise self._fatal(
                    f"cannot call {_shown(url)}: {type(exc).__name__}; check the "
                    f"{self._url_setting(token_request)!r} setting"
                ) from None
            else:
                self._answered = True
                status = response.status_code
                if status == 401 and not token_request and self._refreshable() and not refreshed:
                    # The token expired or was revoked early: fetch another, send again.
                    refreshed = True
                    self._token = None
                    attempt -= 1  # not a failure of the source
                    log.info("source %r: %s answered 401; fetching a new token", self.source, path)
                    continue
                refreshed = False
                if status in RETRIABLE_STATUS:
                    problem, last = f"answered {status} {response.reason}", response
                    wait = _retry_after(response)
                    if wait is not None and wait > settings.max_retry_after:
                        raise RetriableSourceError(
                            self.source,
                            f"{method} {path} answered {status} asking to wait {wait:.0f} s, "
                            f"more than max_retry_after ({settings.max_retry_after:g} s); "
                            "try again later",
                            response=response,
                        )
                elif 200 <= status < 300:
                    body, problem = self._json(response, token_request)
                    if body is not _INVALID:
                        return _Answer(body, response)
                    last = response
                else:
                    raise self._refusal(response, token_request)
            if attempt >= settings.max_attempts:
                break
            if wait is None:
                ceiling = min(settings.backoff_max, settings.backoff_initial * 2 ** (attempt - 1))
                wait = self._jitter.uniform(0, ceiling)
            log.warning(
                "source %r: %s %s %s; retry %d of %d in %.2f s",
                self.source,
                method,
                path,
                problem,
                attempt,
                settings.max_attempts - 1,
                wait,
            )
            time.sleep(wait)
        if not self._answered:
            origin = urlsplit(url)
            raise self._fatal(
                f"cannot connect to {origin.scheme}://{origin.netloc}: {problem} "
                f"({settings.max_attempts} attempts); check the "
                f"{self._url_setting(token_request)!r} setting and that the service is running"
            )
        raise RetriableSourceError(
            self.source,
            f"{method} {path} failed {settings.max_attempts} times, last: {problem}; "
            "try again later",
            response=last,
        )

    def _load_body(
        self, response: requests.Response, method: str, path: str, started: float
    ) -> None:
        """Read the body, decoded, into the response, or fail naming the setting it broke."""
        settings = self.http
        cap, deadline = settings.max_page_bytes, settings.request_deadline
        call = f"{method} {path}"
        too_big = (
            f"{call} answered more than max_page_bytes ({cap:,} bytes); lower the 'page_size' "
            "setting, or raise 'max_page_bytes' if pages this large are expected"
        )
        declared = response.headers.get("Content-Length", "").strip()
        chunks: list[bytes] = []
        size = 0
        try:
            if declared.isdigit() and int(declared) > cap:
                raise self._fatal(too_big)
            while True:
                if time.monotonic() - started > deadline:
                    raise RetriableSourceError(
                        self.source,
                        f"{call} did not finish within request_deadline ({deadline:g} s, "
                        f"{size:,} bytes received): the source answers too slowly; try again "
                        "later, or raise the 'request_deadline' setting",
                    )
                chunk = response.raw.read1(_CHUNK, decode_content=True)
                if not chunk:
                    break
                size += len(chunk)
                if size > cap:
                    raise self._fatal(too_big)
                chunks.append(chunk)
        except urllib3.exceptions.ReadTimeoutError:
            response.close()
            raise requests.ReadTimeout() from None
        except (urllib3.exceptions.ProtocolError, urllib3.exceptions.DecodeError) as exc:
            response.close()
            raise requests.exceptions.ChunkedEncodingError(exc) from None
        except BaseException:
            response.close()  # a connection left mid-body is not reused
            raise
        response._content = b"".join(chunks)  # what .content and .json() then give
        response._content_consumed = True
        response.raw.release_conn()

    def _json(self, response: requests.Response, token_request: bool) -> tuple[Any, str]:
        """The JSON body, or _INVALID and the problem when it is cut short (worth a retry)."""
        kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if kind != "application/json" and not kind.endswith("+json"):
            raise self._fatal(
                f"{response.request.method} {_shown(response.url)} answered "
                f"{kind or 'no content type'}, not JSON; check the "
                f"{self._url_setting(token_request)!r} setting"
            )
        content = response.content
        cut_short = f"answered {len(content)} bytes that are not whole JSON"
        try:
            # Strictly UTF-8 (RFC 8259): a lenient decode would turn a wrong byte in an id or a
            # field name into U+FFFD, loading a garbled id or silently dropping the field.
            # NaN and Infinity are not JSON either, and PostgreSQL cannot keep them in a
            # quarantined payload: they stay text, which no mapping takes for a number.
            return json.loads(content.decode("utf-8"), parse_constant=str), ""
        except UnicodeDecodeError as exc:
            if exc.reason == "unexpected end of data":
                return _INVALID, cut_short
            raise self._fatal(
                f"{response.request.method} {_shown(response.url)} answered a body that is not "
                f"UTF-8 (byte 0x{content[exc.start]:02x} at {exc.start}); JSON must be UTF-8, "
                "the source must send Unicode"
            ) from None
        except ValueError:
            return _INVALID, cut_short
        except RecursionError:
            raise self._fatal(
                f"{response.request.method} {_shown(response.url)} answered JSON nested too "
                "deeply to read; the source must fix its answer"
            ) from None

    def _refusal(self, response: requests.Response, token_request: bool) -> FatalSourceError:
        """The error for a final non-2xx answer, naming the setting to fix."""
        status, reason = response.status_code, response.reason
        call = f"{response.request.method} {_shown(response.url)}"
        url_setting = self._url_setting(token_request)
        detail = _error_text(response, self.error_fields)
        if 300 <= status < 400:
            target = _shown(response.headers.get("Location", "?"))
            return self._fatal(
                f"{call} redirects ({status}) to {target}; redirects are not followed so "
                f"credentials stay with the API: set the {url_setting!r} setting to the "
                "address it redirects to"
            )
        if token_request and (status == 401 or detail in _BAD_CLIENT):
            return self._fatal(
                f"the token endpoint {_shown(response.url)} refused the client credentials "
                f"({status} {detail or reason}); check the 'client_id' and 'client_secret' "
                "settings"
            )
        if status == 401:
            if isinstance(self.auth, ApiKey):
                fix = "check the 'api_key' setting"
            else:
                fix = (
                    "a freshly issued token was refused too; check the 'client_id' and "
                    "'client_secret' settings and that the client may read this API"
                )
            return self._fatal(f"{call} answered 401 {reason}: {fix}")
        if status == 403:
            setting = "'api_key'" if isinstance(self.auth, ApiKey) else "'client_id'"
            return self._fatal(
                f"{call} answered 403 Forbidden: the credentials are valid but may not read "
                f"it; check the {setting} setting and the permissions granted at the source"
            )
        if status in (404, 405):
            return self._fatal(
                f"{call} answered {status} {reason}; check the {url_setting!r} setting"
            )
        more = f": {detail}" if detail else ""
        return self._fatal(
            f"{call} answered {status} {reason}{more} (check the settings and the "
            f"declarations in {self.mapping_file})"
        )

    def _url_setting(self, token_request: bool) -> str:
        if token_request and isinstance(self.http, OAuth2Settings) and self.http.token_url:
            return "token_url"
        return "base_url"

    def _fatal(self, message: str) -> FatalSourceError:
        for secret in self._secrets():  # a server may echo what it was sent
            message = message.replace(secret, "**********")
        return FatalSourceError(self.source, message)

    def _secrets(self) -> list[str]:
        found = [
            value.get_secret_value()
            for value in self.http.__dict__.values()
            if isinstance(value, SecretStr) and value.get_secret_value()
        ]
        return [*found, self._token] if self._token else found

    # -- auth ---------------------------------------------------------------------------------
    def _refreshable(self) -> bool:
        return isinstance(self.auth, OAuth2ClientCredentials)

    def _credentials(self) -> AuthBase | None:
        if isinstance(self.auth, ApiKey):
            assert isinstance(self.http, ApiKeySettings)
            return _Header(self.auth.header, self.http.api_key.get_secret_value())
        if isinstance(self.auth, OAuth2ClientCredentials):
            return _Header("Authorization", f"Bearer {self._access_token()}")
        return None

    def _access_token(self) -> str:
        if self._token is not None and time.monotonic() < self._token_expires:
            return self._token
        auth, settings = self.auth, self.http
        assert isinstance(auth, OAuth2ClientCredentials) and isinstance(settings, OAuth2Settings)
        form = {
            "grant_type": "client_credentials",
            "client_id": settings.client_id,
            "client_secret": settings.client_secret.get_secret_value(),
        }
        if settings.scope:
            form["scope"] = settings.scope
        url = settings.token_url or self._url(auth.token_path)
        answer = self._call("POST", url, data=form, token_request=True)
        body = answer.body
        token = body.get("access_token") if isinstance(body, dict) else None
        kind = str(body.get("token_type", "bearer")) if isinstance(body, dict) else ""
        if not isinstance(token, str) or not token or kind.lower() != "bearer":
            raise self._fatal(
                f"the token endpoint {_shown(url)} answered without a bearer access_token; "
                f"check the {self._url_setting(True)!r} setting"
            )
        lifetime = body.get("expires_in")
        if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime <= 0:
            lifetime = 300.0  # unstated: assume a short life; a 401 refreshes it anyway
        # Fetch the next one a little early, so a token does not expire in flight.
        margin = min(30.0, lifetime / 10)
        self._token, self._token_expires = token, time.monotonic() + lifetime - margin
        return token


# -- helpers --------------------------------------------------------------------------------
_INVALID = object()
_CHUNK = 64 * 1024  # bytes asked per read of a body: a trickle is checked against the deadline
_BAD_CLIENT = frozenset({"invalid_client", "unauthorized_client", "invalid_grant"})


def _dig(body: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(body, dict):
            return None
        body = body.get(part)
    return body


def _usable_id(value: Any) -> bool:
    """Whether a record id can key the registry and a cursor as it is."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return False
    text = str(value)
    return 0 < len(text) <= 128 and text.isprintable()


def _shown(url: str) -> str:
    """A URL fit for a message: without its query string (cursors and filters are noise)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else parts.path


def _error_text(response: requests.Response, keys: tuple[str, ...]) -> str:
    """A short error code or message from a JSON error body, if there is one."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        for key in keys:
            if isinstance(body.get(key), str):
                return str(body[key])[:200]
    return ""


def _retry_after(response: requests.Response) -> float | None:
    """Seconds a `Retry-After` header asks to wait (seconds or HTTP-date form)."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _connection_problem(exc: requests.RequestException) -> str:
    text = str(exc)
    if "Connection refused" in text or "ConnectionRefusedError" in text:
        return "connection refused"
    if "NameResolutionError" in text or "Name or service not known" in text:
        return "host name not found"
    if "RemoteDisconnected" in text or "without response" in text:
        return "connection closed without a response"
    if "reset by peer" in text:
        return "connection reset"
    if "IncompleteRead" in text or "ChunkedEncodingError" in type(exc).__name__:
        return "answer cut short"
    return f"connection failed ({type(exc).__name__})"


def _page_size_around(position: int, size: int, largest: int) -> int:
    """A page size whose page holding `position` also holds as many records after it as can be.

    Pages are fixed slices [k*n, (k+1)*n): the page must show the last record seen (at
    `position`) to check nothing shifted, and records after it to move on. Of the sizes up to
    `size` (so batches stay within the batch size) the one leaving the most records after
    `position` on its page wins; only when none leaves any are larger sizes tried.
    """

    def after(n: int) -> int:
        return n - 1 - position % n

    best = max(range(2, size + 1), key=lambda n: (after(n), n), default=2)
    if after(best) > 0:
        return best
    for n in range(size + 1, largest + 1):
        if after(n) > 0:
            return n
    return position + 2  # a page from 0 to past the position: (p + 1) % (p + 2) != 0


def _position_among(marks: list[_Mark], index: int, first: int, since: datetime | None) -> int:
    """Where record `index` of a page stands among the records changed since its own time.

    That is how many records share its time before it. Those before the page are known only
    when the page was read from that very time; otherwise the count is low, which costs a
    re-read on resume, never a skip.
    """
    at = marks[index].at
    tied = index
    while tied > 0 and marks[tied - 1].at == at:
        tied -= 1
    before = first if tied == 0 and since is not None and since == at else 0
    return before + index - tied


def _fresh(records: list[RawRecord], marks: list[_Mark], mark: _Mark | None) -> list[int]:
    """Indices of the page's records past `mark`, each id once.

    A page repeating an id holds its versions in order, so only the last (newest) is
    delivered: the registry gets that version once, and no older version of it, valid or not.
    """
    last = {record.source_id: i for i, record in enumerate(records)}
    return [
        i
        for i, m in enumerate(marks)
        if (mark is None or m > mark) and last[records[i].source_id] == i
    ]


def _chunks(indices: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(indices), size):
        yield indices[start : start + size]
