"""How well a fitted model forecasts: per-customer holdout error and aggregate tracking.

* :func:`holdout_comparison`: for each calibration frequency bucket, the mean number of holdout
  purchases customers made vs the mean the model predicted (``conditional_expected_purchases``
  over ``duration_holdout``), plus the per-customer MAE and RMSE (purchases per customer).
* :func:`cumulative_tracking`: cumulative repeat purchases of the whole cohort per period since its
  start, actual vs expected (sum over customers of E[X(t - s_i)], ``s_i`` their first purchase).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from patron.data.dialect import DUCKDB
from patron.data.store import reader
from patron.dates import parse_day, purchase_span
from patron.errors import InputError
from patron.value.tracking_sql import (
    first_purchase_sql,
    purchases_by_period_sql,
    repeat_purchases_by_period_sql,
)

DEFAULT_MAX_BUCKET = 7
"""Calibration frequencies at or above this share one bucket ("7+"), as in Fader et al. (2005)."""


@dataclass(frozen=True)
class HoldoutComparison:
    """Predicted vs actual holdout purchases: ``by_frequency`` has columns ``frequency`` (bucket
    label), ``customers``, ``actual`` and ``predicted`` (means per customer); ``mae`` and ``rmse``
    are per-customer errors in purchases."""

    by_frequency: pd.DataFrame
    mae: float
    rmse: float
    customers: int
    actual_total: float
    predicted_total: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "mae": self.mae, "rmse": self.rmse, "customers": self.customers,
            "actual_total": self.actual_total, "predicted_total": self.predicted_total,
            "by_frequency": self.by_frequency.to_dict(orient="records"),
        }


def holdout_comparison(model: Any, summary: pd.DataFrame, *, max_bucket: int = DEFAULT_MAX_BUCKET) -> HoldoutComparison:
    """Compare ``model``'s holdout forecast with what customers did (needs the holdout columns of
    :func:`patron.summary` called with ``holdout_end``)."""
    need = ("frequency", "recency", "T", "frequency_holdout", "duration_holdout")
    missing = [c for c in need if c not in summary.columns]
    if missing:
        raise InputError(f"the summary lacks {', '.join(missing)}: compute it with a holdout end (holdout_end)",
                         parameters=("holdout_end",))
    x, tx, T = (summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    actual = summary["frequency_holdout"].to_numpy(dtype=float)
    predicted = np.asarray(model.conditional_expected_purchases(summary["duration_holdout"].to_numpy(dtype=float), x, tx, T), dtype=float)
    bucket = np.minimum(x, max_bucket).astype(int)
    frame = pd.DataFrame({"bucket": bucket, "actual": actual, "predicted": predicted})
    table = frame.groupby("bucket").agg(customers=("actual", "size"), actual=("actual", "mean"), predicted=("predicted", "mean")).reset_index()
    table.insert(0, "frequency", [f"{b}+" if b == max_bucket else str(b) for b in table.pop("bucket")])
    err = predicted - actual
    return HoldoutComparison(
        by_frequency=table,
        mae=float(np.mean(np.abs(err))),
        rmse=float(np.sqrt(np.mean(err**2))),
        customers=len(frame),
        actual_total=float(actual.sum()),
        predicted_total=float(predicted.sum()),
    )


def model_grid(model_fn: Any, *, max_frequency: int, T: float, points: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``model_fn(frequency, recency, T)`` on a grid: frequencies ``0..max_frequency`` (rows),
    ``points`` recencies from 0 to ``T`` (columns), customers observed for ``T`` periods; cells
    that cannot occur (frequency 0 with recency > 0) are NaN. Returns ``(x, tx, Z)``."""
    x = np.arange(max_frequency + 1, dtype=float)
    tx = np.linspace(0.0, T, points)
    X, TX = np.meshgrid(x, tx, indexing="ij")
    valid = ~((X == 0) & (TX > 0))
    Z = np.full(X.shape, np.nan)
    Z[valid] = model_fn(X[valid], TX[valid], np.full(int(valid.sum()), T))
    return x, tx, Z


