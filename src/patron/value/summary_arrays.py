"""The DuckDB plan for the customer summary: the engine collects each customer's orders into lists
(:func:`patron.value.summary_sql.order_lists_sql`), NumPy finishes the summary on the flat arrays.

Same definitions as :mod:`patron.value.summary_sql` (the portable SQL that Spark runs, and that this plan
is tested against): purchase periods of the ``grain``, durations in ``unit``, refunds netted,
holdout counts. Why a second plan: the portable query aggregates twice, first by (customer,
period), a hash table with nearly one group per order, then by customer. Here the engine
aggregates once, by customer, and the periods are found with a few vectorised passes over the
orders sorted by customer and time (the lists usually arrive in time order already: only the
customers whose orders do not are sorted).

Every array below is indexed either by order (flat, grouped by customer) or by customer (the
rows of the engine's result); days count from 1970-01-01.
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from patron.data.arrow_numpy import from_numpy, to_numpy
from patron.value.summary_sql import UNIT_MICROS, SummarySpec, last_instant, order_lists_sql

MICROSECONDS_PER_DAY = 86_400_000_000
MICROSECONDS_PER_HOUR = 3_600_000_000
ORDERS_PER_SLICE = 1 << 18
"""Orders per slice of customers finished at once (arrays of 2 MiB)."""
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def period_key(micros: np.ndarray, grain: str) -> np.ndarray:
    """A number for the ``grain`` period holding each timestamp (``micros``, microseconds since
    1970-01-01), increasing with time: days since 1970-01-01 (``D``), ISO weeks since the week of
    Monday 1969-12-29 (``W``), months since January 1970 (``M``) or hours (``H``)."""
    if grain == "H":
        return np.floor_divide(micros, MICROSECONDS_PER_HOUR)
    if grain == "D":
        return np.floor_divide(micros, MICROSECONDS_PER_DAY)
    if grain == "W":  # 1970-01-01 was a Thursday, three days after a Monday
        return np.floor_divide(micros + 3 * MICROSECONDS_PER_DAY, 7 * MICROSECONDS_PER_DAY)
    day = np.floor_divide(micros, MICROSECONDS_PER_DAY)
    return day.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)


def period_start_day(key: np.ndarray, grain: str) -> np.ndarray:
    """The first day (days since 1970-01-01) of the periods numbered by :func:`period_key`."""
    if grain == "W":
        return key * 7 - 3
    if grain == "M":
        return key.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    return key


def period_start_micros(key: np.ndarray, grain: str) -> np.ndarray:
    """The first instant (microseconds since 1970-01-01) of the periods numbered by :func:`period_key`."""
    if grain == "H":
        return key * MICROSECONDS_PER_HOUR
    return period_start_day(key, grain) * MICROSECONDS_PER_DAY


def span(start_key: np.ndarray, end_key: np.ndarray, grain: str, unit: str) -> np.ndarray:
    """Time from the period ``start_key`` to the period ``end_key`` in ``unit``: whole calendar
    months when grain and unit are both ``M``, otherwise the time between the periods' starts
    divided by the unit's length (as :func:`patron.value.summary_sql._span`; both are exact integers
    of microseconds, so the quotient is the same double as days divided by the unit's days)."""
    if grain == "M" and unit == "M":
        return (end_key - start_key).astype(np.float64)
    micros = period_start_micros(end_key, grain) - period_start_micros(start_key, grain)
    return micros.astype(np.float64) / float(UNIT_MICROS[unit])


def _micros(value: date) -> int:
    """Microseconds since 1970-01-01 of the last instant an end includes."""
    stamp = last_instant(value)
    return (stamp.toordinal() - _EPOCH_ORDINAL) * MICROSECONDS_PER_DAY + (
        (stamp.hour * 3600 + stamp.minute * 60 + stamp.second) * 1_000_000 + stamp.microsecond)


def end_micros(value: date) -> int:
    """Microseconds since 1970-01-01 of the last instant the summary end ``value`` includes."""
    return _micros(value)


