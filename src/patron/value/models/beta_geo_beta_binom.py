"""BG/BB model (Fader, Hardie & Shang 2010, "Customer-Base Analysis in a Discrete-Time
Noncontractual Setting", Marketing Science 29(6)), abbreviated FHS below.

Discrete transaction opportunities 1, 2, ..., n. While alive a customer transacts at each
opportunity with probability p ~ Beta(alpha, beta); at the start of each opportunity an alive
customer dies with probability theta ~ Beta(gamma, delta). Data per customer: x transactions in n
opportunities (frequency), t_x the opportunity of the last one (recency, 0 if x = 0), n_periods.
Every function works on arrays and broadcasts.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from scipy import special

from ._base import BaseModel, compress, keeps_index, wdot

__all__ = [
    "BetaGeoBetaBinom",
    "check_frequency_recency_n",
    "conditional_expected_purchases",
    "expected_purchases",
    "log_likelihood",
    "negative_log_likelihood",
    "probability_alive",
    "probability_of_n_purchases",
]

GAMMA_NEAR_ONE = 0.25
"""Within this distance of gamma = 1 the ratio [1 - R] / (gamma - 1) is computed as an average of
digamma differences (Gauss-Legendre), avoiding the 0/0 of the closed form."""

_GL_X, _GL_W = np.polynomial.legendre.leggauss(16)
_GL_X = 0.5 * (_GL_X + 1.0)
_GL_W = 0.5 * _GL_W


def _as_float(*arrays: Any) -> list[np.ndarray]:
    return [np.asarray(v, dtype=np.float64) for v in arrays]


def check_frequency_recency_n(frequency: Any, recency: Any, n_periods: Any):
    """Validate (x, t_x, n): integers with 0 <= x <= t_x <= n, n >= 1, t_x = 0 iff x = 0."""
    x, tx, n = (np.asarray(v, dtype=np.float64).ravel() for v in (frequency, recency, n_periods))
    if not (x.shape == tx.shape == n.shape):
        raise ValueError("frequency, recency and n_periods must have the same length")
    for name, v in (("frequency", x), ("recency", tx), ("n_periods", n)):
        if not np.all(np.isfinite(v)) or np.any(v != np.round(v)) or np.any(v < 0):
            raise ValueError(f"{name} must hold non-negative integers")
    if np.any(n < 1) or np.any(tx > n) or np.any(x > tx):
        raise ValueError("need 0 <= frequency <= recency <= n_periods and n_periods >= 1")
    if np.any((x == 0) != (tx == 0)):
        raise ValueError("recency must be 0 exactly when frequency is 0")
    return x, tx, n


def _terms(x, tx, n, alpha, beta, gamma, delta):
    """log of the likelihood's terms (FHS eq. 5): alive through n, and died after t_x + i.

    Returns (log_alive, log_died, mask) with log_died of shape (rows, max(n - t_x)) and ``mask``
    marking the existing terms i = 0 .. n - t_x - 1.
    """
    lb_ab = special.betaln(alpha, beta)
    lb_gd = special.betaln(gamma, delta)
    log_alive = (special.betaln(alpha + x, beta + n - x) - lb_ab
                 + special.betaln(gamma, delta + n) - lb_gd)
    width = int(np.max(n - tx)) if x.size else 0
    i = np.arange(width, dtype=np.float64)
    mask = i < (n - tx)[:, None]
    j = tx[:, None] + i  # opportunities survived before dying
    log_died = (special.betaln(alpha + x[:, None], beta + j - x[:, None]) - lb_ab
                + special.betaln(gamma + 1.0, delta + j) - lb_gd)
    return log_alive, np.where(mask, log_died, -np.inf), mask, j


def log_likelihood(frequency, recency, n_periods, alpha, beta, gamma, delta) -> np.ndarray:
    """Per-customer log-likelihood (FHS eq. 5); scalar parameters."""
    x, tx, n = (np.asarray(v, dtype=np.float64).ravel() for v in (frequency, recency, n_periods))
    log_alive, log_died, _, _ = _terms(x, tx, n, alpha, beta, gamma, delta)
    return np.logaddexp(log_alive, special.logsumexp(log_died, axis=1))


class Prepared(NamedTuple):
    x: np.ndarray
    tx: np.ndarray
    n: np.ndarray
    w: np.ndarray


def negative_log_likelihood(
    log_params: np.ndarray, data: Prepared | tuple, weights: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """Weighted negative log-likelihood and its exact gradient in log-parameters."""
    if not isinstance(data, Prepared):
        x, tx, n = _as_float(*data)
        data = Prepared(x, tx, n, np.ones_like(x) if weights is None else weights)
    alpha, beta, gamma, delta = np.exp(np.asarray(log_params, dtype=np.float64))
    x, tx, n, w = data
    log_alive, log_died, mask, j = _terms(x, tx, n, alpha, beta, gamma, delta)
    log_l = np.logaddexp(log_alive, special.logsumexp(log_died, axis=1))
    p_alive = np.exp(log_alive - log_l)  # share of each term in L
    p_died = np.where(mask, np.exp(log_died - log_l[:, None]), 0.0)
    psi = special.digamma
    psi_ab, psi_gd = psi(alpha + beta), psi(gamma + delta)
    xc = x[:, None]
    # d log B(a+u, b+v) / d a = psi(a+u) - psi(a+b+u+v), and likewise for b.
    g_alpha = (wdot(w * p_alive, psi(alpha + x) - psi(alpha + beta + n))
               + wdot(w[:, None] * p_died, psi(alpha + xc) - psi(alpha + beta + j)))
    g_beta = (wdot(w * p_alive, psi(beta + n - x) - psi(alpha + beta + n))
              + wdot(w[:, None] * p_died, np.where(mask, psi(beta + j - xc), 0.0)
                     - psi(alpha + beta + j)))
    g_gamma = (wdot(w * p_alive, psi(gamma) - psi(gamma + delta + n))
               + wdot(w[:, None] * p_died, psi(gamma + 1.0) - psi(gamma + delta + 1.0 + j)))
    g_delta = (wdot(w * p_alive, psi(delta + n) - psi(gamma + delta + n))
               + wdot(w[:, None] * p_died, psi(delta + j) - psi(gamma + delta + 1.0 + j)))
    total = float(w.sum())
    g_alpha -= total * (psi(alpha) - psi_ab)
    g_beta -= total * (psi(beta) - psi_ab)
    g_gamma -= total * (psi(gamma) - psi_gd)
    g_delta -= total * (psi(delta) - psi_gd)
    grad = -np.array([g_alpha * alpha, g_beta * beta, g_gamma * gamma, g_delta * delta])
    return -wdot(w, log_l), grad


# --------------------------------------------------------------------------- predictions
def _log_survival_sum(m, k, gamma, delta):
    """log sum_{i=1}^{k} B(gamma, delta+m+i) / B(gamma, delta): expected alive opportunities
    among m+1 .. m+k (FHS eqs. 8 and 13, in the closed form
    delta/(gamma-1) [R(m) - R(m+k)], R(m) = G(gamma+delta) G(1+delta+m) / (G(1+delta) G(gamma+delta+m)))."""
    m, k, gamma, delta = np.broadcast_arrays(*_as_float(m, k, gamma, delta))
    h = lambda y: special.gammaln(1.0 + delta + y) - special.gammaln(gamma + delta + y)  # noqa: E731
    log_R_m = h(m) - h(0.0)
    # Delta = log R(m+k) - log R(m) <= 0, and Delta / (gamma - 1) computed stably:
    gm1 = gamma - 1.0
    near = np.abs(gm1) < GAMMA_NEAR_ONE
    safe = np.where(near, 1.0, gm1)
    ratio_far = (h(m + k) - h(m)) / safe
    # near gamma = 1: Delta/(gamma-1) = -mean over u in [0, gamma-1] of
    # psi(1+delta+m+k+u) - psi(1+delta+m+u)
    u = gm1[..., None] * _GL_X
    y0 = (1.0 + delta + m)[..., None] + u
    ratio_near = -((special.digamma(y0 + k[..., None]) - special.digamma(y0)) @ _GL_W)
    ratio = np.where(near, ratio_near, ratio_far)
    diff = ratio * gm1  # Delta
    # (R(m) - R(m+k)) / (gamma - 1) = R(m) * (-expm1(Delta)) / (gamma - 1)
    #                              = R(m) * (-ratio) * exprel(Delta)
    with np.errstate(divide="ignore"):
        return (np.log(delta) + log_R_m + np.log(-ratio) + np.log(special.exprel(diff)))


def expected_purchases(n, alpha, beta, gamma, delta) -> np.ndarray:
    """E[X(n)]: expected transactions of a new customer in n opportunities (FHS eq. 8)."""
    n, alpha, beta, gamma, delta = _as_float(n, alpha, beta, gamma, delta)
    with np.errstate(divide="ignore"):
        out = alpha / (alpha + beta) * np.exp(_log_survival_sum(0.0, n, gamma, delta))
    return np.where(n > 0, out, 0.0)


def probability_alive(frequency, recency, n_periods, alpha, beta, gamma, delta, *,
                      periods_ahead: Any = 1) -> np.ndarray:
    """P(alive at opportunity n + m | x, t_x, n), m = ``periods_ahead`` (FHS eq. 11 for m = 1,
    the chance of being alive at the next opportunity; m = 0: alive after opportunity n):

        B(alpha+x, beta+n-x)/B(alpha, beta) * B(gamma, delta+n+m)/B(gamma, delta) / L(x, t_x, n).
    """
    x, tx, n = check_frequency_recency_n(frequency, recency, n_periods)
    m = np.asarray(periods_ahead, dtype=np.float64)
    if np.any(m < 0) or np.any(m != np.round(m)):
        raise ValueError("periods_ahead must hold non-negative integers")
    log_alive, log_died, _, _ = _terms(x, tx, n, alpha, beta, gamma, delta)
    log_l = np.logaddexp(log_alive, special.logsumexp(log_died, axis=1))
    log_next = (special.betaln(alpha + x, beta + n - x) - special.betaln(alpha, beta)
                + special.betaln(gamma, delta + n + m) - special.betaln(gamma, delta))
    return np.exp(log_next - log_l)


def probability_of_n_purchases(n_periods, x, alpha, beta, gamma, delta) -> np.ndarray:
    """P(X(n) = x): the chance that a new customer makes x transactions in n opportunities
    (FHS eq. 7): alive throughout with x of n, or dying after opportunity i >= x with x of i,

        C(n, x) B(alpha+x, beta+n-x)/B(alpha, beta) B(gamma, delta+n)/B(gamma, delta)
        + sum_{i=x}^{n-1} C(i, x) B(alpha+x, beta+i-x)/B(alpha, beta) B(gamma+1, delta+i)/B(gamma, delta).

    ``n_periods`` and ``x`` broadcast (integers >= 0); 0 where x > n.
    """
    n, x = np.broadcast_arrays(*_as_float(n_periods, x))
    shape = n.shape
    n, x = n.ravel(), x.ravel()
    for name, v in (("n_periods", n), ("x", x)):
        if not np.all(np.isfinite(v)) or np.any(v < 0) or np.any(v != np.round(v)):
            raise ValueError(f"{name} must hold non-negative integers")
    lb_ab, lb_gd = special.betaln(alpha, beta), special.betaln(gamma, delta)

    def log_choose(a, b):
        return special.gammaln(a + 1.0) - special.gammaln(b + 1.0) - special.gammaln(a - b + 1.0)

    valid = x <= n
    xs, ns = np.where(valid, x, 0.0), np.where(valid, n, 0.0)
    alive = np.exp(log_choose(ns, xs) + special.betaln(alpha + xs, beta + ns - xs) - lb_ab
                   + special.betaln(gamma, delta + ns) - lb_gd)
    i = np.arange(int(ns.max()) if ns.size else 0, dtype=np.float64)[None, :]
    inside = (i >= xs[:, None]) & (i < ns[:, None])
    ic = np.where(inside, i, xs[:, None])
    terms = (log_choose(ic, xs[:, None]) + special.betaln(alpha + xs[:, None], beta + ic - xs[:, None])
             - lb_ab + special.betaln(gamma + 1.0, delta + ic) - lb_gd)
    died = np.where(inside, np.exp(terms), 0.0).sum(axis=1)
    return np.where(valid, alive + died, 0.0).reshape(shape)


def conditional_expected_purchases(n_future, frequency, recency, n_periods, alpha, beta, gamma,
                                   delta) -> np.ndarray:
    """E[X(n, n+n*) | x, t_x, n]: transactions in the next n* opportunities (FHS eq. 13)."""
    x, tx, n = check_frequency_recency_n(frequency, recency, n_periods)
    n_future = np.asarray(n_future, dtype=np.float64)
    log_alive, log_died, _, _ = _terms(x, tx, n, alpha, beta, gamma, delta)
    log_l = np.logaddexp(log_alive, special.logsumexp(log_died, axis=1))
    log_buy = special.betaln(alpha + x + 1.0, beta + n - x) - special.betaln(alpha, beta)
    with np.errstate(divide="ignore"):
        out = np.exp(log_buy - log_l + _log_survival_sum(n, n_future, gamma, delta))
    return np.where(n_future > 0, out, 0.0)


class BetaGeoBetaBinom(BaseModel):
    """BG/BB model (FHS 2010). Parameters ``alpha, beta`` (transaction probability) and
    ``gamma, delta`` (death probability); data (frequency, recency, n_periods) in opportunities.

    Examples
    --------
    >>> import numpy as np
    >>> m = BetaGeoBetaBinom().fit([0, 2, 6, 3], [0, 4, 6, 3], [6, 6, 6, 6], weights=[40, 20, 15, 9])
    >>> sorted(m.params_)
    ['alpha', 'beta', 'delta', 'gamma']
    """

    name = "bgbb"
    param_names = ("alpha", "beta", "gamma", "delta")
    _negative_log_likelihood = staticmethod(negative_log_likelihood)

    def fit(self, frequency: Any, recency: Any, n_periods: Any, *,
            weights: Any = None) -> BetaGeoBetaBinom:
        """Fit by maximum likelihood; ``weights`` are per-row customer counts."""
        x, tx, n = check_frequency_recency_n(frequency, recency, n_periods)
        columns, w = compress(x, tx, n, weights=weights)
        return self._fit_compressed(columns, w)

    def _prepare(self, columns, weights) -> Prepared:
        return Prepared(*columns, weights)

    def _initial_log_params(self, columns, weights) -> np.ndarray:
        return np.zeros(4)

    @keeps_index
    def expected_purchases(self, n: Any) -> np.ndarray:
        """E[X(n)] for a new customer over n opportunities."""
        return expected_purchases(n, *self._params())

    @keeps_index
    def conditional_expected_purchases(self, n_future: Any, frequency: Any, recency: Any,
                                       n_periods: Any) -> np.ndarray:
        """Expected transactions in the next ``n_future`` opportunities given (x, t_x, n)."""
        return conditional_expected_purchases(n_future, frequency, recency, n_periods,
                                              *self._params())

    @keeps_index
    def probability_alive(self, frequency: Any, recency: Any, n_periods: Any, *,
                          periods_ahead: Any = 1) -> np.ndarray:
        """P(alive at opportunity n + ``periods_ahead`` | x, t_x, n); by default the next one."""
        return probability_alive(frequency, recency, n_periods, *self._params(),
                                 periods_ahead=periods_ahead)

    @keeps_index
    def probability_of_n_purchases(self, n_periods: Any, x: Any) -> np.ndarray:
        """P(X(n) = x) for a new customer over ``n_periods`` opportunities (FHS eq. 7)."""
        return probability_of_n_purchases(n_periods, x, *self._params())
