"""The headline figures of a customer base (:func:`patron.value.overview.overview`): a hand-made
base with known figures, and, on generated summaries, the same figures from a pyarrow Table (what
``patron summary`` passes, without a pandas frame) as from the pandas reference below (the
figures as pandas computes them, which ``patron summary`` printed before)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from patron.value.overview import overview

QUANTILES = {"p25": 0.25, "median": 0.5, "p75": 0.75, "p95": 0.95, "max": 1.0}


def reference(summary: pd.DataFrame) -> dict[str, Any]:
    """The figures computed with pandas' own methods (an independent implementation)."""
    n = len(summary)
    repeat = summary[summary["frequency"] > 0]
    revenue = float(summary["total_spend"].sum())

    def q(series: pd.Series) -> dict[str, float]:
        if series.empty:
            return dict.fromkeys(QUANTILES, 0.0)
        return {k: round(float(series.quantile(v)), 4) for k, v in QUANTILES.items()}

    return {
        "customers": n, "repeat_buyers": len(repeat), "repeat_share": round(len(repeat) / n, 4) if n else 0.0,
        "orders": int(summary["n_orders"].sum()), "revenue": round(revenue, 2),
        "revenue_per_customer": round(revenue / n, 2) if n else 0.0,
        "frequency_mean": round(float(summary["frequency"].mean()), 4), "frequency_quantiles": q(summary["frequency"]),
        "recency_mean": round(float(summary["recency"].mean()), 4), "T_mean": round(float(summary["T"].mean()), 4),
        "monetary_value_quantiles": q(repeat["monetary_value"]),
        "first_purchase": str(summary["first_purchase"].min()), "last_purchase": str(summary["last_purchase"].max()),
    }


def test_a_hand_made_base() -> None:
    """Three customers: a and c bought again, b did not."""
    table = pa.table({
        "customer_id": ["a", "b", "c"],
        "frequency": pa.array([2, 0, 1], pa.int64()),
        "recency": [3.0, 0.0, 1.0],
        "T": [4.0, 2.0, 6.0],
        "monetary_value": [10.0, 0.0, 30.0],
        "n_orders": pa.array([3, 1, 2], pa.int64()),
        "total_spend": [35.0, 5.0, 40.0],
        "first_purchase": pa.array([datetime(2024, 1, 2), datetime(2024, 1, 1, 12, 30), datetime(2024, 1, 3)], pa.timestamp("us")),
        "last_purchase": pa.array([datetime(2024, 2, 1), datetime(2024, 1, 1, 12, 30), datetime(2024, 3, 1, 0, 0, 0, 500)], pa.timestamp("us")),
    })
    for given_as in (table, table.to_pandas()):
        f = overview(given_as).to_dict()
        assert f["customers"] == 3 and f["repeat_buyers"] == 2 and f["repeat_share"] == 0.6667
        assert f["orders"] == 6 and f["revenue"] == 80.0 and f["revenue_per_customer"] == 26.67
        assert f["frequency_mean"] == 1.0 and f["recency_mean"] == 1.3333 and f["T_mean"] == 4.0
        assert f["frequency_quantiles"] == {"p25": 0.5, "median": 1.0, "p75": 1.5, "p95": 1.9, "max": 2.0}
        # repeat buyers' monetary values 10 and 30: linear interpolation
        assert f["monetary_value_quantiles"] == {"p25": 15.0, "median": 20.0, "p75": 25.0, "p95": 29.0, "max": 30.0}
        assert f["first_purchase"] == "2024-01-01 12:30:00"
        assert f["last_purchase"] == "2024-03-01 00:00:00.000500"


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def summaries(draw: st.DrawFn) -> pa.Table:
    n = draw(st.integers(min_value=1, max_value=40))
    frequency = draw(st.lists(st.integers(min_value=0, max_value=30), min_size=n, max_size=n))
    floats = {c: draw(st.lists(finite, min_size=n, max_size=n)) for c in ("recency", "T", "monetary_value", "total_spend")}
    micros = draw(st.lists(st.integers(min_value=0, max_value=10**15), min_size=2 * n, max_size=2 * n))
    start = datetime(2000, 1, 1)
    stamps = [start + timedelta(microseconds=m) for m in micros]
    return pa.table({
        "frequency": pa.array(frequency, pa.int64()), **{c: pa.array(v, pa.float64()) for c, v in floats.items()},
        "n_orders": pa.array([f + 1 for f in frequency], pa.int64()),
        "first_purchase": pa.array(stamps[:n], pa.timestamp("us")), "last_purchase": pa.array(stamps[n:], pa.timestamp("us")),
    })


@settings(max_examples=200, deadline=None)
@given(summaries())
def test_a_table_gives_the_figures_pandas_gives(table: pa.Table) -> None:
    expected = reference(table.to_pandas())
    assert overview(table).to_dict() == expected
    assert overview(table.to_pandas()).to_dict() == expected


def test_a_large_base_gives_the_figures_pandas_gives() -> None:
    """A million customers: sums and means of many values (pairwise summation in both)."""
    rng = np.random.default_rng(7)
    n = 1_000_000
    frequency = rng.poisson(3, n)
    table = pa.table({
        "frequency": frequency, "recency": rng.gamma(2, 10, n), "T": rng.gamma(3, 20, n),
        "monetary_value": np.where(frequency > 0, rng.gamma(5, 8, n), 0.0), "n_orders": frequency + 1,
        "total_spend": rng.gamma(2, 100, n),
        "first_purchase": pa.array(rng.integers(0, 10**14, n) + 1_600_000_000_000_000, pa.timestamp("us")),
        "last_purchase": pa.array(rng.integers(0, 10**14, n) + 1_700_000_000_000_000, pa.timestamp("us")),
    })
    assert overview(table).to_dict() == reference(table.to_pandas())
