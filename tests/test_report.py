"""The HTML report: figure functions on hand-made frames (the drawn data equals the input), the
page assembler (one plotly.js bundle, nothing loaded from the network), and the section registry.

Expected values are written out by hand next to each input; none comes from the code under test.
"""

from __future__ import annotations

import re
from datetime import date

import numpy as np
import pandas as pd
import pytest
from plotly.offline import get_plotlyjs

from patron.errors import InputError
from patron.report import (
    Metric,
    Section,
    build_report,
    register_section,
    registered_sections,
    render_page,
    resolve_as_of,
    unregister_section,
    write_report,
)
from patron.report import figures as F
from patron.report.registry import optional_module

EXACT = 1e-12
"""Tolerance for values that are copied or divided once (shares of small integer counts)."""


# --- figures ----------------------------------------------------------------------------------

def test_equity_over_time_draws_equity_and_band_in_date_order():
    frame = pd.DataFrame({
        "as_of": pd.to_datetime(["2024-03-31", "2024-01-31", "2024-02-29"]),
        "customers": [30, 10, 20],
        "equity": [300.0, 100.0, 200.0],
        "equity_lower": [250.0, 80.0, 170.0],
        "equity_upper": [350.0, 120.0, 230.0],
    })
    fig = F.equity_over_time_figure(frame)
    upper, lower, line = fig.data
    assert list(pd.to_datetime(line.x)) == list(pd.to_datetime(["2024-01-31", "2024-02-29", "2024-03-31"]))
    np.testing.assert_array_equal(line.y, [100.0, 200.0, 300.0])
    np.testing.assert_array_equal(lower.y, [80.0, 170.0, 250.0])
    np.testing.assert_array_equal(upper.y, [120.0, 230.0, 350.0])
    assert lower.fill == "tonexty"


def test_equity_over_time_without_interval_is_one_line():
    frame = pd.DataFrame({"as_of": pd.to_datetime(["2024-01-31"]), "equity": [5.0]})
    fig = F.equity_over_time_figure(frame)
    assert len(fig.data) == 1
    np.testing.assert_array_equal(fig.data[0].y, [5.0])


def test_equity_by_segment_bars_are_largest_first_and_capped():
    table = pd.DataFrame({"segment": ["a", "b", "c", "d"], "total_clv": [10.0, 40.0, 30.0, 20.0]})
    fig = F.equity_by_segment_figure(table, top=3)
    assert list(fig.data[0].x) == ["b", "c", "d"]
    np.testing.assert_array_equal(fig.data[0].y, [40.0, 30.0, 20.0])


def test_status_distribution_follows_status_order():
    counts = pd.DataFrame({"status": ["lost", "active", "new", "prospect"], "customers": [4, 2, 1, 7]})
    fig = F.status_distribution_figure(counts)
    assert list(fig.data[0].x) == ["prospect", "new", "active", "lost"]
    np.testing.assert_array_equal(fig.data[0].y, [7, 1, 2, 4])
    assert list(fig.data[0].marker.color) == [F.STATUS_COLORS[s] for s in ("prospect", "new", "active", "lost")]


def test_migration_heatmap_z_is_the_matrix():
    statuses = ["new", "active", "at_risk"]
    matrix = pd.DataFrame([[0, 5, 1], [0, 8, 2], [0, 3, 4]], index=statuses, columns=statuses)
    fig = F.migration_heatmap(matrix, from_label="2024-03-31", to_label="2024-06-30")
    hm = fig.data[0]
    np.testing.assert_array_equal(hm.z, [[0, 5, 1], [0, 8, 2], [0, 3, 4]])
    assert list(hm.y) == statuses and list(hm.x) == statuses
    # row shares by hand: 5/6, 1/6; 8/10, 2/10; 3/7, 4/7
    np.testing.assert_allclose(hm.customdata, [[0, 5 / 6, 1 / 6], [0, 0.8, 0.2], [0, 3 / 7, 4 / 7]], atol=EXACT)
    assert "2024-03-31" in fig.layout.title.text and "2024-06-30" in fig.layout.title.text


def test_migration_heatmap_empty_row_has_zero_shares():
    matrix = pd.DataFrame([[0, 0], [1, 1]], index=["new", "lost"], columns=["new", "lost"])
    np.testing.assert_array_equal(F.migration_heatmap(matrix).data[0].customdata, [[0, 0], [0.5, 0.5]])


