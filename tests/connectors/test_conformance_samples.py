"""The plain-Python suite runner and its sample factories: a fresh source for every check.

`Conformance.run()` is what runs without pytest; each check gets its own temporary folder and
its own sample, built by `setup_source` and cleaned up when the check ends, whatever its
outcome. `scratch_database` makes that sample a database of its own on a real server.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from connectors.base import Connector
from connectors.conformance import (
    CheckResult,
    Conformance,
    ConformanceError,
    Promise,
    check_mapping,
    context_for,
    read_bounded,
    scratch_database,
)
from connectors.errors import ConfigError
from connectors.land import LandConnector
from connectors.tax import TaxConnector
from simulators import land, tax
from tests.connectors.test_conformance import MappingKeyError

CHECKS = ["health", "mapping", "unique_ids", "pagination", "resume", "changes", "count"]


class TaxSample(Conformance):
    """Tax on SQLite: a sample built afresh in each check's folder."""

    connector: type[TaxConnector] = TaxConnector

    def __init__(self) -> None:
        self.folders: list[Path] = []

    def setup_source(self, tmp_path: Path) -> None:
        self.folders.append(tmp_path)
        self.url = f"sqlite:///{tmp_path / 'tax.db'}"
        tax.generate(self.url, rows=120, seed=5, malformed_share=0.1, shared_updated_at=20)

    def make_connector(self) -> Connector:
        return self.connector(context_for("tax", {"url": self.url}, batch_size=20))

    def make_changes(self) -> list[str]:
        return [str(i) for i in tax.touch(self.url, share=0.05, seed=2)]


def outcomes(results: list[CheckResult]) -> dict[str, str]:
    return {result.name: result.outcome for result in results}


def test_each_check_runs_on_a_fresh_sample_in_its_own_folder_removed_afterwards() -> None:
    suite = TaxSample()
    results = list(suite.run())
    assert outcomes(results) == dict.fromkeys(CHECKS, "passed"), results
    assert len(set(suite.folders)) == len(CHECKS)
    assert not [folder for folder in suite.folders if folder.exists()]


def test_a_broken_promise_is_reported_with_its_records_and_the_rest_still_run() -> None:
    class Broken(TaxSample):
        connector = MappingKeyError

    results = {result.name: result for result in Broken().run()}
    mapping = results["mapping"]
    assert (mapping.outcome, mapping.promise) == ("failed", Promise.MAPPING)
    assert (
        "12 record(s)" in mapping.detail and "id '10': KeyError: 'NGAY_TIEP_NHAN'" in mapping.detail
    )
    assert "promise broken" not in mapping.detail  # the promise is its own field
    assert [results[name].outcome for name in ("health", "unique_ids", "pagination")] == [
        "passed"
    ] * 3


