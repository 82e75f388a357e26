"""The NumPy RFM scores and value tiers the profiles use (:func:`patron.relationship.rfm.rfm_arrays`,
:func:`patron.relationship.tiers.tier_indices`) against an independent implementation: the SQL of
:func:`patron.relationship.rfm.rfm_sql` and :func:`patron.relationship.tiers.tiers_sql` in DuckDB
(its own NTILE and RANK), on data with many ties, NULL CLVs and fewer buyers than bins."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

from patron.relationship.rfm import RfmRules, rfm_arrays, rfm_sql
from patron.relationship.tiers import TierRules, tier_indices, tiers_sql

AS_OF = date(2024, 6, 30)


def _buyers(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    clv = rng.choice([0.0, 5.0, 12.5, 40.0, 100.0], n) + np.where(rng.random(n) < 0.5, rng.gamma(1.0, 50.0, n), 0.0)
    clv[rng.random(n) < 0.05] = np.nan  # no CLV: NULL in SQL
    frame = pd.DataFrame({
        "customer_id": [f"c{i:05d}" for i in rng.permutation(n)],  # ids not in row order: the SQL sorts by them
        "as_of": pd.Timestamp(AS_OF),
        "last_purchase": [pd.Timestamp(AS_OF - timedelta(days=int(d))) + pd.Timedelta(hours=int(h)) for d, h in zip(rng.integers(0, 40, n), rng.integers(0, 24, n), strict=True)],
        "recency": rng.integers(0, 30, n).astype(float),
        "n_orders": rng.integers(1, 5, n),
        "total_spend": rng.choice([10.0, 20.0, 35.5], n) + np.where(rng.random(n) < 0.3, rng.random(n), 0.0),
        "clv": clv,
    })
    return frame.sort_values("customer_id", ignore_index=True)  # the profiles' buyers come sorted by customer_id


def _sql(frame: pd.DataFrame, query: str) -> pd.DataFrame:
    con = duckdb.connect()
    con.register("buyers", frame)
    return con.execute(f"SELECT * FROM ({query}) ORDER BY customer_id").df()


@pytest.mark.parametrize("n", [3, 7, 500, 4001])
@pytest.mark.parametrize("rules", [RfmRules(), RfmRules(ties="together"), RfmRules(bins=10), RfmRules(recency_days_since_last=False, bins=4)])
def test_rfm_arrays_equal_the_sql_scores(n, rules):
    frame = _buyers(n, seed=n)
    days = (pd.Timestamp(AS_OF) - frame["last_purchase"].dt.normalize()).dt.days.to_numpy(dtype=float)
    got = rfm_arrays(days, frame["recency"].to_numpy(float), frame["n_orders"].to_numpy(float), frame["total_spend"].to_numpy(float), rules)
    want = _sql(frame, rfm_sql("buyers", rules))
    for c in ("recency_score", "frequency_score", "monetary_score"):
        assert got[c].tolist() == want[c].tolist(), c


@pytest.mark.parametrize("n", [3, 9, 500, 4001])
@pytest.mark.parametrize("rules", [TierRules(), TierRules(shares=[0.05, 0.2, 0.3]),
                                   TierRules(method="threshold", thresholds=[100.0, 40.0, 12.5])])
def test_tier_indices_equal_the_sql_tiers(n, rules):
    frame = _buyers(n, seed=100 + n)
    got = [rules.names[i] for i in tier_indices(frame["clv"].to_numpy(float), rules)]
    assert got == _sql(frame, tiers_sql("buyers", rules))["value_tier"].tolist()
