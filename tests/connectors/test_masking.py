"""One masking helper for every URL and message shown or stored: no secret gets through."""

from __future__ import annotations

import pytest

from connectors.masking import SECRET_NAMES, first_line, mask_text, mask_url
from connectors.sql import safe_url
from dossierhub import store
from dossierhub.errors import ConfigError, FatalSourceError

SECRET = "S3cr3t-value-9d2f"

# Every place a URL can carry a secret, in the schemes DossierHub meets.
LEAKY = {
    "user:password": f"postgresql+psycopg://reader:{SECRET}@db:5432/land",
    "password in query": f"postgresql+psycopg://reader@db/land?password={SECRET}",
    "query after others": f"mysql+pymysql://root@db/tax?charset=utf8mb4&password={SECRET}",
    "both": f"mariadb://u:{SECRET}@db/tax?passwd={SECRET}",
    "upper case name": f"https://api.example.vn/v1?API_KEY={SECRET}",
    "dashed name": f"https://api.example.vn/v1?api-key={SECRET}",
    "percent-encoded name": f"https://api.example.vn/v1?pass%77ord={SECRET}",
    "token in fragment": f"https://portal.example.vn/#access_token={SECRET}&x=1",
    "empty other values": f"https://h/p?a=&token={SECRET}&b",
    "suffix name": f"https://h/p?db_password={SECRET}",
}


@pytest.mark.parametrize("url", LEAKY.values(), ids=list(LEAKY))
def test_every_secret_in_a_url_is_masked(url: str) -> None:
    masked = mask_url(url)
    assert SECRET not in masked and "***" in masked
    assert mask_text(f"cannot reach the database at {url}: refused") == (
        f"cannot reach the database at {masked}: refused"
    )


@pytest.mark.parametrize("name", sorted(SECRET_NAMES))
def test_each_secret_parameter_name_is_masked(name: str) -> None:
    assert SECRET not in mask_url(f"https://h/p?page=2&{name}={SECRET}")
    assert SECRET not in mask_text(f"host=db {name}={SECRET} dbname=x")


KEPT = [
    "sqlite:///var/registry.db",
    "sqlite:////abs/path/registry.db",
    "postgresql+psycopg://reader@db:5432/land?sslmode=require",
    "https://api.example.vn/v1/records?page=2&page_size=500&sector=tax",
    "http://u@h/p",
    "https://h/a?flag",
]


@pytest.mark.parametrize("url", KEPT)
def test_urls_without_a_secret_are_left_as_written(url: str) -> None:
    assert mask_url(url) == url
    assert mask_text(f"see {url}.") == f"see {url}."


def test_connection_strings_and_quoted_values_are_masked() -> None:
    assert mask_text(f"host=db user=u password={SECRET} dbname=x") == (
        "host=db user=u password=*** dbname=x"
    )
    assert mask_text(f"password='{SECRET} with space' next") == "password='***' next"


def test_errors_are_masked_when_made() -> None:
    url = LEAKY["both"]
    for error in (ConfigError(f"bad {url}"), FatalSourceError("tax", f"cannot read {url}")):
        assert SECRET not in str(error)
    assert SECRET not in first_line(ValueError(f"{url}\nsecond line"))


@pytest.mark.parametrize("url", LEAKY.values(), ids=list(LEAKY))
def test_database_urls_shown_by_the_sql_transport_and_the_registry_are_masked(url: str) -> None:
    assert SECRET not in safe_url(url)
    assert SECRET not in store.safe_registry_url(url)
