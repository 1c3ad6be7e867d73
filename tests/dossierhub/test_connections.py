"""Airflow-style Connections name the registry and a source's credentials for the CLI and DAGs."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from dossierhub.connections import (
    choose_registry,
    database_url,
    parse_connection,
    source_overrides,
)
from dossierhub.errors import ConfigError
from simulators import tax


def test_uri_and_json_forms_give_the_same_database_url() -> None:
    uri = parse_connection("x", "mysql://rea%40der:p%2Fw%3A1@tax-db:3306/thue?charset=utf8mb4")
    as_json = parse_connection(
        "x",
        json.dumps(
            {
                "conn_type": "mysql",
                "host": "tax-db",
                "port": 3306,
                "login": "rea@der",
                "password": "p/w:1",
                "schema": "thue",
                "extra": {"charset": "utf8mb4"},
            }
        ),
    )
    assert uri == as_json
    assert database_url(uri) == "mysql+pymysql://rea%40der:p%2Fw%3A1@tax-db:3306/thue"
    assert "p/w:1" not in repr(uri)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sqlite:////tmp/hub/registry.db", "sqlite:////tmp/hub/registry.db"),
        (
            '{"conn_type": "sqlite", "host": "/tmp/hub/registry.db"}',
            "sqlite:////tmp/hub/registry.db",
        ),
        (
            "postgresql://hub@127.0.0.1:5432/registry",
            "postgresql+psycopg://hub@127.0.0.1:5432/registry",
        ),
        ("postgres://hub@db/registry", "postgresql+psycopg://hub@db/registry"),
        ('{"conn_type": "generic", "extra": {"url": "sqlite:///r.db"}}', "sqlite:///r.db"),
    ],
)
def test_database_connections_become_sqlalchemy_urls(text: str, expected: str) -> None:
    assert database_url(parse_connection("dossierhub_registry", text)) == expected


@pytest.mark.parametrize(
    "text",
    ["registry.db", "{not json", '{"host": "db"}', "postgresql://db:notaport/x", '["a"]'],
)
def test_malformed_connection_names_the_variable(text: str) -> None:
    with pytest.raises(ConfigError, match="AIRFLOW_CONN_DOSSIERHUB_REGISTRY"):
        parse_connection("dossierhub_registry", text)


def test_registry_variable_wins_then_the_connection_then_the_default() -> None:
    conn = "postgresql://hub:pw@db:5432/registry"
    both = {"DOSSIERHUB_REGISTRY_URL": "sqlite:///a.db", "AIRFLOW_CONN_DOSSIERHUB_REGISTRY": conn}
    assert choose_registry(environ=both).url.get_secret_value() == "sqlite:///a.db"
    assert choose_registry(environ=both).origin == "DOSSIERHUB_REGISTRY_URL"
    only_conn = {"AIRFLOW_CONN_DOSSIERHUB_REGISTRY": conn}
    chosen = choose_registry(environ=only_conn)
    assert chosen.url.get_secret_value() == "postgresql+psycopg://hub:pw@db:5432/registry"
    assert chosen.origin == "AIRFLOW_CONN_DOSSIERHUB_REGISTRY"
    assert choose_registry(environ={}).origin == "the default"


def test_http_source_connection_gives_base_url_client_and_secret() -> None:
    conn = parse_connection(
        "dossierhub_source_social_insurance",
        json.dumps(
            {
                "conn_type": "https",
                "host": "bhxh.example.gov.vn",
                "port": 8443,
                "schema": "api",
                "login": "dossierhub",
                "password": "s3cret",
                "extra": {"page_size": 200},
            }
        ),
    )
    settings = source_overrides("social_insurance", "social_insurance", conn)
    assert settings == {
        "base_url": "https://bhxh.example.gov.vn:8443/api",
        "client_id": "dossierhub",
        "client_secret": "s3cret",
        "page_size": 200,
    }
    api_key = parse_connection("c", "http://:k3y@one-stop:8102")
    assert source_overrides("one_stop", "one_stop", api_key) == {
        "base_url": "http://one-stop:8102",
        "api_key": "k3y",
    }


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("DOSSIERHUB_", "AIRFLOW"))}
    full.update(env, COLUMNS="200", NO_COLOR="1")
    return subprocess.run(
        [sys.executable, "-m", "dossierhub", *args],
        env=full,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_migrates_and_syncs_the_registry_named_by_the_airflow_connection(
    tmp_path: Path,
) -> None:
    # The sources file names only the connector: the Tax database comes from its Connection,
    # the registry from AIRFLOW_CONN_DOSSIERHUB_REGISTRY, as the DAGs read them.
    source = tmp_path / "tax.db"
    truth = tax.generate(f"sqlite:///{source}", rows=120, seed=5, malformed_share=0.0)
    sources = tmp_path / "sources.yaml"
    sources.write_text("sources:\n  tax:\n    connector: tax\n", encoding="utf-8")
    registry = tmp_path / "hub" / "registry.db"
    env = {
        "DOSSIERHUB_SOURCES_FILE": str(sources),
        "DOSSIERHUB_HASH_KEY": "conn-test-key-" + "c" * 32,
        "AIRFLOW_CONN_DOSSIERHUB_REGISTRY": f"sqlite:///{registry}",
        "AIRFLOW_CONN_DOSSIERHUB_SOURCE_TAX": json.dumps(
            {"conn_type": "sqlite", "host": str(source)}
        ),
    }
    upgraded = _cli(["db", "upgrade"], env, tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "from AIRFLOW_CONN_DOSSIERHUB_REGISTRY" in upgraded.stderr
    assert not (tmp_path / "var").exists()  # not the default registry
    synced = _cli(["sync", "tax", "--format", "json"], env, tmp_path)
    assert synced.returncode == 0, synced.stderr
    with sqlite3.connect(registry) as db:
        [(landed,)] = db.execute("SELECT count(*) FROM dossier WHERE source_system = 'tax'")
    assert landed == truth.valid

    # DOSSIERHUB_REGISTRY_URL, when set, wins over the Connection, and the CLI says so.
    other = tmp_path / "other.db"
    chosen = _cli(
        ["db", "upgrade"], {**env, "DOSSIERHUB_REGISTRY_URL": f"sqlite:///{other}"}, tmp_path
    )
    assert chosen.returncode == 0, chosen.stderr
    assert "from DOSSIERHUB_REGISTRY_URL" in chosen.stderr and other.exists()
