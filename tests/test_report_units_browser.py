"""The report's units, words and orders as a reader sees them, in headless Chromium (issue 24):
on hand-made data whose answers are written out here, the page shows the currency symbol of
``[value] currency`` (EUR: €) on the headline and the money axes, the value tiers in tier order,
the campaign lift in percentage points (16.67 under "response lift (pp)": 1/2 - 1/3 of the hand-made campaign), booleans
as words, and the equity waterfall drawn. Screenshots of the whole report and of each section go
to ``test-artifacts/report-units/``; ``patron evaluate``'s Plotly page is opened and screenshot too.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from patron.data.ingest import ingest
from patron.data.store import connect
from patron.report import write_report
from tests.test_equity_movement import END, hand_made_orders
from tests.test_report_browser import DRAWN_JS

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "report-units"
"""Where the screenshots are written (ignored by git)."""

CONFIG = {"value": {"currency": "EUR"}}
"""The rules of the report: amounts stated in euros (a label; nothing is converted)."""

SEND = "2024-10-01 10:00"
"""When the hand-made campaign was sent."""

CAMPAIGN_CONTACTS = [  # t1-t4 treated, h1-h3 held out
    ("t1", "sent", False), ("t2", "sent", False), ("t3", "sent", False), ("t4", "sent", False),
    ("h1", "sent", True), ("h2", "sent", True), ("h3", "sent", True),
]
CAMPAIGN_ORDERS = [  # each person bought once before the send (to be a customer), then:
    ("t1", "2024-10-05", 100.0), ("t3", "2024-10-10", 20.0),   # treated: 2 of 4 bought in 30 days -> 50%
    ("h1", "2024-10-20", 40.0),                                 # control: 1 of 3 bought -> 33.3%
]
"""Response rate 1/2 treated vs 1/3 control: a lift of 1/6 = +16.67 percentage points."""

EXPECTED_LIFT = "16.67"
"""The lift cell under the header "response lift (pp)": 1/2 - 1/3 = 1/6 = 16.67 percentage points."""
TIER_ORDER = ["platinum", "gold", "silver", "bronze"]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report-units")
    orders = hand_made_orders()
    people = [c for c, _, _ in CAMPAIGN_CONTACTS]
    first = pd.DataFrame({"customer_id": people, "order_id": [f"first-{p}" for p in people],
                          "occurred_at": "2024-03-15", "amount": 30.0})
    later = pd.DataFrame([(c, f"after-{c}", d, a) for c, d, a in CAMPAIGN_ORDERS],
                         columns=["customer_id", "order_id", "occurred_at", "amount"])
    csv = folder / "orders.csv"
    pd.concat([orders, first, later], ignore_index=True).to_csv(csv, index=False)
    db = str(folder / "shop.duckdb")
    ingest(csv, kind="transactions", db=db)
    contacts = pd.DataFrame([(c, pd.Timestamp(SEND), "autumn", kind, hold, "email", f"k{i}")
                             for i, (c, kind, hold) in enumerate(CAMPAIGN_CONTACTS)],
                            columns=["customer_id", "occurred_at", "campaign_id", "kind", "in_holdout", "channel", "contact_id"])
    with connect(db) as con:
        con.register("c_in", contacts)
        con.execute("INSERT INTO contacts BY NAME SELECT * FROM c_in")
    return write_report(db, folder / "report.html", config=CONFIG, as_of=END, title="Units and orders")


FIGURE_DATA_JS = """
() => Array.from(document.querySelectorAll('.plotly-graph-div')).map(div => ({
  id: div.id, title: (div.layout && div.layout.title && div.layout.title.text) || '',
  types: (div.data || []).map(t => t.type || 'scatter'), x: div.data && div.data[0] ? Array.from(div.data[0].x || []) : [],
  ticks: Array.from(div.querySelectorAll('.ytick text, .xtick text')).map(t => t.textContent),
}))
"""
"""For each drawn figure: its title, trace types, the first trace's x values, and its tick labels."""


