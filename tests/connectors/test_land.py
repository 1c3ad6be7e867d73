"""The Land connector against the reference Land database, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, String, cast, create_engine, func, select, text

from connectors.base import ConnectorContext, Cursor, Period, RawRecord, jsonable
from connectors.identifiers import IdentifierHasher
from connectors.land import LandConnector
from dossierhub.errors import FatalSourceError, Reason, RecordRejected
from dossierhub.sync import sync_source
from models.dossier import AdminLevel, Channel, DossierRecord, ServiceLevel, Status
from models.tables import dossier, dossier_event, quarantine
from simulators import land, scenario

HASHER = IdentifierHasher(SecretStr("land-test-key-" + "l" * 32))
LOCAL_OFFSET = timedelta(hours=7)  # Asia/Ho_Chi_Minh, no daylight saving

# What the connector must say for each planted defect: field, code, and a text the message holds.
EXPECTED_REASON: dict[str, tuple[str, str, str]] = {
    "received_missing": ("received_at", "missing", "ngay_tiep_nhan"),
    "unknown_status": ("status", "unknown_code", "trang_thai 'CHO_KY_SO'"),
    "finished_before_received": ("finished_at", "inconsistent", "is before received_at"),
    "malformed_procedure_code": ("procedure_code", "invalid_format", "1.OO4227"),
    "malformed_citizen_id": ("applicant_key", "invalid_format", "so_cccd (11 characters)"),
    "unknown_channel": ("channel", "unknown_code", "hinh_thuc_nop 9"),
    "legacy_encoded_name": ("procedure_name", "invalid_text", "legacy-encoded"),
    "blank_dossier_code": ("dossier_code", "missing", "ma_ho_so"),
    "malformed_one_stop_code": ("national_dossier_code", "invalid_format", "without spaces"),
}
# Land's statuses in the shared vocabulary, written out here independently of the connector.
SHARED = {
    "TIEP_NHAN": Status.ACCEPTED,
    "TU_CHOI": Status.NOT_ACCEPTED,
    "DANG_XU_LY": Status.IN_PROGRESS,
    "CHO_BO_SUNG": Status.SUPPLEMENT_REQUESTED,
    "CHO_NGHIA_VU_TC": Status.AWAITING_FINANCIAL_OBLIGATION,
    "RUT_HO_SO": Status.WITHDRAWN,
    "TAM_DUNG": Status.STOPPED,
    "DA_GIAI_QUYET": Status.RESOLVED,
    "DA_TRA": Status.RESULT_RETURNED,
}


# -- helpers --------------------------------------------------------------------------------
def connector(
    url: str, *, batch_size: int = 400, lookback: timedelta = timedelta(0)
) -> LandConnector:
    return LandConnector(
        ConnectorContext(
            source="land",
            settings={"url": url},
            hasher=HASHER,
            batch_size=batch_size,
            lookback=lookback,
        )
    )


def read_all(
    url: str, cursor: Cursor | None = None, **options: Any
) -> tuple[list[RawRecord], Cursor | None]:
    """Every record a read from `cursor` yields, and the cursor after the last batch."""
    source = connector(url, **options)
    records: list[RawRecord] = []
    try:
        for batch in source.read(cursor):
            records.extend(batch.records)
            cursor = batch.cursor
    finally:
        source.close()
    return records, cursor


Outcome = DossierRecord | tuple[tuple[str, str, str], ...]


def outcome(source: LandConnector, raw: RawRecord) -> Outcome:
    try:
        return source.to_canonical(raw)
    except RecordRejected as rejected:
        return tuple((r.field, r.code, r.message) for r in rejected.reasons)


def utc(local: datetime) -> datetime:
    return (local - LOCAL_OFFSET).replace(tzinfo=UTC)


def native_rows(url: str, query: str) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(query)))
    finally:
        engine.dispose()


@dataclass
class Sample:
    url: str
    truth: land.Truth
    raws: dict[int, RawRecord]
    records: dict[int, DossierRecord]
    rejected: dict[int, list[Reason]]


def load_sample(url: str, truth: land.Truth) -> Sample:
    raws, _ = read_all(url)
    source = connector(url)
    sample = Sample(url, truth, {}, {}, {})
    for raw in raws:
        ident = int(raw.source_id or 0)
        assert ident not in sample.raws, f"id {ident} read twice"
        sample.raws[ident] = raw
        try:
            sample.records[ident] = source.to_canonical(raw)
        except RecordRejected as rejected:
            sample.rejected[ident] = rejected.reasons
    return sample


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    """2,000 Land dossiers, a tenth malformed, 100 forwarded from one-stop centres."""
    url = f"sqlite:///{tmp_path_factory.mktemp('land') / 'land.db'}"
    truth = land.generate(url, rows=2000, seed=20, malformed_share=0.1, forwarded=100)
    return load_sample(url, truth)


@pytest.fixture(
    params=[
        pytest.param("sqlite"),
        pytest.param("postgresql", marks=pytest.mark.postgres),
    ]
)
def land_url(request: pytest.FixtureRequest) -> str:
    """A fresh source database of each kind Land runs on (PostgreSQL; SQLite for quick runs)."""
    fixture = {"sqlite": "sqlite_url", "postgresql": "pg_url"}[request.param]
    return str(request.getfixturevalue(fixture))


def scalar(engine: Engine, query: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(query).scalar_one()


# -- mapping --------------------------------------------------------------------------------
def test_every_malformed_row_is_rejected_with_its_own_reason(sample: Sample) -> None:
    assert len(sample.raws) == sample.truth.rows == 2000
    assert set(sample.rejected) == set(sample.truth.malformed_ids)
    assert len(sample.records) == sample.truth.valid == 1800
    assert set(sample.truth.defects) == set(EXPECTED_REASON) and len(EXPECTED_REASON) >= 6
    assert all(count > 0 for count in sample.truth.defects.values())
    for ident, reasons in sample.rejected.items():
        field, code, fragment = EXPECTED_REASON[sample.truth.defect_of[ident]]
        assert [(r.field, r.code) for r in reasons] == [(field, code)], (ident, reasons)
        assert fragment in reasons[0].message, (ident, reasons[0].message)


def test_native_codes_translate_to_the_shared_vocabulary(sample: Sample) -> None:
    channels = {0: Channel.IN_PERSON, 1: Channel.ONLINE, 2: Channel.POSTAL}
    levels = {
        4: ServiceLevel.FULL_ONLINE,
        3: ServiceLevel.PARTIAL_ONLINE,
        2: ServiceLevel.NOT_ONLINE,
    }
    units = {2: AdminLevel.PROVINCE, 3: AdminLevel.DISTRICT, 5: AdminLevel.COMMUNE}
    for ident, record in sample.records.items():
        row = sample.raws[ident].payload
        assert record.source_system == "land" and record.source_id == str(row["id"])
        assert record.dossier_code == row["ma_ho_so"]
        assert record.channel is channels[row["hinh_thuc_nop"]]
        assert record.service_level is levels[row["muc_do_dvc"]]
        assert record.status is SHARED[row["trang_thai"]]
        assert record.status_raw == row["trang_thai"]
        assert record.admin_level is units[len(row["ma_dvhc"])]
        assert record.agency_code == row["ma_don_vi_xu_ly"]
        assert record.received_by == row["ma_don_vi_tiep_nhan"]
        assert record.received_at == utc(row["ngay_tiep_nhan"])
        assert record.due_at == utc(row["ngay_hen_tra"])
        assert (record.finished_at is not None) == (
            row["trang_thai"] in ("DA_GIAI_QUYET", "DA_TRA")
        )
        assert (record.returned_at is not None) == (row["trang_thai"] == "DA_TRA")
        assert record.has_fee is (row["le_phi"] > 0)
        assert record.paid_online is (bool(row["thanh_toan_truc_tuyen"]) if row["le_phi"] else None)
        # SQLite hands back Land's change time as naive local time; it is still local.
        assert record.source_updated_at == utc(row["ngay_cap_nhat"])
    online = sum(r.channel is Channel.ONLINE for r in sample.records.values())
    assert online == sample.truth.online
    assert 0.2 < online / sample.truth.valid < 0.3  # Land is about a quarter online
    statuses = Counter(r.status_raw for r in sample.records.values())
    assert set(statuses) == set(SHARED)  # every Land status occurs and maps


def test_clear_citizen_id_never_leaves_the_connector(sample: Sample) -> None:
    source = connector(sample.url)
    cited = 0
    for ident, record in sample.records.items():
        clear = sample.raws[ident].payload["so_cccd"]
        if clear is None:
            assert record.applicant_key is None
            continue
        cited += 1
        assert clear not in record.model_dump_json()
        assert record.applicant_key == HASHER.hash(clear)
    assert cited > 1000
    for ident, reasons in sample.rejected.items():
        raw = sample.raws[ident]
        kept = source.redact(raw.payload, reasons)
        if raw.payload["so_cccd"] is not None:
            assert raw.payload["so_cccd"] not in json.dumps(jsonable(kept))
            assert all(raw.payload["so_cccd"] not in r.message for r in reasons)


def test_history_shows_long_running_dossiers_with_many_changes(sample: Sample) -> None:
    valid = sorted(sample.records)
    history = land.history_of(sample.url, valid)
    assert set(history) == set(valid)
    for ident in valid:
        log, row = history[ident], sample.raws[ident].payload
        assert log[0].status_from is None and log[0].status_to == "TIEP_NHAN"
        assert all(a.status_to == b.status_from for a, b in itertools.pairwise(log))
        assert [c.at for c in log] == sorted(c.at for c in log)
        assert log[-1].status_to == row["trang_thai"]
        assert log[-1].at == row["ngay_cap_nhat"]  # the last change is the last status change
    lengths = [len(log) for log in history.values()]
    assert max(lengths) >= 10 and sum(n >= 6 for n in lengths) > len(lengths) / 5
    paused = [i for i in valid if any(c.status_to in land.PAUSED for c in history[i])]
    resumed = [
        i
        for i in paused
        if any(c.status_from in land.PAUSED and c.status_to == "DANG_XU_LY" for c in history[i])
    ]
    assert len(resumed) > len(valid) / 10
    # While waiting for a supplement or suspended, the clock stops: the due date moves on.
    for ident in resumed[:200]:
        log, row = history[ident], sample.raws[ident].payload
        stopped = sum(
            (b.at - a.at for a, b in itertools.pairwise(log) if a.status_to in land.PAUSED),
            timedelta(),
        )
        statutory = row["ngay_hen_tra"] - stopped - row["ngay_tiep_nhan"]
        assert timedelta(0) < statutory < timedelta(days=21), (ident, statutory)


def test_payload_back_from_quarantine_maps_the_same(land_url: str) -> None:
    land.generate(land_url, rows=400, seed=6, malformed_share=0.2, forwarded=20)
    raws, _ = read_all(land_url)
    source = connector(land_url)
    for raw in raws:
        back = RawRecord(raw.source_id, dict(json.loads(json.dumps(jsonable(raw.payload)))))
        assert outcome(source, back) == outcome(source, raw)
    source.close()


def test_count_matches_the_source_by_local_receipt_date(land_url: str) -> None:
    truth = land.generate(land_url, rows=600, seed=7, malformed_share=0.05)
    source = connector(land_url)
    assert source.count(None) == truth.rows
    for period, start, end in (
        ("2025-03", "2025-03-01", "2025-04-01"),
        ("2026", "2026-01-01", "2027-01-01"),
    ):
        [(direct,)] = native_rows(
            land_url,
            f"SELECT COUNT(*) FROM ho_so_dang_ky WHERE ngay_tiep_nhan >= '{start}' "
            f"AND ngay_tiep_nhan < '{end}'",
        )
        assert source.count(Period.parse(period)) == direct > 0
    source.close()


# -- syncing into the registry --------------------------------------------------------------
def test_full_sync_lands_every_valid_row_and_quarantines_every_malformed_one(
    land_url: str, registry: Engine
) -> None:
    truth = land.generate(land_url, rows=1500, seed=5, malformed_share=0.06, forwarded=60)
    result = sync_source(registry, connector(land_url, batch_size=250))
    assert (result.rows_read, result.inserted, result.quarantined) == (
        truth.rows,
        truth.valid,
        truth.malformed,
    )
    registered = scalar(registry, select(func.count()).select_from(dossier))
    held = scalar(registry, select(func.count()).select_from(quarantine))
    assert (registered, held) == (truth.valid, truth.malformed)
    assert registered + held == truth.rows
    with registry.connect() as conn:
        entries = conn.execute(select(quarantine.c.source_id, quarantine.c.reasons)).all()
    assert {int(e.source_id) for e in entries} == set(truth.malformed_ids)
    for entry in entries:
        field, code, fragment = EXPECTED_REASON[truth.defect_of[int(entry.source_id)]]
        [reason] = entry.reasons
        assert (reason["field"], reason["code"]) == (field, code) and fragment in reason["message"]
    # One initial status event per landed dossier.
    events = scalar(registry, select(func.count()).select_from(dossier_event))
    assert events == truth.valid


def test_forwarded_dossiers_carry_the_one_stop_code(land_url: str, registry: Engine) -> None:
    truth = land.generate(land_url, rows=800, seed=31, malformed_share=0.05, forwarded=80)
    sync_source(registry, connector(land_url))
    centre = {f.national_code: f for f in scenario.forwarded(31, sector="land", count=80)}
    with registry.connect() as conn:
        linked = conn.execute(
            select(
                dossier.c.source_id,
                dossier.c.dossier_code,
                dossier.c.national_dossier_code,
                dossier.c.received_by,
                dossier.c.locality_code,
                dossier.c.procedure_code,
                dossier.c.received_at,
                dossier.c.channel,
            ).where(dossier.c.national_dossier_code.is_not(None))
        ).all()
    assert sorted(int(row.source_id) for row in linked) == list(truth.forwarded_ids)
    assert {row.national_dossier_code for row in linked} == set(centre)
    for row in linked:
        sent = centre[row.national_dossier_code]
        assert row.dossier_code != row.national_dossier_code  # Land numbers it its own way
        assert row.received_by == sent.centre and row.locality_code == sent.locality_code
        assert row.procedure_code == sent.procedure_code
        received = (
            row.received_at if row.received_at.tzinfo else row.received_at.replace(tzinfo=UTC)
        )
        assert received == utc(sent.received_at)
        assert row.channel == ("online" if sent.channel == 2 else "in_person")


def test_advancing_across_several_syncs_gives_one_status_event_per_observed_change(
    land_url: str, registry: Engine
) -> None:
    truth = land.generate(land_url, rows=1200, seed=8, malformed_share=0.05)
    valid = sorted(set(range(1, truth.rows + 1)) - set(truth.malformed_ids))
    observed: dict[int, list[str]] = {i: [s] for i, s in land.status_of(land_url, valid).items()}
    sync_source(registry, connector(land_url, batch_size=300, lookback=timedelta(minutes=5)))

    moved: set[int] = set()
    for round_, steps in enumerate((1, 2, 1, 3, 1), start=1):
        ids = land.advance(land_url, share=0.04, seed=round_, steps=steps)
        moved.update(ids)
        now = land.status_of(land_url, ids)
        expected_new = sum(now[i] != observed[i][-1] for i in ids)
        for i in ids:
            observed[i].append(now[i])
        result = sync_source(
            registry, connector(land_url, batch_size=300, lookback=timedelta(minutes=5))
        )
        assert result.updated == len(ids) and result.inserted == 0, round_
        with registry.connect() as conn:
            run_events = conn.execute(
                select(func.count())
                .select_from(dossier_event)
                .where(dossier_event.c.run_id == result.run_id)
            ).scalar_one()
        assert run_events == expected_new, round_

    with registry.connect() as conn:
        rows = conn.execute(
            select(
                dossier_event.c.source_id,
                dossier_event.c.status_from,
                dossier_event.c.status_to,
                dossier_event.c.status_raw,
            ).order_by(dossier_event.c.id)
        ).all()
    events: dict[int, list[Any]] = {}
    for row in rows:
        events.setdefault(int(row.source_id), []).append(row)
    assert set(events) == set(valid)
    history = land.history_of(land_url, sorted(moved))
    multi = 0
    for ident in moved:
        seen = [s for k, s in enumerate(observed[ident]) if k == 0 or s != observed[ident][k - 1]]
        chain = events[ident]
        # One event per observed change, and the chain links up: each from is the last to.
        assert [e.status_raw for e in chain] == seen, ident
        assert chain[0].status_from is None
        assert all(b.status_from == a.status_to for a, b in itertools.pairwise(chain))
        assert [e.status_to for e in chain] == [SHARED[s] for s in seen]
        # What the registry saw is what Land logged, possibly with steps in between.
        logged = iter(change.status_to for change in history[ident])
        assert all(any(step == status for step in logged) for status in seen), ident
        multi += len(chain) >= 3
    assert multi > 0  # some dossiers were seen changing on several syncs
    assert all(len(events[i]) == 1 for i in set(valid) - moved)


def test_repaired_rows_load_and_leave_quarantine(land_url: str, registry: Engine) -> None:
    truth = land.generate(land_url, rows=700, seed=9, malformed_share=0.1)
    sync_source(registry, connector(land_url))
    land.repair(land_url, ids=truth.malformed_ids)
    result = sync_source(registry, connector(land_url))
    assert (result.rows_read, result.inserted, result.quarantined) == (truth.malformed,) * 2 + (0,)
    with registry.connect() as conn:
        unresolved = conn.execute(
            select(func.count()).select_from(quarantine).where(quarantine.c.resolved.is_(False))
        ).scalar_one()
        codes = conn.execute(select(dossier.c.dossier_code)).scalars().all()
    assert unresolved == 0 and len(codes) == len(set(codes)) == truth.rows


def test_no_clear_citizen_id_is_kept_in_registry_or_quarantine(
    registry: Engine, sqlite_url: str
) -> None:
    land.generate(sqlite_url, rows=500, seed=3, malformed_share=0.2)
    clear = {
        row[0] for row in native_rows(sqlite_url, "SELECT so_cccd FROM ho_so_dang_ky") if row[0]
    }
    sync_source(registry, connector(sqlite_url))
    with registry.connect() as conn:
        stored = " ".join(
            str(v)
            for table in (dossier, quarantine)
            for row in conn.execute(select(*(cast(c, String) for c in table.c)))
            for v in row
        )
    assert len(clear) > 300 and not [value for value in clear if value in stored]


# -- the simulator --------------------------------------------------------------------------
def test_the_same_seed_gives_the_same_data(tmp_path: Path) -> None:
    urls = [f"sqlite:///{tmp_path / name}" for name in ("a.db", "b.db")]
    truths = [
        land.generate(url, rows=300, seed=4, malformed_share=0.1, forwarded=30) for url in urls
    ]
    assert truths[0] == truths[1]
    tables = [
        [native_rows(url, f"SELECT * FROM {t} ORDER BY id") for t in (land.TABLE, land.HISTORY)]
        for url in urls
    ]
    assert tables[0] == tables[1] and len(tables[0][1]) == truths[0].history
    other = land.generate(urls[1], rows=300, seed=5, malformed_share=0.1, forwarded=30)
    assert other.malformed_ids != truths[0].malformed_ids
    line = json.loads(truths[0].as_json())
    assert line["source"] == "land" and line["forwarded"] == 30 and "malformed_ids" not in line
    with pytest.raises(ValueError, match="forwarded must be within"):
        land.generate(urls[0], rows=10, seed=1, malformed_share=0.5, forwarded=6)


def test_advance_moves_open_rows_with_the_newest_change_times(land_url: str) -> None:
    truth = land.generate(land_url, rows=1500, seed=10, malformed_share=0.1)
    before, cursor = read_all(land_url)
    rows = {int(raw.source_id or 0): raw.payload for raw in before}
    latest = max(payload["ngay_cap_nhat"] for payload in rows.values())

    moved = land.advance(land_url, share=0.05, seed=3)
    assert len(moved) == round(0.05 * truth.valid) == len(set(moved)) and moved == sorted(moved)
    assert not set(moved) & set(truth.malformed_ids)
    assert all(rows[i]["trang_thai"] in land.OPEN for i in moved)

    changed, _ = read_all(land_url, cursor)
    assert [int(raw.source_id or 0) for raw in changed] == moved
    times = [raw.payload["ngay_cap_nhat"] for raw in changed]
    assert times == sorted(set(times)) and times[0] > latest
    history = land.history_of(land_url, moved)
    source = connector(land_url)
    for raw in changed:
        ident, new = int(raw.source_id or 0), raw.payload
        old = rows[ident]
        step = history[ident][-1]
        assert (step.status_from, step.status_to) == (old["trang_thai"], new["trang_thai"])
        assert new["trang_thai"] in dict(land.NEXT_STEPS[old["trang_thai"]])
        if old["trang_thai"] in land.PAUSED:
            assert new["ngay_hen_tra"] > old["ngay_hen_tra"]  # the stopped clock moved the due date
        else:
            assert new["ngay_hen_tra"] == old["ngay_hen_tra"]
        assert isinstance(outcome(source, raw), DossierRecord)
    source.close()
    with pytest.raises(ValueError, match="still open"):
        land.advance(land_url, share=0.9, seed=3)


def test_repair_makes_malformed_rows_valid_and_newest(land_url: str) -> None:
    truth = land.generate(land_url, rows=1000, seed=12, malformed_share=0.1)
    _, cursor = read_all(land_url)
    land.repair(land_url, ids=truth.malformed_ids)
    repaired, _ = read_all(land_url, cursor)
    assert sorted(int(raw.source_id or 0) for raw in repaired) == list(truth.malformed_ids)
    source = connector(land_url)
    for raw in repaired:
        source.to_canonical(raw)  # raises RecordRejected if anything is still wrong
    source.close()
    with pytest.raises(ValueError, match="no rows"):
        land.repair(land_url, ids=[999_999])


@pytest.mark.slow
@pytest.mark.postgres
def test_generates_100k_rows_on_postgresql(pg_url: str) -> None:
    # How fast is a benchmark's question, not a test's: only the rows are checked here.
    truth = land.generate(pg_url, rows=100_000, seed=1, malformed_share=0.02, forwarded=500)
    [(rows, history)] = native_rows(
        pg_url,
        "SELECT (SELECT COUNT(*) FROM ho_so_dang_ky), (SELECT COUNT(*) FROM lich_su_xu_ly)",
    )
    assert (rows, history) == (truth.rows, truth.history) and history > 4 * rows


# -- failures that stop a sync --------------------------------------------------------------
def test_missing_column_names_the_column_and_the_mapping_file(land_url: str) -> None:
    land.generate(land_url, rows=50, seed=1)
    engine = create_engine(land_url)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE ho_so_dang_ky RENAME COLUMN ngay_tiep_nhan TO ngay_nhan"))
    engine.dispose()
    with pytest.raises(FatalSourceError) as failed:
        connector(land_url).check()
    message = str(failed.value)
    assert "source 'land'" in message and "ngay_tiep_nhan" in message
    assert "ho_so_dang_ky" in message and "connectors/land.py" in message


def test_missing_table_is_fatal_and_says_so(sqlite_url: str) -> None:
    with pytest.raises(FatalSourceError, match="table ho_so_dang_ky not found"):
        connector(sqlite_url).check()
