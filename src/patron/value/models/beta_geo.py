"""BG/NBD model (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way", Marketing Science).

While active a customer buys at Poisson rate lambda ~ Gamma(r, alpha); after each *repeat* purchase
they drop out with probability p ~ Beta(a, b). Data per customer: x repeat purchases (frequency),
t_x time of the last one (recency) and T time since the first purchase, all in one time unit (e.g.
weeks); alpha and every ``t`` are in that unit too.

The functions here are shared with the MBG/NBD model (:mod:`patron.value.models.modified_beta_geo`)
through ``shift``: with ``shift=1`` the customer may also drop out right after the first purchase
(Batislam, Denizel & Filiztekin 2007). Every function works on arrays and broadcasts; parameters may
be arrays too (used for parametric-bootstrap draws).

Fitting cost: the likelihood, its gradient and its exact Hessian (for Newton steps and standard
errors) sum terms in x alone per distinct x, terms in T per distinct T, and only the dropout
branch per distinct (x, t_x, T) row, reading logarithms from tables of the distinct T and t_x.
Conditional predictions evaluate the hypergeometric factor once per distinct (x, T).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from scipy import special

from ._base import BaseModel, check_frequency_recency_T, compress, keeps_index, unique_rows, wdot
from ._rows import factorize

__all__ = [
    "BetaGeo",
    "conditional_expected_purchases",
    "expected_purchases",
    "expected_purchases_if_alive",
    "negative_log_likelihood",
    "probability_alive",
    "probability_of_n_purchases",
    "probability_of_purchase",
]

A_NEAR_ONE = 1e-4
"""Half-width around a = 1 where E[1/p]-type terms are interpolated (their formula has a 0/0)."""

QUADRATURE_NODES = 64
"""Gauss-Legendre nodes (in Beta-quantile space) used when the hypergeometric route is unreliable."""

BOUND_SLACK = 1e-9
"""Relative slack when checking a hypergeometric result against its analytic bounds."""

DEDUPE_MIN_ROWS = 20_000
"""Predictions evaluate hypergeometric terms once per distinct (x, T) when there are more rows."""

_GL_U, _GL_W = np.polynomial.legendre.leggauss(QUADRATURE_NODES)
_GL_U = 0.5 * (_GL_U + 1.0)
_GL_W = 0.5 * _GL_W


class Prepared(NamedTuple):
    """Per-fit precomputation, so that each term is evaluated on the fewest values.

    Terms in x alone are summed per distinct x, the ``(r+x) ln(alpha+T)`` term per distinct T;
    only the dropout branch (log-odds z, which needs x, t_x and T together) runs over rows, and it
    reads ``ln(alpha+T)`` and ``ln(alpha+t_x)`` from tables of the distinct T and t_x.
    """

    shift: int
    n: float  # total weight
    ux: np.ndarray  # distinct x
    wx: np.ndarray  # weight per distinct x
    uT: np.ndarray  # distinct T
    wT: np.ndarray  # weight per distinct T
    wxT: np.ndarray  # sum of w * x per distinct T
    # rows carrying the "dropped out after the last purchase" branch (x > 0 for BG, all for MBG),
    # sorted by x
    aw: np.ndarray  # row weights
    ax: np.ndarray  # x per row
    iT: np.ndarray  # index of the row's T in uT
    utx: np.ndarray  # distinct t_x among those rows
    itx: np.ndarray  # index of the row's t_x in utx
    a_ux: np.ndarray  # distinct x among those rows
    a_ix: np.ndarray  # index of the row's x in a_ux
    a_starts: np.ndarray  # first row of each distinct x


def prepare(x: np.ndarray, tx: np.ndarray, T: np.ndarray, w: np.ndarray, *, shift: int) -> Prepared:
    """Precompute for :func:`negative_log_likelihood`; rows must be sorted by x (as from compress)."""
    ux, ix = factorize(x)
    wx = np.bincount(ix, weights=w, minlength=ux.size)
    uT, iT = factorize(T)
    wT = np.bincount(iT, weights=w, minlength=uT.size)
    wxT = np.bincount(iT, weights=w * x, minlength=uT.size)
    first = 0 if shift else int(np.searchsorted(x, 0.5))
    ax = x[first:]
    a_ux, a_ix = factorize(ax)
    a_starts = np.flatnonzero(np.r_[True, ax[1:] != ax[:-1]]) if ax.size else a_ix
    utx, itx = factorize(tx[first:])
    return Prepared(shift, float(w.sum()), ux, wx, uT, wT, wxT, w[first:], ax,
                    np.ascontiguousarray(iT[first:]), utx, itx, a_ux, a_ix, a_starts)


def _likelihood_terms(log_params: np.ndarray, data: Prepared, hessian: bool):
    """Log-likelihood, gradient and (optionally) Hessian in the *natural* parameters.

    ln L = lnG(r+x) - lnG(r) + r ln(alpha) + lnB(a, b+x+s) - lnB(a, b) - (r+x) ln(alpha+T)
           + softplus(z) * [x+s > 0],
    z = ln a - ln(b+x+s-1) + (r+x) d,  d = ln(alpha+T) - ln(alpha+t_x).
    softplus' = pi = expit(z), softplus'' = pi (1 - pi) = e / (1+e)^2 with e = exp(-|z|).
    """
    r, alpha, a, b = np.exp(log_params)
    s = data.shift
    n, ux, wx = data.n, data.ux, data.wx
    log_aT = np.log(alpha + data.uT)
    inv_aT = 1.0 / (alpha + data.uT)
    coef_T = r * data.wT + data.wxT  # sum over rows of w (r + x), per distinct T
    # terms in x alone and in T alone
    ll = wdot(wx, special.gammaln(r + ux) + special.betaln(a, b + ux + s))
    ll += n * (-special.gammaln(r) + r * np.log(alpha) - special.betaln(a, b)) - wdot(coef_T, log_aT)
    # the dropout branch, per row
    inv_atx = 1.0 / (alpha + data.utx)
    d = log_aT.take(data.iT)
    d -= np.log(alpha + data.utx).take(data.itx)
    rx = data.ax + r
    bx = b + data.a_ux + (s - 1)
    z = rx * d
    z += (np.log(a) - np.log(bx)).take(data.a_ix)
    e = np.abs(z)
    np.minimum(e, 700.0, out=e)  # no subnormals below
    np.negative(e, out=e)
    np.exp(e, out=e)
    one_e = 1.0 + e
    ll += wdot(data.aw, np.maximum(z, 0.0)) + wdot(data.aw, np.log1p(e))
    pi_w = np.where(z >= 0.0, 1.0, e)
    pi_w *= data.aw
    pi_w /= one_e
    E = inv_aT.take(data.iT)
    E -= inv_atx.take(data.itx)  # d d / d alpha
    u = rx * E  # d z / d alpha
    pi_x = np.add.reduceat(pi_w, data.a_starts) if pi_w.size else np.zeros(0)
    sum_pi = float(pi_x.sum())
    dig = special.digamma
    psi_ab = dig(a + b)
    g = np.array([
        wdot(wx, dig(r + ux)) + n * (np.log(alpha) - dig(r)) - wdot(data.wT, log_aT)
        + wdot(pi_w, d),
        n * r / alpha - wdot(coef_T, inv_aT) + wdot(pi_w, u),
        n * psi_ab - wdot(wx, dig(a + b + ux + s)) + sum_pi / a,
        n * (psi_ab - dig(b)) + wdot(wx, dig(b + ux + s) - dig(a + b + ux + s))
        - wdot(pi_x, 1.0 / bx),
    ])
    if not hessian:
        return ll, g, None
    sw = e / (one_e * one_e)
    sw *= data.aw  # w pi (1 - pi)
    sw_d, sw_u = sw * d, sw * u
    s_x, sd_x, su_x = (np.add.reduceat(v, data.a_starts) if v.size else np.zeros(0)
                       for v in (sw, sw_d, sw_u))
    tri = special.polygamma(1, np.array([r, a + b, b]))
    tri_ab_x = special.polygamma(1, a + b + ux + s)
    F = (inv_atx * inv_atx).take(data.itx)
    F -= (inv_aT * inv_aT).take(data.iT)  # d E / d alpha
    h_rr = wdot(wx, special.polygamma(1, r + ux)) - n * tri[0] + wdot(sw_d, d)
    h_ra = n / alpha - wdot(data.wT, inv_aT) + wdot(pi_w, E) + wdot(sw_d, u)
    h_aa = (-n * r / alpha**2 + wdot(coef_T, inv_aT * inv_aT) + wdot(pi_w * rx, F)
            + wdot(sw_u, u))
    h_AA = n * tri[1] - wdot(wx, tri_ab_x) + (float(s_x.sum()) - sum_pi) / a**2
    h_AB = n * tri[1] - wdot(wx, tri_ab_x) - wdot(s_x, 1.0 / bx) / a
    h_BB = (n * (tri[1] - tri[2]) + wdot(wx, special.polygamma(1, b + ux + s) - tri_ab_x)
            + wdot(s_x + pi_x, 1.0 / (bx * bx)))
    h = np.array([
        [h_rr, h_ra, float(sd_x.sum()) / a, -wdot(sd_x, 1.0 / bx)],
        [h_ra, h_aa, float(su_x.sum()) / a, -wdot(su_x, 1.0 / bx)],
        [0.0, 0.0, h_AA, h_AB],
        [0.0, 0.0, h_AB, h_BB],
    ])
    h[2:, :2] = h[:2, 2:].T
    return ll, g, h


def negative_log_likelihood(
    log_params: np.ndarray, data: Prepared, weights: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """Weighted negative log-likelihood and its gradient in log-parameters.

    FHL 2005 eq. 6 (BG/NBD, ``shift=0``); Batislam et al. 2007 (MBG/NBD, ``shift=1``), written as
    ln L = lnG(r+x) - lnG(r) + r ln(alpha) + lnB(a, b+x+s) - lnB(a, b) - (r+x) ln(alpha+T)
           + softplus(z) * [x+s > 0],
    z = ln a - ln(b+x+s-1) + (r+x) ln((alpha+T)/(alpha+t_x)).
    """
    ll, g, _ = _likelihood_terms(log_params, data, False)
    return -ll, -g * np.exp(log_params)


def negative_log_likelihood_hessian(
    log_params: np.ndarray, data: Prepared, weights: np.ndarray | None = None
) -> tuple[float, np.ndarray, np.ndarray]:
    """As :func:`negative_log_likelihood`, plus the exact Hessian in log-parameters:
    d2/dlog p_i dlog p_j = p_i p_j H_ij + [i = j] p_i g_i (H, g in natural parameters)."""
    ll, g, h = _likelihood_terms(log_params, data, True)
    p = np.exp(log_params)
    return -ll, -g * p, -(h * np.outer(p, p) + np.diag(g * p))


# --------------------------------------------------------------------------- predictions
def _as_float(*arrays: Any) -> list[np.ndarray]:
    return [np.asarray(v, dtype=np.float64) for v in arrays]


def _h(p: np.ndarray, t: np.ndarray, r: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """(1 - (alpha/(alpha + p t))^r) / p, with its limit r t / alpha at p = 0."""
    u = p * t / alpha
    with np.errstate(all="ignore"):
        val = -np.expm1(-r * np.log1p(u)) / p
    return np.where(u < 1e-300, r * t / alpha, val)


def _beta_mean_h_quadrature(t, r, alpha, a, b) -> np.ndarray:
    """E_{p~Beta(a,b)}[h(p)] by Gauss-Legendre in quantile space (bounded monotone integrand)."""
    # Beta quantiles once per distinct (a, b): b = b + x (+ shift) takes few values across customers
    ab, inv = np.unique(np.stack([np.ravel(a), np.ravel(b)], axis=1), axis=0, return_inverse=True)
    p = special.betaincinv(ab[:, :1], ab[:, 1:], _GL_U)[inv.ravel()].reshape(*np.shape(a), -1)
    vals = _h(p, t[..., None], r[..., None], alpha[..., None])
    return vals @ _GL_W


def _beta_mean_h_hyp(t, r, alpha, a, b) -> np.ndarray:
    """Closed form via 2F1 after Euler's transformation (valid for a != 1)."""
    c = a + b - 1.0
    log1mz = -np.log1p(t / alpha)
    z = -np.expm1(log1mz)
    with np.errstate(all="ignore"):
        f = special.hyp2f1(c - r, a - 1.0, c, z)
        return c / (a - 1.0) * -np.expm1((a - 1.0) * log1mz + np.log(f))


