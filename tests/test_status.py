"""Relationship status on constructed histories with known answers.

The model parameters are fixed (no fitting), so every number behind a label is computed here
independently from the closed forms of Fader, Hardie & Lee (2005), "Counting your customers the
easy way", Marketing Science 24(2): eq. 11 (P(alive)), eq. 10 (conditional expected purchases,
with scipy's 2F1 in its original, untransformed form), and P(a purchase in the next t weeks) =
P(alive) [1 - ((alpha+T)/(alpha+T+t))^(r+x)] (derived in patron.value.models.beta_geo and checked there
against an integral over the posterior).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy.special import hyp2f1

import patron
from patron.errors import InputError
from patron.relationship.status import STATUSES, StatusRules, relationship_status, status_counts

AS_OF = date(2024, 6, 30)

PARAMS = {"r": 0.2426, "alpha": 4.4136, "a": 0.7929, "b": 2.4259}
"""BG/NBD estimates for CDNOW (FHL 2005, Table 1), rates per week."""

REL_TOL = 1e-9
"""Tolerance of model outputs against the independent closed forms (both are exact formulas)."""

EXPECTED_REL_TOL = 1e-6
"""Tolerance of expected purchases (2F1 evaluated by two different routes)."""

# days before AS_OF of each purchase, and the status the default rules must give (P(purchase) over
# 26 weeks, "q" below; the numbers are checked in test_the_numbers_behind_the_labels_are_in_their_bands)
HISTORIES: dict[str, tuple[list[int], str]] = {
    "new_90": ([90], "new"),  # first purchase exactly new_days (90) before as_of: new (q 0.1997)
    "one_91": ([91], "lapsed"),  # one day more: q 0.1988 < 0.2 and 91 days > 90, but q >= 0.15
    "one_159": ([159], "lapsed"),  # q 0.1505: still >= lost_probability
    "one_160": ([160], "lost"),  # q 0.1499 < 0.15, one purchase only, 160 days > 90
    "one_800": ([800], "lost"),
    "lapsed_held": ([100 + 7 * k for k in range(5)], "lapsed"),  # q 0.089 < 0.15, but a repeat buyer silent 100 days <= 365
    "lost_p": ([370 + 7 * k for k in range(5)], "lost"),  # q 0.001, silent 370 days > 365
    "rep_366": ([366, 500], "lost"),  # q 0.128 < 0.15, silent 366 days > 365
    "rep_365": ([365, 500], "lapsed"),  # q 0.129, silent exactly lost_days: not lost yet
    "two_200": ([200, 230], "lapsed"),  # q 0.161: below 0.2, not below 0.15
    "held_at_risk": ([60 + 7 * k for k in range(8)], "at_risk"),  # q 0.155 < 0.2, but silent only 60 days <= 90
    "at_risk_q": ([60, 400], "at_risk"),  # came back after 340 days: q 0.254, in [0.2, 0.3)
    "cooling_a": ([100, 130, 160], "cooling"),  # monthly, silent 100 days: q 0.350
    "cooling_b": ([60, 90, 120], "cooling"),  # q 0.482, just below 0.5
    "active_a": ([40 + 14 * k for k in range(12)], "active"),  # fortnightly, silent 40 days: q 0.633
    "active": ([7 + 14 * k for k in range(26)], "active"),  # fortnightly for a year, last 7 days ago: q 0.955
    "new_weak": ([40 + 7 * k for k in range(5)], "new"),  # first 68 days ago, q 0.426: new beats cooling
}

HORIZON = 26.0
"""Default P(purchase) horizon, weeks."""


def p_alive_fhl(x: float, tx: float, T: float, r: float, alpha: float, a: float, b: float) -> float:
    """FHL 2005 eq. 11: 1 / (1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))."""
    if x == 0:
        return 1.0
    return 1.0 / (1.0 + a / (b + x - 1.0) * ((alpha + T) / (alpha + tx)) ** (r + x))


def expected_fhl(t: float, x: float, tx: float, T: float, r: float, alpha: float, a: float, b: float) -> float:
    """FHL 2005 eq. 10: E[Y(t) | x, t_x, T]."""
    z = t / (alpha + T + t)
    front = (a + b + x - 1.0) / (a - 1.0)
    bracket = 1.0 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1.0, z)
    return front * bracket * p_alive_fhl(x, tx, T, r, alpha, a, b)


def q_fhl(t: float, x: float, tx: float, T: float, r: float, alpha: float, a: float, b: float) -> float:
    """P(at least one purchase in (T, T+t]) = P(alive) [1 - ((alpha+T)/(alpha+T+t))^(r+x)]."""
    return p_alive_fhl(x, tx, T, r, alpha, a, b) * (1.0 - ((alpha + T) / (alpha + T + t)) ** (r + x))


def rfm(days_before: list[int], as_of: date) -> tuple[float, float, float] | None:
    """(x, t_x, T) in weeks of purchases ``days_before`` the reference day, seen from ``as_of``."""
    days = sorted({AS_OF - timedelta(days=d) for d in days_before if AS_OF - timedelta(days=d) <= as_of})
    if not days:
        return None
    return len(days) - 1.0, (days[-1] - days[0]).days / 7.0, (as_of - days[0]).days / 7.0


def transactions(histories: dict[str, list[date]]) -> pd.DataFrame:
    rows = [(cid, datetime.combine(d, datetime.min.time()) + timedelta(hours=13), 10.0) for cid, ds in histories.items() for d in ds]
    return pd.DataFrame(rows, columns=["customer_id", "occurred_at", "amount"])


@pytest.fixture(scope="module")
def status_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database with every history of HISTORIES (read only by the tests)."""
    db = str(tmp_path_factory.mktemp("status") / "status.duckdb")
    hist = {cid: [AS_OF - timedelta(days=d) for d in days] for cid, (days, _) in HISTORIES.items()}
    hist["after_only"] = [AS_OF + timedelta(days=3)]  # bought only after as_of, not in customers: absent
    hist["prospect_later_buyer"] = [AS_OF + timedelta(days=5)]  # known, buys only after as_of: prospect
    patron.ingest(transactions(hist), kind="transactions", db=db, now=datetime(2025, 1, 1))
    people = pd.DataFrame(
        {
            "customer_id": ["prospect_a", "prospect_later_buyer", "known_later", "active"],
            "first_seen": [None, "2024-01-01", "2024-07-15", "2023-01-01"],
        }
    )
    patron.ingest(people, kind="customers", db=db, now=datetime(2025, 1, 1))
    return db


