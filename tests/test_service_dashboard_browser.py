"""The dashboard on the CDNOW sample, served by ``patron serve`` and opened in headless Chromium
(Debian's ``/usr/bin/chromium`` driven by Playwright; ``make browser`` installs it).

Every page is opened with the read key as HTTP credentials. Checks: no console errors or page
errors; no request to anything but the service's own origin (others are blocked and recorded);
every plot drew (an SVG of non-zero size with at least one visible trace or heatmap image); the
lookup page, given a customer id typed into its form, shows that customer's status and CLV as the
profile API returns them. One full-page screenshot per page goes to ``test-artifacts/dashboard/``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from patron.cli.demo import CDNOW_SAMPLE_COLUMNS
from patron.data.datasets import data_path
from patron.data.ingest import ingest
from tests.service_support import running_service
from tests.test_report_browser import DRAWN_JS

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "dashboard"
"""Where the screenshots are written (ignored by git)."""

PLOT_TIMEOUT_MS = 60_000
"""Longest wait for a page's plots to draw (the first overview view builds it: seconds)."""

CONSENTS = [
    {"customer_id": "0001", "purpose": "marketing", "channel": "email", "status": "granted", "occurred_at": "1998-01-05"},
    {"customer_id": "0002", "purpose": "marketing", "channel": "email", "status": "denied", "occurred_at": "1998-01-06"},
]
"""A few consent records, so the consent page shows a table."""

UNKNOWN = "no-such-customer"
UNKNOWN_LOOKUP = f"/v1/customers/{UNKNOWN}"
"""An id nobody has: its lookup answers 404, which Chromium logs as a failed resource (expected)."""


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory):
    """``patron serve`` on the CDNOW sample (ingested as ``patron demo`` does), scores refreshed
    through ``POST /v1/refresh``."""
    from patron.contact.consent import record_consent

    db = tmp_path_factory.mktemp("dashboard-browser") / "cdnow.duckdb"
    ingest(data_path("CDNOW_sample.txt"), kind="transactions", db=str(db), columns=CDNOW_SAMPLE_COLUMNS,
           mapping={"occurred_at": "date"}, date_format="%Y%m%d")
    ingest(data_path("cdnow_interactions.parquet"), kind="interactions", db=str(db))  # the demo's simulated touchpoints
    record_consent(str(db), CONSENTS)
    with running_service(db) as svc:
        with svc.client("admin") as admin:
            done = admin.post("/v1/refresh", params={"wait": "true"}, timeout=300)
        assert done.status_code in (200, 202) and done.json()["state"] == "succeeded", done.text
        yield svc


def _plots_drawn(page, name: str) -> int:
    """Wait for every figure div of ``page`` to be drawn; assert each has a visible trace."""
    expected = page.evaluate("() => document.querySelectorAll('.plotly-graph-div').length")
    page.wait_for_function("n => document.querySelectorAll('.js-plotly-plot .main-svg').length >= n",
                           arg=expected, timeout=PLOT_TIMEOUT_MS)
    page.wait_for_timeout(500)  # let Plotly finish its deferred drawing
    for plot in page.evaluate(DRAWN_JS):
        assert plot["plotly"], f"{name}: {plot['id']} was not drawn by Plotly"
        assert plot["width"] > 0 and plot["height"] > 0, f"{name}: {plot['id']} has an empty SVG"
        assert plot["marks"] >= 1, f"{name}: {plot['id']} has no visible trace"
    return expected


def test_dashboard_pages_render_in_chromium(chromium: Path, service) -> None:
    from playwright.sync_api import sync_playwright

    origin = service.url
    errors: list[str] = []
    outside: list[str] = []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=["--no-sandbox", "--headless=new"])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900},
                                          http_credentials={"username": service.keys["read"], "password": ""})

            def only_the_service(route) -> None:
                url = route.request.url
                if url == origin or url.startswith(origin + "/"):
                    route.continue_()
                else:
                    outside.append(url)
                    route.abort()

            context.route("**/*", only_the_service)
            page = context.new_page()
            def console(msg) -> None:
                where = (msg.location or {}).get("url", "")
                if msg.type == "error" and not where.endswith(UNKNOWN_LOOKUP):  # that 404 is the point
                    errors.append(f"console {msg.type}: {msg.text} ({where})")

            page.on("console", console)
            page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))

            # overview: every report part the CDNOW data allow, each plot drawn
            response = page.goto(origin + "/", wait_until="load", timeout=120_000)
            assert response is not None and response.status == 200
            for key in ("headline", "equity", "status", "clv", "segments", "contact_effect", "engagement"):
                assert page.locator(f"section#{key}").count() == 1, key
            assert page.locator("section#engagement .plotly-graph-div").count() == 3  # by channel, by status, lift
            assert _plots_drawn(page, "overview") >= 8  # equity over time, by segment, status, migration, CLV, engagement
            page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)

            # consent state
            response = page.goto(origin + "/consent", wait_until="load")
            assert response is not None and response.status == 200
            assert page.locator("#consent table.data tbody tr").count() == 1  # marketing by email
            page.screenshot(path=str(ARTIFACTS / "consent.png"), full_page=True)

            # customer lookup: an unknown id says so; a known one draws the single view
            response = page.goto(origin + "/customers", wait_until="load")
            assert response is not None and response.status == 200
            customer = page.locator("#examples a").first.inner_text().strip()
            page.fill("#customer-id", UNKNOWN)
            page.click("form#lookup button")
            page.wait_for_function("() => document.getElementById('message').textContent.startsWith('No customer')")
            page.fill("#customer-id", customer)
            page.click("form#lookup button")
            page.wait_for_selector("#summary-clv", timeout=30_000)
            with service.client("read") as client:
                scores = client.get(f"/v1/customers/{customer}").json()["scores"]
            assert page.inner_text("#summary-clv") == f"{scores['clv']:,.2f}"
            assert page.inner_text("#summary-clv-detail") == (
                f"95% interval {scores['clv_lower']:,.2f} to {scores['clv_upper']:,.2f}")
            assert page.inner_text("#summary-status") == scores["status"].replace("_", " ")
            assert page.inner_text("#summary-status-detail") == scores["status_reason"]
            assert page.inner_text("#summary-alive") == f"{100 * scores['probability_alive']:.1f}%"
            assert page.locator("#part-recent_orders table.data tbody tr").count() >= 1
            assert page.url.endswith(f"/customers?id={customer}")
            page.screenshot(path=str(ARTIFACTS / "customers.png"), full_page=True)
        finally:
            browser.close()

    assert errors == []
    assert outside == []
    for name in ("overview", "consent", "customers"):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 10_000, name
