"""The sync benchmark runs end to end on a tiny source and ends with its machine-readable line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PG_SERVER, _server

BENCH = Path(__file__).resolve().parents[2] / "bench" / "sync_bench.py"
LAST_LINE = re.compile(
    r"sync_bench rows=(?P<rows>\d+) path=(?P<path>row|columnar)"
    r" sync_rows_per_s=(?P<sync>\d+) copy_rows_per_s=(?P<copy>\d+) ratio=(?P<ratio>\d+\.\d\d)"
    r" floor_rows_per_s=(?P<floor>\d+) floor_ratio=(?P<floor_ratio>\d+\.\d\d)"
    r" incremental_1pct_s=(?P<incremental>\d+\.\d\d) peak_rss_mb=(?P<rss>\d+)"
)


@pytest.mark.slow
def test_tiny_run_ends_with_the_machine_readable_line() -> None:
    _server(PG_SERVER, "PostgreSQL").dispose()  # skips (or fails in CI) without a server
    done = subprocess.run(
        [sys.executable, str(BENCH), "--rows", "1500", "--server", PG_SERVER],
        capture_output=True,
        text=True,
        cwd=BENCH.parents[1],
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    found = LAST_LINE.fullmatch(lines[-1])
    assert found, lines[-1]
    figures = found.groupdict()
    assert (figures["rows"], figures["path"]) == ("1500", "row")
    sync, copy, floor = (int(figures[name]) for name in ("sync", "copy", "floor"))
    assert min(sync, floor, copy) > 0
    assert float(figures["ratio"]) == pytest.approx(sync / copy, abs=0.006)
    assert float(figures["floor_ratio"]) == pytest.approx(sync / floor, abs=0.006)
    assert float(figures["incremental"]) > 0
    assert 20 < int(figures["rss"]) < 2000  # the sync child's, in MB
    assert any(line.startswith("registry write floor: 1,485 rows") for line in lines), lines


# A process that once held this much, then spawns a sync child (as the bench's own process
# did after reading the registry's digest).
HELD_MB = 768
PARENT = f"""
import json, sys
sys.path.insert(0, "bench")
import sync_bench
from dossierhub import store
from models import migrate

held = b"x" * ({HELD_MB} << 20)
del held
server = sys.argv[1]
with (
    sync_bench.scratch_database(server, "src") as source,
    sync_bench.scratch_database(server, "reg") as registry,
):
    sync_bench.build_source(source, 300)
    migrate.upgrade(store.open_registry(registry))
    print(json.dumps(sync_bench.run_sync(source, registry, "row", 100)))
"""


def test_a_sync_child_reports_its_own_peak_rss_not_its_parents() -> None:
    """getrusage's peak of an exec'd child starts at its parent's: the incremental sync
    once reported 2 GB that was the bench's digest of the registry, not the sync."""
    _server(PG_SERVER, "PostgreSQL").dispose()
    done = subprocess.run(
        [sys.executable, "-c", PARENT, PG_SERVER],
        capture_output=True,
        text=True,
        cwd=BENCH.parents[1],
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    child = json.loads(done.stdout.strip().splitlines()[-1])
    assert child["rows_read"] == 300
    assert 20 < child["peak_rss_mb"] < HELD_MB / 2, child


def test_columnar_path_without_its_option_fails_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH.parent))
    import sync_bench

    monkeypatch.setattr(sync_bench, "COLUMNAR_OPTION", "no_such_option")
    with pytest.raises(SystemExit) as stopped:
        sync_bench.check_path("columnar")
    assert "'no_such_option' option" in str(stopped.value)
    assert "COLUMNAR_OPTION in bench/sync_bench.py" in str(stopped.value)
    sync_bench.check_path("row")  # the row path needs nothing


@pytest.mark.slow
def test_both_paths_leave_the_same_registry() -> None:
    """The row and the columnar path, each a tiny run of its own: the same digest."""
    _server(PG_SERVER, "PostgreSQL").dispose()
    digests = {}
    for path in ("row", "columnar"):
        done = subprocess.run(
            [sys.executable, str(BENCH), "--rows", "1200", "--path", path, "--server", PG_SERVER],
            capture_output=True,
            text=True,
            cwd=BENCH.parents[1],
            timeout=600,
        )
        assert done.returncode == 0, done.stderr
        lines = done.stdout.strip().splitlines()
        assert LAST_LINE.fullmatch(lines[-1]), lines[-1]
        found = [line for line in lines if line.startswith("registry digest after the full sync")]
        assert len(found) == 1, lines
        digests[path] = found[0].rsplit(": ", 1)[1]
    assert len(digests["row"]) == 64
    assert digests["row"] == digests["columnar"]
