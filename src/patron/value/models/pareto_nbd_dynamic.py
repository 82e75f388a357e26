"""Pareto/NBD with time-varying covariates (Bachmann, Meierer & Naef 2021, "The Role of
Time-Varying Contextual Factors in Latent Attrition Models for Customer Base Analysis",
Marketing Science 40(4), Section 3; CLVTools' ``pnbd`` with dynamic covariates).

While alive, customer i buys at rate ``lambda_i exp(gamma_p . x_i(t))`` and dies at rate
``mu_i exp(gamma_d . z_i(t))``, lambda_i ~ Gamma(r, alpha), mu_i ~ Gamma(s, beta), covariates
piecewise constant on calendar periods (:mod:`patron.value.models.dynamic_paths`). With
``A(t) = int_0^t exp(gamma_p . x(u)) du`` and ``C(t)`` the same for dropout, integrating lambda
and mu out of the individual likelihood (the paper's eqs. 6-9) gives

    L_i = G(r+x)/G(r) alpha^r beta^s exp(gamma_p . S_i) [ (alpha+A(T))^-(r+x) (beta+C(T))^-s
          + s int_{t_x}^T (alpha+A(tau))^-(r+x) (beta+C(tau))^-(s+1) c(tau) dtau ],

S_i the purchase covariates summed over the repeat purchases. On each piece k of (t_x, T] where
both covariates are constant (slopes a_k, c_k, length d_k, A_k and C_k at its start) the integral
is, with P_k = (alpha + A_k)/a_k and Q_k = (beta + C_k)/c_k,

    a_k^-(r+x) c_k^-s [ I(P_k, Q_k; 0) - I(P_k, Q_k; d_k) ],
    I(P, Q; t) = int_t^inf (P+u)^-(r+x) (Q+u)^-(s+1) du,

the tail integral of the Pareto/NBD likelihood (:func:`patron.value.models.pareto_nbd.log_tail_integral`;
the paper writes the same differences with 2F1, its eq. 9 and Appendix A). With every gamma 0,
A(t) = C(t) = t and L_i is the Pareto/NBD likelihood (FH 2005 note, Section 3); with covariates
constant over time it is the static-covariate one (:mod:`patron.value.models.pareto_nbd_covariates`).

The gradient is exact (chain rule through P_k, Q_k, A, C); the Hessian for standard errors is
differenced from it. Predictions conditioned on a future covariate path (the paper's eqs. 13-15):
given alive at T, lambda ~ Gamma(r+x, alpha+A(T)) and mu ~ Gamma(s, beta+C(T)) independently, so

    E[Y(T, T+t)] = P(alive) (r+x)/(alpha+A(T)) int_T^{T+t} a(tau) ((beta+C(T))/(beta+C(tau)))^s dtau,

closed form on each piece: a_k B^s Q'^(1-s) [1 - (1 + c_k d/Q')^(1-s)] / (c_k (s-1)), B = beta+C(T),
Q' = beta + C at the piece start.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from scipy import special

from . import _optimize
from ._base import ConvergenceError, ConvergenceWarning
from .covariates import CovariateModel, Design
from .dynamic_paths import DynamicData, dynamic_data
from .pareto_likelihood import _log1mexp
from .pareto_nbd import ParetoNBD
from .pareto_tail import log_tail_integral

__all__ = ["ParetoNBDDynamic", "log_likelihood_terms"]

HESSIAN_STEP = 1e-5
"""Central-difference step (log-parameters and coefficients) of the Hessian for standard errors."""


def _factors(X: np.ndarray, gamma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(eta, exp(eta)) per customer and period, eta = X . gamma (0 without covariates)."""
    eta = X @ gamma if X.shape[2] else np.zeros(X.shape[:2])
    return eta, np.exp(eta)