def test_a_failure_names_the_records_that_break_the_promise(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tax.db'}"
    tax.generate(url, rows=120, seed=5, malformed_share=0.1)
    connector = MappingKeyError(context_for("tax", {"url": url}, batch_size=20))
    with pytest.raises(ConformanceError) as failed:
        check_mapping(connector, read_bounded(connector).records)
    assert failed.value.promise is Promise.MAPPING
    assert sorted(failed.value.source_ids, key=int) == [str(i) for i in range(10, 121, 10)]
    assert str(failed.value).endswith(f"\npromise broken: {Promise.MAPPING}")


def test_an_unhealthy_source_skips_the_other_checks_saying_why() -> None:
    class NoTable(TaxSample):
        def setup_source(self, tmp_path: Path) -> None:
            self.url = f"sqlite:///{tmp_path / 'empty.db'}"

    results = list(NoTable().run())
    assert outcomes(results) == {"health": "failed", **dict.fromkeys(CHECKS[1:], "skipped")}
    assert "tb_hoso" in results[0].detail
    assert {result.detail for result in results[1:]} == {"the source is not healthy"}


def test_an_error_outside_the_promises_fails_that_check_only() -> None:
    class ChangesCrash(TaxSample):
        def make_changes(self) -> list[str]:
            raise RuntimeError("the sample's change script lost its database")

    results = {result.name: result for result in ChangesCrash().run()}
    assert results["changes"].outcome == "failed"
    assert results["changes"].detail == "RuntimeError: the sample's change script lost its database"
    assert results["count"].outcome == "passed"


def test_enter_context_outside_a_check_is_refused() -> None:
    with (
        pytest.raises(RuntimeError, match=r"TaxSample.enter_context\(\) is for setup_source"),
        scratch_database("sqlite://") as url,
    ):
        TaxSample().enter_context(scratch_database(url))


# -- scratch databases ----------------------------------------------------------------------
def databases(server_url: str, prefix: str) -> set[str]:
    engine = create_engine(server_url)
    query = {
        "postgresql": "SELECT datname FROM pg_database",
        "mysql": "SELECT schema_name FROM information_schema.schemata",
    }[engine.dialect.name]
    try:
        with engine.connect() as conn:
            return {name for name in conn.execute(text(query)).scalars() if name.startswith(prefix)}
    finally:
        engine.dispose()


@pytest.mark.slow
@pytest.mark.postgres
def test_a_scratch_database_per_check_on_postgresql_dropped_afterwards(pg_url: str) -> None:
    class LandOnPostgreSQL(Conformance):
        def __init__(self) -> None:
            self.urls: list[str] = []

        def setup_source(self, tmp_path: Path) -> None:
            self.url = self.enter_context(scratch_database(pg_url, label="land"))
            self.urls.append(self.url)
            land.generate(self.url, rows=120, seed=12, malformed_share=0.1, forwarded=10)

        def make_connector(self) -> Connector:
            context = context_for(
                "land", {"url": self.url}, batch_size=30, lookback=timedelta(minutes=5)
            )
            return LandConnector(context)

        def make_changes(self) -> list[str]:
            return [str(i) for i in land.advance(self.url, share=0.05, seed=3)]

    suite = LandOnPostgreSQL()
    results = list(suite.run())
    assert outcomes(results) == dict.fromkeys(CHECKS, "passed"), results
    names = {make_url(url).database for url in suite.urls}
    assert len(names) == len(CHECKS) and all(n and n.startswith("conformance_land_") for n in names)
    assert not names & databases(pg_url, "conformance_land_")


@pytest.mark.mariadb
def test_a_scratch_database_is_dropped_on_mariadb_when_its_check_fails(mariadb_url: str) -> None:
    class BrokenOnMariaDB(TaxSample):
        connector = MappingKeyError

        def setup_source(self, tmp_path: Path) -> None:
            self.url = self.enter_context(scratch_database(mariadb_url, label="tax"))
            self.folders.append(Path(make_url(self.url).database or ""))
            tax.generate(self.url, rows=120, seed=5, malformed_share=0.1)

    suite = BrokenOnMariaDB()
    assert outcomes(list(suite.run()))["mapping"] == "failed"
    names = {folder.name for folder in suite.folders}
    assert len(names) == len(CHECKS) and not names & databases(mariadb_url, "conformance_tax_")


def test_a_scratch_sqlite_database_is_a_file_removed_afterwards() -> None:
    with scratch_database("sqlite://", label="tax") as url:
        path = Path(make_url(url).database or "")
        tax.generate(url, rows=10, seed=1)
        assert path.name.startswith("conformance_tax_") and path.exists()
    assert not path.exists() and not path.parent.exists()


def test_an_unreachable_server_is_a_config_error_without_the_password() -> None:
    with (
        pytest.raises(ConfigError) as refused,
        scratch_database("postgresql+psycopg://kit:s3cret-pw@127.0.0.1:1/postgres"),
    ):
        pass
    message = str(refused.value)
    assert "create on postgresql+psycopg://kit:***@127.0.0.1:1/postgres failed" in message
    assert "may create databases" in message and "s3cret-pw" not in message


def test_an_unsupported_server_is_named() -> None:
    with (
        pytest.raises(ConfigError, match="mssql is not supported; give a PostgreSQL"),
        scratch_database("mssql+pyodbc://sa@host/master"),
    ):
        pass
