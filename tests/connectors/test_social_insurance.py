"""The Social Insurance connector against its reference REST service on 127.0.0.1.

The service runs in-process (`SocialInsuranceApi`), with OAuth2 tokens that expire, cursor
pagination, 429s with Retry-After and injected faults; syncs go through the real engine.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, String, cast, func, select

from connectors.base import Connector, ConnectorContext, Period, RawRecord
from connectors.http import HttpConnector
from connectors.identifiers import IdentifierHasher
from connectors.social_insurance import SocialInsuranceConnector
from connectors.testing import ConnectorConformance, context_for
from dossierhub.errors import FatalSourceError, RecordRejected
from dossierhub.sync import sync_source
from models.dossier import Channel, Status
from models.tables import dossier, dossier_event, quarantine
from simulators import scenario
from simulators import social_insurance as si
from simulators.http_server import Faults, Request, Response, SimulatedApi

HASHER = IdentifierHasher(SecretStr("si-test-key-" + "h" * 32))
CLIENT_ID = "dossierhub-test"
CLIENT_SECRET = "bhxh-test-secret-" + "Zq9" * 8
FAST: dict[str, Any] = {
    "connect_timeout": 0.5,
    "read_timeout": 0.5,
    "max_attempts": 10,
    "backoff_initial": 0.001,
    "backoff_max": 0.01,
}
# 20% 5xx, 10% 429, some requests held past the timeout and some connections dropped; the
# script makes sure each kind happens at least once whatever the draw.
FAULTY = Faults(
    server_error=0.2,
    rate_limit=0.1,
    retry_after=0,
    timeout=0.03,
    drop=0.03,
    hang=1.0,
    seed=7,
    script={2: "timeout", 3: "drop", 4: "rate_limit", 5: "server_error"},
)
# What the connector must say for each planted defect: the field at fault and the code.
EXPECTED_REASON = {
    "received_missing": "received_at:missing",
    "received_not_a_time": "received_at:invalid_datetime",
    "unknown_procedure": "procedure_code:unknown_code",
    "unknown_office": "agency_code:unknown_code",
    "unknown_status": "status:unknown_code",
    "malformed_insurance_number": "applicant_key:invalid_format",
    "due_before_received": "due_at:inconsistent",
    "blank_dossier_number": "dossier_code:missing",
    "unknown_channel": "channel:unknown_code",
    "digitised_exceeds_submitted": "docs_digitised:inconsistent",
}


def service(**options: Any) -> si.SocialInsuranceApi:
    return si.SocialInsuranceApi(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, **options)


def connect(
    url: str, *, batch_size: int = 50, lookback: timedelta = timedelta(0), **settings: Any
) -> SocialInsuranceConnector:
    options = {
        "base_url": url,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        **FAST,
        **settings,
    }
    return SocialInsuranceConnector(
        ConnectorContext(
            source="social_insurance",
            settings=options,
            hasher=HASHER,
            batch_size=batch_size,
            lookback=lookback,
        )
    )


def offline() -> SocialInsuranceConnector:
    """A connector for mapping only: it never calls the API."""
    return connect("http://127.0.0.1:9")


def pages_served(api: SimulatedApi) -> Counter[str | None]:
    """How often each page (by its cursor; None for the first) was answered 200."""
    return Counter(
        s.query.get("cursor")
        for s in api.served()
        if s.path == si.DOSSIERS_PATH and s.status == 200
    )


def registry_state(engine: Engine) -> tuple[set[str], dict[str, int]]:
    """The registered source ids, and each unresolved quarantine entry's seen count."""
    with engine.connect() as conn:
        loaded = set(conn.execute(select(dossier.c.source_id)).scalars())
        held = dict(
            conn.execute(
                select(quarantine.c.source_id, quarantine.c.seen_count).where(
                    quarantine.c.resolved.is_(False)
                )
            ).all()
        )
    return loaded, held


def assert_registry_matches(engine: Engine, truth: si.Truth) -> None:
    loaded, held = registry_state(engine)
    every = {f"BH{n:08d}" for n in range(1, truth.rows + 1)}
    assert loaded == every - set(truth.malformed_ids)
    assert set(held) == set(truth.malformed_ids)
    assert set(held.values()) == {1}  # each malformed record quarantined exactly once