def expected_given_alive(t: Any, r: Any, alpha: Any, a: Any, b: Any) -> np.ndarray:
    """E_{p ~ Beta(a, b)} [ (1 - (alpha / (alpha + p t))^r) / p ].

    Expected purchases in the next ``t`` time units of a customer who is alive now, with
    lambda ~ Gamma(r, alpha) and p ~ Beta(a, b) (FHL 2005 eqs. 7 and 10 before the P(alive) factor):
    (a+b-1)/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))], evaluated as
    (a+b-1)/(a-1) [1 - (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b-1; z)] (Euler's transformation), which
    keeps 2F1's parameters small when r is large (conditional predictions use r + x). Near a = 1
    the value is interpolated; where the 2F1 value is non-finite or outside the analytic bounds
    [1 - (alpha/(alpha+t))^r, r t / alpha], a Beta-quantile Gauss-Legendre rule is used.
    """
    t, r, alpha, a, b = np.broadcast_arrays(*_as_float(t, r, alpha, a, b))
    shape = t.shape
    near = np.abs(a - 1.0) < A_NEAR_ONE
    a_far = np.where(near, 1.0 + 2 * A_NEAR_ONE, a)
    out = np.array(_beta_mean_h_hyp(t, r, alpha, a_far, b), dtype=np.float64, ndmin=1)
    t, r, alpha, a, b, near = (np.reshape(v, out.shape) for v in (t, r, alpha, a, b, near))
    if np.any(near):
        tn, rn, an, bn, alphan = t[near], r[near], a[near], b[near], alpha[near]
        lo = _beta_mean_h_hyp(tn, rn, alphan, 1.0 - A_NEAR_ONE, bn)
        hi = _beta_mean_h_hyp(tn, rn, alphan, 1.0 + A_NEAR_ONE, bn)
        frac = (an - (1.0 - A_NEAR_ONE)) / (2 * A_NEAR_ONE)
        out[near] = lo + frac * (hi - lo)
    lower = -np.expm1(-r * np.log1p(t / alpha))
    upper = r * t / alpha
    bad = (~np.isfinite(out) | (out < lower * (1 - BOUND_SLACK))
           | (out > upper * (1 + BOUND_SLACK)) | (a + b < 1.5))
    if np.any(bad):
        out[bad] = _beta_mean_h_quadrature(t[bad], r[bad], alpha[bad], a[bad], b[bad])
    out = np.where(t <= 0, 0.0, np.clip(out, lower, upper))
    return out.reshape(shape)


