"""The conformance kit as a pytest suite: subclass `ConnectorConformance` as `Test<Name>`.

    class TestConstructionPermits(ConnectorConformance):
        def make_connector(self):
            return PermitConnector(context_for("permits", {"path": str(self.path)}))

The hooks (`setup_source`, `make_connector`, `make_changes`, ...) are those of
`connectors.conformance.Conformance`; docs/writing-a-connector.md has a complete suite. This
module is only the pytest adapter: the checks are plain Python in `connectors.conformance`
(which `dossierhub connectors test` runs without pytest), and each test below calls one of
them on a fresh source. The kit's names are re-exported here, so
`from connectors.testing import check_mapping, context_for, ...` keeps working.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

# The kit's plain names, for the suites that import them from here (`check_mapping`, ...).
from connectors import conformance
from connectors.conformance import *  # noqa: F403
from connectors.conformance import CheckSkipped, Conformance

__all__ = ["ConnectorConformance", *conformance.__all__]


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
