"""From a source name to a ready connector: the sources file plus connector discovery.

Connectors are discovered through the `dossierhub.connectors` entry-point group, so an
agency can ship its connector as a package of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from importlib.metadata import entry_points
from typing import Any, NamedTuple

from connectors.base import Connector, ConnectorContext, Period
from dossierhub.errors import ConfigError, DossierHubError
from dossierhub.settings import Settings, SourceConfig, load_sources

GROUP = "dossierhub.connectors"
# Every demo secret the simulators ship contains this; it must never reach a real source.
PLACEHOLDER = "not-for-production"


def connector_classes() -> dict[str, type[Connector]]:
    return {ep.name: ep.load() for ep in entry_points(group=GROUP)}


def connector_class(name: str) -> type[Connector]:
    found = {ep.name: ep for ep in entry_points(group=GROUP)}
    if name not in found:
        known = ", ".join(sorted(found)) or "none (is the project installed with pip?)"
        raise ConfigError(f"no connector named {name!r} is installed; installed: {known}")
    cls = found[name].load()
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        raise ConfigError(f"entry point {name!r} in {GROUP} does not name a Connector class")
    return cls


def source_config(settings: Settings, name: str) -> SourceConfig:
    sources = load_sources(settings.sources_file)
    if name not in sources:
        known = ", ".join(sorted(sources)) or "none"
        raise ConfigError(
            f"unknown source {name!r}; configured sources: {known} "
            "(add it to the sources file named by DOSSIERHUB_SOURCES_FILE)"
        )
    return sources[name]


def open_connector(
    settings: Settings,
    name: str,
    config: SourceConfig | None = None,
    *,
    partition: str = "",
    overrides: dict[str, object] | None = None,
) -> Connector:
    """A connector for a configured source; `overrides` replace settings (e.g. from Airflow).

    Without `overrides`, the Connection AIRFLOW_CONN_DOSSIERHUB_SOURCE_<NAME> gives them when
    the environment defines it (see `dossierhub.connections`).
    """
    config = config or source_config(settings, name)
    if overrides is None:  # the Connection dossierhub_source_<name>, if the environment has one
        from dossierhub.connections import source_overrides

        overrides = source_overrides(name, config.connector)
    problem = config.problem_unless_given(overrides)
    if problem:
        raise ConfigError(problem)
    merged = {**config.settings, **overrides}
    if settings.mode != "demo":
        placeholders = [key for key, value in merged.items() if PLACEHOLDER in str(value)]
        if placeholders:
            raise ConfigError(
                f"source {name!r}: setting {placeholders[0]!r} is a demo placeholder; set the "
                "real secret in the environment variable the sources file names, or use "
                "DOSSIERHUB_MODE=demo"
            )
    cls = connector_class(config.connector)
    return cls(
        ConnectorContext(
            source=name,
            settings=merged,
            hasher=settings.hasher(),
            batch_size=config.batch_size,
            lookback=timedelta(seconds=config.lookback_seconds),
            future_tolerance=timedelta(seconds=config.future_tolerance_seconds),
            partition=partition,
        )
    )


Counter = Callable[[Period | None], int]
ReceiptDay = Callable[[dict[str, Any]], date | None]


class Counting(NamedTuple):
    """What a reconciliation asks of each source: its own count, and how to date its
    quarantined records (see `stats.reconcile`)."""

    counters: dict[str, Counter]
    receipt_days: dict[str, ReceiptDay]


@contextmanager
def source_counters(names: Iterable[str], opener: Callable[[str], Connector]) -> Iterator[Counting]:
    """Each source's `count` and `receipt_day`, for a reconciliation snapshot, and the
    connectors closed after.

    A source that cannot be opened (a broken entry in the sources file, say) counts by raising
    its error, so the snapshot records its problem and the other sources are still counted.
    """
    opened: list[Connector] = []
    counting = Counting({}, {})
    try:
        for name in names:
            try:
                connector = opener(name)
            except DossierHubError as exc:
                counting.counters[name] = _failing(exc)
                continue
            opened.append(connector)
            counting.counters[name] = connector.count
            counting.receipt_days[name] = connector.receipt_day
        yield counting
    finally:
        for connector in opened:
            connector.close()


def _failing(error: DossierHubError) -> Counter:
    def count(_period: Period | None) -> int:
        raise error

    return count
