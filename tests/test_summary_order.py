"""The summary keeps data as given (issue 17): customer ids keep their input dtype, and rows are
sorted by customer id whatever the number of threads (property-tested)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import patron
from patron.value import summary_arrays

THREADS = (1, 2, 4)

rows = st.lists(
    st.tuples(
        st.integers(min_value=-50, max_value=10**12),  # customer id
        st.integers(min_value=0, max_value=200),  # day offset
        st.integers(min_value=0, max_value=86399),  # second of the day
        st.sampled_from([0.0, 1.5, 20.0, -3.0]),
    ),
    min_size=1,
    max_size=80,
)

AS_DTYPE = {
    "int64": lambda ids: pd.Series(ids, dtype="int64"),
    "string": lambda ids: pd.Series([f"c{i}" for i in ids], dtype=object),
    "nullable Int64": lambda ids: pd.Series(ids, dtype="Int64"),
    "category": lambda ids: pd.Series([f"k{i % 97}" for i in ids], dtype="category"),
}


def _frame(data, kind: str) -> pd.DataFrame:
    origin = pd.Timestamp("2024-01-01")
    return pd.DataFrame({
        "customer_id": AS_DTYPE[kind]([r[0] for r in data]),
        "occurred_at": [origin + pd.Timedelta(days=r[1], seconds=r[2]) for r in data],
        "amount": [r[3] for r in data],
    })


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=rows, kind=st.sampled_from(sorted(AS_DTYPE)), slice_orders=st.sampled_from([1, 7, 1 << 20]))
def test_rows_sorted_and_ids_typed_as_given_whatever_the_threads(monkeypatch, data, kind, slice_orders):
    monkeypatch.setattr(summary_arrays, "ORDERS_PER_SLICE", slice_orders)  # many slices, many threads
    df = _frame(data, kind)
    if not (df["amount"] >= 0).any():
        return
    results = [patron.summary(df, end="2024-07-31", threads=n) for n in THREADS]
    first = results[0]
    assert first["customer_id"].dtype == df["customer_id"].dtype
    ids = first["customer_id"].tolist()
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids) == df.loc[df["amount"] >= 0, "customer_id"].nunique()
    for other in results[1:]:
        pd.testing.assert_frame_equal(other, first)


def test_a_large_base_comes_back_sorted_with_integer_ids():
    """Enough customers that DuckDB's parallel aggregation returns them out of order."""
    rng = np.random.default_rng(3)
    n = 60_000
    ids = rng.permutation(n).astype(np.int64) * 7 + 11
    df = pd.DataFrame({
        "customer_id": np.repeat(ids, 2),
        "occurred_at": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 200, 2 * n), unit="D"),
        "amount": rng.gamma(2.0, 10.0, 2 * n),
    })
    for threads in THREADS:
        out = patron.summary(df, end="2024-07-31", threads=threads)
        assert out["customer_id"].dtype == np.int64
        assert out["customer_id"].is_monotonic_increasing and len(out) == n
    compressed = patron.summary(df, end="2024-07-31", compressed=("frequency", "recency", "T"), threads=2)
    keys = list(zip(compressed["frequency"], compressed["recency"], compressed["T"], strict=True))
    assert keys == sorted(keys)


def test_hourly_grain_and_an_instant_as_end():
    """lifetimes' freq='h': purchases in one hour count once; T runs to the hour of the end."""
    df = pd.DataFrame({
        "customer_id": [1, 1, 1, 1, 2],
        "occurred_at": pd.to_datetime(["2015-02-01 08:10", "2015-02-01 08:50", "2015-02-01 11:05",
                                       "2015-02-02 09:00", "2015-02-01 23:59"]),
        "amount": [1.0, 2.0, 3.0, 4.0, 5.0],
    })
    out = patron.summary(df, period="H", grain="H", end="2015-02-02 06:30").set_index("customer_id")
    assert out.loc[1, "frequency"] == 1  # 08:xx (two orders, one purchase), 11:xx; 02-02 09:00 is after the end
    assert out.loc[1, "recency"] == 3.0 and out.loc[1, "T"] == 22.0  # 08:00 -> 11:00, 08:00 -> 06:00 next day
    assert out.loc[2, "T"] == 7.0
    assert out.loc[1, "monetary_value"] == 3.0
    whole_day = patron.summary(df, period="H", grain="H", end="2015-02-02").set_index("customer_id")
    assert whole_day.loc[1, "frequency"] == 2 and whole_day.loc[1, "T"] == 39.0  # to 23:00


@pytest.mark.parametrize("grain", ["D", "H"])
def test_days_in_hours_equal_hours(grain):
    """Unit H with a daily grain is 24 times the day unit, exactly."""
    df = pd.DataFrame({"customer_id": ["a", "a", "b"],
                       "occurred_at": pd.to_datetime(["2020-01-01", "2020-01-05", "2020-01-03"]),
                       "amount": [1.0, 1.0, 1.0]})
    days = patron.summary(df, period="D", grain="D", end="2020-01-09")
    hours = patron.summary(df, period="H", grain=grain, end="2020-01-09")
    if grain == "D":
        np.testing.assert_array_equal(hours["T"].to_numpy(), 24 * days["T"].to_numpy())
    else:
        np.testing.assert_array_equal(hours["T"].to_numpy(), 24 * days["T"].to_numpy() + 23)
