"""The HTTP API as a client meets it: a real uvicorn server on 127.0.0.1, real registries.

The registry holds the hand-worked province of test_stats (plus sync runs, a quarantined
record with a name in its payload, reconciliation snapshots, and an applicant key on one
dossier), so every figure the API returns can be checked against the statistics functions.
"""

from __future__ import annotations

import hashlib
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine, create_engine, func, select, text
from typer.testing import CliRunner

from connectors.base import Period, RawRecord
from connectors.identifiers import IdentifierHasher
from dossierhub import api, stats, store, tokens
from dossierhub.cli.api import serve, tokens_app
from dossierhub.errors import ConfigError, Reason
from models import migrate
from models.tables import api_token, dossier
from tests.conftest import PG_SERVER, TEST_KEY, _server, drop_database_later
from tests.dossierhub.test_stats import SCENARIO, record

V1 = api.API_PREFIX
APPLICANT_KEY = IdentifierHasher(TEST_KEY).hash("001099012345")
PERSON = "Nguyễn Văn An"  # a name in a quarantined native payload


# -- a seeded registry behind a real server (shared with the schema and dashboard tests) ---
def seed(engine: Engine) -> None:
    """The test_stats province, loaded through sync runs, plus quarantine and reconciliation."""
    records = [
        r.model_copy(update={"applicant_key": APPLICANT_KEY, "applicant_type": "citizen"})
        if r.source_id == "T2"
        else r
        for r in SCENARIO
    ]
    rejected = store.Rejection(
        raw=RawRecord("T9", {"MA_HS": "T9", "NGAY_NHAN": "31/02/2026", "HO_TEN": PERSON}),
        reasons=[Reason("received_at", "invalid_date", "NGAY_NHAN '31/02/2026' is not a date")],
    )
    with engine.begin() as conn:
        store.register_source(
            conn, name="tax", connector="tax", description="Provincial tax office"
        )
        store.register_source(
            conn, name="one_stop", connector="one_stop", description="Provincial one-stop portal"
        )
    for name in ("one_stop", "tax"):
        with engine.begin() as conn:
            run = store.start_run(
                conn,
                source_system=name,
                partition="",
                full_refresh=False,
                cursor_before=None,
                holder="test",
            )
            store.write_batch(
                conn,
                context=store.BatchContext(name, run_id=run),
                records=[r for r in records if r.source_system == name],
                rejections=[rejected] if name == "tax" else [],
            )
            store.finish_run(conn, run_id=run, status="succeeded")
    with engine.begin() as conn:
        run = store.start_run(
            conn,
            source_system="one_stop",
            partition="",
            full_refresh=False,
            cursor_before=None,
            holder="test",
        )
        store.finish_run(
            conn, run_id=run, status="failed", error="source 'one_stop': 503 from the portal"
        )
        stats.record_reconciliation(
            conn,
            source_system="tax",
            period="all",
            source_count=5,
            registry_count=4,
            quarantined=1,
        )
        stats.record_reconciliation(
            conn,
            source_system="one_stop",
            period="2026",
            source_count=4,
            registry_count=3,
            quarantined=0,
        )
    stats.refresh(engine)


def issue_tokens(engine: Engine) -> dict[str, str]:
    """One token per role, and a revoked one."""
    issued = {
        role: tokens.create_token(engine, role=role, name=f"test {role}")
        for role in ("admin", "statistics", "agency:tax")
    }
    issued["revoked"] = tokens.create_token(engine, role="statistics", name="left the office")
    [revoked] = [t for t in tokens.list_tokens(engine) if t.name == "left the office"]
    assert tokens.revoke_token(engine, token_id=revoked.id)
    return issued


