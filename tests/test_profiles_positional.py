"""The profiles built by position (one read of the orders, no join of parts:
:func:`patron.relationship.profiles.register_positional`) against the joined build that came
before it (status, loyalty and profitability as SQL joined on ``customer_id``, kept behind
``PATRON_PROFILES_JOINED=1`` as the reference), on a simulated base with planted odd rows:
$0 orders, refund-only customers, refunds after purchases, several orders on one day, customers
whose first purchase is after the status' lookback day or after ``as_of``, prospects with no
orders, and orders after ``as_of``. The loyalty sums are also checked against a plain-Python
reading of their definitions (:mod:`patron.relationship.loyalty`)."""

from __future__ import annotations

import itertools
import shutil
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import patron
import patron.value.summary as summary_module
from patron.relationship.profile_parts import flat_orders, loyalty_arrays
from patron.relationship.profiles import build_profiles
from patron.value.simulate import simulate_transactions
from patron.value.summary_sql import SummarySpec, order_lists_sql

FLOAT_REL_TOLERANCE = 1e-12
"""Sums of amounts are added in time order by position and in the engine's order by SQL: they
may differ in the last digits, nothing more."""

AS_OF = date(2025, 5, 31)
"""Before the simulated base's last order, so that later orders exist and are left out."""

PLANTED = [  # customer_id, occurred_at, amount
    ("Z_zero_only", "2024-03-01", 0.0), ("Z_zero_only", "2024-05-01", 0.0),
    ("Z_refund_only", "2024-04-01", -20.0),
    ("Z_refund_after", "2024-02-01", 30.0), ("Z_refund_after", "2024-02-03", -30.0), ("Z_refund_after", "2024-06-01", 12.5),
    ("Z_same_day", "2024-07-01 09:00:00", 10.0), ("Z_same_day", "2024-07-01 18:00:00", 5.0), ("Z_same_day", "2024-08-01", 7.0),
    ("Z_same_day", "2024-09-15", 9.0), ("Z_same_day", "2024-12-24", 1.0), ("Z_same_day", "2024-12-24 23:59:59", 2.0),
    ("Z_recent", "2025-05-20", 44.0), ("Z_recent", "2025-05-30", 0.0),
    ("Z_after_as_of", "2025-06-15", 99.0),
    ("Z_zero_then_buys", "2024-01-10", 0.0), ("Z_zero_then_buys", "2024-03-10", 25.0), ("Z_zero_then_buys", "2024-03-17", 25.0),
    ("Z_zero_then_buys", "2024-03-24", 25.0), ("Z_zero_then_buys", "2024-03-31", 25.0),
]
PROSPECTS = "customer_id,first_seen\nP_known,2024-01-01\nP_undated,\nZ_refund_only,2024-01-01\nP_later,2025-12-01\nZ_same_day,2024-01-01\n"