def log_likelihood_terms(full: np.ndarray, data: DynamicData, kp: int, *, grad: bool = True):
    """Per-customer log-likelihood (see the module docstring) and, with ``grad``, its gradient in
    ``full`` = (log r, log alpha, log s, log beta, gamma_p (kp), gamma_d) as an (n, 4+kp+kd)
    array. Also returns P(alive at T) per customer."""
    r, alpha, s, beta = np.exp(full[:4])
    gp, gd = full[4:4 + kp], full[4 + kp:]
    x = data.x
    n, J = data.ov_T.shape  # customers, segments
    etaX, a = _factors(data.X, gp)
    etaZ, c = _factors(data.Z, gd)
    aov_T, cov_T = a * data.ov_T, c * data.ov_T
    A_T, C_T = aov_T.sum(1), cov_T.sum(1)
    A_tx = (a * data.ov_tx).sum(1)
    C_tx = (c * data.ov_tx).sum(1)
    dlen = data.ov_T - data.ov_tx
    ad, cd = a * dlen, c * dlen
    A0 = A_tx[:, None] + np.cumsum(ad, 1) - ad  # A at each piece's start
    C0 = C_tx[:, None] + np.cumsum(cd, 1) - cd
    ii, jj = np.nonzero(dlen > 0)
    xk = x[ii]
    Pk = (alpha + A0[ii, jj]) / a[ii, jj]
    Qk = (beta + C0[ii, jj]) / c[ii, jj]
    log_I0, d_I0 = log_tail_integral(xk, 0.0, r, Pk, s, Qk, grad=True)
    log_Id, d_Id = log_tail_integral(xk, dlen[ii, jj], r, Pk, s, Qk, grad=True)
    gap = np.minimum(log_Id - log_I0, 0.0)
    log_J = log_I0 + _log1mexp(gap)
    log_piece = -(r + xk) * etaX[ii, jj] - s * etaZ[ii, jj] + log_J
    dense = np.full((n, J), -np.inf)
    dense[ii, jj] = log_piece
    with np.errstate(divide="ignore"):
        top = np.max(dense, axis=1) if J else np.full(n, -np.inf)
        safe = np.where(np.isfinite(top), top, 0.0)
        log_died = np.log(s) + safe + np.log(np.exp(dense - safe[:, None]).sum(1))
    log_alive = -(r + x) * np.log(alpha + A_T) - s * np.log(beta + C_T)
    log_sum = np.logaddexp(log_alive, log_died)
    purchase_terms = data.S @ gp if kp else 0.0
    ll = (special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
          + purchase_terms + log_sum)
    p_alive = np.exp(log_alive - log_sum)
    if not grad:
        return ll, None, p_alive
    kd = gd.size
    G = np.zeros((n, 4 + kp + kd))
    # front
    G[:, 0] = special.digamma(r + x) - special.digamma(r) + np.log(alpha)
    G[:, 1] = r / alpha
    G[:, 2] = np.log(beta)
    G[:, 3] = s / beta
    if kp:
        G[:, 4:4 + kp] = data.S
    # alive branch
    iA, iC = 1.0 / (alpha + A_T), 1.0 / (beta + C_T)
    G[:, 0] += p_alive * -np.log(alpha + A_T)
    G[:, 1] += p_alive * -(r + x) * iA
    G[:, 2] += p_alive * -np.log(beta + C_T)
    G[:, 3] += p_alive * -s * iC
    if kp:
        dA_T = np.einsum("nj,njk->nk", aov_T, data.X)
        G[:, 4:4 + kp] += (p_alive * -(r + x) * iA)[:, None] * dA_T
    if kd:
        dC_T = np.einsum("nj,njk->nk", cov_T, data.Z)
        G[:, 4 + kp:] += (p_alive * -s * iC)[:, None] * dC_T
    # died branch, piece by piece: weight of each piece in the likelihood bracket
    omega = np.exp(np.log(s) + log_piece - log_sum[ii])
    q = np.exp(gap)
    dJ = (d_I0 - q * d_Id) / (-np.expm1(gap))  # d log J / d(r, P, s, Q)
    ak, ck = a[ii, jj], c[ii, jj]
    np.add.at(G[:, 0], ii, omega * (-etaX[ii, jj] + dJ[0]))
    np.add.at(G[:, 1], ii, omega * dJ[1] / ak)
    np.add.at(G[:, 2], ii, omega * (-etaZ[ii, jj] + dJ[2] + 1.0 / s))
    np.add.at(G[:, 3], ii, omega * dJ[3] / ck)
    if kp:
        Xk = data.X[ii, jj]
        dA0 = np.einsum("nj,njk->nk", a * data.ov_tx, data.X)[ii] + (
            np.cumsum(ad[:, :, None] * data.X, 1) - ad[:, :, None] * data.X)[ii, jj]
        contrib = omega[:, None] * (-(r + xk)[:, None] * Xk + dJ[1][:, None] * (dA0 / ak[:, None] - Pk[:, None] * Xk))
        np.add.at(G[:, 4:4 + kp], ii, contrib)
    if kd:
        Zk = data.Z[ii, jj]
        dC0 = np.einsum("nj,njk->nk", c * data.ov_tx, data.Z)[ii] + (
            np.cumsum(cd[:, :, None] * data.Z, 1) - cd[:, :, None] * data.Z)[ii, jj]
        contrib = omega[:, None] * (-s * Zk + dJ[3][:, None] * (dC0 / ck[:, None] - Qk[:, None] * Zk))
        np.add.at(G[:, 4 + kp:], ii, contrib)
    G[:, :4] *= np.array([r, alpha, s, beta])
    return ll, G, p_alive