def probability_alive_shifted(x, tx, T, r, alpha, a, b, *, shift: int) -> np.ndarray:
    """P(alive at T | x, t_x, T); for shift=0 equal to 1 when x = 0 (FHL 2005 eq. 11).

    1 / (1 + odds), odds = a / (b+x+s-1) ((alpha+T)/(alpha+t_x))^(r+x) of 'dropped out after the
    last purchase' vs 'alive' (exp(z) of the NLL); an overflowing odds gives exactly 0.
    """
    x, tx, T, r, alpha, a, b = _as_float(x, tx, T, r, alpha, a, b)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        odds = np.exp((r + x) * np.log1p((T - tx) / (alpha + tx))) * (a / (b + x + (shift - 1)))
        p = 1.0 / (1.0 + odds)
    if shift == 0:
        p = np.where(x > 0, p, 1.0)
    return p


def conditional_expected_shifted(t, x, tx, T, r, alpha, a, b, *, shift: int) -> np.ndarray:
    """E[X(T, T+t) | x, t_x, T] = P(alive) * expected_given_alive(t, r+x, alpha+T, a, b+x+shift)."""
    t, x, tx, T, r, alpha, a, b = _as_float(t, x, tx, T, r, alpha, a, b)
    alive = probability_alive_shifted(x, tx, T, r, alpha, a, b, shift=shift)
    if t.ndim == 0 and np.ndim(r) == 0 and x.ndim == 1 and x.size > DEDUPE_MIN_ROWS:
        (ux, uT), inv = unique_rows(x, np.broadcast_to(T, x.shape))
        if ux.size < 0.5 * x.size:
            return alive * expected_given_alive(t, r + ux, alpha + uT, a, b + ux + shift)[inv]
    return alive * expected_given_alive(t, r + x, alpha + T, a, b + x + shift)