@contextmanager
def registry_on(kind: str, folder: Path) -> Iterator[Engine]:
    """A fresh migrated registry on SQLite or PostgreSQL, removed afterwards."""
    if kind == "sqlite":
        engine = store.open_registry(f"sqlite:///{folder / 'registry.db'}")
        migrate.upgrade(engine)
        try:
            yield engine
        finally:
            engine.dispose()
        return
    server = _server(PG_SERVER, "PostgreSQL")
    name = f"dh_test_{secrets.token_hex(4)}"
    with server.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = store.open_registry(server.url.set(database=name).render_as_string(False))
    try:
        migrate.upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        server.dispose()
        drop_database_later(name)


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Run the app on a real uvicorn server on 127.0.0.1 (a free port); yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@dataclass
class Api:
    engine: Engine
    client: httpx.Client
    tokens: dict[str, str]

    def get(self, path: str, token: str | None = "admin", **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[token]}"} if token else {}
        return self.client.get(path, params=params, headers=headers)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    with registry_on(request.param, tmp_path_factory.mktemp("api")) as engine:
        seed(engine)
        issued = issue_tokens(engine)
        with serving(api.create_app(engine)) as url, httpx.Client(base_url=url) as client:
            yield Api(engine, client, issued)


def query(engine: Engine, call: Any, **kwargs: Any) -> Any:
    with engine.connect() as conn:
        return call(conn, **kwargs)


# -- authentication and roles -------------------------------------------------------------
ENDPOINTS: list[tuple[str, dict[str, str]]] = [
    (f"{V1}/me", {}),
    (f"{V1}/indicators", {"period": "2026"}),
    (f"{V1}/coverage", {"period": "2026"}),
    (f"{V1}/open", {"period": "2026-01"}),
    (f"{V1}/reconciliation", {}),
    (f"{V1}/sources", {}),
    (f"{V1}/sources/tax", {}),
    (f"{V1}/sources/tax/runs", {}),
    (f"{V1}/sources/tax/quarantine", {}),
    (f"{V1}/dossiers", {}),
]
STATISTICS = [e for e in ENDPOINTS if e[0].split("/")[3] not in ("me", "sources")]


def test_the_endpoint_list_covers_the_openapi_spec(api_server: Api) -> None:
    spec = api_server.client.get(f"{V1}/openapi.json").json()
    assert {p.replace("{source}", "tax") for p in spec["paths"]} == {p for p, _ in ENDPOINTS}
    assert spec["components"]["securitySchemes"]["bearerToken"]["scheme"] == "bearer"


@pytest.mark.parametrize(("path", "params"), ENDPOINTS, ids=lambda v: str(v))
def test_every_endpoint_refuses_a_missing_invalid_or_revoked_token(
    api_server: Api, path: str, params: dict[str, str]
) -> None:
    missing = api_server.client.get(path, params=params)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert "tokens create" in missing.json()["detail"]
    for header in ("Bearer not-a-token", f"Bearer {api_server.tokens['revoked']}", "Basic YTpi"):
        refused = api_server.client.get(path, params=params, headers={"Authorization": header})
        assert refused.status_code == 401, header
        assert refused.headers["www-authenticate"].startswith("Bearer")
    assert api_server.get(path, **params).status_code == 200


def test_agency_token_reads_only_its_own_source(api_server: Api) -> None:
    for path in (f"{V1}/sources/tax", f"{V1}/sources/tax/runs", f"{V1}/sources/tax/quarantine"):
        assert api_server.get(path, "agency:tax").status_code == 200, path
    listed = api_server.get(f"{V1}/sources", "agency:tax").json()["sources"]
    assert [s["source"] for s in listed] == ["tax"]
    me = api_server.get(f"{V1}/me", "agency:tax").json()
    assert me == {"role": "agency:tax", "source": "tax", "reads_statistics": False}
    for path in (
        f"{V1}/sources/one_stop",
        f"{V1}/sources/one_stop/runs",
        f"{V1}/sources/one_stop/quarantine",
        f"{V1}/sources/no_such_source/runs",  # no hint whether another source exists
    ):
        refused = api_server.get(path, "agency:tax")
        assert refused.status_code == 403, path
        assert "may read only source 'tax'" in refused.json()["detail"]
    for path, params in STATISTICS:
        refused = api_server.get(path, "agency:tax", **params)
        assert refused.status_code == 403, path
        assert "cannot read statistics" in refused.json()["detail"]


