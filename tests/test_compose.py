"""docker-compose.yml is checked by reading it (no Docker engine runs here)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES: dict[str, Any] = COMPOSE["services"]
SECRET_NAME = re.compile(r"PASSWORD|SECRET|_KEY|TOKEN", re.IGNORECASE)
REFERENCE = re.compile(r"\$\{[A-Z0-9_]+(:\?[^}]*)?\}")


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_service_has_an_image_or_a_build(name: str) -> None:
    assert "image" in SERVICES[name] or "build" in SERVICES[name]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_dependencies_wait_for_health_or_completion(name: str) -> None:
    for dependency, rule in (SERVICES[name].get("depends_on") or {}).items():
        assert dependency in SERVICES, f"{name} depends on unknown {dependency}"
        condition = rule["condition"]
        assert condition in {"service_healthy", "service_completed_successfully"}, (
            name,
            dependency,
        )
        if condition == "service_healthy":
            assert "healthcheck" in SERVICES[dependency], f"{dependency} has no healthcheck"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_no_literal_secrets(name: str) -> None:
    for key, value in environment(SERVICES[name]).items():
        if SECRET_NAME.search(key):
            assert REFERENCE.fullmatch(value), f"{name}: {key} must come from ${{VAR:?...}}"
        for user_password in re.findall(r"://[^:/@\s]+:([^@\s]+)@", value):
            assert REFERENCE.fullmatch(user_password), f"{name}: password in {key} is literal"
        for reference in REFERENCE.finditer(value):
            name_only = reference.group(0)
            if SECRET_NAME.search(name_only):
                assert ":?" in name_only, f"{name}: {name_only} must refuse to start when unset"


def test_airflow_services_mount_the_dags_folder_where_airflow_reads_it() -> None:
    airflow = [n for n in SERVICES if n.startswith("airflow-") and n != "airflow-init"]
    assert {
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
    } <= set(airflow)
    for name in airflow:
        service = SERVICES[name]
        folder = environment(service)["AIRFLOW__CORE__DAGS_FOLDER"]
        mounts = [v.split(":")[:2] for v in service["volumes"]]
        assert ["./dags", folder] in mounts, name


def test_celery_profile_brings_redis_and_workers() -> None:
    assert "celery" in SERVICES["redis"]["profiles"]
    assert "celery" in SERVICES["airflow-worker"]["profiles"]
    assert SERVICES["airflow-worker"]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_services_named_in_the_readme_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("<!-- compose services -->", 1)[1].split(
        "<!-- /compose services -->", 1
    )[0]
    named = set(re.findall(r"`([a-z][a-z0-9-]+)`", section))
    assert named, "the README's compose section names no services"
    assert named <= set(SERVICES), named - set(SERVICES)
