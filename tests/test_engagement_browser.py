"""The report's "Engagement over time" section on the CDNOW sample with the bundled simulated
interactions, opened in headless Chromium: every figure drawn, no console error, no request
other than ``file://``, and only aggregates in the page (no customer id of the interactions)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from patron.cli.demo import CDNOW_SAMPLE_COLUMNS
from patron.data.datasets import data_path
from patron.data.ingest import ingest
from patron.report import write_report
from tests.browser_support import offline_page

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"

DRAWN_JS = """
() => Array.from(document.querySelectorAll('#engagement .plotly-graph-div')).map(div => {
  const svg = div.querySelector('.main-svg');
  const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  const marks = Array.from(div.querySelectorAll('.scatterlayer .trace path.js-line, .barlayer .point path'));
  const visible = marks.filter(el => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; });
  return {id: div.id, plotly: div.classList.contains('js-plotly-plot'), width: box.width, height: box.height, marks: visible.length};
})
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("engagement_report")
    db = str(folder / "cdnow.duckdb")
    ingest(data_path("CDNOW_sample.txt"), kind="transactions", db=db, columns=CDNOW_SAMPLE_COLUMNS,
           mapping={"occurred_at": "date"}, date_format="%Y%m%d")
    ingest(data_path("cdnow_interactions.parquet"), kind="interactions", db=db)
    return write_report(db, folder / "report.html", title="CDNOW engagement", sections=["engagement"])


def test_engagement_section_renders_in_chromium(chromium: Path, report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    assert '<section id="engagement">' in text
    section = text[text.index('<section id="engagement">'):]
    assert "Customers active per week, by channel" in section and "Engagement score per week, by status" in section
    assert "Does engagement predict purchases?" in section and "by engagement band" in section
    # aggregates only: no customer id of the interactions file appears as a quoted value
    ids = set(pd.read_parquet(data_path("cdnow_interactions.parquet"), columns=["customer_id"])["customer_id"])
    quoted = set(re.findall(r'"(\d{4})"', section))
    assert not (quoted & ids), sorted(quoted & ids)[:5]
    errors: list[str] = []
    requests: list[str] = []
    with offline_page(chromium, errors, requests) as page:
        page.goto(report.resolve().as_uri(), wait_until="load")
        page.wait_for_function("() => document.querySelectorAll('#engagement .js-plotly-plot .main-svg').length >= 3", timeout=30_000)
        page.wait_for_timeout(500)
        plots = page.evaluate(DRAWN_JS)
        ARTIFACTS.mkdir(exist_ok=True)
        page.locator("#engagement").screenshot(path=str(ARTIFACTS / "engagement.png"))
    assert errors == []
    assert [u for u in requests if not u.startswith("file://")] == []
    assert len(plots) == 3
    for plot in plots:
        assert plot["plotly"] and plot["width"] > 0 and plot["height"] > 0, plot
        assert plot["marks"] >= 1, plot
