"""The rules themselves, without a database: precedence as written in docs/status.md, checked on
random customers and random (ordered) thresholds; and the prospects SQL."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from patron.sql.dialect import DUCKDB, SPARK
from patron.status import StatusRules, classify, prospects_sql

AS_OF, BEFORE = date(2024, 6, 30), date(2024, 4, 1)


def expected_status(row: dict, r: StatusRules) -> str:
    """docs/status.md, "Order of evaluation", one customer at a time."""
    p, pb, e, eb = row["probability_alive"], row["probability_alive_before"], row["expected_purchases"], row["expected_purchases_before"]
    last, first = row["days_since_last_purchase"], row["days_since_first_purchase"]
    if p < r.lost_probability_alive or last > r.lost_days:
        return "lost"
    if p < r.lapsed_probability_alive or last > r.lapsed_days:
        return "lapsed"
    if first <= r.new_days:
        return "new"
    if p < r.at_risk_probability_alive or last > r.at_risk_days:
        return "at_risk"
    fell_p = row["frequency_before"] > 0 and pb > 0 and (pb - p) / pb > r.cooling_relative_drop
    fell_e = eb > 0 and (eb - e) / eb > r.cooling_relative_drop
    if fell_p or fell_e:
        return "cooling"
    return "active"


customer = st.fixed_dictionaries(
    {
        "probability_alive": st.floats(0, 1),
        "probability_alive_before": st.one_of(st.just(float("nan")), st.floats(0, 1)),
        "expected_purchases": st.floats(0, 20),
        "expected_purchases_before": st.one_of(st.just(float("nan")), st.floats(0, 20)),
        "frequency_before": st.sampled_from([0.0, 1.0, 5.0]),
        "days_since_last_purchase": st.integers(0, 1000).map(float),
        "gap": st.integers(0, 400),
    }
)


@st.composite
def rules(draw) -> StatusRules:
    p = sorted(draw(st.lists(st.sampled_from([0.05, 0.1, 0.3, 0.5, 0.7]), min_size=3, max_size=3)))
    d = sorted(draw(st.lists(st.integers(1, 900), min_size=3, max_size=3)), reverse=True)
    return StatusRules(
        new_days=draw(st.integers(0, 200)), lost_probability_alive=p[0], lapsed_probability_alive=p[1],
        at_risk_probability_alive=p[2], lost_days=d[0], lapsed_days=d[1], at_risk_days=d[2],
        cooling_relative_drop=draw(st.sampled_from([0.1, 0.25, 0.5])),
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(customer, min_size=1, max_size=30), rules())
def test_classify_follows_the_documented_precedence(rows, r):
    frame = pd.DataFrame(rows)
    frame["days_since_first_purchase"] = frame["days_since_last_purchase"] + frame.pop("gap")
    status, reason = classify(frame, r, as_of=AS_OF, before=BEFORE)
    assert list(status) == [expected_status(row, r) for row in frame.to_dict(orient="records")]
    for s, text in zip(status, reason, strict=True):
        assert isinstance(text, str) and f"({s.replace('_', ' ')})" in text


def test_reason_names_both_triggers():
    frame = pd.DataFrame({"probability_alive": [0.05], "probability_alive_before": [np.nan], "expected_purchases": [0.1],
                          "expected_purchases_before": [np.nan], "frequency_before": [0.0],
                          "days_since_last_purchase": [800.0], "days_since_first_purchase": [900.0]})
    status, reason = classify(frame, StatusRules(), as_of=AS_OF, before=BEFORE)
    assert status[0] == "lost"
    assert reason[0] == "P(alive) 0.050 < 0.1 and 800 days since last purchase > 730 (lost)"


def test_prospects_sql_is_the_same_for_both_engines():
    sql = prospects_sql(AS_OF, DUCKDB)
    assert sql == prospects_sql(AS_OF, SPARK)
    assert "DATE '2024-06-30'" in sql and "NOT EXISTS" in sql and "amount >= 0" in sql
