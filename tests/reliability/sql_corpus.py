"""A corpus of malformed source rows synced through both paths, and what each path left.

The SQL bad-input corpora (Tax, Land) store their rows in a loose copy of the source table
and sync it twice: as configured (on PostgreSQL the columnar path, which must then be the one
that read) into the registry under test, and through the row path alone into a fresh SQLite
registry. Each row's outcome, loaded or quarantined with its reasons, must be the same.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Engine, MetaData, String, Table, select

from connectors.sql import SqlConnector
from dossierhub import store
from dossierhub.sync import SyncResult, sync_source
from models import migrate
from models.tables import dossier, quarantine


def loose(table: Table) -> Table:
    """The table's shape without its NOT NULL rules or text lengths, as a careless source
    system would have (SQLite never enforced the lengths; PostgreSQL would refuse the
    corpus's over-long codes and names before any sync saw them)."""
    return Table(
        table.name,
        MetaData(),
        *(
            Column(
                c.name,
                String() if isinstance(c.type, String) else c.type,
                primary_key=c.primary_key,
            )
            for c in table.c
        ),
    )


@dataclass(frozen=True)
class Outcomes:
    """What a sync left, per source id: the dossiers loaded, and each quarantined id's
    reasons (field, code and message, in order)."""

    loaded: frozenset[str]
    reasons: dict[str, list[dict[str, str]]]

    def keys(self, source_id: str) -> list[str]:
        return [f"{r['field']}:{r['code']}" for r in self.reasons[source_id]]


def outcomes(registry: Engine) -> Outcomes:
    with registry.connect() as conn:
        loaded = conn.execute(select(dossier.c.source_id)).scalars().all()
        held = conn.execute(select(quarantine.c.source_id, quarantine.c.reasons)).all()
    return Outcomes(frozenset(loaded), {source_id: list(reasons) for source_id, reasons in held})


def through_both_paths(
    registry: Engine,
    make: Callable[[bool], SqlConnector],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    *,
    reads_columns: bool,
) -> tuple[SyncResult, Outcomes]:
    """Sync `make(True)` (the columnar setting on) into `registry` and `make(False)` into a
    fresh SQLite registry; the two must leave the same outcome per id. Where the columnar
    path `reads_columns` (a PostgreSQL source), it must be the one that read, its mapping
    never failing over to the row path."""
    columnar = make(True)
    assert (columnar.read_arrow(None) is not None) == reads_columns
    if reads_columns:

        def row_read(cursor: Any) -> Any:
            raise AssertionError("the columnar sync read row by row")

        columnar.read = row_read  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="dossierhub.columnar"):
        result = sync_source(registry, columnar)
    assert "the columnar mapping failed" not in caplog.text
    by_rows = store.open_registry(f"sqlite:///{tmp_path / 'row_path_registry.db'}")
    try:
        migrate.upgrade(by_rows)
        sync_source(by_rows, make(False))
        expected = outcomes(by_rows)
    finally:
        by_rows.dispose()
    got = outcomes(registry)
    assert got.loaded == expected.loaded
    assert got.reasons == expected.reasons
    return result, got
