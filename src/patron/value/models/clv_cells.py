"""Customer equity from cells of identical customers: sums without a value per customer.

A customer's CLV (:mod:`patron.value.models.clv`) is ``margin * S'_i * P_i - cost``: ``P_i``
(discounted expected purchases) depends only on the customer's ``(x, t_x, T)``, and the
Gamma-Gamma expected spend ``S_i = p (v + x zbar_i) / (p x + q - 1)`` is linear in ``zbar_i``
for a given ``x`` (the population mean ``p v / (q - 1)`` for customers with ``x = 0`` or
``zbar_i <= 0``; ``S' = S - cost per purchase / margin``). So the sum of CLV over any set of
customers needs, per distinct ``(x, t_x, T)`` row (a *cell*) and per group of customers, only
three numbers: the customers, those whose spend is informative (``x > 0, zbar > 0``) and the sum
of their ``zbar``. Customer equity, its parts by group, and the delta-method interval of
equity (the summed gradients of :func:`patron.value.models.clv.equity_gradients`, then one
quadratic form, :func:`patron.value.models.clv.equity_variance`) are computed on the cells:
cost ``cells`` instead of ``customers`` per evaluation.

The figures are those of :func:`patron.value.models.clv.clv_intervals` up to the order of the
sums (relative differences of about 1e-12 in equity and its interval: the spend's
forward differences are taken on cell sums instead of per customer).

Units: spend, CLV and equity in the currency of ``zbar``; ``x`` repeat purchases; ``t_x`` and
``T`` in the transaction model's time unit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from ._base import BaseModel
from ._rows import wdot
from .clv import (
    DEFAULT_MAX_CELLS,
    _discounted_purchases,
    _log_gradient,
    _offset,
    _period_ends,
    _Rows,
    equity_variance,
)

__all__ = ["CellSpend", "Cells", "cell_spend", "equity_with_interval", "group_spend", "values_by_group"]


@dataclass(frozen=True)
class CellSpend:
    """What the spend of the customers of each (group, cell) needs, arrays of shape
    ``(groups, cells)``: ``customers``, ``informative`` (x > 0 and zbar > 0) and ``zbar_sum``
    (the sum of those customers' zbar, currency)."""

    customers: np.ndarray
    informative: np.ndarray
    zbar_sum: np.ndarray

    def total(self) -> CellSpend:
        """The same for all groups together (one group)."""
        return CellSpend(*(a.sum(axis=0, keepdims=True) for a in (self.customers, self.informative, self.zbar_sum)))

    def only(self, group: int) -> CellSpend:
        """The same for one group."""
        return CellSpend(*(a[group:group + 1] for a in (self.customers, self.informative, self.zbar_sum)))


def group_spend(cell: np.ndarray, group: np.ndarray, n_groups: int, n_cells: int, x: np.ndarray,
                zbar: np.ndarray) -> CellSpend:
    """:class:`CellSpend` of customers in cell ``cell[i]`` and group ``group[i]`` with repeat
    purchases ``x[i]`` and mean repeat spend ``zbar[i]`` (three weighted counts)."""
    key = cell.astype(np.intp) if n_groups == 1 else group.astype(np.intp) * n_cells + cell
    size = n_groups * n_cells
    informative = (x > 0) & (zbar > 0)
    both = np.bincount(2 * key + informative, minlength=2 * size).reshape(n_groups, n_cells, 2)
    # zbar is 0 for x = 0 and at most 0 where x > 0 but not informative: summed over informative rows only
    weights = zbar if zbar.size and zbar.min() == 0.0 and not (zbar < 0).any() else np.where(informative, zbar, 0.0)
    return CellSpend(
        both.sum(axis=2).astype(np.float64), both[:, :, 1].astype(np.float64),
        np.bincount(key, weights=weights, minlength=size).astype(np.float64, copy=False).reshape(n_groups, n_cells),
    )


def cell_spend(params: tuple[float, ...], x: np.ndarray, sums: CellSpend, offset: float = 0.0) -> np.ndarray:
    """Sum of the expected spend per purchase net of ``offset`` (``S'``, currency) over the
    customers of each (group, cell), under Gamma-Gamma parameters ``(p, q, v)``; ``x`` per cell.
    A mean that does not exist (``p x + q <= 1``) makes the sum +inf, as per customer."""
    p, q, v = params
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = p * x + (q - 1.0)
        known = p * (sums.informative * v + x * sums.zbar_sum) / denom
        known = np.where(denom > 0, known, np.where(sums.informative > 0, np.inf, 0.0))
        mean = p * v / (q - 1.0) if q > 1.0 else np.inf
        rest = sums.customers - sums.informative
        unknown = np.where(rest > 0, rest * mean, 0.0)
    out = known + unknown
    if offset:
        out -= offset * sums.customers
    return out


class Cells:
    """Distinct ``(x, t_x, T)`` rows (cells) for the discounted purchases of
    :mod:`patron.value.models.clv`, with the horizon's period ends and discount factors."""

    def __init__(self, x: np.ndarray, tx: np.ndarray, T: np.ndarray, *, horizon: float, discount_rate_per_step: float,
                 step: float = 1.0, max_cells: int = DEFAULT_MAX_CELLS) -> None:
        self.x = np.asarray(x, dtype=np.float64)
        self.rows = _Rows(self.x, np.asarray(tx, dtype=np.float64), np.asarray(T, dtype=np.float64))
        if len(self.rows.x) != len(self.x):
            raise ValueError("cells must be distinct (x, t_x, T) rows")
        self.ends = _period_ends(horizon, step)
        self.disc = (1.0 + discount_rate_per_step) ** -np.arange(1, self.ends.size + 1)
        self.max_cells = max_cells
        self._order = self.rows.of_customer  # cell -> row of the sorted distinct rows

    def purchases(self, model: BaseModel, params: tuple[float, ...] | None = None) -> np.ndarray:
        """Discounted expected purchases ``P`` per cell under ``model`` (at ``params`` when given)."""
        per_row = _discounted_purchases(model, model._params() if params is None else params, self.rows, self.ends,
                                        self.disc, self.max_cells)
        return per_row[self._order]


def equity_with_interval(tm: BaseModel, sm: BaseModel, cells: Cells, sums: CellSpend, *, margin: float, cost: float = 0.0,
                         cost_per_purchase: float = 0.0, level: float = 0.95,
                         purchases: np.ndarray | None = None) -> tuple[float, float, float, np.ndarray]:
    """Customer equity of the customers of ``sums`` (all groups), in currency, and its interval at
    ``level`` for parameter uncertainty by the delta method (as
    :func:`patron.value.models.clv.clv_intervals`): ``(equity, lower, upper, purchases per
    cell)``. ``cost``: the cost to serve per customer (currency)."""
    offset = _offset(cost_per_purchase, margin)
    total = sums.total()
    n = float(total.customers.sum())
    p0 = cells.purchases(tm) if purchases is None else purchases
    a0 = cell_spend(sm._params(), cells.x, total, offset)[0]
    equity = margin * wdot(a0, p0) - n * cost
    d_p = _log_gradient(lambda p: cells.purchases(tm, p), tm._params(), p0)
    grad_t = margin * np.array([wdot(a0, d) for d in d_p])
    d_s = _log_gradient(lambda p: cell_spend(p, cells.x, total, offset)[0], sm._params(), a0)
    grad_s = margin * np.array([wdot(p0, d) for d in d_s])
    var = float(equity_variance(tm, sm, grad_t, grad_s)[0])
    half = float(special.ndtri(0.5 + level / 2.0)) * np.sqrt(var)
    return equity, equity - half, equity + half, p0


def values_by_group(purchases: np.ndarray, spend_params: tuple[float, ...], x: np.ndarray, sums: CellSpend, *,
                    margin: float, cost: float = 0.0, cost_per_purchase: float = 0.0) -> np.ndarray:
    """Sum of CLV (currency) over the customers of each group of ``sums``, with discounted
    purchases ``purchases`` per cell and Gamma-Gamma parameters ``spend_params``."""
    spend = cell_spend(spend_params, x, sums, _offset(cost_per_purchase, margin))
    return margin * np.einsum("gc,c->g", spend, purchases) - cost * sums.customers.sum(axis=1)

