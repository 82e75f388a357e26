"""Customer summaries as of many period ends from one read of the orders, each in a few passes.

:func:`patron.value.summary_arrays.finish_summary` finishes the summary as of one day from the
orders listed per customer (:func:`patron.value.summary_sql.order_lists_sql`): flattening,
ordering and grouping every order again for each day. Here the orders are prepared once
(:class:`PeriodEndOrders`: flattened, each customer's in time order, refunds left out, the day of
each order and where each new purchase day starts) and the summary as of any day is read off them
with prefix arithmetic: a customer's purchases up to a day are the first ``c`` of their purchases
in time order, so

* ``frequency`` is the number of distinct purchase days among those ``c`` minus one (a running
  count of the orders that start a new day);
* ``recency`` and ``T`` are whole days (the day of the ``c``-th purchase, and the summary's end,
  minus the day of the first) over the unit's length, as :func:`patron.value.summary_arrays.span`;
* ``monetary_value`` is the sum of the amounts from the customer's second purchase day to the
  ``c``-th purchase, over ``frequency``: summed by ``np.add.reduceat`` over the same contiguous
  run of the same amounts as the summary sums, so it is the same double.

The grain is the day (the default of :class:`patron.value.summary_sql.SummarySpec`); every value is
the one :func:`~patron.value.summary_arrays.finish_summary` gives, bit for bit (tested), for the
customers with a purchase by then, listed in the order of the lists. Units: ``recency`` and ``T``
in the ``unit`` given (weeks by default); day counts are days since 1970-01-01; times are
microseconds since 1970-01-01.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa

from patron.value.summary_arrays import (
    MICROSECONDS_PER_DAY,
    end_micros,
    flat_orders,
    span,
)

__all__ = ["PeriodEndOrders", "PeriodEndSummary", "SummaryCells", "summary_cells"]


@dataclass(frozen=True)
class PeriodEndSummary:
    """The summary as of ``day`` of the customers with a purchase by then, in the lists' order.

    ``rows``: each customer's row in the lists (ascending). ``x`` (repeat purchase days),
    ``recency_days`` and ``T_days`` (whole days) as integers; ``frequency`` and
    ``monetary_value`` (currency) as the summary's doubles, and :attr:`recency` and :attr:`T`
    (in ``unit``) computed when asked for; ``last_purchase``: the time of the last purchase
    (microseconds since 1970-01-01)."""

    day: date
    unit: str
    rows: np.ndarray
    x: np.ndarray
    recency_days: np.ndarray
    T_days: np.ndarray
    frequency: np.ndarray
    monetary_value: np.ndarray
    last_purchase: np.ndarray

    @property
    def recency(self) -> np.ndarray:
        """Time from the first to the last purchase day, in ``unit`` (the summary's double)."""
        return days_in_unit(self.recency_days, self.unit)

    @property
    def T(self) -> np.ndarray:
        """Time from the first purchase day to the summary's end, in ``unit`` (the summary's double)."""
        return days_in_unit(self.T_days, self.unit)


def days_in_unit(days: np.ndarray, unit: str) -> np.ndarray:
    """Whole days as a duration in ``unit``: the double :func:`patron.value.summary_arrays.span`
    gives for periods of a day that many days apart."""
    return span(np.zeros_like(days), days, "D", unit)


class PeriodEndOrders:
    """Every customer's purchases prepared once from the order lists (module docstring), for
    summaries as of any day up to the lists' last order (:meth:`at`). ``unit``: the unit of
    ``recency`` and ``T`` (``D``, ``W``, ``M`` or ``H``)."""

    def __init__(self, lists: pa.Table, unit: str = "W") -> None:
        self.unit = unit
        self.customers = lists.num_rows
        lengths, micros, amount = flat_orders(lists)
        purchase = amount >= 0
        owner = np.repeat(np.arange(self.customers, dtype=np.int32), lengths)
        if not purchase.all():  # refunds are not purchases: left out of every purchase count and sum
            micros, amount, owner = micros[purchase], amount[purchase], owner[purchase]
            lengths = np.bincount(owner, minlength=self.customers).astype(np.int64)
        self.owner = owner
        self.micros = np.ascontiguousarray(micros)
        self.amount = np.append(amount, 0.0)  # one past the end, so that a run may end at len(amount)
        self.lengths = lengths
        self.starts = np.cumsum(lengths) - lengths
        self.day = np.floor_divide(self.micros, MICROSECONDS_PER_DAY).astype(np.int32)  # days since 1970-01-01
        n = len(self.micros)
        buyers = lengths > 0
        new_day = np.ones(n, dtype=bool)
        if n > 1:
            np.not_equal(self.day[1:], self.day[:-1], out=new_day[1:])
        # purchase days up to and including each order, counted over all customers (int32: fewer
        # than 2**31 orders)
        self.days_so_far = np.cumsum(new_day, dtype=np.int32)
        # the first order of each customer's second purchase day (one past their last order if none)
        new_day[self.starts[buyers]] = False
        later = np.flatnonzero(new_day)
        del new_day
        ends = self.starts + lengths
        self.second_day_start = ends.copy()
        if len(later):  # the first of them per customer: where the owner changes along the sorted positions
            owners = owner[later]
            first = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])
            self.second_day_start[owners[first]] = later[first]
        self.first_day = np.zeros(self.customers, dtype=np.int64)
        self.first_day[buyers] = self.day[self.starts[buyers]]
        self.buyers = buyers
        self._reset()

    def _reset(self) -> None:
        """Forget the summary last computed (:meth:`at` then starts from no purchases)."""
        self._end = np.iinfo(np.int64).min
        self._present = 0  # customers with a purchase by the end
        self._count = np.zeros(self.customers, dtype=np.int64)  # purchases by the end, per customer
        self._x = np.zeros(self.customers, dtype=np.int64)
        self._frequency = np.zeros(self.customers)
        self._recency_days = np.zeros(self.customers, dtype=np.int64)
        self._monetary = np.zeros(self.customers)
        self._last = np.zeros(self.customers, dtype=np.int64)

    def iter_at(self, days: list[date]) -> Iterator[PeriodEndSummary]:
        """:meth:`at` each of ``days`` (increasing), with the orders split among the days once
        (one pass) instead of a pass over every order per day. Each summary's arrays are valid
        until the next one is made (they are the running state, not copies)."""
        ends = np.array([end_micros(d) for d in days], dtype=np.int64)
        if len(ends) > 1 and (np.diff(ends) <= 0).any():
            raise ValueError("days must increase")
        self._reset()
        between = np.searchsorted(ends, self.micros, side="left")  # the first day whose end is at or after each order
        order = np.argsort(between.astype(np.int16 if len(ends) < 1 << 15 else np.int64), kind="stable")
        bounds = np.searchsorted(between[order], np.arange(len(ends) + 1), side="left")
        del between
        for k, d in enumerate(days):
            self._advance(order[bounds[k]:bounds[k + 1]], ends[k])
            yield self._summary(d, copy=False)

    def at(self, day: date) -> PeriodEndSummary:
        """The summary as of ``day`` (the whole day included) of the customers who had bought by
        then. Days asked for in increasing order are cheaper: only the customers who bought
        since the previous day are brought up to date."""
        end = end_micros(day)
        if end < self._end:
            self._reset()
        self._advance(np.flatnonzero((self.micros > self._end) & (self.micros <= end)), end)
        return self._summary(day, copy=True)

    def _advance(self, between: np.ndarray, end: int) -> None:
        """Bring the running summary up to ``end`` with the orders at positions ``between``
        (ascending): those after the previous end and up to this one."""
        self._end = end
        if not len(between):
            return
        owners = self.owner[between]  # ascending: the orders are grouped by customer
        cut = np.flatnonzero(np.diff(owners)) + 1
        changed = owners[np.r_[0, cut]].astype(np.int64)
        self._present += int((self._count[changed] == 0).sum())
        self._count[changed] += np.diff(np.r_[0, cut, len(owners)])
        start = self.starts[changed]
        last = start + self._count[changed] - 1
        x = (self.days_so_far[last] - self.days_so_far[start]).astype(np.int64)
        self._x[changed] = x
        self._frequency[changed] = x
        self._recency_days[changed] = self.day[last].astype(np.int64) - self.first_day[changed]
        self._last[changed] = self.micros[last]
        repeaters = np.flatnonzero(x > 0)
        if len(repeaters):
            bounds = np.empty(2 * len(repeaters), dtype=np.int64)
            bounds[0::2] = self.second_day_start[changed[repeaters]]
            bounds[1::2] = last[repeaters] + 1
            self._monetary[changed[repeaters]] = np.add.reduceat(self.amount, bounds)[0::2] / x[repeaters]

    def _summary(self, day: date, *, copy: bool) -> PeriodEndSummary:
        state = (self._x, self._frequency, self._recency_days, self._monetary, self._last)
        if self._present == self.customers:
            rows = np.arange(self.customers)
            first = self.first_day
            x, frequency, recency_days, monetary, last = (a.copy() for a in state) if copy else state
        else:
            rows = np.flatnonzero(self._count)
            first = self.first_day[rows]
            x, frequency, recency_days, monetary, last = (a[rows] for a in state)
        return PeriodEndSummary(
            day=day, unit=self.unit, rows=rows, x=x, recency_days=recency_days,
            T_days=end_day(self._end) - first, frequency=frequency, monetary_value=monetary, last_purchase=last,
        )


