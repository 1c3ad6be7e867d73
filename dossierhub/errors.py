"""One error hierarchy, grouped by what the caller should do.

* retry: `RetriableSourceError` (the source may answer next time);
* stop: `FatalSourceError`, `ConfigError`, `RegistryError` (`RegistryConnectionLostError`:
  a rerun is safe), `SyncLockedError`,
  `SyncLockLostError`;
* set aside: `RecordRejected` (the record goes to quarantine with its reasons).

Every message names the thing that is wrong and the fix.
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


class RegistryError(DossierHubError):
    """The registry database cannot be used as configured."""


class RegistryNotMigratedError(RegistryError, ConfigError):
    """The registry lacks the schema this version needs: run `dossierhub db upgrade`.

    Also a `ConfigError`: waiting does not fix it, so an Airflow task fails at once."""


class RegistryConnectionLostError(RegistryError):
    """The registry connection dropped mid-command (server restart, terminated session).

    Every write is one transaction, so what was committed is whole and what was not left no
    trace: running the command again is safe.
    """


class SyncLockedError(DossierHubError):
    """Another sync of the same source (and partition) is running."""


class SyncLockLostError(DossierHubError):
    """A running sync no longer holds its lock (its lock session ended, or another sync took
    the lock over): it stops before committing another batch."""


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
