"""Where DossierHub meets Airflow: the bodies of the DAGs' tasks and what their errors mean.

The DAG file (`dags/dossierhub_dags.py`) only declares DAGs; each task calls one function here,
which reads settings as the CLI does (`dossierhub.connections`, with Connections looked up in
Airflow's own store as well), calls the engine, and maps DossierHub's errors to what Airflow
should do with the task:

* **fail at once, no retry** (`AirflowFailException`) — configuration and credentials:
  `ConfigError` (a registry not migrated included), `FatalSourceError` (wrong password,
  missing table...), `VerificationFailed`,
  and any other DossierHub error whose class name says configuration or credentials;
* **skip** (`AirflowSkipException`) — `SyncLockedError`: the same source (and partition) is
  already syncing elsewhere; nothing is lost, the next run carries on from the saved cursor;
* **retry** (the exception as raised) — transient source and registry errors
  (`RetriableSourceError`, `RegistryError`, `SyncLockLostError`) and anything unexpected: a rerun is safe, since a
  sync's batch and cursor commit together.

Airflow is imported inside the functions, so the engine package imports without it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

from dossierhub.errors import ConfigError, DossierHubError, FatalSourceError, SyncLockedError
from dossierhub.settings import Settings, SourceConfig, load_sources

if TYPE_CHECKING:
    from connectors.base import Connector
    from dossierhub.connections import ConnectionSpec

Action = Literal["fail", "skip", "retry"]
SOURCES_FILE_VARIABLE = "DOSSIERHUB_SOURCES_FILE"
# Errors whose class name says the configuration or the credentials are wrong never heal alone.
_FATAL_NAME = re.compile(r"Config|Credential|Setting|Auth|Permission|Verification")


def classify(exc: BaseException) -> Action:
    """What Airflow should do with a task that raised `exc` (see the module's docstring)."""
    from dossierhub.verify import VerificationFailed

    if isinstance(exc, SyncLockedError):
        return "skip"
    if isinstance(exc, ConfigError | FatalSourceError | VerificationFailed):
        return "fail"
    if isinstance(exc, DossierHubError) and _FATAL_NAME.search(type(exc).__name__):
        return "fail"
    return "retry"


@contextmanager
def airflow_errors(source: str | None = None, origin: str | None = None) -> Iterator[None]:
    """Run the body, turning DossierHub errors into what Airflow should do with the task.

    `origin` says where the source's settings came from, so the message names what to fix.
    Messages are DossierHub's own (they never carry a secret); the original exception is not
    chained, so a driver's text cannot reach the task log either.
    """
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    try:
        yield
    except Exception as exc:
        action = classify(exc)
        if action == "retry":
            raise
        where = f" (settings from {origin})" if origin and action == "fail" else ""
        if action == "skip":
            raise AirflowSkipException(
                f"{exc}; skipped: that sync carries on, the next run resumes from its cursor"
            ) from None
        kind = type(exc).__name__
        raise AirflowFailException(f"{kind}: {exc}{where}; not retried: fix it and rerun") from None


def dag_sources() -> dict[str, SourceConfig]:
    """The sources the DAG file makes DAGs of (parse time: the sources file only).

    In production mode the sources file must be named: falling back to the bundled example
    would schedule syncs of systems that do not exist.
    """
    settings = Settings()
    if settings.sources_file is None and settings.mode != "demo":
        raise ConfigError(
            f"{SOURCES_FILE_VARIABLE} is not set: in production mode the DossierHub DAGs are made "
            f"from your sources file only; set {SOURCES_FILE_VARIABLE}=/path/to/sources.yaml "
            "(or DOSSIERHUB_MODE=demo to use the bundled example sources)"
        )
    return load_sources(settings.sources_file)


# -- settings inside a task ------------------------------------------------------------------
def airflow_connection(conn_id: str) -> ConnectionSpec | None:
    """A Connection from Airflow (environment, secrets backend or metadata), or None."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    from dossierhub.connections import ConnectionSpec

    try:
        conn = Connection.get(conn_id)
    except AirflowNotFoundException:
        return None
    return ConnectionSpec(
        conn_id=conn_id,
        conn_type=str(conn.conn_type or ""),
        host=conn.host or None,
        port=conn.port or None,
        login=conn.login or None,
        password=conn.password or None,
        schema=conn.schema or None,
        extra=dict(conn.extra_dejson or {}),
    )


def task_settings() -> Settings:
    """Settings as the CLI reads them, the registry Connection also looked up in Airflow."""
    from dossierhub.connections import (
        REGISTRY_CONNECTION,
        REGISTRY_VARIABLE,
        settings_with_registry,
    )

    connection = None
    if not os.environ.get(REGISTRY_VARIABLE, "").strip():
        connection = airflow_connection(REGISTRY_CONNECTION)
    settings, _ = settings_with_registry(connection=connection)
    return settings


def _config(settings: Settings, source: str) -> SourceConfig:
    from dossierhub.sources import source_config

    config = source_config(settings, source)
    problem = getattr(config, "problem", None)  # a source the sources file reports as broken
    if problem:
        raise ConfigError(f"source {source!r}: {problem}")
    return config


def _open(settings: Settings, source: str, config: SourceConfig, partition: str = "") -> Any:
    """The source's connector, its settings overridden by its Airflow Connection if any."""
    from dossierhub.connections import source_connection_id, source_overrides
    from dossierhub.sources import open_connector

    conn = airflow_connection(source_connection_id(source))
    overrides = source_overrides(source, config.connector, conn) if conn else {}
    return open_connector(settings, source, config, partition=partition, overrides=overrides)


def _origin(source: str) -> str:
    from dossierhub.connections import source_connection_id

    conn_id = source_connection_id(source)
    try:
        found = airflow_connection(conn_id) is not None
    except Exception:  # the lookup itself failed: say where to look rather than hide the error
        found = False
    if found:
        return f"Airflow Connection {conn_id} and the sources file {SOURCES_FILE_VARIABLE} names"
    return f"the sources file {SOURCES_FILE_VARIABLE} names"


# -- task bodies -----------------------------------------------------------------------------
def run_check(source: str) -> str:
    """Can the source be reached with its settings? Fails at once when it cannot."""
    with airflow_errors(source, _origin(source)):
        settings = task_settings()
        connector: Connector = _open(settings, source, _config(settings, source))
        try:
            health = connector.check()
        finally:
            connector.close()
        if not health.ok:
            raise FatalSourceError(source, f"not healthy: {health.detail}")
        return str(health.detail)


def run_sync(source: str, partition: str) -> dict[str, Any]:
    """Sync one partition of the source (the engine's `sync_source`); its counts."""
    from dossierhub import store
    from dossierhub.sync import sync_source

    with airflow_errors(source, _origin(source)):
        settings = task_settings()
        config = _config(settings, source)
        engine = store.open_registry(settings.registry_url)
        try:
            result = sync_source(
                engine,
                _open(settings, source, config, partition),
                connector_name=config.connector,
                description=config.description,
            )
        finally:
            engine.dispose()
        return {
            "partition": partition,
            "run": result.run_id,
            "read": result.rows_read,
            "inserted": result.inserted,
            "updated": result.updated,
            "quarantined": result.quarantined,
        }


def run_verify(source: str) -> dict[str, Any]:
    """The engine's `verify_source`; a failed verification fails the task without retries."""
    from dossierhub import store
    from dossierhub.verify import verify_source

    with airflow_errors(source, _origin(source)):
        settings = task_settings()
        config = _config(settings, source)
        engine = store.open_registry(settings.registry_url)
        connector: Connector = _open(settings, source, config)
        try:
            result = verify_source(engine, connector, config=config)
        finally:
            connector.close()
            engine.dispose()
        return result.raise_for_problems().as_dict()


def run_statistics() -> dict[str, Any]:
    """Refresh linkage and rollups, and record a reconciliation snapshot of every source."""
    from dossierhub import stats, store
    from dossierhub.sources import source_counters

    with airflow_errors():
        settings = task_settings()
        engine = store.open_registry(settings.registry_url)
        sources = load_sources(settings.sources_file)
        try:
            refreshed = stats.refresh(engine)
            # A broken source is recorded with its problem; the others are still counted.
            with source_counters(
                sources, lambda name: _open(settings, name, sources[name])
            ) as counting:
                snapshot = stats.reconcile(
                    engine, counters=counting.counters, receipt_days=counting.receipt_days
                )
        finally:
            engine.dispose()
        return {
            "cases": refreshed.cases,
            "days": refreshed.days,
            "gaps": {row["source_system"]: row["gap"] for row in snapshot},
        }