def test_statistics_token_reads_statistics_and_every_source(api_server: Api) -> None:
    for path, params in [*STATISTICS, (f"{V1}/sources/one_stop/runs", {})]:
        assert api_server.get(path, "statistics", **params).status_code == 200, path
    sources = api_server.get(f"{V1}/sources", "statistics").json()["sources"]
    assert [s["source"] for s in sources] == ["one_stop", "tax"]


def test_unknown_source_is_404_for_those_allowed_to_ask(api_server: Api) -> None:
    missing = api_server.get(f"{V1}/sources/no_such_source/quarantine")
    assert missing.status_code == 404
    assert "no source 'no_such_source'" in missing.json()["detail"]


# -- invalid parameters -------------------------------------------------------------------
INJECTION = "'; DROP TABLE dossier; --"
BAD_REQUESTS = [
    ("indicators", {"period": "2026-13"}, "period", "a month (2026-03)"),
    ("indicators", {"period": INJECTION}, "period", "a year (2026)"),
    ("indicators", {}, "period", "is required"),
    ("indicators", {"period": "0000"}, "period", "a year (2026)"),
    ("indicators", {"period": "2026", "by": INJECTION}, "by", "list of: sector, agency"),
    ("indicators", {"period": "2026", "by": "sector,nope"}, "by", "list of: sector, agency"),
    ("coverage", {"period": "2026", "by": "sector;month"}, "by", "list of: sector, agency"),
    ("indicators", {"period": "2026", "by": "day,month"}, "by", "at most one"),
    ("indicators", {"period": "2026", "by": "sector,sector"}, "by", "once"),
    ("indicators", {"period": "2026", "portal_only": "maybe"}, "portal_only", "boolean"),
    ("indicators", {"period": "2026", "channel": "fax"}, "channel", "in_person"),
    ("indicators", {"period": "2026", "sector": "Thuế\x00"}, "sector", "control characters"),
    ("indicators", {"period": "2026", "agency": INJECTION}, "agency", "000.00.06.H56"),
    ("indicators", {"period": "2026", "sectr": "Thuế"}, "sectr", "it takes: "),
    ("coverage", {"period": "2026-Q5"}, "period", "a quarter (2026-Q1)"),
    ("open", {"period": "2026", "by": "month"}, "by", "cannot group by month"),
    ("open", {"period": "2026", "by": "source"}, "by", "cannot group by source"),
    ("reconciliation", {"period": "everything"}, "period", "a year (2026)"),
    ("dossiers", {"received_from": "2026-02-30"}, "received_from", "YYYY-MM-DD"),
    ("dossiers", {"received_to": "yesterday"}, "received_to", "YYYY-MM-DD"),
    ("dossiers", {"received_from": "0001-01-01"}, "received_from", "out of range"),
    (
        "dossiers",
        {"received_from": "2026-02-01", "received_to": "2026-01-01"},
        "received_to",
        "before received_from",
    ),
    ("dossiers", {"limit": "100000"}, "limit", "from 1 to 500"),
    ("dossiers", {"limit": "0"}, "limit", "from 1 to 500"),
    ("dossiers", {"limit": "1e9"}, "limit", "integer"),
    ("dossiers", {"after": "-1"}, "after", "next_after"),
    ("dossiers", {"after": str(2**70)}, "after", "next_after"),
    ("dossiers", {"status": "11"}, "status", "less than or equal to 10"),
    ("dossiers", {"source": INJECTION}, "source", "lower case letters"),
    ("sources/tax/runs", {"limit": "1000000"}, "limit", "less than or equal to 200"),
    ("sources/tax/quarantine", {"after": "x"}, "after", "integer"),
    ("sources/Tax!/runs", {}, "source", "lower case letters"),
]


