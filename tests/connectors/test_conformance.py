"""The conformance kit on the shipped connectors, and on broken connectors it must catch."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest

from connectors.base import Batch, Connector, Cursor, Health, Period, RawRecord
from connectors.land import LandConnector
from connectors.tax import TaxConnector
from connectors.testing import (
    ConnectorConformance,
    Limits,
    check_changes,
    check_count,
    check_health,
    check_mapping,
    check_pagination,
    check_resume,
    check_unique_ids,
    context_for,
    read_bounded,
)
from models.dossier import DossierRecord
from simulators import land, tax

pytest_plugins = ["pytester"]


# -- the shipped connectors: a few lines each -----------------------------------------------
class TestTaxConformance(ConnectorConformance):
    def setup_source(self, tmp_path: Path) -> None:
        self.url = f"sqlite:///{tmp_path / 'tax.db'}"
        tax.generate(self.url, rows=300, seed=11, malformed_share=0.1, shared_updated_at=40)

    def make_connector(self) -> Connector:
        return TaxConnector(context_for("tax", {"url": self.url}, batch_size=50))

    def make_changes(self) -> Iterable[str]:
        return [str(i) for i in tax.touch(self.url, share=0.05, seed=2)]


class TestLandConformance(ConnectorConformance):
    def setup_source(self, tmp_path: Path) -> None:
        self.url = f"sqlite:///{tmp_path / 'land.db'}"
        self.truth = land.generate(self.url, rows=300, seed=11, malformed_share=0.1, forwarded=20)

    def make_connector(self) -> Connector:
        return LandConnector(context_for("land", {"url": self.url}, batch_size=50))

    def make_changes(self) -> Iterable[str]:
        moved = land.advance(self.url, share=0.03, seed=2, steps=2)
        fixed = self.truth.malformed_ids[:5]
        land.repair(self.url, ids=fixed)
        return [str(i) for i in (*moved, *fixed)]


@pytest.mark.postgres
class TestLandOnPostgreSQLConformance(ConnectorConformance):
    @pytest.fixture(autouse=True)
    def _land_database(self, pg_url: str) -> None:
        self.url = pg_url
        land.generate(pg_url, rows=300, seed=12, malformed_share=0.1, forwarded=20)

    def make_connector(self) -> Connector:
        # A look-back window, as in production: re-reads inside it are allowed, no more.
        context = context_for(
            "land", {"url": self.url}, batch_size=50, lookback=timedelta(minutes=5)
        )
        return LandConnector(context)

    def make_changes(self) -> Iterable[str]:
        return [str(i) for i in land.advance(self.url, share=0.05, seed=3)]


# -- broken connectors the kit must catch ---------------------------------------------------
@pytest.fixture
def tax_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'tax.db'}"
    tax.generate(url, rows=120, seed=4, malformed_share=0.1)
    return url


def make(cls: type[TaxConnector], url: str, **options: Any) -> TaxConnector:
    return cls(context_for("tax", {"url": url}, **{"batch_size": 20, **options}))


class RepeatsFirstPage(TaxConnector):
    """Yields the first page again at the end, as an off-by-one offset would."""

    def read(self, cursor: Cursor | None) -> Iterator[Batch]:
        batches = list(super().read(cursor))
        yield from batches
        if batches:
            yield Batch(batches[0].records, {**(batches[-1].cursor or {}), "again": True})


class MappingKeyError(TaxConnector):
    """A mapping that indexes a column the source renamed."""

    def to_canonical(self, raw: RawRecord) -> DossierRecord:
        if int(raw.source_id or 0) % 10 == 0:
            raise KeyError("NGAY_TIEP_NHAN")
        return super().to_canonical(raw)


class NeverEnds(TaxConnector):
    """Starts over at the end of the source, for ever."""

    def read(self, cursor: Cursor | None) -> Iterator[Batch]:
        while True:
            yield from super().read(cursor)


class StuckOnLastPage(TaxConnector):
    """Serves the last page again and again with the same cursor."""

    def read(self, cursor: Cursor | None) -> Iterator[Batch]:
        last = None
        for batch in super().read(cursor):
            last = batch
            yield batch
        while last is not None:
            yield last


class IgnoresCursor(TaxConnector):
    """Reads everything again whatever cursor it is given."""

    def read(self, cursor: Cursor | None) -> Iterator[Batch]:
        return super().read(None)


class SkipsAfterResume(TaxConnector):
    """Drops the first record of every resumed read."""

    def read(self, cursor: Cursor | None) -> Iterator[Batch]:
        first = cursor is not None
        for batch in super().read(cursor):
            if first and batch.records:
                batch, first = Batch(batch.records[1:], batch.cursor), False
            yield batch


class CountsMalformedTwice(TaxConnector):
    def count(self, period: Period | None) -> int:
        return super().count(period) + 3


class Unhealthy(TaxConnector):
    def check(self) -> Health:
        return Health(False, "table tb_hoso is locked for maintenance")


class ForgetsPersonalFields(TaxConnector):
    """Hashes MST when mapping but does not declare it, so quarantine would keep it in clear."""

    personal_fields: ClassVar[dict[str, str]] = {}


class OversizedBatches(TaxConnector):
    def read(self, cursor: Cursor | None) -> Iterator[Batch]:
        records = [r for batch in super().read(cursor) for r in batch.records]
        if records:
            yield Batch(records, {"updated_at": "2026-11-01T00:00:00", "key": 10**9})


def test_duplicate_ids_fail_naming_the_connector(tax_url: str) -> None:
    connector = make(RepeatsFirstPage, tax_url)
    reading = read_bounded(connector)
    with pytest.raises(
        AssertionError, match=r"connector RepeatsFirstPage \(source 'tax'\).*20 source id"
    ):
        check_unique_ids(connector, reading)


def test_a_mapping_raising_keyerror_fails_with_the_records_and_the_mapping_file(
    tax_url: str,
) -> None:
    connector = make(MappingKeyError, tax_url)
    with pytest.raises(AssertionError) as failed:
        check_mapping(connector, read_bounded(connector).records)
    message = str(failed.value)
    assert "connector MappingKeyError (source 'tax')" in message
    assert "12 record(s)" in message and "KeyError: 'NGAY_TIEP_NHAN'" in message
    # The broken to_canonical is this module's: the message names the file to fix.
    assert "id '10'" in message and "tests/connectors/test_conformance.py" in message


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (NeverEnds, r"NeverEnds .*did not end after 30 batches"),
        (StuckOnLastPage, r"StuckOnLastPage .*same cursor as the one before"),
        (OversizedBatches, r"OversizedBatches .*batch of 120 records exceeds the batch size 20"),
    ],
)
def test_a_read_that_does_not_end_or_pages_badly_fails(
    tax_url: str, broken: type[TaxConnector], message: str
) -> None:
    with pytest.raises(AssertionError, match=message):
        check_pagination(make(broken, tax_url), limits=Limits(max_batches=30))


def test_a_read_that_ignores_the_cursor_fails(tax_url: str) -> None:
    connector = make(IgnoresCursor, tax_url)
    with pytest.raises(
        AssertionError, match=r"IgnoresCursor .*re-read \d+ record\(s\) last updated before"
    ):
        check_resume(connector, read_bounded(connector))


def test_a_resumed_read_that_skips_a_record_fails(tax_url: str) -> None:
    connector = make(SkipsAfterResume, tax_url)
    with pytest.raises(AssertionError, match=r"SkipsAfterResume .*skipped 1 record"):
        check_resume(connector, read_bounded(connector))


def test_an_incremental_read_missing_changes_fails(tax_url: str) -> None:
    connector = make(SkipsAfterResume, tax_url)
    before = read_bounded(connector)
    touched = tax.touch(tax_url, share=0.05, seed=1)
    with pytest.raises(AssertionError, match=r"did not return 1 changed record"):
        check_changes(connector, before, [str(i) for i in touched])
    # The honest connector passes the same check on the same change.
    check_changes(make(TaxConnector, tax_url), before, [str(i) for i in touched])


def test_an_incremental_read_returning_old_records_fails(tax_url: str) -> None:
    connector = make(IgnoresCursor, tax_url)
    before = read_bounded(connector)
    touched = [str(i) for i in tax.touch(tax_url, share=0.05, seed=1)]
    with pytest.raises(AssertionError, match=r"IgnoresCursor .*returned 1\d\d unchanged record"):
        check_changes(connector, before, touched)


def test_a_record_mapped_under_another_id_fails(tax_url: str) -> None:
    class RenumbersRecords(TaxConnector):
        def to_canonical(self, raw: RawRecord) -> DossierRecord:
            return super().to_canonical(RawRecord(f"TAX-{raw.source_id}", raw.payload))

    connector = make(RenumbersRecords, tax_url)
    with pytest.raises(
        AssertionError,
        match=r"RenumbersRecords .*broke the contract: id '(\d+)': record says source 'tax', id 'TAX-\1'",
    ):
        check_mapping(connector, read_bounded(connector).records)


def test_a_wrong_count_fails(tax_url: str) -> None:
    connector = make(CountsMalformedTwice, tax_url)
    with pytest.raises(AssertionError, match=r"count\(None\) is 123 but a full read gives 120"):
        check_count(connector, read_bounded(connector))


def test_a_period_count_outside_what_was_read_fails(tax_url: str) -> None:
    class PeriodOffByOne(TaxConnector):
        def count(self, period: Period | None) -> int:
            return super().count(period) - (period is not None)

    connector = make(PeriodOffByOne, tax_url)
    with pytest.raises(AssertionError, match=r"count\(\) for \d{4}-\d\d-01\.\.\S+ is \d+, but"):
        check_count(connector, read_bounded(connector))


def test_an_unhealthy_source_fails_with_its_detail(tax_url: str) -> None:
    with pytest.raises(AssertionError, match="unhealthy: table tb_hoso is locked"):
        check_health(make(Unhealthy, tax_url))


def test_undeclared_personal_fields_fail(tax_url: str) -> None:
    connector = make(ForgetsPersonalFields, tax_url)
    with pytest.raises(AssertionError, match="personal_fields is empty"):
        check_mapping(connector, read_bounded(connector).records)


def test_a_missing_table_fails_the_read_with_the_source_error(tmp_path: Path) -> None:
    connector = make(TaxConnector, f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(AssertionError, match=r"read\(None\) raised FatalSourceError: .*tb_hoso"):
        read_bounded(connector)


# -- the suite class itself, collected and run by pytest ------------------------------------

BROKEN_SUITE = """
from simulators import tax
from connectors.testing import ConnectorConformance, context_for
from tests_helpers import BrokenTax

