"""Quarantine keys of records from any source: distinct for distinct ids, whatever their length."""

from __future__ import annotations

from sqlalchemy import Engine, select

from connectors.base import RawRecord
from dossierhub import store
from dossierhub.errors import Reason
from models.tables import quarantine


def test_ids_longer_than_the_key_column_stay_distinct_entries(registry: Engine) -> None:
    head = "HS-" + "7" * 150  # two ids alike in their first 153 characters
    ids = [head + "-1", head + "-2", "short-id"]
    rejections = [
        store.Rejection(RawRecord(i, {"id": i}), [Reason("record", "bad", "bad")]) for i in ids
    ]
    with registry.begin() as conn:
        store.write_batch(
            conn, context=store.BatchContext("tax"), records=[], rejections=rejections
        )
        keys = conn.execute(select(quarantine.c.source_id, quarantine.c.payload)).all()
    assert len(keys) == 3
    assert all(len(key) <= store.QUARANTINE_KEY_LENGTH for key, _ in keys)
    assert {payload["id"] for _, payload in keys} == set(ids)
    assert "short-id" in {key for key, _ in keys}  # short ids are kept as they are
