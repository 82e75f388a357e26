"""The report's equity history and status migration on cells of identical customers (issue 22):
each fast path against the per-customer path it replaces, on orders made here with refunds,
zero-value orders, several orders a day, times of day and lists out of time order.

* month-end summaries read off orders prepared once (PeriodEndOrders) are, bit for bit, the
  summaries finished per day (finish_summary, itself tested against the SQL summary);
* equity and its delta-method interval from cells (clv_cells) are clv_intervals' sums;
* equity_movement on cells gives the per-customer path's history and five parts;
* migration_from_lists gives migration_matrix's counts (statuses by assess, joined on ids).

Tolerance: ``SUM_RTOL`` for sums taken in another order (relative to the equity)."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest

import patron
from patron.data.store import reader
from patron.relationship.segments.equity import period_ends
from patron.relationship.segments.movement import (
    COMPONENTS,
    _movement_per_customer,
    equity_movement,
)
from patron.relationship.status_history import migration_from_lists, migration_matrix
from patron.value.models.clv import clv_intervals
from patron.value.models.clv_cells import Cells, equity_with_interval, group_spend
from patron.value.period_summaries import PeriodEndOrders, summary_cells
from patron.value.scoring import fit_model
from patron.value.settings import ValueSettings
from patron.value.summary_arrays import finish_summary
from patron.value.summary_sql import SummarySpec, order_lists_sql

SUM_RTOL = 1e-9
"""Relative difference allowed between the same sum taken per customer and per cell."""

START, END = date(2024, 4, 1), date(2024, 12, 31)


def orders_frame(seed: int = 5, customers: int = 700) -> pd.DataFrame:
    """Orders of ``customers`` people from 2024-01-01 to 2024-12-31: a first purchase in the first
    270 days, repeat purchases at each person's own rate until their lifetime ends, some at a time
    of day, some twice on a day, a few refunds and zero-value orders."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(customers):
        t = float(rng.integers(0, 270))
        rate, life, spend = rng.gamma(2.0, 1 / 30), rng.exponential(250), rng.gamma(4.0, 10.0)
        born = t
        while t <= 365 and t - born <= life:
            stamp = pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(t))
            if rng.random() < 0.3:
                stamp += pd.Timedelta(minutes=int(rng.integers(1, 1440)))
            amount = round(float(rng.gamma(5.0, spend / 5.0)), 2)
            kind = rng.random()
            if kind < 0.03:
                amount = 0.0
            rows.append((f"c{i}", stamp, amount))
            if kind > 0.95:  # a second order the same day
                rows.append((f"c{i}", stamp + pd.Timedelta(hours=1), round(amount / 2, 2)))
            if kind < 0.02:  # a refund a few days later
                rows.append((f"c{i}", stamp + pd.Timedelta(days=3), -amount / 2))
            t += rng.exponential(1 / rate)
    frame = pd.DataFrame(rows, columns=["customer_id", "occurred_at", "amount"])
    frame = frame[frame["occurred_at"] < pd.Timestamp("2025-01-01")]
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # lists out of time order


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> str:
    db = str(tmp_path_factory.mktemp("cells") / "c.duckdb")
    orders = orders_frame()
    patron.ingest(orders, kind="transactions", db=db, now=datetime(2025, 6, 1))
    known = pd.DataFrame({"customer_id": ["c1", "c2", "p1", "p2", "p3"],  # c1, c2 buyers; p1..p3 never buy
                          "first_seen": ["2024-01-01", None, "2024-02-01", "2024-11-15", None]})
    late = pd.DataFrame({"customer_id": ["p4"], "occurred_at": [pd.Timestamp("2024-12-20 09:00")], "amount": [30.0]})
    patron.ingest(late, kind="transactions", db=db, now=datetime(2025, 6, 1))  # a prospect at START who buys by END
    patron.ingest(pd.concat([known, pd.DataFrame({"customer_id": ["p4"], "first_seen": ["2024-03-01"]})]),
                  kind="customers", db=db, now=datetime(2025, 6, 1))
    return db