class TestBroken(ConnectorConformance):
    def setup_source(self, tmp_path):
        self.url = f"sqlite:///{tmp_path / 'tax.db'}"
        tax.generate(self.url, rows=80, seed=3, malformed_share=0.1)

    def make_connector(self):
        return BrokenTax(context_for("tax", {"url": self.url}, batch_size=20))
"""
BROKEN_CONNECTOR = """
from connectors.tax import TaxConnector

class BrokenTax(TaxConnector):
    def to_canonical(self, raw):
        if raw.source_id == "7":
            raise KeyError("MA_TTHC")
        return super().to_canonical(raw)
"""


def test_the_suite_class_fails_a_broken_connector_through_pytest(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(tests_helpers=BROKEN_CONNECTOR, test_broken=BROKEN_SUITE)
    pytester.syspathinsert()
    result = pytester.runpytest("-p", "no:cacheprovider")
    # Mapping and the checks that map records fail; the others pass; no make_changes: skipped.
    result.assert_outcomes(passed=5, failed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "E*ConformanceError: connector BrokenTax (source 'tax'): to_canonical() raised an"
            " unexpected exception for 1 record(s) (id '7': KeyError: 'MA_TTHC')*",
            "E*promise broken: every record maps to a record of its source and id, or is"
            " rejected with reasons",
            "FAILED test_broken.py::TestBroken::test_every_record_maps_or_is_rejected_with_reasons*",
        ]
    )
