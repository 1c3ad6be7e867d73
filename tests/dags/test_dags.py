"""The Airflow DAGs: parsing, and real runs with `dag.test()` against the reference systems."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, make_url, select, text

from dossierhub import stats, store
from dossierhub.sync import sync_source
from models import migrate
from models.tables import dossier, dossier_case, sync_run
from tests.dags.airflow_runs import run, sources_file


def test_dag_folder_parses_one_dag_per_source_without_touching_any(
    airflow_home: Path, tmp_path: Path
) -> None:
    file = sources_file(
        tmp_path / "sources.yaml",
        "  tax:\n    connector: tax\n    schedule: '@daily'\n    retries: 4\n    timeout_minutes: 20\n"
        "    settings: {url: 'postgresql+psycopg://nobody:pw@127.0.0.1:1/none'}\n"
        "  tax_north:\n    connector: tax\n    schedule: '*/15 * * * *'\n    partitions: 3\n"
        "    settings: {url: 'mysql+pymysql://nobody@127.0.0.1:1/none'}\n",
    )
    parsed = run(airflow_home, {"DOSSIERHUB_SOURCES_FILE": file}, "parse")
    assert parsed["import_errors"] == {}
    dags = parsed["dags"]
    assert set(dags) == {
        "dossierhub_sync_tax",
        "dossierhub_sync_tax_north",
        "dossierhub_statistics",
    }
    tax_dag = dags["dossierhub_sync_tax"]
    assert tax_dag["schedule"] == "0 0 * * *" and tax_dag["max_active_runs"] == 1
    assert tax_dag["tasks"]["sync"]["retries"] == 4
    assert tax_dag["tasks"]["sync"]["timeout_s"] == 20 * 60
    assert tax_dag["tasks"]["sync"]["exponential_backoff"] >= 2  # doubling delays
    # Only a verified run updates the Asset the statistics DAG runs on.
    assert tax_dag["tasks"]["sync"]["outlets"] == []
    assert tax_dag["tasks"]["verify"]["outlets"] == ["dossierhub://registry/tax"]
    assert tax_dag["tasks"]["sync"]["upstream"] == ["check"]
    assert tax_dag["tasks"]["verify"]["upstream"] == ["sync"]
    assert dags["dossierhub_sync_tax_north"]["schedule"] == "*/15 * * * *"
    statistics = dags["dossierhub_statistics"]
    assert statistics["timetable"] == "AssetTriggeredTimetable"
    assert "dossierhub://registry/tax" in statistics["schedule"]
    assert "dossierhub://registry/tax_north" in statistics["schedule"]


@pytest.mark.slow
def test_dag_runs_of_all_five_reference_systems_fill_the_registry_like_the_cli(
    airflow_home: Path, tmp_path: Path, pg_url: str
) -> None:
    from simulators import province

    registry = store.open_registry(pg_url)
    migrate.upgrade(registry)
    with province.running(tmp_path / "province", rows=300) as systems:
        body = ""
        for system in systems:
            settings = json.dumps(system.settings)
            partitions = "    partitions: 3\n" if system.name == "tax" else ""
            body += (
                f"  {system.name}:\n    connector: {system.connector}\n    retries: 0\n"
                f"{partitions}    max_quarantine_share: 0.2\n    settings: {settings}\n"
            )
        file = sources_file(tmp_path / "sources.yaml", body)
        env = {
            "DOSSIERHUB_SOURCES_FILE": file,
            "DOSSIERHUB_REGISTRY_URL": pg_url,
            "DOSSIERHUB_MODE": "demo",  # the reference systems use their demo secrets
        }
        dag_ids = [f"dossierhub_sync_{s.name}" for s in systems] + ["dossierhub_statistics"]
        runs = run(airflow_home, env, "test", *dag_ids)
        assert {dag: r["state"] for dag, r in runs.items()} == dict.fromkeys(dag_ids, "success")
        assert sorted(k for k in runs["dossierhub_sync_tax"]["tasks"] if k.startswith("sync")) == [
            "sync[0]",
            "sync[1]",
            "sync[2]",
        ]

        # The same five systems synced by the engine directly, as `dossierhub sync --all` does.
        reference = store.open_registry(f"sqlite:///{tmp_path / 'cli.db'}")
        migrate.upgrade(reference)
        from dossierhub.settings import Settings
        from dossierhub.sources import open_connector

        os.environ["DOSSIERHUB_SOURCES_FILE"] = file
        try:
            settings = Settings(mode="demo", hash_key="dag-test-key-" + "d" * 32)  # type: ignore[arg-type]
            for system in systems:
                sync_source(reference, open_connector(settings, system.name))
        finally:
            del os.environ["DOSSIERHUB_SOURCES_FILE"]
    with registry.connect() as a, reference.connect() as b:
        assert store.digest(a) == store.digest(b)
        sources = a.execute(select(dossier.c.source_system).distinct()).scalars().all()
        cases = a.execute(select(func.count()).select_from(dossier_case)).scalar_one()
        dossiers = a.execute(select(func.count()).select_from(dossier)).scalar_one()
    assert sorted(sources) == sorted(s.name for s in systems)
    assert 0 < cases < dossiers  # the statistics DAG linked forwarded dossiers into cases
    reference.dispose()
    registry.dispose()


@pytest.mark.slow
def test_unset_variable_fails_its_source_only_and_every_dag_imports(
    airflow_home: Path, province: dict[str, Any]
) -> None:
    south = province["dir"] / "south.db"
    file = sources_file(
        province["dir"] / "unset.yaml",
        f"  tax_south:\n    connector: tax\n    retries: 0\n    settings: {{url: 'sqlite:///{south}'}}\n"
        "  tax_unset:\n    connector: tax\n    retries: 0\n"
        "    settings: {url: '${DH_TEST_UNSET_TAX_URL}'}\n",
    )
    env = {"DOSSIERHUB_SOURCES_FILE": file, "DOSSIERHUB_REGISTRY_URL": province["url"]}
    parsed = run(airflow_home, env, "parse")
    assert parsed["import_errors"] == {}
    assert set(parsed["dags"]) == {
        "dossierhub_sync_tax_south",
        "dossierhub_sync_tax_unset",
        "dossierhub_statistics",
    }
    dag_ids = ["dossierhub_sync_tax_unset", "dossierhub_sync_tax_south", "dossierhub_statistics"]
    runs = run(airflow_home, env, "test", *dag_ids)
    assert {dag: r["state"] for dag, r in runs.items()} == {
        "dossierhub_sync_tax_unset": "failed",
        "dossierhub_sync_tax_south": "success",
        "dossierhub_statistics": "success",
    }
    with province["registry"].connect() as conn:
        snapshot = {r["source_system"]: r for r in stats.latest_reconciliation(conn)}
    assert snapshot["tax_south"]["source_count"] == province["truths"]["tax_south"].rows
    assert snapshot["tax_unset"]["source_count"] is None
    assert (
        "source 'tax_unset' setting 'url' needs the environment variable DH_TEST_UNSET_TAX_URL"
        in (snapshot["tax_unset"]["error"])
    )


def test_production_mode_without_a_sources_file_is_an_import_error_naming_it(
    airflow_home: Path, tmp_path: Path
) -> None:
    # A sources.yaml in the working directory must not be picked up silently either.
    sources_file(tmp_path / "sources.yaml", "  tax:\n    connector: tax\n")
    parsed = run(airflow_home, {}, "parse", cwd=tmp_path)
    assert parsed["dags"] == {}
    [error] = parsed["import_errors"].values()
    assert "DOSSIERHUB_SOURCES_FILE is not set" in error
    demo = run(airflow_home, {"DOSSIERHUB_MODE": "demo"}, "parse", cwd=tmp_path)
    assert demo["import_errors"] == {} and "dossierhub_sync_tax" in demo["dags"]


@pytest.mark.slow
def test_rerun_with_nothing_changed_is_green(airflow_home: Path, province: dict[str, Any]) -> None:
    # The newest row at the source is a quarantined one, so every run's look-back window
    # re-reads it: measured over that run alone it would be 1 of 1-2 rows quarantined.
    url = f"sqlite:///{province['dir'] / 'north.db'}"
    source = create_engine(url)
    with source.begin() as conn:
        bad = conn.execute(text("SELECT ID FROM tb_hoso WHERE NGAY_NHAN IS NULL")).scalars().all()
        conn.execute(
            text(
                "UPDATE tb_hoso SET NGAY_CAP_NHAT = (SELECT max(NGAY_CAP_NHAT) FROM tb_hoso) "
                "WHERE ID = :id"
            ),
            {"id": bad[0]},
        )
    source.dispose()
    file = sources_file(
        province["dir"] / "rerun.yaml",
        f"  tax:\n    connector: tax\n    retries: 0\n    lookback_seconds: 1\n"
        f"    settings: {{url: '{url}'}}\n",
    )
    env = {"DOSSIERHUB_SOURCES_FILE": file, "DOSSIERHUB_REGISTRY_URL": province["url"]}
    for _ in range(2):
        runs = run(airflow_home, env, "test", "dossierhub_sync_tax")["dossierhub_sync_tax"]
        assert runs["state"] == "success", runs
    with province["registry"].connect() as conn:
        last = conn.execute(
            select(sync_run.c.rows_read, sync_run.c.quarantined).order_by(sync_run.c.id.desc())
        ).first()
    assert last is not None and 0 < last.rows_read < 10 and last.quarantined == 1


def test_wrong_password_fails_at_once_naming_source_and_setting(
    airflow_home: Path, tmp_path: Path, mariadb_url: str
) -> None:
    password = "Wr0ng-pa55word-" + "q" * 8
    file = sources_file(tmp_path / "sources.yaml", "  tax:\n    connector: tax\n    retries: 3\n")
    server = make_url(mariadb_url)
    env = {
        "DOSSIERHUB_SOURCES_FILE": file,
        "DOSSIERHUB_REGISTRY_URL": f"sqlite:///{tmp_path / 'registry.db'}",
        "AIRFLOW_CONN_DOSSIERHUB_SOURCE_TAX": json.dumps(
            {
                "conn_type": "mysql",
                "host": server.host,
                "port": server.port or 3306,
                "login": server.username,
                "password": password,
                "schema": server.database,
            }
        ),
    }
    result = run(airflow_home, env, "test", "dossierhub_sync_tax", output=True)
    runs = result["runs"]["dossierhub_sync_tax"]
    # With retries: 3 a retriable error would leave the task up for retry; it failed outright.
    assert runs["tasks"]["check[-1]"] == "failed", runs
    assert runs["state"] == "failed"
    log = result["output"]
    assert "AirflowFailException" in log or "not retried" in log
    assert "source 'tax'" in log and "'url' setting" in log
    assert "dossierhub_source_tax" in log
    assert password not in log