def _open(chromium: Path, url: str):
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    browser = pw.chromium.launch(executable_path=str(chromium), args=["--no-sandbox", "--headless=new"])
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file://") else route.abort())
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url, wait_until="load")
    n = page.evaluate("() => document.querySelectorAll('.plotly-graph-div').length")
    page.wait_for_function("n => document.querySelectorAll('.js-plotly-plot .main-svg').length >= n", arg=n, timeout=60_000)
    page.wait_for_timeout(500)
    return pw, browser, page, errors


def test_report_states_units_orders_and_words(chromium: Path, report: Path) -> None:
    pw, browser, page, errors = _open(chromium, report.resolve().as_uri())
    try:
        figures = page.evaluate(FIGURE_DATA_JS)
        drawn = page.evaluate(DRAWN_JS)
        headline = page.inner_text("#headline")
        hover_title = page.evaluate("""() => Array.from(document.querySelectorAll('#headline .metric'))
            .find(m => m.querySelector('.label').textContent === 'customer equity').getAttribute('title')""")
        lift_rows = page.evaluate("""() => Array.from(document.querySelectorAll('#contact_effect table.data')).map(t => ({
            head: Array.from(t.querySelectorAll('th')).map(th => th.textContent),
            rows: Array.from(t.querySelectorAll('tbody tr')).map(tr => Array.from(tr.querySelectorAll('td')).map(td => td.textContent))}))""")
        cells = page.evaluate("() => Array.from(document.querySelectorAll('table.data td')).map(td => td.textContent)")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        for key in page.evaluate("() => Array.from(document.querySelectorAll('main > section')).map(s => s.id)"):
            page.locator(f"section#{key}").screenshot(path=str(ARTIFACTS / f"section-{key}.png"))
    finally:
        browser.close()
        pw.stop()
    assert errors == []
    assert all(p["marks"] >= 1 for p in drawn), [p["id"] for p in drawn if p["marks"] < 1]
    # currency: the headline and every money axis say euros
    assert re.search(r"customer equity\s*€[\d,]+", headline), headline
    assert hover_title and hover_title.startswith("Sum of every customer's lifetime value")
    assert "Sum of every customer's lifetime value" in headline  # the definition is visible, not only on hover
    equity_fig = next(f for f in figures if f["title"].startswith("Customer equity over time"))
    assert any(t.startswith("€") for t in equity_fig["ticks"]), equity_fig["ticks"]
    # tier order, not equity order
    tiers = next(f for f in figures if f["title"] == "Customer equity by value tier")
    assert tiers["x"] == [t for t in TIER_ORDER if t in tiers["x"]] and len(tiers["x"]) == 4
    # the waterfall of the latest month
    waterfall = next(f for f in figures if "waterfall" in f["types"])
    assert waterfall["title"].startswith("What moved customer equity") and "refitted" in waterfall["title"]
    assert any(p["id"] == next(f["id"] for f in figures if "waterfall" in f["types"]) and p["marks"] >= 5 for p in drawn)
    # lift in percentage points, booleans as words
    lift = next(t for t in lift_rows if "response lift (pp)" in t["head"])
    row = dict(zip(lift["head"], lift["rows"][0], strict=True))
    assert row["campaign"] == "autumn" and row["response lift (pp)"] == EXPECTED_LIFT
    assert row["revenue proven"] in ("yes", "no")
    assert "True" not in cells and "False" not in cells
    over = next(t for t in lift_rows if "over-contacted" in t["head"])
    segments = [r[0] for r in over["rows"]]
    assert segments == [s for s in ["all", *TIER_ORDER] if s in segments] and len(segments) >= 3  # not alphabetical
    flags = [r[over["head"].index("over-contacted")] for r in over["rows"]]
    assert set(flags) <= {"yes", "no"}


def test_evaluate_page_is_plotly_and_opens_offline(chromium: Path, report: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    db = report.parent / "shop.duckdb"
    out = tmp_path / "evaluation.html"
    proc = subprocess.run([sys.executable, "-m", "patron", "evaluate", "--db", str(db), "--end", "2024-08-31",
                           "--holdout-end", END, "--model", "bgnbd", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    pw, browser, page, errors = _open(chromium, out.resolve().as_uri())
    try:
        drawn = page.evaluate(DRAWN_JS)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "evaluation.png"), full_page=True)
    finally:
        browser.close()
        pw.stop()
    assert errors == [] and len(drawn) == 4 and all(p["marks"] >= 1 for p in drawn)
