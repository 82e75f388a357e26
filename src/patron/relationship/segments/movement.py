"""What moved customer equity from one period end to the next: an exact decomposition.

Customer equity at a date ``t`` is ``E_t = sum_i V(M_t, D_t(i))``: the CLV ``V`` of every
customer who had bought by ``t``, with the models ``M_t = (theta_t, phi_t)`` (transaction model
``theta``, spend model ``phi``) **refitted on the purchases up to t** and each customer's summary
``D_t(i)`` (frequency, recency, T, mean spend) as of ``t``. Between two period ends ``p < c`` the
change ``E_c - E_p`` is split into five parts, evaluated one after another so that they sum to the
change exactly (a telescoping sum; the order is stated because another order gives other parts):

1. ``new_customers``: ``sum over customers new in (p, c] of V(M_p, D_c)`` -- their value under the
   earlier models.
2. ``lost_customers``: for customers already there at ``p`` who did **not** buy in (p, c],
   ``V(M_p, D_c) - V(M_p, D_p)``: the value that fades as they stay silent (P(alive) and expected
   purchases fall, the horizon's discounting moves on), minus the value at ``p`` of customers no
   longer in the data (erased). Usually negative.
3. ``returning_customers``: the same difference for customers already there who bought in
   (p, c]: how their new purchases (more frequent, different spend) changed their value.
4. ``rate_estimates``: ``sum over all customers at c of V(theta_c, phi_p, D_c) - V(theta_p, phi_p, D_c)``:
   refitting the transaction model on one more period of purchases.
5. ``spend_estimates``: ``sum of V(theta_c, phi_c, D_c) - V(theta_c, phi_p, D_c)``: refitting the
   Gamma-Gamma spend model.

``1 + 2 + 3 + 4 + 5 = sum V(M_c, D_c) - sum V(M_p, D_p) = E_c - E_p``. The first period end has no
earlier one in the window, so it has no movement (its row says so); a period end where the models
cannot be fitted has no equity and neither it nor the next has a movement. Covariate models
(``[value] covariates``, ``dynamic_covariates``) are not decomposed (the value of a customer then
depends on covariates that may change too); the equity history is still returned.

Models without covariates are computed on cells of identical customers (:func:`_movement_by_cells`:
the month-end summaries read off the orders prepared once, :mod:`patron.value.period_summaries`;
equity, its interval and every part from three sums per cell and group,
:mod:`patron.value.models.clv_cells`); covariate models per customer with NumPy
(:func:`_movement_per_customer`: two CLV evaluations per period end besides the scores, the models
those :func:`patron.value.scoring.score` fits). Both give the same figures up to the order of sums.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from patron.errors import PatronError
from patron.relationship.segments.equity import iter_period_end_summaries, period_end_lists
from patron.value.settings import ValueSettings, value_settings

COMPONENTS: tuple[str, ...] = ("new_customers", "lost_customers", "returning_customers", "rate_estimates", "spend_estimates")
"""The parts of each change in customer equity, in the order they are evaluated (module docstring)."""

COMPONENT_LABELS: dict[str, str] = {
    "new_customers": "new customers", "lost_customers": "customers who did not buy (value fading)",
    "returning_customers": "returning customers' purchases", "rate_estimates": "re-estimated purchase rates",
    "spend_estimates": "re-estimated spend",
}
"""How each part is named in the report."""


@dataclass(frozen=True)
class EquityMovement:
    """Customer equity over time and what moved it.

    ``history``: one row per period end, as :func:`patron.relationship.segments.equity_over_time`
    (``as_of, customers, equity, equity_lower, equity_upper``). ``steps``: one row per period end
    with ``as_of, previous`` (the earlier period end, NaT for the first), ``equity_start,
    equity_end, change``, one column per part of :data:`COMPONENTS` (currency; NaN where there is
    no movement), ``new, returning, silent`` (customers in each group) and ``why`` (empty, or why
    the row has no movement). ``refitted``: the models are refitted at every period end (always
    true here; stated for the report). ``notes``: anything the decomposition left out."""

    history: pd.DataFrame
    steps: pd.DataFrame
    refitted: bool = True
    notes: list[str] = field(default_factory=list)


def _values(tm: Any, sm: Any, frame: pd.DataFrame, value: ValueSettings) -> np.ndarray:
    from patron.value.models.clv import customer_lifetime_value

    x, tx, T, m = (frame[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T", "monetary_value"))
    if not len(x):
        return np.zeros(0)
    return np.asarray(customer_lifetime_value(
        tm, sm, x, tx, T, m, horizon=value.horizon, discount_rate_per_step=value.discount_rate_per_period,
        margin=value.margin, cost_to_serve=value.cost_per_customer or None, cost_per_purchase=value.cost_per_order,
    ), dtype=float)


def _matched(before: np.ndarray, now: np.ndarray) -> np.ndarray:
    """For customers at positions ``now`` (ascending) of a common list, their row among those at
    positions ``before`` (-1 where absent)."""
    size = int(max(before[-1] if len(before) else -1, now[-1] if len(now) else -1)) + 1
    rank = np.full(size, -1, dtype=np.intp)
    rank[before] = np.arange(len(before))
    return rank[now]


def _positions(ids: pd.Series, among: pd.Series) -> np.ndarray:
    """The row of ``among`` holding each id of ``ids`` (compared as text), -1 where absent: an
    Arrow hash lookup, no Python string per customer (ids are unique within each)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def text(column: pd.Series) -> pa.Array | pa.ChunkedArray:
        array = pa.array(column.array) if not isinstance(column.dtype, np.dtype) else pa.array(column.astype(str).to_numpy())
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        return array if pa.types.is_string(array.type) or pa.types.is_large_string(array.type) else pc.cast(array, pa.string())

    found = pc.index_in(text(ids), value_set=text(among))
    return np.asarray(pc.fill_null(found, -1).to_numpy(zero_copy_only=False), dtype=np.intp)


