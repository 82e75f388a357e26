"""Shifted-beta-geometric (sBG) contractual retention model (Fader & Hardie 2007, "How to Project
Customer Retention", Journal of Interactive Marketing 21(1)), abbreviated FH07 below.

At the end of each period an active customer cancels with probability theta ~ Beta(alpha, beta).
The lifetime T (periods until cancellation, T >= 1) has P(T = t) = B(alpha+1, beta+t-1)/B(alpha,
beta) (FH07 eq. 5) and survivor function S(t) = B(alpha, beta+t)/B(alpha, beta) (FH07 eq. 6).

Data are per customer (or per group of customers, with weights): ``duration`` = the period in which
the customer churned (``churned=True``), or the number of periods observed while still active
(``churned=False``, right-censored). A cohort table of survivors converts with
:func:`survivors_to_durations`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special

from ._base import BaseModel, compress, keeps_index, wdot

__all__ = [
    "ShiftedBetaGeo",
    "discounted_expected_residual_lifetime",
    "negative_log_likelihood",
    "retention_rate",
    "survival_function",
    "survivors_to_durations",
]


def survivors_to_durations(survivors: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Turn one cohort's survivor counts into (duration, churned, weights).

    ``survivors[k]`` is the number still active after k periods (``survivors[0]`` = cohort size).
    Returns one row per period with churners (duration k, churned True, weight = losses in period
    k) and one censored row (duration K, churned False, weight = survivors[K]) — FH07 eq. B3.
    """
    s = np.asarray(survivors, dtype=np.float64).ravel()
    if s.size < 2 or np.any(np.diff(s) > 0) or np.any(s < 0):
        raise ValueError("survivors must be a non-increasing sequence of counts, length >= 2")
    k = s.size - 1
    lost = s[:-1] - s[1:]
    duration = np.concatenate([np.arange(1, k + 1, dtype=np.float64), [float(k)]])
    churned = np.concatenate([np.ones(k, dtype=bool), [False]])
    return duration, churned, np.concatenate([lost, [s[-1]]])


def _check(duration: Any, churned: Any) -> tuple[np.ndarray, np.ndarray]:
    d = np.asarray(duration, dtype=np.float64).ravel()
    c = np.asarray(churned).ravel()
    if d.shape != c.shape:
        raise ValueError("duration and churned must have the same length")
    if not np.all(np.isfinite(d)) or np.any(d != np.round(d)) or np.any(d < 0):
        raise ValueError("duration must hold non-negative integers")
    c = c.astype(bool)
    if np.any(c & (d < 1)):
        raise ValueError("a churned customer's duration must be >= 1")
    return d, c.astype(np.float64)


def negative_log_likelihood(
    log_params: np.ndarray, columns: tuple, weights: np.ndarray
) -> tuple[float, np.ndarray]:
    """Weighted NLL (FH07 eq. B3) and its gradient in log-parameters.

    Churned at t: ln P(T=t) = lnB(alpha+1, beta+t-1) - lnB(alpha, beta);
    active after t: ln S(t) = lnB(alpha, beta+t) - lnB(alpha, beta).
    """
    alpha, beta = np.exp(np.asarray(log_params, dtype=np.float64))
    d, churned = columns
    c = churned > 0.5
    a_ = np.where(c, alpha + 1.0, alpha)
    b_ = np.where(c, beta + d - 1.0, beta + d)
    ll = wdot(weights, special.betaln(a_, b_)) - weights.sum() * special.betaln(alpha, beta)
    psi = special.digamma
    psi_ab_sum = psi(a_ + b_)
    total = weights.sum()
    g_alpha = wdot(weights, psi(a_) - psi_ab_sum) - total * (psi(alpha) - psi(alpha + beta))
    g_beta = wdot(weights, psi(b_) - psi_ab_sum) - total * (psi(beta) - psi(alpha + beta))
    return -ll, -np.array([g_alpha * alpha, g_beta * beta])


def survival_function(t: Any, alpha: Any, beta: Any) -> np.ndarray:
    """S(t) = B(alpha, beta+t) / B(alpha, beta): share still active after t periods (FH07 eq. 6)."""
    t, alpha, beta = (np.asarray(v, dtype=np.float64) for v in (t, alpha, beta))
    return np.exp(special.betaln(alpha, beta + t) - special.betaln(alpha, beta))


def retention_rate(t: Any, alpha: Any, beta: Any) -> np.ndarray:
    """r_t = S(t)/S(t-1) = (beta+t-1)/(alpha+beta+t-1), t >= 1 (FH07 eq. 8)."""
    t, alpha, beta = (np.asarray(v, dtype=np.float64) for v in (t, alpha, beta))
    return (beta + t - 1.0) / (alpha + beta + t - 1.0)


