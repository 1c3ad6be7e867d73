"""The Finance connector against the reference Finance exports, synced by the real engine."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, String, cast, func, select

from connectors.base import Batch, ConnectorContext, Cursor, Period
from connectors.finance import FinanceConnector
from connectors.identifiers import IdentifierHasher
from dossierhub import store
from dossierhub.sync import SyncResult, sync_source
from models import migrate
from models.tables import dossier, dossier_event, quarantine, sync_state
from simulators import finance, scenario

HASHER = IdentifierHasher(SecretStr("finance-test-key-" + "k" * 32))
DAYS, ROWS_PER_DAY, SEED = 12, 40, 7

# The first reason the connector gives for each planted defect (registry quarantine `reason`).
EXPECTED_REASON = {
    "received_missing": "received_at:missing",
    "foreign_date_format": "received_at:invalid_date",
    "unknown_status": "status:unknown_code",
    "malformed_procedure_code": "procedure_code:invalid_format",
    "malformed_tax_code": "applicant_key:invalid_format",
    "finished_before_received": "finished_at:inconsistent",
    "fee_with_currency": "has_fee:invalid_number",
    "unknown_channel": "channel:unknown_code",
    "broken_quoting": "record:broken_csv",
    "not_utf8": "record:invalid_encoding",
}


def connector(folder: Path, *, batch_size: int = 100) -> FinanceConnector:
    return FinanceConnector(
        ConnectorContext(
            source="finance",
            settings={"folder": str(folder)},
            hasher=HASHER,
            batch_size=batch_size,
        )
    )


def sync(registry: Engine, folder: Path, **options: Any) -> SyncResult:
    return sync_source(registry, connector(folder, **options))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "drop"


@pytest.fixture
def truth(folder: Path) -> finance.Truth:
    return finance.generate(
        folder, days=DAYS, rows_per_day=ROWS_PER_DAY, seed=SEED, malformed_share=0.1
    )


def scalar(engine: Engine, query: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(query).scalar_one()


def registered(engine: Engine) -> int:
    return int(scalar(engine, select(func.count()).select_from(dossier)))


def unresolved(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        found = conn.execute(
            select(quarantine.c.source_id, quarantine.c.reason).where(
                quarantine.c.resolved.is_(False)
            )
        ).all()
    return {r.source_id: r.reason for r in found}


def statuses(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        found = conn.execute(select(dossier.c.source_id, dossier.c.status)).all()
    return {source_id: status for source_id, status in found}


def events_after(engine: Engine, skip: int) -> list[Any]:
    e = dossier_event.c
    with engine.connect() as conn:
        query = select(e.source_id, e.status_from, e.status_to).order_by(e.id).offset(skip)
        return list(conn.execute(query).all())


def event_count(engine: Engine) -> int:
    return int(scalar(engine, select(func.count()).select_from(dossier_event)))


# -- a full sync ----------------------------------------------------------------------------
def test_full_sync_lands_every_valid_row_and_quarantines_every_malformed_one(
    registry: Engine, folder: Path, truth: finance.Truth
) -> None:
    result = sync(registry, folder)
    assert (result.rows_read, result.inserted, result.quarantined) == (
        truth.rows,
        truth.valid,
        truth.malformed,
    )
    found = unresolved(registry)
    assert registered(registry) + len(found) == truth.rows
    assert set(found) == set(truth.malformed_ids)
    # Each defect is rejected for its own reason, never a catch-all.
    assert len([kind for kind, n in truth.defects.items() if n]) >= 6
    assert Counter(found.values()) == Counter(
        {EXPECTED_REASON[kind]: n for kind, n in truth.defects.items() if n}
    )
    assert any(name.endswith(".xml") for name in truth.files)
    assert any(name.endswith(".csv") for name in truth.files)


def test_finance_values_map_to_the_canonical_record(
    registry: Engine, folder: Path, truth: finance.Truth
) -> None:
    sync(registry, folder)
    d = dossier.c
    with registry.connect() as conn:
        online = conn.execute(select(func.count()).where(d.channel == "online")).scalar_one()
        forwarded = conn.execute(
            select(d.national_dossier_code, d.received_by, d.received_at).where(
                d.national_dossier_code.is_not(None)
            )
        ).all()
        due = conn.execute(select(d.due_at)).scalars().all()
        levels = set(conn.execute(select(d.service_level).distinct()).scalars())
        fees = conn.execute(select(d.has_fee, d.paid_online).where(d.has_fee.is_(True))).all()
        raws = set(conn.execute(select(d.status_raw).distinct()).scalars())
    assert online == truth.online
    assert 0.3 < online / truth.valid < 0.5  # Finance is about 40% online
    # Dossiers the portal forwarded carry its national code and the receiving centre.
    expected = {
        f.national_code: f
        for f in scenario.forwarded(SEED, sector="finance", count=finance.FORWARDED)
        if finance.START <= f.received_at.date() < finance.START + timedelta(days=DAYS)
    }
    assert expected and {row.national_dossier_code for row in forwarded} == set(expected)
    assert set(truth.forwarded) == set(expected)
    for row in forwarded:
        source = expected[row.national_dossier_code]
        assert row.received_by == source.centre
        assert row.received_at >= (source.received_at - timedelta(hours=7)).replace(tzinfo=UTC)
    # HanXuLy is a date: due at the end of that local day (16:59:59 UTC).
    assert due and all(
        when is not None and (when.astimezone(UTC).hour, when.minute) == (16, 59) for when in due
    )
    assert levels == {"full_online", "partial_online", "not_online"}
    assert fees and any(paid for _, paid in fees)
    # Decomposed status words in the files come out as one composed form.
    assert {raw for raw in raws if raw is not None} <= set(finance.STATUSES)


def test_no_clear_tax_code_is_kept_in_registry_or_quarantine(
    registry: Engine, folder: Path, truth: finance.Truth
) -> None:
    clear = {
        code.decode()
        for path in folder.glob("*.*")
        for code in re.findall(rb"(?<!\d)\d{9,}(?:-\d{3})?(?!\d)", path.read_bytes())
    }
    sync(registry, folder)
    with registry.connect() as conn:
        stored = " ".join(
            str(v)
            for table in (dossier, quarantine)
            for row in conn.execute(select(*(cast(c, String) for c in table.c)))
            for v in row
        )
    assert len(clear) > truth.rows // 2
    assert not [code for code in clear if code in stored]


def test_count_is_the_dossiers_finance_received_in_the_period(
    folder: Path, truth: finance.Truth
) -> None:
    source = connector(folder)
    assert source.count(None) == truth.rows
    for month in ("2025-06", "2025-07"):
        expected = sum(n for day, n in truth.received_per_day.items() if day.startswith(month))
        assert source.count(Period.parse(month)) == expected > 0


# -- deliveries -----------------------------------------------------------------------------
def test_redelivered_file_loads_nothing(
    registry: Engine, folder: Path, truth: finance.Truth
) -> None:
    sync(registry, folder)
    with registry.connect() as conn:
        before = store.digest(conn)
    copy = finance.redeliver(folder, day=1)
    assert (folder / copy).read_bytes() == (folder / truth.files[1]).read_bytes()
    result = sync(registry, folder)
    assert (result.rows_read, result.inserted, result.updated, result.quarantined) == (0, 0, 0, 0)
    with registry.connect() as conn:
        assert store.digest(conn) == before


@pytest.mark.parametrize("day", [0, 2], ids=["csv", "xml"])
def test_corrected_file_updates_exactly_its_corrected_records(
    registry: Engine, folder: Path, truth: finance.Truth, day: int
) -> None:
    sync(registry, folder)
    before, events_before = statuses(registry), event_count(registry)
    changed = finance.reissue(folder, day=day, seed=4, share=0.25)
    assert len(changed) >= 3 and not set(changed) & set(truth.malformed_ids)
    assert finance.file_name(folder, day=day) == truth.files[day]

    result = sync(registry, folder)
    assert (result.inserted, result.updated) == (0, len(changed))
    after = statuses(registry)
    assert {k for k in after if after[k] != before[k]} < set(changed)  # some only corrected
    new_events = events_after(registry, events_before)
    assert {e.source_id for e in new_events} == {k for k in after if after[k] != before[k]}
    assert all(e.status_from == before[e.source_id] != e.status_to for e in new_events)
    # Re-syncing the corrected file again changes nothing.
    assert sync(registry, folder).rows_read == 0


def test_file_still_being_written_is_left_for_the_next_run(
    registry: Engine, folder: Path, truth: finance.Truth
) -> None:
    sync(registry, folder)
    partial = finance.start_partial(folder, day=DAYS)  # tomorrow's export, half written
    assert partial.name not in truth.files
    waiting = sync(registry, folder)
    assert (waiting.rows_read, waiting.inserted) == (0, 0)
    with registry.connect() as conn:
        cursor = conn.execute(select(sync_state.c.cursor)).scalar_one()
    assert partial.name not in {e["name"] for e in cursor["done"].values()}

    partial.complete()
    done = sync(registry, folder)
    assert done.rows_read == len(partial.ids)
    assert (done.inserted, done.quarantined) == (
        len(partial.ids) - len(partial.malformed_ids),
        len(partial.malformed_ids),
    )
    # An in-place re-export of a loaded day is ignored while written, and once finished
    # (same content) loads nothing.
    rewrite = finance.start_partial(folder, day=1)
    assert sync(registry, folder).rows_read == 0
    rewrite.complete()
    assert sync(registry, folder).rows_read == 0


class CrashAfter(FinanceConnector):
    """Fails between two batches, as a killed worker would."""

    crash_at = 3

    def read(self, cursor: Cursor | None) -> Iterator[Batch]:
        for number, batch in enumerate(super().read(cursor)):
            if number == self.crash_at:
                raise ConnectionError("injected: worker killed")
            yield batch


def test_crash_mid_file_then_rerun_equals_one_clean_run(
    registry: Engine, folder: Path, truth: finance.Truth, tmp_path: Path
) -> None:
    clean = store.open_registry(f"sqlite:///{tmp_path / 'clean.db'}")
    migrate.upgrade(clean)
    sync(clean, folder, batch_size=50)

    with pytest.raises(ConnectionError, match="injected"):
        sync_source(registry, CrashAfter(connector(folder, batch_size=50).context))
    with registry.connect() as conn:
        cursor = conn.execute(select(sync_state.c.cursor)).scalar_one()
    assert cursor["current"] is not None and cursor["current"]["row"] > 0  # inside a file
    assert registered(registry) + len(unresolved(registry)) == 3 * 50

    again = sync(registry, folder, batch_size=50)
    assert again.rows_read == truth.rows - 3 * 50
    with registry.connect() as a, clean.connect() as b:
        assert store.digest(a) == store.digest(b)
        keys = select(quarantine.c.source_id, quarantine.c.reason).order_by(quarantine.c.source_id)
        assert a.execute(keys).all() == b.execute(keys).all()
    clean.dispose()


# -- the simulator --------------------------------------------------------------------------
def test_generation_is_deterministic(tmp_path: Path) -> None:
    def files(where: Path) -> dict[str, str]:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in where.glob("H*")}

    truths = [
        finance.generate(tmp_path / name, days=4, rows_per_day=20, seed=seed, malformed_share=0.2)
        for name, seed in (("a", 1), ("b", 1), ("c", 2))
    ]
    assert truths[0] == truths[1] and files(tmp_path / "a") == files(tmp_path / "b")
    assert files(tmp_path / "a").keys() == files(tmp_path / "c").keys()
    assert files(tmp_path / "a") != files(tmp_path / "c")
    # A day made later is the day `generate` would have made.
    longer = finance.generate(tmp_path / "d", days=5, rows_per_day=20, seed=1, malformed_share=0.2)
    partial = finance.start_partial(tmp_path / "a", day=4)
    partial.complete()
    assert partial.path.read_bytes() == (tmp_path / "d" / longer.files[4]).read_bytes()


def test_truth_as_json_and_helpers_refuse_impossible_requests(
    folder: Path, truth: finance.Truth
) -> None:
    line = truth.as_json()
    assert "\n" not in line and '"source": "finance"' in line and str(truth.rows) in line
    with pytest.raises(ValueError, match="only"):
        finance.reissue(folder, day=0, seed=1, share=0.95)
    with pytest.raises(ValueError, match="end"):
        finance.generate(folder, days=1, rows_per_day=1, seed=1, start=datetime(2026, 11, 1).date())
