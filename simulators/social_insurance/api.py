"""The Social Insurance REST service (OAuth2 client credentials, keyset paging, a rate limit)
over generated records, and `serve` to run it as a process."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import math
import secrets
import time
from datetime import date, datetime, timedelta
from typing import Any

from models.localtime import LOCAL
from simulators.common import DossierApi
from simulators.http_server import Faults, Request, Response, error
from simulators.social_insurance.generation import Truth, generate
from simulators.social_insurance.schema import (
    COUNT_PATH,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DOSSIERS_PATH,
    END,
    FORWARDED,
    MAX_LIMIT,
    NEXT_STATUS,
    RESOLVED,
    RETURNED,
    TOKEN_PATH,
    timestamp,
)


def _sort_key(record: dict[str, Any]) -> tuple[datetime, str]:
    return datetime.fromisoformat(record["ngayCapNhat"]), str(record["id"])


class SocialInsuranceApi(DossierApi):
    """The Social Insurance REST service over generated dossiers, with OAuth2 and faults."""

    name = "social_insurance"
    truth: Truth

    def __init__(
        self,
        *,
        rows: int,
        seed: int,
        malformed_share: float = 0.0,
        forwarded: int = 0,
        shared_updated_at: int = 0,
        client_id: str = DEMO_CLIENT_ID,
        client_secret: str = DEMO_CLIENT_SECRET,
        token_lifetime: float = 300.0,
        requests_per_second: float | None = None,
        faults: Faults | None = None,
        port: int = 0,
    ) -> None:
        records, self.truth = generate(
            rows=rows,
            seed=seed,
            malformed_share=malformed_share,
            forwarded=forwarded,
            shared_updated_at=shared_updated_at,
        )
        super().__init__(records, key="id", sort_key=_sort_key, faults=faults, port=port)
        self._client = (client_id, client_secret)
        self.token_lifetime = token_lifetime
        self._tokens: dict[str, float] = {}  # access token -> monotonic expiry
        self.tokens_issued = 0
        # Answer 401 to every token, fresh or not (a client without the read permission).
        self.refuse_all_tokens = False
        self._rate = requests_per_second
        self._bucket = requests_per_second or 0.0
        self._bucket_at = time.monotonic()

    # -- changing the data, as the live system does ----------------------------------------
    def touch(self, *, share: float, seed: int) -> list[str]:
        """Move `share` of the valid records (rounded) one step on; return their ids, sorted.

        The records are drawn from `seed` among valid dossiers that can still move (waiting,
        accepted, in progress, awaiting a supplement, resolved): each takes its next status
        (setting ngayCoKetQua or ngayTraKetQua) and one ngayCapNhat, a second after every
        other record's. Raises `ValueError` when too few records can move.
        """
        with self._data:
            picked = self._draw(
                share=share,
                seed=f"social-insurance-touch-{seed}",
                can_move=lambda record: record["trangThai"] in NEXT_STATUS,
            )
            latest = self._records.latest() or END.replace(tzinfo=LOCAL)
            self._move_on(
                picked,
                timestamp((latest + timedelta(seconds=1)).replace(tzinfo=None)),
                status="trangThai",
                next_status=NEXT_STATUS,
                stamps={RESOLVED: "ngayCoKetQua", RETURNED: "ngayTraKetQua"},
                changed="ngayCapNhat",
            )
        return picked

    def revoke_tokens(self) -> None:
        """Invalidate every token issued so far, as a key rotation at the provider would."""
        with self._data:
            self._tokens.clear()

    # -- HTTP -------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        if (limited := self._rate_limited()) is not None:
            return limited
        if request.path == TOKEN_PATH:
            if request.method != "POST":
                return error(405, "use POST for the token endpoint")
            return self._issue_token(request)
        if request.path not in (DOSSIERS_PATH, COUNT_PATH):
            return error(404, f"no endpoint {request.path}")
        if request.method != "GET":
            return error(405, f"use GET for {request.path}")
        if (denied := self._authorize(request)) is not None:
            return denied
        if request.path == COUNT_PATH:
            return self._count(request)
        return self._page(request)

    def _rate_limited(self) -> Response | None:
        if self._rate is None:
            return None
        with self._data:
            now = time.monotonic()
            self._bucket = min(self._rate, self._bucket + (now - self._bucket_at) * self._rate)
            self._bucket_at = now
            if self._bucket >= 1.0:
                self._bucket -= 1.0
                return None
            wait = math.ceil((1.0 - self._bucket) / self._rate)
        response = error(429, "rate limit exceeded")
        response.headers["Retry-After"] = str(wait)
        return response

    def _issue_token(self, request: Request) -> Response:
        form = request.form()
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = request.header("Authorization") or ""
        if basic.startswith("Basic "):
            try:
                decoded = base64.b64decode(basic[6:], validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            client_id, _, client_secret = decoded.partition(":")
        if form.get("grant_type") != "client_credentials":
            return error(400, "unsupported_grant_type")
        known_id, known_secret = self._client
        if not (
            client_id == known_id
            and client_secret is not None
            and hmac.compare_digest(client_secret.encode(), known_secret.encode())
        ):
            response = error(
                401, "invalid_client", error_description="client authentication failed"
            )
            response.headers["WWW-Authenticate"] = 'Basic realm="bhxh"'
            return response
        token = secrets.token_urlsafe(24)
        with self._data:
            self._tokens[token] = time.monotonic() + self.token_lifetime
            self.tokens_issued += 1
        return Response(
            200,
            {"access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime},
        )

    def _authorize(self, request: Request) -> Response | None:
        header = request.header("Authorization") or ""
        token = header[7:] if header.startswith("Bearer ") else ""
        with self._data:
            expiry = self._tokens.get(token)
            if expiry is not None and expiry <= time.monotonic():
                del self._tokens[token]
                expiry = None
        if expiry is not None and not self.refuse_all_tokens:
            return None
        response = error(401, "invalid_token")
        response.headers["WWW-Authenticate"] = 'Bearer realm="bhxh", error="invalid_token"'
        return response

    def _page(self, request: Request) -> Response:
        try:
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            return error(400, "limit must be a whole number")
        if not 1 <= limit <= MAX_LIMIT:
            return error(400, f"limit must be within 1..{MAX_LIMIT}")
        since: datetime | None = None
        if text := request.query.get("updatedSince"):
            try:
                since = _aware(datetime.fromisoformat(text))
            except ValueError:
                return error(400, "updatedSince is not an ISO 8601 time")
        after: tuple[datetime, str] | None = None
        if token := request.query.get("cursor"):
            try:
                position = json.loads(base64.urlsafe_b64decode(token.encode()))
                after = (datetime.fromisoformat(position["t"]), str(position["i"]))
            except (ValueError, KeyError, TypeError, binascii.Error):
                return error(400, "cursor is not one this API gave out")
        with self._data:
            if after is not None:
                page = self._records.after(after, limit)
            else:
                page = self._records.window(since, 0, limit)
            more = bool(page) and self._records.more_after(_sort_key(page[-1]))
        next_cursor = None
        if more:
            moment, ident = _sort_key(page[-1])
            raw = json.dumps({"t": moment.isoformat(), "i": ident}).encode()
            next_cursor = base64.urlsafe_b64encode(raw).decode()
        return Response(200, {"data": page, "nextCursor": next_cursor})

    def _count(self, request: Request) -> Response:
        try:
            start = date.fromisoformat(request.query["receivedFrom"])
            end = date.fromisoformat(request.query["receivedTo"])
        except KeyError:
            if "receivedFrom" in request.query or "receivedTo" in request.query:
                return error(400, "give both receivedFrom and receivedTo, or neither")
            with self._data:
                return Response(200, {"total": len(self._records)})
        except ValueError:
            return error(400, "receivedFrom and receivedTo are dates like 2026-03-01")
        total = self._received(start, end, lambda record: _local_day(record["ngayTiepNhan"]))
        return Response(200, {"total": total})


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=LOCAL)


def _local_day(text: Any) -> date | None:
    """The local day of a time as Social Insurance writes it; None when it is not one."""
    if not isinstance(text, str):
        return None
    try:
        return _aware(datetime.fromisoformat(text)).astimezone(LOCAL).date()
    except ValueError:
        return None


def serve(
    port: int,
    *,
    rows: int = 10_000,
    seed: int = 1,
    malformed_share: float = 0.02,
    forwarded: int = FORWARDED,
    client_id: str = DEMO_CLIENT_ID,
    client_secret: str = DEMO_CLIENT_SECRET,
    token_lifetime: float = 300.0,
    requests_per_second: float | None = 50.0,
    faults: Faults | None = None,
) -> None:
    """Serve the Social Insurance API on 127.0.0.1:`port` until Ctrl-C.

    `forwarded` must match the count the portal simulator forwards to Social Insurance
    (`simulators.one_stop.DEFAULT_FORWARDED`), so the registry can link both records of a
    forwarded dossier. Prints the truth as one JSON line on stdout, and where it listens on
    stderr (never the client secret).
    """
    api = SocialInsuranceApi(
        rows=rows,
        seed=seed,
        malformed_share=malformed_share,
        forwarded=forwarded,
        client_id=client_id,
        client_secret=client_secret,
        token_lifetime=token_lifetime,
        requests_per_second=requests_per_second,
        faults=faults,
        port=port,
    )
    api.serve_until_interrupted(f"token endpoint {TOKEN_PATH}, client_id {client_id!r}")
