"""The one-stop portal connector against its reference REST API on 127.0.0.1.

The portal pages by number over data that may change during a read, takes an API key, and
carries the dossiers its centres forward to every sector; syncs go through the real engine.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, String, cast, select

from connectors.base import Connector, ConnectorContext, Period, RawRecord
from connectors.http import HttpConnector
from connectors.identifiers import IdentifierHasher
from connectors.one_stop import OneStopConnector
from connectors.social_insurance import SocialInsuranceConnector
from connectors.testing import ConnectorConformance, context_for
from dossierhub import stats
from dossierhub.errors import FatalSourceError, RecordRejected
from dossierhub.sync import sync_source
from models.dossier import AdminLevel, Channel, Status
from models.tables import dossier, dossier_case, dossier_event, quarantine
from simulators import one_stop, scenario
from simulators import social_insurance as si
from simulators.http_server import Faults, Request, Response, SimulatedApi

HASHER = IdentifierHasher(SecretStr("one-stop-test-key-" + "h" * 32))
API_KEY = "portal-test-key-" + "Kx7" * 8
FAST: dict[str, Any] = {
    "connect_timeout": 0.5,
    "read_timeout": 0.5,
    "max_attempts": 10,
    "backoff_initial": 0.001,
    "backoff_max": 0.01,
}
FAULTY = Faults(
    server_error=0.2,
    rate_limit=0.1,
    retry_after=0,
    timeout=0.03,
    drop=0.03,
    hang=1.0,
    seed=5,
    script={1: "server_error", 2: "timeout", 3: "drop", 4: "rate_limit"},
)
EXPECTED_REASON = {
    "received_missing": "received_at:missing",
    "received_not_a_time": "received_at:invalid_datetime",
    "unknown_channel": "channel:unknown_code",
    "unknown_status": "status:unknown_code",
    "malformed_procedure_code": "procedure_code:invalid_format",
    "malformed_agency_code": "agency_code:invalid_format",
    "due_before_received": "due_at:inconsistent",
    "district_after_reform": "admin_level:inconsistent",
    "malformed_citizen_id": "applicant_key:invalid_format",
    "unknown_service_level": "service_level:unknown_code",
}
LOCAL_OFFSET = timedelta(hours=7)


def portal(**options: Any) -> one_stop.OneStopApi:
    return one_stop.OneStopApi(api_key=API_KEY, **options)


def connect(
    url: str, *, batch_size: int = 50, lookback: timedelta = timedelta(0), **settings: Any
) -> OneStopConnector:
    options = {"base_url": url, "api_key": API_KEY, **FAST, **settings}
    return OneStopConnector(
        ConnectorContext(
            source="one_stop",
            settings=options,
            hasher=HASHER,
            batch_size=batch_size,
            lookback=lookback,
        )
    )


def offline() -> OneStopConnector:
    """A connector for mapping only: it never calls the API."""
    return connect("http://127.0.0.1:9")


def registry_state(engine: Engine) -> tuple[dict[str, int], dict[str, int]]:
    """Registered source ids with their status, and unresolved quarantine seen counts."""
    with engine.connect() as conn:
        loaded = dict(
            conn.execute(
                select(dossier.c.source_id, dossier.c.status).where(
                    dossier.c.source_system == "one_stop"
                )
            ).all()
        )
        held = dict(
            conn.execute(
                select(quarantine.c.source_id, quarantine.c.seen_count).where(
                    quarantine.c.resolved.is_(False)
                )
            ).all()
        )
    return loaded, held


def assert_registry_matches(engine: Engine, api: one_stop.OneStopApi) -> None:
    """The registry holds the portal's current data: each valid dossier once, in its status."""
    loaded, held = registry_state(engine)
    truth, current = api.truth, {r["Id"]: r for r in api.dossiers()}
    assert set(loaded) == set(current) - set(truth.malformed_ids)
    assert {i: int(current[i]["TrangThaiHoSo"]) for i in loaded} == loaded
    assert set(held) == set(truth.malformed_ids) and set(held.values()) == {1}


