"""DAG runs that fail, skip or hold back: one broken source fails only its own DAG, a partition
held by another worker is loaded by the next run, a run with too much quarantined is not
verified. Real runs with `dag.test()` against Tax offices in SQLite files (test_dags.py has the
parsing and the green runs; the two files run in parallel)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from dossierhub import store
from models.tables import dossier, sync_run
from simulators import tax
from tests.dags.airflow_runs import run, sources_file


@pytest.mark.slow
def test_broken_source_fails_its_own_dag_only(airflow_home: Path, province: dict[str, Any]) -> None:
    # Credentials come from Airflow Connections: the sources file only names the connectors
    # (tax_south's file setting points nowhere; its Connection gives the real database).
    south = province["dir"] / "south.db"
    file = sources_file(
        province["dir"] / "broken.yaml",
        "  tax_broken:\n    connector: tax\n    retries: 0\n"
        "    settings: {url: 'postgresql+psycopg://reader:s3cret@127.0.0.1:1/thue'}\n"
        "  tax_south:\n    connector: tax\n    retries: 0\n"
        "    settings: {url: 'sqlite:////nonexistent/south.db'}\n",
    )
    env = {
        "DOSSIERHUB_SOURCES_FILE": file,
        "AIRFLOW_CONN_DOSSIERHUB_REGISTRY": province["url"].replace(
            "postgresql+psycopg", "postgresql"
        ),
        "AIRFLOW_CONN_DOSSIERHUB_SOURCE_TAX_SOUTH": json.dumps(
            {"conn_type": "sqlite", "host": str(south)}
        ),
    }
    runs = run(airflow_home, env, "test", "dossierhub_sync_tax_broken", "dossierhub_sync_tax_south")
    assert runs["dossierhub_sync_tax_broken"]["state"] == "failed"
    assert runs["dossierhub_sync_tax_broken"]["tasks"]["check[-1]"] == "failed"
    assert runs["dossierhub_sync_tax_south"]["state"] == "success"
    with province["registry"].connect() as conn:
        sources = conn.execute(select(dossier.c.source_system).distinct()).scalars().all()
        landed = conn.execute(select(func.count()).select_from(dossier)).scalar_one()
    assert sources == ["tax_south"]
    assert landed == province["truths"]["tax_south"].valid


@pytest.mark.slow
def test_rerun_after_a_failed_partition_loads_only_what_is_missing(
    airflow_home: Path, province: dict[str, Any]
) -> None:
    env = {"DOSSIERHUB_SOURCES_FILE": province["file"], "DOSSIERHUB_REGISTRY_URL": province["url"]}
    registry: Engine = province["registry"]
    # Another worker holds partition 1/3: that mapped task skips, the others land, and the
    # run is not verified (no Asset for the statistics DAG).
    with store.sync_lock_held(registry, source_system="tax", partition="1/3"):
        first = run(airflow_home, env, "test", "dossierhub_sync_tax")
    assert first["dossierhub_sync_tax"]["tasks"]["sync[1]"] == "skipped"
    assert first["dossierhub_sync_tax"]["tasks"]["sync[0]"] == "success"
    assert first["dossierhub_sync_tax"]["tasks"]["verify[-1]"] == "skipped"
    with registry.connect() as conn:
        landed = conn.execute(select(func.count()).select_from(dossier)).scalar_one()
    assert 0 < landed < province["truths"]["tax"].valid

    second = run(airflow_home, env, "test", "dossierhub_sync_tax")
    assert second["dossierhub_sync_tax"]["state"] == "success"
    with registry.connect() as conn:
        last = conn.execute(
            select(sync_run.c.partition, sync_run.c.inserted)
            .where(sync_run.c.status == "succeeded")
            .order_by(sync_run.c.id.desc())
            .limit(3)
        ).all()
        total = conn.execute(select(func.count()).select_from(dossier)).scalar_one()
    inserted = {p: n for p, n in last}
    assert inserted["0/3"] == 0 and inserted["2/3"] == 0 and inserted["1/3"] > 0
    assert total == province["truths"]["tax"].valid


@pytest.mark.slow
def test_verify_fails_the_run_when_too_much_is_quarantined(
    airflow_home: Path, province: dict[str, Any]
) -> None:
    dirty = province["dir"] / "dirty.db"
    tax.generate(f"sqlite:///{dirty}", rows=300, seed=40, malformed_share=0.2)
    file = sources_file(
        province["dir"] / "dirty.yaml",
        "  tax_dirty:\n    connector: tax\n    retries: 0\n    max_quarantine_share: 0.05\n"
        f"    settings: {{url: 'sqlite:///{dirty}'}}\n",
    )
    env = {"DOSSIERHUB_SOURCES_FILE": file, "DOSSIERHUB_REGISTRY_URL": province["url"]}
    runs = run(airflow_home, env, "test", "dossierhub_sync_tax_dirty")["dossierhub_sync_tax_dirty"]
    assert runs["state"] == "failed"
    assert runs["tasks"]["sync[0]"] == "success"  # the data landed; the run is flagged
    assert runs["tasks"]["verify[-1]"] == "failed"