def first_purchase_micros(lists: pa.Table) -> np.ndarray:
    """Per row of :func:`patron.value.summary_sql.order_lists_sql`'s result, the time
    (microseconds since 1970-01-01) of the customer's first purchase (an order of amount 0 or
    more; refunds are not purchases), or the largest int64 when they have none: the customer is
    in the summary as of ``end`` exactly when this is at most :func:`end_micros` of ``end``."""
    lengths = pc.list_value_length(lists.column("ts")).to_numpy().astype(np.int64)
    if not len(lengths):
        return np.zeros(0, dtype=np.int64)
    micros = _flat(lists.column("ts"), pa.timestamp("us")).view(np.int64)
    amount = _flat(lists.column("amounts"), pa.float64())
    masked = np.where(amount >= 0, micros, np.iinfo(np.int64).max)
    return np.minimum.reduceat(masked, np.cumsum(lengths) - lengths)


@dataclass(frozen=True)
class Periods:
    """Per customer, the purchase periods among a subset of their orders (zeros for a customer
    with no order in the subset)."""

    n_periods: np.ndarray
    n_orders: np.ndarray
    value: np.ndarray
    """Sum of the orders' amounts."""
    repeat_value: np.ndarray
    """Sum of the amounts of the periods after the first."""
    first_key: np.ndarray
    last_key: np.ndarray
    first_order: np.ndarray
    last_order: np.ndarray
    """Flat index of each customer's first and last order in the subset."""


def periods(key: np.ndarray, amount: np.ndarray, lengths: np.ndarray, subset: np.ndarray | None = None) -> Periods:
    """Purchase periods of the orders in ``subset`` (a boolean mask over orders; all orders when
    ``None``). Orders are grouped by customer, ``lengths[i]`` of them for customer ``i``, each
    customer's in time order (every customer has at least one order): a new period starts
    wherever the period key changes from the customer's previous order.

    One pass of ``np.add.reduceat`` over the amounts, cut at each customer's first order and at
    the start of their second period, gives both the first period's value and the rest."""
    n = len(lengths)
    rows = None
    counts = lengths
    if subset is not None:
        rows = np.flatnonzero(subset)
        counts = np.add.reduceat(subset, np.cumsum(lengths) - lengths, dtype=np.int64) if n else lengths
        key, amount = key[rows], amount[rows]
    out = {name: np.zeros(n, dtype=np.int64) for name in ("n_periods", "first_key", "last_key", "first_order", "last_order")}
    value, repeat_value = np.zeros(n), np.zeros(n)
    owners = np.flatnonzero(counts)
    if len(owners):
        m = len(key)
        ends = np.cumsum(counts[owners])  # one past each owner's last order
        starts = np.empty_like(ends)
        starts[0], starts[1:] = 0, ends[:-1]
        # Orders in the same period as the customer's previous order: few, as most orders start
        # a period. A customer's first order is compared with nothing.
        same = np.empty(m, dtype=bool)
        same[0] = False
        np.equal(key[1:], key[:-1], out=same[1:])
        same[starts] = False
        same_at = np.flatnonzero(same)
        n_periods = (ends - starts) - np.bincount(np.searchsorted(ends, same_at, side="right"), minlength=len(ends))
        several = n_periods > 1
        # The second period starts at the customer's second order, unless that order is in the
        # first period: then one past the run of same-period orders it begins (runs of
        # consecutive positions in same_at never cross customers, as first orders are not in it).
        cut = np.minimum(starts + 1, ends)  # start of the second period, or one past the last order
        longer = np.flatnonzero(same[np.minimum(starts + 1, m - 1)] & (ends - starts > 1))
        if len(longer):
            run_last = np.append(np.flatnonzero(np.diff(same_at) != 1), len(same_at) - 1)
            first_same = np.searchsorted(same_at, starts[longer] + 1)
            cut[longer] = same_at[run_last[np.searchsorted(run_last, first_same)]] + 1
        at_end = cut[-1] == m
        if at_end:
            cut[-1] = m - 1  # reduceat needs indices inside the array: the last owner is summed apart
        sums = np.add.reduceat(amount, np.column_stack((starts, cut)).ravel())
        first, rest = sums[0::2], np.where(several, sums[1::2], 0.0)
        value[owners] = first + rest
        repeat_value[owners] = rest
        if at_end:
            value[owners[-1]] = amount[starts[-1]:].sum()
        out["n_periods"][owners] = n_periods
        out["first_key"][owners], out["last_key"][owners] = key[starts], key[ends - 1]
        out["first_order"][owners] = starts if rows is None else rows[starts]
        out["last_order"][owners] = ends - 1 if rows is None else rows[ends - 1]
    return Periods(
        n_periods=out["n_periods"], n_orders=np.asarray(counts, dtype=np.int64), value=value,
        repeat_value=repeat_value, first_key=out["first_key"], last_key=out["last_key"],
        first_order=out["first_order"], last_order=out["last_order"],
    )


