"""The statistics side can run on a read-only PostgreSQL role (docs/operations.md's GRANTs)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, insert, select, text
from sqlalchemy.exc import ProgrammingError

from dossierhub import stats, store
from models import migrate
from models.period import Period
from models.tables import dossier

ROOT = Path(__file__).resolve().parents[2]


def grants_from_the_guide() -> list[str]:
    """The SQL block under 'Read-only role for the API' in docs/operations.md."""
    guide = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    block = guide.split("<!-- read-only grants -->", 1)[1].split("```sql", 1)[1].split("```", 1)[0]
    return [s.strip() for s in block.split(";") if s.strip() and not s.strip().startswith("--")]


@pytest.fixture
def readonly(pg_url: str) -> Iterator[tuple[Engine, Engine]]:
    writer = store.open_registry(pg_url)
    migrate.upgrade(writer)
    role = f"dh_api_{secrets.token_hex(3)}"
    with writer.begin() as conn:
        for statement in grants_from_the_guide():
            conn.execute(text(statement.replace("dossierhub_api", role)))
    reader = create_engine(pg_url.replace("postgres@", f"{role}@"))
    yield writer, reader
    reader.dispose()
    with writer.begin() as conn:
        conn.execute(text(f"DROP OWNED BY {role}"))
        conn.execute(text(f"DROP ROLE {role}"))
    writer.dispose()


def test_api_queries_run_and_writes_are_refused_on_the_read_only_role(
    readonly: tuple[Engine, Engine],
) -> None:
    from tests.dossierhub.test_stats import SCENARIO

    writer, reader = readonly
    for source in ("one_stop", "tax"):
        with writer.begin() as conn:
            store.write_batch(
                conn,
                context=store.BatchContext(source),
                records=[r for r in SCENARIO if r.source_system == source],
            )
    stats.refresh(writer)
    with reader.connect() as conn:
        [row] = stats.indicators(conn, period=Period.parse("2026-01"))
        assert row["received"] == 4
        assert stats.coverage(conn, period=Period.parse("2026"))
        stats.open_at_end(conn, period=Period.parse("2026-01"))
        stats.freshness(conn)
        stats.quarantine_counts(conn)
        stats.latest_reconciliation(conn)
        with pytest.raises(ProgrammingError, match="permission denied"):
            conn.execute(insert(dossier).values(source_system="x"))
        conn.rollback()
        with pytest.raises(ProgrammingError, match="permission denied"):
            conn.execute(text("DELETE FROM quarantine"))
        conn.rollback()
        assert stats.registry_counts(conn, period=Period.parse("2026")) == {"one_stop": 3, "tax": 4}
        with pytest.raises(ProgrammingError, match="permission denied"):
            conn.execute(select(dossier.c.applicant_key))