def end_day(end: int) -> int:
    """The day (days since 1970-01-01) holding the instant ``end`` (microseconds since 1970-01-01)."""
    return end // MICROSECONDS_PER_DAY


DENSE_CELL_KEYS = 1 << 26
"""Largest range of combined cell keys grouped through a dense lookup table (5 bytes per key);
wider ranges are hashed."""


@dataclass(frozen=True)
class SummaryCells:
    """The distinct ``(x, recency_days, T_days)`` rows (cells) of a :class:`PeriodEndSummary`, in
    lexicographic order (the order :func:`patron.value.models._rows.compress` gives the same rows
    as doubles), and the cell of each customer. ``counts``: customers per cell."""

    x: np.ndarray
    recency_days: np.ndarray
    T_days: np.ndarray
    of_customer: np.ndarray
    counts: np.ndarray


def _codes(key: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values of ``key`` (non-negative, below ``size``) and each element's code."""
    if size <= DENSE_CELL_KEYS:
        present = np.zeros(size, dtype=bool)
        present[key] = True
        keys = np.flatnonzero(present)
        del present
        table = np.empty(size, dtype=np.int32)
        table[keys] = np.arange(len(keys), dtype=np.int32)
        return keys, table[key]
    keys, codes = np.unique(key, return_inverse=True)
    return keys, codes.reshape(-1).astype(np.int32)


def summary_cells(summary: PeriodEndSummary) -> SummaryCells:
    """Group the customers of ``summary`` by their whole-day statistics: two passes of direct
    indexing (x with recency, then with T), no sorting of customers."""
    n = len(summary.rows)
    if not n:
        empty = np.zeros(0, dtype=np.int64)
        return SummaryCells(empty, empty, empty, np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int64))
    width = int(summary.T_days.max()) + 1  # recency_days <= T_days
    first = summary.x * width + summary.recency_days
    pairs, pair = _codes(first, int(first.max()) + 1)
    del first
    key = pair.astype(np.int64) * width + summary.T_days
    keys, of_customer = _codes(key, len(pairs) * width)
    del key
    pair_of, t_days = np.divmod(keys, width)
    x, recency_days = np.divmod(pairs[pair_of], width)
    counts = np.bincount(of_customer, minlength=len(keys))
    return SummaryCells(x, recency_days, t_days, of_customer, counts)
