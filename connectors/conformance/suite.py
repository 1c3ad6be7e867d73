"""The conformance suite as a plain Python class: hooks an agency fills in, and a runner.

`Conformance` holds the hooks (`setup_source`, `make_connector`, `make_changes`, ...) and one
`verify_*` method per promise. `run()` runs them in order, each on a fresh sample source, and
yields a `CheckResult` per check; nothing here needs pytest. `connectors.testing` turns the same
class into a pytest suite, and `SourceConformance` runs it on a configured source for
`dossierhub connectors test`.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, ExitStack, closing, contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import ClassVar, Literal, TypeVar

from connectors.base import Connector, RawRecord
from connectors.conformance import checks
from connectors.conformance.failures import ConformanceError, Promise, name_of
from connectors.conformance.reading import (
    Limits,
    Reading,
    default_received_date,
    default_updated_at,
    read_bounded,
    resized,
)

T = TypeVar("T")
CheckOutcome = Literal["passed", "failed", "skipped"]


class CheckSkipped(Exception):
    """A check that cannot run on this suite (e.g. no `make_changes()`), with the reason."""


@dataclass(frozen=True)
class CheckResult:
    """How one check ended: its promise, the outcome, and the failure or skip reason.

    `promise` is the promise the failure broke (a mapping check can break the personal-data
    promise, for instance); `title` names the check in a short line.
    """

    name: str
    title: str
    promise: Promise
    outcome: CheckOutcome
    detail: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class Check:
    """One check of the suite: a short name, a title for a report line, its promise, itself."""

    name: str
    title: str
    promise: Promise
    verify: Callable[[], None]


class Conformance:
    """The conformance suite of one connector: subclass it and define `make_connector()`.

    Optionally define `setup_source(tmp_path)` to build a fresh sample source for each check
    (from a sample factory: a function that builds new rows, files or a scratch database each
    time it is called, never one list shared by all checks) and `make_changes()` to change the
    source and return the changed source ids (without it the incremental check is skipped,
    saying so). The source should hold at least a few dozen records, a few of them malformed
    if the connector rejects anything.
    """

    limits: ClassVar[Limits] = Limits()
    # Small enough that a sample source spans many pages (and many page boundaries).
    small_batch_size: ClassVar[int] = 7
    tmp_path: Path
    _cleanup: ExitStack | None = None

    # -- hooks ------------------------------------------------------------------------------
    def setup_source(self, tmp_path: Path) -> None:
        """Build the source for one check (each check starts from a fresh one)."""

    def make_connector(self) -> Connector:
        """A new connector over the test source; called several times per check."""
        raise NotImplementedError(
            f"{type(self).__name__}: define make_connector() returning your connector, "
            "e.g. MyConnector(context_for('my_source', {...settings...}))"
        )

    def make_changes(self) -> Iterable[str] | None:
        """Change the source (update some records, add some) and return their source ids."""
        return None

    def received_date(self, connector: Connector, raw: RawRecord) -> date | None:
        """The local day a raw record was received, None when it cannot be told."""
        return default_received_date(connector, raw)

    def updated_at(self, connector: Connector, raw: RawRecord) -> datetime | None:
        """A raw record's last change at the source (aware), None when it cannot be told."""
        return default_updated_at(connector, raw)

    def full_read(self, connector: Connector) -> Reading:
        """One full read of the source, bounded by `limits`."""
        return read_bounded(connector, limits=self.limits)

    # -- a fresh source for each check ------------------------------------------------------
    def enter_context(self, manager: AbstractContextManager[T]) -> T:
        """Enter `manager` for the current check only: it is exited when the check ends.

        For `setup_source`: `self.url = self.enter_context(scratch_database(server))` gives
        each check its own database, dropped afterwards, whatever the check's outcome.
        """
        if self._cleanup is None:
            raise RuntimeError(
                f"{type(self).__name__}.enter_context() is for setup_source() and the checks; "
                "outside a check nothing would exit the context"
            )
        return self._cleanup.enter_context(manager)

    @contextmanager
    def fresh_source(self, tmp_path: Path) -> Iterator[None]:
        """The sample source for one check: built by `setup_source`, cleaned up afterwards."""
        with ExitStack() as cleanup:
            self._cleanup, self.tmp_path = cleanup, tmp_path
            try:
                self.setup_source(tmp_path)
                yield
            finally:
                self._cleanup = None

    # -- the checks, one per promise --------------------------------------------------------
    def verify_health(self) -> None:
        with closing(self.make_connector()) as connector:
            checks.check_health(connector)

    def verify_mapping(self) -> None:
        with closing(self.make_connector()) as connector:
            reading = self.full_read(connector)
            if not reading.records:
                raise ConformanceError(
                    Promise.MAPPING, f"{name_of(connector)}: the test source gave no records"
                )
            checks.check_mapping(connector, reading.records)

    def verify_unique_ids(self) -> None:
        with closing(self.make_connector()) as connector:
            checks.check_unique_ids(connector, self.full_read(connector))

    def verify_pagination(self) -> None:
        with closing(self.make_connector()) as connector:
            checks.check_pagination(
                connector, small_batch_size=self.small_batch_size, limits=self.limits
            )

    def verify_resume(self) -> None:
        with (
            closing(self.make_connector()) as connector,
            closing(resized(connector, self.small_batch_size)) as small,
        ):
            reading = read_bounded(small, limits=self.limits)
            checks.check_resume(small, reading, updated_at=self.updated_at, limits=self.limits)

    def verify_changes(self) -> None:
        with closing(self.make_connector()) as connector:
            before = self.full_read(connector)
        changed = self.make_changes()
        if changed is None:
            raise CheckSkipped(
                f"{type(self).__name__} defines no make_changes(): incremental reads unchecked"
            )
        with closing(self.make_connector()) as connector:
            checks.check_changes(
                connector, before, changed, updated_at=self.updated_at, limits=self.limits
            )

    def verify_count(self) -> None:
        with closing(self.make_connector()) as connector:
            checks.check_count(
                connector, self.full_read(connector), received_date=self.received_date
            )

    def all_checks(self) -> list[Check]:
        """Every check in the order `run()` takes them."""
        return [
            Check(
                "health", "check() reports the source healthy", Promise.HEALTH, self.verify_health
            ),
            Check(
                "mapping",
                "every record maps or is rejected with reasons",
                Promise.MAPPING,
                self.verify_mapping,
            ),
            Check(
                "unique_ids", "source ids are unique", Promise.UNIQUE_IDS, self.verify_unique_ids
            ),
            Check(
                "pagination",
                "pagination ends; batch size changes nothing",
                Promise.PAGINATION,
                self.verify_pagination,
            ),
            Check(
                "resume",
                "resuming from a saved cursor skips nothing",
                Promise.RESUME,
                self.verify_resume,
            ),
            Check(
                "changes",
                "an incremental read returns the changed records",
                Promise.CHANGES,
                self.verify_changes,
            ),
            Check("count", "count() agrees with read()", Promise.COUNT, self.verify_count),
        ]

    # -- the runner -------------------------------------------------------------------------
    def run(self) -> Iterator[CheckResult]:
        """Run every check, each on a fresh source in its own temporary folder.

        Results come as each check ends. When the source is not healthy the other checks are
        skipped: they would all fail for the same reason.
        """
        healthy = True
        for check in self.all_checks():
            if not healthy:
                yield CheckResult(
                    check.name, check.title, check.promise, "skipped", "the source is not healthy"
                )
                continue
            result = self._run_one(check)
            healthy = not (check.name == "health" and result.outcome == "failed")
            yield result

    def _run_one(self, check: Check) -> CheckResult:
        started = time.monotonic()

        def ended(
            outcome: CheckOutcome, detail: str = "", broken: Promise | None = None
        ) -> CheckResult:
            seconds = time.monotonic() - started
            promise = broken or check.promise
            return CheckResult(check.name, check.title, promise, outcome, detail, seconds)

        try:
            with (
                tempfile.TemporaryDirectory(prefix=f"conformance-{check.name}-") as folder,
                self.fresh_source(Path(folder)),
            ):
                check.verify()
        except CheckSkipped as skipped:
            return ended("skipped", str(skipped))
        except ConformanceError as failure:
            return ended("failed", failure.detail, failure.promise)
        except Exception as exc:  # a broken sample or connector: report it, run the rest
            return ended("failed", f"{type(exc).__name__}: {exc}")
        return ended("passed")


