"""Status over time: statuses recomputed as of month ends, and migration between two dates.

Each as-of date is assessed exactly as :func:`patron.relationship.status.relationship_status` would on that day:
the model is re-fitted on the history known then (so the history shows what an analyst would have
seen at each month end, not a hindsight reassessment).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from patron.data.store import reader, table_exists
from patron.dates import parse_day, purchase_span
from patron.errors import InputError, NoDataError
from patron.relationship.status import (
    STATUSES,
    StatusRules,
    assess,
    relationship_status,
    status_rules,
)
from patron.value.models import BaseModel as TransactionModel

NOT_YET = "not_yet_customer"
"""Row label of the migration matrix for customers not yet known (no purchase, not in
``customers``) at the first date."""

FREQUENCIES: dict[str, str] = {"M": "ME", "Q": "QE", "Y": "YE"}
"""``freq`` of :func:`status_history` (month, quarter, year ends) as pandas offset aliases."""

SLIPPING_FROM = ("new", "active", "cooling")
SLIPPING_TO = ("at_risk", "lapsed", "lost")
BACK_FROM = ("at_risk", "lapsed", "lost")

LADDER: dict[str, int] = {"lost": 0, "lapsed": 1, "at_risk": 2, "cooling": 3, "active": 4, "new": 4}
"""Rank of each buyer's status by the chance of buying again (higher is better); ``came_back``
counts moves from :data:`BACK_FROM` to a higher rank."""


def _purchase_days(db: str | os.PathLike[str] | None) -> tuple[date, date]:
    """Days of the first and of the last purchase in ``db`` (:func:`patron.dates.purchase_span`)."""
    with reader(db) as con:
        if not table_exists(con, "transactions"):
            raise NoDataError(f"database {db} holds no transactions")
        return purchase_span(con, where=str(db))


def as_of_dates(
    db: str | os.PathLike[str] | None = None,
    *,
    start: str | date | datetime | None = None,
    end: str | date | datetime | None = None,
    freq: str = "M",
) -> list[date]:
    """Period ends (``freq`` M, Q or Y) from ``start`` to ``end`` inclusive, plus ``end`` itself
    when it is not a period end. Defaults: the day of the first and of the last purchase."""
    alias = FREQUENCIES.get(freq.upper())
    if alias is None:
        raise InputError(f"freq must be one of {', '.join(FREQUENCIES)}; got {freq!r}")
    start_d, end_d = parse_day(start, "start"), parse_day(end, "end")
    if start_d is None or end_d is None:
        first, last = _purchase_days(db)
        start_d, end_d = start_d or first, end_d or last
    if start_d > end_d:
        raise InputError(f"start {start_d} is after end {end_d}")
    days = [d.date() for d in pd.date_range(start_d, end_d, freq=alias)]
    if not days or days[-1] != end_d:
        days.append(end_d)
    return days


def status_history(
    db: str | os.PathLike[str] | None = None,
    *,
    start: str | date | datetime | None = None,
    end: str | date | datetime | None = None,
    freq: str = "M",
    config: str | os.PathLike[str] | dict[str, Any] | StatusRules | None = None,
    model: str = "bgnbd",
    params: Mapping[str, float] | TransactionModel | None = None,
) -> pd.DataFrame:
    """Every customer's status as of each date of :func:`as_of_dates` (month ends by default).

    Columns ``as_of, customer_id, status, probability_alive``; one row per customer known at each
    date (prospects included); dates at which nobody had bought yet or the model cannot be fitted
    (too little history) are left out. The model is re-fitted at each date on the history known then
    (unless fixed ``params`` or a fitted model are given, as in :func:`relationship_status`).
    """
    rules = status_rules(config)
    frames = []
    for day in as_of_dates(db, start=start, end=end, freq=freq):
        try:
            st = relationship_status(db, as_of=day, config=rules, model=model, params=params)
        except (NoDataError, InputError):
            continue  # nobody had bought yet, or the model cannot be fitted on the history of that day
        frames.append(st[["as_of", "customer_id", "status", "probability_alive"]])
    if not frames:
        raise NoDataError("no purchases on or before any of the as-of dates")
    return pd.concat(frames, ignore_index=True)


def migration_matrix(
    db: str | os.PathLike[str] | None = None,
    *,
    from_date: str | date | datetime,
    to_date: str | date | datetime,
    config: str | os.PathLike[str] | dict[str, Any] | StatusRules | None = None,
    model: str = "bgnbd",
    params: Mapping[str, float] | TransactionModel | None = None,
    before: pd.DataFrame | None = None,
    after: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Counts of customers by status at ``from_date`` (rows) and at ``to_date`` (columns).

    Rows are :data:`NOT_YET` (customers unknown at ``from_date``) then :data:`STATUSES`; columns
    are :data:`STATUSES`; every cell is present (zeros included). Each date is assessed with the
    model fitted on the history known then (or with fixed ``params``). ``before`` / ``after``:
    the statuses (``customer_id, status``) of :func:`~patron.relationship.status.assess` at
    ``from_date`` / ``to_date`` with the same rules and model when already computed.
    """
    start, stop = parse_day(from_date, "from_date"), parse_day(to_date, "to_date")
    if start is None or stop is None:
        raise InputError("give both the from date and the to date")
    if start >= stop:
        raise InputError(f"from date {start} must be before to date {stop}")
    rules = status_rules(config)
    if after is None:
        after = assess(db, as_of=stop, config=rules, model=model, params=params, reasons=False)[0]
    after = after[["customer_id", "status"]]
    if before is None:
        try:
            before = assess(db, as_of=start, config=rules, model=model, params=params, reasons=False)[0]
        except NoDataError:
            before = after.iloc[:0]
    before = before[["customer_id", "status"]]
    pairs = after.merge(before, on="customer_id", how="left", suffixes=("_to", "_from"))
    pairs["status_from"] = pairs["status_from"].fillna(NOT_YET)
    rows, cols = [NOT_YET, *STATUSES], list(STATUSES)
    i = pd.Categorical(pairs["status_from"], categories=rows).codes
    j = pd.Categorical(pairs["status_to"], categories=cols).codes
    counts = np.zeros((len(rows), len(cols)), dtype=np.int64)
    np.add.at(counts, (i, j), 1)
    matrix = pd.DataFrame(counts, index=pd.Index(rows, name="from_status"), columns=pd.Index(cols, name="to_status"))
    return matrix