def test_cohort_retention_heatmap_pivots_retention_with_blanks():
    cohorts = pd.DataFrame({
        "cohort": pd.to_datetime(["2024-02-01", "2024-01-01", "2024-01-01", "2024-02-01", "2024-01-01"]),
        "period": [0, 0, 1, 1, 2],
        "customers": [4, 10, 10, 4, 10],
        "retention": [1.0, 1.0, 0.3, 0.25, 0.2],
    })
    hm = F.cohort_retention_heatmap(cohorts).data[0]
    assert list(hm.y) == ["2024-01", "2024-02"]
    assert list(hm.x) == ["0", "1", "2"]
    z = np.asarray(hm.z, dtype=float)
    np.testing.assert_array_equal(z[0], [1.0, 0.3, 0.2])
    np.testing.assert_array_equal(z[1, :2], [1.0, 0.25])
    assert np.isnan(z[1, 2])
    assert list(hm.text[1]) == ["100%", "25%", ""]


def test_cohort_revenue_has_one_line_per_cohort():
    cohorts = pd.DataFrame({"cohort": ["2024-01", "2024-01", "2024-02"], "period": [1, 0, 0],
                            "cumulative_revenue_per_customer": [15.0, 10.0, 7.0]})
    fig = F.cohort_revenue_figure(cohorts)
    assert [t.name for t in fig.data] == ["2024-01", "2024-02"]
    np.testing.assert_array_equal(fig.data[0].y, [10.0, 15.0])
    np.testing.assert_array_equal(fig.data[0].x, [0, 1])


def test_clv_histogram_linear_counts():
    # bins=2 over [0, 10]: edges 0, 5, 10 -> four values in [0, 5), one in [5, 10]
    fig = F.clv_histogram(np.array([0.0, 1.0, 1.0, 2.0, 10.0]), log=False, bins=2)
    bar = fig.data[0]
    np.testing.assert_array_equal(bar.y, [4, 1])
    np.testing.assert_array_equal(bar.x, [2.5, 7.5])
    np.testing.assert_array_equal(bar.width, [5.0, 5.0])


def test_clv_histogram_log_counts_and_leaves_out_non_positive():
    # log10 of 1, 10, 100, 1000 = 0, 1, 2, 3; bins=3 -> edges 0, 1, 2, 3 -> counts 1, 1, 2
    fig = F.clv_histogram(np.array([1.0, 10.0, 100.0, 1000.0, 0.0, -5.0]), log=True, bins=3, floor_quantile=0.0)
    bar = fig.data[0]
    np.testing.assert_array_equal(bar.y, [1, 1, 2])
    np.testing.assert_allclose(bar.x, [0.5, 1.5, 2.5], atol=EXACT)
    assert "2 customers with CLV ≤ 0" in fig.layout.title.text
    assert list(fig.layout.xaxis.ticktext) == ["1", "2", "5", "10", "20", "50", "100", "200", "500", "1,000"]
    np.testing.assert_allclose(fig.layout.xaxis.tickvals[:3], [0.0, np.log10(2), np.log10(5)], atol=EXACT)


def test_clv_histogram_log_floor_collects_tiny_values_in_first_bar():
    # 98 values of 10 and 100 plus two near-zero ones (1e-9): the 1% floor lies above 1e-9
    values = np.concatenate([np.full(49, 10.0), np.full(49, 100.0), [1e-9, 1e-9]])
    fig = F.clv_histogram(values, log=True, bins=2, floor_quantile=0.05)
    bar = fig.data[0]
    # floor = 5% quantile of log10 values = 1.0 (the two 1e-9 are the lowest 2%); bins [1, 1.5), [1.5, 2]
    np.testing.assert_array_equal(bar.y, [51, 49])
    assert "2 below" in fig.layout.title.text


def test_clv_histogram_chooses_log_axis_for_skewed_values_only():
    rng = np.random.default_rng(0)
    skewed = rng.lognormal(3.0, 1.5, 2000)  # skewness of a lognormal with sigma 1.5 is about 33
    symmetric = rng.normal(100.0, 10.0, 2000)  # skewness 0
    assert "log scale" in F.clv_histogram(skewed).layout.title.text
    assert "log scale" not in F.clv_histogram(symmetric).layout.title.text
    assert int(np.sum(F.clv_histogram(skewed).data[0].y)) == 2000


