"""The sources file and the environment: a mistake is named where it is, and stops only what it breaks."""

from __future__ import annotations

from pathlib import Path

import pytest

from dossierhub.errors import ConfigError
from dossierhub.settings import Settings, load_sources
from dossierhub.sources import open_connector, source_counters

TAX_ENTRY = "  tax:\n    connector: tax\n    settings:\n      url: sqlite:///{db}\n"


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text("sources:\n" + body.replace("{db}", str(tmp_path / "tax.db")), encoding="utf-8")
    return path


def settings_for(path: Path) -> Settings:
    return Settings(sources_file=path, hash_key="settings-test-key-" + "k" * 32)  # type: ignore[arg-type]


BROKEN_ENTRIES = {
    "unset variable": (
        "  land:\n    connector: land\n    settings:\n      url: ${DH_TEST_UNSET_LAND_URL}\n",
        "source 'land' setting 'url' needs the environment variable DH_TEST_UNSET_LAND_URL",
    ),
    "unset variable inside a value": (
        "  land:\n    connector: land\n    settings:\n"
        "      url: postgresql+psycopg://reader:${DH_TEST_UNSET_PW}@db/land\n",
        "source 'land' setting 'url' needs the environment variable DH_TEST_UNSET_PW",
    ),
    "misspelt key": (
        "  land:\n    connector: land\n    batch_sise: 10\n    settings: {url: 'sqlite://'}\n",
        "source 'land': unknown key 'batch_sise' (did you mean 'batch_size'?)",
    ),
    "value out of range": (
        "  land:\n    connector: land\n    batch_size: 0\n    settings: {url: 'sqlite://'}\n",
        "source 'land': batch_size: Input should be greater than or equal to 1",
    ),
    "empty entry": ("  land:\n", "source 'land': entry: Input should be"),
}


@pytest.mark.parametrize("entry", BROKEN_ENTRIES.values(), ids=list(BROKEN_ENTRIES))
def test_a_broken_source_entry_breaks_that_source_only(
    tmp_path: Path, entry: tuple[str, str]
) -> None:
    body, message = entry
    path = write(tmp_path, TAX_ENTRY + body)
    sources = load_sources(path)
    assert sources["tax"].problem is None
    assert message in (sources["land"].problem or "")
    settings = settings_for(path)
    open_connector(settings, "tax").close()  # the good source still opens
    with pytest.raises(ConfigError) as refused:
        open_connector(settings, "land")
    assert message in str(refused.value)


def test_a_setting_given_elsewhere_lifts_the_unset_variable_problem(tmp_path: Path) -> None:
    # Airflow passes a Connection's settings as overrides: the missing variable is then moot.
    path = write(
        tmp_path, "  tax:\n    connector: tax\n    settings:\n      url: ${DH_TEST_UNSET_TAX}\n"
    )
    config = load_sources(path)["tax"]
    assert config.problem_unless_given({"url": "sqlite://"}) is None
    connector = open_connector(
        settings_for(path), "tax", config, overrides={"url": f"sqlite:///{tmp_path / 'x.db'}"}
    )
    connector.close()


def test_counting_every_source_records_a_broken_ones_problem(tmp_path: Path) -> None:
    body, _ = BROKEN_ENTRIES["unset variable"]
    path = write(tmp_path, TAX_ENTRY + body)
    settings = settings_for(path)
    with source_counters(load_sources(path), lambda n: open_connector(settings, n)) as counters:
        assert set(counters) == {"tax", "land"}
        with pytest.raises(ConfigError, match="DH_TEST_UNSET_LAND_URL"):
            counters["land"](None)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "'sources:' must map each source name"),
        ("  Tax:\n    connector: tax\n", "source name 'Tax' must be lower case"),
    ],
)
def test_a_broken_file_is_refused_whole(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_sources(write(tmp_path, body))


def test_a_misspelt_top_level_key_names_the_right_one(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text("source:\n  tax:\n    connector: tax\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"unknown key 'source' \(did you mean 'sources'\?\)"):
        load_sources(path)
