"""Loyalty behaviour on constructed histories with hand-computed answers, and on CDNOW against the
independently computed summary."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patron.cli.demo import CDNOW_SAMPLE_COLUMNS
from patron.data.datasets import data_path
from patron.data.dialect import SPARK
from patron.data.ingest import ingest
from patron.errors import InputError, NoDataError
from patron.relationship.loyalty import (
    category_revenue,
    category_shares,
    loyalty,
    loyalty_mix,
    loyalty_overview,
    loyalty_sql,
)
from patron.value.summary import summary

EXACT = 1e-12
"""Tolerance for sums and ratios of a handful of exact decimal values."""


def make_db(tmp_path: Path, rows: list[dict], name: str = "t.duckdb") -> str:
    db = str(tmp_path / name)
    ingest(pd.DataFrame(rows), kind="transactions", db=db)
    return db


def tx(customer: str, day: str, amount: float, **extra) -> dict:
    return {"customer_id": customer, "occurred_at": day, "amount": amount, **extra}


def by_customer(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.set_index("customer_id")


# --- trends -------------------------------------------------------------------------------------

def test_shortening_gaps_and_rising_spend(tmp_path):
    # days 0, 30, 50, 60: gaps 30, 20, 10 -> slope of gap on index 1..3 is exactly -10 days/purchase;
    # spend 10, 20, 30, 40 on index 1..4 -> slope +10 per purchase.
    db = make_db(tmp_path, [tx("a", "2024-01-01", 10), tx("a", "2024-01-31", 20), tx("a", "2024-02-20", 30), tx("a", "2024-03-01", 40)])
    row = by_customer(loyalty(db)).loc["a"]
    assert row["n_orders"] == 4 and row["n_purchases"] == 4 and bool(row["returned"])
    assert row["days_to_second_purchase"] == 30
    assert row["mean_interpurchase_days"] == pytest.approx(20, abs=EXACT)
    assert row["interpurchase_slope"] == pytest.approx(-10, abs=EXACT)
    assert row["interpurchase_trend"] == "shortening"
    assert row["spend_slope"] == pytest.approx(10, abs=EXACT)
    assert row["spend_trend"] == "rising"
    assert row["revenue"] == pytest.approx(100, abs=EXACT)


def test_lengthening_gaps_and_falling_spend(tmp_path):
    # gaps 10, 20, 30 (slope +10); spend 30, 20, 10, 10: slope over k=1..4 by least squares:
    # k_mean 2.5, v_mean 17.5, Sxy = (-1.5)(12.5)+(-0.5)(2.5)+(0.5)(-7.5)+(1.5)(-7.5) = -35, Sxx = 5 -> -7.
    db = make_db(tmp_path, [tx("b", "2024-01-01", 30), tx("b", "2024-01-11", 20), tx("b", "2024-01-31", 10), tx("b", "2024-03-01", 10)])
    row = by_customer(loyalty(db)).loc["b"]
    assert row["interpurchase_slope"] == pytest.approx(10, abs=EXACT)
    assert row["interpurchase_trend"] == "lengthening"
    assert row["spend_slope"] == pytest.approx(-7, abs=EXACT)
    assert row["spend_trend"] == "falling"


def test_steady_threshold_is_inclusive_for_a_trend(tmp_path):
    # gaps 30, 20, 10: |slope| / mean gap = 10 / 20 = 0.5 exactly.
    db = make_db(tmp_path, [tx("a", "2024-01-01", 10), tx("a", "2024-01-31", 10), tx("a", "2024-02-20", 10), tx("a", "2024-03-01", 10)])
    at = by_customer(loyalty(db, config={"loyalty": {"steady_relative_slope": 0.5}})).loc["a"]
    above = by_customer(loyalty(db, config={"loyalty": {"steady_relative_slope": 0.5000001}})).loc["a"]
    assert at["interpurchase_trend"] == "shortening"
    assert above["interpurchase_trend"] == "steady"
    assert at["spend_slope"] == pytest.approx(0, abs=EXACT) and at["spend_trend"] == "steady"


def test_minimum_gaps_for_a_trend(tmp_path):
    db = make_db(tmp_path, [tx("a", "2024-01-01", 10), tx("a", "2024-01-31", 20), tx("a", "2024-02-20", 30), tx("a", "2024-03-01", 40)])
    row = by_customer(loyalty(db, config={"loyalty": {"trend_min_gaps": 4, "spend_trend_min_purchases": 5}})).loc["a"]
    assert row["interpurchase_trend"] == "insufficient" and row["spend_trend"] == "insufficient"
    assert row["interpurchase_slope"] == pytest.approx(-10, abs=EXACT)  # the slope is still reported
    row = by_customer(loyalty(db, config={"loyalty": {"trend_min_gaps": 3, "spend_trend_min_purchases": 4}})).loc["a"]
    assert row["interpurchase_trend"] == "shortening" and row["spend_trend"] == "rising"


def test_single_order_and_same_day_orders(tmp_path):
    db = make_db(tmp_path, [
        tx("one", "2024-01-01", 25),
        tx("sameday", "2024-01-05", 10), tx("sameday", "2024-01-05", 15),  # one purchase of 25
        tx("mixed", "2024-01-01", 5), tx("mixed", "2024-01-01", 7), tx("mixed", "2024-01-08", 30),
    ])
    f = by_customer(loyalty(db))
    one = f.loc["one"]
    assert not one["returned"] and one["n_orders"] == 1 and one["n_purchases"] == 1
    assert np.isnan(one["days_to_second_purchase"]) and np.isnan(one["mean_interpurchase_days"])
    assert np.isnan(one["interpurchase_slope"]) and np.isnan(one["spend_slope"])
    assert one["interpurchase_trend"] == "insufficient" and one["spend_trend"] == "insufficient"
    same = f.loc["sameday"]
    assert not same["returned"] and same["n_orders"] == 2 and same["n_purchases"] == 1
    mixed = f.loc["mixed"]
    assert mixed["returned"] and mixed["n_orders"] == 3 and mixed["n_purchases"] == 2
    assert mixed["days_to_second_purchase"] == 7
    # purchases (12, 30) on k = 1, 2: slope 18 per purchase
    assert mixed["spend_slope"] == pytest.approx(18, abs=EXACT)


def test_refunds_are_not_orders_and_as_of_is_inclusive(tmp_path):
    db = make_db(tmp_path, [
        tx("a", "2024-01-01", 50), tx("a", "2024-01-10", -20), tx("a", "2024-01-31", 40), tx("a", "2024-02-01", 99),
        tx("r", "2024-01-05", -10),  # a refund only: not a customer of loyalty
    ])
    f = by_customer(loyalty(db, as_of="2024-01-31"))
    assert list(f.index) == ["a"]
    a = f.loc["a"]
    assert a["n_orders"] == 2 and a["revenue"] == pytest.approx(90, abs=EXACT)
    assert a["days_to_second_purchase"] == 30
    before = by_customer(loyalty(db, as_of="2024-01-30")).loc["a"]
    assert before["n_orders"] == 1 and not before["returned"]
    with pytest.raises(NoDataError):
        loyalty(db, as_of="2023-12-31")


# --- discounts ----------------------------------------------------------------------------------

def test_discount_shares_by_hand(tmp_path):
    db = make_db(tmp_path, [
        # d1: 4 orders, discounts on 2 (amounts 20 and 40) of revenue 10+20+30+40 = 100
        tx("d1", "2024-01-01", 10, discount=0.0), tx("d1", "2024-01-02", 20, discount=5.0),
        tx("d1", "2024-01-03", 30, discount=0.0), tx("d1", "2024-01-04", 40, discount=1.0),
        # d2: 3 orders, 1 discounted (amount 60) of 100 -> order share 1/3, revenue share 0.6
        tx("d2", "2024-01-01", 20, discount=0.0), tx("d2", "2024-01-02", 60, discount=2.0), tx("d2", "2024-01-03", 20, discount=0.0),
        # full price: discounts known, all zero
        tx("fp", "2024-01-01", 20, discount=0.0), tx("fp", "2024-01-05", 20, discount=0.0),
        # unknown: no discount value on any order
        tx("nd", "2024-01-01", 20),
        # partly known: the unknown order is left out of both shares
        tx("pk", "2024-01-01", 10, discount=1.0), tx("pk", "2024-01-02", 90),
    ])
    f = by_customer(loyalty(db))
    assert f.loc["d1", "discount_order_share"] == pytest.approx(0.5, abs=EXACT)
    assert f.loc["d1", "discount_revenue_share"] == pytest.approx(0.6, abs=EXACT)
    assert bool(f.loc["d1", "discount_dependent"])  # 0.5 >= 0.5: the boundary counts
    assert f.loc["d2", "discount_order_share"] == pytest.approx(1 / 3, abs=EXACT)
    assert f.loc["d2", "discount_revenue_share"] == pytest.approx(0.6, abs=EXACT)
    assert not bool(f.loc["d2", "discount_dependent"]) and not bool(f.loc["d2", "full_price_buyer"])
    assert f.loc["fp", "discount_order_share"] == 0 and bool(f.loc["fp", "full_price_buyer"])
    assert not bool(f.loc["fp", "discount_dependent"])
    assert pd.isna(f.loc["nd", "discount_order_share"]) and pd.isna(f.loc["nd", "discount_revenue_share"])
    assert pd.isna(f.loc["nd", "discount_dependent"]) and pd.isna(f.loc["nd", "full_price_buyer"])
    assert f.loc["pk", "discount_order_share"] == 1 and f.loc["pk", "discount_revenue_share"] == 1
    # on revenue: d2 has 0.6 >= 0.6 (boundary), d1 0.6 too; just above the boundary neither
    rev = by_customer(loyalty(db, config={"loyalty": {"discount_basis": "revenue", "discount_dependent_share": 0.6}}))
    assert bool(rev.loc["d1", "discount_dependent"]) and bool(rev.loc["d2", "discount_dependent"])
    higher = by_customer(loyalty(db, config={"loyalty": {"discount_basis": "revenue", "discount_dependent_share": 0.61}}))
    assert not bool(higher.loc["d1", "discount_dependent"]) and not bool(higher.loc["d2", "discount_dependent"])
    ov = loyalty_overview(db)
    # with discount data: d1, d2, fp, pk (4); dependent d1 and pk; full price fp
    assert ov["with_discount_data"] == 4
    assert ov["discount_dependent_share"] == pytest.approx(0.5) and ov["full_price_share"] == pytest.approx(0.25)
    groups = ov["discount_groups"]
    assert groups["discount_dependent"]["customers"] == 2
    assert groups["discount_dependent"]["mean_revenue"] == pytest.approx((100 + 100) / 2)
    assert groups["discount_dependent"]["mean_orders"] == pytest.approx((4 + 2) / 2)
    assert groups["full_price"] == {"customers": 1, "mean_revenue": 40.0, "mean_orders": 2.0, "return_rate": 1.0}
    assert groups["occasional_discount"]["customers"] == 1


def test_discount_column_never_given_is_null(tmp_path):
    db = make_db(tmp_path, [tx("a", "2024-01-01", 10), tx("a", "2024-01-05", 10)])
    f = loyalty(db)
    assert f["discount_order_share"].isna().all() and f["discount_dependent"].isna().all()
    ov = loyalty_overview(db)
    assert ov["with_discount_data"] == 0 and ov["discount_dependent_share"] is None
    assert "discount use" not in set(loyalty_mix(f)["measure"])


# --- categories ---------------------------------------------------------------------------------

def test_categories(tmp_path):
    db = make_db(tmp_path, [
        tx("a", "2024-01-01", 30, category="music"), tx("a", "2024-01-02", 60, category="books"),
        tx("a", "2024-01-03", 20, category="music"), tx("a", "2024-01-04", 100),  # uncategorised: left out
        tx("t", "2024-01-01", 10, category="b"), tx("t", "2024-01-02", 5, category="a"), tx("t", "2024-01-03", 5, category="a"),
        tx("u", "2024-01-01", 10, category="z"), tx("u", "2024-01-01", 10, category="y"),
    ])
    f = by_customer(loyalty(db))
    assert f.loc["a", "top_category"] == "books" and f.loc["a", "top_category_share"] == pytest.approx(60 / 110, abs=EXACT)
    assert f.loc["t", "top_category"] == "a"  # revenue tie 10 vs 10: more orders wins
    assert f.loc["u", "top_category"] == "y"  # full tie: alphabetical
    shares = category_shares(db)
    a = shares[shares["customer_id"] == "a"].set_index("category")
    assert a.loc["music", "revenue"] == 50 and a.loc["music", "share"] == pytest.approx(50 / 110, abs=EXACT)
    agg = category_revenue(shares).set_index("category")
    # total categorised revenue 110 + 20 + 20 = 150
    assert agg.loc["books", "revenue"] == 60 and agg.loc["books", "share"] == pytest.approx(60 / 150, abs=EXACT)
    assert agg.loc["a", "customers"] == 1 and agg["share"].sum() == pytest.approx(1.0)


# --- overview, rules, SQL -------------------------------------------------------------------------

def test_overview_figures(tmp_path):
    db = make_db(tmp_path, [
        tx("a", "2024-01-01", 10), tx("a", "2024-01-31", 20), tx("a", "2024-02-20", 30), tx("a", "2024-03-01", 40),
        tx("b", "2024-01-01", 30), tx("b", "2024-01-11", 20), tx("b", "2024-01-31", 10), tx("b", "2024-03-01", 10),
        tx("c", "2024-01-01", 5), tx("c", "2024-01-21", 5),
        tx("d", "2024-02-01", 5),
    ])
    ov = loyalty_overview(db)
    assert ov["customers"] == 4 and ov["returned"] == 3 and ov["return_rate"] == pytest.approx(0.75)
    assert ov["days_to_second_purchase_median"] == 20 and ov["days_to_second_purchase_mean"] == pytest.approx(20)
    assert ov["with_interpurchase_trend"] == 2
    assert ov["shortening_share"] == pytest.approx(0.5) and ov["lengthening_share"] == pytest.approx(0.5)
    assert ov["rising_share"] == pytest.approx(0.5) and ov["falling_share"] == pytest.approx(0.5)
    assert ov["categories"] == []
    mix = loyalty_mix(loyalty(db)).set_index(["measure", "category"])["customers"]
    assert mix[("came back", "returned")] == 3 and mix[("came back", "one purchase")] == 1


def test_bad_rules_name_the_section_and_key(tmp_path):
    db = make_db(tmp_path, [tx("a", "2024-01-01", 10)])
    with pytest.raises(InputError, match=r"\[loyalty\] trend_min_gaps"):
        loyalty(db, config={"loyalty": {"trend_min_gaps": 1}})
    with pytest.raises(InputError, match=r"\[loyalty\] discount_share"):
        loyalty(db, config={"loyalty": {"discount_share": 0.3}})
    with pytest.raises(InputError, match="as_of"):
        loyalty(db, as_of="last tuesday")


def test_sql_is_portable():
    from datetime import date

    duck = loyalty_sql(date(2024, 1, 31))
    spark = loyalty_sql(date(2024, 1, 31), dialect=SPARK)
    assert "LAG(day)" in duck and "regr_" not in duck
    assert "datediff(day, prev_day)" in spark and "date_diff" not in spark


@pytest.mark.parametrize("dialect", ["duckdb", "spark"])
def test_sql_snapshot(dialect):
    """If this fails after an intended change, regenerate tests/snapshots/loyalty_*.sql and review the diff."""
    from datetime import date

    from patron.data.dialect import DIALECTS

    snapshot = Path(__file__).parent / "snapshots" / f"loyalty_{dialect}.sql"
    assert loyalty_sql(date(1997, 9, 30), dialect=DIALECTS[dialect]) + "\n" == snapshot.read_text()


def test_slopes_match_numpy_least_squares(tmp_path):
    """Independent computation: numpy.polyfit on random histories of 2 to 8 purchase days."""
    rng = np.random.default_rng(7)
    rows, truth = [], {}
    for i in range(60):
        n = int(rng.integers(2, 9))
        days = np.cumsum(rng.integers(1, 60, size=n))
        values = rng.integers(1, 200, size=n).astype(float)
        cid = f"c{i:02d}"
        for day, v in zip(days, values, strict=True):
            rows.append(tx(cid, str((pd.Timestamp("2023-01-01") + pd.Timedelta(days=int(day))).date()), v))
        gaps = np.diff(days).astype(float)
        truth[cid] = (np.polyfit(np.arange(1, n), gaps, 1)[0] if n > 2 else np.nan, np.polyfit(np.arange(1, n + 1), values, 1)[0], gaps.mean())
    f = by_customer(loyalty(make_db(tmp_path, rows)))
    got = f.loc[list(truth)]
    want = pd.DataFrame(truth, index=["ip", "sp", "mean"]).T
    np.testing.assert_allclose(got["interpurchase_slope"].to_numpy(dtype=float), want["ip"].to_numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(got["spend_slope"].to_numpy(dtype=float), want["sp"].to_numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(got["mean_interpurchase_days"].to_numpy(dtype=float), want["mean"].to_numpy(), rtol=1e-12)


# --- CDNOW --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cdnow_db(tmp_path_factory) -> str:
    db = str(tmp_path_factory.mktemp("cdnow") / "cdnow.duckdb")
    ingest(data_path("CDNOW_sample.txt"), kind="transactions", db=db, columns=CDNOW_SAMPLE_COLUMNS, mapping={"occurred_at": "date"}, date_format="%Y%m%d")
    return db


def test_cdnow_agrees_with_the_summary(cdnow_db):
    f = by_customer(loyalty(cdnow_db, as_of="1997-09-30"))
    s = summary(cdnow_db, period="D", end="1997-09-30").set_index("customer_id").loc[f.index]
    assert len(f) == 2357
    np.testing.assert_array_equal(f["returned"].to_numpy(dtype=bool), (s["frequency"] > 0).to_numpy())
    np.testing.assert_array_equal(f["n_orders"].to_numpy(), s["n_orders"].to_numpy())
    np.testing.assert_array_equal(f["n_purchases"].to_numpy(), s["frequency"].to_numpy() + 1)
    # mean gap in days = recency (days) / frequency for repeat buyers
    rep = s["frequency"] > 0
    np.testing.assert_allclose(f.loc[rep, "mean_interpurchase_days"].to_numpy(dtype=float), (s.loc[rep, "recency"] / s.loc[rep, "frequency"]).to_numpy(), rtol=1e-12)
    assert (f.loc[rep, "days_to_second_purchase"] >= 1).all() and f.loc[~rep, "days_to_second_purchase"].isna().all()
    assert set(f["interpurchase_trend"]) <= {"shortening", "lengthening", "steady", "insufficient"}
    # fewer than 3 gaps means fewer than 4 purchase days
    assert ((f["interpurchase_trend"] == "insufficient") == (s["frequency"] < 3)).all()
    ov = loyalty_overview(cdnow_db, as_of="1997-09-30")
    assert ov["return_rate"] == pytest.approx(float((s["frequency"] > 0).mean()), abs=EXACT)


# --- CLI ----------------------------------------------------------------------------------------

def test_cli_commands(tmp_path, capsys):
    import json

    from patron.cli import main

    db = make_db(tmp_path, [
        tx("a", "2024-01-01", 10, discount=0.0, category="x"), tx("a", "2024-01-31", 20, discount=1.0, category="x"),
        tx("a", "2024-02-20", 30, discount=0.0, category="y"), tx("a", "2024-03-01", 40, discount=2.0, category="y"),
        tx("b", "2024-02-01", 5, discount=0.0, category="x"),
    ])
    ingest(pd.DataFrame([("a", "2024-01-10", 9, "nps"), ("b", "2024-02-02", 3, "nps")], columns=["customer_id", "occurred_at", "score", "kind"]), kind="feedback", db=db)
    out_file = tmp_path / "loyalty.csv"
    assert main(["loyalty", "--db", db, "--json", "--out", str(out_file)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["customers"] == 2 and data["return_rate"] == 0.5 and data["discount_dependent_share"] == 0.5
    assert [c["category"] for c in data["categories"]] == ["y", "x"]
    assert [r["band"] for r in data["satisfaction"]] == ["detractor", "promoter"]
    assert len(pd.read_csv(out_file)) == 2
    assert main(["loyalty", "--db", db]) == 0
    text = capsys.readouterr().out
    assert "50.0%" in text and "Satisfaction vs behaviour" in text
    assert main(["cohorts", "--db", db, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["periods"] == [0, 1, 2]
    assert data["cohorts"][0] == {"cohort": "2024-01-01", "customers": 1, "values": [1.0, 1.0, 1.0]}
    assert data["cohorts"][1]["values"] == [1.0, 0.0, None]
    assert main(["cohorts", "--db", db]) == 0
    assert "2024-01" in capsys.readouterr().out
    assert main(["cohorts", "--db", db, "--freq", "Y"]) == 2
    assert "--freq" in capsys.readouterr().err


def test_docs_name_every_rule_and_column():
    from patron.relationship.cohorts import COHORT_COLUMNS
    from patron.relationship.loyalty import LOYALTY_COLUMNS, LoyaltyRules
    from patron.relationship.profitability import PROFITABILITY_COLUMNS, CostRules
    from patron.relationship.satisfaction import SATISFACTION_COLUMNS

    text = (Path(__file__).resolve().parents[1] / "docs" / "loyalty.md").read_text()
    for model in (LoyaltyRules, CostRules):
        for key in model.model_fields:
            assert f"{key} =" in text or f"[costs.{key}]" in text, key
    for col in (*LOYALTY_COLUMNS, *COHORT_COLUMNS, *PROFITABILITY_COLUMNS, *SATISFACTION_COLUMNS):
        assert col in text, col
    for command in ("patron loyalty", "patron cohorts", "patron profitability"):
        assert command in text


# --- property: the SQL against a plain-Python reimplementation -------------------------------------

def _reference(orders: pd.DataFrame, rules: dict) -> pd.DataFrame:
    """Independent per-customer loyalty in plain Python/NumPy (no SQL)."""
    out = {}
    for cid, g in orders[orders["amount"] >= 0].groupby("customer_id"):
        days = g.groupby(g["occurred_at"].dt.normalize())["amount"].sum().sort_index()
        gaps = np.diff(days.index.values).astype("timedelta64[D]").astype(float)
        values = days.to_numpy(dtype=float)

        def trend(y, x, min_n, down, up):
            if len(y) < min_n:
                return "insufficient"
            slope = np.polyfit(x, y, 1)[0]
            size = rules["steady_relative_slope"] * y.mean()
            if abs(abs(slope) - size) < BOUNDARY or abs(slope) < BOUNDARY:
                return "boundary"  # exactly at a threshold: float rounding decides, not compared
            if slope < 0 and -slope >= size:
                return down
            return up if slope > 0 and slope >= size else "steady"

        known = g["discount"].notna()
        share = (g.loc[known, "discount"] > 0).mean() if known.any() else np.nan
        out[cid] = {
            "n_orders": len(g), "n_purchases": len(days), "returned": len(days) > 1,
            "days_to_second_purchase": gaps[0] if len(gaps) else np.nan,
            "interpurchase_trend": trend(gaps, np.arange(1, len(gaps) + 1), rules["trend_min_gaps"], "shortening", "lengthening"),
            "spend_trend": trend(values, np.arange(1, len(values) + 1), rules["spend_trend_min_purchases"], "falling", "rising"),
            "discount_order_share": share,
        }
    return pd.DataFrame(out).T


@functools.cache
def _connection():
    """One in-memory DuckDB connection (one thread) for all examples of the property test."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads = 1")
    return con