def _lists(db: str, end: date):
    with reader(db) as con:
        return con.sql(order_lists_sql(SummarySpec(end=end))).to_arrow_table()


def test_period_end_summaries_are_the_summaries_of_each_day_bit_for_bit(base: str) -> None:
    lists = _lists(base, END)
    days = period_ends(date(2024, 1, 1), END)
    walked = PeriodEndOrders(lists, "W")
    stepped = list(zip(days, walked.iter_at(days), strict=True))
    asked = PeriodEndOrders(lists, "W")
    for d in [days[5], days[2], days[-1], days[0]]:  # any order: an earlier day starts again
        got = asked.at(d)
        expected = finish_summary(lists, SummarySpec(end=d, unit="W")).to_pandas()
        assert len(got.rows) == len(expected)
        for column in ("frequency", "recency", "T", "monetary_value"):
            assert np.array_equal(np.asarray(getattr(got, column), dtype=float), expected[column].to_numpy(dtype=float)), (d, column)
        assert np.array_equal(got.last_purchase, expected["last_purchase"].to_numpy().astype("datetime64[us]").view(np.int64))
    d, last = stepped[-1]
    expected = finish_summary(lists, SummarySpec(end=d, unit="W")).to_pandas()
    assert np.array_equal(last.monetary_value, expected["monetary_value"].to_numpy(dtype=float))
    assert np.array_equal(np.asarray(last.recency), expected["recency"].to_numpy(dtype=float))


def test_cells_group_equal_rows_in_the_order_compress_gives(base: str) -> None:
    s = PeriodEndOrders(_lists(base, END), "W").at(END)
    cells = summary_cells(s)
    keys = np.stack([s.x, s.recency_days, s.T_days], axis=1)
    expected, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    assert np.array_equal(np.stack([cells.x, cells.recency_days, cells.T_days], axis=1), expected)
    assert np.array_equal(cells.of_customer, inverse.ravel()) and np.array_equal(cells.counts, counts)


@pytest.mark.parametrize("margin, cost, per_order", [(1.0, 0.0, 0.0), (0.3, 2.0, 0.5)])
def test_equity_and_interval_from_cells_are_the_per_customer_sums(base: str, margin, cost, per_order) -> None:
    s = PeriodEndOrders(_lists(base, END), "W").at(END)
    frame = pd.DataFrame({"frequency": s.frequency, "recency": s.recency, "T": s.T, "monetary_value": s.monetary_value})
    assert ((frame["frequency"] > 0) & (frame["monetary_value"] == 0)).any()  # zero-value repeat buyers are in
    tm, sm = fit_model("bgnbd", frame), fit_model("gammagamma", frame)
    v = ValueSettings()
    res = clv_intervals(tm, sm, s.frequency, s.recency, s.T, s.monetary_value, horizon=v.horizon,
                        discount_rate_per_step=v.discount_rate_per_period, margin=margin,
                        cost_to_serve=cost or None, cost_per_purchase=per_order)
    cells = summary_cells(s)
    one = np.unique(cells.of_customer, return_index=True)[1]  # a customer of each cell
    grid = Cells(s.frequency[one], s.recency[one], s.T[one], horizon=v.horizon, discount_rate_per_step=v.discount_rate_per_period)
    sums = group_spend(cells.of_customer, np.zeros(len(s.rows), dtype=np.int8), 1, len(cells.x), s.frequency, s.monetary_value)
    equity, lower, upper, _ = equity_with_interval(tm, sm, grid, sums, margin=margin, cost=cost, cost_per_purchase=per_order)
    assert equity == pytest.approx(res.equity, rel=SUM_RTOL)
    assert lower == pytest.approx(res.equity_lower, rel=SUM_RTOL) and upper == pytest.approx(res.equity_upper, rel=SUM_RTOL)
    assert upper - lower == pytest.approx(res.equity_upper - res.equity_lower, rel=1e-6)  # the interval, not only the point


