"""Customer equity (the sum of CLV) by a profile column, and over time.

- :func:`equity_by` groups ``customer_profiles`` by one column (``top_category``, ``value_tier``,
  ``status``, the virtual ``rfm_cell``, ...) in SQL: customers, equity, mean CLV and equity share.
  Groups partition the customers, so their shares sum to 1.
- :func:`equity_over_time` re-fits the transaction model and Gamma-Gamma as of each period end
  (month end by default) on the summary of the purchases up to that day and sums CLV with the
  ``[value]`` settings (:mod:`patron.value.settings`; by default BG/NBD, 52 weeks, 10% a year,
  margin 1, as the profiles), with the interval for parameter uncertainty from
  :func:`patron.value.scoring.score`. Summaries for all dates are computed in one database session; each
  fit runs on one row per customer.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from patron.config import section
from patron.data.store import reader, table_exists
from patron.dates import parse_day, purchase_span
from patron.errors import InputError, NoDataError, PatronError
from patron.relationship.profiles import PROFILE_TABLE
from patron.relationship.rfm import RfmRules
from patron.relationship.segments.rules import quote_identifier
from patron.value.settings import ValueSettings, value_settings
from patron.value.summary_arrays import end_micros, finish_summary, first_purchase_micros
from patron.value.summary_sql import SummarySpec, order_lists_sql

ALIASES: dict[str, str] = {"category": "top_category", "tier": "value_tier", "segment_rfm": "rfm_cell"}
"""Short names accepted by :func:`equity_by`."""

FREQUENCIES: dict[str, int] = {"M": 1, "Q": 3, "Y": 12}
"""Period ends :func:`equity_over_time` can step by: months per step."""


def equity_by(db: str | os.PathLike[str] | None, by: str, *, config: Any = None, as_of: Any = None,
              settings: ValueSettings | None = None) -> pd.DataFrame:
    """Customer equity per value of profile column ``by`` (``category`` means ``top_category``,
    ``tier`` ``value_tier``; ``rfm_cell`` is the named RFM cell). Columns: ``<by>, customers,
    equity, mean_clv, equity_share`` (share of total equity), largest equity first; customers with
    no value (e.g. prospects without a tier) form the group NULL. CLV is computed with
    ``settings`` (default: the ``[value]`` section of ``config``)."""
    from patron.relationship.segments import ensure_profiles

    ensure_profiles(db, as_of=as_of, config=config, settings=settings)
    with reader(db) as con:
        column, expr = group_column(con, by, config)
        sql = f"""SELECT g.{quote_identifier(column)}, g.customers, g.equity, g.mean_clv,
    CASE WHEN tot.equity > 0 THEN g.equity / tot.equity END AS equity_share
FROM (SELECT {expr} AS {quote_identifier(column)}, COUNT(*) AS customers, COALESCE(SUM(clv), 0.0) AS equity, AVG(clv) AS mean_clv
      FROM {PROFILE_TABLE} GROUP BY {expr}) AS g
