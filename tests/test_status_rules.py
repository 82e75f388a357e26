"""The rules themselves, without a database: precedence as written in docs/status.md, checked on
random customers and random (ordered) thresholds; and the prospects SQL."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from patron.data.dialect import DUCKDB, SPARK
from patron.relationship.status import StatusRules, classify, prospects_sql

AS_OF, BEFORE = date(2024, 6, 30), date(2024, 4, 1)


def expected_status(row: dict, r: StatusRules) -> str:
    """docs/status.md, "Order of evaluation", one customer at a time."""
    q, repeat = row["probability_purchase"], row["frequency"] > 0
    last, first = row["days_since_last_purchase"], row["days_since_first_purchase"]
    if q < r.lost_probability and last > r.lapsed_days and (not repeat or last > r.lost_days):
        return "lost"
    if q < r.lapsed_probability and last > r.lapsed_days:
        return "lapsed"
    if first <= r.new_days:
        return "new"
    if q < r.at_risk_probability:
        return "at_risk"
    if q < r.active_probability:
        return "cooling"
    return "active"


customer = st.fixed_dictionaries(
    {
        "probability_purchase": st.sampled_from([0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 1.0]) | st.floats(0, 1),
        "probability_purchase_before": st.one_of(st.just(float("nan")), st.floats(0, 1)),
        "frequency": st.sampled_from([0.0, 1.0, 5.0]),
        "days_since_last_purchase": st.integers(0, 1000).map(float),
        "gap": st.integers(0, 400),
    }
)


@st.composite
def rules(draw) -> StatusRules:
    p = sorted(draw(st.lists(st.sampled_from([0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.7]), min_size=4, max_size=4)))
    d = sorted(draw(st.lists(st.integers(0, 900), min_size=2, max_size=2)), reverse=True)
    return StatusRules(
        new_days=draw(st.integers(0, 200)), lost_probability=p[0], lapsed_probability=p[1], at_risk_probability=p[2],
        active_probability=p[3], lost_days=d[0], lapsed_days=d[1], horizon_weeks=draw(st.sampled_from([4.0, 26.0, 52.0])),
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


def test_reason_names_the_horizon_and_the_trend():
    frame = pd.DataFrame({"probability_purchase": [0.05, 0.4], "probability_purchase_before": [np.nan, 0.6],
                          "frequency": [3.0, 2.0], "days_since_last_purchase": [800.0, 30.0],
                          "days_since_first_purchase": [900.0, 300.0]})
    status, reason = classify(frame, StatusRules(horizon_weeks=13), as_of=AS_OF, before=BEFORE)
    assert list(status) == ["lost", "cooling"]
    assert reason[0] == "P(purchase in 13 weeks) 0.050 < 0.15 and 800 days since last purchase > 365 (lost)"
    assert reason[1] == "P(purchase in 13 weeks) 0.400 < 0.5 (cooling); 30 days since last purchase; 0.600 on 2024-04-01"


def test_prospects_sql_is_the_same_for_both_engines():
    sql = prospects_sql(AS_OF, DUCKDB)
    assert sql == prospects_sql(AS_OF, SPARK)
    assert "DATE '2024-06-30'" in sql and "NOT EXISTS" in sql and "amount >= 0" in sql


def _classified_in_sql(frame: pd.DataFrame, r: StatusRules) -> tuple[list, list]:
    import duckdb

    from patron.relationship.status_rules import classify_sql

    status, reason = classify_sql(r, as_of=AS_OF, before=BEFORE)
    con = duckdb.connect()
    con.register("customers_in", frame)
    rows = con.execute(f"SELECT {status}, {reason} FROM customers_in").fetchall()
    return [s for s, _ in rows], [t for _, t in rows]


@settings(max_examples=60, deadline=None)
@given(st.lists(customer, min_size=1, max_size=30), rules())
def test_classify_in_sql_gives_the_same_status_and_reason(rows, r):
    """The SQL the profiles of a large base classify with against the NumPy rules (an independent
    implementation of the same documented precedence and text), every branch drawn."""
    frame = pd.DataFrame(rows)
    frame["days_since_first_purchase"] = frame["days_since_last_purchase"] + frame.pop("gap")
    status, reason = classify(frame, r, as_of=AS_OF, before=BEFORE)
    in_sql = _classified_in_sql(frame, r)
    assert in_sql[0] == list(status) == [expected_status(row, r) for row in frame.to_dict(orient="records")]
    assert in_sql[1] == list(reason)
    assert list(classify(frame, r, as_of=AS_OF, before=BEFORE, reasons=False)[0]) == list(status)  # statuses only: the same


def test_classify_in_sql_prints_numbers_as_numpy_does():
    """Three-decimal probabilities at exact binary ties (0.0625 -> 0.062 and 0.1875 -> 0.188, round
    half to even on the exact value), 1.0, tiny ones, and a missing earlier P(purchase)."""
    q = [0.0625, 0.1875, 0.3125, 0.0005, 0.9995, 1.0, 0.0, 1e-9, 0.49999999]
    frame = pd.DataFrame({"probability_purchase": q, "probability_purchase_before": [np.nan, *q[:-1]],
                          "frequency": [0.0, 1.0, 2.0] * 3, "days_since_last_purchase": [10.0, 100.0, 400.0] * 3,
                          "days_since_first_purchase": [50.0, 500.0, 900.0] * 3})
    r = StatusRules()
    status, reason = classify(frame, r, as_of=AS_OF, before=BEFORE)
    assert _classified_in_sql(frame, r) == (list(status), list(reason))
    assert "0.062 < 0.15" in reason[0] or "0.062" in reason[0]