@pytest.mark.parametrize(
    ("endpoint", "params", "parameter", "fragment"),
    BAD_REQUESTS,
    ids=[f"{e}-{'&'.join(f'{k}={v!r}' for k, v in p.items())}" for e, p, *_ in BAD_REQUESTS],
)
def test_bad_parameters_get_422_naming_the_parameter_and_the_fix(
    api_server: Api, endpoint: str, params: dict[str, str], parameter: str, fragment: str
) -> None:
    response = api_server.get(f"{V1}/{endpoint}", **params)
    assert response.status_code == 422, response.text
    body = response.json()
    assert parameter in [e["parameter"] for e in body["errors"]]
    assert f"'{parameter}'" in body["detail"]
    assert fragment in body["detail"]


def test_injection_strings_are_only_ever_values(api_server: Api) -> None:
    # A free-text filter takes the string as a value: it matches no sector, and harms nothing.
    response = api_server.get(f"{V1}/indicators", period="2026", sector=INJECTION)
    assert response.status_code == 200
    assert response.json()["rows"][0]["received"] == 0
    assert api_server.get(f"{V1}/dossiers", sector=INJECTION).json()["dossiers"] == []
    with api_server.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(dossier)).scalar_one() == 7


# -- figures ------------------------------------------------------------------------------
def flat(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**row.pop("group"), **row} for row in rows]


@pytest.mark.parametrize(
    "params",
    [
        {"period": "2026"},
        {"period": "2026-01", "portal_only": "true"},
        {"period": "2026", "by": "sector,month"},
        {"period": "2026-Q1", "by": "source,channel"},
        {"period": "2026", "by": "day", "sector": "Thuế"},
        {"period": "2026-02", "online_capable_only": "true"},
        {"period": "2026", "by": "procedure", "channel": "online", "agency": "000.00.06.H56"},
    ],
    ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items()),
)
def test_indicators_equal_the_statistics_functions(api_server: Api, params: dict[str, str]) -> None:
    body = api_server.get(f"{V1}/indicators", **params).json()
    names = [n for n in params.get("by", "").split(",") if n]
    filters = {k: v for k, v in params.items() if k in ("sector", "channel", "agency", "procedure")}
    expected = query(
        api_server.engine,
        stats.indicators,
        period=Period.parse(params["period"]),
        by=names,
        portal_only=params.get("portal_only") == "true",
        online_capable_only=params.get("online_capable_only") == "true",
        filters=filters,
    )
    assert flat(body["rows"]) == expected
    assert body["filters"] == filters and body["by"] == names
    assert body["statistics_as_of"] is not None


def test_headline_figures_are_the_hand_worked_ones(api_server: Api) -> None:
    [year] = api_server.get(f"{V1}/indicators", period="2026").json()["rows"]
    assert (year["received"], year["received_online"], year["online_rate"]) == (6, 3, 0.5)
    [jan] = api_server.get(f"{V1}/indicators", period="2026-01", portal_only="true").json()["rows"]
    assert (jan["received"], jan["online_rate"]) == (1, 0.0)
    [coverage] = api_server.get(f"{V1}/coverage", period="2026-01").json()["rows"]
    assert (coverage["portal_received"], coverage["unified_received"]) == (1, 4)
    [still_open] = api_server.get(f"{V1}/open", period="2026-01").json()["rows"]
    assert (still_open["open"], still_open["overdue"]) == (2, 1)


@pytest.mark.parametrize("by", ["", "sector", "sector,month"])
def test_coverage_and_open_cases_equal_the_statistics_functions(api_server: Api, by: str) -> None:
    names = [n for n in by.split(",") if n]
    coverage = api_server.get(f"{V1}/coverage", period="2026", by=by).json()["rows"]
    expected = query(api_server.engine, stats.coverage, period=Period.parse("2026"), by=names)
    assert flat(coverage) == expected
    names = [n for n in names if n != "month"]
    still_open = api_server.get(f"{V1}/open", period="2026-02", by=",".join(names)).json()["rows"]
    expected = query(api_server.engine, stats.open_at_end, period=Period.parse("2026-02"), by=names)
    key = lambda row: tuple(str(row.get(n)) for n in names)  # noqa: E731
    assert sorted(flat(still_open), key=key) == sorted(expected, key=key)


