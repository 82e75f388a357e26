"""Relationship status on constructed histories with known answers.

The model parameters are fixed (no fitting), so every P(alive) and expected-purchases value is
computed here independently from the closed forms of Fader, Hardie & Lee (2005), "Counting your
customers the easy way", Marketing Science 24(2): eq. 11 (P(alive)) and eq. 10 (conditional
expected purchases, with scipy's 2F1 in its original, untransformed form).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy.special import hyp2f1

import patron
from patron.errors import InputError
from patron.status import STATUSES, StatusRules, relationship_status, status_counts

AS_OF = date(2024, 6, 30)

PARAMS = {"r": 0.2426, "alpha": 4.4136, "a": 0.7929, "b": 2.4259}
"""BG/NBD estimates for CDNOW (FHL 2005, Table 1), rates per week."""

REL_TOL = 1e-9
"""Tolerance of model outputs against the independent closed forms (both are exact formulas)."""

EXPECTED_REL_TOL = 1e-6
"""Tolerance of expected purchases (2F1 evaluated by two different routes)."""

# days before AS_OF of each purchase, and the status the default rules must give (see the checks
# in test_every_status_with_independent_numbers for the numbers behind each label)
HISTORIES: dict[str, tuple[list[int], str]] = {
    "new_90": ([90], "new"),  # first purchase exactly new_days (90) before as_of: new
    "one_91": ([91], "cooling"),  # one day more: not new; expected purchases fell > 25%
    "one_180": ([180], "cooling"),  # exactly at_risk_days: not at risk yet
    "one_181": ([181], "at_risk"),  # one day more than at_risk_days
    "one_365": ([365], "at_risk"),  # exactly lapsed_days
    "one_366": ([366], "lapsed"),
    "one_730": ([730], "lapsed"),  # exactly lost_days
    "one_731": ([731], "lost"),
    "lost_p": ([100 + 7 * k for k in range(5)], "lost"),  # 5 weekly purchases, silent 100 days: P(alive) 0.092
    "lapsed_p": ([80 + 7 * k for k in range(5)], "lapsed"),  # silent 80 days: P(alive) 0.152
    "at_risk_p": ([100, 130, 160], "at_risk"),  # monthly, silent 100 days: P(alive) 0.450
    "cooling_p": ([40 + 14 * k for k in range(12)], "cooling"),  # P(alive) 0.884 -> 0.634, E drop only 24%
    "cooling_e": ([60, 90, 120], "cooling"),  # P(alive) drop 23%, expected purchases drop 30%
    "active": ([7 + 14 * k for k in range(26)], "active"),  # fortnightly for a year, last 7 days ago
    "new_weak": ([40 + 7 * k for k in range(5)], "new"),  # first 68 days ago, P(alive) 0.43: new beats at_risk
    "new_lapsed": ([60 + 7 * k for k in range(5)], "lapsed"),  # first 88 days ago, P(alive) 0.26: lapsed beats new
    # one-time buyer at the lookback date (P(alive) 1 by construction) who came back: P(alive) 1 -> 0.72
    # is no sign of cooling
    "came_back": ([60, 400], "active"),
}


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
    before = AS_OF - timedelta(days=StatusRules().cooling_lookback_days)
    for cid, (days, _) in HISTORIES.items():
        row = statuses.loc[cid]
        now, then = rfm(days, AS_OF), rfm(days, before)
        assert row["frequency"] == now[0] and row["T"] == pytest.approx(now[2], rel=REL_TOL)
        assert row["probability_alive"] == pytest.approx(p_alive_fhl(*now, **PARAMS), rel=REL_TOL), cid
        assert row["expected_purchases"] == pytest.approx(expected_fhl(52.0, *now, **PARAMS), rel=EXPECTED_REL_TOL), cid
        assert row["days_since_last_purchase"] == min(days) and row["days_since_first_purchase"] == max(days)
        if then is None:
            assert np.isnan(row["probability_alive_before"])
        else:
            assert row["probability_alive_before"] == pytest.approx(p_alive_fhl(*then, **PARAMS), rel=REL_TOL), cid
            assert row["expected_purchases_before"] == pytest.approx(expected_fhl(52.0, *then, **PARAMS), rel=EXPECTED_REL_TOL), cid


def test_the_numbers_behind_the_labels_are_in_their_bands(statuses):
    """The hand labels rely on these independently computed values (default rules)."""
    p = {cid: p_alive_fhl(*rfm(days, AS_OF), **PARAMS) for cid, (days, _) in HISTORIES.items()}
    assert p["lost_p"] < 0.10 and p["new_lapsed"] < 0.30
    assert 0.10 <= p["lapsed_p"] < 0.30
    assert 0.30 <= p["at_risk_p"] < 0.50 and 0.30 <= p["new_weak"] < 0.50
    assert p["cooling_p"] >= 0.5 and p["cooling_e"] >= 0.5 and p["active"] >= 0.5
    before = AS_OF - timedelta(days=90)

    def drops(cid: str) -> tuple[float, float]:
        days = HISTORIES[cid][0]
        pb, eb = p_alive_fhl(*rfm(days, before), **PARAMS), expected_fhl(52.0, *rfm(days, before), **PARAMS)
        e = expected_fhl(52.0, *rfm(days, AS_OF), **PARAMS)
        return (pb - p[cid]) / pb, (eb - e) / eb

    assert drops("cooling_p")[0] > 0.25 >= drops("cooling_p")[1]
    assert drops("cooling_e")[1] > 0.25 >= drops("cooling_e")[0]
    assert max(drops("active")) <= 0.25
    assert drops("came_back")[0] > 0.25 >= drops("came_back")[1] and rfm(HISTORIES["came_back"][0], before)[0] == 0
    for cid in ("one_91", "one_180"):
        assert drops(cid)[1] > 0.25


def test_reasons_name_the_numbers(statuses):
    reason = statuses["status_reason"]
    assert reason["lost_p"] == "P(alive) 0.092 < 0.1 (lost); 100 days since last purchase"
    assert reason["one_731"] == "731 days since last purchase > 730 (lost); P(alive) 1.000"
    assert reason["one_366"].startswith("366 days since last purchase > 365 (lapsed)")
    assert reason["at_risk_p"] == "P(alive) 0.450 < 0.5 (at risk); 100 days since last purchase"
    assert reason["new_90"] == "first purchase 90 days before 2024-06-30 <= 90 (new); P(alive) 1.000"
    assert reason["cooling_p"].startswith("P(alive) 0.884 -> 0.634 (-28% > 25% since 2024-04-01)")
    assert reason["cooling_e"].startswith("expected purchases (52 weeks)") and reason["cooling_e"].endswith("(cooling)")
    assert reason["active"].startswith("P(alive) 0.955 >= 0.5, 7 days since last purchase <= 180")
    assert reason["prospect_a"] == "known customer with no purchase on or before 2024-06-30"


def test_prospects_have_empty_purchase_columns(statuses):
    pros = statuses.loc[["prospect_a", "prospect_later_buyer"]]
    assert (pros["n_orders"] == 0).all()
    assert pros[["probability_alive", "expected_purchases", "days_since_last_purchase"]].isna().all().all()
    assert pros["first_purchase"].isna().all()
    assert "after_only" not in statuses.index and "known_later" not in statuses.index


@pytest.mark.parametrize(("offset", "expected"), [(1e-9, "at_risk"), (-1e-9, "cooling")])
def test_probability_threshold_is_strict_at_the_independent_value(status_db, offset, expected):
    """at_risk_p has P(alive) = p* (eq. 11); a threshold just above p* makes it at_risk, just
    below leaves the next rule (its P(alive) fell 42% in 90 days: cooling)."""
    p_star = p_alive_fhl(*rfm(HISTORIES["at_risk_p"][0], AS_OF), **PARAMS)
    rules = {"status": {"at_risk_probability_alive": p_star + offset}}
    got = relationship_status(status_db, as_of=AS_OF, params=PARAMS, config=rules).set_index("customer_id")
    assert got.loc["at_risk_p", "status"] == expected


def test_rules_from_a_file_change_the_statuses(status_db, tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text("[status]\nnew_days = 91\nlost_days = 800\n")
    got = relationship_status(status_db, as_of=AS_OF, params=PARAMS, config=str(path)).set_index("customer_id")
    assert got.loc["one_91", "status"] == "new"
    assert got.loc["one_731", "status"] == "lapsed"


def test_bad_rules_are_one_line_errors(status_db, tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text("[status]\nlost_days = 10\n")
    with pytest.raises(InputError, match=r"rules.toml: \[status\].*lost_days >= lapsed_days"):
        relationship_status(status_db, as_of=AS_OF, params=PARAMS, config=str(path))
    with pytest.raises(InputError, match=r"\[status\] new_dayz"):
        relationship_status(status_db, as_of=AS_OF, params=PARAMS, config={"status": {"new_dayz": 3}})
    with pytest.raises(InputError, match="as_of must be a date"):
        relationship_status(status_db, as_of="30/06/2024", params=PARAMS)
    with pytest.raises(InputError, match="lack b"):
        relationship_status(status_db, as_of=AS_OF, params={"r": 1, "alpha": 1, "a": 1})


def test_scores_are_reused(status_db, statuses):
    """Given scores, P(alive) and expected purchases come from them (the model only gives the
    earlier values): marking the active customer's P(alive) 0.05 makes them lost."""
    scores = statuses.reset_index()[["customer_id", "probability_alive", "expected_purchases"]].dropna()
    scores.loc[scores["customer_id"] == "active", "probability_alive"] = 0.05
    got = relationship_status(status_db, as_of=AS_OF, params=PARAMS, scores=scores).set_index("customer_id")
    assert got.loc["active", "status"] == "lost"
    assert got.loc["active", "probability_alive"] == 0.05
    others = got.index.difference(["active"])
    assert (got.loc[others, "status"] == statuses.loc[others, "status"]).all()
    with pytest.raises(InputError, match="scores lack 1 of"):
        relationship_status(status_db, as_of=AS_OF, params=PARAMS, scores=scores[scores["customer_id"] != "lost_p"])


def test_status_counts(statuses):
    counts = status_counts(statuses.reset_index()).set_index("status")
    assert list(counts.index) == list(STATUSES)
    assert counts["count"].to_dict() == {"prospect": 2, "new": 2, "active": 2, "cooling": 4, "at_risk": 3, "lapsed": 4, "lost": 2}
    assert counts["share"].sum() == pytest.approx(1.0)
    lost_mean = (p_alive_fhl(*rfm(HISTORIES["lost_p"][0], AS_OF), **PARAMS) + 1.0) / 2  # lost_p and one_731 (x = 0)
    assert counts.loc["lost", "mean_probability_alive"] == pytest.approx(lost_mean, rel=REL_TOL)
    assert np.isnan(counts.loc["prospect", "mean_probability_alive"])


def test_model_is_fitted_when_no_params_are_given(status_db):
    got = relationship_status(status_db, as_of=AS_OF)
    assert len(got) == len(HISTORIES) + 2
    assert got["status"].isin(STATUSES).all()
    assert got["probability_alive"].dropna().between(0, 1).all()
