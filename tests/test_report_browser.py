"""The report on the bundled CDNOW sample, opened in headless Chromium (Debian's ``chromium``).

Checks: no console errors or page errors, every plot has drawn (an SVG of non-zero size with at
least one visible trace or heatmap image), no request other than ``file://``, and a full-page
screenshot saved to ``test-artifacts/report.png`` for a person to look at (and the seconds the
build took to ``test-artifacts/report-build-seconds.txt``).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from patron.cli.demo import CDNOW_SAMPLE_COLUMNS
from patron.data.datasets import data_path
from patron.data.ingest import ingest
from patron.report import write_report
from tests.browser_support import offline_page

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
"""Where the screenshot is written (ignored by git)."""

BUILD_SECONDS_LIMIT = 90.0
"""Generous bound on building the CDNOW report in this test (the demo's target is 30 s on an
idle machine; the suite runs tests in parallel, so this only catches gross slow-downs)."""

SECTIONS = ("headline", "equity", "status", "cohorts", "clv", "loyalty", "segments")
"""Sections the CDNOW report must contain (contact and referral sections have no data there)."""

DRAWN_JS = """
() => Array.from(document.querySelectorAll('.plotly-graph-div')).map(div => {
  const svg = div.querySelector('.main-svg');
  const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  const marks = Array.from(div.querySelectorAll(
    '.scatterlayer .trace path.js-line, .scatterlayer .trace path.point, .scatterlayer .trace path.js-fill,'
    + ' .barlayer .point path, .waterfalllayer .point path, .heatmaplayer image, .hm image'));
  const visible = marks.filter(el => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; });
  return {id: div.id, plotly: div.classList.contains('js-plotly-plot'), width: box.width, height: box.height,
          marks: visible.length};
})
"""
"""For each figure div: whether Plotly drew it, the size of its SVG, and how many trace marks
(lines, markers, bars, heatmap images) have a non-empty bounding box."""


@pytest.fixture(scope="module")
def cdnow_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """The report built on the CDNOW sample (ingested as ``patron demo`` does), and the seconds
    ``write_report`` took."""
    folder = tmp_path_factory.mktemp("report")
    db = str(folder / "cdnow.duckdb")
    ingest(data_path("CDNOW_sample.txt"), kind="transactions", db=db, columns=CDNOW_SAMPLE_COLUMNS,
           mapping={"occurred_at": "date"}, date_format="%Y%m%d")
    started = time.perf_counter()
    path = write_report(db, folder / "report.html", title="CDNOW sample")
    return path, time.perf_counter() - started


def test_cdnow_report_renders_in_chromium(chromium: Path, cdnow_report: tuple[Path, float]) -> None:
    path, seconds = cdnow_report
    assert seconds < BUILD_SECONDS_LIMIT, f"building the CDNOW report took {seconds:.1f} s"
    page_html = path.read_text(encoding="utf-8")
    for key in SECTIONS:
        assert f'<section id="{key}">' in page_html, f"section {key} missing from the report"
    expected_plots = page_html.count('class="plotly-graph-div"')
    assert expected_plots >= 8

    errors: list[str] = []
    requests: list[str] = []
    with offline_page(chromium, errors, requests) as page:
        page.goto(path.resolve().as_uri(), wait_until="load")
        page.wait_for_function(
            "n => document.querySelectorAll('.js-plotly-plot .main-svg').length >= n", arg=expected_plots, timeout=30_000)
        page.wait_for_timeout(500)  # let Plotly finish its deferred drawing
        plots = page.evaluate(DRAWN_JS)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        (ARTIFACTS / "report-build-seconds.txt").write_text(f"{seconds:.1f}\n")

    assert errors == []
    assert [u for u in requests if not u.startswith("file://")] == []
    assert len(plots) == expected_plots
    for plot in plots:
        assert plot["plotly"], f"{plot['id']} was not drawn by Plotly"
        assert plot["width"] > 0 and plot["height"] > 0, f"{plot['id']} has an empty SVG"
        assert plot["marks"] >= 1, f"{plot['id']} has no visible trace"
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000
