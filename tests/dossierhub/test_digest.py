"""The registry digest reads the registry in chunks: its memory does not grow with the registry."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from dossierhub import store
from models import migrate

# Dossiers with a 500-character procedure name: a buffered read grew the process by about
# 200 MB, a streamed one by 15 (a chunk of rows and what the first read loads).
ROWS = 150_000
FILL = """
INSERT INTO dossier (source_system, source_id, dossier_code, procedure_code, procedure_name,
    agency_code, channel, status, received_at, source_updated_at, first_seen_at, last_changed_at)
SELECT 'tax', 'id-' || n, 'code-' || n, 'P1', repeat('x', 500), 'A1', 'online', 1,
    now(), now(), now(), now()
FROM generate_series(1, :rows) AS n
"""
PROBE = """
import json, sys
from dossierhub import store

def vm(key):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(key)) / 1024

engine = store.open_registry(sys.argv[1])
with engine.connect() as conn:
    conn.exec_driver_sql("SELECT 1")
    before = vm("VmRSS:")
    found = store.digest(conn)
print(json.dumps({"digest": found, "grew_mb": vm("VmHWM:") - before}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_digest_of_a_large_registry_keeps_memory_flat(pg_url: str) -> None:
    """A buffered read held the whole registry in the process (1 GB at a million dossiers,
    which the sync benchmark then reported as its incremental sync's peak)."""
    registry = store.open_registry(pg_url)
    migrate.upgrade(registry)
    with registry.begin() as conn:
        conn.execute(text(FILL), {"rows": ROWS})
    with registry.connect() as conn:
        expected = store.digest(conn)
    registry.dispose()
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, pg_url], capture_output=True, text=True, timeout=300
    )
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    assert found["digest"] == expected
    assert found["grew_mb"] < 40, found


def test_digest_on_an_autocommit_connection_equals_the_transactional_one(pg_url: str) -> None:
    """A server-side cursor needs a transaction block, which the digest opens itself there."""
    registry = store.open_registry(pg_url)
    migrate.upgrade(registry)
    with registry.begin() as conn:
        conn.execute(text(FILL), {"rows": 12})
    with registry.connect() as conn:
        expected = store.digest(conn)
    with registry.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        assert store.digest(conn) == expected
        assert store.digest(conn, history=False) != expected
    registry.dispose()