def test_loyalty_trends_shares_are_within_each_measure():
    mix = pd.DataFrame({
        "measure": ["came back", "came back", "inter-purchase times", "inter-purchase times", "inter-purchase times"],
        "category": ["returned", "one purchase", "shortening", "steady", "lengthening"],
        "customers": [30, 70, 5, 10, 5],
    })
    fig = F.loyalty_trends_figure(mix)
    drawn = [(t.y[0], t.name, t.x[0]) for t in fig.data]
    # shares by hand: 30/100, 70/100; 5/20, 10/20, 5/20
    expected = [("came back", "returned", 0.3), ("came back", "one purchase", 0.7),
                ("inter-purchase times", "shortening", 0.25), ("inter-purchase times", "steady", 0.5),
                ("inter-purchase times", "lengthening", 0.25)]
    assert [(m, c) for m, c, _ in drawn] == [(m, c) for m, c, _ in expected]
    np.testing.assert_allclose([x for *_, x in drawn], [x for *_, x in expected], atol=EXACT)
    assert fig.layout.barmode == "stack"
    assert fig.data[2].marker.color == fig.data[0].marker.color == F.CATEGORY_COLORS["returned"]
    assert fig.data[0].text[0] == "returned 30%"


def test_loyalty_trends_leaves_out_empty_categories():
    mix = pd.DataFrame({"measure": ["m", "m"], "category": ["a", "b"], "customers": [0, 4]})
    fig = F.loyalty_trends_figure(mix)
    assert [(t.name, t.x[0]) for t in fig.data] == [("b", 1.0)]


def test_satisfaction_figure_orders_bands_within_each_kind():
    table = pd.DataFrame({
        "kind": ["nps", "nps", "nps", "csat"], "band": ["promoter", "detractor", "passive", "5"],
        "band_order": [3, 1, 2, 5], "customers": [10, 30, 20, 7], "return_rate": [0.6, 0.2, 0.4, 0.9],
    })
    fig = F.satisfaction_figure(table)
    assert [t.name for t in fig.data] == ["csat", "nps"]
    assert list(fig.data[1].x) == ["detractor", "passive", "promoter"]
    np.testing.assert_array_equal(fig.data[1].y, [0.2, 0.4, 0.6])
    np.testing.assert_array_equal(fig.data[1].customdata, [30, 20, 10])


def test_months_before_keeps_month_ends():
    from patron.report.sections import months_before

    assert months_before(date(1998, 6, 30), 3) == date(1998, 3, 31)
    assert months_before(date(2024, 5, 31), 3) == date(2024, 2, 29)
    assert months_before(date(2024, 5, 15), 3) == date(2024, 2, 15)


def test_nonzero_matrix_drops_empty_rows_and_columns():
    from patron.report.sections import nonzero_matrix

    m = pd.DataFrame([[0, 0, 0], [1, 0, 2]], index=["not_yet", "new"], columns=["new", "active", "lost"])
    out = nonzero_matrix(m)
    assert list(out.index) == ["new"] and list(out.columns) == ["new", "lost"]
    np.testing.assert_array_equal(out.to_numpy(), [[1, 2]])


# --- page assembly ----------------------------------------------------------------------------

def _page() -> str:
    fig = F.status_distribution_figure(pd.DataFrame({"status": ["new", "active"], "customers": [1, 2]}))
    hm = F.migration_heatmap(pd.DataFrame([[1, 0], [0, 1]], index=["new", "active"], columns=["new", "active"]))
    sections = [
        Section("one", "First", intro="Hello <world>", metrics=[Metric("customers", "3", "all")], figures=[fig, hm]),
        Section("two", "Second", tables=[("Top", pd.DataFrame({"segment": ["<b>x</b>"], "total_clv": [1234.5]}))]),
    ]
    return render_page("Test report", sections, subtitle="sub")


def test_page_inlines_plotly_once_and_loads_nothing_from_the_network():
    page = _page()
    bundle = get_plotlyjs()
    assert page.count(bundle[:2000]) == 1
    assert page.count("plotly.js v") == 1  # the bundle's banner comment
    assert re.findall(r"<script[^>]*\bsrc\s*=", page, flags=re.I) == []
    assert re.findall(r"<link\b", page, flags=re.I) == []
    assert "@import" not in page and "url(" not in page.split("<script")[0]
    assert page.count('class="plotly-graph-div"') == 2


def test_table_prints_whole_numbers_without_decimals_and_blanks_for_missing():
    from patron.report.html import table_html

    frame = pd.DataFrame({"segment": ["a", "b"], "customers": [1200.0, np.nan], "mean_clv": [1.5, 2.0]})
    text = table_html(frame)
    assert '<td class="num">1,200</td>' in text and '<td class="num"></td>' in text
    assert '<td class="num">1.50</td>' in text


