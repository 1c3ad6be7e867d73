"""Secrets out of anything shown or stored: one masking helper for URLs and messages.

A URL can carry a secret in two places: its user:password part and its query string
(`?password=...`, `?api_key=...`, `?access_token=...`). `mask_url` replaces both with `***`;
`mask_text` does the same to every URL inside a message, and to `password=...`-style pairs
outside URLs (libpq connection strings, driver errors). Errors are masked when they are made
(`DossierHubError`), and again wherever text is shown or stored (run errors, the API, the
CLI, logs), so an error stored before a fix is still served masked.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote_plus, urlsplit

MASK = "***"

# Query parameter and key=value names that hold secrets (compared lower-case, - and _ alike).
SECRET_NAMES = frozenset(
    {
        "password",
        "passwd",
        "pass",
        "pwd",
        "secret",
        "client_secret",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "auth",
        "authorization",
        "key",
        "api_key",
        "apikey",
        "access_key",
        "secret_key",
        "private_key",
        "session",
        "sessionid",
        "signature",
        "sig",
        "credential",
        "credentials",
    }
)

# scheme://rest-of-url, up to whitespace or a character that ends a URL in prose.
# (Possessive quantifiers and a look-behind keep both patterns linear in the text's length.)
_URL = re.compile(r"(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]*+://[^\s'\"<>()\[\]{}]++")
# name=value outside URLs (libpq's "host=db password=s3cret", a query string on its own).
_PAIR = re.compile(
    r"(?<![A-Za-z0-9_\-])(?P<name>[A-Za-z][A-Za-z0-9_\-]*+)(?P<sep>\s*+=\s*+)"
    r"(?:(?P<quote>['\"])[^'\"]*(?P=quote)|[^\s&;,'\"]+)"
)


def is_secret_name(name: str) -> bool:
    """Whether a parameter or setting of this name holds a secret (password, token, key...)."""
    normal = name.strip().lower().replace("-", "_")
    return normal in SECRET_NAMES or normal.endswith(
        ("_password", "_secret", "_token", "_key", "_apikey")
    )


def secret_parameters(names: list[str]) -> list[str]:
    """The names among these query parameters that would carry a secret."""
    return [name for name in names if is_secret_name(name)]


def mask_url(url: str) -> str:
    """The URL with its password and every secret query parameter replaced by ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _mask_pairs(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        if ":" in userinfo:
            netloc = f"{userinfo.split(':', 1)[0]}:{MASK}@{host}"
    query = _mask_query(parts.query)
    fragment = _mask_query(parts.fragment) if "=" in parts.fragment else parts.fragment
    if (netloc, query, fragment) == (parts.netloc, parts.query, parts.fragment):
        return url
    # By hand: urlunsplit would turn sqlite:///path into sqlite:/path.
    shown = f"{parts.scheme}:" if parts.scheme else ""
    if netloc or url.startswith(f"{shown}//"):
        shown += f"//{netloc}"
    shown += parts.path
    if query or "?" in url:
        shown += f"?{query}"
    if fragment or "#" in url:
        shown += f"#{fragment}"
    return shown


def _mask_query(query: str) -> str:
    try:
        pairs = parse_qsl(query, keep_blank_values=True)
    except ValueError:
        return _mask_pairs(query)
    if not any(is_secret_name(name) for name, _ in pairs):
        return query
    # Rebuilt by hand (not urlencode) so the rest of the query reads as it was written.
    shown = []
    for piece in query.split("&"):
        name, sep, _value = piece.partition("=")
        secret = sep and is_secret_name(unquote_plus(name))
        shown.append(f"{name}{sep}{MASK}" if secret else piece)
    return "&".join(shown)


def _mask_pairs(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        if not is_secret_name(match.group("name")):
            return match.group(0)
        quote = match.group("quote") or ""
        return f"{match.group('name')}{match.group('sep')}{quote}{MASK}{quote}"

    return _PAIR.sub(replace, text)


def mask_text(text: str) -> str:
    """The message with every URL masked (mask_url) and every password=... pair hidden."""
    if "=" not in text and "://" not in text:
        return text  # nothing that could carry a secret: the common case, kept cheap
    masked = _URL.sub(_masked_match, text)
    # Pairs outside URLs only: URLs were masked above, and their *** values stay as they are.
    pieces = []
    last = 0
    for match in _URL.finditer(masked):
        pieces.append(_mask_pairs(masked[last : match.start()]))
        pieces.append(match.group(0))
        last = match.end()
    pieces.append(_mask_pairs(masked[last:]))
    return "".join(pieces)


def _masked_match(match: re.Match[str]) -> str:
    # A URL ending a sentence or a clause leaves that punctuation outside.
    url = match.group(0)
    core = url.rstrip(".,;:!?")
    return mask_url(core) + url[len(core) :]


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (a driver's own, if it wraps one), masked."""
    message = str(getattr(exc, "orig", None) or exc).strip()
    return mask_text(message.splitlines()[0]) if message else type(exc).__name__


def mask_optional(text: str | None) -> str | None:
    return None if text is None else mask_text(text)
