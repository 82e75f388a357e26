"""Units, words and orders in the report's figures and tables (issue 24, items 1 and 2), each on
hand-made inputs whose answer is written out here: currency on money axes and headlines,
percentage points for lifts, booleans as words, people vs people x channels, tier / status
order, readable log ticks, one panel per unit, tiny groups left out with the rule stated."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from patron.contact.effect.figures import dose_figure
from patron.network.figures import comparison_figure, size_figure
from patron.report import figures as F
from patron.report.contact_effect_section import lift_table
from patron.report.html import Metric, Section, section_html, table_html
from patron.service.pages import consent_body


def test_tier_bars_follow_tier_order_not_equity():
    # equity order gold > silver > platinum > bronze (the screenshot); tier order is fixed
    groups = pd.DataFrame({"value_tier": ["gold", "silver", "platinum", "bronze"], "equity": [400.0, 300.0, 200.0, 100.0]})
    from patron.relationship.categories import category_order

    order = category_order("value_tier", groups["value_tier"], config={})
    fig = F.bar_figure(groups, label="value_tier", value="equity", title="t", order=order, currency="USD")
    assert list(fig.data[0].x) == ["platinum", "gold", "silver", "bronze"]
    assert list(fig.data[0].y) == [200.0, 400.0, 300.0, 100.0]
    assert fig.layout.yaxis.tickprefix == "$" and fig.layout.yaxis.title.text == "equity ($)"


def test_tier_order_follows_the_rules_file():
    from patron.relationship.categories import category_order

    config = {"tiers": {"names": ["top", "middle", "rest"], "shares": [0.1, 0.3]}}
    assert category_order("value_tier", ["rest", "top", "middle", None], config=config) == ["top", "middle", "rest", "None"]


def test_migration_heatmap_rows_and_columns_in_status_order():
    m = pd.DataFrame([[1, 2], [3, 4]], index=["lost", "active"], columns=["lost", "new"])
    fig = F.migration_heatmap(m)
    assert list(fig.data[0].y) == ["active", "lost"] and list(fig.data[0].x) == ["new", "lost"]
    assert np.asarray(fig.data[0].z, dtype=float).tolist() == [[4.0, 3.0], [2.0, 1.0]]


@pytest.mark.parametrize(("currency", "key", "unit"), [("USD", "tickprefix", "$"), ("CHF", "ticksuffix", " CHF")])
def test_money_axes_carry_the_currency(currency, key, unit):
    frame = pd.DataFrame({"as_of": pd.to_datetime(["2024-01-31", "2024-02-29"]), "equity": [100.0, 120.0],
                          "equity_lower": [90.0, 110.0], "equity_upper": [110.0, 130.0]})
    fig = F.equity_over_time_figure(frame, currency=currency)
    assert fig.layout.yaxis[key] == unit
    assert fig.layout.yaxis.title.text == f"total CLV ({unit.strip()})"
    hist = F.clv_histogram(np.r_[np.full(50, 1.0), np.geomspace(2, 5000, 200)], log=True, currency=currency)
    labels = list(hist.layout.xaxis.ticktext)
    assert labels and all(unit.strip() in t for t in labels)


def test_equity_gaps_say_why_a_month_is_empty():
    frame = pd.DataFrame({"as_of": pd.to_datetime(["2024-01-31", "2024-02-29", "2024-03-31"]),
                          "equity": [np.nan, 120.0, 130.0], "equity_lower": [np.nan, np.nan, 125.0],
                          "equity_upper": [np.nan, np.nan, 135.0]})
    notes = F.equity_gaps(frame)
    assert len(notes) == 2
    assert "2024-01-31" in notes[0] and "could not be fitted" in notes[0]
    assert "2024-02-29" in notes[1] and "No interval" in notes[1] and "2024-03-31" not in " ".join(notes)
    full = frame.iloc[2:]
    assert F.equity_gaps(full) == []


def test_table_prints_booleans_as_words():
    frame = pd.DataFrame({"segment": ["a", "b", "c"], "over_contacted": [True, False, True],
                          "unsubscribes_rise": pd.Series([True, None, False], dtype=object)})
    text = table_html(frame)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", text)
    assert cells == ["a", "yes", "yes", "b", "no", "", "c", "yes", "no"]
    assert "True" not in text and "False" not in text


def test_lift_table_states_lifts_in_points_and_revenue_in_currency():
    measured = pd.DataFrame({
        "campaign_id": ["spring"], "n_treated": [900], "n_control": [100],
        "response_rate_treated": [0.15], "response_rate_control": [0.10],
        "response_lift": [0.05], "response_lift_lower": [0.01], "response_lift_upper": [0.09],
        "incremental_revenue": [1200.0], "incremental_revenue_lower": [300.0], "incremental_revenue_upper": [2100.0],
        "revenue_proven": [True], "unsubscribe_lift": [-0.002],
    })
    table = lift_table(measured, "USD")
    t = table.iloc[0]
    assert t["response lift (pp)"] == pytest.approx(5.0)  # the 0.05 is five points, not 0.05
    assert (t["lift low (pp)"], t["lift high (pp)"]) == (pytest.approx(1.0), pytest.approx(9.0))
    assert t["response treated (%)"] == pytest.approx(15.0)
    assert t["incremental revenue ($)"] == 1200.0 and t["revenue low ($)"] == 300.0
    assert t["unsubscribe lift (pp)"] == pytest.approx(-0.2)
    cells = dict(zip(table.columns, re.findall(r"<td[^>]*>(.*?)</td>", table_html(table)), strict=True))
    assert cells["response lift (pp)"] == "5" and cells["revenue proven"] == "yes"  # whole numbers print without decimals
    assert cells["incremental revenue ($)"] == "1,200"


def test_headline_cards_show_a_definition_on_hover_and_below():
    sec = Section("headline", "Headline", metrics=[Metric("customer equity", "$1,234", "95% interval", "Sum of CLV.")])
    page = section_html(sec)
    assert '<div class="metric" title="Sum of CLV.">' in page
    assert '<div class="definition">Sum of CLV.</div>' in page


def test_cascade_size_axis_ticks_are_one_two_five():
    sizes = pd.Series([120, 30, 7, 2, 1], index=[2, 3, 4, 6, 11])  # cascades per size
    fig = size_figure(sizes)
    assert list(fig.layout.yaxis.tickvals) == [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]
    assert list(fig.layout.yaxis.ticktext) == ["1", "2", "5", "10", "20", "50", "100"]
    assert fig.layout.yaxis.type == "log"


def test_referred_vs_other_puts_each_unit_on_its_own_panel():
    diff = pd.DataFrame({
        "metric": ["repeat_rate", "purchase_rate", "clv", "probability_alive"],
        "difference": [0.04, 0.02, 35.0, -0.01], "lower": [0.01, 0.0, 10.0, -0.05], "upper": [0.07, 0.04, 60.0, 0.03],
    })
    fig = comparison_figure(diff, currency="USD")
    by_axis = {t.xaxis: (list(t.y), list(np.round(t.x, 9))) for t in fig.data}
    assert len(by_axis) == 3  # percentage points, purchases per week, money
    rates = next(v for v in by_axis.values() if "repeat rate" in v[0])
    assert rates == (["repeat rate", "P(alive)"], [4.0, -1.0])  # fractions drawn as points
    money_axis = next(k for k, v in by_axis.items() if v[0] == ["CLV"])
    assert fig.layout["xaxis" + money_axis[1:]].tickprefix == "$"


def _curves(segment: str, months: int, gain: float, spread: float) -> pd.DataFrame:
    return pd.DataFrame({
        "segment": segment, "dose_bin": ["0", "1", "2"], "bin_order": [0, 1, 2], "customer_months": [months] * 3,
        "gain": [np.nan, gain, gain / 2], "gain_lower": [np.nan, gain - spread, gain / 2 - spread],
        "gain_upper": [np.nan, gain + spread, gain / 2 + spread],
        "unsubscribe_rate": [0.01, 0.012, 0.015], "unsubscribe_rate_lower": [0.005, 0.008, 0.01],
        "unsubscribe_rate_upper": [0.015, 0.016, 0.02],
    })


def test_dose_response_leaves_out_a_tiny_segment_and_says_so():
    curves = pd.concat([_curves("all", 5000, 0.02, 0.005), _curves("active", 3000, 0.03, 0.01),
                        _curves("unknown", 1, 0.4, 0.4)], ignore_index=True)
    fig = dose_figure(curves, min_months=100)
    names = [t.name for t in fig.data if t.showlegend]
    assert names == ["all", "active"]
    assert "unknown (3)" in fig.layout.title.text and "100 customer-months" in fig.layout.title.text
    assert fig.layout.yaxis.range is None and "clipped" not in fig.layout.title.text  # narrow intervals: no clip


def test_dose_response_clips_an_axis_a_wide_interval_would_crush():
    curves = pd.concat([_curves("all", 5000, 0.02, 0.005), _curves("active", 3000, 0.02, 0.5)], ignore_index=True)
    fig = dose_figure(curves)
    low, high = fig.layout.yaxis.range
    assert low < 0 < 2.0 < high < 50.0  # estimates up to 2 pp; the ±50 pp interval runs off the axis
    assert "clipped" in fig.layout.title.text


def test_consent_headline_counts_people_and_names_people_channel_pairs():
    channels = ["email", "sms", "push", "mail", "phone", "in_app"]
    counts = pd.DataFrame({"purpose": "marketing", "channel": channels, "granted": 0, "denied": 1, "revoked": 0, "expired": 0})
    people = pd.Series({"denied": 1})  # one person denied "any": six channels
    page = consent_body(counts, people)
    card = re.search(r'<div class="label">people denied</div><div class="value">([\d,]+)</div>'
                     r'<div class="detail">([^<]*)</div>', page)
    assert card is not None and card.group(1) == "1"
    assert card.group(2) == "6 people × purpose × channel"


def test_dose_segments_follow_all_then_status_then_tier_order():
    from patron.contact.effect.figures import segment_order

    assert segment_order(["silver", "all", "bronze", "gold", "platinum", "lost", "active", "other"], config={}) == \
        ["all", "active", "lost", "platinum", "gold", "silver", "bronze", "other"]
    config = {"tiers": {"names": ["vip", "rest"], "shares": [0.2]}}
    assert segment_order(["rest", "vip", "all"], config=config) == ["all", "vip", "rest"]


def test_k_by_month_axis_is_clipped_only_when_a_thin_month_would_flatten_the_rest():
    from patron.network.figures import k_figure

    months = pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"])
    narrow = pd.DataFrame({"month": months, "k": [0.30, 0.35, 0.32], "k_lower": [0.25, 0.30, 0.27],
                           "k_upper": [0.35, 0.40, 0.37]})
    fig = k_figure(narrow)
    assert fig.layout.yaxis.range is None and "clipped" not in fig.layout.title.text
    thin = narrow.assign(k_upper=[0.35, 0.40, 4.0], k_lower=[0.25, 0.30, 0.0])  # March: two sharers
    fig = k_figure(thin)
    low, high = fig.layout.yaxis.range
    assert low < 0 and 0.35 < high < 1.0 and "clipped" in fig.layout.title.text


def test_covariate_effects_log_axis_ticks_are_one_two_five():
    from patron.report.covariate_section import effects_figure

    effects = pd.DataFrame({"process": ["purchase", "purchase", "dropout"], "covariate": ["app", "vip", "app"],
                            "rate_multiplier": [0.6, 1.5, 3.0], "rate_multiplier_lower": [0.45, 1.1, 2.1],
                            "rate_multiplier_upper": [0.8, 2.0, 3.9]})
    fig = effects_figure(effects)
    assert list(fig.layout.xaxis.tickvals) == [0.5, 1.0, 2.0] and list(fig.layout.xaxis.ticktext) == ["0.5", "1", "2"]


def test_consent_headline_from_the_ledger_one_any_denial_is_one_person_six_channels(tmp_path):
    from patron.contact.consent import consent_counts, consent_state, record_consent
    from patron.data.ingest import ingest
    from patron.service.pages import consent_people

    db = str(tmp_path / "c.duckdb")
    orders = tmp_path / "o.csv"
    pd.DataFrame({"customer_id": ["a", "b"], "order_id": ["1", "2"], "occurred_at": ["2024-01-02", "2024-01-03"],
                  "amount": [10.0, 20.0]}).to_csv(orders, index=False)
    ingest(orders, kind="transactions", db=db)
    record_consent(db, [
        {"customer_id": "a", "purpose": "marketing", "channel": "any", "status": "denied", "occurred_at": "2024-01-05"},
        {"customer_id": "b", "purpose": "marketing", "channel": "email", "status": "granted", "occurred_at": "2024-01-05"},
    ])
    state = consent_state(db, as_of="2024-02-01")
    people = consent_people(state)
    counts = consent_counts(db, as_of="2024-02-01")
    assert int(people["denied"]) == 1 and int(people["granted"]) == 1
    pairs = int(counts["denied"].sum())
    assert pairs == state.loc[state["customer_id"] == "a", "channel"].nunique() > 1  # one per channel "any" covers
    page = consent_body(counts, people)
    assert '<div class="label">people denied</div><div class="value">1</div>' in page
    assert f"{pairs} people × purpose × channel" in page


def test_customer_list_states_clv_in_the_currency():
    from patron.service.pages import customers_body

    examples = pd.DataFrame({"customer_id": ["c1", "c2"], "clv": [1234.5, 12.5], "status": ["active", "lost"]})
    page = customers_body(examples, "GBP")
    assert "CLV £1,234 · active" in page and "CLV £12.50 · lost" in page
    assert "CLV 1,234 · active" in customers_body(examples, "currency not set")  # no currency known: a bare number