class SourceConformance(Conformance):
    """The suite on a source as it stands: what `dossierhub connectors test` runs.

    It reads the source and changes nothing, so the incremental check is skipped; a source in
    production can be large, so one full read serves the checks that only look at what was
    read, and the pagination check's small-batch read is the one the resume check resumes.
    """

    def __init__(self, make_connector: Callable[[], Connector]) -> None:
        self._make_connector = make_connector
        self._reading: Reading | None = None
        self._small_reading: Reading | None = None

    def make_connector(self) -> Connector:
        return self._make_connector()

    def verify_changes(self) -> None:
        raise CheckSkipped(
            "the kit changes nothing in a configured source: check incremental reads in the "
            "connector's own suite, with make_changes()"
        )

    def full_read(self, connector: Connector) -> Reading:
        if self._reading is None:
            self._reading = super().full_read(connector)
        return self._reading

    def verify_pagination(self) -> None:
        with closing(self.make_connector()) as connector:
            self._small_reading = checks.check_pagination(
                connector, small_batch_size=self.small_batch_size, limits=self.limits
            )

    def verify_resume(self) -> None:
        if self._small_reading is None:  # the pagination check failed: read again
            super().verify_resume()
            return
        with (
            closing(self.make_connector()) as connector,
            closing(resized(connector, self.small_batch_size)) as small,
        ):
            checks.check_resume(
                small, self._small_reading, updated_at=self.updated_at, limits=self.limits
            )
