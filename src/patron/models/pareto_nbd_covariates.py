"""Pareto/NBD with time-invariant covariates (Fader & Hardie 2007, note 019, Section 2; CLVTools'
``pnbd`` with static covariates, Bachmann, Meierer & Naef 2021, eq. 5 with constant covariates).

Customer i buys at rate lambda_i ~ Gamma(r, alpha_i) and dies at rate mu_i ~ Gamma(s, beta_i), with

    alpha_i = alpha_0 exp(-gamma_purchase . x_i),   beta_i = beta_0 exp(-gamma_dropout . z_i)

(:mod:`patron.models.covariates`). A customer's likelihood is the Pareto/NBD likelihood at their
own alpha_i, beta_i (Fader & Hardie 2005, "A Note on Deriving the Pareto/NBD Model", Section 3),
evaluated as in :mod:`patron.models.pareto_nbd`:

    L_i = G(r+x)/G(r) alpha_i^r beta_i^s [ (alpha_i+T)^-(r+x) (beta_i+T)^-s + s (I(t_x) - I(T)) ],
    I(t) = int_t^inf (alpha_i+tau)^-(r+x) (beta_i+tau)^-(s+1) dtau,

with I and its parameter derivatives from :func:`patron.models.pareto_nbd.log_tail_integral`,
once per distinct (x, t, covariate combination). :func:`row_terms` gives the per-row
log-likelihood and its exact gradient in (log r, log alpha_i, log s, log beta_i); the Hessian is
differenced from that gradient (:mod:`patron.models.covariates`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from scipy import special

from . import pareto_nbd
from ._rows import unique_rows
from .covariates import CovariateModel, Rows
from .pareto_nbd import ParetoNBD, log_tail_integral

__all__ = ["ParetoNBDCovariates", "row_terms"]


class Prepared(NamedTuple):
    """Distinct (x, t, covariate combination) triples over t in {t_x, T}: x, t, one row of each,
    and the triple of each row's t_x and T."""

    trip_x: np.ndarray
    trip_t: np.ndarray
    trip_row: np.ndarray
    idx_tx: np.ndarray
    idx_T: np.ndarray


def prepare(x: np.ndarray, tx: np.ndarray, T: np.ndarray, group: np.ndarray) -> Prepared:
    """Index the distinct (x, t, group) triples of rows (``group``: the covariate combination)."""
    n = x.size
    both = np.arange(2 * n) % n
    (ux, ut, _), inv = unique_rows(np.concatenate([x, x]), np.concatenate([tx, T]), np.concatenate([group, group]))
    trip_row = np.empty(ux.size, dtype=np.intp)
    trip_row[inv] = both
    return Prepared(ux, ut, trip_row, inv[:n], inv[n:])


def row_terms(phi: list[np.ndarray], x: np.ndarray, tx: np.ndarray, T: np.ndarray, prep: Prepared):
    """Per-row Pareto/NBD log-likelihood and its gradient in (log r, log alpha_i, log s, log beta_i).

    The gradient is that of :func:`patron.models.pareto_nbd.negative_log_likelihood` before the
    sum over rows: with D the bracket, p_alive = (alpha+T)^-(r+x) (beta+T)^-s / D and
    w_t = s I(t) / D, d ln L / d theta = d(front) + p_alive d ln(alive term) + w_tx d ln I(t_x)
    - w_T d ln I(T) (+ (w_tx - w_T)/s for s). Returns ``(ll, g)`` with g of shape (4, n).
    """
    n = x.size
    r, alpha, s, beta = (np.exp(np.broadcast_to(p, (n,))) for p in phi)
    r0, s0 = float(r[0]), float(s[0])
    tr = prep.trip_row
    log_I, d_I = log_tail_integral(prep.trip_x, prep.trip_t, r0, alpha[tr], s0, beta[tr], grad=True)
    log_I_tx, log_I_T = log_I[prep.idx_tx], log_I[prep.idx_T]
    log_alive, log_died = pareto_nbd._log_parts(x, tx, T, r, alpha, s, beta, log_I_tx, log_I_T)
    log_sum = np.logaddexp(log_alive, log_died)
    ll = pareto_nbd._log_front(x, r, alpha, s, beta) + log_sum
    p_alive = np.exp(log_alive - log_sum)
    w1 = np.exp(np.log(s) + log_I_tx - log_sum)
    w2 = np.exp(np.log(s) + log_I_T - log_sum)
    tail = [w1 * d[prep.idx_tx] - w2 * d[prep.idx_T] for d in d_I]
    g_r = special.digamma(r + x) - special.digamma(r0) + np.log(alpha) - p_alive * np.log(alpha + T) + tail[0]
    g_al = r / alpha - p_alive * (r + x) / (alpha + T) + tail[1]
    g_s = np.log(beta) - p_alive * np.log(beta + T) + (w1 - w2) / s + tail[2]
    g_be = s / beta - p_alive * s / (beta + T) + tail[3]
    return ll, np.array([g_r * r, g_al * alpha, g_s * s, g_be * beta])


class ParetoNBDCovariates(CovariateModel):
    """Pareto/NBD with time-invariant covariates; see :mod:`patron.models.covariates` for the
    parameters and the module docstring for the model.

    Examples
    --------
    >>> import numpy as np
    >>> from patron.models.sampling_covariates import sample_pareto_nbd_covariates
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
    nocov_class = ParetoNBD

    def _prepare_rows(self, rows: Rows) -> Prepared:
        return prepare(rows.x, rows.tx, rows.T, rows.group)

    def _row_terms(self, phi, rows: Rows, hessian: bool):
        ll, g = row_terms(phi, rows.x, rows.tx, rows.T, rows.model_data)
        return ll, g, None

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