BOUNDARY = 1e-7
"""Slopes this close to a trend threshold are left uncompared (float rounding differs)."""

ORDER = st.tuples(st.sampled_from("abc"), st.integers(0, 120), st.sampled_from([-5.0, 0.0, 3.0, 10.0, 25.0, 40.0]),
                  st.sampled_from([None, 0.0, 2.0]))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(ORDER, min_size=1, max_size=25), steady=st.sampled_from([0.0, 0.1, 0.3]), min_gaps=st.integers(2, 4))
def test_sql_matches_reference_implementation(rows, steady, min_gaps):
    from patron.relationship.loyalty import LoyaltyRules

    frame = pd.DataFrame(rows, columns=["customer_id", "day", "amount", "discount"])
    frame["occurred_at"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(frame["day"], unit="D")
    frame["margin"], frame["category"] = np.nan, None
    frame["discount"] = frame["discount"].astype(float)
    rules = {"steady_relative_slope": steady, "trend_min_gaps": min_gaps, "spend_trend_min_purchases": min_gaps + 1}
    want = _reference(frame, rules)
    con = _connection()
    con.register("tx_in", frame)
    got = con.sql(loyalty_sql(pd.Timestamp("2024-12-31").date(), LoyaltyRules(**rules), table="tx_in")).df().set_index("customer_id")
    assert sorted(got.index) == sorted(want.index)
    if want.empty:
        return
    got = got.loc[want.index]
    for col in ("n_orders", "n_purchases", "returned"):
        assert list(got[col]) == list(want[col]), col
    for col in ("interpurchase_trend", "spend_trend"):
        clear = want[col] != "boundary"
        assert list(got.loc[clear, col]) == list(want.loc[clear, col]), col
    np.testing.assert_allclose(got["days_to_second_purchase"].to_numpy(dtype=float), want["days_to_second_purchase"].to_numpy(dtype=float))
    np.testing.assert_allclose(got["discount_order_share"].to_numpy(dtype=float), want["discount_order_share"].to_numpy(dtype=float))


def test_report_aggregates_are_the_pandas_ones(tmp_path):
    """loyalty_report (the report's aggregates, in SQL) against loyalty_mix, summarize_loyalty and
    category_revenue of the per-customer frames, on random orders with discounts and categories."""
    from patron.relationship.loyalty import (
        category_revenue,
        loyalty_mix,
        loyalty_report,
        summarize_loyalty,
    )

    rng = np.random.default_rng(7)
    n = 600
    rows = [tx(f"c{rng.integers(0, 150)}", str(np.datetime64("2024-01-01") + rng.integers(0, 300)), float(rng.choice([0.0, 5.0, 12.5, 40.0])),
               discount=None if rng.random() < 0.3 else float(rng.choice([0.0, 0.0, 2.0])),
               category=None if rng.random() < 0.2 else str(rng.choice(["books", "music", "film"])))
            for _ in range(n)]
    db = make_db(tmp_path, rows)
    for rules in (None, {"loyalty": {"discount_basis": "revenue", "trend_min_gaps": 2}}):
        mix, figures, categories = loyalty_report(db, as_of="2024-09-30", config=rules)
        frame = loyalty(db, as_of="2024-09-30", config=rules)
        pd.testing.assert_frame_equal(mix, loyalty_mix(frame))
        expected = summarize_loyalty(frame)
        assert {k: figures[k] for k in ("customers", "returned")} == {k: expected[k] for k in ("customers", "returned")}
        assert figures["return_rate"] == pytest.approx(expected["return_rate"], abs=EXACT)
        assert figures["days_to_second_purchase_median"] == expected["days_to_second_purchase_median"]
        reference = category_revenue(category_shares(db, as_of="2024-09-30"))
        assert list(categories["category"]) == list(reference["category"]) and len(reference) == 3
        assert np.allclose(categories["revenue"], reference["revenue"]) and np.allclose(categories["share"], reference["share"])
        assert list(categories["customers"]) == list(reference["customers"])