@pytest.fixture(scope="module")
def statuses(status_db: str) -> pd.DataFrame:
    return relationship_status(status_db, as_of=AS_OF, params=PARAMS).set_index("customer_id")


def test_every_status_with_independent_numbers(statuses):
    expected = {cid: label for cid, (_, label) in HISTORIES.items()} | {"prospect_a": "prospect", "prospect_later_buyer": "prospect"}
    assert statuses["status"].to_dict() == expected
    assert set(statuses["status"]) == set(STATUSES)
    before = AS_OF - timedelta(days=StatusRules().lookback_days)
    for cid, (days, _) in HISTORIES.items():
        row = statuses.loc[cid]
        now, then = rfm(days, AS_OF), rfm(days, before)
        assert row["frequency"] == now[0] and row["T"] == pytest.approx(now[2], rel=REL_TOL)
        assert row["probability_alive"] == pytest.approx(p_alive_fhl(*now, **PARAMS), rel=REL_TOL), cid
        assert row["probability_purchase"] == pytest.approx(q_fhl(HORIZON, *now, **PARAMS), rel=REL_TOL), cid
        assert row["expected_purchases"] == pytest.approx(expected_fhl(52.0, *now, **PARAMS), rel=EXPECTED_REL_TOL), cid
        assert row["days_since_last_purchase"] == min(days) and row["days_since_first_purchase"] == max(days)
        if then is None:
            assert np.isnan(row["probability_alive_before"]) and np.isnan(row["probability_purchase_before"])
        else:
            assert row["probability_alive_before"] == pytest.approx(p_alive_fhl(*then, **PARAMS), rel=REL_TOL), cid
            assert row["probability_purchase_before"] == pytest.approx(q_fhl(HORIZON, *then, **PARAMS), rel=REL_TOL), cid
            assert row["expected_purchases_before"] == pytest.approx(expected_fhl(52.0, *then, **PARAMS), rel=EXPECTED_REL_TOL), cid


