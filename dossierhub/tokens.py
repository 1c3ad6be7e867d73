"""API bearer tokens: created once, stored as SHA-256 digests, checked on every request.

A token is a random URL-safe string (`secrets.token_urlsafe(32)`, 256 bits) shown to its
owner once, when it is created. The registry keeps only its SHA-256 hex digest, so a copy of
the `api_token` table (a backup, a read-only role) cannot be replayed against the API. A
plain hash suffices here, unlike passwords: the secret is random and long, so there is
nothing to guess from the digest.

Roles say what a token may read:

* `statistics` — every statistic (indicators, coverage, open cases, reconciliation, the
  dossier list) and every source's health;
* `agency:<source>` — one source's own health, sync runs and quarantine, nothing else;
* `admin` — everything.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import Engine, insert, select, update

from dossierhub.errors import ConfigError
from models.tables import api_token

RoleKind = Literal["statistics", "agency", "admin"]
AGENCY_PREFIX = "agency:"
# The same rule as source names in the sources file (they are `source_system` values).
SOURCE_NAME = re.compile(r"[a-z][a-z0-9_]{1,63}")
ROLE_HELP = "statistics, admin, or agency:<source> (e.g. agency:tax)"
NAME_MAX = 128
# A longer bearer value cannot be one of ours; refuse it before hashing.
TOKEN_MAX = 256


@dataclass(frozen=True, slots=True)
class Role:
    """What a token may read; `source` is set only for an agency role."""

    kind: RoleKind
    source: str | None = None

    @classmethod
    def parse(cls, text: str) -> Role:
        """`statistics`, `admin` or `agency:<source>`; anything else is a ConfigError."""
        value = text.strip()
        if value == "statistics":
            return cls("statistics")
        if value == "admin":
            return cls("admin")
        if value.startswith(AGENCY_PREFIX):
            source = value[len(AGENCY_PREFIX) :]
            if SOURCE_NAME.fullmatch(source):
                return cls("agency", source)
            raise ConfigError(
                f"role {text!r}: {source!r} is not a source name (lower case letters, digits "
                "and underscores, as in the sources file), e.g. agency:tax"
            )
        raise ConfigError(f"role {text!r} is not known; use {ROLE_HELP}")

    def __str__(self) -> str:
        return f"{AGENCY_PREFIX}{self.source}" if self.kind == "agency" else self.kind

    @property
    def reads_statistics(self) -> bool:
        """Indicators, coverage, open cases, reconciliation and the dossier list."""
        return self.kind in ("statistics", "admin")

    def reads_source(self, source: str) -> bool:
        """A source's health, runs and quarantine: every source, or an agency's own."""
        return self.kind != "agency" or self.source == source


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A stored token as it may be shown: never its digest, never the token."""

    id: int
    role: str
    name: str | None
    created_at: datetime
    revoked_at: datetime | None


def token_digest(token: str) -> str:
    """The SHA-256 hex digest under which a token is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(engine: Engine, *, role: str | Role, name: str | None = None) -> str:
    """Create a token with this role and return it; it is not stored and cannot be shown again.

    Raises ConfigError for an unknown role or a name longer than 128 characters.
    """
    parsed = role if isinstance(role, Role) else Role.parse(role)
    if name is not None and len(name) > NAME_MAX:
        raise ConfigError(f"token name is {len(name)} characters long; use at most {NAME_MAX}")
    token = secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(
            insert(api_token).values(
                digest=token_digest(token),
                role=str(parsed),
                name=name,
                created_at=datetime.now(UTC),
            )
        )
    return token


def verify(engine: Engine, token: str) -> Role | None:
    """The role of a valid token; None for an unknown, revoked or malformed one.

    Only reads, so the API can run on the read-only role of docs/operations.md.
    """
    if not token or len(token) > TOKEN_MAX:
        return None
    wanted = token_digest(token)
    with engine.connect() as conn:
        row = conn.execute(
            select(api_token.c.digest, api_token.c.role).where(
                api_token.c.digest == wanted, api_token.c.revoked_at.is_(None)
            )
        ).first()
    if row is None or not hmac.compare_digest(row.digest, wanted):
        return None
    try:
        return Role.parse(row.role)
    except ConfigError:
        return None  # a role edited by hand into something unknown grants nothing


def list_tokens(engine: Engine) -> list[TokenInfo]:
    """Every token, oldest first, revoked ones included."""
    t = api_token.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(t.id, t.role, t.name, t.created_at, t.revoked_at).order_by(t.id)
        ).all()
    return [TokenInfo(int(r.id), r.role, r.name, r.created_at, r.revoked_at) for r in rows]


def revoke_token(engine: Engine, *, token_id: int) -> bool:
    """Revoke a token by id; False when there is no such token or it was already revoked."""
    with engine.begin() as conn:
        result = conn.execute(
            update(api_token)
            .where(api_token.c.id == token_id, api_token.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
    return bool(result.rowcount)