def decompose(previous: pd.DataFrame, current: pd.DataFrame, models_previous: tuple[Any, Any],
              models_current: tuple[Any, Any], value: ValueSettings, *, since: Any,
              values_previous: np.ndarray | None = None, values_current: np.ndarray | None = None,
              positions: np.ndarray | None = None) -> dict[str, float]:
    """The parts of :data:`COMPONENTS` of the change between two summaries (``customer_id,
    frequency, recency, T, monetary_value, last_purchase``) valued with their own models
    (``(transaction, spend)`` fitted on each), plus ``equity_start, equity_end, change`` and the
    customers ``new, returning, silent``. A customer bought in between when their
    ``last_purchase`` is after ``since`` (the earlier period end). ``values_previous`` /
    ``values_current``: each summary's CLVs under its own models when already computed (the
    scores' ``clv``, in the summaries' row order); computed here otherwise. ``positions``: the
    row of ``previous`` of each customer of ``current`` (-1 for a new one) when known (then the
    summaries need no ``customer_id``); found by id otherwise. Pure function."""
    tp, sp = models_previous
    tc, sc = models_current
    n_prev, n_cur = len(previous), len(current)
    v_pp = values_previous if values_previous is not None else _values(tp, sp, previous, value)  # V(M_p, D_p)
    v_pc = _values(tp, sp, current, value)                  # V(M_p, D_c)
    v_mix = _values(tc, sp, current, value)                 # V(theta_c, phi_p, D_c)
    v_cc = values_current if values_current is not None else _values(tc, sc, current, value)     # V(M_c, D_c)
    in_prev = positions if positions is not None else _positions(current["customer_id"], previous["customer_id"])
    existing = in_prev >= 0
    last = pd.to_datetime(current["last_purchase"]).to_numpy() if "last_purchase" in current else None
    bought = existing & (last > np.datetime64(pd.Timestamp(since)) if last is not None else existing)
    silent = existing & ~bought
    delta = np.zeros(n_cur)
    delta[existing] = v_pc[existing] - v_pp[in_prev[existing]]
    removed = np.ones(n_prev, dtype=bool)
    removed[in_prev[existing]] = False
    parts = {
        "new_customers": float(v_pc[~existing].sum()),
        "lost_customers": float(delta[silent].sum() - v_pp[removed].sum()),
        "returning_customers": float(delta[bought].sum()),
        "rate_estimates": float((v_mix - v_pc).sum()),
        "spend_estimates": float((v_cc - v_mix).sum()),
    }
    start, end = float(v_pp.sum()), float(v_cc.sum())
    return {"equity_start": start, "equity_end": end, "change": end - start, **parts,
            "new": int((~existing).sum()), "returning": int(bought.sum()), "silent": int(silent.sum())}