def test_the_numbers_behind_the_labels_are_in_their_bands():
    """The hand labels rely on these independently computed values (default rules)."""
    q = {cid: q_fhl(HORIZON, *rfm(days, AS_OF), **PARAMS) for cid, (days, _) in HISTORIES.items()}
    assert 0.15 <= q["one_91"] < 0.2 and 0.15 <= q["one_159"] < q["new_90"] < 0.2
    assert q["one_160"] < 0.15 and q["one_800"] < 0.15
    assert q["lapsed_held"] < 0.15 and q["lost_p"] < 0.15 and q["rep_366"] < 0.15 and q["rep_365"] < 0.15
    assert 0.15 <= q["two_200"] < 0.2 and q["held_at_risk"] < 0.2
    assert 0.2 <= q["at_risk_q"] < 0.3
    assert 0.3 <= q["cooling_a"] < 0.5 and 0.3 <= q["cooling_b"] < 0.5 and 0.3 <= q["new_weak"] < 0.5
    assert q["active_a"] >= 0.5 and q["active"] >= 0.5
    # a one-time buyer's P(alive) is 1 by construction: only P(purchase) tells them apart
    assert p_alive_fhl(*rfm(HISTORIES["one_800"][0], AS_OF), **PARAMS) == 1.0


def test_reasons_name_the_numbers(statuses):
    reason = statuses["status_reason"]
    assert reason["one_800"] == "P(purchase in 26 weeks) 0.047 < 0.15, one purchase only, 800 days ago > 90 (lost)"
    assert reason["lost_p"] == "P(purchase in 26 weeks) 0.001 < 0.15 and 370 days since last purchase > 365 (lost)"
    assert reason["lapsed_held"] == ("P(purchase in 26 weeks) 0.089 < 0.2 and 100 days since last purchase > 90 (lapsed); "
                                     "a repeat buyer is lost only after 365 days")
    assert reason["two_200"] == "P(purchase in 26 weeks) 0.161 < 0.2 and 200 days since last purchase > 90 (lapsed)"
    assert reason["held_at_risk"] == ("P(purchase in 26 weeks) 0.155 < 0.3 (at risk); 60 days since last purchase <= 90, "
                                      "not yet lapsed; 0.749 on 2024-04-01")
    assert reason["new_90"] == "first purchase 90 days before 2024-06-30 <= 90 (new); P(purchase in 26 weeks) 0.200"
    assert reason["cooling_a"] == "P(purchase in 26 weeks) 0.350 < 0.5 (cooling); 100 days since last purchase; 0.697 on 2024-04-01"
    assert reason["active"] == "P(purchase in 26 weeks) 0.955 >= 0.5 (active); 7 days since last purchase; 0.960 on 2024-04-01"
    assert reason["prospect_a"] == "known customer with no purchase on or before 2024-06-30"


def test_prospects_have_empty_purchase_columns(statuses):
    pros = statuses.loc[["prospect_a", "prospect_later_buyer"]]
    assert (pros["n_orders"] == 0).all()
    assert pros[["probability_alive", "expected_purchases", "days_since_last_purchase"]].isna().all().all()
    assert pros["first_purchase"].isna().all()
    assert "after_only" not in statuses.index and "known_later" not in statuses.index


@pytest.mark.parametrize(("offset", "expected"), [(1e-9, "at_risk"), (-1e-9, "cooling")])
def test_probability_threshold_is_strict_at_the_independent_value(status_db, offset, expected):
    """at_risk_q has P(purchase) = q*; an at_risk threshold just above q* makes it at_risk, just
    below leaves the next rule (q* < 0.5: cooling)."""
    q_star = q_fhl(HORIZON, *rfm(HISTORIES["at_risk_q"][0], AS_OF), **PARAMS)
    rules = {"status": {"at_risk_probability": q_star + offset}}
    got = relationship_status(status_db, as_of=AS_OF, params=PARAMS, config=rules).set_index("customer_id")
    assert got.loc["at_risk_q", "status"] == expected