# -- the conformance kit --------------------------------------------------------------------
class TestSocialInsuranceConformance(ConnectorConformance):
    @pytest.fixture(autouse=True)
    def _service(self) -> Iterator[None]:
        with service(
            rows=150, seed=11, malformed_share=0.1, forwarded=10, shared_updated_at=25
        ) as api:
            self.api = api
            yield

    def make_connector(self) -> Connector:
        settings = {
            "base_url": self.api.url,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            **FAST,
        }
        return SocialInsuranceConnector(context_for("social_insurance", settings, batch_size=40))

    def make_changes(self) -> Iterable[str]:
        return self.api.touch(share=0.05, seed=2)

    def updated_at(self, connector: Connector, raw: RawRecord) -> datetime | None:
        assert isinstance(connector, HttpConnector)
        return connector.updated_at_of(raw)


# -- mapping --------------------------------------------------------------------------------
def test_every_malformed_record_is_rejected_with_its_own_reason() -> None:
    records, truth = si.generate(rows=400, seed=5, malformed_share=0.1, forwarded=20)
    connector = offline()
    found: dict[str, list[str]] = {}
    for record in records:
        try:
            connector.to_canonical(RawRecord(record["id"], record))
        except RecordRejected as rejected:
            found[record["id"]] = [reason.key for reason in rejected.reasons]
    assert set(found) == set(truth.malformed_ids)
    assert len(truth.defects) >= 6 and all(n > 0 for n in truth.defects.values())
    for ident, reasons in found.items():
        assert reasons == [EXPECTED_REASON[truth.defect_of[ident]]], ident


def test_native_codes_and_times_translate_to_the_shared_vocabulary() -> None:
    records, truth = si.generate(rows=300, seed=6, malformed_share=0.0)
    connector = offline()
    statuses: dict[str, Status] = {}
    for record in records:
        mapped = connector.to_canonical(RawRecord(record["id"], record))
        statuses[record["trangThai"]] = mapped.status
        local = datetime.fromisoformat(record["ngayTiepNhan"])
        assert local.utcoffset() == timedelta(hours=7)
        assert mapped.received_at == local.astimezone(UTC)
        assert mapped.dossier_code == record["soHoSo"]
        if record["maThuTuc"] == "601":
            assert mapped.procedure_code == "1.001234"
        if record["maCoQuan"] == "56001":
            assert mapped.agency_code == "000.00.15.H56"
        if record["maSoBhxh"] is not None:
            assert mapped.applicant_key == HASHER.hash(record["maSoBhxh"])
            assert record["maSoBhxh"] not in mapped.model_dump_json()
        assert mapped.channel is {"dienTu": Channel.ONLINE, "trucTiep": Channel.IN_PERSON}.get(
            record["kenhNop"], Channel.POSTAL
        )
    assert statuses == {
        "choTiepNhan": Status.REGISTERED,
        "daTiepNhan": Status.ACCEPTED,
        "tuChoi": Status.NOT_ACCEPTED,
        "dangXuLy": Status.IN_PROGRESS,
        "yeuCauBoSung": Status.SUPPLEMENT_REQUESTED,
        "daRut": Status.WITHDRAWN,
        "dungXuLy": Status.STOPPED,
        "daCoKetQua": Status.RESOLVED,
        "daTraKetQua": Status.RESULT_RETURNED,
    }
    # Social Insurance's own intake is mostly online.
    assert 0.78 <= truth.online / truth.valid <= 0.92


def test_forwarded_dossiers_carry_the_centre_code_place_and_time() -> None:
    records, truth = si.generate(rows=200, seed=8, malformed_share=0.05, forwarded=30)
    sent = scenario.forwarded(8, sector="social_insurance", count=30)
    by_id = {record["id"]: record for record in records}
    connector = offline()
    mapped = [connector.to_canonical(RawRecord(i, by_id[i])) for i in truth.forwarded_ids]
    assert sorted(m.national_dossier_code or "" for m in mapped) == sorted(
        f.national_code for f in sent
    )
    expected = {f.national_code: f for f in sent}
    for m in mapped:
        origin = expected[m.national_dossier_code or ""]
        assert m.received_by == origin.centre and m.locality_code == origin.locality_code
        assert m.received_at == origin.received_at.replace(tzinfo=si.LOCAL).astimezone(UTC)