def probability_of_purchase_shifted(t, x, tx, T, r, alpha, a, b, *, shift: int) -> np.ndarray:
    """P(X(T, T+t) > 0 | x, t_x, T): the chance of at least one purchase in (T, T+t].

    A customer who is alive at T can drop out only right after a purchase, so they make no
    purchase in (T, T+t] exactly when their Poisson process has no event there: e^(-lambda t).
    Among the alive, lambda given the history is Gamma(r + x, alpha + T) (the "alive" branch of the
    likelihood, lambda^x e^(-lambda T) (1-p)^(x+shift), FHL 2005 eq. 3), whose Laplace transform
    gives E[e^(-lambda t)] = ((alpha+T)/(alpha+T+t))^(r+x). A customer who has dropped out buys
    nothing, so

        P(X(T, T+t) > 0 | x, t_x, T) = P(alive) [1 - ((alpha+T)/(alpha+T+t))^(r+x)].

    For x = 0 and T = 0 this is 1 - P(X(t) = 0) of FHL 2005 eq. 8.
    """
    t, x, tx, T, r, alpha, a, b = _as_float(t, x, tx, T, r, alpha, a, b)
    alive = probability_alive_shifted(x, tx, T, r, alpha, a, b, shift=shift)
    with np.errstate(divide="ignore", invalid="ignore"):
        buys = -np.expm1(-(r + x) * np.log1p(t / (alpha + T)))
    return alive * np.where(t > 0, buys, 0.0)


