"""CLV and customer equity from the covariate models, with parameter-uncertainty intervals.

Same definition as :mod:`patron.value.models.clv` (discrete discounting in the model's time unit):

    CLV_i = (margin * E[spend_i] - c) * P_i - cost_i,
    P_i   = sum_{k=1..K} (C_i(t_k) - C_i(t_{k-1})) / (1 + d)^k,

with ``C_i(t)`` the customer's conditional expected purchases in (T_i, T_i + t] *at their own
parameters* (covariates). For the static models P_i depends on (x, t_x, T, covariates) and is
computed once per distinct row; C = P(alive) x G(t), P(alive) once per row and G (the expected
purchases of a customer alive at T: FHL 2005 eq. 10 for BG/NBD, FH 2005 note Section 6 for
Pareto/NBD) on all K period ends at once. For the time-varying Pareto/NBD, P_i is
:meth:`patron.value.models.pareto_nbd_dynamic.ParetoNBDDynamic.discounted_purchases` under the future
covariate path.

Intervals (parameter uncertainty only, transaction and spend models independent):
``method="delta"``: the gradient of P_i in the model's free vector theta (log base parameters
and coefficients) by forward differences of step ``DELTA_STEP`` (additive: a coefficient may be
0), combined with ``theta_covariance_``; the spend part as in :mod:`patron.value.models.clv`; customer
equity from the summed gradients (:func:`patron.value.models.clv.equity_variance`).
``method="bootstrap"``: theta drawn from its asymptotic normal, percentile intervals.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import special

from . import beta_geo, pareto_nbd
from ._rows import unique_rows
from .clv import (
    DEFAULT_N_DRAWS,
    METHODS,
    CLVResult,
    _group_sums,
    _log_gradient,
    _offset,
    _quadratic_form,
    _spend,
    clv_result,
    equity_variance,
)
from .covariates import CovariateModel, covariate_table

__all__ = ["covariate_clv_intervals", "discounted_purchases", "dynamic_clv_intervals"]

DELTA_STEP = 1e-6
"""Forward-difference step in each element of theta for the delta method."""


def _alive_and_given(model: CovariateModel, ends: np.ndarray, x, tx, T, params):
    """P(alive at T) per row and the expected purchases in (T, T + e] of an alive customer,
    shape (len(ends), rows)."""
    if model.name.startswith("bgnbd"):
        r, alpha, a, b = params
        alive = beta_geo.probability_alive(x, tx, T, r, alpha, a, b)
        given = beta_geo.expected_given_alive(ends[:, None], r + x, alpha + T, a, b + x)
        return alive, given
    r, alpha, s, beta = params
    alive = pareto_nbd.probability_alive(x, tx, T, r, alpha, s, beta)
    given = (r + x) / (alpha + T) * (beta + T) * pareto_nbd._mean_factor(ends[:, None], beta + T, s)
    return alive, given


def discounted_purchases(model: CovariateModel, x, tx, T, covariates, *, horizon: float,
                         discount_rate_per_step: float, step: float = 1.0, theta: np.ndarray | None = None) -> np.ndarray:
    """P_i (module docstring) for every row of (x, t_x, T, covariates), at ``theta`` (default:
    the fitted one), discounted at ``discount_rate_per_step`` per step. Evaluated once per
    distinct row."""
    x, tx, T = (np.asarray(v, dtype=np.float64).ravel() for v in (x, tx, T))
    table = covariate_table(covariates, x.size)
    union = table.columns(model.design_.union)
    (ux, utx, uT, *ucov), inv = unique_rows(x, tx, T, *union.T)
    sub = dict(zip(model.design_.union, ucov, strict=True)) if ucov else np.zeros((ux.size, 0))
    params = model.customer_params(sub, theta=theta)
    k = math.ceil(horizon / step - 1e-12)
    ends = np.minimum(np.arange(1, k + 1) * step, horizon)
    disc = (1.0 + discount_rate_per_step) ** -np.arange(1, k + 1)
    weights = disc - np.append(disc[1:], 0.0)  # summation by parts
    alive, given = _alive_and_given(model, ends, ux, utx, uT, params)
    return (alive * np.einsum("k,kn->n", weights, given))[inv]


def covariate_clv_intervals(
    transaction_model: CovariateModel,
    spend_model: Any,
    frequency: Any,
    recency: Any,
    T: Any,
    monetary_value: Any,
    covariates: Any,
    *,
    horizon: float,
    discount_rate_per_step: float = 0.0,
    step: float = 1.0,
    **options: Any,
) -> CLVResult:
    """CLV per customer and customer equity with intervals (module docstring), as
    :func:`patron.value.models.clv.clv_intervals` for a static covariate model; ``covariates`` holds
    the model's columns, one row per customer. ``options``: ``margin``, ``cost_to_serve``,
    ``cost_per_purchase``, ``groups``, ``method``, ``n_draws``, ``level``, ``random_state`` as
    :func:`patron.value.models.clv.clv_intervals`."""
    x, tx, T_ = (np.asarray(v, dtype=np.float64).ravel() for v in (frequency, recency, T))
    table = covariate_table(covariates, x.size)

    def purchases(theta: np.ndarray | None = None) -> np.ndarray:
        return discounted_purchases(transaction_model, x, tx, T_, table, horizon=horizon,
                                    discount_rate_per_step=discount_rate_per_step,
                                    step=step, theta=theta)

    return _intervals(transaction_model, spend_model, x, monetary_value, purchases, **options)


def dynamic_clv_intervals(transaction_model: Any, spend_model: Any, data: Any, monetary_value: Any, *, horizon: float,
                          discount_rate_per_step: float = 0.0, step: float = 1.0, **options: Any) -> CLVResult:
    """:func:`covariate_clv_intervals` for the time-varying Pareto/NBD: P_i from
    :meth:`patron.value.models.pareto_nbd_dynamic.ParetoNBDDynamic.discounted_purchases` under the
    future covariate paths of ``data`` (a :class:`patron.value.models.dynamic_paths.DynamicData` whose
    paths cover every customer's T + ``horizon``)."""

    def purchases(theta: np.ndarray | None = None) -> np.ndarray:
        return transaction_model.discounted_purchases(data, horizon=horizon, discount_rate_per_step=discount_rate_per_step,
                                                      step=step, theta=theta)

    return _intervals(transaction_model, spend_model, data.x, monetary_value, purchases, **options)


def _intervals(tm: Any, sm: Any, x: np.ndarray, monetary_value: Any, purchases_at: Any, *, margin: float = 1.0,
               cost_to_serve: Any = None, cost_per_purchase: float = 0.0, groups: Any = None, method: str = "delta",
               n_draws: int = DEFAULT_N_DRAWS, level: float = 0.95, random_state: Any = 0) -> CLVResult:
    """CLV and equity with intervals from ``purchases_at(theta)``, the discounted expected
    purchases of every customer at the transaction model's free vector ``theta`` (None: the
    fitted one)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}; got {method!r}")
    if not 0 < level < 1:
        raise ValueError("level must be between 0 and 1")
    m = np.asarray(monetary_value, dtype=np.float64).ravel()
    cost = None if cost_to_serve is None else np.broadcast_to(np.asarray(cost_to_serve, dtype=np.float64), x.shape)
    purchases = purchases_at(None)
    offset = _offset(cost_per_purchase, margin)
    spend = _spend(sm, x, m, offset=offset)
    point = margin * spend * purchases
    if cost is not None:
        point = point - cost
    if groups is None:
        codes, n_groups = np.zeros(x.size, dtype=np.intp), 1
    else:
        labels, codes = np.unique(np.asarray(groups).ravel(), return_inverse=True)
        n_groups = labels.size
    if method == "delta":
        theta = tm.theta_
        d_t = []
        for j in range(theta.size):
            moved = theta.copy()
            moved[j] += DELTA_STEP
            d_t.append((purchases_at(moved) - purchases) / DELTA_STEP)
        var = spend * spend * _quadratic_form(d_t, tm.log_covariance())
        grad_t = np.array([_group_sums(spend * d, codes, n_groups) for d in d_t]).T
        grad_s = None
        if sm is not None:
            d_s = _log_gradient(lambda p: _spend(sm, x, m, p, offset), sm._params(), spend)
            var = var + purchases * purchases * _quadratic_form(d_s, sm.log_covariance())
            grad_s = np.array([_group_sums(purchases * d, codes, n_groups) for d in d_s]).T
        var_eq = equity_variance(tm, sm, margin * grad_t, None if grad_s is None else margin * grad_s)
        z = float(special.ndtri(0.5 + level / 2.0))
        half = z * margin * np.sqrt(var)
        lower, upper = point - half, point + half
        eq_point = _group_sums(point, codes, n_groups)
        eq_lo, eq_hi = eq_point - z * np.sqrt(var_eq), eq_point + z * np.sqrt(var_eq)
        draws = 0
    else:
        rng = np.random.default_rng(random_state)
        thetas = tm.sample_theta(n_draws, random_state=rng)
        sp = None if sm is None else sm.sample_params(n_draws, random_state=rng)
        values = np.empty((int(n_draws), x.size))
        for i in range(int(n_draws)):
            s_i = _spend(sm, x, m, None if sp is None else tuple(sp[i]), offset)
            values[i] = margin * s_i * purchases_at(thetas[i]) - (0.0 if cost is None else cost)
        tail = 100.0 * (1.0 - level) / 2.0
        lower, upper = np.percentile(values, [tail, 100.0 - tail], axis=0)
        eq = np.stack([_group_sums(v, codes, n_groups) for v in values])
        eq_lo, eq_hi = np.percentile(eq, [tail, 100.0 - tail], axis=0)
        draws = int(n_draws)
    return clv_result(point, lower, upper, eq_lo, eq_hi, groups, level, draws, method, purchases)
