"""DossierHub DAGs: one sync DAG per configured source, and one statistics DAG.

Airflow only decides *when*. Each task imports the engine inside its body and calls the same
function the `dossierhub` CLI calls; parsing this file reads the sources file and nothing
else (no database, no network), so it parses with every source unreachable.

* `dossierhub_sync_<source>`: check the source → sync it (mapped over the source's partitions,
  one cursor each) → verify (fails the run past the quarantine-share or reconciliation-gap
  thresholds of the sources file). The sync task updates the source's registry Asset.
* `dossierhub_statistics`: scheduled on those Assets; refreshes linkage and rollups and
  records a reconciliation snapshot of every source.

Credentials come from Airflow Connections when they exist — `dossierhub_registry` and
`dossierhub_source_<source>` (settable as AIRFLOW_CONN_* variables) — and otherwise from the
DossierHub settings and the sources file.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Asset, AssetAny, dag, task

from dossierhub.settings import Settings, SourceConfig, load_sources

START = datetime(2026, 1, 1)
REGISTRY_CONNECTION = "dossierhub_registry"


def registry_asset(source: str) -> Asset:
    return Asset(f"dossierhub://registry/{source}", group="dossierhub")


# -- task bodies (run on workers; heavy imports stay inside) --------------------------------
def _airflow_connection(conn_id: str) -> Any | None:
    from airflow.sdk import Connection

    try:
        return Connection.get(conn_id)
    except Exception:  # not defined: fall back to DossierHub's own settings
        return None


_DRIVERS = {
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
}


def _database_url(conn: Any) -> str:
    from sqlalchemy.engine import URL

    extra = conn.extra_dejson or {}
    if extra.get("url"):
        return str(extra["url"])
    if conn.conn_type == "sqlite":
        return f"sqlite:///{conn.host}"
    url = URL.create(
        _DRIVERS.get(conn.conn_type, conn.conn_type),
        username=conn.login or None,
        password=conn.password or None,
        host=conn.host or None,
        port=conn.port or None,
        database=conn.schema or None,
    )
    return url.render_as_string(hide_password=False)


def connection_settings(source: str, config: SourceConfig) -> dict[str, Any]:
    """Connector settings from the Airflow Connection `dossierhub_source_<source>`, if any.

    The Connection's extra JSON holds connector settings by name; for SQL sources the
    connection fields make the database URL; for HTTP sources host/port make `base_url`,
    login the client id and password the connector's secret setting.
    """
    conn = _airflow_connection(f"dossierhub_source_{source}")
    if conn is None:
        return {}
    from connectors.sql import SqlConnector
    from dossierhub.sources import connector_class

    cls = connector_class(config.connector)
    settings = dict(conn.extra_dejson or {})
    if issubclass(cls, SqlConnector):
        settings["url"] = _database_url(conn)
        return settings
    if conn.host and "base_url" not in settings:
        scheme = "https" if conn.conn_type == "https" else "http"
        port = f":{conn.port}" if conn.port else ""
        settings["base_url"] = f"{scheme}://{conn.host}{port}"
    if conn.login and "client_id" not in settings:
        settings["client_id"] = conn.login
    secret = getattr(cls, "secret_setting", None)
    if conn.password and secret:
        settings[secret] = conn.password
    return settings


def _settings() -> Settings:
    settings = Settings()
    conn = _airflow_connection(REGISTRY_CONNECTION)
    if conn is not None:
        from pydantic import SecretStr

        settings.registry_url = SecretStr(_database_url(conn))
    return settings


def _connector(source: str, partition: str = "") -> Any:
    from dossierhub.sources import open_connector, source_config

    settings = _settings()
    config = source_config(settings, source)
    overrides = connection_settings(source, config)
    return open_connector(settings, source, config, partition=partition, overrides=overrides)


def run_check(source: str) -> str:
    connector = _connector(source)
    try:
        health = connector.check()
    finally:
        connector.close()
    if not health.ok:
        raise RuntimeError(f"source {source!r} is not healthy: {health.detail}")
    return health.detail


def run_sync(source: str, partition: str) -> dict[str, Any]:
    from dossierhub import store
    from dossierhub.sync import sync_source

    settings = _settings()
    engine = store.open_registry(settings.registry_url)
    try:
        result = sync_source(engine, _connector(source, partition), connector_name=source)
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


def run_verify(source: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    """Fail when the run set aside too much, or the source and registry disagree."""
    from dossierhub import stats, store
    from dossierhub.sources import source_config

    settings = _settings()
    config = source_config(settings, source)
    read = sum(r["read"] for r in results)
    quarantined = sum(r["quarantined"] for r in results)
    share = quarantined / read if read else 0.0
    problems = []
    if share > config.max_quarantine_share:
        problems.append(
            f"{quarantined} of {read} records quarantined ({share:.1%}), above "
            f"max_quarantine_share {config.max_quarantine_share:.1%}; see "
            f"`dossierhub quarantine list --source {source}`"
        )
    engine = store.open_registry(settings.registry_url)
    connector = _connector(source)
    try:
        [snapshot] = stats.reconcile(engine, counters={source: connector.count})
    finally:
        connector.close()
        engine.dispose()
    gap = snapshot["gap"]
    if gap is None:
        problems.append(f"the source did not report its count: {snapshot['error']}")
    elif abs(gap) > config.max_reconciliation_gap:
        problems.append(
            f"reconciliation gap {gap}: the source reports {snapshot['source_count']}, the "
            f"registry holds {snapshot['registry_count']} and quarantine {snapshot['quarantined']} "
            f"(max_reconciliation_gap {config.max_reconciliation_gap})"
        )
    if problems:
        raise RuntimeError(f"source {source!r} failed verification: " + "; ".join(problems))
    return {"read": read, "quarantined": quarantined, "gap": gap}


def run_statistics() -> dict[str, Any]:
    from dossierhub import stats, store
    from dossierhub.sources import source_counters

    settings = _settings()
    engine = store.open_registry(settings.registry_url)
    try:
        refreshed = stats.refresh(engine)
        # A broken source is recorded with its problem; the others are still counted.
        with source_counters(load_sources(settings.sources_file), _connector) as counting:
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


# -- DAG definitions (parse time: the sources file only) -------------------------------------
def sync_dag(source: str, config: SourceConfig) -> Any:
    @dag(
        dag_id=f"dossierhub_sync_{source}",
        description=config.description or f"Sync {source} into the DossierHub registry",
        schedule=config.schedule,
        start_date=START,
        catchup=False,
        max_active_runs=1,
        tags=["dossierhub", "sync", source],
        default_args={
            "retries": config.retries,
            "retry_delay": timedelta(seconds=30),
            "retry_exponential_backoff": True,
            "max_retry_delay": timedelta(minutes=30),
            "execution_timeout": timedelta(minutes=config.timeout_minutes),
        },
        doc_md=__doc__,
    )
    def pipeline() -> None:
        @task(task_id="check")
        def check() -> str:
            return run_check(source)

        @task(task_id="sync", outlets=[registry_asset(source)])
        def sync(partition: str) -> dict[str, Any]:
            return run_sync(source, partition)

        @task(task_id="verify")
        def verify(results: list[dict[str, Any]]) -> dict[str, Any]:
            return run_verify(source, list(results))

        synced = sync.expand(partition=config.partition_names())
        check() >> synced
        verify(synced)

    return pipeline()


def statistics_dag(sources: list[str]) -> Any:
    assets = [registry_asset(name) for name in sources]

    @dag(
        dag_id="dossierhub_statistics",
        description="Refresh linkage and rollups; record a reconciliation snapshot",
        schedule=AssetAny(*assets) if assets else None,
        start_date=START,
        catchup=False,
        max_active_runs=1,
        tags=["dossierhub", "statistics"],
        default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
    )
    def pipeline() -> None:
        @task(task_id="refresh_and_reconcile")
        def refresh_and_reconcile() -> dict[str, Any]:
            return run_statistics()

        refresh_and_reconcile()

    return pipeline()


_SOURCES = load_sources(Settings().sources_file)
for _name, _config in _SOURCES.items():
    globals()[f"dossierhub_sync_{_name}"] = sync_dag(_name, _config)
dossierhub_statistics = statistics_dag(list(_SOURCES))
