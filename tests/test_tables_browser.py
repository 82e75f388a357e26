"""Tables as tools, in headless Chromium: every table of the report and of the dashboard sorts on
a header click (numbers as numbers), filters with its text box and downloads as CSV (every row,
unformatted, formula cells guarded).

The report part uses a hand-made table whose answer is known: text order of ``9, 10, 100`` is not
their numeric order, one value is missing (sorted last), one text cell starts with ``=``. The
dashboard parts (``test_service_pages_browser.py``) use a served database.

Screenshots go to ``test-artifacts/tables/``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from patron.report.html import Section, render_page
from tests.test_report_browser import cdnow_report  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "tables"
"""Where the screenshots are written (ignored by git)."""

HAND = pd.DataFrame({
    "segment": ["alpha", "beta", "=cmd|' /C calc'!A0", "delta", "epsilon"],
    "customers": [9, 100, 10, 2, 40],
    "mean_clv": [12.5, 3.25, np.nan, 1234.5, 0.125],
    "equity_share": [0.1, 0.45, 0.05, 0.3, 0.1],
})
"""A table whose numeric order differs from its text order (customers 9 < 10 < 40 < 100 but "10" <
"100" < "2" < "40" < "9" as text; formatted mean CLV "1,234.50" sorts before "12.50" as text)."""

ROWS_JS = """
t => Array.from(document.querySelectorAll(`#${t} table.data tbody tr`)).map(tr => ({
  hidden: tr.hidden, cells: Array.from(tr.cells).map(td => td.textContent)}))
"""


def read_csv_text(text: str) -> list[list[str]]:
    """The rows of CSV text (header first), parsed by Python's csv module."""
    return list(csv.reader(io.StringIO(text)))


def check_table_tools(page, section: str, frame: pd.DataFrame, *, numeric: str, text: str, needle: str,
                      download_to: Path, file_name: str | None = None) -> list[list[str]]:
    """In ``section`` of ``page``: clicking ``numeric``'s header sorts the rows by ``frame``'s values
    as numbers (missing last), again descending; typing ``needle`` in the filter hides exactly the
    rows whose text lacks it; the CSV download holds every row (filtered or not). Returns the CSV
    rows (header first)."""
    columns = list(frame.columns)
    table = f"#{section} table.data"
    header = page.locator(f"{table} thead th").nth(columns.index(numeric))
    first = [r["cells"][columns.index(text)] for r in page.evaluate(ROWS_JS, section)]
    header.click()
    shown = [r["cells"][columns.index(text)] for r in page.evaluate(ROWS_JS, section)]
    values = frame.set_index(frame[text].astype(str))[numeric]
    expected = list(values.sort_values(kind="stable", na_position="last").index)
    assert shown == expected, f"ascending by {numeric}"
    assert header.get_attribute("aria-sort") == "ascending"
    header.click()
    shown = [r["cells"][columns.index(text)] for r in page.evaluate(ROWS_JS, section)]
    finite = values.dropna().sort_values(ascending=False, kind="stable")
    assert shown == list(finite.index) + list(values[values.isna()].index), f"descending by {numeric}"
    assert shown != first or len(set(first)) < 2

    page.fill(f"#{section} .table-filter", needle)
    rows = page.evaluate(ROWS_JS, section)
    hidden = {r["cells"][columns.index(text)] for r in rows if r["hidden"]}
    visible = {r["cells"][columns.index(text)] for r in rows if not r["hidden"]}
    assert visible and hidden, f"the filter {needle!r} should hide some rows and keep others"
    assert all(needle.lower() in " ".join(r["cells"]).lower() for r in rows if not r["hidden"])
    assert all(needle.lower() not in "".join(r["cells"]).lower() for r in rows if r["hidden"])
    assert page.inner_text(f"#{section} .table-count") == f"{len(visible)} of {len(rows)} rows"

    with page.expect_download() as info:
        page.click(f"#{section} .table-csv")
    info.value.save_as(download_to)
    if file_name is not None:
        assert info.value.suggested_filename == file_name
    page.fill(f"#{section} .table-filter", "")
    return read_csv_text(download_to.read_text(encoding="utf-8"))