def probability_of_n_shifted(t, n, r, alpha, a, b, *, shift: int) -> np.ndarray:
    """P(X(t) = n) for a new customer; FHL 2005 eq. 8 for shift=0.

    Given (lambda, p): alive throughout with n purchases, (1-p)^(n+s) Poisson(n; lambda t), or
    dropped right after the n-th purchase (n + s >= 1), p (1-p)^(n+s-1) P(Poisson >= n); the mixing
    gives Beta-function ratios, the NB pmf, and 1 - NB cdf(n-1) = I_{t/(alpha+t)}(n, r).
    """
    t, n, r, alpha, a, b = _as_float(t, n, r, alpha, a, b)
    log1mz = -np.log1p(t / alpha)
    z = t / (alpha + t)
    log_b_ab = special.betaln(a, b)
    log_nb = (special.gammaln(r + n) - special.gammaln(r) - special.gammaln(n + 1.0)
              + r * log1mz + special.xlogy(n, z))
    term1 = np.exp(special.betaln(a, b + n + shift) - log_b_ab + log_nb)
    has_branch = (n + shift) >= 1
    n_safe = np.where(n >= 1, n, 1.0)
    tail = np.where(n >= 1, special.betainc(n_safe, r, z), 1.0)
    b2 = np.where(has_branch, b + n + shift - 1.0, b + 1.0)
    term2 = np.where(has_branch, np.exp(special.betaln(a + 1.0, b2) - log_b_ab) * tail, 0.0)
    return term1 + term2


def expected_purchases_if_alive(t, x, T, r, alpha, a, b) -> np.ndarray:
    """Expected purchases in (T, T+t] of a customer alive at T with x repeat purchases: the
    second factor of FHL 2005 eq. 10, so that E[Y(t) | x, t_x, T] = P(alive) times this."""
    x, T, a, b = _as_float(x, T, a, b)
    return expected_given_alive(t, r + x, alpha + T, a, b + x)


def expected_purchases(t: Any, r: Any, alpha: Any, a: Any, b: Any) -> np.ndarray:
    """E[X(t)]: expected repeat purchases of a new customer in (0, t] (FHL 2005 eq. 9)."""
    return expected_given_alive(t, r, alpha, a, b)


def conditional_expected_purchases(t, x, tx, T, r, alpha, a, b) -> np.ndarray:
    """E[Y(t) | x, t_x, T]: expected purchases in (T, T+t] (FHL 2005 eq. 10)."""
    return conditional_expected_shifted(t, x, tx, T, r, alpha, a, b, shift=0)