# -- the conformance kit --------------------------------------------------------------------
class TestOneStopConformance(ConnectorConformance):
    @pytest.fixture(autouse=True)
    def _portal(self) -> Iterator[None]:
        with portal(
            rows=150, seed=11, malformed_share=0.1, forwarded=5, shared_updated_at=30
        ) as api:
            self.api = api
            yield

    def make_connector(self) -> Connector:
        settings = {"base_url": self.api.url, "api_key": API_KEY, **FAST}
        return OneStopConnector(context_for("one_stop", settings, batch_size=40))

    def make_changes(self) -> Iterable[str]:
        return self.api.touch(share=0.05, seed=2)

    def updated_at(self, connector: Connector, raw: RawRecord) -> datetime | None:
        assert isinstance(connector, HttpConnector)
        return connector.updated_at_of(raw)


# -- the portal's data and its mapping ------------------------------------------------------
def test_every_malformed_record_is_rejected_with_its_own_reason() -> None:
    records, truth = one_stop.generate(rows=400, seed=5, malformed_share=0.1, forwarded=5)
    connector = offline()
    found: dict[str, list[str]] = {}
    for record in records:
        try:
            connector.to_canonical(RawRecord(record["Id"], record))
        except RecordRejected as rejected:
            found[record["Id"]] = [reason.key for reason in rejected.reasons]
    assert set(found) == set(truth.malformed_ids)
    assert len(truth.defects) >= 6 and all(n > 0 for n in truth.defects.values())
    for ident, reasons in found.items():
        assert reasons == [EXPECTED_REASON[truth.defect_of[ident]]], ident


def test_native_codes_and_times_translate_to_the_shared_vocabulary() -> None:
    records, _ = one_stop.generate(rows=300, seed=6, forwarded=3)
    connector = offline()
    for record in records:
        mapped = connector.to_canonical(RawRecord(record["Id"], record))
        local = datetime.strptime(record["NgayTiepNhan"], "%Y%m%d%H%M%S")
        assert mapped.received_at == (local - LOCAL_OFFSET).replace(tzinfo=UTC)
        assert mapped.status == Status(int(record["TrangThaiHoSo"]))
        assert mapped.status_raw == record["TrangThaiHoSo"]
        assert mapped.channel is Channel.from_code(record["KenhThucHien"])
        assert mapped.procedure_code == record["MaTTHC"][:8]  # 2.000908.000.00.00.H56 reduced
        assert (
            mapped.dossier_code == record["MaHoSo"]
            and mapped.received_by == record["MaNoiTiepNhan"]
        )
        assert mapped.applicant_key == HASHER.hash(record["SoGiayToChuHoSo"])
        assert record["SoGiayToChuHoSo"] not in mapped.model_dump_json()
        assert (mapped.finished_at is None) == (record["NgayKetThuc"] == "")


def test_dossiers_come_mostly_in_person_from_the_centres_of_their_day() -> None:
    records, truth = one_stop.generate(rows=2000, seed=7, malformed_share=0.0)
    assert 0.84 <= sum(r["KenhThucHien"] == 1 for r in records) / truth.rows <= 0.92
    before = {r["MaNoiTiepNhan"] for r in records if r["NgayTiepNhan"] < "20250701"}
    after = {r["MaNoiTiepNhan"] for r in records if r["NgayTiepNhan"] >= "20250701"}
    assert before == {c for c, _, _ in scenario.CENTRES}
    assert after == {c for c, _, _ in scenario.CENTRES_TWO_LEVEL}  # no district centre after
    levels = Counter(offline().to_canonical(RawRecord(r["Id"], r)).admin_level for r in records)
    assert set(levels) == {AdminLevel.PROVINCE, AdminLevel.DISTRICT, AdminLevel.COMMUNE}