def cumulative_tracking(
    model: Any,
    db: str | os.PathLike[str],
    *,
    start: str | date,
    end: str | date,
    unit: str = "W",
    counts: tuple[pd.DataFrame, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Cumulative repeat purchases per period since ``start`` (the cohort's first day) up to
    ``end``: columns ``period`` (1, 2, ...: end of the period, in ``unit``), ``actual`` and
    ``expected``. Use it with customers acquired from ``start`` on (one cohort).

    ``counts``: the customers per first-purchase offset and the repeat purchases per period
    (the results of :func:`patron.value.tracking_sql.first_purchase_sql` and
    :func:`~patron.value.tracking_sql.repeat_purchases_by_period_sql`) when the caller has them
    (:func:`tracking_counts_from_lists`); otherwise they are queried from ``db``."""
    start_d, end_d = parse_day(start, "start"), parse_day(end, "end")
    if counts is not None:
        firsts, repeats = counts
    else:
        with reader(db) as con:
            firsts = con.execute(first_purchase_sql(DUCKDB, start=start_d, unit=unit)).fetchdf()
            repeats = con.execute(repeat_purchases_by_period_sql(DUCKDB, start=start_d, end=end_d, unit=unit)).fetchdf()
    from patron.constants import PERIOD_UNITS

    n_periods = int(np.floor((end_d - start_d).days / PERIOD_UNITS[unit])) + 1
    periods = np.arange(1, n_periods + 1, dtype=float)
    offsets = firsts["first_offset"].to_numpy(dtype=float)
    counts = firsts["customers"].to_numpy(dtype=float)
    elapsed = periods[:, None] - offsets[None, :]
    ex = np.zeros_like(elapsed)
    pos = elapsed > 0
    ex[pos] = model.expected_purchases(elapsed[pos])
    expected = ex @ counts
    actual = np.zeros(n_periods)
    idx = repeats["period"].to_numpy(dtype=int)
    ok = (idx >= 0) & (idx < n_periods)
    np.add.at(actual, idx[ok], repeats["repeat_purchases"].to_numpy(dtype=float)[ok])
    return pd.DataFrame({"period": periods.astype(int), "actual": np.cumsum(actual), "expected": expected})


MICROS_PER_DAY = 86_400_000_000
"""Microseconds in a day (timestamps of the order lists are microseconds since 1970-01-01)."""


def tracking_counts_from_lists(lists: Any, *, start: date, end: date, unit: str = "W") -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two tables :func:`cumulative_tracking` reads, from every customer's orders as lists
    (:func:`patron.value.summary_sql.order_lists_sql`, a pyarrow table ``customer_id, ts,
    amounts``) instead of two queries over the transactions: ``(first_offset, customers)``
    (customers per first purchase day, offset from ``start`` in ``unit``, by offset) and
    ``(period, repeat_purchases)`` (purchase days after each customer's first, on or before
    ``end``, per whole period since ``start``), with the definitions and arithmetic of
    :func:`patron.value.tracking_sql.first_purchase_sql` and
    :func:`~patron.value.tracking_sql.repeat_purchases_by_period_sql`: purchases are orders with an
    amount of 0 or more, a day is the UTC calendar day. The same result when ``lists`` hold every
    purchase of the database (none after the day the lists end); the caller checks that."""

    from patron.constants import PERIOD_UNITS
    from patron.value.summary_arrays import flat_orders

    width = PERIOD_UNITS[unit]
    lengths, micros, amount = flat_orders(lists)  # each customer's orders in time order
    owner = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    buy = amount >= 0
    day, owner = np.floor_divide(micros[buy], MICROS_PER_DAY), owner[buy]
    first = np.ones(len(day), dtype=bool)
    np.not_equal(owner[1:], owner[:-1], out=first[1:])  # a customer's first purchase (in time order)
    new_day = first.copy()
    new_day[1:] |= day[1:] != day[:-1]  # the first order of each (customer, day)
    start_day = (start - date(1970, 1, 1)).days
    first_days, customers = np.unique(day[first], return_counts=True)
    firsts = pd.DataFrame({"first_offset": (first_days - start_day).astype(float) / width, "customers": customers.astype(np.int64)})
    repeat = day[new_day & ~first]
    repeat = repeat[repeat <= (end - date(1970, 1, 1)).days]
    period = np.floor((repeat - start_day).astype(float) / width).astype(np.int64)
    values, n = np.unique(period, return_counts=True)
    return firsts, pd.DataFrame({"period": values, "repeat_purchases": n.astype(np.int64)})


def purchases_by_period(source: Any, *, grain: str = "D", start: Any = None, end: Any = None,
                        mapping: dict[str, str] | None = None) -> pd.DataFrame:
    """First and repeat purchases per ``grain`` period since the period holding ``start``
    (default the first order), up to the period holding ``end`` (inclusive; default the last
    order): columns ``period`` (0, 1, ...), ``first_purchases`` (customers whose first purchase
    falls in it) and ``repeat_purchases`` (customers with a repeat purchase in it), every period
    present. ``source`` is a database file or an in-memory table, as for :func:`patron.summary`;
    computed in the engine (:func:`patron.value.tracking_sql.purchases_by_period_sql`).

    This is what tracking plots compare with a model's expected cumulative purchases (lifetimes'
    ``expected_cumulative_transactions``)."""
    from patron.data.store import connect
    from patron.value.summary import _register_frame
    from patron.value.summary_sql import SummarySpec

    grain = grain.upper()
    SummarySpec(end=date(2000, 1, 1), unit=grain, grain=grain)  # validates the grain
    frame = source is not None and not isinstance(source, str | os.PathLike)
    opened = connect(":memory:") if frame else reader(source)
    with opened as con:
        table = "transactions"
        if frame:
            _register_frame(con, source, mapping)
            table = "transactions_in"
        first, last = purchase_span(con, table, instant=True, where="the transactions")
        start_ts = pd.Timestamp(parse_day(start, "start", instant=True) or first)
        end_ts = pd.Timestamp(parse_day(end, "end", instant=True) or last)
        step = {"D": "D", "W": "W", "M": "M", "H": "h"}[grain]
        start_p, end_p = start_ts.to_period(step), end_ts.to_period(step)
        stop = (end_p + 1).to_timestamp()
        sql = purchases_by_period_sql(DUCKDB, grain=grain, start=DUCKDB.timestamp_literal(start_p.to_timestamp().to_pydatetime()),
                                      stop=DUCKDB.timestamp_literal(stop.to_pydatetime()), table=table)
        counts = con.execute(sql).fetchdf()
    n = max(int((end_p - start_p).n) + 1, 0)
    out = pd.DataFrame({"period": np.arange(n)})
    for col in ("first_purchases", "repeat_purchases"):
        values = np.zeros(n, dtype=np.int64)
        ok = counts["period"].between(0, n - 1)
        values[counts.loc[ok, "period"].to_numpy(dtype=np.int64)] = counts.loc[ok, col].to_numpy(dtype=np.int64)
        out[col] = values
    return out
