"""The DuckDB summary plan (one aggregation into per-customer lists, finished with NumPy in
``patron.value.summary_arrays``) equals the portable SQL of ``patron.value.summary_sql.summary_sql`` (the
query Spark runs, itself checked against lifetimes and the published CDNOW summary), on rows in
any order, with refunds, holdout periods and every grain and unit."""

from __future__ import annotations

from datetime import date, datetime

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import patron
from patron.data.dialect import DUCKDB
from patron.value import summary_arrays
from patron.value.simulate import simulate_transactions
from patron.value.summary_sql import SummarySpec, summary_sql
from tests.reference_summary import drawn_transactions

EXACT = 1e-12
"""Both plans compute the same day counts and sums; only the order of float additions differs."""


def _end(value: str) -> date:
    """A date, or a datetime when the text has a time of day (an instant)."""
    return datetime.fromisoformat(value) if len(value) > 10 else date.fromisoformat(value)


def portable(df: pd.DataFrame, end: str, unit: str, grain: str, holdout_end: str | None) -> pd.DataFrame:
    con = duckdb.connect()
    con.register("t", df)
    spec = SummarySpec(end=_end(end), unit=unit, grain=grain, table="t",
                       holdout_end=_end(holdout_end) if holdout_end else None)
    return con.sql(summary_sql(spec, DUCKDB)).df()


def assert_same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    got = got.sort_values("customer_id").reset_index(drop=True)
    want = want.sort_values("customer_id").reset_index(drop=True)
    assert list(got.columns) == list(want.columns)
    assert list(got["customer_id"]) == list(want["customer_id"])
    for col in want.columns[1:]:
        if want[col].dtype.kind == "f":
            np.testing.assert_allclose(got[col].to_numpy(), want[col].to_numpy(), rtol=EXACT, atol=EXACT, err_msg=col)
        else:
            assert (got[col].to_numpy() == want[col].to_numpy()).all(), col
            assert got[col].dtype == want[col].dtype, col


rows = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d", "e"]),
        st.integers(min_value=0, max_value=400),  # day offset
        st.integers(min_value=0, max_value=86399),  # second of the day
        st.sampled_from([0.0, 1.0, 2.5, 10.0, 99.99, -5.0, -20.0]),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    data=rows,
    end_offset=st.integers(min_value=0, max_value=380),
    unit=st.sampled_from(["D", "W", "M", "H"]),
    grain=st.sampled_from(["D", "W", "M", "H"]),
    holdout=st.booleans(),
    slice_orders=st.sampled_from([1, 3, 1 << 20]),
    end_second=st.one_of(st.none(), st.integers(min_value=0, max_value=86399)),
)
def test_list_plan_equals_the_portable_sql(monkeypatch, data, end_offset, unit, grain, holdout, slice_orders,
                                           end_second):
    """Rows arrive in the order drawn (not sorted by time), and are finished in slices of
    ``slice_orders`` orders, so out-of-order lists and several threads are exercised. With an
    hourly grain the ends may be instants (``end_second`` into the day)."""
    monkeypatch.setattr(summary_arrays, "ORDERS_PER_SLICE", slice_orders)
    start = pd.Timestamp("2023-12-20")
    df = drawn_transactions(data, "2023-12-20")
    end = (start + pd.Timedelta(days=end_offset)).date().isoformat()
    hend = (start + pd.Timedelta(days=end_offset + 45)).date().isoformat() if holdout else None
    if grain == "H" and end_second is not None:
        end = (start + pd.Timedelta(days=end_offset, seconds=end_second)).isoformat(sep=" ")
        hend = (start + pd.Timedelta(days=end_offset + 2, seconds=end_second)).isoformat(sep=" ") if holdout else None
    want = portable(df, end, unit, grain, hend)
    if want.empty:
        with pytest.raises(patron.PatronError):
            patron.summary(df, period=unit, grain=grain, end=end, holdout_end=hend)
        return
    assert_same(patron.summary(df, period=unit, grain=grain, end=end, holdout_end=hend), want)


def test_list_plan_on_a_simulated_base_in_shuffled_order(monkeypatch):
    """Thousands of customers, rows shuffled, one day in five with a second order and a refund
    now and then: the case the vectorised passes are written for."""
    monkeypatch.setattr(summary_arrays, "ORDERS_PER_SLICE", 5_000)
    rng = np.random.default_rng(7)
    tx = simulate_transactions(3_000, seed=11, exact_times=True).select(["customer_id", "occurred_at", "amount"]).to_pandas()
    again = tx.sample(frac=0.2, random_state=1).assign(occurred_at=lambda d: d["occurred_at"] + pd.Timedelta(hours=5))
    refunds = tx.sample(frac=0.05, random_state=2).assign(amount=lambda d: -d["amount"] / 2)
    df = pd.concat([tx, again, refunds]).iloc[rng.permutation(len(tx) + len(again) + len(refunds))].reset_index(drop=True)
    end = (df["occurred_at"].min() + pd.Timedelta(days=200)).date().isoformat()
    hend = (df["occurred_at"].min() + pd.Timedelta(days=300)).date().isoformat()
    for unit, grain in (("W", "D"), ("D", "D"), ("M", "M"), ("W", "W"), ("H", "H"), ("D", "H")):
        assert_same(patron.summary(df, period=unit, grain=grain, end=end, holdout_end=hend), portable(df, end, unit, grain, hend))


def test_period_keys_agree_with_the_engine():
    """ISO weeks and calendar months of timestamps around year ends and leap days, as DuckDB's
    date_trunc gives them."""
    stamps = pd.date_range("1969-12-20", "2030-03-10", freq="37h")
    micros = stamps.as_unit("us").asi8
    con = duckdb.connect()
    con.register("s", pd.DataFrame({"ts": stamps}))
    for grain, unit in (("W", "week"), ("M", "month")):
        want = con.sql(f"SELECT date_diff('day', DATE '1970-01-01', CAST(date_trunc('{unit}', ts) AS DATE)) AS d FROM s").df()["d"].to_numpy()
        got = summary_arrays.period_start_day(summary_arrays.period_key(micros, grain), grain)
        assert (got == want).all(), grain