def test_the_same_seed_gives_the_same_data() -> None:
    a = si.generate(rows=120, seed=3, malformed_share=0.1, forwarded=5)
    b = si.generate(rows=120, seed=3, malformed_share=0.1, forwarded=5)
    c = si.generate(rows=120, seed=4, malformed_share=0.1, forwarded=5)
    assert a == b and a[0] != c[0]


# -- syncing through the engine -------------------------------------------------------------
def test_faulty_api_sync_loads_every_valid_record_once_and_quarantines_every_malformed_one(
    registry: Engine,
) -> None:
    with service(rows=400, seed=21, malformed_share=0.08, forwarded=20, faults=FAULTY) as api:
        result = sync_source(registry, connect(api.url, batch_size=50))
        truth, served = api.truth, api.served()
        clear = {r["maSoBhxh"] for r in api.dossiers() if r["maSoBhxh"]}
    faults = Counter(s.fault for s in served if s.fault)
    assert set(faults) >= {"server_error", "rate_limit", "timeout", "drop"}
    assert faults["server_error"] + faults["rate_limit"] >= 5
    assert (result.rows_read, result.inserted, result.quarantined) == (
        truth.rows,
        truth.valid,
        truth.malformed,
    )
    assert_registry_matches(registry, truth)
    # No social insurance number in clear anywhere in the registry, quarantine included.
    with registry.connect() as conn:
        stored = " ".join(
            str(value)
            for table in (dossier, quarantine)
            for row in conn.execute(select(*(cast(c, String) for c in table.c)))
            for value in row
        )
    assert clear and not [number for number in clear if number in stored]


def test_a_revoked_token_is_renewed_once_and_its_page_asked_again(sqlite_registry: Engine) -> None:
    with service(rows=300, seed=22, malformed_share=0.05) as api:
        answered = 0

        def revoke_after_third_page(request: Request, status: int) -> None:
            nonlocal answered
            if request.path == si.DOSSIERS_PATH and status == 200:
                answered += 1
                if answered == 3:
                    api.revoke_tokens()  # as a key rotation at the provider would

        api.after_response = revoke_after_third_page
        result = sync_source(sqlite_registry, connect(api.url, batch_size=25, read_timeout=10))
        refused = [s for s in api.served() if s.status == 401]
        pages = pages_served(api)
        truth, issued = api.truth, api.tokens_issued
    assert len(refused) == 1 and refused[0].path == si.DOSSIERS_PATH
    assert issued == 2  # one token at the start, exactly one more for the one 401
    assert len(pages) == 12 and set(pages.values()) == {1}  # 300 / 25: each page once
    assert result.rows_read == truth.rows
    assert_registry_matches(sqlite_registry, truth)


def test_a_token_expiring_mid_sync_is_renewed_without_losing_or_repeating_a_page(
    sqlite_registry: Engine,
) -> None:
    # Tokens live 0.4 s and each answer takes 0.15 s, so the sync outlives several tokens and
    # some expire in flight (the API checks a token when it gets to the request): 401, a new
    # token, the same page asked again.
    slow = Faults(slow=1.0, slow_delay=0.15)
    with service(rows=300, seed=23, malformed_share=0.05, token_lifetime=0.4, faults=slow) as api:
        result = sync_source(sqlite_registry, connect(api.url, batch_size=50, read_timeout=10))
        refusals = sum(s.status == 401 for s in api.served())
        pages = pages_served(api)
        truth, issued = api.truth, api.tokens_issued
    assert issued >= 3  # about 1.5 s of paging with 0.4 s tokens
    assert issued - 1 >= refusals  # each 401 got its renewal
    assert len(pages) == 6 and set(pages.values()) == {1}  # 300 / 50: each page once
    assert result.rows_read == truth.rows
    assert_registry_matches(sqlite_registry, truth)


def test_a_fresh_token_refused_again_is_fatal_after_one_renewal() -> None:
    with service(rows=20, seed=24) as api:
        api.refuse_all_tokens = True
        with pytest.raises(FatalSourceError) as failed:
            list(connect(api.url).read(None))
        refused = sum(s.status == 401 for s in api.served())
        issued = api.tokens_issued
    message = str(failed.value)
    assert "source 'social_insurance'" in message and "freshly issued token" in message
    assert "'client_secret'" in message and CLIENT_SECRET not in message
    assert (refused, issued) == (2, 2)


