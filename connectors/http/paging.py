"""Pagination styles: one small class each, declared on a connector, walked once per read.

A connector declares its style (`pagination = PageNumber(page_param="SoTrang", ...)`). Each
read asks it for a `PageWalk`, which says which page to ask for next, which records of a
page are new, and the cursor after each of them; the connector's loop only sends, checks
the page and yields batches. Paging that does not move on (the same continuation twice, a
page ending no further than the one before, or a page with nothing past a record its
position should hold) is fatal rather than read forever.

* `NextCursor` / `NextLink`: the server's continuation is followed; it is a keyset, stable
  while the data changes. A next link must stay on the API's own address.
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

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

from connectors.base import RawRecord
from connectors.errors import FatalSourceError
from connectors.http.client import JsonResponse
from connectors.http.cursor import HttpCursor

log = logging.getLogger(__name__)


@dataclass(frozen=True, order=True)
class KeysetPosition:
    """A record's place in the API's order: (last change, id), and the time as the API wrote it."""

    at: datetime
    id: str
    text: str = field(compare=False)


@dataclass(frozen=True)
class Page:
    """A page as the connector checked it: its records, their keys in order, and the answer."""

    records: list[RawRecord]
    keys: list[KeysetPosition]
    answer: JsonResponse

    @property
    def path(self) -> str:
        return urlsplit(self.answer.response.url).path


@dataclass(frozen=True)
class PageRequest:
    url: str
    params: dict[str, Any] | None
    size: int  # the most records the page may hold


@dataclass(frozen=True)
class ReadStart:
    """Where one read starts, and what its paging needs of the connector."""

    source: str
    url: str  # the records endpoint
    origin: str  # the API's own address (base_url): next links must stay on it
    since: str | None  # the `updated_since` text to ask from
    since_param: str
    mark: KeysetPosition | None  # the last record already delivered
    position: int  # its place among the records sharing its time
    size: int  # records per page asked for
    largest: int  # the most records the API serves in one page
    declared_in: str  # the connector's file, named in messages
    parse_time: Callable[[str], datetime | None]
    fatal: Callable[[str], FatalSourceError]


class PageWalk(Protocol):
    """One read's way through the pages."""

    def next_request(self) -> PageRequest | None:
        """The page to ask for next; None when the read is done."""

    def take(self, page: Page) -> list[int]:
        """Indices of the page's records to deliver, in order."""

    def cursor_at(self, page: Page, index: int) -> HttpCursor:
        """The cursor standing right after record `index` of the page just taken."""


class Pagination(ABC):
    """A paging style a connector declares."""

    @abstractmethod
    def walk(self, start: ReadStart) -> PageWalk: ...


# -- positions: page numbers and offsets -----------------------------------------------------
class PositionalPaging(Pagination):
    """Pages addressed by a record's position in the filtered order."""

    @property
    @abstractmethod
    def position_param(self) -> str:
        """The parameter naming the position (named when the API ignores it)."""

    @abstractmethod
    def window(self, position: int, size: int, largest: int) -> tuple[int, int, dict[str, Any]]:
        """(the first position the page holds, its size, the parameters asking for it), for a
        page holding `position`."""

    def walk(self, start: ReadStart) -> PageWalk:
        if start.size < 2:
            raise start.fatal(
                f"page and offset paging needs pages of at least 2 records, not {start.size} "
                "(raise the source's batch_size or the 'page_size' setting)"
            )
        return _PositionWalk(self, start)


@dataclass(frozen=True)
class PageNumber(PositionalPaging):
    """Pages by number: `page_param` (from `first_page`) and `size_param`."""

    page_param: str = "page"
    size_param: str = "page_size"
    first_page: int = 1

    @property
    def position_param(self) -> str:
        return self.page_param

    def window(self, position: int, size: int, largest: int) -> tuple[int, int, dict[str, Any]]:
        # The page must hold the last record seen (to check nothing shifted) and the one after
        # it (to move on): a page size whose page boundary does not fall right after it.
        asked = page_size_around(position, size, largest)
        number = position // asked
        return (
            number * asked,
            asked,
            {self.page_param: number + self.first_page, self.size_param: asked},
        )


