"""The sources file and the environment: a mistake is named where it is, and stops only what it breaks."""

from __future__ import annotations

from pathlib import Path

import pytest

from dossierhub import store
from dossierhub.errors import ConfigError
from dossierhub.settings import Settings, SourceConfig, load_sources
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
    with source_counters(load_sources(path), lambda n: open_connector(settings, n)) as counting:
        assert set(counting.counters) == {"tax", "land"}
        assert set(counting.receipt_days) == {"tax"}  # the broken source has no connector
        with pytest.raises(ConfigError, match="DH_TEST_UNSET_LAND_URL"):
            counting.counters["land"](None)


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


# -- misspelt settings and database URLs ---------------------------------------------------
MISSPELT_SETTINGS = [
    ("tax", {"url": "sqlite://", "tabel": "tb_hoso"}, "tabel", "table"),
    ("land", {"url": "sqlite://", "urll": "sqlite://"}, "urll", "url"),
    ("finance", {"folder": "var/drop", "foldr": "var/drop2"}, "foldr", "folder"),
    (
        "one_stop",
        {"base_url": "http://127.0.0.1:1", "api_key": "k", "page_sise": 5},
        "page_sise",
        "page_size",
    ),
    (
        "social_insurance",
        {"base_url": "http://127.0.0.1:1", "client_id": "a", "client_secret": "s", "scopes": "x"},
        "scopes",
        "scope",
    ),
]


@pytest.mark.parametrize(
    ("connector", "settings", "typo", "meant"),
    MISSPELT_SETTINGS,
    ids=[m[0] for m in MISSPELT_SETTINGS],
)
def test_a_misspelt_connector_setting_is_refused_naming_the_right_one(
    tmp_path: Path, connector: str, settings: dict[str, object], typo: str, meant: str
) -> None:
    config = SourceConfig(connector=connector, settings=settings)
    with pytest.raises(ConfigError) as refused:
        open_connector(settings_for(tmp_path / "unused.yaml"), "agency", config)
    assert f"source 'agency': unknown setting {typo!r} (did you mean {meant!r}?)" in str(
        refused.value
    )


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("DOSSIERHUB_REGISTY_URL", "DOSSIERHUB_REGISTRY_URL"),
        ("DOSSIERHUB_REGISTRY", "DOSSIERHUB_REGISTRY_URL"),
        ("DOSSIERHUB_SOURCE_FILE", "DOSSIERHUB_SOURCES_FILE"),
        ("DOSSIERHUB_HASHKEY", "DOSSIERHUB_HASH_KEY"),
        ("dossierhub_modes", "DOSSIERHUB_MODE"),
    ],
)
def test_a_misspelt_environment_variable_is_refused_naming_the_right_one(
    monkeypatch: pytest.MonkeyPatch, name: str, meant: str
) -> None:
    monkeypatch.setenv(name, "value")
    with pytest.raises(
        ConfigError, match=f"{name} is not a DossierHub setting; did you mean {meant}"
    ):
        Settings()


def test_other_dossierhub_variables_are_left_to_the_sources_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("DOSSIERHUB_TAX_URL", "DOSSIERHUB_LAND_URL", "DOSSIERHUB_SIMULATOR_HOST"):
        monkeypatch.setenv(name, "value")
    monkeypatch.setenv("DOSSIERHUB_MODE", "demo")
    assert Settings().mode == "demo"


DRIVERLESS = {
    "postgresql": "pg_url",
    "postgres": "pg_url",
    "mysql": "mariadb_url",
    "mariadb": "mariadb_url",
}


@pytest.mark.parametrize("scheme", DRIVERLESS)
def test_a_database_url_without_a_driver_uses_the_bundled_one(
    request: pytest.FixtureRequest, tmp_path: Path, scheme: str
) -> None:
    from simulators import tax

    url = str(request.getfixturevalue(DRIVERLESS[scheme]))
    truth = tax.generate(url, rows=30, seed=5, malformed_share=0.0)
    bare = scheme + url[url.index("://") :]
    config = SourceConfig(connector="tax", settings={"url": bare})
    connector = open_connector(settings_for(tmp_path / "unused.yaml"), "tax", config)
    try:
        assert connector.count(None) == truth.rows
    finally:
        connector.close()


@pytest.mark.parametrize(
    "url",
    [
        "mysql+mysqldb://reader:pw@127.0.0.1:1/thue",
        "postgresql+psycopg2://reader:pw@127.0.0.1:1/land",
        "mariadb+mariadbconnector://reader:pw@127.0.0.1:1/thue",
        "oracle://reader:pw@127.0.0.1:1/thue",
        "not a url",
    ],
)
def test_a_database_url_with_a_missing_driver_says_which_form_to_write(
    tmp_path: Path, url: str
) -> None:
    config = SourceConfig(connector="tax", settings={"url": url})
    connector = open_connector(settings_for(tmp_path / "unused.yaml"), "tax", config)
    with pytest.raises(ConfigError) as refused:
        connector.count(None)
    message = str(refused.value)
    assert message.startswith("source 'tax': setting 'url'")
    assert "mysql+pymysql://user:***@host:3306/db" in message and ":pw@" not in message


@pytest.mark.parametrize(
    ("url", "fix"),
    [
        ("postgresql+psycopg2://u:pw@127.0.0.1:1/r", "driver 'psycopg2' is not installed"),
        ("mysql://u:pw@127.0.0.1:1/r", "mysql is not supported as the registry"),
    ],
)
def test_a_registry_url_with_a_missing_driver_or_database_names_the_fix(url: str, fix: str) -> None:
    with pytest.raises(ConfigError, match=fix) as refused:
        store.open_registry(url)
    assert ":pw@" not in str(refused.value)


def test_a_postgres_registry_url_without_a_driver_opens(pg_url: str) -> None:
    bare = "postgres" + pg_url[pg_url.index("://") :]
    engine = store.open_registry(bare)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT 1").scalar_one() == 1
    finally:
        engine.dispose()