def _block(matrix: pd.DataFrame, rows: tuple[str, ...], cols: tuple[str, ...]) -> int:
    return int(matrix.loc[list(rows), list(cols)].to_numpy().sum())


def migration_flows(matrix: pd.DataFrame) -> dict[str, int]:
    """The headline flows of a :func:`migration_matrix`:

    * ``active_to_at_risk``: active at the first date, at_risk at the second;
    * ``slipped``: new/active/cooling -> at_risk/lapsed/lost;
    * ``came_back``: at_risk/lapsed/lost -> a status of higher :data:`LADDER` rank (lapsed ->
      at_risk, at_risk -> cooling, lost -> new, ...);
    * ``acquired``: not yet a customer or a prospect -> any status with a purchase;
    * ``unchanged``: the same status at both dates (the diagonal).
    """
    buying = tuple(s for s in STATUSES if s != "prospect")
    return {
        "active_to_at_risk": int(matrix.loc["active", "at_risk"]),
        "slipped": _block(matrix, SLIPPING_FROM, SLIPPING_TO),
        "came_back": int(sum(matrix.loc[f, t] for f in BACK_FROM for t in LADDER if LADDER[t] > LADDER[f])),
        "acquired": _block(matrix, (NOT_YET, "prospect"), buying),
        "unchanged": int(sum(matrix.loc[s, s] for s in STATUSES)),
    }