def equity_movement(
    db: str | os.PathLike[str] | None = None,
    *,
    start: str | date | datetime | None = None,
    end: str | date | datetime | None = None,
    freq: str = "M",
    config: Any = None,
    settings: ValueSettings | None = None,
    lists: Any = None,
) -> EquityMovement:
    """Customer equity at each period end from ``start`` to ``end`` (as
    :func:`~patron.relationship.segments.equity_over_time`: models refitted at each date, interval
    for parameter uncertainty) and the decomposition of each change (module docstring).
    ``lists``: the orders as :func:`patron.value.summary_sql.order_lists_sql` lists them up to
    ``end`` or later, when the caller has read them already (one read of the database)."""
    value = settings if settings is not None else value_settings(config)
    if not (value.all_covariates or value.dynamic_covariates) and value.model in CELL_MODELS:
        return _movement_by_cells(db, start, end, freq, value, lists)
    return _movement_per_customer(db, start, end, freq, value, lists)


def _not_decomposed(previous_day: Any, fitted: Any, previous_fitted: Any, *, plain: bool = True) -> str:
    """Why a period's equity change is not split into its parts (``""``: it is): no earlier period
    end (``previous_day`` ``None``), models not fitted now or then, or covariate models."""
    if previous_day is None:
        return "first period end of the window: no earlier equity to change from"
    if fitted is None:
        return "the models could not be fitted on the purchases up to this date"
    if previous_fitted is None:
        return f"the models could not be fitted at the previous period end ({previous_day})"
    return "" if plain else "covariate models are not decomposed"


def _movement_per_customer(db: Any, start: Any, end: Any, freq: str, value: ValueSettings, lists: Any) -> EquityMovement:
    """:func:`equity_movement` scoring every customer at each period end
    (:func:`patron.value.scoring.score`) and valuing each under the earlier models: what the
    covariate models need (a customer's value depends on their covariates), and the reference
    the cell path is tested against."""
    from patron.value.scoring import score

    plain = not (value.all_covariates or value.dynamic_covariates)
    rows, steps = [], []
    previous: tuple[date, pd.DataFrame, Any, np.ndarray] | None = None  # only the previous period end is held
    # what the scores and the decomposition read (ids too for covariate models, joined on them)
    needed = None if not plain else ("frequency", "recency", "T", "monetary_value", "last_purchase")
    for d, frame, at in iter_period_end_summaries(db, start, end, freq, value.period, lists=lists, columns=needed):
        row: dict[str, Any] = {"as_of": d, "customers": len(frame), "equity": math.nan, "equity_lower": math.nan,
                               "equity_upper": math.nan}
        fitted = None
        if len(frame):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    s = score(frame, settings=value, db=db)  # one fit per date; a fit that did not converge counts as none
                    if getattr(s.transaction_model, "converged_", True):
                        row.update(equity=s.equity, equity_lower=s.equity_lower, equity_upper=s.equity_upper)
                        fitted = (s.transaction_model, s.spend_model, s.customers["clv"].to_numpy(dtype=float))
                    del s
            except (PatronError, ValueError, FloatingPointError):
                pass
        rows.append(row)
        step: dict[str, Any] = {"as_of": pd.Timestamp(d), "previous": pd.Timestamp(previous[0]) if previous else pd.NaT,
                                "equity_start": math.nan, "equity_end": float(row["equity"]), "change": math.nan,
                                **dict.fromkeys(COMPONENTS, math.nan), "new": 0, "returning": 0, "silent": 0, "why": ""}
        step["why"] = _not_decomposed(previous and previous[0], fitted, previous and previous[2], plain=plain)
        if not step["why"]:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                (tp, sp, vp), (tc, sc, vc) = previous[2], fitted
                step.update(decompose(previous[1], frame, (tp, sp), (tc, sc), value, since=previous[0],
                                      values_previous=vp, values_current=vc, positions=_matched(previous[3], at)))
        steps.append(step)
        previous = (d, frame, fitted, at)
    del previous
    history = pd.DataFrame(rows)
    history["as_of"] = pd.to_datetime(history["as_of"])
    notes = [] if plain else ["Equity changes are not decomposed with covariate models ([value] covariates)."]
    return EquityMovement(history, pd.DataFrame(steps), True, notes)


