"""One error hierarchy, grouped by what the caller should do.

* retry: `RetriableSourceError` (the source may answer next time);
* stop: `FatalSourceError`, `ConfigError`, `RegistryError` (`RegistryConnectionLostError`:
  a rerun is safe), `SyncLockedError`,
  `SyncLockLostError`;
* set aside: `RecordRejected` (the record goes to quarantine with its reasons).

The connector-facing errors are defined in `connectors.errors` and re-exported here, so the
engine has one place to import every error from. Every message names the thing that is wrong
and the fix.
"""

from __future__ import annotations

from connectors.errors import (
    ConfigError,
    DossierHubError,
    FatalSourceError,
    Reason,
    RecordRejected,
    RetriableSourceError,
    SourceError,
    close_match,
    unknown_name,
)

__all__ = [
    "ConfigError",
    "DossierHubError",
    "FatalSourceError",
    "Reason",
    "RecordRejected",
    "RegistryConnectionLostError",
    "RegistryError",
    "RegistryNotMigratedError",
    "RetriableSourceError",
    "SourceError",
    "SyncLockLostError",
    "SyncLockedError",
    "close_match",
    "unknown_name",
]


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