def test_reconciliation_and_source_health(api_server: Api) -> None:
    rows = api_server.get(f"{V1}/reconciliation").json()["rows"]
    expected = query(api_server.engine, stats.latest_reconciliation)
    assert [(r["source"], r["period"], r["source_count"], r["gap"]) for r in rows] == [
        (e["source_system"], e["period"], e["source_count"], e["gap"]) for e in expected
    ]
    assert [(r["source"], r["gap"]) for r in rows] == [("one_stop", 1), ("tax", 0)]
    only_all = api_server.get(f"{V1}/reconciliation", period="all").json()["rows"]
    assert [r["source"] for r in only_all] == ["tax"]
    sources = {s["source"]: s for s in api_server.get(f"{V1}/sources").json()["sources"]}
    portal, tax = sources["one_stop"], sources["tax"]
    assert (portal["last_status"], portal["last_error"]) == (
        "failed",
        "source 'one_stop': 503 from the portal",
    )
    assert portal["last_success"] is not None and portal["description"].startswith("Provincial")
    assert [r["status"] for r in portal["recent_runs"]] == ["failed", "succeeded"]
    assert tax["quarantined"] == 1
    assert tax["quarantine_reasons"] == [{"reason": "received_at:invalid_date", "records": 1}]
    assert (tax["recent_runs"][0]["inserted"], tax["recent_runs"][0]["quarantined"]) == (4, 1)


def test_runs_page_newest_first_with_a_keyset_cursor(api_server: Api) -> None:
    first = api_server.get(f"{V1}/sources/one_stop/runs", limit=1).json()
    assert [r["status"] for r in first["runs"]] == ["failed"]
    assert first["next_before"] == first["runs"][0]["id"]
    rest = api_server.get(f"{V1}/sources/one_stop/runs", limit=1, before=first["next_before"])
    assert [r["status"] for r in rest.json()["runs"]] == ["succeeded"]
    assert rest.json()["next_before"] is None


def test_quarantine_lists_reasons_without_the_raw_payload(api_server: Api) -> None:
    response = api_server.get(f"{V1}/sources/tax/quarantine", "agency:tax")
    [entry] = response.json()["entries"]
    assert (entry["source_id"], entry["reason"], entry["seen_count"]) == (
        "T9",
        "received_at:invalid_date",
        1,
    )
    assert entry["reasons"][0]["message"] == "NGAY_NHAN '31/02/2026' is not a date"
    assert "payload" not in entry
    assert PERSON not in response.text


# -- dossiers -----------------------------------------------------------------------------
def test_dossier_pages_list_each_dossier_once_without_personal_data(api_server: Api) -> None:
    seen: list[dict[str, Any]] = []
    after = 0
    while True:
        response = api_server.get(f"{V1}/dossiers", limit=2, after=after)
        assert response.status_code == 200
        assert APPLICANT_KEY is not None and APPLICANT_KEY not in response.text
        page = response.json()
        seen += page["dossiers"]
        if page["next_after"] is None:
            break
        after = page["next_after"]
    assert sorted(d["source_id"] for d in seen) == ["P1", "P2", "P3", "T1", "T2", "T3", "T4"]
    assert len({d["id"] for d in seen}) == 7
    allowed = set(api.DossierView.model_fields)
    assert all(set(d) == allowed for d in seen)
    assert not {"applicant_key", "applicant_id", "payload"} & allowed
    schema = api_server.client.get(f"{V1}/openapi.json").json()["components"]["schemas"]
    assert "applicant_key" not in schema["DossierView"]["properties"]
    [t2] = [d for d in seen if d["source_id"] == "T2"]
    assert t2["applicant_type"] == "citizen"  # the category stays; the key never shows


