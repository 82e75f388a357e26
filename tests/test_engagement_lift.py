"""Does engagement predict purchases? The holdout lift by engagement band on simulations with a
planted truth (BG/NBD purchases, CDNOW parameters, 4,000 customers):

* correlated: a customer's daily engagement probability rises with the rank of their purchase
  rate, and a customer who dropped out (after their last purchase, when the simulation says they
  are no longer alive) stops interacting: the lift must be found (top quartile above 1, bottom
  below, increasing across quartiles);
* independent: the probability is an independent draw and engagement goes on after dropout: no
  quartile's interval may exclude 1.

The small band ``none`` (no active day in 84 days) is left out of the null check: a few dozen
customers, where the normal interval of a ratio is too rough to test."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

import patron
from patron.relationship.engagement import engagement_lift, planted_activity, simulate_interactions
from patron.value.intervals import ratio_interval
from patron.value.simulate import simulate_transactions

START = date(2024, 1, 1)
OBSERVATION_DAYS = 546
CALIBRATION_END = START + timedelta(days=364 - 1)
HOLDOUT_END = START + timedelta(days=OBSERVATION_DAYS - 1)
N_CUSTOMERS = 4000


def _db(tmp_path, correlated: bool) -> str:
    tx, truth = simulate_transactions(N_CUSTOMERS, seed=20, start=START.isoformat(), observation_days=OBSERVATION_DAYS, truth=True)
    lam = truth.column("lambda").to_numpy()
    ids = truth.column("customer_id").to_pylist()
    window = 84  # the score's 12 weeks up to the calibration end
    first = CALIBRATION_END - timedelta(days=window - 1)
    last = None
    if correlated:  # dead customers dropped out right after their last purchase
        frame = tx.to_pandas()
        last_purchase = frame.groupby("customer_id")["occurred_at"].max().reindex(ids)
        alive = truth.column("alive").to_numpy()
        last = last_purchase.where(~alive, pd.NaT).to_numpy()
    inter = simulate_interactions(ids, planted_activity(lam, correlated=correlated, seed=21), start=first, days=window, seed=22,
                                  last_day=last)
    db = str(tmp_path / f"lift_{correlated}.duckdb")
    now = pd.Timestamp("2026-01-01").to_pydatetime()
    patron.ingest(tx, kind="transactions", db=db, now=now)
    patron.ingest(inter, kind="interactions", db=db, now=now)
    return db


@pytest.mark.slow
def test_correlated_engagement_is_found(tmp_path):
    result = engagement_lift(_db(tmp_path, True), calibration_end=CALIBRATION_END, holdout_end=HOLDOUT_END)
    bands = result.bands.set_index("band")
    assert list(bands.index) == ["none", "q1", "q2", "q3", "q4"]
    assert int(bands["customers"].sum()) == N_CUSTOMERS
    assert bands.loc["q4", "lift_lower"] > 1.0, bands
    assert bands.loc["q1", "lift_upper"] < 1.0, bands
    assert bands.loc[["q1", "q2", "q3", "q4"], "lift"].is_monotonic_increasing, bands


@pytest.mark.slow
def test_independent_engagement_is_not_found(tmp_path):
    result = engagement_lift(_db(tmp_path, False), calibration_end=CALIBRATION_END, holdout_end=HOLDOUT_END)
    bands = result.bands.set_index("band").loc[["q1", "q2", "q3", "q4"]]
    assert int(result.bands["customers"].sum()) == N_CUSTOMERS
    assert ((bands["lift_lower"] < 1.0) & (bands["lift_upper"] > 1.0)).all(), bands


def test_ratio_interval_against_a_direct_computation():
    rng = np.random.default_rng(5)
    y, x = rng.poisson(2.0, 500).astype(float), rng.gamma(2.0, 1.0, 500)
    r, lo, hi = ratio_interval(y.sum(), x.sum(), (y * y).sum(), (x * y).sum(), (x * x).sum(), len(y))
    ratio = y.sum() / x.sum()
    se = np.sqrt(len(y) / (len(y) - 1) * ((y - ratio * x) ** 2).sum()) / x.sum()
    assert r == pytest.approx(ratio) and lo == pytest.approx(ratio - 1.959964 * se) and hi == pytest.approx(ratio + 1.959964 * se)
    assert np.isnan(ratio_interval(1.0, 0.0, 1.0, 0.0, 0.0, 5)[0]) and np.isnan(ratio_interval(1.0, 1.0, 1.0, 1.0, 1.0, 1)[1])
    zero = ratio_interval(0.0, 10.0, 0.0, 0.0, 30.0, 50)
    assert (zero[0], zero[1]) == (0.0, 0.0) and zero[2] == pytest.approx(3.6889 / 10.0, rel=1e-4)