def test_segment_summary_folds_status_counts():
    from patron.report.html import table_html
    from patron.report.sections import segment_summary

    table = pd.DataFrame({
        "segment": ["a", "b"], "rule": ["x > 1", "y"], "customers": [5, 0], "total_clv": [50.0, 0.0],
        "mean_clv": [10.0, np.nan], "equity_share": [0.25, 0.0],
        "prospect": [0, np.nan], "new": [2, np.nan], "active": [0, np.nan], "lost": [3, np.nan],
    })
    out = segment_summary(table)
    assert list(out.columns) == ["segment", "rule", "customers", "total_clv", "mean_clv", "equity_share", "status mix"]
    assert list(out["status mix"]) == ["new 2 · lost 3", ""]
    assert '<td class="num">25.0%</td>' in table_html(out)


def test_page_has_sections_in_order_with_escaped_text_and_a_table():
    page = _page()
    assert page.index('id="one"') < page.index('id="two"')
    assert "Hello &lt;world&gt;" in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    assert "1,234.50" in page
    assert '<td class="text">&lt;b&gt;x&lt;/b&gt;</td>' in page
    assert "<th class=\"num\">total clv</th>" in page
    assert '<a href="#two">Second</a>' in page


# --- registry and build -----------------------------------------------------------------------

@pytest.fixture
def tiny_db(tmp_path):
    """Three customers, last transaction on 2024-03-05."""
    from patron.data.ingest import ingest

    csv = tmp_path / "t.csv"
    csv.write_text(
        "customer_id,order_id,occurred_at,amount\n"
        "a,1,2024-01-02,10\nb,2,2024-01-10,20\na,3,2024-02-01,15\nc,4,2024-03-05,5\n"
    )
    db = str(tmp_path / "t.duckdb")
    ingest(csv, kind="transactions", db=db)
    return db


@pytest.fixture
def only_custom_sections():
    """Run a test with the built-in sections removed, restoring them afterwards."""
    from patron.report import registry

    registry.load_section_modules()  # import plug-in sections now, so they do not register mid-test
    saved = dict(registry._REGISTRY)
    registry._REGISTRY.clear()
    yield registry
    registry._REGISTRY.clear()
    registry._REGISTRY.update(saved)


def test_builtin_sections_are_registered_in_order():
    keys = registered_sections()
    expected = ["headline", "equity", "status", "cohorts", "clv", "loyalty", "segments"]
    assert [k for k in keys if k in expected] == expected
    assert keys[-1] == "about"


def test_registry_orders_rejects_duplicates_and_unregisters(only_custom_sections):
    register_section("late", lambda db, ctx: None, order=50)
    register_section("early", lambda db, ctx: None, order=5)
    assert registered_sections() == ["early", "late"]
    with pytest.raises(ValueError, match="already registered"):
        register_section("late", lambda db, ctx: None)
    register_section("late", lambda db, ctx: None, order=1, replace=True)
    assert registered_sections() == ["late", "early"]
    unregister_section("late")
    assert registered_sections() == ["early"]


def test_build_report_runs_registered_sections_with_context(tiny_db, only_custom_sections):
    seen = {}

    @register_section("custom", order=1)
    def custom(db, ctx):
        seen["db"], seen["as_of"] = db, ctx.as_of
        n = ctx.memo("n", lambda: 41) + ctx.memo("n", lambda: 0)
        return Section("custom", "My custom section", metrics=[Metric("answer", str(n))])

    register_section("nothing", lambda db, ctx: None, order=2)
    page = build_report(tiny_db, title="T")
    assert seen == {"db": tiny_db, "as_of": date(2024, 3, 5)}  # last transaction day
    assert "My custom section" in page and ">82<" in page
    assert 'id="nothing"' not in page
    assert "as of 2024-03-05" in page


def test_build_report_selects_sections_and_rejects_unknown(tiny_db, only_custom_sections):
    register_section("a", lambda db, ctx: Section("a", "Section A"), order=1)
    register_section("b", lambda db, ctx: Section("b", "Section B"), order=2)
    page = build_report(tiny_db, sections=["b"])
    assert "Section B" in page and "Section A" not in page
    with pytest.raises(InputError, match="unknown report section 'zzz'"):
        build_report(tiny_db, sections=["zzz"])


