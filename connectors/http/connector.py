"""`HttpConnector`: what a REST connector declares, and the read loop over its pages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pydantic import BaseModel

from connectors.base import Batch, Connector, ConnectorContext, Cursor, Health, RawRecord, as_utc
from connectors.errors import FatalSourceError, Reason
from connectors.http.auth import SourceAuth
from connectors.http.client import HttpClient, JsonResponse
from connectors.http.cursor import HttpCursor
from connectors.http.paging import KeysetPosition, Page, PageWalk, Pagination, ReadStart, dig
from connectors.http.settings import HttpSettings
from connectors.mapping import TimeText
from models.localtime import LOCAL
from models.period import Period


class HttpConnector(Connector[HttpSettings]):
    """Declarations a REST connector makes; requests, auth, paging and counting are done here.

    Subclasses declare `auth`, `pagination`, `records_endpoint`, `records_path`, `id_field`,
    `updated_at_field`, `updated_since_param`, the count endpoint and its parameters, and
    implement `to_canonical`. Their `Settings` follow from `auth` (`ApiKeySettings` or
    `OAuth2Settings`) unless they declare their own. The declared `auth` and `pagination`
    carry the behaviour: each connector binds its own copy of the auth (its token included),
    and each read walks the pages the way its pagination says; `read` only sends, checks each
    page and yields batches with their `HttpCursor`.
    """

    Settings: ClassVar[type[BaseModel]] = HttpSettings
    full_read_is_current = True  # a full read is the source's current state
    auth: ClassVar[SourceAuth | None] = None
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

    @staticmethod
    def times_like(example: str) -> TimeText:
        """A mapping's `times`: read by the transport's own `parse_time` (so the mapping and the
        cursor never read one time two ways), a reason naming `example` when unreadable."""
        return TimeText(HttpConnector.parse_time, expected=f"a time like {example}")

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
        self.client = HttpClient(
            source=self.source,
            settings=settings,
            auth=self.auth,
            mapping_file=self.mapping_file,
            error_fields=self.error_fields,
        )
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
        try:
            saved = HttpCursor.from_cursor(cursor, source=self.source, parse_time=self.parse_time)
        except FatalSourceError:
            return None  # read() refuses it, saying why
        moment = self.parse_time(saved.updated_at)
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
        url = self._url(self.count_endpoint)
        value = dig(self.client.call("GET", url, params=params).body, self.count_path)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.client.fatal(
                f"the count at {url} has no whole number at {self.count_path!r} (check the "
                f"count declarations in {self.mapping_file})"
            )
        return value

    def read(self, cursor: Cursor | None) -> Iterator[Batch]:
        # Not a generator: a foreign cursor or an impossible page size fails at once.
        return self._batches(self.pagination.walk(self._start(cursor)))

    def close(self) -> None:
        self.client.close()

    # -- reading ----------------------------------------------------------------------------
    def _start(self, cursor: Cursor | None) -> ReadStart:
        """Where the read starts: after the saved cursor, or that much earlier with a look-back."""
        since: str | None = None
        mark: KeysetPosition | None = None
        position = 0
        if cursor is not None:
            saved = HttpCursor.from_cursor(cursor, source=self.source, parse_time=self.parse_time)
            moment = self.parse_time(saved.updated_at)
            assert moment is not None  # from_cursor checked it
            if self.context.lookback > timedelta(0):
                # Late commits at the source may carry an older time: read the window again.
                since = self.format_time(moment - self.context.lookback)
            else:
                since, mark = saved.updated_at, KeysetPosition(moment, saved.id, saved.updated_at)
                position = saved.position or 0
        size = min(self.http.page_size or self.context.batch_size, self.max_page_size)
        return ReadStart(
            source=self.source,
            url=self._url(self.records_endpoint),
            origin=self.http.base_url,
            since=since,
            since_param=self.updated_since_param,
            mark=mark,
            position=position,
            size=min(size, self.context.batch_size),
            largest=self.max_page_size,
            declared_in=self.mapping_file,
            parse_time=self.parse_time,
            fatal=self.client.fatal,
        )

    def _batches(self, walk: PageWalk) -> Iterator[Batch]:
        while (request := walk.next_request()) is not None:
            page = self._page(
                self.client.call("GET", request.url, params=request.params), request.size
            )
            fresh = walk.take(page)
            for start in range(0, len(fresh), self.context.batch_size):
                chunk = fresh[start : start + self.context.batch_size]
                sane = self._last_sane(page.keys, chunk)
                cursor = None if sane is None else walk.cursor_at(page, sane).to_cursor()
                yield Batch([page.records[i] for i in chunk], cursor)

    def _last_sane(self, keys: list[KeysetPosition], chunk: list[int]) -> int | None:
        """The chunk's last record whose change time is not past the horizon: a record dated
        in year 9999 must not move the cursor there, or every later change would be skipped."""
        return next((i for i in reversed(chunk) if keys[i].at <= self.horizon), None)

    def _page(self, answer: JsonResponse, asked: int) -> Page:
        """A page's records and their keys, checked against the paging contract."""
        self.horizon = self.context.horizon()
        where = urlsplit(answer.response.url).path
        found = dig(answer.body, self.records_path)
        if not isinstance(found, list):
            raise self.client.fatal(
                f"{where} answered JSON without a record list at {self.records_path!r}; "
                f"check the 'base_url' setting (or records_path in {self.mapping_file})"
            )
        if len(found) > asked:
            raise self.client.fatal(
                f"{where} answered {len(found)} records for a page of {asked}: it ignores "
                f"the page size, so pages cannot be followed safely (check {self.mapping_file})"
            )
        keys: list[KeysetPosition] = []
        for item in found:  # each record checked in turn: the first fault is the one named
            key = self._key(item, where)
            if keys and key < keys[-1]:
                raise self.client.fatal(
                    f"{where} does not order records by ({self.updated_at_field}, "
                    f"{self.id_field}): {keys[-1].id!r} comes before {key.id!r}; "
                    "incremental reads rely on that order"
                )
            keys.append(key)
        records = [RawRecord(key.id, item) for key, item in zip(keys, found, strict=True)]
        return Page(records, keys, answer)

    def _key(self, item: Any, where: str) -> KeysetPosition:
        """A record's key; paging needs it, since the API orders and filters by it."""
        if not isinstance(item, dict):
            raise self.client.fatal(f"{where} answered a record that is not a JSON object")
        ident, text = item.get(self.id_field), item.get(self.updated_at_field)
        moment = self.parse_time(text)
        if not _usable_id(ident) or moment is None:
            # Without them no cursor can say where this record is: the read cannot go on safely.
            raise self.client.fatal(
                f"{where} answered a record with {self.id_field}={repr(ident)[:60]} and "
                f"{self.updated_at_field}={repr(text)[:60]}; every record needs an id (text "
                "or a whole number, 1 to 128 printable characters) and a readable "
                f"last-change time (check the fields declared in {self.mapping_file})"
            )
        return KeysetPosition(moment, str(ident), str(text))

    def _url(self, path: str) -> str:
        return self.http.base_url + path


def _usable_id(value: Any) -> bool:
    """Whether a record id can key the registry and a cursor as it is."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return False
    text = str(value)
    return 0 < len(text) <= 128 and text.isprintable()
