"""Acquisition cohorts: retention and cumulative revenue per customer by periods since acquisition.

Definitions (as of ``as_of``, inclusive; default the day of the last purchase):

* Orders are transaction rows with ``amount >= 0`` on or before ``as_of`` (refunds excluded), as
  in :mod:`patron.relationship.loyalty`.
* A customer's **cohort** is the start of the period (``freq``: ``M`` calendar month, ``Q``
  calendar quarter, ``W`` ISO week starting Monday) holding their first order (UTC day).
* ``period``: whole periods from the cohort to the period of an order (0 = the acquisition
  period). Every cohort gets a row for each period from 0 to the period holding ``as_of``.
* ``customers``: cohort size; ``active``: the cohort's customers with at least one order in the
  period (all of them in period 0); ``retention = active / customers``.
* ``revenue``: sum of the cohort's order amounts in the period;
  ``cumulative_revenue_per_customer``: revenue of periods 0..period divided by ``customers``.
* ``complete``: the period ended on or before ``as_of`` (the last period is usually partial).
"""

from __future__ import annotations

import os
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from patron.data.dialect import DUCKDB, Dialect
from patron.dates import DayArg
from patron.errors import InputError, NoDataError
from patron.relationship.loyalty import open_transactions, orders_cte, resolve_as_of

FREQUENCIES: dict[str, str] = {"M": "calendar month", "Q": "calendar quarter", "W": "ISO week (Monday)"}
"""Cohort and period lengths :func:`cohorts` accepts."""

COHORT_COLUMNS: tuple[str, ...] = (
    "cohort", "period", "customers", "active", "retention", "revenue",
    "cumulative_revenue_per_customer", "complete",
)
"""Columns of :func:`cohorts`, in order."""


def _start(d: Dialect, day: str, freq: str) -> str:
    if freq == "Q":
        unit = "QUARTER" if d.name == "spark" else "quarter"
        return f"CAST(date_trunc('{unit}', {day}) AS DATE)"
    return d.period_start(day, freq)


def _index(d: Dialect, start: str, end: str, freq: str) -> str:
    """Whole periods from period start ``start`` to period start ``end``."""
    if freq == "W":
        return f"CAST({d.days_between(start, end)} / 7 AS BIGINT)"
    months = d.months_between(start, end)
    return f"CAST({months} AS BIGINT)" if freq == "M" else f"CAST(({months}) / 3 AS BIGINT)"


def cohorts_sql(as_of: date, freq: str = "M", dialect: Dialect = DUCKDB, table: str = "transactions") -> str:
    """Active customers and revenue per cohort and period (only periods with orders), with the
    cohort size and the period index of ``as_of``."""
    if freq not in FREQUENCIES:
        raise ValueError(f"freq must be one of {', '.join(FREQUENCIES)}; got {freq!r}")
    d = dialect
    last = _start(d, d.date_literal(as_of), freq)
    return f"""WITH {orders_cte(as_of, d, table)},
periods AS (
  SELECT customer_id, {_start(d, 'day', freq)} AS p, SUM(amount) AS revenue
  FROM orders GROUP BY customer_id, {_start(d, 'day', freq)}
),
firsts AS (
  SELECT customer_id, MIN(p) AS cohort FROM periods GROUP BY customer_id
),
sizes AS (
  SELECT cohort, COUNT(*) AS customers, {_index(d, 'cohort', last, freq)} AS last_period
  FROM firsts GROUP BY cohort
),
activity AS (
  SELECT f.cohort, {_index(d, 'f.cohort', 'x.p', freq)} AS period, COUNT(*) AS active, SUM(x.revenue) AS revenue
  FROM periods x JOIN firsts f ON f.customer_id = x.customer_id
  GROUP BY f.cohort, {_index(d, 'f.cohort', 'x.p', freq)}
)
SELECT s.cohort, s.customers, s.last_period, a.period, a.active, a.revenue
FROM sizes s LEFT JOIN activity a ON a.cohort = s.cohort
ORDER BY s.cohort, a.period"""


def _period_ends_on(day: date, freq: str) -> bool:
    """Whether ``day`` is the last day of its period."""
    nxt = day + timedelta(days=1)
    if freq == "W":
        return nxt.weekday() == 0
    if freq == "M":
        return nxt.day == 1
    return nxt.day == 1 and nxt.month in (1, 4, 7, 10)


def cohorts(db: str | os.PathLike[str] | None = None, *, freq: str = "M", as_of: DayArg = None) -> pd.DataFrame:
    """Retention and revenue by acquisition cohort and period since acquisition, long format:
    :data:`COHORT_COLUMNS` (definitions in the module docstring), sorted by cohort and period."""
    freq = freq.upper()
    if freq not in FREQUENCIES:
        raise InputError(f"freq must be one of {', '.join(FREQUENCIES)}; got {freq!r}", parameters=("freq",))
    with open_transactions(db) as con:
        day = resolve_as_of(con, as_of)
        raw = con.sql(cohorts_sql(day, freq)).df()
    return _finish(raw, day, freq)


