"""Peak memory of reading one huge HTTP page, with and without the `max_page_bytes` cap.

    python bench/http_page_bench.py [--page-mib 1024] [--max-page-bytes N]

Serves one page of `--page-mib` MiB (JSON, no Content-Length, so only streaming can stop it)
from a server on 127.0.0.1, and reads it with an HTTP connector in a child process, so the
child's peak RSS is the read's. Run it against two trees (PYTHONPATH) to compare: the code
before the cap reads the whole page; with the cap (default 64 MiB) the read stops there.
A baseline is measured in the same run: the child's peak RSS after importing everything and
reading a one-record page.

The last line is machine-readable:
`http_page_bench page_mib=P max_page_bytes=C outcome=O peak_rss_mb=M baseline_rss_mb=B ratio=R`
"""

from __future__ import annotations

import argparse
import http.server
import json
import subprocess
import sys
import threading
from typing import Any

MIB = 1024 * 1024

CHILD = """
import resource, sys, time
from typing import Any
from connectors.base import RawRecord
from connectors.http import ApiKey, HttpConnector, HttpSettings, Offset
from connectors.testing import context_for
from dossierhub.errors import DossierHubError


class Page(HttpConnector):
    auth = ApiKey()
    pagination = Offset()
    records_endpoint = "/items"
    records_path = "items"
    id_field = "id"
    updated_at_field = "changed"
    updated_since_param = "since"
    count_endpoint = "/count"
    count_from_param = "from"
    count_to_param = "to"

    def to_canonical(self, raw: RawRecord) -> Any:
        raise NotImplementedError


url, cap = sys.argv[1], int(sys.argv[2])
settings: dict[str, Any] = {"base_url": url, "api_key": "k" * 20, "read_timeout": 120}
if cap and "max_page_bytes" in HttpSettings.model_fields:
    settings["max_page_bytes"] = cap
connector = Page(context_for("bench", settings, batch_size=10))
started = time.perf_counter()
try:
    records = sum(len(batch.records) for batch in connector.read(None))
    outcome = f"read_{records}_records"
except DossierHubError as exc:
    outcome = "refused" if "max_page_bytes" in str(exc) else f"failed:{type(exc).__name__}"
except MemoryError:
    outcome = "memory_error"
elapsed = time.perf_counter() - started
print(outcome, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, f"{elapsed:.2f}")
"""


def serve(page_mib: int) -> http.server.ThreadingHTTPServer:
    small = json.dumps({"items": [{"id": "1", "changed": "2026-03-01T08:00:00+07:00"}]}).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.close_connection = True
            self.end_headers()
            try:
                if self.server.small:  # type: ignore[attr-defined]
                    self.wfile.write(small)
                    return
                self.wfile.write(b'{"items": [], "pad": "')
                block = b"x" * MIB
                for _ in range(page_mib):
                    self.wfile.write(block)
                self.wfile.write(b'"}')
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def child(url: str, cap: int) -> tuple[str, float, str]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, url, str(cap)], check=True, capture_output=True, text=True
    ).stdout.split()
    return out[0], float(out[1]), out[2]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--page-mib", type=int, default=1024)
    parser.add_argument("--max-page-bytes", type=int, default=0, help="0: the default")
    args = parser.parse_args()
    server = serve(args.page_mib)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        server.small = True  # type: ignore[attr-defined]
        _, baseline, _ = child(url, args.max_page_bytes)
        server.small = False  # type: ignore[attr-defined]
        outcome, peak, elapsed = child(url, args.max_page_bytes)
    finally:
        server.shutdown()
    print(f"baseline (one-record page): peak RSS {baseline:.0f} MiB")
    print(f"{args.page_mib} MiB page: {outcome} in {elapsed} s, peak RSS {peak:.0f} MiB")
    print(
        f"http_page_bench page_mib={args.page_mib} max_page_bytes={args.max_page_bytes or 'default'} "
        f"outcome={outcome} peak_rss_mb={peak:.0f} baseline_rss_mb={baseline:.0f} "
        f"ratio={peak / baseline:.2f}"
    )


if __name__ == "__main__":
    main()
