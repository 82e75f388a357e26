"""Pareto/NBD with time-invariant covariates (Fader & Hardie 2007, note 019, Section 2; CLVTools'
``pnbd`` with static covariates, Bachmann, Meierer & Naef 2021, eq. 5 with constant covariates).

Customer i buys at rate lambda_i ~ Gamma(r, alpha_i) and dies at rate mu_i ~ Gamma(s, beta_i), with

    alpha_i = alpha_0 exp(-gamma_purchase . x_i),   beta_i = beta_0 exp(-gamma_dropout . z_i)

(:mod:`patron.value.models.covariates`). A customer's likelihood is the Pareto/NBD likelihood at their
own alpha_i, beta_i (Fader & Hardie 2005, "A Note on Deriving the Pareto/NBD Model", Section 3),
evaluated as in :mod:`patron.value.models.pareto_nbd`:

    L_i = G(r+x)/G(r) alpha_i^r beta_i^s [ (alpha_i+T)^-(r+x) (beta_i+T)^-s + s (I(t_x) - I(T)) ],
    I(t) = int_t^inf (alpha_i+tau)^-(r+x) (beta_i+tau)^-(s+1) dtau,

with I and its first and second parameter derivatives from
:func:`patron.value.models.pareto_tail.log_tail_integral`, once per distinct (x, t, covariate
combination). :func:`row_terms` gives the per-row log-likelihood with its exact gradient and
Hessian in (log r, log alpha_i, log s, log beta_i), which :mod:`patron.value.models.covariates` turns
into those in the coefficients.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from scipy import special

from . import pareto_likelihood, pareto_nbd
from ._rows import row_blocks, unique_rows
from .covariates import CovariateModel, Rows
from .pareto_nbd import ParetoNBD
from .pareto_tail import HESSIAN_PAIRS, log_tail_integral

__all__ = ["ParetoNBDCovariates", "row_terms"]


class Prepared(NamedTuple):
    """Distinct (x, t, covariate combination) triples over t in {t_x, T}: x, t, one row of each,
    and the triple of each row's t_x and T; the distinct x and each row's index into them."""

    trip_x: np.ndarray
    trip_t: np.ndarray
    trip_row: np.ndarray
    idx_tx: np.ndarray
    idx_T: np.ndarray
    x_values: np.ndarray
    x_code: np.ndarray


def prepare(x: np.ndarray, tx: np.ndarray, T: np.ndarray, group: np.ndarray) -> Prepared:
    """Index the distinct (x, t, group) triples of rows (``group``: the covariate combination)."""
    n = x.size
    both = np.arange(2 * n) % n
    (ux, ut, _), inv = unique_rows(np.concatenate([x, x]), np.concatenate([tx, T]), np.concatenate([group, group]))
    trip_row = np.empty(ux.size, dtype=np.intp)
    trip_row[inv] = both
    (x_values,), x_code = unique_rows(x)
    return Prepared(ux, ut, trip_row, inv[:n], inv[n:], x_values, x_code)


def row_terms(phi: list[np.ndarray], x: np.ndarray, tx: np.ndarray, T: np.ndarray, prep: Prepared, *,
              hessian: bool = False):
    """Per-row Pareto/NBD log-likelihood and its derivatives in (log r, log alpha_i, log s, log beta_i).

    The gradient is that of :func:`patron.value.models.pareto_nbd.negative_log_likelihood` before the
    sum over rows: with D the bracket, p_alive = (alpha+T)^-(r+x) (beta+T)^-s / D and
    w_t = s I(t) / D, d ln L / d theta = d(front) + p_alive d ln(alive term) + w_tx d ln I(t_x)
    - w_T d ln I(T) (+ (w_tx - w_T)/s for s). The Hessian (``hessian=True``) follows from
    d2 ln D = d2 D / D - (d ln D)(d ln D)^T with d2 D / D = p_alive (d2 ln A + u u^T)
    + w_tx (d2 ln(s I(t_x)) + y y^T) - w_T (...) (u, y the first derivatives of the logs of the
    terms), the second derivatives of ln I from :func:`patron.value.models.pareto_tail.log_tail_integral`.
    Natural-parameter derivatives become log-parameter ones by d/dlog p = p d/dp and
    d2/dlog p dlog q = p q d2/dp dq + [p = q] p d/dp. Returns ``(ll, g, h)``: g of shape (4, n),
    h of shape (4, 4, n) or None.

    I(t) is evaluated once per distinct (x, t, covariate combination), the functions of r + x
    once per distinct x, and the rest a block of rows at a time (:func:`patron.value.models._rows.row_blocks`:
    temporaries that stay in cache).
    """
    n = x.size
    r0, s0 = float(np.exp(phi[0])), float(np.exp(phi[2]))
    alpha = np.exp(np.broadcast_to(phi[1], (n,)))
    beta = np.exp(np.broadcast_to(phi[3], (n,)))
    tr = prep.trip_row
    tail = log_tail_integral(prep.trip_x, prep.trip_t, r0, alpha[tr], s0, beta[tr], grad=True, hessian=hessian)
    rx = r0 + prep.x_values
    per_x = (special.gammaln(rx), special.digamma(rx), special.polygamma(1, rx) if hessian else None)
    consts = (special.gammaln(r0), special.digamma(r0), float(special.polygamma(1, r0)) if hessian else 0.0)
    ll = np.empty(n)
    g = np.empty((4, n))
    H = np.empty((4, 4, n)) if hessian else None
    for sl in row_blocks(n):
        _block(sl, ll, g, H, r0, s0, alpha[sl], beta[sl], x[sl], tx[sl], T[sl], prep, tail, per_x, consts)
    return ll, g, H


def _block(sl, ll, g, H, r, s, alpha, beta, x, tx, T, prep, tail, per_x, consts) -> None:
    """:func:`row_terms` on the rows ``sl``, written into ``ll``, ``g`` and ``H``."""
    it_x, it_T, code = prep.idx_tx[sl], prep.idx_T[sl], prep.x_code[sl]
    log_I_tx, log_I_T = tail[0][it_x], tail[0][it_T]
    log_alive, log_died = pareto_likelihood._log_parts(x, tx, T, r, alpha, s, beta, log_I_tx, log_I_T)
    log_sum = np.logaddexp(log_alive, log_died)
    ll[sl] = per_x[0][code] - consts[0] + r * np.log(alpha) + s * np.log(beta) + log_sum
    p_alive = np.exp(log_alive - log_sum)
    w1 = np.exp(np.log(s) + log_I_tx - log_sum)
    w2 = np.exp(np.log(s) + log_I_T - log_sum)
    v1, v2 = tail[1][:, it_x], tail[1][:, it_T]
    iaT, ibT = 1.0 / (alpha + T), 1.0 / (beta + T)
    u = [-np.log(alpha + T), -(r + x) * iaT, -np.log(beta + T), -s * ibT]  # d ln(alive term)
    front = [per_x[1][code] - consts[1] + np.log(alpha), r / alpha, np.log(beta), s / beta]
    d_log_D = [p_alive * u[k] + w1 * v1[k] - w2 * v2[k] for k in range(4)]
    d_log_D[2] = d_log_D[2] + (w1 - w2) / s
    p = (r, alpha, s, beta)
    for k in range(4):
        g[k, sl] = (front[k] + d_log_D[k]) * p[k]
    if H is None:
        return
    h1, h2 = tail[2][:, it_x], tail[2][:, it_T]
    y1, y2 = list(v1), list(v2)
    y1[2] = y1[2] + 1.0 / s
    y2[2] = y2[2] + 1.0 / s
    second_A = {(0, 1): -iaT, (1, 1): (r + x) * iaT * iaT, (2, 3): -ibT, (3, 3): s * ibT * ibT}
    second_front = {(0, 0): per_x[2][code] - consts[2], (0, 1): 1.0 / alpha, (1, 1): -r / alpha**2,
                    (2, 3): 1.0 / beta, (3, 3): -s / beta**2}
    for k, (i, j) in enumerate(HESSIAN_PAIRS):
        h_ij = (p_alive * (second_A.get((i, j), 0.0) + u[i] * u[j]) + w1 * (h1[k] + y1[i] * y1[j])
                - w2 * (h2[k] + y2[i] * y2[j]) - d_log_D[i] * d_log_D[j] + second_front.get((i, j), 0.0))
        if i == j == 2:
            h_ij = h_ij - (w1 - w2) / (s * s)
        h_ij = h_ij * (p[i] * p[j])
        if i == j:
            h_ij = h_ij + g[i, sl]
        H[i, j, sl] = h_ij
        H[j, i, sl] = h_ij


class ParetoNBDCovariates(CovariateModel):
    """Pareto/NBD with time-invariant covariates; see :mod:`patron.value.models.covariates` for the
    parameters and the module docstring for the model.

    Examples
    --------
    >>> import numpy as np
    >>> from patron.value.models.sampling_covariates import sample_pareto_nbd_covariates
    >>> rng = np.random.default_rng(1)
    >>> cov = {"vip": rng.integers(0, 2, 3000).astype(float)}
    >>> d = sample_pareto_nbd_covariates(cov, r=0.8, alpha=5.0, s=0.6, beta=12.0, T=52.0,
    ...                                  gamma_purchase={"vip": 0.7}, random_state=2)
    >>> m = ParetoNBDCovariates(dropout_covariates=()).fit(d["frequency"], d["recency"], d["T"], cov)
    >>> round(m.coefficients_["purchase"]["vip"], 1)
    0.7
    """

    name = "pareto_covariates"
    base_names = ("r", "alpha", "s", "beta")
    row_links = (None, ("purchase", -1.0), None, ("dropout", -1.0))
    has_row_hessian = True
    nocov_class = ParetoNBD

    def _prepare_rows(self, rows: Rows) -> Prepared:
        return prepare(rows.x, rows.tx, rows.T, rows.group)

    def _row_terms(self, phi, rows: Rows, hessian: bool):
        return row_terms(phi, rows.x, rows.tx, rows.T, rows.model_data, hessian=hessian)

    # ---------------------------------------------------------------- predictions
    def expected_purchases(self, t: Any, covariates: Any) -> np.ndarray:
        """E[X(t)] for a newly acquired customer with these covariates (SMC 1987 eq. 17)."""
        return pareto_nbd.expected_purchases(t, *self.customer_params(covariates))

    def conditional_expected_purchases(self, t: Any, frequency: Any, recency: Any, T: Any,
                                       covariates: Any) -> np.ndarray:
        """Expected purchases in (T, T+t] given (x, t_x, T) and covariates (FH 2005 note, Section 6)."""
        return pareto_nbd.conditional_expected_purchases(t, frequency, recency, T, *self.customer_params(covariates))

    def probability_alive(self, frequency: Any, recency: Any, T: Any, covariates: Any) -> np.ndarray:
        """P(alive at T | x, t_x, T, covariates) (FH 2005 note, Section 5)."""
        return pareto_nbd.probability_alive(frequency, recency, T, *self.customer_params(covariates))

    _conditional_expected_purchases_fn = staticmethod(pareto_nbd.conditional_expected_purchases)
