"""Time-invariant covariates in the purchase and dropout processes: the shared estimator.

Parametrization (Fader & Hardie 2007, "Incorporating time-invariant covariates into the
Pareto/NBD and BG/NBD models", note 019, eqs. 1-3; CLVTools' ``pnbd``/``bgnbd`` with static
covariates, Bachmann, Meierer & Naef 2021, Section 3.1). Customer i has covariate vectors
``x_i`` (purchase) and ``z_i`` (dropout) and the population parameters are scaled per customer:

    purchase:  alpha_i = alpha_0 exp(-gamma_purchase . x_i)       (both models)
    dropout:   beta_i  = beta_0  exp(-gamma_dropout . z_i)        (Pareto/NBD)
               a_i = a_0 exp(gamma_dropout . z_i),
               b_i = b_0 exp(gamma_dropout . z_i)                 (BG/NBD, one gamma for a and b)

so a positive purchase effect raises the mean purchase rate r / alpha_i by the factor
``exp(gamma)`` per unit of the covariate, and a positive dropout effect raises the mean dropout
rate s / beta_i (Pareto/NBD) or scales the Beta(a, b) of the dropout probability towards its mean
(BG/NBD: fewer purchases before dropout, E[1/p] = (a_i + b_i - 1) / (a_i - 1) falls). With every
gamma 0 the models are the ones without covariates.

Estimation. Each customer's likelihood is the model's likelihood at their own parameters; the
model module supplies it per row as a function of the four per-row log-parameters
``phi_i = (log r, log alpha_i, log s|a_i, log beta_i|b_i)``, with its gradient and Hessian in
``phi``. As ``phi_i`` is linear in the estimated vector ``theta`` (log base parameters and the
gammas), the gradient and Hessian in ``theta`` are sums of per-row terms times covariate columns
(no per-customer loop). The objective, per customer, is

    f(theta) = -LL(theta) / N + penalizer * sum(log base params ** 2)
               + lambda_purchase * |gamma_purchase|^2 + lambda_dropout * |gamma_dropout|^2,

the regularisation of CLVTools (``reg.lambdas``: the mean negative log-likelihood plus
lambda |gamma|^2 per process). ``constrained`` covariates appear in both processes with one shared
coefficient (CLVTools' ``names.cov.constr``); for the penalty the shared coefficient counts in
both processes. The fit takes Newton steps on the exact Hessian (both models; a model without
an analytic one differences its per-row gradient), with L-BFGS-B restarts as a fallback, from
the model without covariates (gamma = 0) or, on more than ``SUBSAMPLE_MIN_CUSTOMERS`` customers,
from the optimum on a random subsample of about ``SUBSAMPLE_CUSTOMERS`` (itself started from the
model without covariates): a few standard errors from the full optimum, so the full data see
three or four Newton steps. Standard errors come from the observed information (the Hessian of
N f at the optimum, the one Newton stopped at); ``covariance_`` holds natural base parameters
and the gammas.

Rows are compressed on (x, t_x, T, covariate values) before fitting: discrete covariates
(channels, flags, regions) compress a large base to a few distinct rows per (x, t_x, T).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from scipy import special

from . import _optimize, _persist
from ._base import ConvergenceError, ConvergenceWarning, check_frequency_recency_T, compress
from ._estimator import (
    EstimatorMixin,
    NotFittedError,
    _checked_covariance,
    _no_data_record,
    check_settings,
    penalty_terms,
)
from ._rows import subsample_rows, unique_rows

__all__ = ["CovariateModel", "CovariateTable", "covariate_table", "effects_table"]

PROCESSES = ("purchase", "dropout")
"""The two processes a covariate can act on."""

ROW_HESSIAN_LOG_STEP = 1e-4
"""Step in each per-row log-parameter for the central-difference row Hessian (models without an
analytic one): truncation error ~1e-8 of the curvature, far below what a Newton step or a
standard error needs."""

SUBSAMPLE_MIN_CUSTOMERS = 200_000
"""Fits on more customers (sum of weights) start from the optimum on a random subsample."""

SUBSAMPLE_CUSTOMERS = 50_000
"""Expected number of customers in that subsample."""


class CovariateTable:
    """Covariate columns by name: ``names`` (tuple) and ``values`` (n x k float64 matrix)."""

    def __init__(self, names: Sequence[str], values: np.ndarray):
        self.names = tuple(str(n) for n in names)
        values = np.asarray(values, dtype=np.float64)
        self.values = values if values.ndim == 2 and values.shape[1] == len(self.names) else values.reshape(
            -1, len(self.names))

    def columns(self, names: Sequence[str]) -> np.ndarray:
        """The matrix of the named columns (n x len(names)); KeyError naming a missing one."""
        missing = [n for n in names if n not in self.names]
        if missing:
            raise KeyError(f"covariate {', '.join(missing)} not given (have: {', '.join(self.names) or 'none'})")
        idx = [self.names.index(n) for n in names]
        return self.values[:, idx]

    def __len__(self) -> int:
        return self.values.shape[0]


def covariate_table(covariates: Any, n: int | None = None) -> CovariateTable:
    """A :class:`CovariateTable` from a pandas DataFrame, a mapping name -> 1-D array, a
    ``CovariateTable`` or a 2-D array (columns named ``x0, x1, ...``). Values must be finite
    numbers (encode categories first, e.g. one-hot); ``n`` is the expected number of rows."""
    if isinstance(covariates, CovariateTable):
        table = covariates
    elif hasattr(covariates, "columns") and hasattr(covariates, "to_numpy"):  # pandas DataFrame
        names = [str(c) for c in covariates.columns]
        table = CovariateTable(names, covariates.to_numpy(dtype=np.float64) if names else np.zeros((len(covariates), 0)))
    elif isinstance(covariates, Mapping):
        names = list(covariates)
        cols = [np.asarray(covariates[k], dtype=np.float64).ravel() for k in names]
        size = cols[0].size if cols else (n or 0)
        table = CovariateTable(names, np.column_stack(cols) if cols else np.zeros((size, 0)))
    else:
        arr = np.asarray(covariates, dtype=np.float64)
        arr = arr.reshape(-1, 1) if arr.ndim == 1 else arr
        if arr.ndim != 2:
            raise ValueError("covariates must be a DataFrame, a mapping of columns or a 2-D array")
        table = CovariateTable([f"x{j}" for j in range(arr.shape[1])], arr)
    if n is not None and len(table) != n:
        raise ValueError(f"covariates have {len(table)} rows, expected {n} (one per customer)")
    if table.values.size and not np.all(np.isfinite(table.values)):
        bad = [nm for j, nm in enumerate(table.names) if not np.all(np.isfinite(table.values[:, j]))]
        raise ValueError(f"covariate {', '.join(bad)} contains NaN or infinite values")
    return table


class Design:
    """Which covariates act on which process, and the free parameter vector.

    Free vector ``theta``: the log base parameters, then the purchase coefficients of
    non-constrained covariates, the dropout ones, and one shared coefficient per constrained
    covariate. ``full(theta)`` expands it to ``(log base, gamma_purchase, gamma_dropout)`` through
    the matrix ``M`` (full = M theta).
    """

    def __init__(self, n_base: int, purchase: Sequence[str], dropout: Sequence[str],
                 constrained: Sequence[str] = ()):
        self.purchase, self.dropout = tuple(purchase), tuple(dropout)
        self.constrained = tuple(constrained)
        for name in self.constrained:
            if name not in self.purchase or name not in self.dropout:
                raise ValueError(f"constrained covariate {name!r} must act on both processes")
        for label, names in (("purchase", self.purchase), ("dropout", self.dropout)):
            if len(set(names)) != len(names):
                raise ValueError(f"{label} covariates repeat a name: {', '.join(names)}")
        self.n_base = n_base
        self.free_names: list[tuple[str, str]] = []  # (process or "both", covariate)
        self.free_names += [("purchase", c) for c in self.purchase if c not in self.constrained]
        self.free_names += [("dropout", c) for c in self.dropout if c not in self.constrained]
        self.free_names += [("both", c) for c in self.constrained]
        kp, kd = len(self.purchase), len(self.dropout)
        self.n_full = n_base + kp + kd
        self.n_free = n_base + len(self.free_names)
        M = np.zeros((self.n_full, self.n_free))
        M[:n_base, :n_base] = np.eye(n_base)
        for j, (proc, cov) in enumerate(self.free_names):
            if proc in ("purchase", "both"):
                M[n_base + self.purchase.index(cov), n_base + j] = 1.0
            if proc in ("dropout", "both"):
                M[n_base + kp + self.dropout.index(cov), n_base + j] = 1.0
        self.M = M
        self.union = tuple(dict.fromkeys(self.purchase + self.dropout))

    def split(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(log base, gamma_purchase, gamma_dropout) from the free vector."""
        full = self.M @ np.asarray(theta, dtype=np.float64)
        kp = len(self.purchase)
        return full[: self.n_base], full[self.n_base: self.n_base + kp], full[self.n_base + kp:]


