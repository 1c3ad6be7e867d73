"""What each DossierHub error means for an Airflow task: fail at once, skip, or retry."""

from __future__ import annotations

import airflow.sdk.exceptions as airflow_exceptions  # Airflow is in .[dev]
import pytest

from dossierhub import errors
from dossierhub.airflow_edge import airflow_errors, classify
from dossierhub.errors import (
    ConfigError,
    DossierHubError,
    FatalSourceError,
    RegistryConnectionLostError,
    RegistryError,
    RegistryNotMigratedError,
    RetriableSourceError,
    SyncLockedError,
    SyncLockLostError,
)
from dossierhub.verify import Verification, VerificationFailed


class CredentialsExpiredError(DossierHubError):
    """Stands for an error class another part may add: its name says credentials."""


class SourceConfigurationError(DossierHubError):
    """Stands for an error class another part may add: its name says configuration."""


def _failed_verification() -> VerificationFailed:
    return VerificationFailed(
        Verification("tax", 8, 2, 0.2, 10, 0, ("2 of its 10 records are in quarantine",))
    )


CASES: list[tuple[BaseException, str]] = [
    (ConfigError("DOSSIERHUB_HASH_KEY is not set"), "fail"),
    (FatalSourceError("tax", "cannot reach the database (check the 'url' setting)"), "fail"),
    (_failed_verification(), "fail"),
    (CredentialsExpiredError("token expired"), "fail"),
    (SourceConfigurationError("bad"), "fail"),
    (SyncLockedError("source 'tax' partition '' is already syncing"), "skip"),
    (RetriableSourceError("tax", "503 Service Unavailable"), "retry"),
    (RegistryError("cannot open the registry"), "retry"),
    (RegistryConnectionLostError("the registry connection was lost; a rerun is safe"), "retry"),
    (RegistryNotMigratedError("the registry has no dossier table; run db upgrade"), "fail"),
    (SyncLockLostError("the sync of 'tax' lost its lock"), "retry"),
    (DossierHubError("something else of ours"), "retry"),
    (ConnectionResetError("peer reset"), "retry"),
    (RuntimeError("a bug"), "retry"),
]


@pytest.mark.parametrize(("exc", "action"), CASES, ids=lambda c: type(c).__name__)
def test_each_error_class_maps_to_one_action(exc: BaseException, action: str) -> None:
    assert classify(exc) == action


def test_every_error_class_of_the_hierarchy_is_mapped_deliberately() -> None:
    # A class added to dossierhub.errors lands here: decide its action in CASES.
    ours = {
        cls
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, DossierHubError)
    }
    covered = {type(exc) for exc, _ in CASES} | {errors.SourceError, errors.RecordRejected}
    assert ours <= covered, ours - covered


@pytest.mark.parametrize(("exc", "action"), CASES, ids=lambda c: type(c).__name__)
def test_airflow_errors_raises_what_airflow_acts_on(exc: BaseException, action: str) -> None:
    expected: type[BaseException] = {
        "fail": airflow_exceptions.AirflowFailException,
        "skip": airflow_exceptions.AirflowSkipException,
        "retry": type(exc),
    }[action]
    with pytest.raises(expected) as raised, airflow_errors("tax", "Airflow Connection x"):
        raise exc
    if action == "retry":
        assert raised.value is exc
    else:
        assert raised.value.__cause__ is None and raised.value.__suppress_context__
        assert str(exc) in str(raised.value)
    if action == "fail":
        assert "settings from Airflow Connection x" in str(raised.value)
        assert "not retried" in str(raised.value)