CROSS JOIN (SELECT SUM(clv) AS equity FROM {PROFILE_TABLE}) AS tot
ORDER BY g.equity DESC, g.{quote_identifier(column)}"""
        return con.sql(sql).df()


def group_column(con: Any, by: str, config: Any = None) -> tuple[str, str]:
    """The profile column ``by`` names (:data:`ALIASES` applied) and its SQL expression over
    ``customer_profiles`` (open on ``con``); an unknown name is an :class:`InputError` with the
    closest column ("did you mean")."""
    from patron.relationship.segments import profile_columns

    column = ALIASES.get(by, by)
    cols = profile_columns(con, bins=section("rfm", RfmRules, config).bins)
    if column not in cols:
        import difflib

        close = difflib.get_close_matches(column, list(cols), n=1)
        hint = f" (did you mean {close[0]}?)" if close else f"; columns: {', '.join(cols)}"
        raise InputError(f"by: unknown profile column {by!r}{hint}", parameters=("by",))
    return column, cols[column].sql


def period_ends(start: date, end: date, freq: str = "M") -> list[date]:
    """The last days of each month (``M``), quarter (``Q``) or year (``Y``) from ``start`` to
    ``end``, plus ``end`` itself when it is not one of them."""
    step = FREQUENCIES.get(freq.upper())
    if step is None:
        raise InputError(f"freq must be one of {', '.join(FREQUENCIES)}; got {freq!r}")
    out: list[date] = []
    month = start.year * 12 + start.month - 1
    while True:
        y, m = divmod(month + 1, 12)  # first day of the next month, minus one day
        last = date(y, m + 1, 1) - timedelta(days=1)
        if last > end:
            break
        if last.month % step == 0:
            out.append(last)
        month += 1
    if not out or out[-1] != end:
        out.append(end)
    return out


def summaries_at_period_ends(db: str | os.PathLike[str] | None, start: Any, end: Any, freq: str,
                             unit: str) -> tuple[list[date], list[pd.DataFrame]]:
    """The period ends from ``start`` to ``end`` (default: the first and last purchase day) and the
    customer summary as of each, in periods of ``unit`` (one read of the database)."""
    days, frames = [], []
    for day, frame in iter_summaries_at_period_ends(db, start, end, freq, unit):
        days.append(day)
        frames.append(frame)
    return days, frames


def iter_summaries_at_period_ends(db: str | os.PathLike[str] | None, start: Any, end: Any, freq: str,
                                  unit: str) -> Iterator[tuple[date, pd.DataFrame]]:
    """:func:`summaries_at_period_ends` one period end at a time, ``(day, summary)``, so that a
    caller that needs only the previous one never holds them all (a large base has a summary of
    every customer per period end)."""
    for d, frame, _ in iter_period_end_summaries(db, start, end, freq, unit):
        yield d, frame


def period_end_lists(db: str | os.PathLike[str] | None, start: Any, end: Any, freq: str, unit: str, *,
                     lists: pa.Table | None = None) -> tuple[list[date], pa.Table]:
    """The period ends from ``start`` to ``end`` (default: the days of the first and the last
    purchase in ``db``) and every customer's orders up to the last of them as lists
    (:func:`patron.value.summary_sql.order_lists_sql`; ``lists`` when the caller has read them,
    up to the last period end or later)."""
    with reader(db) as con:
        if not table_exists(con, "transactions"):
            raise NoDataError(f"database {db} holds no transactions: run patron ingest FILE first")
        first, last = purchase_span(con, where=str(db))
        lo, hi = parse_day(start, "start") or first, parse_day(end, "end") or last
        if hi < lo:
            raise InputError(f"end {hi} is before start {lo}")
        days = period_ends(lo, hi, freq)
        if lists is None:
            lists = con.sql(order_lists_sql(SummarySpec(end=hi, unit=unit))).to_arrow_table()
    return days, lists


def iter_period_end_summaries(db: str | os.PathLike[str] | None, start: Any, end: Any, freq: str,
                              unit: str, *, lists: pa.Table | None = None,
                              columns: tuple[str, ...] | None = None) -> Iterator[tuple[date, pd.DataFrame, np.ndarray]]:
    """``(day, summary, rows)`` per period end: one read of the database (each customer's orders
    up to the last period end, as lists, :func:`patron.value.summary_sql.order_lists_sql`), each
    period end's summary finished from those lists with the orders after it left out
    (:func:`patron.value.summary_arrays.finish_summary`: the same rows and values as a summary
    queried as of that day). Every summary lists its customers in the same order; ``rows`` are
    their positions in the list of every customer (ascending), so that two period ends' customers
    match by position, without comparing ids. ``lists``: that read when the caller already has
    it (:func:`patron.value.summary_sql.order_lists_sql` up to the last period end or later).
    ``columns``: only these columns of each summary (a caller that matches by ``rows`` needs no
    ids: on a large base they are most of a summary's memory)."""
    days, lists = period_end_lists(db, start, end, freq, unit, lists=lists)
    bought = first_purchase_micros(lists)
    for d in days:
        spec = SummarySpec(end=d, unit=unit)
        table = finish_summary(lists, spec)
        frame = (table if columns is None else table.select(list(columns))).to_pandas()
        del table
        rows = np.flatnonzero(bought <= end_micros(d))
        if len(rows) != len(frame):  # cannot happen (same definition); stated rather than assumed
            raise RuntimeError(f"period-end summary of {d}: {len(frame)} customers, {len(rows)} expected")
        yield d, frame, rows


def equity_over_time(
    db: str | os.PathLike[str] | None = None,
    *,
    start: str | date | datetime | None = None,
    end: str | date | datetime | None = None,
    freq: str = "M",
    config: Any = None,
    settings: ValueSettings | None = None,
) -> pd.DataFrame:
    """Customer equity as of each period end between ``start`` (default: the first purchase) and
    ``end`` (default: the last purchase), re-fitting the models on the purchases up to each date.

    Columns ``as_of, customers`` (who had bought by then), ``equity, equity_lower, equity_upper``
    (CLV with ``settings``, default the ``[value]`` section of ``config``; interval for parameter
    uncertainty at 95%). A date at which the models cannot be fitted or the optimiser does not
    converge (too little history, e.g. the first weeks of a business) has NaN equity.
    """
    from patron.value.scoring import fit_model, score

    value = settings if settings is not None else value_settings(config)

    days, frames = summaries_at_period_ends(db, start, end, freq, value.period)
    rows = []
    for d, frame in zip(days, frames, strict=True):
        row: dict[str, Any] = {"as_of": d, "customers": len(frame), "equity": math.nan, "equity_lower": math.nan, "equity_upper": math.nan}
        if len(frame):
            data = frame
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    if fit_model(value.model, data).converged_:  # a fast check first (~30 ms)
                        s = score(data, settings=value, db=db)
                        row.update(equity=s.equity, equity_lower=s.equity_lower, equity_upper=s.equity_upper)
            except (PatronError, ValueError, FloatingPointError):
                pass  # too little history to fit at this date: NaN
        rows.append(row)
    out = pd.DataFrame(rows)
    out["as_of"] = pd.to_datetime(out["as_of"])
    return out