def test_rules_from_a_file_change_the_statuses(status_db, tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text("[status]\nnew_days = 91\nlost_days = 366\nhorizon_weeks = 52\n")
    got = relationship_status(status_db, as_of=AS_OF, params=PARAMS, config=str(path)).set_index("customer_id")
    assert got.loc["one_91", "status"] == "new"
    assert got.loc["rep_366", "status"] == "lapsed"  # silent 366 days is no longer more than lost_days
    expected = q_fhl(52.0, *rfm(HISTORIES["active_a"][0], AS_OF), **PARAMS)
    assert got.loc["active_a", "probability_purchase"] == pytest.approx(expected, rel=REL_TOL)


def test_bad_rules_are_one_line_errors(status_db, tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text("[status]\nlost_days = 10\n")
    with pytest.raises(InputError, match=r"rules.toml: \[status\].*lost_days >= lapsed_days"):
        relationship_status(status_db, as_of=AS_OF, params=PARAMS, config=str(path))
    with pytest.raises(InputError, match=r"lost_probability <= lapsed_probability <= at_risk_probability <= active_probability"):
        relationship_status(status_db, as_of=AS_OF, params=PARAMS, config={"status": {"lost_probability": 0.6}})
    with pytest.raises(InputError, match=r"\[status\] new_dayz"):
        relationship_status(status_db, as_of=AS_OF, params=PARAMS, config={"status": {"new_dayz": 3}})
    with pytest.raises(InputError, match=r"replace lost_probability_alive -> lost_probability"):  # the rules before P(purchase)
        relationship_status(status_db, as_of=AS_OF, params=PARAMS, config={"status": {"lost_probability_alive": 0.1}})
    with pytest.raises(InputError, match="as_of must be a date"):
        relationship_status(status_db, as_of="30/06/2024", params=PARAMS)
    with pytest.raises(InputError, match="lack b"):
        relationship_status(status_db, as_of=AS_OF, params={"r": 1, "alpha": 1, "a": 1})


def test_scores_are_reused(status_db, statuses):
    """Given scores, P(alive), expected purchases and P(purchase) (when present) come from them:
    marking the active customer's P(purchase) 0.01 makes them at_risk (silent 7 days: too soon
    to be lapsed or lost)."""
    scores = statuses.reset_index()[["customer_id", "probability_alive", "expected_purchases", "probability_purchase"]].dropna()
    scores.loc[scores["customer_id"] == "active", "probability_purchase"] = 0.01
    scores.loc[scores["customer_id"] == "active", "probability_alive"] = 0.05
    got = relationship_status(status_db, as_of=AS_OF, params=PARAMS, scores=scores).set_index("customer_id")
    assert got.loc["active", "status"] == "at_risk"
    assert got.loc["active", "probability_alive"] == 0.05 and got.loc["active", "probability_purchase"] == 0.01
    others = got.index.difference(["active"])
    assert (got.loc[others, "status"] == statuses.loc[others, "status"]).all()
    # without the column, P(purchase) comes from the model
    plain = relationship_status(status_db, as_of=AS_OF, params=PARAMS, scores=scores.drop(columns="probability_purchase"))
    assert (plain.set_index("customer_id")["status"] == statuses["status"]).all()
    with pytest.raises(InputError, match="scores lack 1 of"):
        relationship_status(status_db, as_of=AS_OF, params=PARAMS, scores=scores[scores["customer_id"] != "lost_p"])


def test_status_counts(statuses):
    counts = status_counts(statuses.reset_index()).set_index("status")
    assert list(counts.index) == list(STATUSES)
    assert counts["count"].to_dict() == {"prospect": 2, "new": 2, "active": 2, "cooling": 2, "at_risk": 2, "lapsed": 5, "lost": 4}
    assert counts["share"].sum() == pytest.approx(1.0)
    lost = ("one_160", "one_800", "lost_p", "rep_366")
    lost_mean = np.mean([q_fhl(HORIZON, *rfm(HISTORIES[c][0], AS_OF), **PARAMS) for c in lost])
    assert counts.loc["lost", "mean_probability_purchase"] == pytest.approx(lost_mean, rel=REL_TOL)
    assert np.isnan(counts.loc["prospect", "mean_probability_alive"]) and np.isnan(counts.loc["prospect", "mean_probability_purchase"])


def test_model_is_fitted_when_no_params_are_given(status_db):
    got = relationship_status(status_db, as_of=AS_OF)
    assert len(got) == len(HISTORIES) + 2
    assert got["status"].isin(STATUSES).all()
    assert got["probability_alive"].dropna().between(0, 1).all()