CELL_MODELS: tuple[str, ...] = ("bgnbd", "mbgnbd", "pareto")
"""Transaction models whose equity history is computed on cells of identical customers
(:func:`_movement_by_cells`); the others (and covariate models) value every customer."""

NEW, SILENT, BOUGHT = 0, 1, 2
"""Groups of a period end's customers against the previous period end: new, already there and
silent since, already there and bought since (the ``new``, ``silent`` and ``returning`` counts)."""


def _movement_by_cells(db: Any, start: Any, end: Any, freq: str, value: ValueSettings, lists: Any) -> EquityMovement:
    """:func:`equity_movement` for models without covariates, on cells of identical customers.

    The orders are prepared once (:class:`patron.value.period_summaries.PeriodEndOrders`) and
    each period end's summary read off them; customers are grouped into cells of equal
    (frequency, recency, T) (whole days) and, within a cell, into new / silent / returning
    customers, keeping three sums per group and cell (:mod:`patron.value.models.clv_cells`). The
    models are fitted as :func:`patron.value.scoring.score` fits them (the transaction model on
    the cells with their counts, which is the fit on every customer: the same compressed rows;
    Gamma-Gamma on every customer in the same order), equity and its delta-method interval come
    from the cells, and so do the five parts: the silent customers' value at the previous period
    end is their cell's value with T moved back, and the returning customers' is the rest of
    the previous equity. Same figures as :func:`_movement_per_customer` up to the order of sums."""
    from patron.value.models.clv_cells import (
        Cells,
        equity_with_interval,
        group_spend,
        values_by_group,
    )
    from patron.value.period_summaries import PeriodEndOrders, days_in_unit, summary_cells
    from patron.value.scoring import fit_model
    from patron.value.summary_arrays import MICROSECONDS_PER_DAY

    days, lists = period_end_lists(db, start, end, freq, value.period, lists=lists)
    orders = PeriodEndOrders(lists, value.period)
    cost, per_order, margin = float(value.cost_per_customer or 0.0), float(value.cost_per_order or 0.0), float(value.margin)
    clv_kw = dict(margin=margin, cost=cost, cost_per_purchase=per_order)
    cell_kw = dict(horizon=value.horizon, discount_rate_per_step=value.discount_rate_per_period)
    epoch = date(1970, 1, 1).toordinal()
    rows, steps = [], []
    seen = np.zeros(orders.customers, dtype=bool)  # customers with a purchase by the previous period end
    previous: tuple[date, Any, float] | None = None  # (day, (tm, sm) or None, equity)
    for d, summary in zip(days, orders.iter_at(days), strict=True):
        n = len(summary.rows)
        row: dict[str, Any] = {"as_of": d, "customers": n, "equity": math.nan, "equity_lower": math.nan,
                               "equity_upper": math.nan}
        step: dict[str, Any] = {"as_of": pd.Timestamp(d), "previous": pd.Timestamp(previous[0]) if previous else pd.NaT,
                                "equity_start": math.nan, "equity_end": math.nan, "change": math.nan,
                                **dict.fromkeys(COMPONENTS, math.nan), "new": 0, "returning": 0, "silent": 0, "why": ""}
        group = np.full(n, NEW, dtype=np.int8)
        if previous is not None:
            existing = seen[summary.rows]
            since = (previous[0].toordinal() - epoch) * MICROSECONDS_PER_DAY  # midnight starting the earlier day
            group[existing] = np.where(summary.last_purchase[existing] > since, BOUGHT, SILENT)
        fitted = None
        if n:
            try:
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore")
                    if not np.isfinite(summary.monetary_value).all():
                        raise ValueError("monetary_value is not a finite number for some customers")
                    cells = summary_cells(summary)
                    cx = cells.x.astype(np.float64)
                    ctx, cT = days_in_unit(cells.recency_days, value.period), days_in_unit(cells.T_days, value.period)
                    sm = fit_model("gammagamma", pd.DataFrame({"frequency": summary.frequency,
                                                               "monetary_value": summary.monetary_value}, copy=False))
                    tm = fit_model(value.model, pd.DataFrame({"frequency": cx, "recency": ctx, "T": cT,
                                                              "weight": cells.counts.astype(np.float64)}, copy=False))
                    if getattr(tm, "converged_", True):  # a fit that did not converge counts as none
                        sums = group_spend(cells.of_customer, group, 3, len(cx), summary.frequency, summary.monetary_value)
                        grid = Cells(cx, ctx, cT, **cell_kw)
                        equity, lower, upper, purchases = equity_with_interval(tm, sm, grid, sums, **clv_kw)
                        row.update(equity=equity, equity_lower=lower, equity_upper=upper)
                        fitted = (tm, sm)
            except (PatronError, ValueError, FloatingPointError):
                pass
        step["equity_end"] = float(row["equity"])
        step["why"] = _not_decomposed(previous and previous[0], fitted, previous and previous[1])
        if not step["why"]:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                tp, sp = previous[1]
                v_pc = values_by_group(grid.purchases(tp), sp._params(), cx, sums, **clv_kw)   # V(M_p, D_c) by group
                v_mix = float(values_by_group(purchases, sp._params(), cx, sums.total(), **clv_kw)[0])  # V(theta_c, phi_p, D_c)
                quiet = np.flatnonzero(sums.customers[SILENT] > 0)
                v_pp_silent = 0.0
                if len(quiet):  # the silent customers' value at the previous period end: their cell then
                    back = (d - previous[0]).days
                    earlier = Cells(cx[quiet], ctx[quiet], days_in_unit(cells.T_days[quiet] - back, value.period), **cell_kw)
                    v_pp_silent = float(values_by_group(earlier.purchases(tp), sp._params(), cx[quiet],
                                                        _columns(sums.only(SILENT), quiet), **clv_kw)[0])
                equity_start, equity_end = previous[2], float(row["equity"])
                step.update(
                    equity_start=equity_start, equity_end=equity_end, change=equity_end - equity_start,
                    new_customers=float(v_pc[NEW]), lost_customers=float(v_pc[SILENT]) - v_pp_silent,
                    returning_customers=float(v_pc[BOUGHT]) - (equity_start - v_pp_silent),
                    rate_estimates=v_mix - float(v_pc.sum()), spend_estimates=equity_end - v_mix,
                    new=int((group == NEW).sum()), returning=int((group == BOUGHT).sum()), silent=int((group == SILENT).sum()),
                )
        rows.append(row)
        steps.append(step)
        seen[summary.rows] = True
        previous = (d, fitted, float(row["equity"]))
    history = pd.DataFrame(rows)
    history["as_of"] = pd.to_datetime(history["as_of"])
    return EquityMovement(history, pd.DataFrame(steps), True, [])


def _columns(sums: Any, cells: np.ndarray) -> Any:
    """``sums`` (a :class:`patron.value.models.clv_cells.CellSpend`) restricted to ``cells``."""
    return type(sums)(sums.customers[:, cells], sums.informative[:, cells], sums.zbar_sum[:, cells])
