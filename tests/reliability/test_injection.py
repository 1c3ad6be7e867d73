"""SQL injection strings through every filter the hub takes: each is only ever a value.

Every parameter of every GET endpoint of the API (read from its own OpenAPI document, so a
new filter is covered the day it is added) and every filter of the command line receives a
set of injection strings, on SQLite and PostgreSQL. Each request is refused with 422 naming
the parameter, or answered exactly as the same request with a harmless value that matches
nothing; never a server error. Afterwards the registry is unchanged, table by table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from dossierhub import store
from dossierhub.cli import app as cli
from dossierhub.errors import DossierHubError
from models.tables import metadata
from tests.dossierhub.test_api import V1, Api, api_server

__all__ = ["api_server"]  # the seeded registry behind a real server, shared with test_api

PAYLOADS = [
    "'; DROP TABLE dossier; --",
    "' OR '1'='1",
    '" OR ""="',
    "1 OR 1=1",
    "0) OR (1=1",
    "%",  # a LIKE wildcard: matches everything if a filter were a pattern
    "_",
    "%' OR '%'='",
    "Thuế' UNION SELECT applicant_key FROM dossier --",
    "\\'; DELETE FROM api_token; --",
    "tax'/**/OR/**/'1'='1",
    "$$; DROP TABLE dossier; $$",  # PostgreSQL dollar quoting
    "Thuế\u02bc OR 1=1 --",  # a modifier letter apostrophe, which some layers fold to '
    "1; SELECT pg_sleep(5)",
]
HARMLESS = "zz_matches_nothing"  # a well-formed value: a source name, a sector
# A valid value for each required parameter, so the parameter under test is what is judged.
REQUIRED = {"period": "2026", "source": "tax"}


def unechoed(body: Any, payload: str) -> Any:
    """The body with every value equal to `payload` (an echoed filter) read as HARMLESS."""
    if isinstance(body, dict):
        return {k: unechoed(v, payload) for k, v in body.items()}
    if isinstance(body, list):
        return [unechoed(v, payload) for v in body]
    return HARMLESS if body == payload else body


def snapshot(engine: Engine) -> dict[str, Any]:
    """Every table's row count, and the digest of every dossier and its history."""
    with engine.connect() as conn:
        counts = {
            table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in metadata.sorted_tables
        }
        return {"rows": counts, "digest": store.digest(conn)}


@dataclass(frozen=True)
class Parameter:
    path: str  # as the OpenAPI document writes it: /api/v1/sources/{source}/runs
    name: str
    where: str  # "query" or "path"
    required: dict[str, str]  # valid values of the path's required query parameters

    def ask(self, api: Api, value: str) -> httpx.Response:
        params = dict(self.required)
        if self.where == "query":
            params[self.name] = value
        source = value if self.where == "path" else REQUIRED["source"]
        return api.get(self.path.replace("{source}", source), **params)


def parameters(api: Api) -> list[Parameter]:
    """Every query and path parameter of every GET endpoint of the API's OpenAPI document."""
    spec = api.client.get(f"{V1}/openapi.json").raise_for_status().json()
    found = []
    for path, operations in spec["paths"].items():
        listed = operations.get("get", {}).get("parameters", [])
        required = {
            p["name"]: REQUIRED[p["name"]] for p in listed if p["required"] and p["in"] == "query"
        }
        found += [
            Parameter(path, p["name"], p["in"], required)
            for p in listed
            if p["in"] in ("query", "path")
        ]
    return found


def test_injection_strings_through_every_api_parameter_are_only_values(api_server: Api) -> None:
    before = snapshot(api_server.engine)
    listed = parameters(api_server)
    names = {parameter.name for parameter in listed}
    # The filters a statistics user types: a new one must not slip past this test unnoticed.
    assert names >= {"period", "by", "sector", "agency", "locality", "procedure", "source"}, names
    answered = refused = 0
    for parameter in listed:
        harmless = parameter.ask(api_server, HARMLESS)
        for payload in PAYLOADS:
            response = parameter.ask(api_server, payload)
            case = (
                f"{parameter.path} {parameter.name}={payload!r}: "
                f"{response.status_code} {response.text[:300]}"
            )
            assert response.status_code in (200, 404, 422), case
            if response.status_code == 422:
                refused += 1
                problems = response.json()
                assert parameter.name in [e["parameter"] for e in problems["errors"]], case
                continue
            if parameter.where == "path" and "/" in payload:
                # The slash makes another path, which no route serves: nothing was queried.
                assert response.json() == {"detail": "Not Found"}, case
                continue
            answered += 1
            # Same answer as a value that matches nothing (the value itself may be echoed).
            assert response.status_code == harmless.status_code, case
            assert unechoed(response.json(), payload) == harmless.json(), case
    # Both outcomes occur: free-text filters take the strings, patterned ones refuse them.
    assert answered and refused
    assert snapshot(api_server.engine) == before


CLI_FILTERS = [
    ["runs", "--source", "{}"],
    ["runs", "--source", "{}", "--format", "json"],
    ["quarantine", "list", "--source", "{}", "--all", "--format", "json"],
    ["quarantine", "show", "{}"],
    ["quarantine", "retry", "{}"],
    ["sync", "{}"],
    ["stats", "--period", "{}"],
    ["stats", "--period", "2026", "--by", "{}"],
    ["coverage", "--period", "2026", "--by", "{}"],
    ["reconcile", "--period", "{}"],
    ["tokens", "revoke", "{}"],
]


@pytest.mark.parametrize("command", CLI_FILTERS, ids=lambda c: " ".join(c[:3]))
def test_injection_strings_through_every_cli_filter_are_only_values(
    api_server: Api, command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOSSIERHUB_REGISTRY_URL", api_server.engine.url.render_as_string(False))
    monkeypatch.setenv("DOSSIERHUB_HASH_KEY", "injection-test-key-" + "i" * 32)
    monkeypatch.setenv("COLUMNS", "200")
    before = snapshot(api_server.engine)
    runner = CliRunner()
    harmless = runner.invoke(cli, [part.format(HARMLESS) for part in command])
    for payload in PAYLOADS:
        result = runner.invoke(cli, [part.format(payload) for part in command])
        case = f"{command} with {payload!r}: exit {result.exit_code}\n{result.output[-800:]}"
        # A clean answer or a clean refusal (a DossierHubError prints as one line and exits
        # with 1): no traceback, never a database error; as for the harmless value.
        failure = result.exception
        assert failure is None or isinstance(failure, SystemExit | DossierHubError), case
        assert type(failure) is type(harmless.exception), case
        assert "Traceback" not in result.output and "sqlalchemy" not in result.output, case
        assert result.exit_code == harmless.exit_code, case
        if result.exit_code == 0:
            echoed = json.dumps(payload, ensure_ascii=False)[1:-1]
            assert result.stdout.replace(payload, HARMLESS).replace(echoed, HARMLESS) == (
                harmless.stdout
            ), case
    assert snapshot(api_server.engine) == before
