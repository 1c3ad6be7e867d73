"""How a REST connector proves who it is: auth objects that requests applies to each call.

A connector declares one auth style on its class (`auth = ApiKey(header="X-API-Key")`); each
connector instance gets its own copy, bound to its settings and client (`bind`), so a token
is never shared between connectors. Both styles are `requests.auth.AuthBase`s: requests calls
them on every request it prepares.

* `ApiKey` puts the `api_key` setting in a header.
* `OAuth2ClientCredentials` posts `client_id` and `client_secret` (and `scope`) in the form
  body of the token endpoint, keeps the token until shortly before it expires, and fetches
  a new one when it has expired, or when the API answers 401 (`refresh`; the client then
  sends the same request again, once).

Secrets travel only in headers or a POST body, never in a URL, and no `repr` shows them.
"""

from __future__ import annotations

import copy
import time
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar, Self

import requests
from requests.auth import AuthBase

from connectors.http.settings import ApiKeySettings, HttpSettings, OAuth2Settings
from connectors.http.status import shown

if TYPE_CHECKING:
    from connectors.http.client import HttpClient


class SourceAuth(AuthBase, ABC):
    """An auth style a connector declares: its settings, and what to say when refused."""

    settings: ClassVar[type[HttpSettings]]  # the connector's Settings, unless it declares its own
    secret_setting: ClassVar[str]  # filled from an Airflow Connection's password
    credential_setting: ClassVar[str]  # named when valid credentials may not read (403)
    refused_fix: ClassVar[str]  # said when the API refuses the credentials (401)

    @abstractmethod
    def bind(self, settings: HttpSettings, client: HttpClient) -> Self:
        """A copy of this declaration for one connector, reading its settings."""

    def refresh(self) -> bool:
        """Drop the credentials the API refused; True when new ones may be fetched."""
        return False

    def secrets(self) -> list[str]:
        """Credentials issued during the run (a token), to keep out of messages."""
        return []


class ApiKey(SourceAuth):
    """An API key sent in a request header (setting `api_key`)."""

    settings = ApiKeySettings
    secret_setting = "api_key"
    credential_setting = "'api_key'"
    refused_fix = "check the 'api_key' setting"

    def __init__(self, header: str = "X-API-Key") -> None:
        self.header = header
        self._key: str | None = None

    def bind(self, settings: HttpSettings, client: HttpClient) -> Self:
        assert isinstance(settings, ApiKeySettings)  # the connector's Settings follow from auth
        bound = copy.copy(self)
        bound._key = settings.api_key.get_secret_value()
        return bound

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self._key is None:
            raise RuntimeError("ApiKey is a declaration; a connector binds it to its settings")
        request.headers[self.header] = self._key
        return request

    def __repr__(self) -> str:
        return f"ApiKey(header={self.header!r})"


class OAuth2ClientCredentials(SourceAuth):
    """OAuth2 client credentials (settings `client_id`, `client_secret`, optional `scope`)."""

    settings = OAuth2Settings
    secret_setting = "client_secret"
    credential_setting = "'client_id'"
    refused_fix = (
        "a freshly issued token was refused too; check the 'client_id' and 'client_secret' "
        "settings and that the client may read this API"
    )
    default_lifetime: ClassVar[float] = 300.0  # seconds, when the endpoint does not say

    def __init__(self, token_path: str = "/oauth/token") -> None:
        self.token_path = token_path  # under base_url, unless the `token_url` setting is given
        self._settings: OAuth2Settings | None = None
        self._client: HttpClient | None = None
        self._token: str | None = None
        self._expires = 0.0  # monotonic time to fetch a new token from

    def bind(self, settings: HttpSettings, client: HttpClient) -> Self:
        assert isinstance(settings, OAuth2Settings)  # the connector's Settings follow from auth
        bound = copy.copy(self)
        bound._settings, bound._client = settings, client
        bound._token, bound._expires = None, 0.0
        return bound

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        return request

    def refresh(self) -> bool:
        self._token = None
        return True

    def secrets(self) -> list[str]:
        return [self._token] if self._token else []

    def token(self) -> str:
        """The access token, fetched again when it has expired (or was refused)."""
        if self._token is not None and time.monotonic() < self._expires:
            return self._token
        settings, client = self._settings, self._client
        if settings is None or client is None:
            raise RuntimeError("OAuth2ClientCredentials is a declaration; a connector binds it")
        form = {
            "grant_type": "client_credentials",
            "client_id": settings.client_id,
            "client_secret": settings.client_secret.get_secret_value(),
        }
        if settings.scope:
            form["scope"] = settings.scope
        url = settings.token_url or settings.base_url + self.token_path
        body = client.call("POST", url, data=form, token_request=True).body
        token = body.get("access_token") if isinstance(body, dict) else None
        kind = str(body.get("token_type", "bearer")) if isinstance(body, dict) else ""
        if not isinstance(token, str) or not token or kind.lower() != "bearer":
            raise client.fatal(
                f"the token endpoint {shown(url)} answered without a bearer access_token; "
                f"check the {client.url_setting(token_request=True)!r} setting"
            )
        lifetime = body.get("expires_in")
        if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime <= 0:
            lifetime = self.default_lifetime  # unstated: assume a short life; a 401 refreshes it
        # Fetch the next one a little early, so a token does not expire in flight.
        margin = min(30.0, lifetime / 10)
        self._token, self._expires = token, time.monotonic() + lifetime - margin
        return token

    def __repr__(self) -> str:
        return f"OAuth2ClientCredentials(token_path={self.token_path!r})"