def _in_time_order(micros: np.ndarray, amount: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``micros`` and ``amount`` with each customer's orders (grouped by customer, ``lengths``
    of them each) in time order; only the customers whose orders are out of order are sorted."""
    back = micros[1:] < micros[:-1]
    ends = np.cumsum(lengths)  # one past each customer's last order
    back[ends[:-1] - 1] = False  # a customer's first order may precede the previous customer's last
    late = np.flatnonzero(back) + 1
    if not len(late):
        return micros, amount
    unsorted = np.unique(np.searchsorted(ends, late, side="right"))
    count = lengths[unsorted]
    rows = np.arange(count.sum()) + np.repeat(ends[unsorted] - np.cumsum(count), count)
    order = rows[np.lexsort((micros[rows], np.repeat(np.arange(len(unsorted)), count)))]
    micros, amount = micros.copy(), amount.copy()
    micros[rows], amount[rows] = micros[order], amount[order]
    return micros, amount


def _flat(column: pa.ChunkedArray, value_type: pa.DataType) -> np.ndarray:
    return to_numpy(pc.list_flatten(column).cast(value_type))


def flat_orders(lists: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(lengths, micros, amount)`` of the lists of :func:`patron.value.summary_sql.order_lists_sql`:
    orders per customer, and each order's time (microseconds since 1970-01-01) and amount, grouped
    by customer and in time order within a customer."""
    lengths = to_numpy(pc.list_value_length(lists.column("ts"))).astype(np.int64)
    micros = _flat(lists.column("ts"), pa.timestamp("us")).view(np.int64)
    amount = _flat(lists.column("amounts"), pa.float64())
    if len(micros) > 1:
        micros, amount = _in_time_order(micros, amount, lengths)
    return lengths, micros, amount


def _mask(condition: np.ndarray) -> np.ndarray | None:
    """``condition``, or ``None`` when it holds for every order (the common case, cheaper)."""
    return None if condition.all() else condition


def run_summary(con: duckdb.DuckDBPyConnection, spec: SummarySpec, *, threads: int | None = None) -> pa.Table:
    """The summary of ``spec`` on the DuckDB connection ``con``: the engine's lists
    (:func:`patron.value.summary_sql.order_lists_sql`) finished by :func:`finish_summary`."""
    return finish_summary(con.sql(order_lists_sql(spec)).to_arrow_table(), spec, threads=threads)