def test_dossier_filters_use_local_receipt_days(api_server: Api) -> None:
    def ids(**params: Any) -> list[str]:
        response = api_server.get(f"{V1}/dossiers", **params)
        assert response.status_code == 200, response.text
        return sorted(d["source_id"] for d in response.json()["dossiers"])

    assert ids(source="tax") == ["T1", "T2", "T3", "T4"]
    assert ids(source="tax", received_from="2026-01-10", received_to="2026-01-15") == ["T1", "T2"]
    # T3 was received at 23:30 local time on 31 January (16:30 UTC).
    assert ids(received_from="2026-01-31", received_to="2026-01-31") == ["T3"]
    assert ids(received_from="2026-02-01") == ["P2", "P3"]  # P2 at 00:30 local on 1 February
    assert ids(status=9) == ["T1", "T3"]
    assert ids(channel="online", sector="Tư pháp") == ["P3"]
    assert ids(procedure="2.000889", agency="000.00.06.H56") == ["P2", "P3"]


# -- tokens -------------------------------------------------------------------------------
def test_tokens_are_stored_only_as_digests(api_server: Api) -> None:
    with api_server.engine.connect() as conn:
        rows = [dict(row._mapping) for row in conn.execute(select(api_token))]
    stored = " ".join(str(value) for row in rows for value in row.values())
    for token in api_server.tokens.values():
        assert token not in stored
        assert hashlib.sha256(token.encode()).hexdigest() in stored
    assert {row["role"] for row in rows} == {"admin", "statistics", "agency:tax"}


@pytest.mark.parametrize(
    "role", ["", "root", "agency:", "agency:Tax", "agency:tax;drop", "agency:t", "ADMIN "]
)
def test_unknown_roles_are_refused(role: str) -> None:
    with pytest.raises(ConfigError, match="role"):
        tokens.Role.parse(role)


def test_roles_grant_what_they_say() -> None:
    agency = tokens.Role.parse("agency:social_insurance")
    assert (agency.reads_statistics, agency.reads_source("social_insurance")) == (False, True)
    assert not agency.reads_source("tax")
    assert tokens.Role.parse("statistics").reads_source("tax")
    assert tokens.Role.parse("admin").reads_statistics


def test_verify_refuses_unknown_revoked_and_oversized_tokens(registry: Engine) -> None:
    token = tokens.create_token(registry, role="agency:tax", name="tax office")
    assert tokens.verify(registry, token) == tokens.Role("agency", "tax")
    assert tokens.verify(registry, token + "x") is None
    assert tokens.verify(registry, "x" * 10_000) is None
    assert tokens.verify(registry, "") is None
    [info] = tokens.list_tokens(registry)
    assert tokens.revoke_token(registry, token_id=info.id)
    assert not tokens.revoke_token(registry, token_id=info.id)  # already revoked
    assert tokens.verify(registry, token) is None


