"""The command line as a user meets it: real processes, real databases."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from typer.testing import CliRunner

from dossierhub import cli, reads, store
from tests.dossierhub.test_reads import LATE, quarantine_some

COMMANDS = [
    [],
    ["db"],
    ["db", "upgrade"],
    ["sync"],
    ["sources"],
    ["runs"],
    ["quarantine"],
    ["quarantine", "list"],
    ["quarantine", "show"],
    ["quarantine", "retry"],
    ["simulate"],
    ["simulate", "tax"],
    ["simulate", "finance"],
    ["simulate", "land"],
    ["simulate", "social_insurance"],
    ["simulate", "one_stop"],
    ["demo"],
    ["stats"],
    ["coverage"],
    ["reconcile"],
    ["verify"],
    ["connectors"],
    ["connectors", "list"],
    ["connectors", "test"],
    ["tokens"],
    ["tokens", "create"],
    ["tokens", "list"],
    ["tokens", "revoke"],
    ["serve"],
]


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DOSSIERHUB_")}
    full_env.update(env, COLUMNS="200", NO_COLOR="1")
    return subprocess.run(
        [sys.executable, "-m", "dossierhub", *args],
        env=full_env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        "sources:\n  tax:\n    connector: tax\n    batch_size: 500\n"
        "    settings:\n      url: ${TAX_URL}\n",
        encoding="utf-8",
    )
    return {
        "DOSSIERHUB_REGISTRY_URL": f"sqlite:///{tmp_path / 'registry.db'}",
        "DOSSIERHUB_SOURCES_FILE": str(sources),
        "DOSSIERHUB_HASH_KEY": "cli-test-key-" + "z" * 32,
        "TAX_URL": f"sqlite:///{tmp_path / 'tax.db'}",
    }


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "top")
def test_every_command_has_help(command: list[str]) -> None:
    # In this process: a help page comes from the commands' declarations alone, and every
    # command module is imported with the app (the tests below run `python -m dossierhub`).
    result = CliRunner().invoke(
        cli.app,
        [*command, "--help"],
        prog_name="dossierhub",
        env={"COLUMNS": "200", "NO_COLOR": "1"},
    )
    assert result.exit_code == 0, result.output
    assert "Usage: dossierhub" in result.stdout and len(result.stdout.splitlines()) > 4


@pytest.mark.slow
def test_simulate_sync_runs_and_quarantine_end_to_end(env: dict[str, str], tmp_path: Path) -> None:
    simulated = run(
        [
            "simulate",
            "tax",
            "--url",
            env["TAX_URL"],
            "--rows",
            "1200",
            "--seed",
            "3",
            "--malformed-share",
            "0.05",
        ],
        env,
        tmp_path,
    )
    assert simulated.returncode == 0, simulated.stderr
    truth = json.loads(simulated.stdout.strip().splitlines()[-1])
    assert truth["rows"] == 1200 and truth["malformed"] == 60

    assert run(["db", "upgrade"], env, tmp_path).returncode == 0
    synced = run(["sync", "tax", "--format", "json"], env, tmp_path)
    assert synced.returncode == 0, synced.stderr
    [summary] = json.loads(synced.stdout)
    assert (summary["read"], summary["inserted"], summary["quarantined"]) == (1200, 1140, 60)

    again = json.loads(run(["sync", "tax", "--format", "json"], env, tmp_path).stdout)[0]
    assert (again["inserted"], again["updated"]) == (0, 0)

    runs = json.loads(run(["runs", "--format", "json"], env, tmp_path).stdout)
    assert [r["status"] for r in runs] == ["succeeded", "succeeded"]
    assert runs[1]["cursor_after"] == runs[0]["cursor_before"]

    listed = json.loads(
        run(["quarantine", "list", "--format", "json", "--limit", "100"], env, tmp_path).stdout
    )
    assert len(listed) == 60
    shown = json.loads(
        run(["quarantine", "show", str(listed[0]["id"]), "--format", "json"], env, tmp_path).stdout
    )
    assert shown["reasons"] and shown["payload"]["ID"] is not None


def test_quarantine_list_says_when_it_lists_only_part_and_shows_local_times(
    env: dict[str, str], tmp_path: Path
) -> None:
    assert run(["db", "upgrade"], env, tmp_path).returncode == 0
    quarantine_some(store.open_registry(env["DOSSIERHUB_REGISTRY_URL"]))

    part = run(["quarantine", "list", "--source", "tax", "--limit", "2"], env, tmp_path)
    assert part.returncode == 0, part.stderr
    assert "listed 2 of 3 quarantine entries (oldest first); `--limit 3` lists them all" in (
        part.stderr
    )
    assert "quarantine (2 of 3)" in part.stdout and "T3" not in part.stdout
    listed = run(["quarantine", "list", "--format", "json"], env, tmp_path)
    rows = json.loads(listed.stdout)
    assert [r["source_id"] for r in rows] == ["T1", "T2", "T3", "L1"]
    assert "listed" not in listed.stderr  # all of them: nothing to say
    for row in rows:  # the UTC time kept as it was, the local one beside it
        utc = datetime.fromisoformat(row["last_seen_at"]).replace(tzinfo=UTC)
        assert datetime.fromisoformat(row["last_seen_local"]) == utc
        assert row["last_seen_local"].endswith("+07:00")

    shown = run(["quarantine", "show", str(rows[0]["id"])], env, tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert f"finished_at: {reads.with_local_times(LATE.message)} [before_received]" in (
        shown.stdout.replace("\n", " ")
    ), shown.stdout
    as_json = json.loads(
        run(["quarantine", "show", str(rows[0]["id"]), "-f", "json"], env, tmp_path).stdout
    )
    assert as_json["reasons"][0]["message"] == LATE.message  # the stored text, unchanged
    assert as_json["reasons"][0]["message_local"] == reads.with_local_times(LATE.message)
    assert as_json["first_seen_local"].endswith("+07:00")


def test_unknown_source_names_the_configured_ones(env: dict[str, str], tmp_path: Path) -> None:
    run(["db", "upgrade"], env, tmp_path)
    result = run(["sync", "nope"], env, tmp_path)
    assert result.returncode == 1
    assert "unknown source 'nope'; configured sources: tax" in result.stderr
    assert "Traceback" not in result.stderr


def test_registry_not_migrated_says_to_run_db_upgrade(env: dict[str, str], tmp_path: Path) -> None:
    result = run(["sync", "tax"], env, tmp_path)
    assert result.returncode == 1
    assert "run `dossierhub db upgrade` first" in result.stderr


def test_unreachable_registry_is_named_without_its_password(
    env: dict[str, str], tmp_path: Path
) -> None:
    env["DOSSIERHUB_REGISTRY_URL"] = "postgresql+psycopg://hub:s3cretpw@127.0.0.1:1/registry"
    result = run(["runs"], env, tmp_path)
    assert result.returncode == 1
    assert (
        "cannot open the registry at postgresql+psycopg://hub:***@127.0.0.1:1/registry"
        in result.stderr
    )
    assert "DOSSIERHUB_REGISTRY_URL" in result.stderr
    assert "s3cretpw" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "DOSSIERHUB_REGISTRY_URL is not a database URL"),
        ("mysql+pymysql://root@127.0.0.1/test", "mysql is not supported as the registry"),
    ],
)
def test_wrong_registry_url_says_what_is_supported(
    env: dict[str, str], tmp_path: Path, url: str, message: str
) -> None:
    env["DOSSIERHUB_REGISTRY_URL"] = url
    result = run(["db", "upgrade"], env, tmp_path)
    assert result.returncode == 1
    assert message in result.stderr


def test_unreachable_source_database_is_a_clear_error(env: dict[str, str], tmp_path: Path) -> None:
    env["TAX_URL"] = "postgresql+psycopg://reader:t0psecret@127.0.0.1:1/thue"
    run(["db", "upgrade"], env, tmp_path)
    result = run(["sync", "tax"], env, tmp_path)
    assert result.returncode == 1
    assert (
        "source 'tax': cannot reach the database at postgresql+psycopg://reader:***@127.0.0.1:1/thue"
        in result.stderr
    )
    assert "'url' setting" in result.stderr
    assert "t0psecret" not in result.stderr
    runs = json.loads(run(["runs", "--format", "json"], env, tmp_path).stdout)
    assert runs[0]["status"] == "failed" and "cannot reach" in runs[0]["error"]


def test_production_mode_refuses_the_demo_hash_key(env: dict[str, str], tmp_path: Path) -> None:
    del env["DOSSIERHUB_HASH_KEY"]
    run(["db", "upgrade"], env, tmp_path)
    result = run(["sync", "tax"], env, tmp_path)
    assert result.returncode == 1
    assert "DOSSIERHUB_HASH_KEY is not set" in result.stderr


def test_missing_environment_variable_in_sources_file_is_named(
    env: dict[str, str], tmp_path: Path
) -> None:
    del env["TAX_URL"]
    run(["db", "upgrade"], env, tmp_path)
    result = run(["sync", "tax"], env, tmp_path)
    assert result.returncode == 1
    assert "source 'tax' setting 'url' needs the environment variable TAX_URL" in result.stderr


def test_unset_variable_breaks_only_the_source_that_needs_it(
    env: dict[str, str], tmp_path: Path
) -> None:
    sources = Path(env["DOSSIERHUB_SOURCES_FILE"])
    sources.write_text(
        sources.read_text(encoding="utf-8")
        + "  land:\n    connector: land\n    settings:\n      url: ${LAND_URL}\n",
        encoding="utf-8",
    )
    problem = "source 'land' setting 'url' needs the environment variable LAND_URL"
    assert (
        run(["simulate", "tax", "--url", env["TAX_URL"], "--rows", "50"], env, tmp_path).returncode
        == 0
    )
    run(["db", "upgrade"], env, tmp_path)

    listed = run(["sources", "--format", "json"], env, tmp_path)
    assert listed.returncode == 0, listed.stderr
    status = {row["source"]: row["status"] for row in json.loads(listed.stdout)}
    assert status["tax"] == "ok" and problem in status["land"]

    assert run(["sync", "tax"], env, tmp_path).returncode == 0
    one = run(["sync", "land"], env, tmp_path)
    assert one.returncode == 1 and problem in one.stderr

    every = run(["sync", "--all", "--format", "json"], env, tmp_path)
    assert every.returncode == 1
    assert problem in every.stderr and "Traceback" not in every.stderr
    assert [r["source"] for r in json.loads(every.stdout)] == ["tax"]

    reconciled = run(["reconcile", "--format", "json"], env, tmp_path)
    assert reconciled.returncode == 0, reconciled.stderr
    rows = {r["source_system"]: r for r in json.loads(reconciled.stdout)}
    assert rows["tax"]["source_count"] == 50 and rows["tax"]["error"] is None
    assert rows["land"]["source_count"] is None and problem in rows["land"]["error"]


def test_misspelt_variable_and_missing_driver_are_one_clear_line(
    env: dict[str, str], tmp_path: Path
) -> None:
    run(["db", "upgrade"], env, tmp_path)
    misspelt = run(["sources"], {**env, "DOSSIERHUB_SOURCE_FILE": "other.yaml"}, tmp_path)
    assert misspelt.returncode == 1 and "Traceback" not in misspelt.stderr
    assert "did you mean DOSSIERHUB_SOURCES_FILE?" in misspelt.stderr
    no_driver = run(
        ["sync", "tax"], {**env, "TAX_URL": "mysql+mysqldb://u@127.0.0.1:1/t"}, tmp_path
    )
    assert no_driver.returncode == 1 and "Traceback" not in no_driver.stderr
    assert "driver 'mysqldb'" in no_driver.stderr and "mysql+pymysql://" in no_driver.stderr


def test_demo_builds_syncs_and_balances(tmp_path: Path) -> None:
    result = run(["demo", "--rows", "400"], {}, tmp_path)
    assert result.returncode == 0, result.stderr
    table = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assert len(table) == 5 and all(line.rstrip(" │").endswith("yes") for line in table), table
    portal = re.search(r"portal only:\s+([\d.]+)%", result.stdout)
    unified = re.search(r"unified:\s+([\d.]+)%", result.stdout)
    assert portal and unified and float(unified.group(1)) > 2 * float(portal.group(1))
    assert (tmp_path / "var" / "registry.db").exists()
    again = run(["demo", "--rows", "400"], {}, tmp_path)
    assert again.returncode == 0, again.stderr
    inserted = [
        line.split("│")[4].strip() for line in again.stdout.splitlines() if line.startswith("│")
    ]
    assert inserted == ["0"] * 5


def test_connectors_list_and_conformance_test_of_a_configured_source(
    env: dict[str, str], tmp_path: Path
) -> None:
    listed = run(["connectors", "list", "--format", "json"], env, tmp_path)
    assert listed.returncode == 0, listed.stderr
    names = {row["connector"]: row["status"] for row in json.loads(listed.stdout)}
    assert names["tax"] == "ok" and names["land"] == "ok" and names["finance"] == "ok"
    run(
        ["simulate", "tax", "--url", env["TAX_URL"], "--rows", "300", "--malformed-share", "0.1"],
        env,
        tmp_path,
    )
    passed = run(["connectors", "test", "tax"], env, tmp_path)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert passed.stdout.count("ok ") == 6
    env["TAX_URL"] = f"sqlite:///{tmp_path / 'missing.db'}"
    failed = run(["connectors", "test", "tax"], env, tmp_path)
    assert (
        failed.returncode == 1 and "FAIL" in failed.stdout and "tb_hoso not found" in failed.stdout
    )


def test_demo_placeholder_secrets_are_refused_outside_demo_mode(tmp_path: Path) -> None:
    env = {
        "DOSSIERHUB_REGISTRY_URL": f"sqlite:///{tmp_path / 'registry.db'}",
        "DOSSIERHUB_HASH_KEY": "cli-test-key-" + "z" * 32,
    }
    assert run(["db", "upgrade"], env, tmp_path).returncode == 0
    refused = run(["sync", "one_stop"], env, tmp_path)  # the bundled example sources file
    assert refused.returncode == 1
    assert "setting 'api_key' is a demo placeholder" in refused.stderr
    assert "not-for-production" not in refused.stderr


def test_registry_connections_terminated_mid_sync_print_one_line_and_a_rerun_completes(
    env: dict[str, str], tmp_path: Path, pg_url: str
) -> None:
    """The registry's sessions are terminated (a restart, an operator's pg_terminate_backend)
    while a sync writes: one line says what happened and that a rerun is safe, no traceback;
    the rerun then loads everything."""
    env["DOSSIERHUB_REGISTRY_URL"] = pg_url
    (tmp_path / "sources.yaml").write_text(
        "sources:\n  tax:\n    connector: tax\n    batch_size: 50\n"
        "    settings:\n      url: ${TAX_URL}\n",
        encoding="utf-8",
    )
    rows = ["--rows", "4000", "--seed", "5", "--malformed-share", "0"]
    assert run(["simulate", "tax", "--url", env["TAX_URL"], *rows], env, tmp_path).returncode == 0
    assert run(["db", "upgrade"], env, tmp_path).returncode == 0
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    database = make_url(pg_url).database
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DOSSIERHUB_")}
    full_env.update(env, COLUMNS="80", NO_COLOR="1")
    sync = subprocess.Popen(
        [sys.executable, "-m", "dossierhub", "sync", "tax"],
        env=full_env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # The session holding the sync lock is left alone: losing it is SyncLockLostError's case.
    others = text(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :db"
        " AND pid <> pg_backend_pid() AND pid NOT IN"
        " (SELECT pid FROM pg_locks WHERE locktype = 'advisory')"
    )
    try:
        with admin.connect() as conn:
            writing = text("SELECT count(*) FROM sync_run WHERE batches > 0")
            while sync.poll() is None and not conn.execute(writing).scalar_one():
                time.sleep(0.02)
            while sync.poll() is None:
                conn.execute(others, {"db": database})
                time.sleep(0.02)
        _, stderr = sync.communicate(timeout=60)
    finally:
        if sync.poll() is None:
            sync.kill()
        admin.dispose()
    assert sync.returncode == 1
    assert "Traceback" not in stderr
    # which registry, then what happened (the progress display leaves a blank line)
    said, line = [text for text in stderr.splitlines() if text.strip()]
    assert said.startswith("registry postgresql+psycopg://")
    assert line.startswith("error: registry connection lost during the sync of source 'tax'")
    assert "a rerun is safe" in line
    again = run(["sync", "tax", "--format", "json"], env, tmp_path)
    assert again.returncode == 0, again.stderr
    registry = create_engine(pg_url)
    with registry.connect() as conn:
        held = conn.execute(text("SELECT count(*) FROM dossier")).scalar_one()
        statuses = list(conn.execute(text("SELECT status FROM sync_run ORDER BY id")).scalars())
    registry.dispose()
    assert held == 4000
    assert statuses[0] in {"failed", "abandoned"} and statuses[1:] == ["succeeded"]