def finish_summary(lists: pa.Table, spec: SummarySpec, *, threads: int | None = None) -> pa.Table:
    """The summary (columns and definitions of :func:`patron.value.summary_sql.summary_sql`) from the
    result of :func:`patron.value.summary_sql.order_lists_sql`, one row per customer with a purchase
    on or before ``spec.end``, in the engine's order.

    Customers are finished in slices of about :data:`ORDERS_PER_SLICE` orders, on ``threads``
    threads (default one per core): small arrays are reused from the allocator's heap and stay
    in the CPU's caches."""
    n = lists.num_rows
    ends = np.cumsum(to_numpy(pc.list_value_length(lists.column("ts"))))
    if n == 0 or ends[-1] <= ORDERS_PER_SLICE:
        return _finish_slice(lists, spec)
    cuts = np.unique(np.concatenate(([0, n], np.searchsorted(ends, np.arange(ORDERS_PER_SLICE, ends[-1], ORDERS_PER_SLICE)) + 1)))
    cuts = cuts[cuts <= n].tolist()
    slices = [lists.slice(a, b - a) for a, b in itertools.pairwise(cuts)]
    workers = min(len(slices), threads or os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:  # NumPy releases the GIL in these passes
        return pa.concat_tables(pool.map(lambda part: _finish_slice(part, spec), slices))


def _finish_slice(lists: pa.Table, spec: SummarySpec) -> pa.Table:
    """:func:`finish_summary` for one slice of customers."""
    lengths, micros, amount = flat_orders(lists)
    key = period_key(micros, spec.grain)
    end_last = _micros(spec.end)
    after_end = end_last + 1
    calibration = _mask(micros < after_end)
    purchase = _mask(amount >= 0)
    if calibration is None:
        cal = periods(key, amount, lengths, purchase)
    else:
        cal = periods(key, amount, lengths, calibration if purchase is None else calibration & purchase)
    refunded = np.zeros(len(lengths))
    if purchase is not None:
        refund = ~purchase if calibration is None else ~purchase & calibration
        starts = np.cumsum(lengths) - lengths
        refunded = 0.0 - np.add.reduceat(np.where(refund, amount, 0.0), starts) if len(starts) else refunded
    has_purchase = cal.n_orders > 0
    keep: np.ndarray | slice = slice(None) if has_purchase.all() else has_purchase
    # A copy: a column of the engine's result would keep its whole batch (lists included) alive.
    column = lists.column("customer_id")
    ids = pa.concat_arrays(column.chunks) if column.num_chunks else pa.nulls(0, type=column.type)
    end_key = period_key(np.array([end_last]), spec.grain)
    repeat = np.maximum(cal.n_periods - 1, 1)
    columns: dict[str, pa.Array | pa.ChunkedArray | np.ndarray] = {
        "customer_id": ids if isinstance(keep, slice) else ids.filter(from_numpy(keep)),
        "frequency": (cal.n_periods - 1)[keep],
        "recency": span(cal.first_key, cal.last_key, spec.grain, spec.unit)[keep],
        "T": span(cal.first_key, np.broadcast_to(end_key, cal.first_key.shape), spec.grain, spec.unit)[keep],
        "monetary_value": (cal.repeat_value / repeat)[keep],
        "n_orders": cal.n_orders[keep],
        "total_spend": (cal.value - refunded)[keep],
        "refunded": refunded[keep],
        "first_purchase": from_numpy(micros[cal.first_order[keep]], pa.timestamp("us")),
        "last_purchase": from_numpy(micros[cal.last_order[keep]], pa.timestamp("us")),
    }
    if spec.holdout_end is not None:
        hold_last = _micros(spec.holdout_end)
        hold_rows = (micros >= after_end) & (micros <= hold_last)
        hold = periods(key, amount, lengths, hold_rows if purchase is None else hold_rows & purchase)
        if spec.grain == "M":
            keys = period_key(np.array([end_last, hold_last]), "M")
            duration = float(span(keys[:1], keys[1:], "M", spec.unit)[0])
        else:
            duration = (hold_last - end_last) / float(UNIT_MICROS[spec.unit])
        n_hold = hold.n_periods[keep]
        columns["frequency_holdout"] = n_hold
        columns["monetary_value_holdout"] = np.where(n_hold > 0, hold.value[keep] / np.maximum(n_hold, 1), 0.0)
        columns["duration_holdout"] = np.full(len(n_hold), duration)
    # Built from the buffers: pa.table of NumPy arrays would import pandas (patron.data.arrow_numpy).
    return pa.table({name: from_numpy(v) if isinstance(v, np.ndarray) else v for name, v in columns.items()})
