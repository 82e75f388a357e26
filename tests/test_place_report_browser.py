"""The report's "Place" section in headless Chromium with every network request refused: on
hand-made data (customers in Lyon, Paris and Springfield, Missouri, and one without a place; stores
in Lyon and Paris) the offline hexagon map draws exactly the three customers' hexagons and the two
stores, the region table counts France 2, United States 1 and the unplaced 1, and the catchment
table finds one customer within 5 km of each store (1.6 km and 2.4 km away); the "Customer
attributes" section breaks customers down by the file's city and country columns."""

from __future__ import annotations

from pathlib import Path

import pytest

from patron.data.ingest import ingest
from patron.report import write_report
from tests.test_report_browser import DRAWN_JS

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "place"
"""Where the screenshot of the section is written (ignored by git)."""

MAP_JS = """
() => {
  const sec = document.querySelector('section#place');
  const div = sec.querySelector('.plotly-graph-div');
  const fills = div.data.filter(t => t.fill === 'toself');
  const hexagons = fills.reduce((n, t) => n + Array.from(t.x).filter(v => v === null).length, 0);
  const stores = div.data.filter(t => t.name === 'stores').flatMap(t => Array.from(t.text));
  const tables = Array.from(sec.querySelectorAll('table.data')).map(t => ({
    head: Array.from(t.querySelectorAll('th')).map(th => th.textContent.trim()),
    rows: Array.from(t.querySelectorAll('tbody tr')).map(tr => Array.from(tr.querySelectorAll('td')).map(td => td.textContent.trim()))}));
  return {title: div.layout.title.text, hexagons, stores, tables, tiles: !!div.layout.mapbox || !!div.layout.map};
}
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("place")
    db = str(folder / "p.duckdb")
    (folder / "tx.csv").write_text("customer_id,occurred_at,amount\na,2024-01-01,10\na,2024-02-01,20\nb,2024-01-05,50\n"
                                   "b,2024-03-05,40\nc,2024-01-07,5\nc,2024-03-07,15\nd,2024-02-07,25\n")
    (folder / "customers.csv").write_text("customer_id,city,country\na,Lyon,FR\nb,Paris,FR\nc,Springfield,US\nd,,\n")
    (folder / "stores.csv").write_text("store_id,name,lat,lon,time_zone\nstore-12,Part-Dieu,45.7606,4.8593,Europe/Paris\n"
                                       "store-1,Opera,48.8719,2.3316,Europe/Paris\n")
    for name, kind in (("tx.csv", "transactions"), ("customers.csv", "customers"), ("stores.csv", "stores")):
        ingest(folder / name, kind=kind, db=db)
    return write_report(db, folder / "report.html", title="Place")


def test_place_section_draws_an_offline_hexagon_map(chromium: Path, report: Path) -> None:
    from playwright.sync_api import sync_playwright

    refused: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=["--no-sandbox", "--headless=new"])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})

            def route(r):
                if r.request.url.startswith("file://"):
                    return r.continue_()
                refused.append(r.request.url)
                return r.abort()

            context.route("**/*", route)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(report.resolve().as_uri(), wait_until="load")
            page.wait_for_function("() => document.querySelector('section#place .js-plotly-plot .main-svg')", timeout=60_000)
            page.wait_for_timeout(300)
            got = page.evaluate(MAP_JS)
            attributes = page.evaluate("""() => Array.from(document.querySelectorAll('section#attributes h3')).map(h => {
                let n = h.nextElementSibling;
                while (n && !(n.matches('table.data') || n.querySelector('table.data'))) n = n.nextElementSibling;
                const t = n.matches('table.data') ? n : n.querySelector('table.data');
                return {title: h.textContent.trim(), rows: Array.from(t.querySelectorAll('tbody tr')).map(tr =>
                  Array.from(tr.querySelectorAll('td')).slice(0, 2).map(td => td.textContent.trim()))};
            })""")
            drawn = {d["id"]: d for d in page.evaluate(DRAWN_JS)}
            map_id = page.evaluate("() => document.querySelector('section#place .plotly-graph-div').id")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.locator("section#place").screenshot(path=str(ARTIFACTS / "section-place.png"))
        finally:
            browser.close()
    assert errors == [] and refused == []
    assert got["title"].startswith("Where customer equity is") and not got["tiles"]
    assert got["hexagons"] == 3
    assert drawn[map_id]["marks"] >= 3
    assert sorted(got["stores"]) == ["store-1", "store-12"]
    regions = next(t for t in got["tables"] if t["head"][0] == "region")
    counts = {r[0]: r[1] for r in regions["rows"]}
    assert counts == {"France": "2", "United States": "1", "(none)": "1"}, counts
    catch = next(t for t in got["tables"] if t["head"][0] == "store")
    within = {r[0]: r[2] for r in catch["rows"]}
    assert within == {"store-12": "1", "store-1": "1"}
    # the customers file's columns, typed and broken down: country FR 2, US 1, none 1
    by = {a["title"]: dict(map(tuple, a["rows"])) for a in attributes}
    assert by["By country"] == {"FR": "2", "US": "1", "(none)": "1"}
    assert by["By city"] == {"Lyon": "1", "Paris": "1", "Springfield": "1", "(none)": "1"}
