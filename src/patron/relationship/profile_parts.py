"""The buyers' part of ``customer_profiles`` computed from one read of the orders, in customer order.

:func:`patron.relationship.profiles.build_profiles` on a large base: the engine collects each
customer's orders once (:func:`patron.value.summary_sql.order_lists_sql` as of the profiles' day),
and NumPy finishes from those lists, for the same rows in the same order,

* the weekly summary (:func:`patron.value.summary_arrays.finish_summary`),
* the summary as of the status' lookback day (the same lists finished at that day: a customer is
  in it exactly when their first purchase is on or before it, :func:`buyers_before`),
* the loyalty sums (:func:`loyalty_arrays`: purchase days, gaps, least-squares sums and slopes,
  the definitions of :func:`patron.relationship.loyalty.loyalty_sql`),
* the margin sums of profitability when a default margin rate applies (:func:`margin_arrays`).

The profiles then need no join between these parts: every column is matched by position and the
remaining expressions (status and its reason, trends, CLV net) are SQL over one Arrow table
(:func:`patron.relationship.profiles.positional_sql`). Floats that are sums of amounts (a
purchase day's value, the spend slope's sums) are added in order of time here and in the engine's
order by SQL: they may differ in the last digits.

Every array is indexed by order (flat, grouped by customer as the lists are, each customer's in
time order) or by customer (the rows of the lists); days count from 1970-01-01.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa

from patron.value.summary_arrays import MICROSECONDS_PER_DAY, flat_orders

__all__ = ["LOYALTY_SUMS", "flat_orders", "loyalty_arrays", "margin_arrays"]

LOYALTY_SUMS: tuple[str, ...] = ("n_purchases", "n_gaps", "days_to_second_purchase", "mean_gap", "interpurchase_slope",
                                 "mean_value", "spend_slope")
"""Columns of :func:`loyalty_arrays` (per customer; NaN where SQL has NULL)."""

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _slope(n: np.ndarray, sx: np.ndarray, sy: np.ndarray, sxx: np.ndarray, sxy: np.ndarray) -> np.ndarray:
    """:func:`patron.relationship.loyalty._slope` in NumPy, the same operations in the same order:
    ``(n Sxy - Sx Sy) / (n Sxx - Sx Sx)``, NaN (NULL) where the denominator is 0 or a sum is NaN."""
    num = n * sxy - sx * sy
    den = n * sxx - sx * sx
    out = np.full(len(n), np.nan)
    ok = den != 0
    np.divide(num, den, out=out, where=ok)
    return out


ORDERS_PER_SLICE = 1 << 20
"""Orders per slice of customers whose loyalty sums are computed at once (:func:`loyalty_arrays`):
small working arrays, reused from the heap, on each core."""


def loyalty_arrays(lengths: np.ndarray, micros: np.ndarray, amount: np.ndarray, day: date, *,
                   threads: int | None = None) -> dict[str, np.ndarray]:
    """:func:`loyalty_slice` over slices of about :data:`ORDERS_PER_SLICE` orders (whole
    customers), on ``threads`` threads (default one per core; NumPy releases the GIL): the
    same values, with working memory of a slice instead of the whole bucket."""
    import itertools
    import os
    from concurrent.futures import ThreadPoolExecutor

    ends = np.cumsum(lengths)
    if not len(ends) or ends[-1] <= 2 * ORDERS_PER_SLICE:
        return loyalty_slice(lengths, micros, amount, day)
    cuts = np.unique(np.concatenate(([0, len(ends)], np.searchsorted(ends, np.arange(ORDERS_PER_SLICE, ends[-1], ORDERS_PER_SLICE)) + 1)))
    cuts = cuts[cuts <= len(ends)].tolist()
    starts = np.concatenate(([0], ends))

    def part(bounds: tuple[int, int]) -> dict[str, np.ndarray]:
        a, b = bounds
        lo, hi = int(starts[a]), int(starts[b])
        return loyalty_slice(lengths[a:b], micros[lo:hi], amount[lo:hi], day)

    with ThreadPoolExecutor(max_workers=min(len(cuts) - 1, threads or os.cpu_count() or 1)) as pool:
        parts = list(pool.map(part, itertools.pairwise(cuts)))
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def loyalty_slice(lengths: np.ndarray, micros: np.ndarray, amount: np.ndarray, day: date) -> dict[str, np.ndarray]:
    """The per-customer loyalty sums of :func:`patron.relationship.loyalty.loyalty_sql` (its
    ``per_customer`` and ``slopes`` steps) from orders grouped by customer in time order
    (:func:`flat_orders`), counting orders with ``amount >= 0`` on or before ``day`` (purchases:
    orders grouped by calendar day, a day's value the sum of its orders):

    ``n_purchases`` (days with a purchase), ``n_gaps`` (``n_purchases - 1``, 0 for none),
    ``days_to_second_purchase`` (days), ``mean_gap`` (days), ``interpurchase_slope`` (days per
    purchase), ``mean_value`` (currency), ``spend_slope`` (currency per purchase); NaN where the
    SQL has NULL. Customers with no purchase have ``n_purchases`` 0 and NaN elsewhere."""
    n = len(lengths)
    last_day = day.toordinal() - _EPOCH_ORDINAL
    d = np.floor_divide(micros, MICROSECONDS_PER_DAY)
    o = np.repeat(np.arange(n, dtype=np.int64), lengths)  # the customer of each order
    a = amount
    keep = (amount >= 0) & (d <= last_day)
    if not keep.all():  # refunds or later orders: purchases only (usually every order is one)
        rows = np.flatnonzero(keep)
        d, a, o = d[rows], a[rows], o[rows]
        del rows
    del keep
    starts = np.ones(len(d), dtype=bool)
    if len(d):
        starts[1:] = (d[1:] != d[:-1]) | (o[1:] != o[:-1])
    at = np.flatnonzero(starts)
    value = np.add.reduceat(a, at) if len(at) else np.zeros(0)
    pday, powner = d[at], o[at]
    del d, a, o, starts
    n_purchases = np.bincount(powner, minlength=n).astype(np.int64)
    first = np.cumsum(n_purchases) - n_purchases  # index of each customer's first purchase
    k = (np.arange(len(at), dtype=np.int64) - first[powner] + 1).astype(np.float64)
    gap = np.full(len(at), np.nan)
    later = k > 1
    gap[later] = (pday[later] - np.concatenate(([0], pday[:-1]))[later]).astype(np.float64)

    repeat_owner = powner[later]

    def total(weights: np.ndarray, repeats: bool = False) -> np.ndarray:
        """Per customer, the sum of ``weights`` (one per purchase, or per repeat purchase)."""
        # float64 always: bincount of no purchases at all gives int64 zeros, which cannot hold the NaNs below
        return np.bincount(repeat_owner if repeats else powner, weights=weights, minlength=n).astype(np.float64, copy=False)

    n_gaps = np.maximum(n_purchases - 1, 0)
    none = n_gaps == 0  # SQL: sums over no gap are NULL
    k1 = k[later] - 1
    g = gap[later]
    gx, gy = total(k1, True), total(g, True)
    gxx, gxy = total(k1 * k1, True), total(k1 * g, True)
    for s in (gx, gy, gxx, gxy):
        s[none] = np.nan
    sx, sy, sxx, sxy = total(k), total(value), total(k * k), total(k * value)
    nobody = n_purchases == 0
    for s in (sx, sy, sxx, sxy):
        s[nobody] = np.nan
    second = np.full(n, np.nan)
    two = n_purchases >= 2
    second[two] = gap[first[two] + 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_gap = np.where(none, np.nan, gy / np.maximum(n_gaps, 1))
        mean_value = np.where(nobody, np.nan, sy / np.maximum(n_purchases, 1))
        ip_slope = _slope(n_gaps.astype(np.float64), gx, gy, gxx, gxy)
        sp_slope = _slope(n_purchases.astype(np.float64), sx, sy, sxx, sxy)
    return {"n_purchases": n_purchases, "n_gaps": n_gaps, "days_to_second_purchase": second, "mean_gap": mean_gap,
            "interpurchase_slope": ip_slope, "mean_value": mean_value, "spend_slope": sp_slope}


def margin_arrays(lengths: np.ndarray, amount: np.ndarray, rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Per customer, ``(margin_total, margin_revenue)`` of :func:`patron.relationship.profitability.profitability_sql`
    for orders that carry no margin and a default margin ``rate`` (0-1): the sum of ``amount x rate``
    and the sum of ``amount`` over every order (refunds included), in currency."""
    owner = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    return (np.bincount(owner, weights=amount * rate, minlength=len(lengths)).astype(np.float64, copy=False),
            np.bincount(owner, weights=amount, minlength=len(lengths)).astype(np.float64, copy=False))


INTERPURCHASE_TRENDS: tuple[str, ...] = ("insufficient", "shortening", "lengthening", "steady")
"""The values of ``interpurchase_trend``, indexed by the codes of :func:`trend_codes`."""

SPEND_TRENDS: tuple[str, ...] = ("insufficient", "falling", "rising", "steady")
"""The values of ``spend_trend``, indexed by the codes of :func:`trend_codes`."""


def trend_codes(n: np.ndarray, min_n: int, slope: np.ndarray, mean: np.ndarray, relative: float) -> np.ndarray:
    """:func:`patron.relationship.loyalty._trend` in NumPy, as int8 codes: 0 ``insufficient``
    (``n < min_n``), 1 down (``slope < 0`` and ``-slope >= relative x mean``), 2 up (``slope > 0`` and
    ``slope >= relative x mean``), 3 ``steady`` (anything else; a NaN slope or mean, SQL's NULL,
    matches neither comparison), with the same double arithmetic as the SQL."""
    with np.errstate(invalid="ignore"):
        bound = relative * mean
        down = (slope < 0) & (-slope >= bound)
        up = (slope > 0) & (slope >= bound)
    return np.select([n < int(min_n), down, up], [0, 1, 2], default=3).astype(np.int8)


def release_memory() -> None:
    """Hand memory freed by NumPy and Arrow back to the system (glibc's ``malloc_trim``, Arrow's
    ``release_unused``), so that what the per-bucket work freed is not still counted while the
    scores are computed; nothing happens where neither applies."""
    import ctypes
    import ctypes.util

    pa.default_memory_pool().release_unused()
    name = ctypes.util.find_library("c")
    if name:
        try:
            ctypes.CDLL(name).malloc_trim(0)
        except (OSError, AttributeError):  # not glibc
            pass