class Rows:
    """Compressed rows of a fit: (x, t_x, T), weights, covariate matrices and the index of each
    row's distinct covariate combination (``group``; ``group_rows`` = one row per group)."""

    def __init__(self, x, tx, T, w, Xp, Xd, union_values):
        self.x, self.tx, self.T, self.w = x, tx, T, w
        self.Xp, self.Xd = Xp, Xd
        if union_values.shape[1]:
            _, self.group = unique_rows(*union_values.T)
        else:
            self.group = np.zeros(x.size, dtype=np.intp)
        self.n_groups = int(self.group.max()) + 1 if self.group.size else 0
        self.group_rows = np.zeros(self.n_groups, dtype=np.intp)
        self.group_rows[self.group] = np.arange(self.group.size)
        self.union = union_values
        self.n = float(w.sum())
        self.model_data: Any = None


class CovariateModel(EstimatorMixin, _persist.PersistMixin):
    """Base of the covariate models: fit, standard errors, effects; scikit-learn's estimator
    contract and JSON save/load shared with :class:`patron.value.models.BaseModel`
    (:mod:`patron.value.models._estimator`, :mod:`patron.value.models._persist`).

    Parameters
    ----------
    purchase_covariates, dropout_covariates : sequence of str, optional
        Covariate names acting on each process; ``None`` means every column of the covariates
        given to ``fit``; ``()`` none.
    constrained : sequence of str
        Covariates with one coefficient shared by both processes (CLVTools' ``names.cov.constr``).
    penalizer : float
        L2 penalty on the base parameters (as :class:`patron.value.models.BaseModel`).
    penalizer_kind : {"log", "lifetimes"}
        What ``penalizer`` shrinks: the log base parameters (towards 1) or, as lifetimes, the
        base parameters (towards 0); see :mod:`patron.value.models._estimator`.
    regularization : float or (float, float)
        lambda of the L2 penalty on the coefficients, per process ``(purchase, dropout)``, added to
        the mean negative log-likelihood (CLVTools' ``reg.lambdas``).
    strict : bool
        Raise :class:`ConvergenceError` instead of warning when the optimiser does not converge.
    n_starts, random_state : L-BFGS-B restarts (fallback) and their seed.
    """

    name: ClassVar[str] = ""
    base_names: ClassVar[tuple[str, ...]] = ()
    """The base parameters (also ``param_names``, as in :class:`patron.value.models.BaseModel`)."""
    row_links: ClassVar[tuple[tuple[str, float] | None, ...]] = ()
    """For each per-row log-parameter: (process, sign) of the covariate term added to the log base
    parameter, or None when no covariate acts on it."""
    has_row_hessian: ClassVar[bool] = False
    """The model's ``_row_terms`` returns an analytic Hessian (else it is differenced)."""
    nocov_class: ClassVar[Any] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        cls.param_names = cls.base_names
        super().__init_subclass__(**kwargs)

    def __init__(self, purchase_covariates: Sequence[str] | None = None,
                 dropout_covariates: Sequence[str] | None = None, *, constrained: Sequence[str] = (),
                 penalizer: float = 0.0, penalizer_kind: str = "log", regularization: float | Sequence[float] = 0.0,
                 strict: bool = False, n_starts: int = 8, random_state: int = 0):
        self.purchase_covariates = purchase_covariates
        self.dropout_covariates = dropout_covariates
        self.constrained = constrained
        self.penalizer = penalizer
        self.penalizer_kind = penalizer_kind
        self.regularization = regularization
        self.strict = strict
        self.n_starts = n_starts
        self.random_state = random_state

    # ------------------------------------------------------------------ hooks
    def _prepare_rows(self, rows: Rows) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _row_terms(self, phi: list[np.ndarray], rows: Rows, hessian: bool):  # pragma: no cover
        """(ll per row, d ll / d phi as (4, n), d2 ll / d phi2 as (4, 4, n) or None)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers
    def _lambdas(self) -> tuple[float, float]:
        reg = self.regularization
        lp, ld = (reg, reg) if np.ndim(reg) == 0 else tuple(reg)
        lp, ld = float(lp), float(ld)
        if not (lp >= 0 and ld >= 0 and np.isfinite(lp) and np.isfinite(ld)):
            raise ValueError(f"regularization must be >= 0; got {reg!r}")
        check_settings(self.penalizer, self.penalizer_kind)
        return lp, ld

    def _set_penalty_scale(self, T: np.ndarray) -> None:
        """Scale of the lifetimes penalty: 1 / max(T) for the base parameters in the unit of
        time (those of the model without covariates, ``_time_params``)."""
        scale = np.ones(len(self.base_names))
        max_T = float(np.max(T)) if T.size else 0.0
        if max_T > 0:
            for name in getattr(self.nocov_class, "_time_params", ()):
                scale[self.base_names.index(name)] = 1.0 / max_T
        self._penalty_scale = scale

    def _design_for(self, table: CovariateTable) -> Design:
        purchase = table.names if self.purchase_covariates is None else tuple(self.purchase_covariates)
        dropout = table.names if self.dropout_covariates is None else tuple(self.dropout_covariates)
        return Design(len(self.base_names), purchase, dropout, tuple(self.constrained))

    def _phi(self, theta: np.ndarray, Xp: np.ndarray, Xd: np.ndarray) -> list[np.ndarray]:
        """Per-row log-parameters at ``theta`` for covariate matrices Xp, Xd."""
        base, gp, gd = self.design_.split(theta)
        eta = {"purchase": Xp @ gp if gp.size else np.zeros(Xp.shape[0]),
               "dropout": Xd @ gd if gd.size else np.zeros(Xd.shape[0])}
        return [base[k] + (0.0 if link is None else link[1] * eta[link[0]])
                for k, link in enumerate(self.row_links)]

    def _row_hessian_by_differences(self, phi, rows) -> np.ndarray:
        """d2 ll / d phi2 per row by central differences of the per-row gradient."""
        k = len(phi)
        h = np.empty((k, k, rows.x.size))
        for j in range(k):
            up = [p + (ROW_HESSIAN_LOG_STEP if i == j else 0.0) for i, p in enumerate(phi)]
            down = [p - (ROW_HESSIAN_LOG_STEP if i == j else 0.0) for i, p in enumerate(phi)]
            h[:, j] = (self._row_terms(up, rows, False)[1] - self._row_terms(down, rows, False)[1]) / (
                2.0 * ROW_HESSIAN_LOG_STEP)
        return 0.5 * (h + h.transpose(1, 0, 2))

    def _nll(self, theta: np.ndarray, rows: Rows, hessian: bool):
        """Weighted negative log-likelihood (sum scale), its gradient and Hessian in the free
        vector ``theta`` (chain rule through the linear map theta -> phi)."""
        d = self.design_
        phi = self._phi(theta, rows.Xp, rows.Xd)
        ll, g, h = self._row_terms(phi, rows, hessian and self.has_row_hessian)
        if hessian and h is None:
            h = self._row_hessian_by_differences(phi, rows)
        w = rows.w
        nb = d.n_base
        X = {"purchase": rows.Xp, "dropout": rows.Xd}
        cols = {"purchase": slice(nb, nb + rows.Xp.shape[1]), "dropout": slice(nb + rows.Xp.shape[1], d.n_full)}
        # the per-row log-parameters a process moves, with the sign of its effect on each
        links = {p: [(k, lk[1]) for k, lk in enumerate(self.row_links) if lk is not None and lk[0] == p]
                 for p in PROCESSES if X[p].shape[1]}
        grad = np.zeros(d.n_full)
        grad[:nb] = g @ w
        for p, ks in links.items():
            grad[cols[p]] = X[p].T @ (w * sum(sign * g[k] for k, sign in ks))
        value = -float(w @ ll)
        if not hessian:
            return value, -(d.M.T @ grad), None
        H = np.zeros((d.n_full, d.n_full))
        H[:nb, :nb] = np.einsum("n,kjn->kj", w, h)
        # s[p][k]: the second derivative in (phi_k, the linear predictor of p), per row
        s = {p: [w * sum(sign * h[k, j] for j, sign in ks) for k in range(nb)] for p, ks in links.items()}
        for p, ks in links.items():
            H[:nb, cols[p]] = np.array([X[p].T @ s[p][k] for k in range(nb)])
            for q in links:
                if list(links).index(q) >= list(links).index(p):
                    c = sum(sign * s[q][k] for k, sign in ks)
                    H[cols[p], cols[q]] = (X[p] * c[:, None]).T @ X[q]
                    H[cols[q], cols[p]] = H[cols[p], cols[q]].T
        H[nb:, :nb] = H[:nb, nb:].T
        return value, -(d.M.T @ grad), -(d.M.T @ H @ d.M)

    def _penalty(self, theta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Per-customer penalty: value, gradient and Hessian in the free vector (``penalizer``
        of ``penalizer_kind`` on the base parameters, ``regularization`` on the coefficients)."""
        d = self.design_
        lp, ld = self._lambdas()
        nb, kp = d.n_base, len(d.purchase)
        full = d.M @ theta
        scale = getattr(self, "_penalty_scale", np.ones(nb))
        base_value, base_grad, base_hess = penalty_terms(self.penalizer_kind, float(self.penalizer), full[:nb], scale)
        weights = np.concatenate([np.full(kp, lp), np.full(len(d.dropout), ld)])
        gammas = full[nb:]
        value = base_value + float(weights @ (gammas * gammas))
        grad = d.M.T @ np.concatenate([base_grad, 2.0 * weights * gammas])
        hess = d.M.T @ np.diag(np.concatenate([base_hess, 2.0 * weights])) @ d.M
        return value, grad, hess

    def _objective(self, rows: Rows, *, hessian: bool):
        n = rows.n

        def f(theta: np.ndarray):
            with np.errstate(all="ignore"):
                raw_nll, grad, hess = self._nll(theta, rows, hessian)
                pv, pg, ph = self._penalty(theta)
            value, grad = raw_nll / n + pv, grad / n + pg
            bad = not (np.isfinite(value) and np.all(np.isfinite(grad)))
            if not hessian:
                return (np.inf, np.zeros_like(theta)) if bad else (value, grad)
            if bad or not np.all(np.isfinite(hess)):
                return np.inf, np.zeros_like(theta), None, None
            hess = hess / n + ph
            return value, grad, hess, (raw_nll, hess)

        return f

    # ------------------------------------------------------------------ fit
    def fit(self, frequency: Any, recency: Any, T: Any, covariates: Any = None, *,
            weights: Any = None) -> CovariateModel:
        """Fit by maximum likelihood on (x, t_x, T) and the covariates (one row per customer:
        a DataFrame, a mapping name -> array or a 2-D array); ``weights`` count identical
        customers. Returns self."""
        x, tx, T_ = check_frequency_recency_T(frequency, recency, T)
        table = covariate_table({} if covariates is None else covariates, x.size)
        self._lambdas()
        design = self._design_for(table)
        union = table.columns(design.union)
        columns, w = compress(x, tx, T_, *union.T, weights=weights)
        if w.size == 0 or w.sum() <= 0:
            raise ValueError("no data to fit (empty input or all weights zero)")
        pending_fingerprint = _persist.fingerprint_later(columns, w)
        cx, ctx, cT = columns[:3]
        self._set_penalty_scale(cT)
        cu = np.column_stack(columns[3:]) if len(columns) > 3 else np.zeros((cx.size, 0))
        pick_p = [design.union.index(c) for c in design.purchase]
        pick_d = [design.union.index(c) for c in design.dropout]
        rows = Rows(cx, ctx, cT, w, cu[:, pick_p], cu[:, pick_d], cu)
        self.design_ = design
        rows.model_data = self._prepare_rows(rows)
        start = self._start(rows)
        theta, ok, message, at_optimum = self._optimise(rows, start)
        self._set_results(theta, rows, ok, message, at_optimum)
        self.data_fingerprint_ = pending_fingerprint()
        if not ok:
            if self.strict:
                raise ConvergenceError(message)
            warnings.warn(f"{type(self).__name__} did not converge: {message}", ConvergenceWarning, stacklevel=2)
        return self

    def _start(self, rows: Rows) -> np.ndarray:
        """Large bases: the optimum on a random subsample of about ``SUBSAMPLE_CUSTOMERS``
        customers (found as below, to ``START_STEP_TOL``); otherwise the model without
        covariates fitted on the same rows, all coefficients 0."""
        if rows.n > SUBSAMPLE_MIN_CUSTOMERS:
            rng = np.random.default_rng(self.random_state)
            pick, counts = subsample_rows(rows.w, SUBSAMPLE_CUSTOMERS, rng)
            sub = Rows(rows.x[pick], rows.tx[pick], rows.T[pick], counts.astype(np.float64), rows.Xp[pick],
                       rows.Xd[pick], rows.union[pick])
            sub.model_data = self._prepare_rows(sub)
            found = _optimize.newton(self._objective(sub, hessian=True), self._nocov_start(sub),
                                     step_tol=_optimize.START_STEP_TOL)
            if found is not None:
                return found[0]
        return self._nocov_start(rows)

    def _nocov_start(self, rows: Rows) -> np.ndarray:
        """The model without covariates fitted on ``rows``, all coefficients 0."""
        nocov = self.nocov_class(penalizer=float(self.penalizer), penalizer_kind=self.penalizer_kind)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            nocov.fit(rows.x, rows.tx, rows.T, weights=rows.w)
        base = np.log([nocov.params_[k] for k in self.base_names])
        if not np.all(np.isfinite(base)):
            base = np.zeros(len(self.base_names))
        return np.concatenate([base, np.zeros(self.design_.n_free - len(self.base_names))])

    def _optimise(self, rows: Rows, start: np.ndarray):
        """(theta, converged, message, (negative log-likelihood, Hessian of the per-customer
        objective) at theta, or None when not finite there)."""
        fh = self._objective(rows, hessian=True)
        found = _optimize.newton(fh, start)
        if found is not None:
            return found[0], True, found[2], found[1]
        rng = np.random.default_rng(self.random_state)
        best, ok, messages, _ = _optimize.lbfgs_multistart(self._objective(rows, hessian=False), start,
                                                           n_starts=self.n_starts, rng=rng)
        if best is None:
            return start, False, "optimiser returned non-finite values from every start: " + "; ".join(messages), None
        theta = np.asarray(best.x, dtype=np.float64)
        if ok:
            polished = _optimize.newton(fh, theta)
            if polished is not None:
                return polished[0], True, polished[2], polished[1]
        return theta, ok, str(best.message), fh(theta)[3]

    def _set_results(self, theta, rows: Any, ok: bool, message: str, at_optimum) -> None:
        """Fitted attributes from ``theta`` and ``at_optimum`` = (negative log-likelihood,
        per-customer Hessian) there, either None if unknown (then NaN covariance; the
        log-likelihood is evaluated)."""
        d = self.design_
        self.theta_ = np.asarray(theta, dtype=np.float64)
        nll, hess = (None, None) if at_optimum is None else at_optimum
        if nll is None:
            with np.errstate(all="ignore"):
                nll, _, _ = self._nll(self.theta_, rows, False)
        self.log_likelihood_ = float(-nll)
        if hess is None:
            hess = np.full((d.n_free, d.n_free), np.nan)
        cov_theta, cov_ok = _optimize.invert_information(np.asarray(hess) * rows.n)
        self.theta_covariance_ = cov_theta
        self.covariance_ok_ = bool(cov_ok)
        self.n_customers_ = round(rows.n) if float(rows.n).is_integer() else rows.n
        self.n_rows_ = int(rows.w.size)
        self.converged_ = bool(ok)
        self.convergence_message_ = message
        self.n_starts_used_ = 1
        self.data_fingerprint_ = None
        self._set_named()

    def _set_named(self) -> None:
        """params_, coefficients_, their standard errors and covariance_ from theta_."""
        d = self.design_
        nb = d.n_base
        jac = np.ones(d.n_free)
        jac[:nb] = np.exp(self.theta_[:nb])
        self.covariance_ = self.theta_covariance_ * np.outer(jac, jac)
        se_free = np.sqrt(np.diag(self.covariance_)) if self.covariance_ok_ else np.full(d.n_free, np.nan)
        self.params_ = {n: float(v) for n, v in zip(self.base_names, jac[:nb], strict=True)}
        self.std_errors_ = {n: float(v) for n, v in zip(self.base_names, se_free[:nb], strict=True)}
        coef: dict[str, dict[str, float]] = {p: {} for p in PROCESSES}
        coef_se: dict[str, dict[str, float]] = {p: {} for p in PROCESSES}
        for j, (proc, cov) in enumerate(d.free_names):
            for p in (PROCESSES if proc == "both" else (proc,)):
                coef[p][cov] = float(self.theta_[nb + j])
                coef_se[p][cov] = float(se_free[nb + j])
        self.coefficients_ = {p: {c: coef[p][c] for c in (d.purchase if p == "purchase" else d.dropout)} for p in PROCESSES}
        self.coefficient_std_errors_ = {p: {c: coef_se[p][c] for c in (d.purchase if p == "purchase" else d.dropout)}
                                        for p in PROCESSES}
        self.covariance_names_ = list(self.base_names) + [f"{p}:{c}" for p, c in d.free_names]

    # ------------------------------------------------------------------ per-customer parameters
    def _check_fitted(self) -> None:
        if not hasattr(self, "theta_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() or from_params() first")

    @classmethod
    def from_params(cls, params: Mapping[str, float] | None = None, /, *,  # type: ignore[override]
                    coefficients: Mapping[str, Mapping[str, float]] | None = None, constrained: Sequence[str] = (),
                    covariance: Any = None, **named: float) -> CovariateModel:
        """A model with known parameters, ready for predictions (no data needed), as
        :meth:`patron.value.models.BaseModel.from_params`: the base parameters by name or in
        ``params``, and ``coefficients = {"purchase": {name: gamma}, "dropout": {...}}``
        (a ``constrained`` covariate with the same value in both). ``covariance``, optional, in
        the order of ``covariance_names_`` (base parameters, then the free coefficients)."""
        p = cls._checked_params({**(params or {}), **named})
        unknown = set(coefficients or {}) - set(PROCESSES)
        coefficients = {proc: dict((coefficients or {}).get(proc, {})) for proc in PROCESSES}
        if unknown:
            raise ValueError(f"coefficients are given per process ({', '.join(PROCESSES)}); got {', '.join(sorted(unknown))}")
        design = Design(len(cls.base_names), list(coefficients["purchase"]), list(coefficients["dropout"]), constrained)
        theta = np.log(p).tolist()
        for proc, cov in design.free_names:
            values = [float(coefficients[q][cov]) for q in (PROCESSES if proc == "both" else (proc,))]
            if len(set(values)) != 1 or not np.isfinite(values[0]):
                raise ValueError(f"coefficient {cov} must be one finite number (shared by both processes if constrained)")
            theta.append(values[0])
        model = cls(design.purchase, design.dropout, constrained=design.constrained)
        model.design_ = design
        model.theta_ = np.array(theta)
        natural = _checked_covariance(covariance, design.n_free, ["base parameters", "coefficients"])
        jac = np.concatenate([p, np.ones(design.n_free - p.size)])
        model.theta_covariance_ = natural / np.outer(jac, jac)
        model.covariance_ok_ = bool(np.all(np.isfinite(natural)))
        _no_data_record(model)
        model._set_named()
        return model

    def customer_params(self, covariates: Any, *, theta: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        """Each customer's model parameters (r, alpha_i, s|a_i, beta_i|b_i) as arrays, at the
        fitted ``theta_`` (or ``theta``), from a covariate table with the model's columns."""
        self._check_fitted()
        d = self.design_
        table = covariate_table(covariates)
        phi = self._phi(self.theta_ if theta is None else theta, table.columns(d.purchase), table.columns(d.dropout))
        return tuple(np.exp(p) * np.ones(len(table)) for p in phi)

    def log_covariance(self) -> np.ndarray:
        """Covariance of the free vector theta (log base parameters, coefficients)."""
        self._check_fitted()
        return self.theta_covariance_

    def sample_theta(self, n_draws: int, *, random_state: Any = None) -> np.ndarray:
        """Draws of theta from its asymptotic normal, shape (n_draws, k)."""
        self._check_fitted()
        if not self.covariance_ok_:
            raise ValueError("covariance is not available (Hessian not positive definite)")
        rng = np.random.default_rng(random_state)
        chol = np.linalg.cholesky(self.theta_covariance_)
        return self.theta_ + rng.standard_normal((int(n_draws), self.theta_.size)) @ chol.T

    def covariate_effects(self, level: float = 0.95):
        """The effects table (:func:`effects_table`) of this fitted model."""
        return effects_table(self, level=level)

    # ------------------------------------------------------------------ save / load
    def _extra_state(self) -> dict[str, Any]:
        """The covariates and coefficients beside :mod:`patron.value.models._persist`'s layout:
        ``covariates`` = names per process, constrained ones, coefficients with standard
        errors, and the free vector ``theta`` with its covariance (NaN as null)."""
        d = self.design_

        def num(v: float) -> float | None:
            return float(v) if np.isfinite(v) else None

        return {"covariates": {
            "purchase": list(d.purchase), "dropout": list(d.dropout), "constrained": list(d.constrained),
            "coefficients": self.coefficients_,
            "coefficient_std_errors": {p: {k: num(v) for k, v in c.items()} for p, c in self.coefficient_std_errors_.items()},
            "theta": [num(v) for v in self.theta_],
            "theta_covariance": [[num(v) for v in row] for row in self.theta_covariance_],
        }}

    def _restore_extra_state(self, data: Mapping[str, Any]) -> None:
        state = data["covariates"]
        self.design_ = Design(len(self.base_names), state["purchase"], state["dropout"], state["constrained"])
        nan = float("nan")
        self.theta_ = np.array([nan if v is None else v for v in state["theta"]], dtype=np.float64)
        k = self.theta_.size
        self.theta_covariance_ = np.array([[nan if v is None else v for v in row] for row in state["theta_covariance"]],
                                          dtype=np.float64).reshape(k, k)
        self.covariance_ok_ = bool(np.all(np.isfinite(self.theta_covariance_)))
        self._set_named()

    def __repr__(self) -> str:
        if hasattr(self, "params_"):
            inner = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
            effects = ", ".join(f"{p}:{c}={v:+.3g}" for p in PROCESSES for c, v in self.coefficients_[p].items())
            return f"<{type(self).__name__}: {inner}; {effects}>"
        return f"<{type(self).__name__} (not fitted)>"


RATE_OF = {
    ("pareto", "purchase"): "mean purchase rate r/alpha_i",
    ("pareto", "dropout"): "mean dropout rate s/beta_i",
    ("bgnbd", "purchase"): "mean purchase rate r/alpha_i",
    ("bgnbd", "dropout"): "a_i and b_i of the dropout Beta (its mean a/(a+b) unchanged)",
}
"""What ``exp(effect)`` multiplies, per model and process (the ``multiplies`` column)."""


def effects_table(model: CovariateModel, *, level: float = 0.95):
    """Covariate effects of a fitted model as a DataFrame, one row per (process, covariate):
    ``effect`` (gamma), ``std_error``, ``lower``/``upper`` (normal interval at ``level``), ``z``,
    ``rate_multiplier`` = exp(gamma) (the factor one unit of the covariate applies to what
    ``multiplies`` names) with its interval ``rate_multiplier_lower``/``_upper``, and
    ``constrained`` (shared by both processes)."""
    import pandas as pd

    model._check_fitted()
    if not 0 < level < 1:
        raise ValueError("level must be between 0 and 1")
    z = float(special.ndtri(0.5 + level / 2.0))
    rows = []
    for proc in PROCESSES:
        for cov, g in model.coefficients_[proc].items():
            se = model.coefficient_std_errors_[proc][cov]
            lo, hi = g - z * se, g + z * se
            rows.append({"process": proc, "covariate": cov, "effect": g, "std_error": se, "lower": lo, "upper": hi,
                         "z": g / se if se > 0 else float("nan"), "rate_multiplier": float(np.exp(g)),
                         "rate_multiplier_lower": float(np.exp(lo)), "rate_multiplier_upper": float(np.exp(hi)),
                         "multiplies": RATE_OF.get((model.name.split("_")[0], proc), ""),
                         "constrained": cov in model.design_.constrained})
    return pd.DataFrame(rows, columns=["process", "covariate", "effect", "std_error", "lower", "upper", "z",
                                       "rate_multiplier", "rate_multiplier_lower", "rate_multiplier_upper",
                                       "multiplies", "constrained"])
