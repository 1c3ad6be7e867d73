"""Settings from the environment (DOSSIERHUB_*) and the sources file.

The sources file (YAML) names each source, its connector and the connector's settings.
A value written `${VAR}` or `${VAR:-default}` is read from the environment when the file
is loaded, so secrets stay out of the file. Connectors declare their secret settings as
`SecretStr`, so they never show in a `repr` or a log line.

A mistake in one source (an unset `${VAR}`, a wrong or misspelt key) breaks that source only:
its `SourceConfig.problem` says what is wrong, every command on it fails with that message,
and the other sources work. A mistake in the file itself (not YAML, no `sources:` mapping, a
bad source name) stops everything, since no source can be trusted then.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from connectors.identifiers import DEMO_HASH_KEY, IdentifierHasher
from dossierhub.errors import ConfigError, close_match, unknown_name

DEFAULT_REGISTRY_URL = "sqlite:///var/registry.db"
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
ENV_PREFIX = "DOSSIERHUB_"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    registry_url: SecretStr = SecretStr(DEFAULT_REGISTRY_URL)
    sources_file: Path | None = None
    hash_key: SecretStr = SecretStr(DEMO_HASH_KEY)
    mode: Literal["demo", "production"] = "production"

    def model_post_init(self, context: Any, /) -> None:
        misspelt = misspelt_variables(os.environ)
        if misspelt:
            name, meant = misspelt[0]
            raise ConfigError(
                f"environment variable {name} is not a DossierHub setting; did you mean "
                f"{meant}? (rename it: as written it is ignored)"
            )

    def hasher(self) -> IdentifierHasher:
        """The personal-identifier hasher; the demo key is refused outside demo mode."""
        key = self.hash_key.get_secret_value()
        if self.mode != "demo":
            if key == DEMO_HASH_KEY:
                raise ConfigError(
                    "DOSSIERHUB_HASH_KEY is not set: personal identifiers would be hashed with "
                    "the public demo key. Set DOSSIERHUB_HASH_KEY to a secret of at least 32 "
                    "characters, or DOSSIERHUB_MODE=demo for a demonstration"
                )
            if len(key) < 32:
                raise ConfigError("DOSSIERHUB_HASH_KEY is too short: use at least 32 characters")
        return IdentifierHasher(self.hash_key)


def misspelt_variables(environ: Iterable[str]) -> list[tuple[str, str]]:
    """(name, meant) for each DOSSIERHUB_* variable that looks like a typo of a setting's.

    Other DOSSIERHUB_* variables (those a sources file reads, say) are left alone: only a name
    close to a setting's is taken for a typo.
    """
    settings = {field.upper(): f"{ENV_PREFIX}{field.upper()}" for field in Settings.model_fields}
    found = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper.removeprefix(ENV_PREFIX) in settings:
            continue
        meant = close_match(upper.removeprefix(ENV_PREFIX), settings, cutoff=0.75)
        if meant is not None:
            found.append((name, settings[meant]))
    return found


class SourceConfig(BaseModel):
    """One source's entry in the sources file; `problem` says why it cannot be used, if so."""

    model_config = ConfigDict(extra="forbid")

    connector: str
    description: str | None = None
    batch_size: int = Field(default=5000, ge=1, le=100_000)
    lookback_seconds: float = Field(default=300, ge=0)
    future_tolerance_seconds: float = Field(default=3600, ge=0)  # later change times: quarantined
    schedule: str | None = "@hourly"
    # Scale-out: sync this many disjoint slices in parallel (one cursor each).
    partitions: int = Field(default=1, ge=1, le=64)
    retries: int = Field(default=3, ge=0, le=20)
    timeout_minutes: float = Field(default=60, gt=0)
    # The DAG's verify step fails the run past these thresholds.
    max_quarantine_share: float = Field(default=0.05, ge=0, le=1)
    max_reconciliation_gap: int = Field(default=0, ge=0)
    settings: dict[str, Any] = Field(default_factory=dict)
    # What is wrong with the entry, by the connector setting at fault ("" for the entry).
    _problems: dict[str, str] = PrivateAttr(default_factory=dict)

    @property
    def problem(self) -> str | None:
        """Why this source cannot be used as configured, or None when it can."""
        return self.problem_unless_given(())

    def problem_unless_given(self, supplied: Iterable[str]) -> str | None:
        """The problem left once the settings in `supplied` come from elsewhere (Airflow)."""
        given = set(supplied)
        left = [message for key, message in self._problems.items() if not key or key not in given]
        return "; ".join(left) or None

    def add_problem(self, message: str, *, setting: str = "") -> None:
        self._problems[setting] = message

    def partition_names(self) -> list[str]:
        """[""] for an unpartitioned source, else ["0/n", ..., "n-1/n"]."""
        if self.partitions == 1:
            return [""]
        return [f"{i}/{self.partitions}" for i in range(self.partitions)]


def default_sources_path() -> Path:
    local = Path("sources.yaml")
    if local.exists():
        return local
    return Path(str(resources.files("dossierhub") / "sources.example.yaml"))


def load_sources(path: Path | None = None) -> dict[str, SourceConfig]:
    """The configured sources, with `${VAR}` values expanded from the environment.

    A source whose entry is wrong is returned with its `problem` set, not raised, so one
    broken source does not stop the others.
    """
    path = path or default_sources_path()
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(
            f"sources file {path} not found; set DOSSIERHUB_SOURCES_FILE to an existing file"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"sources file {path} is not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"sources file {path}: expected a mapping with one key, 'sources:'")
    for key in document:
        if key != "sources":
            raise ConfigError(f"sources file {path}: {unknown_name('key', str(key), ['sources'])}")
    entries = document.get("sources")
    if not isinstance(entries, dict):
        raise ConfigError(f"sources file {path}: 'sources:' must map each source name to its entry")
    sources = {}
    for name, entry in entries.items():
        if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]{1,63}", name):
            raise ConfigError(
                f"sources file {path}: source name {name!r} must be lower case letters, "
                "digits and underscores (it becomes the DAG id and source_system)"
            )
        sources[name] = _source(path, name, entry)
    return sources


def _source(path: Path, name: str, entry: Any) -> SourceConfig:
    where = f"sources file {path}: source {name!r}"
    try:
        config = SourceConfig.model_validate(entry)
    except ValidationError as exc:
        known = [*SourceConfig.model_fields]
        problems = []
        for error in exc.errors():
            loc = ".".join(str(p) for p in error["loc"])
            if error["type"] == "extra_forbidden" and len(error["loc"]) == 1:
                problems.append(unknown_name("key", loc, known))
            else:
                problems.append(f"{loc or 'entry'}: {error['msg']}")
        connector = entry.get("connector") if isinstance(entry, dict) else None
        config = SourceConfig(connector=connector if isinstance(connector, str) else "")
        config.add_problem(f"{where}: {'; '.join(problems)} (fix its entry)")
        return config
    expanded = {}
    for key, value in config.settings.items():
        try:
            expanded[key] = _expand(value, f"{where} setting {key!r}")
        except ConfigError as exc:
            config.add_problem(str(exc), setting=key)
    config.settings = expanded
    return config


def _expand(value: Any, where: str) -> Any:
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = os.environ.get(name, default)
        if found is None:
            raise ConfigError(f"{where} needs the environment variable {name}; set it")
        return found

    return _VARIABLE.sub(substitute, value)
