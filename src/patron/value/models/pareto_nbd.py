"""Pareto/NBD model (Schmittlein, Morrison & Colombo 1987, "Counting Your Customers", Mgmt Sci).

While alive a customer buys at Poisson rate lambda ~ Gamma(r, alpha) and dies at exponential rate
mu ~ Gamma(s, beta). Data per customer: x repeat purchases, t_x time of the last one, T time since
the first purchase, all in one time unit (weeks for CDNOW); alpha, beta and every ``t`` are in it.

The likelihood (Fader & Hardie 2005, "A Note on Deriving the Pareto/NBD Model and Related
Expressions", Section 3) is written here without hypergeometric functions. Integrating the
individual likelihood lambda^x e^{-(lambda+mu)T} + lambda^x mu int_{t_x}^T e^{-(lambda+mu)tau} dtau
over the two gamma distributions gives

    L = G(r+x)/G(r) alpha^r beta^s [ (alpha+T)^-(r+x) (beta+T)^-s + s (I(t_x) - I(T)) ],
    I(t) = int_t^inf (alpha+tau)^-(r+x) (beta+tau)^-(s+1) dtau,

which equals the paper's 2F1 form (Euler's integral of 2F1(r+s+x, s+1 or r+x; r+s+x+1; z)). With
K = max(alpha, beta) + t, z = |alpha - beta| / K and tau = K e^w - max(alpha, beta),

    I(t) = K^-a int_0^inf exp(-a w - c log(1 - z e^-w)) dw,   a = r+s+x,
    c = s+1 (alpha >= beta) or r+x (alpha < beta).

The integrand is log-convex and decreasing; after w = sigma (e^u - 1), with sigma the distance to
its branch point (scaled by 1/max(c, 1)), it is smooth in u and a fixed Gauss-Legendre rule on
[0, U] (U covering a drop of ``TAIL_LOG_DROP`` nats) is accurate to ~1e-13 relative for
|log(alpha/beta)| up to ~14 (:mod:`patron.value.models.pareto_tail`). Parameter derivatives (first and
second) are integrals of the same integrand times derivatives of its log on the same nodes, so
they are exact to the same precision. All evaluation is in log space; nothing overflows for any
x, t_x, T.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from scipy import special

from ._base import BaseModel, check_frequency_recency_T, compress, keeps_index, unique_rows, wdot
from .pareto_likelihood import (
    DEDUPE_MIN_ROWS,
    _as_float,
    _log_front,
    _log_parts,
    log_likelihood,
    probability_alive,
)
from .pareto_tail import CHUNK_ROWS, log_tail_integral

__all__ = [
    "ParetoNBD",
    "conditional_expected_purchases",
    "expected_purchases",
    "log_likelihood",
    "negative_log_likelihood",
    "probability_alive",
    "probability_of_purchase",
]


class Prepared(NamedTuple):
    """Per-fit precomputation: I(t) is evaluated once per distinct (x, t) over t_x and T."""

    x: np.ndarray
    tx: np.ndarray
    T: np.ndarray
    w: np.ndarray
    pair_x: np.ndarray
    pair_t: np.ndarray
    idx_tx: np.ndarray
    idx_T: np.ndarray


def prepare(x: np.ndarray, tx: np.ndarray, T: np.ndarray, w: np.ndarray) -> Prepared:
    """Index the distinct (x, t_x) and (x, T) pairs of compressed rows."""
    (pair_x, pair_t), inv = unique_rows(np.concatenate([x, x]), np.concatenate([tx, T]))
    return Prepared(x, tx, T, w, pair_x, pair_t, inv[: x.size], inv[x.size:])


def negative_log_likelihood(
    log_params: np.ndarray, data: Prepared | tuple, weights: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """Weighted negative log-likelihood and its exact gradient with respect to log-parameters."""
    if not isinstance(data, Prepared):
        x, tx, T = _as_float(*data)
        data = prepare(x, tx, T, np.ones_like(x) if weights is None else weights)
    r, alpha, s, beta = np.exp(np.asarray(log_params, dtype=np.float64))
    x, tx, T, w = data.x, data.tx, data.T, data.w
    log_I, d_I = log_tail_integral(data.pair_x, data.pair_t, r, alpha, s, beta, grad=True)
    log_I_tx, log_I_T = log_I[data.idx_tx], log_I[data.idx_T]
    log_alive, log_died = _log_parts(x, tx, T, r, alpha, s, beta, log_I_tx, log_I_T)
    log_sum = np.logaddexp(log_alive, log_died)
    ll = wdot(w, _log_front(x, r, alpha, s, beta) + log_sum)
    # weights of the terms in the bracket: p_alive = A/D, w1 = s I(t_x)/D, w2 = s I(T)/D
    p_alive = np.exp(log_alive - log_sum)
    w1 = np.exp(np.log(s) + log_I_tx - log_sum)
    w2 = np.exp(np.log(s) + log_I_T - log_sum)
    ww1, ww2 = w * w1, w * w2
    n = float(w.sum())
    d_tail = [wdot(ww1, d[data.idx_tx]) - wdot(ww2, d[data.idx_T]) for d in d_I]
    g_r = (wdot(w, special.digamma(r + x)) + n * (np.log(alpha) - special.digamma(r))
           - wdot(w * p_alive, np.log(alpha + T)) + d_tail[0])
    g_alpha = n * r / alpha - wdot(w * p_alive, (r + x) / (alpha + T)) + d_tail[1]
    g_s = (n * np.log(beta) - wdot(w * p_alive, np.log(beta + T))
           + float((ww1 - ww2).sum()) / s + d_tail[2])
    g_beta = n * s / beta - s * wdot(w * p_alive, 1.0 / (beta + T)) + d_tail[3]
    grad = -np.array([g_r * r, g_alpha * alpha, g_s * s, g_beta * beta])
    return -ll, grad


# --------------------------------------------------------------------------- predictions
def _mean_factor(t, scale, s):
    """[1 - (scale/(scale+t))^(s-1)] / (s-1), with its limit log(1 + t/scale) at s = 1."""
    ell = np.log1p(t / scale)
    return ell * special.exprel(-(s - 1.0) * ell)


def expected_purchases(t, r, alpha, s, beta) -> np.ndarray:
    """E[X(t)] for a new customer: r beta / (alpha (s-1)) [1 - (beta/(beta+t))^(s-1)]
    (SMC 1987 eq. 17; FH 2005 note, Section 4)."""
    t, r, alpha, s, beta = _as_float(t, r, alpha, s, beta)
    return r / alpha * beta * _mean_factor(t, beta, s)


def conditional_expected_purchases(t, frequency, recency, T, r, alpha, s, beta) -> np.ndarray:
    """E[Y(t) | x, t_x, T], purchases in (T, T+t] (FH 2005 note, Section 6; SMC 1987 eq. 22):
    (r+x)(beta+T) / ((alpha+T)(s-1)) [1 - ((beta+T)/(beta+T+t))^(s-1)] P(alive)."""
    t, x, tx, T, r, alpha, s, beta = _as_float(t, frequency, recency, T, r, alpha, s, beta)
    alive = probability_alive(x, tx, T, r, alpha, s, beta)
    return alive * (r + x) / (alpha + T) * (beta + T) * _mean_factor(t, beta + T, s)


PURCHASE_NODES = 48
"""Gauss-Legendre nodes of the one-dimensional integral in :func:`probability_of_purchase`."""

PURCHASE_TAIL = 40.0
"""Upper limit of that integral in w = -log(1 - F): beyond it the integrand is below e^-40 ~ 4e-18."""


def probability_of_purchase(t, frequency, recency, T, r, alpha, s, beta) -> np.ndarray:
    """P(X(T, T+t) > 0 | x, t_x, T): the chance of at least one purchase in (T, T+t].

    Alive at T with rates (lambda, mu), the first purchase comes before death and before T + t
    with probability int_0^t lambda e^(-(lambda+mu) u) du. Among the alive, lambda and mu given
    the history are independent, Gamma(r+x, alpha+T) and Gamma(s, beta+T) (the alive term of the
    likelihood, lambda^x e^(-(lambda+mu) T)), so with A = alpha+T, B = beta+T, k = r+x

        P(X > 0 | alive) = int_0^t E[lambda e^(-lambda u)] E[e^(-mu u)] du
                         = int_0^t k/A (A/(A+u))^(k+1) (B/(B+u))^s du
                         = int_0^W e^(-w) (B/(B+u(w)))^s dw,

    after F = 1 - (A/(A+u))^k and w = -log(1 - F): u(w) = A (e^(w/k) - 1), W = k log(1 + t/A).
    The last form has a smooth, bounded integrand and is evaluated with a :data:`PURCHASE_NODES`-point
    Gauss-Legendre rule on [0, min(W, :data:`PURCHASE_TAIL`)]. The result is P(alive) times it.
    """
    t, x, tx, T, r, alpha, s, beta = _as_float(t, frequency, recency, T, r, alpha, s, beta)
    alive = probability_alive(x, tx, T, r, alpha, s, beta)
    if t.ndim == 0 and all(np.ndim(v) == 0 for v in (r, alpha, s, beta)) and x.ndim == 1 and x.size > DEDUPE_MIN_ROWS:
        # the integral depends on (x, T) only: once per distinct pair, a chunk of rows at a time
        (ux, uT), inv = unique_rows(*np.broadcast_arrays(x, T))
        buys = np.concatenate([_buys_if_alive(t, ux[i:i + CHUNK_ROWS], uT[i:i + CHUNK_ROWS], r, alpha, s, beta)
                               for i in range(0, ux.size, CHUNK_ROWS)])
        return alive * buys[inv]
    return alive * _buys_if_alive(t, x, T, r, alpha, s, beta)


def _buys_if_alive(t, x, T, r, alpha, s, beta) -> np.ndarray:
    """The integral of :func:`probability_of_purchase`: P(a purchase in (T, T+t] | alive at T)."""
    t, x, T, r, alpha, s, beta = np.broadcast_arrays(t, x, T, r, alpha, s, beta)
    A, B, k = alpha + T, beta + T, r + x
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        top = np.minimum(k * np.log1p(np.maximum(t, 0.0) / A), PURCHASE_TAIL)
        w = top[..., None] * _PURCHASE_NODES
        u = A[..., None] * np.expm1(w / k[..., None])
        g = np.exp(-w - s[..., None] * np.log1p(u / B[..., None]))
    return top * (g @ _PURCHASE_WEIGHTS)


_PURCHASE_GL_X, _PURCHASE_GL_W = np.polynomial.legendre.leggauss(PURCHASE_NODES)
_PURCHASE_NODES = 0.5 * (_PURCHASE_GL_X + 1.0)
_PURCHASE_WEIGHTS = 0.5 * _PURCHASE_GL_W


class ParetoNBD(BaseModel):
    """Pareto/NBD model (SMC 1987). Parameters ``r, alpha, s, beta``; times in the unit of ``T``.

    Examples
    --------
    >>> import numpy as np
    >>> m = ParetoNBD().fit(np.array([0, 2, 1, 5]), np.array([0.0, 30.4, 1.7, 20.0]),
    ...                     np.array([38.9, 38.9, 38.9, 30.0]))
    >>> sorted(m.params_)
    ['alpha', 'beta', 'r', 's']
    """

    name = "pareto"
    param_names = ("r", "alpha", "s", "beta")
    _time_params = ("alpha", "beta")
    _negative_log_likelihood = staticmethod(negative_log_likelihood)
    _conditional_expected_purchases_fn = staticmethod(conditional_expected_purchases)
    _expected_purchases_fn = staticmethod(expected_purchases)

    def fit(self, frequency: Any, recency: Any, T: Any, *, weights: Any = None) -> ParetoNBD:
        """Fit by maximum likelihood on (x, t_x, T); ``weights`` are per-row customer counts."""
        x, tx, T_ = check_frequency_recency_T(frequency, recency, T)
        columns, w = compress(x, tx, T_, weights=weights)
        return self._fit_compressed(columns, w)

    def _prepare(self, columns, weights) -> Prepared:
        x, tx, T_ = columns
        return prepare(x, tx, T_, weights)

    def _initial_log_params(self, columns, weights) -> np.ndarray:
        x, _, T_ = columns
        n = weights.sum()
        mean_T = max(wdot(weights, T_) / n, 1e-12)
        mean_rate = max(wdot(weights, x) / n, 1e-3) / mean_T
        return np.log([1.0, 1.0 / mean_rate, 1.0, mean_T])

    # ---------------------------------------------------------------- predictions
    @keeps_index
    def expected_purchases(self, t: Any) -> np.ndarray:
        """E[X(t)] for a newly acquired customer; ``t`` in the unit of T."""
        return expected_purchases(t, *self._params())

    @keeps_index
    def conditional_expected_purchases(self, t: Any, frequency: Any, recency: Any,
                                       T: Any) -> np.ndarray:
        """Expected purchases in (T, T+t] given (x, t_x, T)."""
        return conditional_expected_purchases(t, frequency, recency, T, *self._params())

    @keeps_index
    def discounted_expected_residual_transactions(self, frequency: Any, recency: Any, T: Any, *,
                                                  delta: float) -> np.ndarray:
        """DERT in closed form (FHL 2005, "RFM and CLV", eq. 2); ``delta`` is the continuous
        discount rate per unit of T (see :func:`patron.value.models.pareto_dert.continuous_rate`)."""
        from .pareto_dert import dert

        return dert(frequency, recency, T, *self._params(), delta=delta)

    @keeps_index
    def probability_alive(self, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """P(alive at T | x, t_x, T)."""
        return probability_alive(frequency, recency, T, *self._params())

    @keeps_index
    def conditional_probability_of_n_purchases(self, t: Any, n: Any, frequency: Any, recency: Any,
                                               T: Any) -> np.ndarray:
        """P(exactly n purchases in (T, T+t] | x, t_x, T) (:mod:`patron.value.models.pareto_pmf`)."""
        from .pareto_pmf import conditional_probability_of_n_purchases

        return conditional_probability_of_n_purchases(t, n, frequency, recency, T, *self._params())

    @keeps_index
    def conditional_probability_of_purchase(self, t: Any, frequency: Any, recency: Any,
                                            T: Any) -> np.ndarray:
        """P(at least one purchase in (T, T+t] | x, t_x, T); ``t`` in the unit of T."""
        return probability_of_purchase(t, frequency, recency, T, *self._params())