def test_every_forwarded_dossier_of_every_sector_is_on_the_portal() -> None:
    counts = {"tax": 6, "social_insurance": 9, "finance": 4, "land": 7}
    records, truth = one_stop.generate(rows=200, seed=9, malformed_share=0.05, forwarded=counts)
    on_portal = Counter(
        (r["MaHoSo"], r["MaCoQuanChuyenDen"], r["NgayTiepNhan"])
        for r in records
        if r["NganhChuyenDen"]
    )
    sent = Counter(
        (f.national_code, one_stop.SECTOR_AGENCIES[s], f.received_at.strftime("%Y%m%d%H%M%S"))
        for s in scenario.SECTORS
        for f in scenario.forwarded(9, sector=s, count=counts[s])
    )
    assert on_portal == sent and sum(sent.values()) == 26
    assert not set(truth.forwarded_ids) & set(truth.malformed_ids)


def test_the_same_seed_gives_the_same_data() -> None:
    a = one_stop.generate(rows=120, seed=3, malformed_share=0.1, forwarded=2)
    b = one_stop.generate(rows=120, seed=3, malformed_share=0.1, forwarded=2)
    c = one_stop.generate(rows=120, seed=4, malformed_share=0.1, forwarded=2)
    assert a == b and a[0] != c[0]


# -- syncing through the engine -------------------------------------------------------------
def test_faulty_api_sync_loads_every_valid_record_once_and_quarantines_every_malformed_one(
    registry: Engine,
) -> None:
    with portal(rows=400, seed=21, malformed_share=0.08, forwarded=5, faults=FAULTY) as api:
        result = sync_source(registry, connect(api.url, batch_size=50))
        served = api.served()
        assert_registry_matches(registry, api)
        clear = {r["SoGiayToChuHoSo"] for r in api.dossiers()}
    faults = Counter(s.fault for s in served if s.fault)
    assert set(faults) >= {"server_error", "rate_limit", "timeout", "drop"}
    assert faults["server_error"] + faults["rate_limit"] >= 5
    truth = api.truth
    assert (result.rows_read, result.inserted, result.quarantined) == (
        truth.rows,
        truth.valid,
        truth.malformed,
    )
    with registry.connect() as conn:
        stored = " ".join(
            str(value)
            for table in (dossier, quarantine)
            for row in conn.execute(select(*(cast(c, String) for c in table.c)))
            for value in row
        )
    assert not [holder for holder in clear if holder in stored]


def test_records_changing_while_pages_are_read_are_neither_lost_nor_doubled(
    sqlite_registry: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="connectors.http")
    # 80 dossiers share one change time; pages of 10 cross it. On the second page read
    # inside that group, three dossiers of it read already move on: every later position
    # in the group shifts by three.
    with portal(rows=300, seed=31, malformed_share=0.05, shared_updated_at=80) as api:
        tie = api.dossiers()[0]["NgayCapNhat"]  # dossiers 00000001..00000080
        inside = 0
        moved: list[str] = []

        def live_changes(request: Request, status: int) -> None:
            nonlocal inside
            query = request.query
            if request.path == one_stop.DOSSIERS_PATH and query.get("NgayCapNhatTu") == tie:
                inside += 1
                if inside == 2:  # as the portal's users work on them
                    seen = (int(query["SoTrang"]) - 1) * int(query["SoBanGhi"])
                    read_already = {f"{n:08d}" for n in range(1, seen + 1)}
                    moved.extend(api.touch(share=3 / api.truth.valid, seed=8, among=read_already))

        api.after_response = live_changes
        result = sync_source(sqlite_registry, connect(api.url, batch_size=10))
        assert_registry_matches(sqlite_registry, api)
        again = sync_source(sqlite_registry, connect(api.url, batch_size=10))
    assert len(moved) == 3 and inside > 2
    # Each moved dossier came twice (before and after its change), every other one once.
    assert result.rows_read == api.truth.rows + len(moved)
    assert (again.inserted, again.updated, again.quarantined) == (0, 0, 0)
    assert "stepping back" in caplog.text  # the shift happened and was caught


