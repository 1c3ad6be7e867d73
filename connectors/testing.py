"""The conformance kit as a pytest suite: subclass `ConnectorConformance` as `Test<Name>`.

    from connectors.testing import ConnectorConformance, context_for

    class TestConstructionPermits(ConnectorConformance):
        def setup_source(self, tmp_path):      # optional: a fresh source for each check
            self.path = write_sample_export(tmp_path)

        def make_connector(self):
            return PermitConnector(context_for("permits", {"path": str(self.path)}))

        def make_changes(self):                # optional: change the source, return the ids
            return touch_two_permits(self.path)

This module is only the pytest adapter: the hooks and the checks are plain Python in
`connectors.conformance` (which `dossierhub connectors test` runs without pytest), and each
test below calls one of them. The kit's names are re-exported here, so
`from connectors.testing import check_mapping, context_for, ...` keeps working.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

# The kit's names, re-exported for the suites that import them from here.
from connectors.conformance import (
    CheckResult,
    CheckSkipped,
    Conformance,
    ConformanceError,
    Limits,
    Outcome,
    Promise,
    Reading,
    ReceivedDate,
    SourceConformance,
    UpdatedAt,
    check_changes,
    check_count,
    check_health,
    check_mapping,
    check_pagination,
    check_resume,
    check_unique_ids,
    context_for,
    default_received_date,
    default_updated_at,
    name_of,
    read_bounded,
    resized,
    scratch_database,
    stored,
)

__all__ = [
    "CheckResult",
    "CheckSkipped",
    "Conformance",
    "ConformanceError",
    "ConnectorConformance",
    "Limits",
    "Outcome",
    "Promise",
    "Reading",
    "ReceivedDate",
    "SourceConformance",
    "UpdatedAt",
    "check_changes",
    "check_count",
    "check_health",
    "check_mapping",
    "check_pagination",
    "check_resume",
    "check_unique_ids",
    "context_for",
    "default_received_date",
    "default_updated_at",
    "name_of",
    "read_bounded",
    "resized",
    "scratch_database",
    "stored",
]


class ConnectorConformance(Conformance):
    """The conformance suite: subclass it as `Test<Name>` in a pytest module.

    Define `make_connector()`; optionally `setup_source(tmp_path)` to build a fresh source for
    each check, and `make_changes()` to change the source and return the changed source ids
    (without it the incremental check is skipped, saying so). The source should hold at least
    a few dozen records, a few of them malformed if the connector rejects anything.
    """

    @pytest.fixture(autouse=True)
    def _conformance_source(self, tmp_path: Path) -> Iterator[None]:
        with self.fresh_source(tmp_path):
            yield

    def test_check_reports_the_source_healthy(self) -> None:
        self.verify_health()

    def test_every_record_maps_or_is_rejected_with_reasons(self) -> None:
        self.verify_mapping()

    def test_source_ids_are_unique_across_a_full_read(self) -> None:
        self.verify_unique_ids()

    def test_pagination_ends_and_batch_size_changes_nothing(self) -> None:
        self.verify_pagination()

    def test_resuming_from_a_saved_cursor_skips_nothing_and_repeats_little(self) -> None:
        self.verify_resume()

    def test_incremental_read_returns_the_changed_records(self) -> None:
        try:
            self.verify_changes()
        except CheckSkipped as skipped:
            pytest.skip(str(skipped))

    def test_count_agrees_with_read(self) -> None:
        self.verify_count()