@pytest.mark.parametrize("settings", [ValueSettings(), ValueSettings(margin=0.4, cost_per_customer=1.5, cost_per_order=0.25)])
def test_equity_movement_on_cells_is_the_per_customer_movement(base: str, settings: ValueSettings) -> None:
    new = equity_movement(base, start=START, end=END, settings=settings)
    old = _movement_per_customer(base, START, END, "M", settings, None)
    assert list(new.history["customers"]) == list(old.history["customers"])
    assert new.history["equity"].notna().sum() >= 8
    scale = float(old.history["equity"].abs().max())
    for column in ("equity", "equity_lower", "equity_upper"):
        assert np.allclose(new.history[column], old.history[column], rtol=SUM_RTOL, atol=0, equal_nan=True), column
    numbers = ["equity_start", "equity_end", "change", *COMPONENTS]
    assert np.allclose(new.steps[numbers].to_numpy(float), old.steps[numbers].to_numpy(float), rtol=0, atol=SUM_RTOL * scale,
                       equal_nan=True)
    for column in ("new", "returning", "silent", "why"):
        assert list(new.steps[column]) == list(old.steps[column]), column
    assert (new.steps["new"] > 0).any() and (new.steps["returning"] > 0).any() and (new.steps["silent"] > 0).any()


def test_migration_from_lists_counts_what_the_per_customer_matrix_counts(base: str) -> None:
    frm, to = date(2024, 6, 30), date(2024, 12, 31)
    fast = migration_from_lists(base, from_date=frm, to_date=to)
    slow = migration_matrix(base, from_date=frm, to_date=to)
    pd.testing.assert_frame_equal(fast, slow)
    assert fast.loc["prospect", "prospect"] >= 1 and fast.loc["not_yet_customer", "prospect"] >= 1
    assert fast.loc["prospect"].drop("prospect").sum() == 1  # p4 bought between the dates
    with_lists = migration_from_lists(base, from_date=frm, to_date=to, lists=_lists(base, to))
    pd.testing.assert_frame_equal(with_lists, slow)


def test_assessment_from_lists_is_what_assess_gives_the_status_backtest(base: str) -> None:
    """Statuses, weekly statistics and the model of assess (per customer) equal those classified per
    distinct row from the lists; the status backtest's table is the same from either."""
    from patron.relationship.backtest import status_backtest
    from patron.relationship.status import assess
    from patron.relationship.status_history import assessment_from_lists

    day, end = date(2024, 9, 30), date(2024, 12, 31)
    lists = _lists(base, end)
    fast, fast_model = assessment_from_lists(base, day=day, lists=lists)
    slow, slow_model = assess(base, as_of=day, reasons=False)
    columns = ["customer_id", "status", "frequency", "recency", "T", "as_of"]
    got = fast[columns].sort_values("customer_id").reset_index(drop=True)
    want = slow[columns].sort_values("customer_id").reset_index(drop=True)
    assert len(set(got["status"]) - {"prospect"}) >= 3 and "prospect" in set(got["status"])
    assert (got["customer_id"] == want["customer_id"]).all() and (got["status"] == want["status"]).all()
    buyer = (want["status"] != "prospect").to_numpy()
    for c in ("frequency", "recency", "T"):  # whole days / 7: the same IEEE division
        assert (got.loc[buyer, c].to_numpy() == want.loc[buyer, c].to_numpy(dtype=float)).all(), c
    for name, value in slow_model.params_.items():
        assert fast_model.params_[name] == pytest.approx(value, rel=1e-9), name
    tables = [status_backtest(base, as_of=day, horizon="3M", assessed=assessed, lists=(lists, end)).table
              for assessed in ((fast, fast_model), (slow[columns], slow_model))]
    pd.testing.assert_frame_equal(tables[0], tables[1], rtol=1e-9)