def test_touched_records_sync_incrementally_as_exactly_those_updates(registry: Engine) -> None:
    with portal(rows=400, seed=25, malformed_share=0.05, shared_updated_at=30) as api:
        first = sync_source(registry, connect(api.url, lookback=timedelta(minutes=5)))
        assert first.inserted == api.truth.valid
        with registry.connect() as conn:
            known = {row.id for row in conn.execute(select(dossier_event.c.id))}
        touched = api.touch(share=0.05, seed=4)
        second = sync_source(registry, connect(api.url, lookback=timedelta(minutes=5)))
        third = sync_source(registry, connect(api.url, lookback=timedelta(minutes=5)))
        assert_registry_matches(registry, api)
    assert len(touched) == round(api.truth.valid * 0.05)
    assert (second.inserted, second.updated, second.quarantined) == (0, len(touched), 0)
    assert (third.inserted, third.updated) == (0, 0)
    with registry.connect() as conn:
        events = [
            row
            for row in conn.execute(select(dossier_event.c.id, dossier_event.c.source_id))
            if row.id not in known
        ]
    assert sorted(e.source_id for e in events) == touched


def test_count_gives_the_portal_own_count_by_local_receipt_day() -> None:
    with portal(rows=300, seed=27, malformed_share=0.1) as api:
        connector = connect(api.url)
        by_month = Counter(
            r["NgayTiepNhan"][:6]
            for r in api.dossiers()
            if r["NgayTiepNhan"] and r["NgayTiepNhan"] != "20260230083000"
        )
        month, expected = by_month.most_common(1)[0]
        assert connector.count(None) == 300
        assert connector.count(Period.parse(f"{month[:4]}-{month[4:]}")) == expected


def test_portal_and_sector_records_of_one_forwarded_dossier_form_one_case(
    sqlite_registry: Engine,
) -> None:
    with (
        portal(rows=200, seed=41, malformed_share=0.05, forwarded={"social_insurance": 12}) as hub,
        si.SocialInsuranceApi(rows=150, seed=41, malformed_share=0.05, forwarded=12) as sector,
    ):
        sync_source(sqlite_registry, connect(hub.url))
        settings = {
            "base_url": sector.url,
            "client_id": si.DEMO_CLIENT_ID,
            "client_secret": si.DEMO_CLIENT_SECRET,
            **FAST,
        }
        sync_source(
            sqlite_registry,
            SocialInsuranceConnector(
                ConnectorContext(source="social_insurance", settings=settings, hasher=HASHER)
            ),
        )
    stats.refresh(sqlite_registry)
    with sqlite_registry.connect() as conn:
        shared = conn.execute(
            select(
                dossier_case.c.members, dossier_case.c.first_source, dossier_case.c.in_portal
            ).where(dossier_case.c.members > 1)
        ).all()
    assert len(shared) == 12
    assert all(row == (2, "one_stop", True) for row in shared)


# -- errors that stop the sync, saying what to fix ------------------------------------------
def test_wrong_api_key_is_fatal_naming_the_setting_without_the_key() -> None:
    wrong = "not-the-key-" + "Wq7" * 6
    with portal(rows=10, seed=28) as api:
        with pytest.raises(FatalSourceError) as failed:
            list(connect(api.url, api_key=wrong).read(None))
        calls = len(api.served())
    message = str(failed.value)
    assert message.startswith("source 'one_stop':") and "401" in message
    assert "check the 'api_key' setting" in message
    assert wrong not in message and API_KEY not in message
    assert calls == 1  # a refused key is not retried


def test_wrong_url_connection_refused_is_fatal_naming_base_url() -> None:
    with portal(rows=1, seed=29) as gone:
        url = gone.url  # the port is free again once the portal stops
    with pytest.raises(FatalSourceError) as failed:
        connect(url, max_attempts=3).check()
    message = str(failed.value)
    assert "source 'one_stop'" in message and "connection refused" in message
    assert "check the 'base_url' setting" in message and API_KEY not in message


class PortalHomePage(SimulatedApi):
    """The portal's public web site, where its API should be: HTML for every request."""

    def handle(self, request: Request) -> Response:
        return Response(200, text="<html><title>Cổng DVC</title></html>", content_type="text/html")


def test_an_html_answer_instead_of_json_is_fatal_naming_base_url() -> None:
    with PortalHomePage() as site, pytest.raises(FatalSourceError) as failed:
        list(connect(site.url).read(None))
    message = str(failed.value)
    assert "source 'one_stop'" in message
    assert "answered text/html, not JSON; check the 'base_url' setting" in message
    assert API_KEY not in message