class ParetoNBDDynamic(CovariateModel):
    """Pareto/NBD with time-varying covariates (Bachmann, Meierer & Naef 2021).

    Constructor as :class:`patron.value.models.covariates.CovariateModel`; ``purchase_covariates`` and
    ``dropout_covariates`` name the columns of the paths given to :meth:`fit`.
    ``fit(frequency, recency, T, first, paths, names, purchase_counts, period_length=1)``:
    ``first`` is each customer's acquisition time on the covariate grid, ``paths`` an
    (n, J, k) array of covariate values per period with column ``names``, ``purchase_counts`` (n, J)
    the repeat purchases per period (they give S_i).
    """

    name = "pareto_dynamic"
    base_names = ("r", "alpha", "s", "beta")
    nocov_class = ParetoNBD

    def fit(self, frequency: Any, recency: Any, T: Any, first: Any = None, paths: Any = None,  # type: ignore[override]
            names: Any = (), purchase_counts: Any = None, *, period_length: float = 1.0,
            weights: Any = None) -> ParetoNBDDynamic:
        """Fit by maximum likelihood; returns self (see the class docstring for the data)."""
        from ._base import check_frequency_recency_T

        x, tx, T_ = check_frequency_recency_T(frequency, recency, T)
        names = tuple(str(n) for n in names)
        paths = np.asarray(paths, dtype=np.float64).reshape(x.size, -1, len(names))
        self._lambdas()
        purchase = names if self.purchase_covariates is None else tuple(self.purchase_covariates)
        dropout = names if self.dropout_covariates is None else tuple(self.dropout_covariates)
        design = Design(4, purchase, dropout, tuple(self.constrained))
        missing = [c for c in design.union if c not in names]
        if missing:
            raise KeyError(f"covariate {', '.join(missing)} not in the paths (have: {', '.join(names)})")
        X = paths[:, :, [names.index(c) for c in purchase]]
        Z = paths[:, :, [names.index(c) for c in dropout]]
        counts = np.asarray(purchase_counts, dtype=np.float64).reshape(x.size, X.shape[1])
        if np.any(np.abs(counts.sum(1) - x) > 1e-9):
            raise ValueError("purchase_counts must sum to frequency for every customer")
        S = np.einsum("nj,njk->nk", counts, X)
        data = dynamic_data(x, tx, T_, first if first is not None else np.zeros(x.size), X, Z, S,
                            period_length=period_length, weights=weights)
        self.design_ = design
        self.period_length_ = float(period_length)
        self._set_penalty_scale(T_)
        nocov = ParetoNBD(penalizer=float(self.penalizer), penalizer_kind=self.penalizer_kind)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            nocov.fit(x, tx, T_, weights=data.w)
        start = np.concatenate([np.log([nocov.params_[k] for k in self.base_names]), np.zeros(design.n_free - 4)])
        f = self._objective(data, hessian=False)
        rng = np.random.default_rng(self.random_state)
        best, ok, messages, _ = _optimize.lbfgs_multistart(f, start, n_starts=self.n_starts, rng=rng)
        theta = start if best is None else np.asarray(best.x, dtype=np.float64)
        message = "; ".join(messages) if best is None else str(best.message)
        self._set_results(theta, data, ok, message, (None, self._hessian(theta, data)))
        if not ok:
            if self.strict:
                raise ConvergenceError(message)
            warnings.warn(f"{type(self).__name__} did not converge: {message}", ConvergenceWarning, stacklevel=2)
        return self

    def _extra_state(self) -> dict[str, Any]:
        """The covariate state and ``period_length``: the length of a covariate period in the
        model's time unit, which predictions on new paths need."""
        return {**super()._extra_state(), "period_length": self.period_length_}

    def _restore_extra_state(self, data: Any) -> None:
        super()._restore_extra_state(data)
        length = data.get("period_length")
        self.period_length_ = None if length is None else float(length)

    def _nll(self, theta: np.ndarray, data: DynamicData, hessian: bool):  # type: ignore[override]
        d = self.design_
        ll, G, _ = log_likelihood_terms(d.M @ theta, data, len(d.purchase))
        return -float(data.w @ ll), -(d.M.T @ (data.w @ G)), None

    def _hessian(self, theta: np.ndarray, data: DynamicData) -> np.ndarray:
        """Per-customer objective Hessian by central differences of its exact gradient."""
        f = self._objective(data, hessian=False)
        k = theta.size
        h = np.empty((k, k))
        for j in range(k):
            e = np.zeros(k)
            e[j] = HESSIAN_STEP
            h[:, j] = (f(theta + e)[1] - f(theta - e)[1]) / (2.0 * HESSIAN_STEP)
        return 0.5 * (h + h.T)

    # ---------------------------------------------------------------- predictions
    def _future(self, data: DynamicData, horizon_ends: np.ndarray, theta: np.ndarray | None = None):
        """P(alive at T) and expected purchases in (T, T + e] for each e of ``horizon_ends``
        (module docstring), as (n,) and (n, len(ends)) arrays; the paths must cover T + max(e)."""
        d = self.design_
        full = d.M @ (self.theta_ if theta is None else theta)
        kp = len(d.purchase)
        r, alpha, s, beta = np.exp(full[:4])
        _, p_alive = log_likelihood_terms(full, data, kp, grad=False)[::2]
        _, a = _factors(data.X, full[4:4 + kp])
        _, c = _factors(data.Z, full[4 + kp:])
        A_T, C_T = (a * data.ov_T).sum(1), (c * data.ov_T).sum(1)
        B = beta + C_T
        out = np.zeros((data.x.size, horizon_ends.size))
        for m, end in enumerate(horizon_ends):
            if np.any(data.first + data.T + end > np.max(np.where(np.isfinite(data.hi), data.hi, 0.0), 1) + 1e-9):
                raise ValueError("the covariate paths must cover the prediction horizon")
            ov = data.window(data.T, np.full(data.x.size, float(end)))
            cd = c * ov
            Qs = B[:, None] + np.cumsum(cd, 1) - cd  # beta + C at each piece's start
            ell = np.log1p(cd / Qs)
            piece = a / c * B[:, None] ** s * Qs ** (1.0 - s) * ell * special.exprel(-(s - 1.0) * ell)
            out[:, m] = np.where(ov > 0, piece, 0.0).sum(1)
        rate = (r + data.x) / (alpha + A_T)
        return p_alive, p_alive[:, None] * rate[:, None] * out

    def probability_alive(self, data: DynamicData) -> np.ndarray:
        """P(alive at T | history, covariate path) (the paper's eq. 13)."""
        self._check_fitted()
        return log_likelihood_terms(self.design_.M @ self.theta_, data, len(self.design_.purchase), grad=False)[2]

    def conditional_expected_purchases(self, t: float, data: DynamicData) -> np.ndarray:
        """Expected purchases in (T, T+t] given the history and the future covariate path in
        ``data`` (paths covering T + t; the paper's eq. 15)."""
        self._check_fitted()
        return self._future(data, np.array([float(t)]))[1][:, 0]

    def discounted_purchases(self, data: DynamicData, *, horizon: float, discount_rate_per_step: float,
                             step: float = 1.0, theta: np.ndarray | None = None) -> np.ndarray:
        """sum_k (E[Y(T, T+t_k)] - E[Y(T, T+t_{k-1})]) / (1 + d)^k, t_k = min(k step, horizon):
        the discounted expected purchases of :mod:`patron.value.models.clv` under the future path, with
        d = ``discount_rate_per_step``."""
        self._check_fitted()
        k = math.ceil(horizon / step - 1e-12)
        ends = np.minimum(np.arange(1, k + 1) * step, horizon)
        _, cum = self._future(data, ends, theta)
        inc = np.diff(np.concatenate([np.zeros((cum.shape[0], 1)), cum], axis=1), axis=1)
        return inc @ (1.0 + discount_rate_per_step) ** -np.arange(1, k + 1)

    def path_data(self, frequency, recency, T, first, paths, names, purchase_counts=None, *,
                  period_length: float | None = None) -> DynamicData:
        """:class:`DynamicData` for predictions (paths of the fitted model's covariate names)."""
        names = tuple(names)
        d = self.design_
        if period_length is None and getattr(self, "period_length_", None) is None:
            raise ValueError("this model was saved without its period length: pass period_length")
        paths = np.asarray(paths, dtype=np.float64).reshape(np.size(frequency), -1, len(names))
        X = paths[:, :, [names.index(c) for c in d.purchase]]
        Z = paths[:, :, [names.index(c) for c in d.dropout]]
        counts = np.zeros(X.shape[:2]) if purchase_counts is None else np.asarray(purchase_counts, dtype=np.float64)
        return dynamic_data(frequency, recency, T, first, X, Z, np.einsum("nj,njk->nk", counts, X),
                            period_length=self.period_length_ if period_length is None else period_length)