def discounted_expected_residual_lifetime(
    renewals: Any, alpha: Any, beta: Any, *, discount_rate_per_period: float
) -> np.ndarray:
    """DERL of a customer who has made ``renewals`` = n-1 renewals (is starting period n):
    sum_{t>=n} S(t)/S(n-1) / (1+d)^(t-n) = (beta+n-1)/(alpha+beta+n-1)
    * 2F1(1, beta+n; alpha+beta+n; 1/(1+d)) (Fader & Hardie 2010, "Customer-Base Valuation in a
    Contractual Setting: The Perils of Ignoring Heterogeneity", Marketing Science 29(1), eq. 6),
    in periods (multiply by the per-period margin for residual value). ``discount_rate_per_period``
    (d) > 0 per contract period, not annual.
    """
    if not discount_rate_per_period > 0:
        raise ValueError("discount_rate_per_period must be positive")
    n = np.asarray(renewals, dtype=np.float64) + 1.0
    alpha, beta = np.asarray(alpha, dtype=np.float64), np.asarray(beta, dtype=np.float64)
    first = (beta + n - 1.0) / (alpha + beta + n - 1.0)
    return first * _hyp2f1_one(beta + n, alpha + beta + n, 1.0 / (1.0 + discount_rate_per_period))


SERIES_BLOCK = 1024
"""Terms of the 2F1 series summed per pass in :func:`_hyp2f1_one`."""

SERIES_REL_TOL = 1e-17
"""The series stops once a bound on its remaining tail is below this share of the sum."""


def _hyp2f1_one(b: np.ndarray, c: np.ndarray, z: float) -> np.ndarray:
    """2F1(1, b; c; z) = sum_k prod_{j<k} z (b+j)/(c+j) for 0 < b < c, 0 <= z < 1.

    Summed directly: every term is positive and the term ratio is below z, so the tail after a
    term u is at most u / (1 - z). (scipy's hyp2f1 is unreliable when c - 1 - b is an integer.)
    """
    b, c = np.broadcast_arrays(np.asarray(b, dtype=np.float64), np.asarray(c, dtype=np.float64))
    shape = b.shape
    b, c = b.ravel(), c.ravel()
    total = np.zeros(b.size)
    log_u = np.zeros(b.size)  # log of the first term of the current block
    j = np.arange(SERIES_BLOCK, dtype=np.float64)
    active = np.arange(b.size)
    k0 = 0.0
    log_z = np.log(z) if z > 0 else -np.inf
    while active.size:
        with np.errstate(divide="ignore", invalid="ignore"):
            log_ratio = log_z + np.log(b[active, None] + k0 + j) - np.log(c[active, None] + k0 + j)
        steps = np.cumsum(log_ratio, axis=1)
        log_terms = log_u[active, None] + np.concatenate(
            [np.zeros((active.size, 1)), steps[:, :-1]], axis=1)
        total[active] += np.exp(log_terms).sum(axis=1)
        log_u[active] += steps[:, -1]
        k0 += SERIES_BLOCK
        tail = np.exp(log_u[active]) / (1.0 - z)
        active = active[~(tail <= SERIES_REL_TOL * total[active])]
    return total.reshape(shape)


class ShiftedBetaGeo(BaseModel):
    """sBG model (FH07). Parameters ``alpha, beta`` of the Beta-distributed churn probability.

    Examples
    --------
    >>> d, c, w = survivors_to_durations([1000, 869, 743, 653, 593, 551, 517, 491])
    >>> m = ShiftedBetaGeo().fit(d, c, weights=w)
    >>> round(m.params_["alpha"], 3), round(m.params_["beta"], 3)
    (0.668, 3.806)
    """

    name = "sbg"
    param_names = ("alpha", "beta")
    _negative_log_likelihood = staticmethod(negative_log_likelihood)

    def fit(self, duration: Any, churned: Any, *, weights: Any = None) -> ShiftedBetaGeo:
        """Fit on (duration, churned) rows; ``weights`` are per-row customer counts."""
        d, c = _check(duration, churned)
        columns, w = compress(d, c, weights=weights)
        return self._fit_compressed(columns, w)

    @keeps_index
    def survival_function(self, t: Any) -> np.ndarray:
        """S(t), share of a new cohort still active after t periods."""
        return survival_function(t, *self._params())

    @keeps_index
    def retention_rate(self, t: Any) -> np.ndarray:
        """Retention rate in period t (share of those active at t-1 who renew)."""
        return retention_rate(t, *self._params())

    @keeps_index
    def discounted_expected_residual_lifetime(self, renewals: Any, *,
                                              discount_rate_per_period: float) -> np.ndarray:
        """DERL (periods) of a customer who has made ``renewals`` renewals, discounted at
        ``discount_rate_per_period`` per period."""
        return discounted_expected_residual_lifetime(renewals, *self._params(),
                                                     discount_rate_per_period=discount_rate_per_period)