def test_touched_records_sync_incrementally_as_exactly_those_updates(registry: Engine) -> None:
    with service(rows=400, seed=25, malformed_share=0.05, shared_updated_at=30) as api:
        first = sync_source(registry, connect(api.url, lookback=timedelta(minutes=5)))
        assert first.inserted == api.truth.valid
        with registry.connect() as conn:
            events_before = conn.execute(
                select(func.count()).select_from(dossier_event)
            ).scalar_one()
        touched = api.touch(share=0.05, seed=4)
        second = sync_source(registry, connect(api.url, lookback=timedelta(minutes=5)))
        now = {r["id"]: r for r in api.dossiers()}
        third = sync_source(registry, connect(api.url, lookback=timedelta(minutes=5)))
    assert len(touched) == round(api.truth.valid * 0.05)
    assert (second.inserted, second.updated, second.quarantined) == (0, len(touched), 0)
    assert (third.inserted, third.updated) == (0, 0)
    with registry.connect() as conn:
        events = conn.execute(
            select(dossier_event.c.source_id, dossier_event.c.status_to)
            .order_by(dossier_event.c.id)
            .offset(events_before)
        ).all()
    assert sorted(e.source_id for e in events) == touched
    mapping = offline()
    for event in events:
        expected = mapping.to_canonical(RawRecord(event.source_id, now[event.source_id]))
        assert event.status_to == int(expected.status)


def test_rate_limit_answers_are_waited_out_with_retry_after() -> None:
    with service(rows=60, seed=26, requests_per_second=4.0) as api:
        started = time.monotonic()
        records = [r for batch in connect(api.url, batch_size=10).read(None) for r in batch.records]
        elapsed = time.monotonic() - started
        limited = [s for s in api.served() if s.status == 429]
    assert len(records) == 60 and len({r.source_id for r in records}) == 60
    assert limited, "7 requests at once, 4 a second allowed: the limit must be met"
    assert elapsed >= 1.0  # Retry-After is whole seconds; the backoff alone is 0.01 s at most


def test_count_gives_the_source_own_count_by_local_receipt_day() -> None:
    with service(rows=300, seed=27, malformed_share=0.1) as api:
        connector = connect(api.url)
        records = api.dossiers()
        by_month = Counter(
            datetime.fromisoformat(r["ngayTiepNhan"]).strftime("%Y-%m")
            for r in records
            if r["ngayTiepNhan"] and not r["ngayTiepNhan"].startswith("2026-02-30")
        )
        month, expected = by_month.most_common(1)[0]
        assert connector.count(None) == 300
        assert connector.count(Period.parse(month)) == expected
        assert "300 dossiers" in connector.check().detail


# -- errors that stop the sync, saying what to fix ------------------------------------------
def test_wrong_client_secret_is_fatal_naming_the_setting_without_the_secret() -> None:
    wrong = "not-the-secret-" + "Wq7" * 6
    with service(rows=10, seed=28) as api:
        with pytest.raises(FatalSourceError) as failed:
            connect(api.url, client_secret=wrong).check()
        token_calls = [s for s in api.served() if s.path == si.TOKEN_PATH]
    message = str(failed.value)
    assert message.startswith("source 'social_insurance': the token endpoint")
    assert "invalid_client" in message and "'client_secret'" in message
    assert wrong not in message and CLIENT_SECRET not in message
    assert len(token_calls) == 1  # refused credentials are not retried


def test_wrong_url_connection_refused_is_fatal_naming_base_url() -> None:
    with service(rows=1, seed=29) as gone:
        url = gone.url  # the port is free again once the service stops
    with pytest.raises(FatalSourceError) as failed:
        connect(url, max_attempts=3).check()
    message = str(failed.value)
    assert "source 'social_insurance'" in message and "connection refused" in message
    assert "check the 'base_url' setting" in message and CLIENT_SECRET not in message


class WebSite(SimulatedApi):
    """The agency's web site where its API should be: HTML for every request."""

    def handle(self, request: Request) -> Response:
        return Response(200, text="<!doctype html><title>BHXH</title>", content_type="text/html")


def test_an_html_answer_instead_of_json_is_fatal_naming_base_url() -> None:
    with WebSite() as site, pytest.raises(FatalSourceError) as failed:
        connect(site.url).check()
    message = str(failed.value)
    assert "source 'social_insurance'" in message
    assert "answered text/html, not JSON; check the 'base_url' setting" in message
    assert CLIENT_SECRET not in message
