"""What the transport does with each HTTP answer: one table from status to action and message.

Every decision about a status code is a row of `RULES`, read top to bottom; the first row
that matches decides. `Action.DONE` reads the JSON body, `Action.RETRY` asks again (after
`Retry-After`, or a backoff), `Action.REFRESH` has the auth fetch new credentials and sends
the request again once (when it cannot, or did already, the row's message fails the run),
and `Action.FAIL` fails the run with the row's message, which names the setting to fix.
Messages are templates over the facts of `Facts`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum
from urllib.parse import urlsplit

import requests


class Action(Enum):
    DONE = "done"  # a 2xx: read its JSON body
    RETRY = "retry"  # the same call may succeed later
    REFRESH = "refresh"  # new credentials, then the same request once more
    FAIL = "fail"  # final: the run fails with the message


@dataclass(frozen=True)
class Rule:
    """One row: which answers it covers, and what to do with them.

    `statuses` None covers every status; `details` (error codes of a JSON error body) narrows
    a row to answers saying one of them; `token_request` True covers only the token endpoint,
    False only the API, None both.
    """

    statuses: Collection[int] | None
    action: Action
    message: str = ""
    details: frozenset[str] | None = None
    token_request: bool | None = None

    def covers(self, status: int, token_request: bool, detail: Callable[[], str]) -> bool:
        if self.token_request is not None and self.token_request != token_request:
            return False
        if self.statuses is not None and status not in self.statuses:
            return False
        return self.details is None or detail() in self.details


# The OAuth2 error codes (RFC 6749, 5.2) that mean the client's credentials are wrong.
_BAD_CLIENT = frozenset({"invalid_client", "unauthorized_client", "invalid_grant"})
_CREDENTIALS_REFUSED = (
    "the token endpoint {url} refused the client credentials ({status} {detail_or_reason}); "
    "check the 'client_id' and 'client_secret' settings"
)

RULES: tuple[Rule, ...] = (
    Rule(range(200, 300), Action.DONE),
    # Answers worth asking again; 501 and 505 will not change, other 4xx are final.
    Rule(frozenset({408, 429, 500, 502, 503, 504}), Action.RETRY),
    Rule(
        range(300, 400),
        Action.FAIL,
        "{call} redirects ({status}) to {location}; redirects are not followed so credentials "
        "stay with the API: set the {url_setting!r} setting to the address it redirects to",
    ),
    Rule({401}, Action.FAIL, _CREDENTIALS_REFUSED, token_request=True),
    Rule(None, Action.FAIL, _CREDENTIALS_REFUSED, details=_BAD_CLIENT, token_request=True),
    # The token expired or was revoked early: fetch another and send again, once.
    Rule({401}, Action.REFRESH, "{call} answered 401 {reason}: {refused_fix}", token_request=False),
    Rule(
        {403},
        Action.FAIL,
        "{call} answered 403 Forbidden: the credentials are valid but may not read it; check "
        "the {credential_setting} setting and the permissions granted at the source",
    ),
    Rule(
        {404, 405},
        Action.FAIL,
        "{call} answered {status} {reason}; check the {url_setting!r} setting",
    ),
    Rule(
        None,
        Action.FAIL,
        "{call} answered {status} {reason}{more} (check the settings and the declarations in "
        "{mapping_file})",
    ),
)
RETRIABLE_STATUS = frozenset(s for r in RULES if r.action is Action.RETRY for s in r.statuses or ())


def rule_for(
    response: requests.Response, *, token_request: bool, error_fields: tuple[str, ...]
) -> Rule:
    """The first row of `RULES` covering this answer."""
    detail = lambda: error_text(response, error_fields)  # noqa: E731 - read only if a row asks
    return next(r for r in RULES if r.covers(response.status_code, token_request, detail))


@dataclass(frozen=True)
class Facts:
    """What a rule's message may name about an answer and the connector that got it."""

    url_setting: str  # the setting holding the address called
    credential_setting: str  # quoted; the setting holding who the connector is
    refused_fix: str  # what to do when credentials stay refused
    mapping_file: str

    def message(
        self, rule: Rule, response: requests.Response, error_fields: tuple[str, ...]
    ) -> str:
        detail = error_text(response, error_fields)
        return rule.message.format(
            call=f"{response.request.method} {shown(response.url or '')}",
            url=shown(response.url or ""),
            status=response.status_code,
            reason=response.reason,
            detail_or_reason=detail or response.reason,
            more=f": {detail}" if detail else "",
            location=shown(response.headers.get("Location", "?")),
            url_setting=self.url_setting,
            credential_setting=self.credential_setting,
            refused_fix=self.refused_fix,
            mapping_file=self.mapping_file,
        )


def shown(url: str) -> str:
    """A URL fit for a message: without its query string (cursors and filters are noise)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else parts.path


def error_text(response: requests.Response, keys: tuple[str, ...]) -> str:
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


def retry_after(response: requests.Response) -> float | None:
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
