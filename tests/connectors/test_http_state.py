"""The HTTP transport's parts on their own: its typed cursor, its auth objects, its status table.

The `Catalogue` API and its small connectors come from `test_http.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from requests.auth import AuthBase
from sqlalchemy import Engine, select

from connectors.http import RULES, Action, HttpCursor, OAuth2ClientCredentials
from connectors.http.status import RETRIABLE_STATUS
from connectors.social_insurance import SocialInsuranceConnector
from connectors.testing import context_for, read_bounded
from dossierhub.errors import FatalSourceError
from dossierhub.sync import sync_source
from models.tables import sync_run, sync_state
from simulators import social_insurance as si
from tests.connectors.test_http import STYLES, ByCursor, ByPage, Catalogue, _Items, make

LEGACY_KEYS = ("updated_at", "id", "position")


@pytest.fixture
def catalogue() -> Iterator[Catalogue]:
    with Catalogue(items=60, tied=25) as api:
        yield api


def legacy(cursor: dict[str, Any]) -> dict[str, Any]:
    """The cursor as DossierHub saved it before cursors were versioned: a plain dict."""
    return {key: cursor[key] for key in LEGACY_KEYS if key in cursor}


# -- the cursor -------------------------------------------------------------------------------
def test_the_cursor_is_tagged_http_with_its_version(catalogue: Catalogue) -> None:
    paged = read_bounded(make(ByPage, catalogue.url, batch_size=7)).cursor
    continued = read_bounded(make(ByCursor, catalogue.url, batch_size=7)).cursor
    assert paged is not None and continued is not None
    assert (
        (paged["cursor"], paged["version"])
        == ("http", 1)
        == (continued["cursor"], continued["version"])
    )
    assert paged["id"] == continued["id"] == "0060"
    assert "position" in paged and "position" not in continued  # only positions need it


@pytest.mark.parametrize("style", STYLES, ids=lambda c: c.__name__)
def test_a_cursor_saved_before_cursors_were_versioned_resumes_without_a_full_read(
    catalogue: Catalogue, style: type[_Items]
) -> None:
    connector = make(style, catalogue.url, batch_size=7)
    before = read_bounded(connector)
    assert before.cursor is not None
    moved = ["0003", "0019", "0042"]
    catalogue.move(moved)
    after = read_bounded(connector, legacy(before.cursor))
    assert after.ids == moved
    assert after.cursor is not None and after.cursor["version"] == 1  # saved in today's form


def test_a_legacy_cursor_in_the_registry_syncs_on_and_is_saved_versioned(
    sqlite_registry: Engine,
) -> None:
    with Catalogue(items=30) as api:
        sync_source(sqlite_registry, make(ByCursor, api.url))
        with sqlite_registry.begin() as conn:
            saved = conn.execute(select(sync_state.c.cursor)).scalar_one()
            conn.execute(sync_state.update().values(cursor=legacy(saved)))
        api.move(["0005", "0006"])
        again = sync_source(sqlite_registry, make(ByCursor, api.url))
    assert (again.rows_read, again.updated) == (2, 2)  # not the 30 of a full read
    with sqlite_registry.connect() as conn:
        cursor = conn.execute(select(sync_state.c.cursor)).scalar_one()
    assert (cursor["cursor"], cursor["version"], cursor["id"]) == ("http", 1, "0006")


FOREIGN: list[tuple[str, dict[str, Any], str]] = [
    ("sql-keyset", {"updated_at": "2026-03-01T08:01:00", "key": 17}, "a SQL keyset cursor"),
    ("file-manifest", {"manifest": 1, "done": {}, "current": None}, "a file-drop manifest"),
    (
        "tagged-sql",
        {"cursor": "sql", "version": 1, "updated_at": "2026-03-01T08:01:00", "key": 17},
        "a 'sql' cursor",
    ),
    (
        "newer-version",
        {"cursor": "http", "version": 2, "updated_at": "2026-03-01T08:01:00+07:00", "id": "0001"},
        "an HTTP cursor of version 2 (this DossierHub reads 1)",
    ),
    (
        "another-apis-time",
        {"cursor": "http", "version": 1, "updated_at": "20260301080100", "id": "0001"},
        "an HTTP cursor of another API (its time '20260301080100' is not one",
    ),
    ("unknown", {"offset": 40}, "a cursor with the keys offset"),
]


@pytest.mark.parametrize(("case", "cursor", "found"), FOREIGN, ids=[c[0] for c in FOREIGN])
def test_a_cursor_from_another_connector_or_version_is_refused_naming_it_and_the_fix(
    catalogue: Catalogue, case: str, cursor: dict[str, Any], found: str
) -> None:
    with pytest.raises(FatalSourceError) as failed:
        make(ByPage, catalogue.url).read(cursor)
    message = str(failed.value)
    assert message.startswith("source 'catalogue': the saved cursor is " + found)
    assert "run `dossierhub sync catalogue --full-refresh`" in message
    assert catalogue.served() == []  # refused before any request


def test_a_sync_from_a_foreign_cursor_fails_the_run_and_a_full_refresh_recovers(
    sqlite_registry: Engine,
) -> None:
    with Catalogue(items=12) as api:
        sync_source(sqlite_registry, make(ByCursor, api.url))
        with sqlite_registry.begin() as conn:
            conn.execute(sync_state.update().values(cursor=FOREIGN[0][1]))
        with pytest.raises(FatalSourceError, match="a SQL keyset cursor"):
            sync_source(sqlite_registry, make(ByCursor, api.url))
        refreshed = sync_source(sqlite_registry, make(ByCursor, api.url), full_refresh=True)
    assert refreshed.rows_read == 12
    with sqlite_registry.connect() as conn:
        errors = conn.execute(select(sync_run.c.error).order_by(sync_run.c.id)).scalars().all()
    assert errors[1] is not None and "--full-refresh" in errors[1]


def test_cursor_round_trip_keeps_the_api_time_text_and_position() -> None:
    saved = HttpCursor("20260301080000", "17", 3).to_cursor()
    read = HttpCursor.from_cursor(
        saved, source="s", parse_time=lambda text: None if not text else _any()
    )
    assert read == HttpCursor("20260301080000", "17", 3)


def _any() -> Any:
    from datetime import UTC, datetime

    return datetime(2026, 3, 1, tzinfo=UTC)


# -- auth -------------------------------------------------------------------------------------
def test_oauth2_auth_is_a_requests_auth_that_fetches_and_keeps_its_own_token() -> None:
    declared = SocialInsuranceConnector.auth
    assert isinstance(declared, OAuth2ClientCredentials) and isinstance(declared, AuthBase)
    with si.SocialInsuranceApi(rows=5, seed=3) as api:
        settings = {
            "base_url": api.url,
            "client_id": si.DEMO_CLIENT_ID,
            "client_secret": si.DEMO_CLIENT_SECRET,
        }
        first = SocialInsuranceConnector(context_for("social_insurance", settings))
        second = SocialInsuranceConnector(context_for("social_insurance", settings))
        auth = first.client.auth
        assert auth is not None and auth is not declared and auth is not second.client.auth
        # Plain requests, given the connector's auth object, gets through with its token.
        answer = requests.get(
            f"{api.url}{SocialInsuranceConnector.records_endpoint}",
            params={"limit": 2},
            auth=auth,
            timeout=5,
        )
        assert answer.status_code == 200 and len(answer.json()["data"]) == 2
        requests.get(
            f"{api.url}{SocialInsuranceConnector.records_endpoint}",
            params={"limit": 2},
            auth=auth,
            timeout=5,
        )
        assert api.tokens_issued == 1  # kept until it expires, not fetched per request
        second.count(None)
        assert api.tokens_issued == 2  # the other connector fetched its own
        token = auth.secrets()[0]
        assert token not in repr(auth) and si.DEMO_CLIENT_SECRET not in repr(vars(first))
        assert auth.refresh() and auth.secrets() == []  # a refused token is dropped
        first.close()
        second.close()


# -- the status table -------------------------------------------------------------------------
def test_every_status_has_exactly_one_first_rule_and_the_expected_action() -> None:
    expected = {200: Action.DONE, 204: Action.DONE, 301: Action.FAIL, 401: Action.REFRESH}
    expected |= {403: Action.FAIL, 404: Action.FAIL, 429: Action.RETRY, 501: Action.FAIL}
    for status in range(100, 600):
        api_rules = [r for r in RULES if r.covers(status, False, lambda: "")]
        assert api_rules, f"no rule for {status}"
        if status in expected:
            assert api_rules[0].action is expected[status], status
    token_401 = next(r for r in RULES if r.covers(401, True, lambda: ""))
    bad_client = next(r for r in RULES if r.covers(400, True, lambda: "invalid_client"))
    assert token_401.action is bad_client.action is Action.FAIL  # never refreshed, never retried
    assert "client_secret" in token_401.message
    assert {408, 429, 500, 502, 503, 504} == RETRIABLE_STATUS