def statuses_at(orders: Any, day: date, rules: StatusRules, *, model: str = "bgnbd",
                params: Mapping[str, float] | TransactionModel | None = None) -> tuple[np.ndarray, np.ndarray, TransactionModel]:
    """Every buyer's status as of ``day`` from orders prepared once
    (:class:`patron.value.period_summaries.PeriodEndOrders`, weekly units), without an id or a
    string per customer: ``(rows, codes, model)`` with each buyer's row in the order lists, the
    index of their status in :data:`STATUSES` and the fitted model. The statuses of
    :func:`~patron.relationship.status.assess` (reasons aside): its model (fitted on the buyers
    with ``T > 0`` of the weekly summary as of ``day``, here on the cells of identical customers
    with their counts: the same compressed rows) and its rules; as a status depends only on the
    customer's whole-day statistics (frequency, days since the first and since the last
    purchase), each distinct row is classified once and mapped back (``NoDataError`` when nobody
    had bought by ``day``)."""
    rows, codes, fitted, _ = _status_cells(orders, day, rules, model=model, params=params)
    return rows, codes, fitted


def _status_cells(orders: Any, day: date, rules: StatusRules, *, model: str,
                  params: Mapping[str, float] | TransactionModel | None) -> tuple[np.ndarray, np.ndarray, TransactionModel, Any]:
    """:func:`statuses_at` and the cells it classified (:class:`patron.value.period_summaries.SummaryCells`)."""
    from patron.relationship.status_rules import classify
    from patron.value.period_summaries import days_in_unit, summary_cells

    summary = orders.at(day)
    if not len(summary.rows):
        raise NoDataError(f"no purchases on or before {day}")
    cells = summary_cells(summary)
    x = cells.x.astype(np.float64)
    tx, T = days_in_unit(cells.recency_days, orders.unit), days_in_unit(cells.T_days, orders.unit)
    data = pd.DataFrame({"frequency": x, "recency": tx, "T": T, "weight": cells.counts.astype(np.float64)})
    from patron.relationship.status import transaction_model

    fitted = transaction_model(model, params, data)
    frame = pd.DataFrame({
        "probability_purchase": np.asarray(fitted.conditional_probability_of_purchase(rules.horizon_weeks, x, tx, T), dtype=float),
        "probability_purchase_before": np.full(len(x), np.nan), "frequency": x,
        "days_since_first_purchase": cells.T_days.astype(np.float64),
        "days_since_last_purchase": (cells.T_days - cells.recency_days).astype(np.float64),
    })
    status, _ = classify(frame, rules, as_of=day, before=day - timedelta(days=rules.lookback_days), reasons=False)
    codes = pd.Categorical(status, categories=list(STATUSES)).codes.astype(np.int8)
    return summary.rows, codes[cells.of_customer], fitted, cells


def assessment_from_lists(
    db: str | os.PathLike[str] | None,
    *,
    day: str | date | datetime,
    lists: Any,
    config: str | os.PathLike[str] | dict[str, Any] | StatusRules | None = None,
    model: str = "bgnbd",
    params: Mapping[str, float] | TransactionModel | None = None,
) -> tuple[pd.DataFrame, TransactionModel]:
    """What :func:`patron.relationship.backtest.status_backtest` reads of
    :func:`~patron.relationship.status.assess` (``customer_id, status, frequency, recency, T,
    as_of``, with ``frequency`` in repeat purchases and ``recency``/``T`` in weeks, and the fitted
    model) from ``lists``, every customer's orders up to ``day`` or later
    (:func:`patron.value.summary_sql.order_lists_sql`), through :func:`statuses_at`: one
    classification per distinct statistics row instead of a per-customer frame; the prospects (known
    customers without a purchase by ``day``, from ``db``'s ``customers``) are added as ``assess``
    adds them. Rows are in the lists' order, prospects last."""
    import pyarrow as pa

    from patron.relationship.status import _prospects
    from patron.value.period_summaries import PeriodEndOrders, days_in_unit

    as_of = parse_day(day, "day")
    if as_of is None:
        raise InputError("give the day of the assessment")
    orders = PeriodEndOrders(lists, "W")
    rows, codes, fitted, cells = _status_cells(orders, as_of, status_rules(config), model=model, params=params)
    ids = lists.column("customer_id").take(pa.array(rows, pa.int64()))
    of = cells.of_customer
    frame = pd.DataFrame({
        "customer_id": np.asarray(ids.to_pandas(), dtype=object).astype(str),
        "status": np.asarray(STATUSES, dtype=object)[codes],
        "frequency": cells.x.astype(np.float64)[of],
        "recency": days_in_unit(cells.recency_days, orders.unit)[of],
        "T": days_in_unit(cells.T_days, orders.unit)[of],
    })
    with reader(db) as con:  # no known customers: no prospects (the anti-join would still read every order)
        known = table_exists(con, "customers") and bool(con.execute("SELECT 1 FROM customers LIMIT 1").fetchall())
    prospects = _prospects(db, as_of) if known else np.array([], dtype=object)
    if prospects.size:
        frame = pd.concat([frame, pd.DataFrame({"customer_id": prospects.astype(str), "status": "prospect"})],
                          ignore_index=True)
    frame["as_of"] = as_of
    return frame, fitted