@dataclass(frozen=True)
class Offset(PositionalPaging):
    """Pages by position: `offset_param` (from 0) and `limit_param`."""

    offset_param: str = "offset"
    limit_param: str = "limit"

    @property
    def position_param(self) -> str:
        return self.offset_param

    def window(self, position: int, size: int, largest: int) -> tuple[int, int, dict[str, Any]]:
        return position, size, {self.offset_param: position, self.limit_param: size}


class _PositionWalk:
    def __init__(self, paging: PositionalPaging, start: ReadStart) -> None:
        self.paging, self.start = paging, start
        self.since, self.mark, self.position = start.since, start.mark, start.position
        self.first = self.asked = 0  # the page asked for last: where it starts, its size
        self.since_at: datetime | None = None  # the time that page was asked from
        self.stuck: KeysetPosition | None = None  # the last record of a full page of nothing new
        self.done = False

    def next_request(self) -> PageRequest | None:
        if self.done:
            return None
        start = self.start
        self.first, self.asked, params = self.paging.window(
            self.position, start.size, start.largest
        )
        self.since_at = None if self.since is None else start.parse_time(self.since)
        if self.since is not None:
            params = {start.since_param: self.since, **params}
        return PageRequest(start.url, params, self.asked)

    def take(self, page: Page) -> list[int]:
        records, keys = page.records, page.keys
        if self.stuck is not None and len(records) == self.asked and keys[-1] <= self.stuck:
            # This page holds the position of `stuck` and one after it, and records only ever
            # move back: an API serving no record past it ignores the position asked for, and
            # would be read forever.
            raise self.start.fatal(
                f"{page.path} answered no record past {self.stuck.id!r} for the page after it: "
                f"it ignores the {self.paging.position_param!r} parameter, so the read would "
                f"never end (check the pagination declared in {self.start.declared_in})"
            )
        self.stuck = None
        if self.mark is not None and self.first > 0 and (not keys or keys[0] > self.mark):
            # Records before the last one seen changed and moved to the end, or it did itself:
            # the page may start past unseen records. Step back and look again.
            log.info(
                "source %r: records moved during the read; stepping back from %d",
                self.start.source,
                self.first,
            )
            self.position = max(0, self.first - self.asked)
            return []
        fresh = unseen_indices(records, keys, self.mark)
        if fresh:
            self.mark = keys[fresh[-1]]
            self.position = self._place(keys, fresh[-1])
            self.since = self.mark.text
        else:
            self.position = self.first + len(records) - 1  # all seen already: move past them
            self.stuck = keys[-1] if keys else None
        self.done = len(records) < self.asked
        return fresh

    def cursor_at(self, page: Page, index: int) -> HttpCursor:
        key = page.keys[index]
        return HttpCursor(key.text, key.id, self._place(page.keys, index))

    def _place(self, keys: list[KeysetPosition], index: int) -> int:
        """Where record `index` of the page stands among the records changed since its time.

        That is how many records share its time before it. Those before the page are known
        only when the page was read from that very time; otherwise the count is low, which
        costs a re-read on resume, never a skip.
        """
        at = keys[index].at
        tied = index
        while tied > 0 and keys[tied - 1].at == at:
            tied -= 1
        before = (
            self.first if tied == 0 and self.since_at is not None and self.since_at == at else 0
        )
        return before + index - tied


def page_size_around(position: int, size: int, largest: int) -> int:
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


# -- continuations: cursors and links --------------------------------------------------------
class ContinuationPaging(Pagination):
    """Pages the server links: each answer names the next one."""

    size_param: str

    @abstractmethod
    def continuation(self, answer: JsonResponse) -> tuple[Any, str | None]:
        """The continuation the answer gives (None or "" when done), and where it was found."""

    @abstractmethod
    def follow(
        self, following: str, first: PageRequest, page: Page, start: ReadStart
    ) -> PageRequest:
        """The request for the page the continuation names."""

    def walk(self, start: ReadStart) -> PageWalk:
        return _ContinuationWalk(self, start)


@dataclass(frozen=True)
class NextCursor(ContinuationPaging):
    """The body names the next page's cursor at `next_cursor_path` (absent or null: done)."""

    cursor_param: str = "cursor"
    size_param: str = "limit"
    next_cursor_path: str = "next_cursor"

    def continuation(self, answer: JsonResponse) -> tuple[Any, str | None]:
        return dig(answer.body, self.next_cursor_path), self.next_cursor_path

    def follow(
        self, following: str, first: PageRequest, page: Page, start: ReadStart
    ) -> PageRequest:
        return PageRequest(
            first.url, {**(first.params or {}), self.cursor_param: following}, first.size
        )