def test_tokens_are_compared_as_digests_in_constant_time(
    registry: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The registry finds the row by the SHA-256 of the presented token, so its index lookup
    # times a digest an attacker cannot steer; the final check is hmac.compare_digest.
    token = tokens.create_token(registry, role="statistics")
    compared: list[tuple[str, str]] = []
    real = tokens.hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(tokens.hmac, "compare_digest", spy)
    assert tokens.verify(registry, token) == tokens.Role("statistics")
    digest = hashlib.sha256(token.encode()).hexdigest()
    assert compared == [(digest, digest)]
    assert all(token not in pair for pair in compared)


# -- command line -------------------------------------------------------------------------
@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    monkeypatch.setenv("DOSSIERHUB_REGISTRY_URL", url)
    monkeypatch.setenv("COLUMNS", "200")
    engine = store.open_registry(url)
    migrate.upgrade(engine)
    return engine


def test_tokens_commands_create_list_and_revoke(cli_env: Engine) -> None:
    runner = CliRunner()
    created = runner.invoke(tokens_app, ["create", "--role", "agency:tax", "--name", "Cục Thuế"])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    assert tokens.verify(cli_env, token) == tokens.Role("agency", "tax")
    listed = runner.invoke(tokens_app, ["list", "--format", "json"])
    assert listed.exit_code == 0, listed.output
    assert "agency:tax" in listed.stdout and "Cục Thuế" in listed.stdout
    assert token not in listed.output and tokens.token_digest(token) not in listed.output
    [info] = tokens.list_tokens(cli_env)
    assert runner.invoke(tokens_app, ["revoke", str(info.id)]).exit_code == 0
    assert tokens.verify(cli_env, token) is None
    again = runner.invoke(tokens_app, ["revoke", str(info.id)])
    assert again.exit_code != 0 and "no active token" in again.output
    bad = runner.invoke(tokens_app, ["create", "--role", "agency:Bad Name"])
    assert bad.exit_code == 2 and "not a source name" in bad.output


@pytest.mark.parametrize("command", [["create"], ["list"], ["revoke"], ["serve"]])
def test_every_api_command_has_help(command: list[str]) -> None:
    app = typer.Typer()
    app.add_typer(tokens_app, name="tokens")
    app.command()(serve)
    args = command if command == ["serve"] else ["tokens", *command]
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    # Each option and argument, and the help text that explains it.
    expected = {
        "create": ["--role", "What the token may read", "--name", "Who or what holds"],
        "list": ["--format", "Output format"],
        "revoke": ["ID", "Token id, as `tokens list` shows it"],
        "serve": ["--host", "Address to listen on", "--port", "TCP port"],
    }[command[0]]
    for fragment in expected:
        assert fragment in result.output, fragment


# -- read-only and freshness ----------------------------------------------------------------
def test_api_serves_on_the_read_only_role_of_the_operations_guide(pg_url: str) -> None:
    from tests.reliability.test_readonly_role import grants_from_the_guide

    writer = store.open_registry(pg_url)
    migrate.upgrade(writer)
    seed(writer)
    issued = issue_tokens(writer)
    role = f"dh_api_{secrets.token_hex(3)}"
    with writer.begin() as conn:
        for statement in grants_from_the_guide():
            conn.execute(text(statement.replace("dossierhub_api", role)))
    reader = create_engine(pg_url.replace("postgres@", f"{role}@"))
    try:
        with serving(api.create_app(reader)) as url, httpx.Client(base_url=url) as client:
            served = Api(reader, client, issued)
            for path, params in ENDPOINTS:
                response = served.get(path, **params)
                assert response.status_code == 200, (path, response.text)
    finally:
        reader.dispose()
        with writer.begin() as conn:
            conn.execute(text(f"DROP OWNED BY {role}"))
            conn.execute(text(f"DROP ROLE {role}"))
        writer.dispose()


def test_statistics_are_served_as_last_refreshed_and_say_when(registry: Engine) -> None:
    seed(registry)
    token = tokens.create_token(registry, role="statistics", name="office")
    headers = {"Authorization": f"Bearer {token}"}
    with serving(api.create_app(registry)) as url, httpx.Client(base_url=url) as client:
        before = client.get(f"{V1}/indicators", params={"period": "2026"}, headers=headers).json()
        late = record("tax", "T5", received_at=datetime(2026, 3, 2, 9), channel="online")
        with registry.begin() as conn:
            store.write_batch(conn, context=store.BatchContext("tax"), records=[late])
        unchanged = client.get(f"{V1}/indicators", params={"period": "2026"}, headers=headers)
        assert unchanged.json()["rows"][0]["received"] == before["rows"][0]["received"] == 6
        stats.refresh(registry)
        after = client.get(f"{V1}/indicators", params={"period": "2026"}, headers=headers).json()
    assert after["rows"][0]["received"] == 7
    assert after["statistics_as_of"] > before["statistics_as_of"]


def test_dashboard_files_are_served_with_a_strict_content_policy(api_server: Api) -> None:
    page = api_server.client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self';" in policy
    assert "https://" not in page.text and "http://" not in page.text
    script = api_server.client.get("/vendor/plotly.min.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert len(script.content) > 1_000_000  # the real plotly.js bundle, not a stub
    for asset in ("/static/dashboard.js", "/static/dashboard.css"):
        assert api_server.client.get(asset).status_code == 200, asset
    assert api_server.get(f"{V1}/me").headers["cache-control"] == "no-store"