def cohorts_from_lists(lists: Any, *, as_of: date, freq: str = "M") -> pd.DataFrame:
    """:func:`cohorts` (``freq`` ``M`` or ``W``) from every customer's orders up to ``as_of`` as
    lists (:func:`patron.value.summary_sql.order_lists_sql`, a pyarrow table ``customer_id, ts,
    amounts`` ending on ``as_of``) instead of a query over the transactions: the same definitions
    (orders: amount 0 or more; a customer's cohort: the period of their first order; ``active``:
    the cohort's customers with an order in the period), counted in NumPy. Revenue sums may differ
    from the engine's in the last bits (another order of addition)."""

    from patron.value.summary_arrays import flat_orders, period_key, period_start_day

    if freq not in ("M", "W"):
        raise InputError(f"cohorts from order lists need freq M or W; got {freq!r}", parameters=("freq",))
    lengths, micros, amount = flat_orders(lists)  # each customer's orders in time order
    owner = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    end_micros = (as_of - date(1970, 1, 1)).days * 86_400_000_000 + 86_400_000_000  # one past as_of
    keep = (amount >= 0) & (micros < end_micros)
    key, amount, owner = period_key(micros[keep], freq), amount[keep], owner[keep]
    if not len(key):
        raise NoDataError(f"no orders on or before {as_of}")
    first = np.ones(len(key), dtype=bool)
    np.not_equal(owner[1:], owner[:-1], out=first[1:])
    new_period = first.copy()
    new_period[1:] |= key[1:] != key[:-1]  # periods never decrease within a customer's ordered orders
    cohort_key = key[first][np.cumsum(first) - 1]  # each order's customer's first period
    last_key = int(period_key(np.array([end_micros - 1]), freq)[0])
    base = int(cohort_key.min())
    width = last_key - base + 1
    cell = (cohort_key - base) * width + (key - cohort_key)  # (cohort, period) as one index
    active = np.bincount(cell[new_period], minlength=width * width)
    revenue = np.bincount(cell, weights=amount, minlength=width * width).astype(np.float64, copy=False)  # int64 when empty
    sizes = np.bincount(cohort_key[first] - base, minlength=width)
    cells = np.flatnonzero(active)  # by cohort, then period; every cohort is active in its period 0
    c_idx, p_idx = cells // width, cells % width
    starts = period_start_day(c_idx + base, freq).astype("datetime64[D]")
    raw = pd.DataFrame({"cohort": pd.to_datetime(starts), "customers": sizes[c_idx].astype(np.int64),
                        "last_period": (last_key - base - c_idx).astype(np.int64), "period": p_idx.astype(float),
                        "active": active[cells].astype(np.int64), "revenue": revenue[cells]})
    return _finish(raw, as_of, freq)


def _finish(raw: pd.DataFrame, day: date, freq: str) -> pd.DataFrame:
    """:func:`cohorts` from the rows of :func:`cohorts_sql` (one per cohort and period with orders)."""
    if raw.empty:
        raise NoDataError(f"no orders on or before {day}")
    sizes = raw.drop_duplicates("cohort")[["cohort", "customers", "last_period"]]
    counts = (sizes["last_period"].to_numpy(dtype=np.int64) + 1)
    grid = pd.DataFrame({
        "cohort": np.repeat(sizes["cohort"].to_numpy(), counts),
        "customers": np.repeat(sizes["customers"].to_numpy(dtype=np.int64), counts),
        "last_period": np.repeat(sizes["last_period"].to_numpy(dtype=np.int64), counts),
        "period": np.concatenate([np.arange(c, dtype=np.int64) for c in counts]),
    })
    activity = raw.dropna(subset=["period"]).astype({"period": np.int64})[["cohort", "period", "active", "revenue"]]
    out = grid.merge(activity, on=["cohort", "period"], how="left")
    out["active"] = out["active"].fillna(0).astype(np.int64)
    out["revenue"] = out["revenue"].fillna(0.0).astype(float)
    out["retention"] = out["active"] / out["customers"]
    out = out.sort_values(["cohort", "period"], kind="stable").reset_index(drop=True)
    out["cumulative_revenue_per_customer"] = out.groupby("cohort")["revenue"].cumsum() / out["customers"]
    ends = _period_ends_on(day, freq)
    out["complete"] = (out["period"] < out["last_period"]) | ((out["period"] == out["last_period"]) & ends)
    out["cohort"] = pd.to_datetime(out["cohort"]).dt.date
    return out[list(COHORT_COLUMNS)]


def retention_matrix(cohorts_df: pd.DataFrame, *, value: str = "retention", max_periods: int | None = None) -> pd.DataFrame:
    """``cohorts_df`` (from :func:`cohorts`) as a matrix: one row per cohort, one column per
    period (0, 1, ...), cells ``value`` (``retention`` by default; any column of the long
    format). Periods a cohort has not reached yet are NaN. ``max_periods`` keeps periods
    0..max_periods."""
    if value not in cohorts_df.columns:
        raise InputError(f"no column {value!r} in the cohorts table (columns: {', '.join(cohorts_df.columns)})")
    df = cohorts_df if max_periods is None else cohorts_df[cohorts_df["period"] <= max_periods]
    matrix = df.pivot(index="cohort", columns="period", values=value).sort_index()
    matrix.columns.name = "period"
    return matrix
