"""Calls to a REST source: one session, timeouts, bounded bodies, retries, strict JSON.

`HttpClient.call` sends one request and returns the JSON body of a 2xx answer. What each
status means is decided by the table in `connectors.http.status`; this module carries it
out. A 429, a 5xx (but 501 and 505), a timeout, a broken connection or a truncated body is
retried up to `max_attempts` times in all, waiting what `Retry-After` says (a wait longer
than `max_retry_after` gives up at once) or else an exponential backoff with full jitter,
uniform(0, min(backoff_max, backoff_initial * 2**n)). A 401 has the auth fetch new
credentials and sends the request again, once; that retry does not count as an attempt.
Redirects are not followed (a credential never travels to another address). A body is
streamed: one larger than `max_page_bytes` (decoded) is fatal, and a request still
unfinished after `request_deadline` seconds fails the run as retriable. A source never
answering (connection refused on every attempt) is fatal: most likely a wrong address.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from pydantic import SecretStr

from connectors.errors import FatalSourceError, RetriableSourceError
from connectors.http.auth import SourceAuth
from connectors.http.settings import HttpSettings
from connectors.http.status import Action, Facts, retry_after, rule_for, shown

log = logging.getLogger(__name__)

_CHUNK = 64 * 1024  # bytes asked per read of a body: a trickle is checked against the deadline
_CUT_SHORT = object()  # a body that is not whole JSON: worth asking again


@dataclass
class JsonResponse:
    """The decoded JSON body of a 2xx answer, and the answer itself (URL, headers, links)."""

    body: Any
    response: requests.Response


class HttpClient:
    """The requests of one connector, to one source; `auth` is the connector's bound auth."""

    def __init__(
        self,
        *,
        source: str,
        settings: HttpSettings,
        auth: SourceAuth | None,
        mapping_file: str,
        error_fields: tuple[str, ...],
    ) -> None:
        self.source, self.settings = source, settings
        self.mapping_file, self.error_fields = mapping_file, error_fields
        self.session = requests.Session()
        self.session.headers.update(
            {"Accept": "application/json", "User-Agent": f"DossierHub ({source})"}
        )
        self.auth = None if auth is None else auth.bind(settings, self)
        self._jitter = random.Random()
        self._answered = False  # whether the API ever answered (else: a wrong address?)

    def close(self) -> None:
        self.session.close()

    def call(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        data: dict[str, str] | None = None,
        token_request: bool = False,
    ) -> JsonResponse:
        """One API call, retried as the module says; the JSON body of a 2xx answer."""
        settings = self.settings
        path = urlsplit(url).path
        attempt, refreshed = 0, False
        problem, last = "", None
        while True:
            attempt += 1
            wait: float | None = None
            try:
                response = self._send(method, url, params, data, token_request)
            except _NoAnswer as failed:
                problem = failed.problem
            else:
                self._answered = True
                rule = rule_for(
                    response, token_request=token_request, error_fields=self.error_fields
                )
                if rule.action is Action.REFRESH and not refreshed and self._refreshed():
                    refreshed = True
                    attempt -= 1  # not a failure of the source
                    log.info("source %r: %s answered 401; fetching a new token", self.source, path)
                    continue
                refreshed = False
                if rule.action is Action.DONE:
                    body, problem = self._json(response, token_request)
                    if body is not _CUT_SHORT:
                        return JsonResponse(body, response)
                    last = response
                elif rule.action is Action.RETRY:
                    problem, last = f"answered {response.status_code} {response.reason}", response
                    wait = self._waited_for(response, method, path)
                else:
                    raise self.fatal(
                        self._facts(token_request).message(rule, response, self.error_fields)
                    )
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
        raise self._gave_up(method, url, problem, last, token_request)

    def fatal(self, message: str) -> FatalSourceError:
        """A run-stopping error for this source, with every secret it might echo masked."""
        for secret in self._secrets():  # a server may echo what it was sent
            message = message.replace(secret, "**********")
        return FatalSourceError(self.source, message)

    def url_setting(self, *, token_request: bool) -> str:
        """The setting holding the address a call went to."""
        if token_request and getattr(self.settings, "token_url", None):
            return "token_url"
        return "base_url"

    # -- one attempt ----------------------------------------------------------------------------
    def _send(
        self,
        method: str,
        url: str,
        params: dict[str, Any] | None,
        data: dict[str, str] | None,
        token_request: bool,
    ) -> requests.Response:
        """The answer with its body read, or `_NoAnswer` saying why there was none."""
        settings = self.settings
        started = time.monotonic()
        try:
            response = self.session.request(
                method,
                url,
                params=params,
                data=data,
                auth=None if token_request else self.auth,
                timeout=(settings.connect_timeout, settings.read_timeout),
                allow_redirects=False,
                stream=True,  # the body is read within max_page_bytes and the deadline
            )
            self._load_body(response, f"{method} {urlsplit(url).path}", started)
        except requests.ConnectTimeout:
            raise _NoAnswer(f"no connection within {settings.connect_timeout:g} s") from None
        except requests.Timeout:
            raise _NoAnswer(f"no answer within {settings.read_timeout:g} s") from None
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            raise _NoAnswer(_connection_problem(exc)) from None
        except requests.RequestException as exc:
            raise self.fatal(
                f"cannot call {shown(url)}: {type(exc).__name__}; check the "
                f"{self.url_setting(token_request=token_request)!r} setting"
            ) from None
        return response

    def _load_body(self, response: requests.Response, call: str, started: float) -> None:
        """Read the body, decoded, into the response, or fail naming the setting it broke."""
        cap, deadline = self.settings.max_page_bytes, self.settings.request_deadline
        too_big = (
            f"{call} answered more than max_page_bytes ({cap:,} bytes); lower the 'page_size' "
            "setting, or raise 'max_page_bytes' if pages this large are expected"
        )
        declared = response.headers.get("Content-Length", "").strip()
        chunks: list[bytes] = []
        size = 0
        try:
            if declared.isdigit() and int(declared) > cap:
                raise self.fatal(too_big)
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
                    raise self.fatal(too_big)
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
        """The JSON body, or _CUT_SHORT and the problem when it is cut short (worth a retry)."""
        kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        call = f"{response.request.method} {shown(response.url)}"
        if kind != "application/json" and not kind.endswith("+json"):
            raise self.fatal(
                f"{call} answered {kind or 'no content type'}, not JSON; check the "
                f"{self.url_setting(token_request=token_request)!r} setting"
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
                return _CUT_SHORT, cut_short
            raise self.fatal(
                f"{call} answered a body that is not UTF-8 (byte 0x{content[exc.start]:02x} at "
                f"{exc.start}); JSON must be UTF-8, the source must send Unicode"
            ) from None
        except ValueError:
            return _CUT_SHORT, cut_short
        except RecursionError:
            raise self.fatal(
                f"{call} answered JSON nested too deeply to read; the source must fix its answer"
            ) from None

    # -- decisions ------------------------------------------------------------------------------
    def _refreshed(self) -> bool:
        return self.auth is not None and self.auth.refresh()

    def _waited_for(self, response: requests.Response, method: str, path: str) -> float | None:
        """The wait `Retry-After` asks for; one past `max_retry_after` gives up at once."""
        wait = retry_after(response)
        limit = self.settings.max_retry_after
        if wait is not None and wait > limit:
            raise RetriableSourceError(
                self.source,
                f"{method} {path} answered {response.status_code} asking to wait {wait:.0f} s, "
                f"more than max_retry_after ({limit:g} s); try again later",
                response=response,
            )
        return wait

    def _gave_up(
        self,
        method: str,
        url: str,
        problem: str,
        last: requests.Response | None,
        token_request: bool,
    ) -> FatalSourceError | RetriableSourceError:
        attempts = self.settings.max_attempts
        if not self._answered:
            origin = urlsplit(url)
            return self.fatal(
                f"cannot connect to {origin.scheme}://{origin.netloc}: {problem} "
                f"({attempts} attempts); check the "
                f"{self.url_setting(token_request=token_request)!r} setting and that the "
                "service is running"
            )
        return RetriableSourceError(
            self.source,
            f"{method} {urlsplit(url).path} failed {attempts} times, last: {problem}; "
            "try again later",
            response=last,
        )

    def _facts(self, token_request: bool) -> Facts:
        auth = self.auth
        return Facts(
            url_setting=self.url_setting(token_request=token_request),
            credential_setting="the credentials" if auth is None else auth.credential_setting,
            refused_fix=(
                f"the API asks for credentials; declare `auth` in {self.mapping_file}"
                if auth is None
                else auth.refused_fix
            ),
            mapping_file=self.mapping_file,
        )

    def _secrets(self) -> list[str]:
        found = [
            value.get_secret_value()
            for value in self.settings.__dict__.values()
            if isinstance(value, SecretStr) and value.get_secret_value()
        ]
        return found + (self.auth.secrets() if self.auth is not None else [])


class _NoAnswer(Exception):
    """An attempt that got no (whole) answer: worth another."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


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
