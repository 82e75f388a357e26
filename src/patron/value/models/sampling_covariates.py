"""Customer summaries drawn with planted covariate effects (known truth for recovery checks).

Static covariates: each customer's parameters follow the parametrization of
:mod:`patron.value.models.covariates` (alpha_i = alpha exp(-gamma_purchase . x_i), beta_i or a_i, b_i
from gamma_dropout . x_i), then the summary is drawn by the samplers without covariates
(:func:`patron.value.models.sampling.sample_beta_geo`, :func:`patron.value.models.sampling_pareto.sample_pareto_nbd`),
which take per-customer parameters. Time-varying covariates: :func:`sample_pareto_nbd_dynamic`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .covariates import covariate_table
from .sampling import sample_beta_geo
from .sampling_pareto import sample_pareto_nbd

__all__ = ["linear_predictor", "sample_beta_geo_covariates", "sample_pareto_nbd_covariates"]


def linear_predictor(covariates: Any, effects: Mapping[str, float] | None) -> np.ndarray:
    """sum_j effects[j] * covariates[j] per customer (0 when ``effects`` is empty)."""
    table = covariate_table(covariates)
    effects = dict(effects or {})
    if not effects:
        return np.zeros(len(table))
    names = list(effects)
    return table.columns(names) @ np.array([float(effects[k]) for k in names])


def sample_beta_geo_covariates(covariates: Any, *, r: float, alpha: float, a: float, b: float, T: Any,
                               gamma_purchase: Mapping[str, float] | None = None,
                               gamma_dropout: Mapping[str, float] | None = None,
                               random_state: Any = None) -> dict[str, np.ndarray]:
    """BG/NBD customers (one per covariate row) with alpha_i = alpha exp(-gamma_purchase . x_i),
    a_i = a exp(gamma_dropout . x_i), b_i = b exp(gamma_dropout . x_i) (Fader & Hardie 2007,
    note 019; CLVTools' parametrization). Returns ``frequency, recency, T`` arrays."""
    table = covariate_table(covariates)
    scale_d = np.exp(linear_predictor(table, gamma_dropout))
    return sample_beta_geo(len(table), r=r, alpha=alpha * np.exp(-linear_predictor(table, gamma_purchase)),
                           a=a * scale_d, b=b * scale_d, T=T, random_state=random_state)


def sample_pareto_nbd_covariates(covariates: Any, *, r: float, alpha: float, s: float, beta: float, T: Any,
                                 gamma_purchase: Mapping[str, float] | None = None,
                                 gamma_dropout: Mapping[str, float] | None = None,
                                 time_step: float | None = None, random_state: Any = None) -> dict[str, np.ndarray]:
    """Pareto/NBD customers with alpha_i = alpha exp(-gamma_purchase . x_i) and
    beta_i = beta exp(-gamma_dropout . x_i) (Fader & Hardie 2007, note 019, Section 2)."""
    table = covariate_table(covariates)
    return sample_pareto_nbd(len(table), r=r, alpha=alpha * np.exp(-linear_predictor(table, gamma_purchase)), s=s,
                             beta=beta * np.exp(-linear_predictor(table, gamma_dropout)), T=T,
                             time_step=time_step, random_state=random_state)


def sample_pareto_nbd_dynamic(first: Any, T: Any, paths: Any, names: Any, *, r: float, alpha: float, s: float,
                              beta: float, gamma_purchase: Mapping[str, float] | None = None,
                              gamma_dropout: Mapping[str, float] | None = None, period_length: float = 1.0,
                              holdout: float = 0.0, random_state: Any = None) -> dict[str, np.ndarray]:
    """Pareto/NBD customers with time-varying covariates (Bachmann, Meierer & Naef 2021, Section 3):
    purchase intensity ``lambda_i exp(gamma_purchase . x_i(t))`` and death hazard
    ``mu_i exp(gamma_dropout . x_i(t))``, covariates constant on the periods of ``paths``
    ((n, J, k) array, columns ``names``; period j covers [j L, (j+1) L), L = ``period_length``).
    Customer i is acquired at ``first[i]`` and observed for ``T[i]``; ``holdout`` more time units
    are simulated after T.

    Death: with E ~ Exp(1), the customer dies when mu C(t) = E (C the integrated hazard
    multiplier, piecewise linear). Purchases: in each period the count is
    Poisson(lambda a_j x time alive in it), their times uniform in that time. Returns
    ``frequency, recency, T`` (calibration), ``purchase_counts`` (n, J: repeat purchases per
    period, calibration only), ``frequency_holdout`` (purchases in (T, T + holdout]) and
    ``alive_at_T`` (the truth behind P(alive)).
    """
    from .dynamic_paths import overlaps

    rng = np.random.default_rng(random_state)
    names = [str(n) for n in names]
    first = np.asarray(first, dtype=np.float64).ravel()
    n = first.size
    T_ = np.broadcast_to(np.asarray(T, dtype=np.float64), (n,)).copy()
    paths = np.asarray(paths, dtype=np.float64).reshape(n, -1, len(names))
    J = paths.shape[1]
    L = float(period_length)

    def factor(effects):
        effects = dict(effects or {})
        if not effects:
            return np.ones((n, J))
        idx = [names.index(k) for k in effects]
        return np.exp(paths[:, :, idx] @ np.array([float(v) for v in effects.values()]))

    a, c = factor(gamma_purchase), factor(gamma_dropout)
    lam = rng.gamma(r, 1.0 / alpha, n)
    mu = rng.gamma(s, 1.0 / beta, n)
    end = T_ + float(holdout)
    if np.any(first + end > J * L + 1e-9):
        raise ValueError("paths must cover first + T + holdout for every customer")
    ov_end = overlaps(first, end, J, L)
    # death: first time mu C(t) reaches E ~ Exp(1)
    target = rng.exponential(1.0, n) / mu
    cum = np.cumsum(c * ov_end, 1)
    hit = cum >= target[:, None]
    dies = hit.any(1)
    j_die = np.where(dies, hit.argmax(1), J - 1)
    rows = np.arange(n)
    before = np.where(j_die > 0, cum[rows, np.maximum(j_die - 1, 0)], 0.0)
    before = np.where(j_die > 0, before, 0.0)
    start_j = np.maximum(j_die * L, first)
    death_cal = np.where(dies, start_j + (target - before) / c[rows, j_die], np.inf)
    lifetime = np.minimum(death_cal - first, end)
    alive_len = overlaps(first, lifetime, J, L)
    counts_all = rng.poisson(lam[:, None] * a * alive_len)
    cal_len = overlaps(first, np.minimum(lifetime, T_), J, L)
    # split each period's purchases between calibration and holdout in proportion to time
    frac = np.divide(cal_len, alive_len, out=np.zeros_like(cal_len), where=alive_len > 0)
    counts = rng.binomial(counts_all, np.clip(frac, 0.0, 1.0))
    x = counts.sum(1).astype(np.float64)
    has = x > 0
    last_j = np.where(has, J - 1 - np.argmax(counts[:, ::-1] > 0, axis=1), 0)
    lo = np.maximum(last_j * L, first)
    width = cal_len[rows, last_j]
    k_last = np.maximum(counts[rows, last_j], 1)
    tx = np.where(has, lo - first + width * rng.random(n) ** (1.0 / k_last), 0.0)
    return {"frequency": x, "recency": np.minimum(tx, T_), "T": T_, "purchase_counts": counts.astype(np.float64),
            "frequency_holdout": (counts_all - counts).sum(1).astype(np.float64),
            "alive_at_T": death_cal - first > T_}