def test_resolve_as_of(tiny_db):
    assert resolve_as_of(tiny_db) == date(2024, 3, 5)
    assert resolve_as_of(tiny_db, "2024-02-15") == date(2024, 2, 15)
    with pytest.raises(InputError, match=r"^as_of must be a date"):
        resolve_as_of(tiny_db, "not a date")


def test_write_report_needs_html_suffix(tiny_db, tmp_path, only_custom_sections):
    with pytest.raises(InputError, match=r"\.html"):
        write_report(tiny_db, tmp_path / "r.txt")
    register_section("a", lambda db, ctx: Section("a", "Section A"))
    path = write_report(tiny_db, tmp_path / "sub" / "r.html")
    assert path.read_text(encoding="utf-8").startswith("<!doctype html>")


def test_optional_module():
    assert optional_module("patron.no_such_module_here") is None
    assert optional_module("patron.report.figures") is F


def test_cli_report_writes_the_file_and_prints_its_path(tiny_db, tmp_path, only_custom_sections, capsys):
    from patron.cli import main

    register_section("a", lambda db, ctx: Section("a", "Section A"))
    out = tmp_path / "report.html"
    assert main(["report", "--db", tiny_db, "--out", str(out), "--as-of", "2024-02-01", "--json"]) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and out.exists()
    assert "as of 2024-02-01" in out.read_text(encoding="utf-8")


def test_cli_report_errors_are_one_line(tiny_db, tmp_path, only_custom_sections, capsys):
    from patron.cli import main

    assert main(["report", "--db", tiny_db, "--out", str(tmp_path / "r.txt")]) == 2
    assert capsys.readouterr().err.strip() == f"patron: error: --out must end in .html; got {tmp_path / 'r.txt'}"
    assert main(["report", "--db", str(tmp_path / "missing.duckdb"), "--out", str(tmp_path / "r.html")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_section_without_enough_data_is_left_out_with_a_note(tiny_db, only_custom_sections):
    from patron.errors import NoDataError
    from patron.report.sections import about_section

    def fails(db, ctx):
        raise NoDataError("no contacts ingested")

    register_section("contacts", fails, order=1, title="Contact effect")
    register_section("about", about_section, order=1000)
    page = build_report(tiny_db)
    assert 'id="contacts"' not in page
    assert "The Contact effect section is left out: no contacts ingested" in page


def test_headline_equity_uses_the_model_interval_at_the_report_date_else_summed_bounds():
    from patron.report import ReportContext
    from patron.report.sections import equity_now

    profiles = pd.DataFrame({"clv": [10.0, 20.0], "clv_lower": [8.0, 15.0], "clv_upper": [12.0, 26.0]})
    ctx = ReportContext(db="unused", as_of=date(2024, 6, 30))
    ctx.cache["profiles"] = profiles
    assert equity_now(ctx) == (30.0, 23.0, 38.0, "sum of per-customer bounds")  # 10+20, 8+15, 12+26
    history = pd.DataFrame({"as_of": pd.to_datetime(["2024-05-31", "2024-06-30"]), "equity": [25.0, 31.0],
                            "equity_lower": [20.0, 27.0], "equity_upper": [30.0, 35.0]})
    ctx.cache["equity_over_time"] = history
    assert equity_now(ctx) == (31.0, 27.0, 35.0, "95% interval")
    ctx.cache["equity_over_time"] = history.assign(equity_lower=[20.0, np.nan])  # no fit at the date
    assert equity_now(ctx)[3] == "sum of per-customer bounds"
    ctx.cache["equity_over_time"] = history.iloc[:1]  # last point is not the report date
    assert equity_now(ctx)[0] == 30.0


def test_an_input_error_in_a_section_stops_the_report(tiny_db, only_custom_sections):
    def bad_rule(db, ctx):
        raise InputError("patron.toml: [segments] vip: unknown column 'clvv'")

    register_section("segments", bad_rule)
    with pytest.raises(InputError, match="unknown column 'clvv'"):
        build_report(tiny_db)


def test_user_text_in_figures_cannot_close_the_script():
    # a segment named like markup must stay data: the page has exactly the scripts it should
    evil = "</script><script>alert(1)</script>"
    fig = F.equity_by_segment_figure(pd.DataFrame({"segment": [evil], "total_clv": [1.0]}))
    page = render_page("T", [Section("s", "S", figures=[fig], tables=[("t", pd.DataFrame({"segment": [evil]}))])])
    assert evil not in page
    # the plotly.js bundle, the one figure, the table's JSON data block (never run) and tables.js
    assert page.count("<script") == 4
    assert page.count('<script type="application/json" class="table-data">') == 1
