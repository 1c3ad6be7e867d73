"""From a source name to a ready connector: the sources file plus connector discovery.

Connectors are discovered through the `dossierhub.connectors` entry-point group, so an
agency can ship its connector as a package of its own.
"""

from __future__ import annotations

from datetime import timedelta
from importlib.metadata import entry_points

from connectors.base import Connector, ConnectorContext
from dossierhub.errors import ConfigError
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
            partition=partition,
        )
    )