@dataclass(frozen=True)
class NextLink(ContinuationPaging):
    """The next page's URL: in the body at `next_link_path`, or a `Link: <...>; rel="next"`."""

    size_param: str = "limit"
    next_link_path: str | None = None

    def continuation(self, answer: JsonResponse) -> tuple[Any, str | None]:
        value = None if self.next_link_path is None else dig(answer.body, self.next_link_path)
        if value is None or value == "":
            value = answer.response.links.get("next", {}).get("url")
        return value, self.next_link_path

    def follow(
        self, following: str, first: PageRequest, page: Page, start: ReadStart
    ) -> PageRequest:
        url = urljoin(page.answer.response.url, following)
        mine, theirs = urlsplit(start.origin), urlsplit(url)
        if (mine.scheme, mine.netloc) != (theirs.scheme, theirs.netloc):
            raise start.fatal(
                f"the next-page link points at {theirs.scheme}://{theirs.netloc}, not the "
                "API's own address; credentials are not sent elsewhere (check the "
                "'base_url' setting)"
            )
        return PageRequest(url, None, first.size)


class _ContinuationWalk:
    def __init__(self, paging: ContinuationPaging, start: ReadStart) -> None:
        self.paging, self.start, self.mark = paging, start, start.mark
        params: dict[str, Any] = {paging.size_param: start.size}
        if start.since is not None:
            params[start.since_param] = start.since
        self.first = PageRequest(start.url, params, start.size)
        self.page: Page | None = None  # the page taken last
        self.previous: str | None = None  # the continuation followed last
        self.reached: KeysetPosition | None = None  # the last record of the page before

    def next_request(self) -> PageRequest | None:
        page = self.page
        if page is None:
            return self.first
        following = self._following(page)
        if not following or not page.records:
            return None
        if following == self.previous:  # memory stays flat: only the last one is kept
            raise self.start.fatal(
                f"the API gave the same continuation {following[:60]!r} twice: its paging "
                f"does not move on (check the pagination declared in {self.start.declared_in})"
            )
        if self.reached is not None and page.keys[-1] <= self.reached:
            # A new continuation each time, but no record past the page before: an API
            # ignoring the continuation would be read forever.
            raise self.start.fatal(
                f"{page.path} answered a page ending at {page.keys[-1].id!r}, not past the "
                f"page before (ending at {self.reached.id!r}): its paging does not move on "
                f"(check the pagination declared in {self.start.declared_in})"
            )
        self.previous, self.reached = following, page.keys[-1]
        return self.paging.follow(following, self.first, page, self.start)

    def take(self, page: Page) -> list[int]:
        self.page = page
        fresh = unseen_indices(page.records, page.keys, self.mark)
        if fresh:
            self.mark = page.keys[fresh[-1]]
        return fresh

    def cursor_at(self, page: Page, index: int) -> HttpCursor:
        key = page.keys[index]
        return HttpCursor(key.text, key.id)

    def _following(self, page: Page) -> str | None:
        value, path = self.paging.continuation(page.answer)
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            # Sent back as text, an object or a list would ask for a page nobody defined, and
            # an empty one would end the read early, silently.
            raise self.start.fatal(
                f"{page.path} answered a {type(value).__name__} at {path!r}, not a cursor or "
                f"link; check the pagination declared in {self.start.declared_in}"
            )
        return str(value)


# -- shared ------------------------------------------------------------------------------------
def unseen_indices(
    records: list[RawRecord], keys: list[KeysetPosition], mark: KeysetPosition | None
) -> list[int]:
    """Indices of the page's records past `mark`, each id once.

    A page repeating an id holds its versions in order, so only the last (newest) is
    delivered: the registry gets that version once, and no older version of it, valid or not.
    """
    last = {record.source_id: i for i, record in enumerate(records)}
    return [
        i
        for i, key in enumerate(keys)
        if (mark is None or key > mark) and last[records[i].source_id] == i
    ]


def dig(body: Any, path: str) -> Any:
    """The value at a dotted path of a JSON body, None when a step is missing."""
    for part in path.split("."):
        if not isinstance(body, dict):
            return None
        body = body.get(part)
    return body
