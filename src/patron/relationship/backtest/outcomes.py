"""What customers did after a past date, and per-group summaries with intervals.

* :func:`horizon_end` reads a horizon (``"26W"``, ``"182D"``, ``"6M"``) from a date;
* :func:`observed_window` cuts it at the end of the data, so a backtest never counts days that are
  not in the database as days without purchases;
* :func:`outcomes` gives each customer's purchases and spend in the window (one SQL query);
* :func:`group_outcomes` summarises them per group: the share who bought with its Wilson score
  interval (Wilson 1927), the mean purchases and spend with a Student-t interval, and the model's
  own prediction for the group beside them.

Definitions: a *purchase* is a transaction with ``amount >= 0`` (refunds are not purchases), and
purchases on one calendar day count once, as in the summary (``grain="D"``); *spend* is the sum of
the purchases' amounts (currency); the window is ``(as_of, end]`` in calendar days, ``as_of``
itself belonging to the history.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from patron.data.store import reader, table_exists
from patron.errors import InputError
from patron.value.intervals import wilson_interval

DAYS_PER_WEEK = 7.0
"""Days in one week (the model's time unit)."""

DEFAULT_HORIZON = "26W"
"""Horizon of a backtest when none is given: half a year."""

LEVEL = 0.95
"""Confidence level of every interval in a backtest."""

_HORIZON = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([DWM])\s*$", re.IGNORECASE)


def check_horizon(horizon: str) -> tuple[float, str]:
    """``(number, unit)`` of a horizon text (``"26W"`` -> ``(26.0, "W")``); anything else is an
    :class:`~patron.errors.InputError` in one line."""
    match = _HORIZON.match(str(horizon))
    if not match or float(match.group(1)) <= 0:
        raise InputError(f"horizon must look like 26W, 182D or 6M (a positive number of days, weeks or months); got {horizon!r}",
                         parameters=("horizon",))
    n, unit = float(match.group(1)), match.group(2).upper()
    if unit == "M" and n != int(n):
        raise InputError(f"horizon in months must be whole months; got {horizon!r}", parameters=("horizon",))
    if unit != "M" and n * (DAYS_PER_WEEK if unit == "W" else 1.0) != int(n * (DAYS_PER_WEEK if unit == "W" else 1.0)):
        raise InputError(f"horizon must be a whole number of days; got {horizon!r}", parameters=("horizon",))
    return n, unit


def horizon_end(as_of: date, horizon: str) -> date:
    """The last day of ``horizon`` after ``as_of``: ``"26W"`` is 182 days, ``"182D"`` 182 days,
    ``"6M"`` six calendar months (from a month end, the month end)."""
    n, unit = check_horizon(horizon)
    if unit == "M":
        ts = pd.Timestamp(as_of)
        step = pd.offsets.MonthEnd(int(n)) if ts.is_month_end else pd.DateOffset(months=int(n))
        return (ts + step).date()
    return as_of + timedelta(days=int(n * (DAYS_PER_WEEK if unit == "W" else 1.0)))


def data_end(db: str | os.PathLike[str] | None) -> date:
    """Day of the last purchase in ``db``: the end of what a backtest can observe."""
    from patron.relationship.status import last_purchase_day

    return last_purchase_day(db)


@dataclass(frozen=True)
class Window:
    """The days after ``as_of`` a backtest looks at: ``(as_of, observed_end]``."""

    as_of: date
    horizon: str
    end: date
    observed_end: date

    @property
    def weeks(self) -> float:
        """Length of the observed window in weeks."""
        return (self.observed_end - self.as_of).days / DAYS_PER_WEEK

    @property
    def cut(self) -> bool:
        """Whether the data end before the horizon does."""
        return self.observed_end < self.end

    def describe(self) -> str:
        """``"26W after 1997-12-31 (to 1998-07-01; the data end on 1998-06-30: 25.9 weeks observed)"``."""
        text = f"{self.horizon} after {self.as_of} (to {self.end}"
        if self.cut:
            text += f"; the data end on {self.observed_end}: {self.weeks:.1f} weeks observed"
        return text + ")"


def observed_window(db: str | os.PathLike[str] | None, as_of: date | None, horizon: str) -> Window:
    """The window of a backtest. ``as_of`` defaults to the latest date whose whole ``horizon`` is
    in the data; a window is cut at the day of the last purchase (the predictions are then made
    for the shorter window, so they stay comparable), and an ``as_of`` on or after it is an error."""
    last = data_end(db)
    if as_of is None:
        probe = horizon_end(last, horizon) - last  # the horizon's length from the end of the data
        as_of = last - probe
    end = horizon_end(as_of, horizon)
    if as_of >= last:
        raise InputError(f"as_of {as_of} is not before the last purchase in the data ({last}): nothing happened after it to compare with")
    return Window(as_of=as_of, horizon=str(horizon).strip().upper(), end=end, observed_end=min(end, last))


def outcomes_sql() -> str:
    """Per customer, purchase days and spend strictly after the first parameter's day and up to
    the second's (both DATE parameters)."""
    return """SELECT CAST(customer_id AS VARCHAR) AS customer_id,
       COUNT(DISTINCT CAST(occurred_at AS DATE)) AS purchases,
       SUM(amount) AS spend
FROM transactions
WHERE amount >= 0 AND CAST(occurred_at AS DATE) > ? AND CAST(occurred_at AS DATE) <= ?
GROUP BY customer_id"""


def outcomes(db: str | os.PathLike[str] | None, window: Window, customer_ids: pd.Series) -> pd.DataFrame:
    """``customer_id, bought, purchases, spend`` in ``window`` for each id of ``customer_ids``
    (customers who bought nothing there get ``False, 0, 0.0``)."""
    with reader(db) as con:
        if not table_exists(con, "transactions"):
            rows = pd.DataFrame({"customer_id": pd.Series(dtype=str), "purchases": pd.Series(dtype=float), "spend": pd.Series(dtype=float)})
        else:
            rows = con.execute(outcomes_sql(), [window.as_of, window.observed_end]).df()
    out = pd.DataFrame({"customer_id": customer_ids.astype(str).to_numpy()}).merge(rows, on="customer_id", how="left")
    out["purchases"] = out["purchases"].fillna(0).to_numpy(dtype=float)
    out["spend"] = out["spend"].fillna(0.0).to_numpy(dtype=float)
    out["bought"] = out["purchases"] > 0
    return out


def outcomes_from_lists(lists: Any, window: Window, customer_ids: pd.Series) -> pd.DataFrame:
    """:func:`outcomes` from every customer's orders as lists
    (:func:`patron.value.summary_sql.order_lists_sql`, a pyarrow table ``customer_id, ts, amounts``
    that holds every order up to ``window.observed_end`` at least) instead of a query: the same
    definitions (purchase days and spend of the orders of amount 0 or more on the days after
    ``window.as_of`` up to ``window.observed_end``), counted in NumPy and matched to
    ``customer_ids`` by an Arrow hash lookup. Spend sums may differ from the engine's in the last
    bits (another order of addition)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from patron.data.arrow_numpy import to_numpy
    from patron.value.summary_arrays import MICROSECONDS_PER_DAY, flat_orders

    lengths, micros, amount = flat_orders(lists)  # same days adjacent within a customer
    micros_all, amount_all = micros, amount  # (each customer's earliest purchase below: any order in a customer gives it)
    owner = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    day = np.floor_divide(micros, MICROSECONDS_PER_DAY)
    epoch = date(1970, 1, 1)
    keep = (amount >= 0) & (day > (window.as_of - epoch).days) & (day <= (window.observed_end - epoch).days)
    day, owner, amount = day[keep], owner[keep], amount[keep]
    new_day = np.ones(len(day), dtype=bool)
    new_day[1:] = (owner[1:] != owner[:-1]) | (day[1:] != day[:-1])
    purchases = np.bincount(owner[new_day], minlength=len(lengths)).astype(float)
    spend = np.bincount(owner, weights=amount, minlength=len(lengths)).astype(np.float64, copy=False)  # int64 when empty
    ids = pa.array(customer_ids.astype(str).to_numpy(), pa.string())
    column = lists.column("customer_id")
    known = pa.concat_arrays(column.chunks).cast(pa.string()) if column.num_chunks else pa.array([], pa.string())
    bought = np.minimum.reduceat(np.where(amount_all >= 0, micros_all, np.iinfo(np.int64).max), np.cumsum(lengths) - lengths) \
        if len(lengths) else np.zeros(0, dtype=np.int64)
    buyers = np.flatnonzero(bought < ((window.as_of - epoch).days + 1) * MICROSECONDS_PER_DAY)  # a summary as of the window's start lists these
    at = _positions(ids, known.take(pa.array(buyers)))
    at = np.where(at >= 0, buyers[np.maximum(at, 0)] if len(buyers) else -1, -1)
    rest = np.flatnonzero(at < 0)
    if len(rest):  # not a buyer by then (a prospect, an unknown id): looked up among all
        at[rest] = to_numpy(pc.fill_null(pc.index_in(ids.take(pa.array(rest)), value_set=known), -1)).astype(np.int64)
    found = at >= 0
    out = pd.DataFrame({"customer_id": ids.to_numpy(zero_copy_only=False),
                        "purchases": np.where(found, purchases[np.maximum(at, 0)] if len(purchases) else 0.0, 0.0),
                        "spend": np.where(found, spend[np.maximum(at, 0)] if len(spend) else 0.0, 0.0)})
    out["bought"] = out["purchases"] > 0
    return out


def _positions(ids: Any, known: Any) -> np.ndarray:
    """Position in ``known`` of each of ``ids`` (both pyarrow string arrays; -1 when absent). When
    ``ids`` start with a subsequence of ``known`` in its order (the customers of a summary finished
    from the same lists, then prospects), those are matched by one pass of comparisons and only the
    rest by a hash lookup."""
    import pyarrow.compute as pc

    from patron.data.arrow_numpy import to_numpy

    at = np.full(len(ids), -1, dtype=np.int64)
    i = j = 0
    n, m = len(ids), len(known)
    # walk both in order while they agree, skipping ids of known that ids leave out (in chunks, vectorised)
    chunk = 1 << 16
    while i < n and j < m:
        size = min(chunk, n - i, m - j)
        equal = to_numpy(pc.equal(ids.slice(i, size), known.slice(j, size)).fill_null(False)).astype(bool)
        if equal.all():
            at[i:i + size] = np.arange(j, j + size)
            i, j = i + size, j + size
            continue
        k = int(np.argmin(equal))  # first disagreement
        at[i:i + k] = np.arange(j, j + k)
        i, j = i + k, j + k
        break
    if i < n:
        rest = to_numpy(pc.fill_null(pc.index_in(ids.slice(i), value_set=known), -1)).astype(np.int64)
        at[i:] = rest
    return at


def _mean_interval(mean: np.ndarray, sd: np.ndarray, n: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Student-t interval of a mean; NaN for groups of fewer than 2."""
    with np.errstate(invalid="ignore", divide="ignore"):
        t = stats.t.ppf(0.5 + level / 2.0, np.maximum(n - 1.0, 1.0))
        half = np.where(n >= 2, t * sd / np.sqrt(n), np.nan)
    return mean - half, mean + half


GROUP_COLUMNS: tuple[str, ...] = (
    "customers", "bought", "bought_share", "bought_lower", "bought_upper", "predicted_share", "within",
    "purchases", "purchases_lower", "purchases_upper", "predicted_purchases", "spend", "spend_lower", "spend_upper",
)
"""Columns :func:`group_outcomes` adds to the group column."""


def group_outcomes(frame: pd.DataFrame, by: str, *, order: list[str] | None = None, level: float = LEVEL) -> pd.DataFrame:
    """One row per value of ``frame[by]`` (in ``order`` when given; groups without members are
    left out) with :data:`GROUP_COLUMNS`:

    * ``bought``: customers with a purchase in the window, ``bought_share`` their share with its
      Wilson interval (``bought_lower``, ``bought_upper``);
    * ``predicted_share``: the mean of the model's P(a purchase in the window) over the group
      (column ``predicted_probability`` of ``frame``; NaN when absent), ``within`` whether it
      lies in the interval of the actual share;
    * ``purchases`` / ``spend``: mean purchase days and spend per customer with Student-t
      intervals; ``predicted_purchases`` the mean of ``predicted_purchases`` (the model's
      expected purchases in the window).
    """
    f = frame.copy()
    for column in ("predicted_probability", "predicted_purchases"):
        if column not in f.columns:
            f[column] = np.nan
    g = f.groupby(by, observed=True, sort=False)
    agg = g.agg(customers=("bought", "size"), bought=("bought", "sum"), purchases=("purchases", "mean"),
                purchases_sd=("purchases", "std"), spend=("spend", "mean"), spend_sd=("spend", "std"),
                predicted_share=("predicted_probability", "mean"), predicted_purchases=("predicted_purchases", "mean"))
    if order is not None:
        agg = agg.reindex([k for k in order if k in agg.index])
    n = agg["customers"].to_numpy(dtype=float)
    share, lower, upper = wilson_interval(agg["bought"].to_numpy(dtype=float), n, level=level)
    agg["bought_share"], agg["bought_lower"], agg["bought_upper"] = share, lower, upper
    agg["within"] = (agg["predicted_share"] >= lower) & (agg["predicted_share"] <= upper)
    for name in ("purchases", "spend"):
        lo, hi = _mean_interval(agg[name].to_numpy(dtype=float), agg.pop(f"{name}_sd").to_numpy(dtype=float), n, level)
        agg[f"{name}_lower"], agg[f"{name}_upper"] = lo, hi
    agg["bought"] = agg["bought"].astype(np.int64)
    agg["customers"] = agg["customers"].astype(np.int64)
    return agg.reset_index()[[by, *GROUP_COLUMNS]]


@dataclass(frozen=True)
class Backtest:
    """The result of a backtest: the window, one row per group (``table``), the share of all
    buyers who bought again (``base_rate``) and notes on how the numbers were made."""

    kind: str
    window: Window
    table: pd.DataFrame
    base_rate: float
    checks: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