def probability_alive(x, tx, T, r, alpha, a, b) -> np.ndarray:
    """P(alive at T | x, t_x, T) (FHL 2005 eq. 11; 1 when x = 0)."""
    return probability_alive_shifted(x, tx, T, r, alpha, a, b, shift=0)


def probability_of_n_purchases(t, n, r, alpha, a, b) -> np.ndarray:
    """P(X(t) = n) (FHL 2005 eq. 8)."""
    return probability_of_n_shifted(t, n, r, alpha, a, b, shift=0)


def probability_of_purchase(t, x, tx, T, r, alpha, a, b) -> np.ndarray:
    """P(at least one purchase in (T, T+t] | x, t_x, T) (see :func:`probability_of_purchase_shifted`)."""
    return probability_of_purchase_shifted(t, x, tx, T, r, alpha, a, b, shift=0)


class BetaGeo(BaseModel):
    """BG/NBD model (FHL 2005). Parameters ``r, alpha, a, b``; times in the unit of ``T``.

    Examples
    --------
    >>> import numpy as np
    >>> m = BetaGeo().fit(np.array([0, 2, 1, 5]), np.array([0.0, 30.4, 1.7, 20.0]),
    ...                   np.array([38.9, 38.9, 38.9, 30.0]))
    >>> sorted(m.params_)
    ['a', 'alpha', 'b', 'r']
    """

    name = "bgnbd"
    param_names = ("r", "alpha", "a", "b")
    _time_params = ("alpha",)
    _shift = 0
    _negative_log_likelihood = staticmethod(negative_log_likelihood)
    _negative_log_likelihood_hessian = staticmethod(negative_log_likelihood_hessian)
    _conditional_expected_purchases_fn = staticmethod(conditional_expected_purchases)
    _expected_purchases_fn = staticmethod(expected_purchases)
    _probability_alive_fn = staticmethod(probability_alive)
    _expected_given_alive_fn = staticmethod(expected_purchases_if_alive)

    def fit(self, frequency: Any, recency: Any, T: Any, *, weights: Any = None) -> BetaGeo:
        """Fit by maximum likelihood on (x, t_x, T); ``weights`` are per-row customer counts."""
        x, tx, T_ = check_frequency_recency_T(frequency, recency, T)
        columns, w = compress(x, tx, T_, weights=weights)
        return self._fit_compressed(columns, w)

    def _prepare(self, columns, weights) -> Prepared:
        x, tx, T_ = columns
        return prepare(x, tx, T_, weights, shift=self._shift)

    def _initial_log_params(self, columns, weights) -> np.ndarray:
        x, _, T_ = columns
        n = weights.sum()
        mean_rate = max(wdot(weights, x) / n, 1e-3) / max(wdot(weights, T_) / n, 1e-12)
        return np.log([1.0, 1.0 / mean_rate, 1.0, 1.0])

    # ---------------------------------------------------------------- predictions
    @keeps_index
    def expected_purchases(self, t: Any) -> np.ndarray:
        """E[X(t)] for a newly acquired customer; ``t`` in the unit of T."""
        return type(self)._expected_purchases_fn(t, *self._params())

    @keeps_index
    def conditional_expected_purchases(self, t: Any, frequency: Any, recency: Any,
                                       T: Any) -> np.ndarray:
        """Expected purchases in (T, T+t] given (x, t_x, T)."""
        return conditional_expected_shifted(t, frequency, recency, T, *self._params(),
                                            shift=self._shift)

    @keeps_index
    def probability_alive(self, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """P(alive at T | x, t_x, T)."""
        return probability_alive_shifted(frequency, recency, T, *self._params(),
                                         shift=self._shift)

    @keeps_index
    def probability_of_n_purchases(self, t: Any, n: Any) -> np.ndarray:
        """P(X(t) = n) for a newly acquired customer."""
        return probability_of_n_shifted(t, n, *self._params(), shift=self._shift)

    @keeps_index
    def conditional_probability_of_purchase(self, t: Any, frequency: Any, recency: Any,
                                            T: Any) -> np.ndarray:
        """P(at least one purchase in (T, T+t] | x, t_x, T); ``t`` in the unit of T."""
        return probability_of_purchase_shifted(t, frequency, recency, T, *self._params(),
                                               shift=self._shift)
