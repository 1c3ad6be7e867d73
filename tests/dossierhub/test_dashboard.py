"""The dashboard as a person sees it: headless Chromium against `serve` on 127.0.0.1.

Debian's Chromium (/usr/bin/chromium), driven by Playwright; no browser is downloaded. The
page must show the API's numbers, draw its charts with plotly, redraw on a filter change, and
load nothing from outside the server. A screenshot goes to test-artifacts/dashboard.png.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from dossierhub import tokens
from tests.conftest import unavailable
from tests.dossierhub.test_api import registry_on, seed

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@dataclass
class Site:
    url: str
    tokens: dict[str, str]
    log: Path  # what `serve` printed: its banner and the access log

    def api(self, path: str, **params: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens['statistics']}"}
        response = httpx.get(f"{self.url}/api/v1{path}", params=params, headers=headers)
        response.raise_for_status()
        return response.json()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        unavailable("Playwright (pip install playwright)", exc)
    if not CHROMIUM.exists():
        unavailable(
            f"Chromium at {CHROMIUM} (apt-get install chromium)",
            FileNotFoundError(str(CHROMIUM)),
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """`dossierhub serve` (the CLI function) in its own process, on a seeded SQLite registry."""
    folder = tmp_path_factory.mktemp("dashboard")
    with registry_on("sqlite", folder) as engine:
        seed(engine)
        issued = {
            role: tokens.create_token(engine, role=role, name="dashboard test")
            for role in ("statistics", "agency:tax")
        }
        registry_url = engine.url.render_as_string(hide_password=False)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOSSIERHUB_")}
    env["DOSSIERHUB_REGISTRY_URL"] = registry_url
    log = folder / "serve.log"
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from dossierhub.cli.api import serve; serve(host='127.0.0.1', port={port})",
        ],
        env=env,
        stdout=log.open("w", encoding="utf-8"),
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/api/v1/openapi.json").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                server.wait()
                pytest.fail(f"`serve` did not start:\n{log.read_text(encoding='utf-8')}")
            time.sleep(0.1)
        yield Site(url, issued, log)
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.1f}%"


@dataclass
class Visit:
    page: Any
    requests: list[str]
    errors: list[str]


@pytest.fixture
def visit(browser: Any, site: Site) -> Iterator[Visit]:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    seen = Visit(page, [], [])
    page.on("request", lambda request: seen.requests.append(request.url))
    page.on("console", lambda m: seen.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: seen.errors.append(str(error)))
    page.goto(site.url)
    yield seen
    page.close()


def sign_in(page: Any, token: str) -> None:
    page.fill("#token", token)
    page.click("#token-form button[type=submit]")
    page.wait_for_selector("body[data-state=ready]", state="attached", timeout=15_000)


def show(page: Any, *, period: str | None = None, sector: str | None = None) -> None:
    """Change a filter the way a person does, and wait for the redraw."""
    if period is not None:
        page.fill("#period", period)
        page.click("#filters button[type=submit]")
    if sector is not None:
        page.select_option("#sector", label=sector)
    page.wait_for_selector("body[data-state=ready]", state="attached", timeout=15_000)


def headline(page: Any) -> dict[str, tuple[str, str]]:
    ids = [
        "online-rate-unified",
        "online-rate-portal",
        "received-unified",
        "received-portal",
        "on-time-rate",
        "payment-rate",
        "digitisation-rate",
        "digitisation-coverage",
        "refused-count",
        "withdrawn-count",
        "stopped-count",
        "open-count",
        "overdue-count",
    ]
    return {
        i: (page.inner_text(f"#{i}"), page.get_attribute(f"#{i}", "data-value") or "") for i in ids
    }


def expected_headline(site: Site, period: str, sector: str | None = None) -> dict[str, str]:
    params = {"period": period, **({"sector": sector} if sector else {})}
    [unified] = site.api("/indicators", **params)["rows"]
    [portal] = site.api("/indicators", portal_only="true", **params)["rows"]
    still_open = [
        r
        for r in site.api("/open", period=period, by="sector")["rows"]
        if sector is None or r["group"]["sector"] == sector
    ]
    return {
        "online-rate-unified": percent(unified["online_rate"]),
        "online-rate-portal": percent(portal["online_rate"]),
        "received-unified": str(unified["received"]),
        "received-portal": str(portal["received"]),
        "on-time-rate": percent(unified["on_time_rate"]),
        "payment-rate": percent(unified["online_payment_rate"]),
        "digitisation-rate": percent(unified["digitisation_rate"]),
        "digitisation-coverage": percent(unified["digitisation_coverage"]),
        "refused-count": str(unified["refused_intake"]),
        "withdrawn-count": str(unified["withdrawn"]),
        "stopped-count": str(unified["stopped"]),
        "open-count": str(sum(r["open"] for r in still_open)),
        "overdue-count": str(sum(r["overdue"] for r in still_open)),
    }


def bars(page: Any, chart: str) -> int:
    count: int = page.locator(f"#{chart} .barlayer .point").count()
    return count


def test_dashboard_shows_the_api_figures_and_redraws_on_filters(visit: Visit, site: Site) -> None:
    page = visit.page
    sign_in(page, site.tokens["statistics"])
    show(page, period="2026")

    shown = headline(page)
    assert {k: text for k, (text, _) in shown.items()} == expected_headline(site, "2026")
    assert shown["online-rate-unified"] == ("50.0%", "0.5")  # the hand-worked province
    assert shown["online-rate-portal"][0] == "33.3%"
    assert (shown["received-unified"][0], shown["received-portal"][0]) == ("6", "3")
    assert page.inner_text("#received-gap") == "+3 the portal never saw"

    # plotly drew its SVG charts: January and February, unified and portal-only bars.
    for chart in ("chart-received", "chart-rate", "chart-sector"):
        assert page.locator(f"#{chart} svg.main-svg").count() > 0, chart
    assert bars(page, "chart-received") == 4
    assert page.locator("#chart-rate .scatterlayer .trace").count() == 2
    assert bars(page, "chart-sector") == 4  # Thuế and Tư pháp
    rows = page.locator("#sources-table tbody tr")
    assert rows.count() == 2
    assert "failed" in rows.nth(0).inner_text() and "1" in rows.nth(0).inner_text()

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

    show(page, sector="Tư pháp")
    texts = {k: text for k, (text, _) in headline(page).items()}
    assert texts == expected_headline(site, "2026", "Tư pháp")
    assert texts["received-unified"] == "2"
    assert bars(page, "chart-received") == 2  # only February has Tư pháp dossiers
    assert "Tư pháp" in page.inner_text("#headline-scope")

    show(page, period="2026-01")  # the chosen sector stays chosen: it had nothing in January
    assert page.input_value("#sector") == "Tư pháp"
    texts = {k: text for k, (text, _) in headline(page).items()}
    assert texts == expected_headline(site, "2026-01", "Tư pháp")
    assert texts["received-unified"] == "0"
    assert bars(page, "chart-received") == 0

    show(page, sector="All sectors")
    texts = {k: text for k, (text, _) in headline(page).items()}
    assert texts == expected_headline(site, "2026-01")
    assert texts["received-unified"] == "4"
    assert bars(page, "chart-received") == 8  # 4 days with dossiers, unified and portal
    assert "Day" in page.text_content("#table-received")  # a month is drawn day by day

    assert not visit.errors, visit.errors
    outside = [u for u in visit.requests if not u.startswith(site.url + "/")]
    assert not outside, outside
    assert any(u.endswith("/vendor/plotly.min.js") for u in visit.requests)


def test_dashboard_is_labelled_for_assistive_technology(visit: Visit) -> None:
    page = visit.page
    assert page.get_attribute("html", "lang") == "en"
    unlabelled = page.eval_on_selector_all(
        "input, select", "els => els.filter(e => !e.labels || !e.labels.length).map(e => e.id)"
    )
    assert unlabelled == []
    assert page.locator("main h2").count() >= 3
    assert page.get_attribute("#status", "aria-live") == "polite"


def test_agency_token_sees_its_source_health_only(visit: Visit, site: Site) -> None:
    page = visit.page
    sign_in(page, site.tokens["agency:tax"])
    assert page.is_hidden("#statistics") and page.is_hidden("#filters")
    assert "agency:tax" in page.inner_text("#who")
    rows = page.locator("#sources-table tbody tr")
    assert rows.count() == 1 and rows.nth(0).inner_text().startswith("tax")
    assert not visit.errors, visit.errors


def test_refused_token_is_forgotten_with_the_reason(visit: Visit) -> None:
    page = visit.page
    page.fill("#token", "not-a-token")
    page.click("#token-form button[type=submit]")
    page.wait_for_selector("body[data-state=signed-out]", state="attached", timeout=15_000)
    assert "not valid or was revoked" in page.inner_text("#status")
    assert page.evaluate("sessionStorage.getItem('dossierhub.token')") is None


def test_token_typed_before_the_script_loads_is_sent_nowhere(browser: Any, site: Site) -> None:
    # Without JavaScript the page is as it is before dashboard.js has loaded.
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(f"{request.method} {request.url}"))
    try:
        page.goto(site.url)
        token = site.tokens["statistics"]
        assert page.get_attribute("#token-form", "method") == "post"
        assert page.get_attribute("#token", "name") is None  # nothing to submit under a name
        page.fill("#token", token)
        # The browser refuses the submission (CSP form-action 'none') and says so.
        with page.expect_console_message(lambda m: "form-action" in m.text, timeout=10_000):
            page.press("#token", "Enter", no_wait_after=True)
        assert page.url.rstrip("/") == site.url
        assert requests and all(line.startswith("GET ") for line in requests), requests
        assert not any(token in line for line in requests)
    finally:
        context.close()
    policy = httpx.get(site.url).headers["content-security-policy"]
    assert "form-action 'none'" in policy


CREDENTIALS_IN_URL = [
    "/?token={secret}",
    "/api/v1/me?access_token={secret}",
    "/api/v1/indicators?period=2026&api_key={secret}",
    "/api/v1/sources?password={secret}",
    "/static/dashboard.js?Authorization={secret}",
]


def test_credentials_in_a_query_string_are_refused_and_kept_out_of_the_access_log(
    site: Site,
) -> None:
    secret = site.tokens["statistics"]
    for path in CREDENTIALS_IN_URL:
        refused = httpx.get(
            site.url + path.format(secret=secret),
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert refused.status_code == 400, path
        assert "Authorization: Bearer" in refused.json()["detail"]
        assert secret not in refused.text
        assert refused.headers["x-content-type-options"] == "nosniff"
    # The request lines reached the access log, masked.
    logged = site.log.read_text(encoding="utf-8")
    assert "access_token=***" in logged and "api_key=***" in logged
    assert secret not in logged
