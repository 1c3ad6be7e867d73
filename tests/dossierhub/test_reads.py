"""The registry reads the API, the CLI and the dashboard share, against real registries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import Engine, update

from connectors.base import RawRecord
from connectors.errors import Reason
from dossierhub import api, reads, store, tokens
from models.tables import quarantine
from tests.dossierhub.test_api import serving

# A reason whose message holds UTC times, as the canonical model writes them.
LATE = Reason(
    "finished_at",
    "before_received",
    "finished_at 2026-03-01T03:00:00+00:00 is before received_at 2026-03-01T20:30:00+00:00",
)
BAD_DAY = Reason("received_at", "invalid_date", "NGAY_NHAN '31/02/2026' is not a date")


def quarantine_some(engine: Engine) -> None:
    """Three unresolved tax entries, one resolved tax entry, one land entry."""
    batches = {
        "tax": [("T1", LATE), ("T2", BAD_DAY), ("T3", BAD_DAY), ("T4", BAD_DAY)],
        "land": [("L1", BAD_DAY)],
    }
    with engine.begin() as conn:
        for source, entries in batches.items():
            store.write_batch(
                conn,
                context=store.BatchContext(source),
                records=[],
                rejections=[
                    store.Rejection(raw=RawRecord(key, {"MA_HS": key}), reasons=[reason])
                    for key, reason in entries
                ],
            )
        conn.execute(
            update(quarantine)
            .where(quarantine.c.source_id == "T4")
            .values(resolved=True, resolved_at=datetime(2026, 3, 2, 18, 0, tzinfo=UTC))
        )


def test_quarantine_entries_come_in_pages_and_say_how_many_there_are_in_all(
    registry: Engine,
) -> None:
    quarantine_some(registry)
    with registry.connect() as conn:
        first = reads.quarantine_entries(conn, source="tax", limit=2)
        rest = reads.quarantine_entries(conn, source="tax", limit=2, after=first.next_after or 0)
        every = reads.quarantine_entries(conn, source="tax", include_resolved=True)
        everywhere = reads.quarantine_entries(conn)
    assert [e.source_id for e in first.entries] == ["T1", "T2"]
    assert (first.total, first.more) == (3, True)
    assert first.next_after == first.entries[-1].id
    assert [e.source_id for e in rest.entries] == ["T3"]
    assert (rest.total, rest.more, rest.next_after) == (3, False, None)
    assert [e.source_id for e in every.entries] == ["T1", "T2", "T3", "T4"]
    assert every.total == 4 and every.entries[3].resolved
    assert {e.source_system for e in everywhere.entries} == {"tax", "land"}
    assert everywhere.total == 4
    assert first.entries[0].reasons == [
        {"field": LATE.field, "code": LATE.code, "message": LATE.message}
    ]


def test_quarantined_records_are_a_sources_held_payloads_oldest_first(registry: Engine) -> None:
    quarantine_some(registry)
    with registry.connect() as conn:
        held = reads.quarantined_records(conn, source="tax")
        listing = reads.quarantine_entries(conn, include_resolved=True)
        ids = {e.source_id: e.id for e in listing.entries}
        chosen = reads.quarantined_records(conn, source="tax", ids=[ids["T3"], ids["T1"]])
        resolved_or_other = reads.quarantined_records(
            conn, source="tax", ids=[ids["T4"], ids["L1"]]
        )
    assert held == [RawRecord(key, {"MA_HS": key}) for key in ("T1", "T2", "T3")]
    assert [raw.source_id for raw in chosen] == ["T1", "T3"]
    assert resolved_or_other == []


def test_local_time_is_written_beside_each_utc_time_of_a_message() -> None:
    assert reads.with_local_times(LATE.message) == (
        "finished_at 2026-03-01T03:00:00+00:00 (2026-03-01 10:00:00+07:00) is before "
        "received_at 2026-03-01T20:30:00+00:00 (2026-03-02 03:30:00+07:00)"
    )
    assert reads.with_local_times("due_at 2026-03-01 17:00:00Z is late") == (
        "due_at 2026-03-01 17:00:00Z (2026-03-02 00:00:00+07:00) is late"
    )
    # Local or zone-less times, and what only looks like a time, are left as they are.
    for untouched in (
        BAD_DAY.message,
        "NGAY_NHAN 2026-03-01T10:00:00+07:00 is in the future",
        "NGAY_NHAN 2026-03-01 10:00:00 has no zone",
        "NGAY_NHAN 2026-13-45T25:00:00+00:00 is not a time",
    ):
        assert reads.with_local_times(untouched) == untouched
    moment = datetime(2026, 12, 31, 17, 0, tzinfo=UTC)
    shown = reads.local_time(moment)
    assert shown == moment and shown is not None
    assert (shown.isoformat(), reads.local_time(None)) == ("2027-01-01T00:00:00+07:00", None)


def test_api_quarantine_gives_the_total_and_local_times_beside_utc(registry: Engine) -> None:
    quarantine_some(registry)
    token = tokens.create_token(registry, role="agency:tax", name="tax office")
    headers = {"Authorization": f"Bearer {token}"}
    path = f"{api.API_PREFIX}/sources/tax/quarantine"
    with serving(api.create_app(registry)) as url, httpx.Client(base_url=url) as client:
        page = client.get(path, params={"limit": 2}, headers=headers).json()
        rest = client.get(
            path, params={"limit": 2, "after": page["next_after"]}, headers=headers
        ).json()
        resolved = client.get(path, params={"include_resolved": "true"}, headers=headers).json()
    assert [e["source_id"] for e in page["entries"]] == ["T1", "T2"]
    assert (page["total"], rest["total"], resolved["total"]) == (3, 3, 4)
    assert [e["source_id"] for e in rest["entries"]] == ["T3"] and rest["next_after"] is None
    late = page["entries"][0]
    assert late["reasons"][0]["message"] == LATE.message  # the stored text, unchanged
    assert late["reasons"][0]["message_local"] == reads.with_local_times(LATE.message)
    assert "(2026-03-01 10:00:00+07:00)" in late["reasons"][0]["message_local"]
    for name in ("first_seen", "last_seen"):
        utc = datetime.fromisoformat(late[f"{name}_at"])
        shown = datetime.fromisoformat(late[f"{name}_local"])
        assert shown == utc and shown.utcoffset() == timedelta(hours=7)
    assert late["resolved_local"] is None
    [t4] = [e for e in resolved["entries"] if e["source_id"] == "T4"]
    assert t4["resolved_local"] == "2026-03-03T01:00:00+07:00"