def migration_from_lists(
    db: str | os.PathLike[str] | None = None,
    *,
    from_date: str | date | datetime,
    to_date: str | date | datetime,
    config: str | os.PathLike[str] | dict[str, Any] | StatusRules | None = None,
    model: str = "bgnbd",
    params: Mapping[str, float] | TransactionModel | None = None,
    lists: Any = None,
) -> pd.DataFrame:
    """:func:`migration_matrix` (the same counts) from one read of the orders: ``lists``, every
    customer's orders up to ``to_date`` or later (:func:`patron.value.summary_sql.order_lists_sql`,
    read from ``db`` when not given). Both dates' statuses come from :func:`statuses_at` on the
    same prepared orders, buyers are matched by their row in the lists (no join on ids) and the
    cells counted with ``np.bincount``; only the prospects (known customers without a purchase,
    from ``db``'s ``customers``) are matched by id."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from patron.relationship.status import _prospects
    from patron.value.period_summaries import PeriodEndOrders
    from patron.value.summary_sql import SummarySpec, order_lists_sql

    start, stop = parse_day(from_date, "from_date"), parse_day(to_date, "to_date")
    if start is None or stop is None:
        raise InputError("give both the from date and the to date")
    if start >= stop:
        raise InputError(f"from date {start} must be before to date {stop}")
    rules = status_rules(config)
    if lists is None:
        with reader(db) as con:
            if not table_exists(con, "transactions"):
                raise NoDataError(f"database {db} holds no transactions")
            lists = con.sql(order_lists_sql(SummarySpec(end=stop))).to_arrow_table()
    orders = PeriodEndOrders(lists, "W")
    rows, cols = [NOT_YET, *STATUSES], list(STATUSES)
    prospect = STATUSES.index("prospect")
    try:
        rows_from, codes_from, _ = statuses_at(orders, start, rules, model=model, params=params)
    except NoDataError:
        rows_from, codes_from = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int8)
    rows_to, codes_to, _ = statuses_at(orders, stop, rules, model=model, params=params)
    before = np.zeros(orders.customers, dtype=np.int8)  # row of the matrix: NOT_YET unless known at from_date
    before[rows_from] = codes_from.astype(np.int8) + 1
    with reader(db) as con:  # no known customers: no prospects (the anti-join would still read every order)
        known = table_exists(con, "customers") and bool(con.execute("SELECT 1 FROM customers LIMIT 1").fetchall())
    prospects_from = {str(p) for p in _prospects(db, start)} if known else set()
    prospects_to = [str(p) for p in _prospects(db, stop)] if known else []
    if prospects_from:  # prospects then who have bought by to_date: found among the buyers by id
        ids = lists.column("customer_id")
        if not pa.types.is_string(ids.type) and not pa.types.is_large_string(ids.type):
            ids = pc.cast(ids, pa.string())
        was = np.asarray(pc.is_in(ids, value_set=pa.array(sorted(prospects_from), type=pa.string())).to_numpy(zero_copy_only=False),
                         dtype=bool)
        before[was & (before == 0)] = prospect + 1
    counts = np.bincount(before[rows_to].astype(np.intp) * len(cols) + codes_to, minlength=len(rows) * len(cols))
    counts = counts.reshape(len(rows), len(cols)).astype(np.int64)
    known = sum(1 for p in prospects_to if p in prospects_from)
    counts[prospect + 1, prospect] += known
    counts[0, prospect] += len(prospects_to) - known
    return pd.DataFrame(counts, index=pd.Index(rows, name="from_status"), columns=pd.Index(cols, name="to_status"))
