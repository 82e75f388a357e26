"""BG/NBD with time-invariant covariates (Fader & Hardie 2007, note 019, Section 3; CLVTools'
``bgnbd`` with static covariates).

Customer i buys at rate lambda_i ~ Gamma(r, alpha_i) and drops out after each repeat purchase with
probability p_i ~ Beta(a_i, b_i), where

    alpha_i = alpha_0 exp(-gamma_purchase . x_i),   a_i = a_0 exp(gamma_dropout . z_i),
    b_i = b_0 exp(gamma_dropout . z_i)

(:mod:`patron.value.models.covariates`). Given its own parameters a customer's likelihood is the BG/NBD
likelihood (FHL 2005 eq. 6), written as in :mod:`patron.value.models.beta_geo`:

    ln L_i = lnG(r+x) - lnG(r) + r ln alpha_i + lnB(a_i, b_i+x) - lnB(a_i, b_i)
             - (r+x) ln(alpha_i+T) + [x > 0] softplus(z_i),
    z_i = ln a_i - ln(b_i+x-1) + (r+x) ln((alpha_i+T)/(alpha_i+t_x)).

:func:`row_terms` returns it per row with its exact gradient and Hessian in the per-row
log-parameters (log r, log alpha_i, log a_i, log b_i); special functions are evaluated once per
distinct (x, covariate combination). Predictions are the BG/NBD ones (FHL 2005 eqs. 9-11) at each
customer's parameters.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from scipy import special

from . import beta_geo
from ._rows import row_blocks, unique_rows
from .beta_geo import BetaGeo
from .covariates import CovariateModel, Rows

__all__ = ["BetaGeoCovariates", "row_terms"]


class Prepared(NamedTuple):
    """Distinct (x, covariate combination) pairs: x, one row of each pair, each row's pair; the
    mask of rows with x > 0. Within a pair a_i and b_i are the same."""

    pair_x: np.ndarray
    pair_row: np.ndarray
    pair_of_row: np.ndarray
    repeat: np.ndarray


def prepare(x: np.ndarray, group: np.ndarray) -> Prepared:
    """Index the distinct (x, group) pairs of rows (``group``: the covariate combination)."""
    (px, _), inv = unique_rows(x, group)
    pair_row = np.empty(px.size, dtype=np.intp)
    pair_row[inv] = np.arange(x.size)
    return Prepared(px, pair_row, inv, x > 0)


def row_terms(phi: list[np.ndarray], x: np.ndarray, tx: np.ndarray, T: np.ndarray, prep: Prepared, *,
              hessian: bool):
    """Per-row BG/NBD log-likelihood and its derivatives in (log r, log alpha_i, log a_i, log b_i).

    ``phi``: the four per-row log-parameters (arrays over rows, or scalars). Returns
    ``(ll, g, h)``: ll per row, g of shape (4, n), h of shape (4, 4, n) or None. Natural-parameter
    derivatives (FHL 2005 eq. 6 differentiated; the softplus branch has weight pi = expit(z) and
    curvature pi (1 - pi)) are turned into log-parameter ones by
    d/dlog p = p d/dp and d2/dlog p dlog q = p q d2/dp dq + [p = q] p d/dp. Special functions
    are evaluated per distinct (x, covariate combination), the rest a block of rows at a time
    (:func:`patron.value.models._rows.row_blocks`: temporaries that stay in cache).
    """
    n = x.size
    r0 = float(np.exp(phi[0]))
    alpha, a, b = (np.exp(np.broadcast_to(p, (n,))) for p in phi[1:])
    ga, gb = a[prep.pair_row], b[prep.pair_row]  # per distinct (x, covariate combination)
    px = prep.pair_x
    ab = ga + gb
    dig = special.digamma
    ga_ab = dig(ab)
    ga_abx = dig(ab + px)
    pairs = {"ll": special.betaln(ga, gb + px) - special.betaln(ga, gb) + special.gammaln(r0 + px),
             "ga": ga_ab - ga_abx,  # d/da of the Beta-function terms
             "gb": dig(gb + px) - dig(gb) + ga_ab - ga_abx, "dig_rx": dig(r0 + px)}
    consts = {"gammaln_r": special.gammaln(r0), "digamma_r": special.digamma(r0)}
    if hessian:
        t_ab, t_abx = special.polygamma(1, ab), special.polygamma(1, ab + px)
        pairs.update(h_ab=t_ab - t_abx, h_bb=special.polygamma(1, gb + px) - special.polygamma(1, gb) + t_ab - t_abx,
                     tri_rx=special.polygamma(1, r0 + px))
        consts["trigamma_r"] = special.polygamma(1, np.array([r0]))[0]
    ll = np.empty(n)
    g = np.empty((4, n))
    H = np.empty((4, 4, n)) if hessian else None
    for sl in row_blocks(n):
        _block(sl, ll, g, H, r0, alpha[sl], a[sl], b[sl], x[sl], tx[sl], T[sl], prep, pairs, consts)
    return ll, g, H


def _block(sl, ll, g, H, r, alpha, a, b, x, tx, T, prep, pairs, consts) -> None:
    """:func:`row_terms` on the rows ``sl``, written into ``ll``, ``g`` and ``H``."""
    inv = prep.pair_of_row[sl]
    log_aT = np.log(alpha + T)
    iT = 1.0 / (alpha + T)
    rx = r + x
    rep = prep.repeat[sl]
    bx = np.where(rep, b + x - 1.0, 1.0)
    itx = 1.0 / (alpha + tx)
    dlog = np.where(rep, log_aT - np.log(alpha + tx), 0.0)
    z = np.log(a) - np.log(bx) + rx * dlog
    e = np.exp(-np.minimum(np.abs(z), 700.0))
    soft = np.where(rep, np.maximum(z, 0.0) + np.log1p(e), 0.0)
    ll[sl] = pairs["ll"][inv] - consts["gammaln_r"] + r * np.log(alpha) - rx * log_aT + soft
    pi = np.where(rep, np.where(z >= 0.0, 1.0, e) / (1.0 + e), 0.0)
    Ep = iT - itx
    u = rx * Ep
    p = (r, alpha, a, b)
    g[0, sl] = r * (pairs["dig_rx"][inv] - consts["digamma_r"] + np.log(alpha) - log_aT + pi * dlog)
    g[1, sl] = alpha * (r / alpha - rx * iT + pi * u)
    g[2, sl] = a * (pairs["ga"][inv] + pi / a)
    g[3, sl] = b * (pairs["gb"][inv] - pi / bx)
    if H is None:
        return
    sig = np.where(rep, e / (1.0 + e) ** 2, 0.0)
    h_ab = pairs["h_ab"][inv]
    F = itx * itx - iT * iT
    nat = {(0, 0): pairs["tri_rx"][inv] - consts["trigamma_r"] + sig * dlog * dlog,
           (0, 1): 1.0 / alpha - iT + pi * Ep + sig * dlog * u,
           (1, 1): -r / alpha**2 + rx * iT * iT + pi * rx * F + sig * u * u,
           (0, 2): sig * dlog / a, (0, 3): -sig * dlog / bx, (1, 2): sig * u / a, (1, 3): -sig * u / bx,
           (2, 2): h_ab + (sig - pi) / a**2, (2, 3): h_ab - sig / (a * bx),
           (3, 3): pairs["h_bb"][inv] + (sig + pi) / bx**2}
    for (i, j), h_ij in nat.items():
        h_ij = h_ij * (p[i] * p[j])
        if i == j:
            h_ij = h_ij + g[i, sl]
        H[i, j, sl] = h_ij
        H[j, i, sl] = h_ij


class BetaGeoCovariates(CovariateModel):
    """BG/NBD with time-invariant covariates; see :mod:`patron.value.models.covariates` for the
    parameters, and the module docstring for the model.

    Examples
    --------
    >>> import numpy as np
    >>> from patron.value.models.sampling_covariates import sample_beta_geo_covariates
    >>> rng = np.random.default_rng(1)
    >>> cov = {"vip": rng.integers(0, 2, 2000).astype(float)}
    >>> d = sample_beta_geo_covariates(cov, r=0.8, alpha=5.0, a=0.8, b=2.5, T=52.0,
    ...                                gamma_purchase={"vip": 0.7}, random_state=2)
    >>> m = BetaGeoCovariates().fit(d["frequency"], d["recency"], d["T"], cov)
    >>> round(m.coefficients_["purchase"]["vip"], 1)
    0.7
    """

    name = "bgnbd_covariates"
    base_names = ("r", "alpha", "a", "b")
    row_links = (None, ("purchase", -1.0), ("dropout", 1.0), ("dropout", 1.0))
    has_row_hessian = True
    nocov_class = BetaGeo

    def _prepare_rows(self, rows: Rows) -> Prepared:
        return prepare(rows.x, rows.group)

    def _row_terms(self, phi, rows: Rows, hessian: bool):
        return row_terms(phi, rows.x, rows.tx, rows.T, rows.model_data, hessian=hessian)

    # ---------------------------------------------------------------- predictions
    def expected_purchases(self, t: Any, covariates: Any) -> np.ndarray:
        """E[X(t)] for a newly acquired customer with these covariates (FHL 2005 eq. 9)."""
        return beta_geo.expected_purchases(t, *self.customer_params(covariates))

    def conditional_expected_purchases(self, t: Any, frequency: Any, recency: Any, T: Any,
                                       covariates: Any) -> np.ndarray:
        """Expected purchases in (T, T+t] given (x, t_x, T) and covariates (FHL 2005 eq. 10)."""
        return beta_geo.conditional_expected_purchases(t, frequency, recency, T, *self.customer_params(covariates))

    def probability_alive(self, frequency: Any, recency: Any, T: Any, covariates: Any) -> np.ndarray:
        """P(alive at T | x, t_x, T, covariates) (FHL 2005 eq. 11)."""
        return beta_geo.probability_alive(frequency, recency, T, *self.customer_params(covariates))

    _conditional_expected_purchases_fn = staticmethod(beta_geo.conditional_expected_purchases)