@pytest.fixture(scope="module")
def planted_db(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("positional")
    db = str(folder / "base.duckdb")
    orders = simulate_transactions(1500, seed=7).to_pandas()
    extra = pd.DataFrame(PLANTED, columns=["customer_id", "occurred_at", "amount"])
    extra["occurred_at"] = pd.to_datetime(extra["occurred_at"], format="ISO8601")
    orders = pd.concat([orders[["customer_id", "occurred_at", "amount"]], extra], ignore_index=True)
    assert patron.ingest(orders, kind="transactions", db=db).rejected == 0
    people = folder / "customers.csv"
    people.write_text(PROSPECTS)
    patron.ingest(people, kind="customers", db=db)
    return db


def _build(db: str, tmp_path, name: str, monkeypatch, *, joined: bool, config=None) -> pa.Table:
    copy = str(tmp_path / f"{name}.duckdb")
    shutil.copy(db, copy)
    monkeypatch.setenv("PATRON_PROFILES_JOINED", "1" if joined else "0")
    return build_profiles(copy, as_of=AS_OF, config=config, output="arrow")


def _assert_same(joined: pa.Table, positional: pa.Table) -> None:
    assert positional.schema == joined.schema
    assert positional.num_rows == joined.num_rows
    for name in joined.column_names:
        a, b = joined.column(name), positional.column(name)
        if pa.types.is_floating(a.type):
            x, y = a.to_numpy(zero_copy_only=False), b.to_numpy(zero_copy_only=False)
            assert np.array_equal(np.isnan(x), np.isnan(y)), name
            ok = ~np.isnan(x)
            assert np.allclose(y[ok], x[ok], rtol=FLOAT_REL_TOLERANCE, atol=0.0), name
        else:
            assert a.equals(b), (name, [(i, a[i], b[i]) for i in range(len(a)) if a[i] != b[i]][:3])


@pytest.mark.parametrize("buckets", [1, 3])
def test_positional_build_equals_the_joined_one(planted_db, tmp_path, monkeypatch, buckets):
    if buckets > 1:  # the orders read in hash buckets of customers, as on a base of tens of millions of orders
        rows = patron.summary(planted_db, period="W", end=AS_OF).shape[0] * 3
        monkeypatch.setattr(summary_module, "ROWS_PER_BUCKET", max(1, rows // buckets))
    joined = _build(planted_db, tmp_path, "joined", monkeypatch, joined=True)
    positional = _build(planted_db, tmp_path, "positional", monkeypatch, joined=False)
    _assert_same(joined, positional)
    by = positional.to_pandas().set_index("customer_id")
    assert "Z_after_as_of" not in by.index and "P_later" not in by.index
    assert by.loc["Z_zero_only", "n_orders"] == 2 and by.loc["Z_zero_only", "returned"]
    for prospect in ("P_known", "P_undated", "Z_refund_only"):
        assert by.loc[prospect, "status"] == "prospect" and by.loc[prospect, "clv"] == 0.0
    assert by.loc["Z_same_day", "status"] != "prospect"
    assert by.loc["Z_recent", "status"] == "new"


def test_positional_build_with_other_rules(planted_db, tmp_path, monkeypatch):
    config = {"costs": {"default_margin_rate": 0.25}, "loyalty": {"trend_min_gaps": 2, "spend_trend_min_purchases": 2,
                                                                  "steady_relative_slope": 0.0},
              "status": {"lookback_days": 200, "new_days": 30}, "rfm": {"bins": 10}}
    joined = _build(planted_db, tmp_path, "joined_rules", monkeypatch, joined=True, config=config)
    positional = _build(planted_db, tmp_path, "positional_rules", monkeypatch, joined=False, config=config)
    _assert_same(joined, positional)
    assert positional.column("margin_total").null_count == 3  # prospects only: every buyer has a margin at the default rate


def _loyalty_by_hand(days: list[int], amounts: list[float]) -> dict[str, float]:
    """The loyalty sums of one customer's orders (days since 1970, amounts) read from the
    definitions: purchases are days with orders of amount >= 0, a day's value their sum."""
    values: dict[int, float] = {}
    for d, a in zip(days, amounts, strict=True):
        if a >= 0:
            values[d] = values.get(d, 0.0) + a
    ds = sorted(values)
    n = len(ds)
    gaps = [float(b - a) for a, b in itertools.pairwise(ds)]

    def slope(xs: list[float], ys: list[float]) -> float:
        m = len(xs)
        den = m * sum(x * x for x in xs) - sum(xs) ** 2
        return float("nan") if m == 0 or den == 0 else (m * sum(x * y for x, y in zip(xs, ys, strict=True)) - sum(xs) * sum(ys)) / den

    return {"n_purchases": n, "days_to_second_purchase": gaps[0] if gaps else float("nan"),
            "mean_gap": sum(gaps) / len(gaps) if gaps else float("nan"),
            "interpurchase_slope": slope([float(i) for i in range(1, len(gaps) + 1)], gaps),
            "mean_value": sum(values[d] for d in ds) / n if n else float("nan"),
            "spend_slope": slope([float(k) for k in range(1, n + 1)], [values[d] for d in ds])}


def test_loyalty_sums_follow_their_definitions(planted_db):
    import duckdb

    with duckdb.connect(planted_db, read_only=True) as con:
        lists = con.sql(order_lists_sql(SummarySpec(end=AS_OF, unit="W"))).to_arrow_table()
    lengths, micros, amount = flat_orders(lists)
    got = loyalty_arrays(lengths, micros, amount, AS_OF)
    starts = np.cumsum(lengths) - lengths
    for i in range(len(lengths)):
        days = (micros[starts[i]:starts[i] + lengths[i]] // 86_400_000_000).tolist()
        want = _loyalty_by_hand(days, amount[starts[i]:starts[i] + lengths[i]].tolist())
        for name, value in want.items():
            assert np.allclose(got[name][i], value, rtol=FLOAT_REL_TOLERANCE, atol=1e-9, equal_nan=True), (i, name)


def test_loyalty_sums_by_slices_equal_the_whole(planted_db, monkeypatch):
    import duckdb

    import patron.relationship.profile_parts as parts

    with duckdb.connect(planted_db, read_only=True) as con:
        lists = con.sql(order_lists_sql(SummarySpec(end=AS_OF, unit="W"))).to_arrow_table()
    lengths, micros, amount = flat_orders(lists)
    whole = parts.loyalty_slice(lengths, micros, amount, AS_OF)
    monkeypatch.setattr(parts, "ORDERS_PER_SLICE", 97)  # dozens of slices, cut inside no customer
    sliced = parts.loyalty_arrays(lengths, micros, amount, AS_OF)
    for name, values in whole.items():
        assert np.array_equal(sliced[name], values, equal_nan=values.dtype.kind == "f"), name


def test_loyalty_sums_of_customers_without_a_purchase_are_nan_not_an_error():
    """Only refunds and orders after the day: no purchase at all (NumPy's bincount then gives int64
    zeros, which cannot hold NaN): every sum is NaN and the counts are 0 (a service refresh on a store
    whose only orders were refunds failed here)."""
    day = date(2025, 1, 31)
    lengths = np.array([1, 2], dtype=np.int64)
    micros = (np.array([date(2025, 1, 5).toordinal(), date(2025, 1, 6).toordinal(), date(2025, 3, 1).toordinal()],
                       dtype=np.int64) - date(1970, 1, 1).toordinal()) * 86_400_000_000
    sums = loyalty_arrays(lengths, micros, np.array([-10.0, -5.0, 20.0]), day)
    assert sums["n_purchases"].tolist() == [0, 0] and sums["n_gaps"].tolist() == [0, 0]
    for name in ("days_to_second_purchase", "mean_gap", "interpurchase_slope", "mean_value", "spend_slope"):
        assert sums[name].dtype == np.float64 and np.isnan(sums[name]).all(), name