def test_report_table_sorts_filters_and_downloads(chromium: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    path = tmp_path / "tables.html"
    path.write_text(render_page("Tables", [Section("hand", "Hand-made", tables=[("Segments", HAND)])]), encoding="utf-8")
    errors: list[str] = []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=["--no-sandbox", "--headless=new"])
        try:
            context = browser.new_context(viewport={"width": 1100, "height": 800}, accept_downloads=True)
            context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(("file://", "blob:"))
                          else route.abort())
            page = context.new_page()
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(path.resolve().as_uri(), wait_until="load")
            assert page.locator("#hand .table-filter").count() == 1
            got = check_table_tools(page, "hand", HAND, numeric="customers", text="segment", needle="ta",
                                    download_to=tmp_path / "hand.csv", file_name="hand-segments.csv")
            # customers sorted by number: 2 (delta), 9 (alpha), 10 (=cmd), 40 (epsilon), 100 (beta)
            check_table_tools(page, "hand", HAND, numeric="mean_clv", text="segment", needle="alpha",
                              download_to=tmp_path / "hand2.csv")
            page.screenshot(path=str(ARTIFACTS / "report-table.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
    # the CSV: the column names, then every row (in the order shown when downloaded: by customers
    # descending), unformatted, the formula cell guarded, the missing value empty
    assert got[0] == list(HAND.columns)
    order = HAND.sort_values("customers", ascending=False)
    assert [r[0] for r in got[1:]] == [("'" + s if s.startswith("=") else s) for s in order["segment"]]
    assert [int(r[1]) for r in got[1:]] == order["customers"].tolist()
    assert [float(r[2]) if r[2] else None for r in got[1:]] == [None if np.isnan(v) else v for v in order["mean_clv"]]
    assert [float(r[3]) for r in got[1:]] == order["equity_share"].tolist()
    assert (ARTIFACTS / "report-table.png").stat().st_size > 5_000


def test_cdnow_report_every_table_has_tools_and_the_segment_csv_is_the_segment_table(
        chromium: Path, tmp_path: Path, cdnow_report: tuple[Path, float]) -> None:  # noqa: F811
    """The CDNOW report: each table has its filter, count and CSV button; the top segments
    table's CSV holds the rows of :func:`patron.relationship.segments.segment_table` on the same
    database (names, sizes, total CLV: unformatted)."""
    from playwright.sync_api import sync_playwright

    from patron.relationship.segments import segment_table

    path, _ = cdnow_report
    expected = segment_table(str(path.parent / "cdnow.duckdb")).set_index("segment")
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=["--no-sandbox", "--headless=new"])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
            context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(("file://", "blob:"))
                          else route.abort())
            page = context.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(path.resolve().as_uri(), wait_until="load")
            counts = page.evaluate("() => [document.querySelectorAll('table.data').length, "
                                   "document.querySelectorAll('.table-tools .table-filter').length, "
                                   "document.querySelectorAll('.table-tools .table-csv').length]")
            with page.expect_download() as info:
                page.click("#segments .table-csv")
            info.value.save_as(tmp_path / "segments.csv")
        finally:
            browser.close()
    assert errors == []
    assert counts[0] >= 2 and counts == [counts[0]] * 3, counts  # status backtest, top segments
    got = pd.read_csv(tmp_path / "segments.csv").set_index("segment")
    assert set(got.index) <= set(expected.index) and len(got) >= 3
    total = "total CLV"  # the report names the amount's unit in the header; the CDNOW sample names no currency
    for name, row in got.iterrows():
        assert row["customers"] == expected.loc[name, "customers"], name
        assert abs(row[total] - expected.loc[name, "total_clv"]) <= 1e-9 * max(1.0, abs(row[total])), name


TRICKY = ["=1+1", "+33612345678", "-12", "-1+cmd|' /C calc'!A0", "@SUM(A1)", "\tx", "plain, with comma", 'say "hi"',
          "+", "-1.5e3", "é ünïcode"]
"""Text cells for the CSV guard: formulas, numbers written as text (left alone), quotes, commas."""


def test_csv_guard_and_quoting_match_patrons_csv_files(chromium: Path, tmp_path: Path) -> None:
    """The page's CSV cells equal :func:`patron.data.outputs.guard_text` of each value (the guard
    of patron's own CSV files, an independent implementation in Python), read back by Python's
    csv module."""
    from playwright.sync_api import sync_playwright

    from patron.data.outputs import guard_text

    frame = pd.DataFrame({"value": TRICKY, "n": range(len(TRICKY))})
    path = tmp_path / "tricky.html"
    path.write_text(render_page("Tricky", [Section("tricky", "Tricky", tables=[("Cells", frame)])]), encoding="utf-8")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=["--no-sandbox", "--headless=new"])
        try:
            page = browser.new_page()
            page.goto(path.resolve().as_uri(), wait_until="load")
            text = page.evaluate("() => window.patronTables.toCsv(document.querySelector('#tricky table.data'))")
        finally:
            browser.close()
    rows = read_csv_text(text)
    assert rows[0] == ["value", "n"]
    assert [r[0] for r in rows[1:]] == [guard_text(v) for v in TRICKY]
    assert [int(r[1]) for r in rows[1:]] == list(range(len(TRICKY)))
