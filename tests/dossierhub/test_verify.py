"""verify: a source's whole quarantine against its size, and its own count against the registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, select, text

from dossierhub import store
from dossierhub.settings import Settings, SourceConfig
from dossierhub.sources import open_connector
from dossierhub.sync import sync_source
from dossierhub.verify import VerificationFailed, verify_source
from models.tables import quarantine
from simulators import tax

KEY = "verify-test-key-" + "v" * 32


def _sync(registry: Engine, config: SourceConfig) -> tuple[int, int]:
    settings = Settings(mode="demo", hash_key=KEY)  # type: ignore[arg-type]
    result = sync_source(registry, open_connector(settings, "tax", config, overrides={}))
    return result.rows_read, result.quarantined


def _verify(registry: Engine, config: SourceConfig) -> bool:
    settings = Settings(mode="demo", hash_key=KEY)  # type: ignore[arg-type]
    connector = open_connector(settings, "tax", config, overrides={})
    try:
        return verify_source(registry, connector, config=config).ok
    finally:
        connector.close()


def test_rerun_rereading_a_quarantined_row_in_the_lookback_window_stays_green(
    tmp_path: Path, sqlite_registry: Engine
) -> None:
    url = f"sqlite:///{tmp_path / 'tax.db'}"
    truth = tax.generate(url, rows=200, seed=7, malformed_share=0.02)
    config = SourceConfig(
        connector="tax", lookback_seconds=1, max_quarantine_share=0.05, settings={"url": url}
    )
    read, quarantined = _sync(sqlite_registry, config)
    assert (read, quarantined) == (200, truth.malformed) and _verify(sqlite_registry, config)

    # A quarantined row is the newest at the source: every later run re-reads it.
    with sqlite_registry.connect() as conn:
        ids = conn.execute(select(quarantine.c.source_id)).scalars().all()
    moved = next(i for i in ids if i.isdigit())
    source = create_engine(url)
    with source.begin() as conn:
        conn.execute(
            text(
                "UPDATE tb_hoso SET NGAY_CAP_NHAT = (SELECT max(NGAY_CAP_NHAT) FROM tb_hoso) "
                "WHERE ID = :id"
            ),
            {"id": int(moved)},
        )
    source.dispose()
    with sqlite_registry.connect() as conn:
        before = store.digest(conn)
    for _ in range(2):  # the change, then a rerun with nothing changed
        read, quarantined = _sync(sqlite_registry, config)
        # The run itself re-read little and set aside the one row: measured over the run,
        # its share would be far above 5%.
        assert 0 < read < 20 and quarantined == 1
        assert quarantined / read > config.max_quarantine_share
        assert _verify(sqlite_registry, config)
    with sqlite_registry.connect() as conn:
        assert store.digest(conn) == before


def test_too_much_quarantine_fails_naming_the_threshold(
    tmp_path: Path, sqlite_registry: Engine
) -> None:
    url = f"sqlite:///{tmp_path / 'dirty.db'}"
    tax.generate(url, rows=100, seed=8, malformed_share=0.2)
    config = SourceConfig(connector="tax", max_quarantine_share=0.1, settings={"url": url})
    _sync(sqlite_registry, config)
    settings = Settings(mode="demo", hash_key=KEY)  # type: ignore[arg-type]
    connector = open_connector(settings, "tax", config, overrides={})
    result = verify_source(sqlite_registry, connector, config=config)
    connector.close()
    assert result.quarantined == 20 and result.registry_count == 80
    assert result.quarantine_share == pytest.approx(0.2)
    with pytest.raises(VerificationFailed, match=r"20 of its 100 .*max_quarantine_share 10\.0%"):
        result.raise_for_problems()


def test_verify_command_exits_1_on_failure_and_0_when_green(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tax.db'}"
    tax.generate(url, rows=60, seed=9, malformed_share=0.1)
    sources = tmp_path / "sources.yaml"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOSSIERHUB_", "AIRFLOW"))}
    env.update(
        DOSSIERHUB_REGISTRY_URL=f"sqlite:///{tmp_path / 'registry.db'}",
        DOSSIERHUB_SOURCES_FILE=str(sources),
        DOSSIERHUB_HASH_KEY=KEY,
        COLUMNS="200",
        NO_COLOR="1",
    )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "dossierhub", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )

    for share, code in ((0.05, 1), (0.2, 0)):
        sources.write_text(
            f"sources:\n  tax:\n    connector: tax\n    max_quarantine_share: {share}\n"
            f"    settings: {{url: '{url}'}}\n",
            encoding="utf-8",
        )
        assert cli("db", "upgrade").returncode == 0
        assert cli("sync", "tax").returncode == 0
        verified = cli("verify", "tax", "--format", "json")
        assert verified.returncode == code, verified.stderr
        [row] = json.loads(verified.stdout)
        assert row["quarantined"] == 6 and row["ok"] is (code == 0)
        if code:
            assert "max_quarantine_share 5.0%" in verified.stderr
