"""DossierHub DAGs: one sync DAG per configured source, and one statistics DAG.

Airflow only decides *when*: this file declares DAGs and nothing else. Each task calls one
function of `dossierhub.airflow_edge` (settings, the engine call, what an error means for the
task); parsing reads the sources file named by DOSSIERHUB_SOURCES_FILE and nothing else (no
database, no network), so it parses with every source unreachable. In production mode an unset
DOSSIERHUB_SOURCES_FILE is an import error naming it.

* `dossierhub_sync_<source>`: check the source → sync it (mapped over the source's partitions,
  one cursor each) → verify (the source's whole quarantine against its size, and its own count
  against the registry). Only a verified run updates the source's registry Asset.
* `dossierhub_statistics`: scheduled on those Assets; refreshes linkage and rollups and
  records a reconciliation snapshot of every source.

Configuration and credential errors fail a task at once, a sync already running skips, and
transient errors retry. New DAGs are created paused (Airflow's default): unpause them in the UI
or with `airflow dags unpause`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Asset, AssetAny, dag, task

from dossierhub.airflow_edge import dag_sources
from dossierhub.settings import SourceConfig

START = datetime(2026, 1, 1)


def registry_asset(source: str) -> Asset:
    return Asset(f"dossierhub://registry/{source}", group="dossierhub")


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
            from dossierhub.airflow_edge import run_check

            return run_check(source)

        @task(task_id="sync")
        def sync(partition: str) -> dict[str, Any]:
            from dossierhub.airflow_edge import run_sync

            return run_sync(source, partition)

        @task(task_id="verify", outlets=[registry_asset(source)])
        def verify() -> dict[str, Any]:
            from dossierhub.airflow_edge import run_verify

            return run_verify(source)

        synced = sync.expand(partition=config.partition_names())
        check() >> synced >> verify()

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
            from dossierhub.airflow_edge import run_statistics

            return run_statistics()

        refresh_and_reconcile()

    return pipeline()


_SOURCES = dag_sources()
for _name, _config in _SOURCES.items():
    globals()[f"dossierhub_sync_{_name}"] = sync_dag(_name, _config)
dossierhub_statistics = statistics_dag(list(_SOURCES))
