"""The settings of every REST source: its address, timeouts, retry limits and credentials.

`HttpSettings` holds what every REST source needs; `ApiKeySettings` and `OAuth2Settings` add
the credentials an auth style reads. A connector's `Settings` follow from its declared `auth`.
Secrets are `SecretStr`: they never show in a `repr`, a message or a log line, and a URL that
carries one (or a query string) is refused, since URLs end up in messages.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


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
