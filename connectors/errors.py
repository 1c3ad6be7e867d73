"""The errors a connector raises, grouped by what the engine should do with them.

* retry: `RetriableSourceError` (the source may answer next time);
* stop: `FatalSourceError`, `ConfigError`;
* set aside: `RecordRejected` (the record goes to quarantine with every `Reason`).

They live in the connector SDK so that an agency's connector package needs only `connectors`
and `models`; the engine's own errors (registry, locks) are in `dossierhub.errors`. Every
message names the thing that is wrong and the fix, and is masked when made.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from connectors.masking import mask_text


class DossierHubError(Exception):
    """Base of every error DossierHub raises on purpose; its message is masked when made."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(mask_text(a) if isinstance(a, str) else a for a in args))


def close_match(name: str, known: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """The known name `name` was most likely meant to be (a typo), or None."""
    found = difflib.get_close_matches(name, list(known), n=1, cutoff=cutoff)
    return found[0] if found else None


def unknown_name(what: str, name: str, known: Iterable[str]) -> str:
    """ "unknown setting 'tabel' (did you mean 'table'?)", or the known names when none is close."""
    names = sorted(known)
    match = close_match(name, names)
    if match is not None:
        return f"unknown {what} {name!r} (did you mean {match!r}?)"
    return f"unknown {what} {name!r} (known: {', '.join(names) or 'none'})"


class ConfigError(DossierHubError):
    """A setting is missing or wrong; fix the configuration and run again."""


class SourceError(DossierHubError):
    """The source system failed; `source` names it."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"source {source!r}: {message}")
        self.source = source


class RetriableSourceError(SourceError):
    """A transient failure (timeout, 5xx, 429): the same call may succeed later."""

    def __init__(self, source: str, message: str, response: Any = None) -> None:
        super().__init__(source, message)
        self.response = response


class FatalSourceError(SourceError):
    """The source cannot be read as configured (missing table, wrong credentials...)."""


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a record was rejected: the field at fault, a stable code, and the detail."""

    field: str
    code: str
    message: str

    @property
    def key(self) -> str:
        return f"{self.field}:{self.code}"

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}


class RecordRejected(DossierHubError):
    """A source record cannot become a canonical dossier; it carries every reason."""

    def __init__(self, reasons: list[Reason]) -> None:
        if not reasons:
            raise ValueError("a rejection needs at least one reason")
        super().__init__("; ".join(f"{r.field}: {r.message}" for r in reasons))
        self.reasons = reasons
