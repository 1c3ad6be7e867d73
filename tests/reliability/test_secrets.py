"""Secrets stay out of output, logs and the registry; personal identifiers are never stored."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import String, cast, create_engine, select
from sqlalchemy import text as text_query

from dossierhub import store
from models import migrate
from models.tables import metadata
from simulators import tax

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "Pw-" + "7f3a9c" * 4  # PostgreSQL trusts local connections, so any password works
HASH_KEY = "hash-key-never-printed-" + "k" * 20


def cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("DOSSIERHUB_")}
    full.update(env, PYTHONPATH=str(ROOT), COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "dossierhub", *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_a_full_run_never_prints_or_logs_a_secret(pg_url: str, tmp_path: Path) -> None:
    source = pg_url.replace("postgres@", f"postgres:{PASSWORD}@")
    tax.generate(pg_url, rows=800, seed=4, malformed_share=0.05)
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        "sources:\n  tax:\n    connector: tax\n    batch_size: 100\n    settings:\n      url: ${TAX_URL}\n",
        encoding="utf-8",
    )
    env = {
        "DOSSIERHUB_REGISTRY_URL": f"sqlite:///{tmp_path / 'registry.db'}",
        "DOSSIERHUB_SOURCES_FILE": str(sources),
        "DOSSIERHUB_HASH_KEY": HASH_KEY,
        "TAX_URL": source,
        # The most talkative logging the libraries offer.
        "PYTHONWARNINGS": "always",
    }
    outputs = []
    for args in (
        ["db", "upgrade"],
        ["sync", "tax"],
        ["runs", "--format", "json"],
        ["quarantine", "list", "--format", "json"],
        ["reconcile", "-f", "json"],
        ["sources", "--format", "json"],
    ):
        result = cli(args, env)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout + result.stderr)
    # A failing run too: its error message must not carry the password either.
    env["TAX_URL"] = source.replace("127.0.0.1:5432", "127.0.0.1:1")
    failed = cli(["sync", "tax"], env)
    assert failed.returncode == 1 and "cannot reach the database" in failed.stderr
    outputs.append(failed.stdout + failed.stderr)
    everything = "\n".join(outputs)
    assert PASSWORD not in everything
    assert HASH_KEY not in everything
    assert "***" in failed.stderr  # the URL is shown, masked

    registry = create_engine(f"sqlite:///{tmp_path / 'registry.db'}")
    with registry.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(*(cast(c, String) for c in table.c))):
                text = " ".join(str(v) for v in row)
                assert PASSWORD not in text and HASH_KEY not in text, table.name
    registry.dispose()


def test_engine_logging_at_debug_carries_no_secret(
    pg_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from datetime import timedelta

    from pydantic import SecretStr

    from connectors.base import ConnectorContext
    from connectors.identifiers import IdentifierHasher
    from connectors.tax import TaxConnector
    from dossierhub.sync import sync_source

    tax.generate(pg_url, rows=300, seed=6, malformed_share=0.05)
    registry = store.open_registry(f"sqlite:///{tmp_path / 'r.db'}")
    migrate.upgrade(registry)
    connector = TaxConnector(
        ConnectorContext(
            source="tax",
            settings={"url": pg_url.replace("postgres@", f"postgres:{PASSWORD}@")},
            hasher=IdentifierHasher(SecretStr(HASH_KEY)),
            batch_size=100,
            lookback=timedelta(0),
        )
    )
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
        try:
            sync_source(registry, connector)
        finally:
            logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert logged  # the engine's SQL log really was captured
    assert PASSWORD not in logged and HASH_KEY not in logged
    assert PASSWORD not in repr(connector.context) and PASSWORD not in repr(connector.settings)
    registry.dispose()


def test_no_personal_identifier_in_clear_anywhere_after_a_demo_sync(tmp_path: Path) -> None:
    """Every identifier the five reference systems hold is searched for in every registry column."""
    result = cli(
        ["demo", "--rows", "300", "--var", str(tmp_path / "var")],
        {"DOSSIERHUB_REGISTRY_URL": f"sqlite:///{tmp_path / 'registry.db'}"},
    )
    assert result.returncode == 0, result.stderr
    identifiers: set[str] = set()
    tax_db = create_engine(f"sqlite:///{tmp_path / 'var' / 'tax.db'}")
    land_db = create_engine(f"sqlite:///{tmp_path / 'var' / 'land.db'}")
    with tax_db.connect() as conn:
        identifiers |= {str(v) for (v,) in conn.execute(text_query("SELECT MST FROM tb_hoso")) if v}
    with land_db.connect() as conn:
        identifiers |= {
            str(v) for (v,) in conn.execute(text_query("SELECT so_cccd FROM ho_so_dang_ky")) if v
        }
    tax_db.dispose()
    land_db.dispose()
    for export in (tmp_path / "var" / "finance-drop").glob("*.*"):
        identifiers |= set(
            re.findall(
                r"\b\d{10}(?:-\d{3})?\b", export.read_text(encoding="utf-8", errors="replace")
            )
        )
    identifiers = {i for i in identifiers if len(re.sub(r"\D", "", i)) >= 9}
    assert len(identifiers) > 300
    registry = create_engine(f"sqlite:///{tmp_path / 'registry.db'}")
    with registry.connect() as conn:
        stored = "\n".join(
            " ".join(str(v) for v in row)
            for table in metadata.sorted_tables
            for row in conn.execute(select(*(cast(c, String) for c in table.c)))
        )
    registry.dispose()
    leaked = [i for i in identifiers if i in stored]
    assert not leaked, f"{len(leaked)} identifiers in clear, e.g. {leaked[:3]}"


@pytest.mark.slow
def test_a_password_in_a_url_query_string_is_masked_wherever_shown_or_stored(
    tmp_path: Path,
) -> None:
    import httpx

    from dossierhub import api, tokens
    from models.tables import reconciliation, sync_run
    from tests.dossierhub.test_api import serving

    # Unreachable on purpose: the failure message names the URL, and must mask it.
    url = f"mysql+pymysql://reader@127.0.0.1:1/thue?charset=utf8mb4&password={PASSWORD}"
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        "sources:\n  tax:\n    connector: tax\n    settings:\n      url: ${TAX_URL}\n",
        encoding="utf-8",
    )
    registry_url = f"sqlite:///{tmp_path / 'registry.db'}"
    env = {
        "DOSSIERHUB_REGISTRY_URL": registry_url,
        "DOSSIERHUB_SOURCES_FILE": str(sources),
        "DOSSIERHUB_HASH_KEY": HASH_KEY,
        "TAX_URL": url,
    }
    assert cli(["db", "upgrade"], env).returncode == 0
    failed = cli(["sync", "tax"], env)
    assert failed.returncode == 1 and "cannot reach the database" in failed.stderr
    outputs = [failed.stdout + failed.stderr]
    for args in (
        ["runs"],
        ["runs", "--format", "json"],
        ["reconcile", "-f", "json"],
        ["connectors", "test", "tax"],
    ):
        result = cli(args, env)
        outputs.append(result.stdout + result.stderr)
    everything = "\n".join(outputs)
    assert PASSWORD not in everything
    assert "password=***" in failed.stderr  # the URL is shown, masked

    registry = store.open_registry(registry_url)
    with registry.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(*(cast(c, String) for c in table.c))):
                assert PASSWORD not in " ".join(str(v) for v in row), table.name
    # An error stored before errors were masked on write is still served masked.
    legacy = f"FatalSourceError: cannot reach {url}"
    with registry.begin() as conn:
        conn.execute(sync_run.update().values(error=legacy))
        conn.execute(reconciliation.update().values(error=legacy))
    agency = tokens.create_token(registry, role="agency:tax", name="masking test")
    statistics = tokens.create_token(registry, role="statistics", name="masking test")
    with serving(api.create_app(registry)) as base, httpx.Client(base_url=base) as client:
        served = [
            client.get(path, headers={"Authorization": f"Bearer {token}"})
            for path, token in (
                ("/api/v1/sources", agency),
                ("/api/v1/sources/tax", agency),
                ("/api/v1/sources/tax/runs", agency),
                ("/api/v1/reconciliation", statistics),
            )
        ]
    assert [r.status_code for r in served] == [200] * 4
    assert all(PASSWORD not in r.text for r in served)
    assert "password=***" in served[2].text
    shown = cli(["runs", "--format", "json"], env)
    assert PASSWORD not in shown.stdout and "password=***" in shown.stdout
    registry.dispose()
