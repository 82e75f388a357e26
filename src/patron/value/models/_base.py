"""Shared base for patron's customer-base models: one optimiser, standard errors, save/load.

Interface for model authors (kept small and stable)
----------------------------------------------------
A model subclasses :class:`BaseModel` and defines:

``name``  (class attribute, str)
    CLI / registry name, e.g. ``"bgnbd"``. Also written to JSON and used by :meth:`BaseModel.load`.
``param_names``  (class attribute, tuple of str)
    Literature names in a fixed order, e.g. ``("r", "alpha", "a", "b")``.
``_negative_log_likelihood(log_params, columns, weights)``  (staticmethod)
    ``log_params``: 1-D array of log-parameters (order of ``param_names``); ``columns``: what
    ``_prepare`` returned; ``weights``: 1-D float array (compressed rows). Returns ``(nll, grad)``:
    the weighted *sum* of negative log-likelihoods (float) and its exact gradient with respect to
    ``log_params``. No penalty, no scaling: the base adds those.
``_negative_log_likelihood_hessian(log_params, columns, weights)``  (staticmethod, optional)
    ``(nll, grad, hess)`` with the exact Hessian in log-parameters. When present the fit ends with
    Newton steps and the standard errors come from this Hessian.
``_prepare(columns, weights)``  (method, optional)
    Precompute whatever the likelihood needs once per fit (distinct values, per-value weight sums).
    Default: the compressed columns unchanged.
``_initial_log_params(columns, weights)``  (method)
    A sensible first start (1-D array of log-parameters); ``zeros`` is acceptable.
``fit(...)``
    Validates the model's own data, calls ``columns, weights = compress(*data, weights=weights)``,
    then ``return self._fit_compressed(columns, weights)``.

The base then sets, after ``fit``: ``params_`` (dict name -> float), ``std_errors_`` (dict),
``covariance_`` (k x k array, natural parameters, order ``param_names``), ``log_likelihood_``
(unpenalised, float), ``n_customers_`` (sum of weights; int when the weights are integral),
``n_rows_`` (distinct rows fitted), ``converged_``, ``convergence_message_``, ``n_starts_used_``,
``data_fingerprint_``. :meth:`from_params` sets the same attributes from known parameters.
Estimator contract (:mod:`._estimator`): ``get_params``/``set_params`` from the constructor's
signature, :class:`NotFittedError`, predictions on pandas Series return Series with their index
(decorate prediction methods with :func:`keeps_index`). ``_time_params`` names the parameters in
the unit of time (rates), which the ``"lifetimes"`` penalty scales by ``1 / max(T)``, T being
column ``_time_column`` of the compressed data. Helpers for predictions: ``self._params()`` (tuple of floats in
``param_names`` order, raises if not fitted) and :meth:`sample_params` (parametric bootstrap draws).

Transaction models used by :mod:`patron.value.models.clv` provide ``_conditional_expected_purchases_fn``
and may provide the faster pair ``_probability_alive_fn`` / ``_expected_given_alive_fn`` (see
:mod:`patron.value.models.clv`).

Optimisation (:mod:`patron.value.models._optimize`)
---------------------------------------------
Minimises ``f(theta) = -LL(theta) / N + penalizer * P(theta)`` over ``theta = log(params)``
(``N`` = sum of weights; ``P`` chosen by ``penalizer_kind``, see :mod:`._estimator`).

1. Start: the model's first guess; with more than ``SUBSAMPLE_MIN_CUSTOMERS`` customers, the
   optimum of the same objective on a random subsample of about ``SUBSAMPLE_CUSTOMERS`` customers
   (Poisson thinning of the weights, seeded by ``random_state``), found by steps 2-3 on the
   subsample: cheap, and a few standard errors from the full optimum.
2. Models with an exact Hessian: modified Newton (diagonal shift while the Hessian is not positive
   definite, backtracking line search) until a step changes no log-parameter by more than
   ``NEWTON_STEP_TOL``; convergence is quadratic, so the optimum is exact to rounding.
3. Otherwise, or if Newton fails: ``scipy.optimize.minimize(method="L-BFGS-B")`` with the analytic
   gradient, bounded to ``|theta| <= LOG_PARAM_BOUND``, from the start and then seeded
   perturbations of it until one converges (the best finite result wins); ``converged_`` when scipy
   reports success or stops with a gradient below ``GRADIENT_TOLERANCE_ACCEPT``. With an exact
   Hessian the result is then polished by Newton.
``strict=True`` raises :class:`ConvergenceError` instead of warning.

Standard errors
---------------
Observed information: the Hessian of ``N * f`` (the penalised negative log-likelihood; with
``penalizer=0`` exactly the NLL) with respect to the *natural* parameters at the optimum: from the
model's exact log-parameter Hessian when it has one, otherwise by central finite differences of
the analytic gradient (step ``HESSIAN_REL_STEP * param``), symmetrised. ``covariance_`` is its
inverse; if it is not positive definite the covariance and standard errors are NaN and
``covariance_ok_`` is False.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from . import _optimize, _persist
from ._checks import all_integral, check_frequency_recency_T
from ._estimator import EstimatorMixin, NotFittedError, check_settings, keeps_index, penalty_terms
from ._rows import compress, subsample_rows, unique_rows, wdot

__all__ = [
    "BaseModel",
    "ConvergenceError",
    "ConvergenceWarning",
    "NotFittedError",
    "check_frequency_recency_T",
    "compress",
    "keeps_index",
    "unique_rows",
    "wdot",
]

DEFAULT_N_STARTS = 8
"""Maximum number of L-BFGS-B starts (the first plus seeded perturbations)."""

HESSIAN_REL_STEP = 1e-4
"""Relative step for central differences of the gradient (natural-parameter Hessian)."""

SUBSAMPLE_MIN_CUSTOMERS = 200_000
"""Fits on more customers (sum of weights) start from the optimum on a random subsample."""

SUBSAMPLE_CUSTOMERS = 50_000
"""Expected number of customers in that subsample."""

JSON_FORMAT_VERSION = _persist.JSON_FORMAT_VERSION

_REGISTRY = _persist.MODEL_REGISTRY
"""Model classes by name (shared with the covariate models: :data:`._persist.MODEL_REGISTRY`)."""


class ConvergenceError(RuntimeError):
    """The optimiser did not converge; ``message`` holds what it reported."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class ConvergenceWarning(UserWarning):
    """Warning issued (instead of :class:`ConvergenceError`) when ``strict=False``."""


class BaseModel(EstimatorMixin, _persist.PersistMixin):
    """Base class: maximum likelihood fit in log-parameter space, standard errors, JSON I/O.

    Parameters
    ----------
    penalizer : float, default 0
        Weight of the L2 penalty added to the mean negative log-likelihood.
    penalizer_kind : {"log", "lifetimes"}, default "log"
        What is penalised: the log-parameters (shrinks towards 1) or, as lifetimes, the
        parameters (shrinks towards 0); see :mod:`patron.value.models._estimator`.
    strict : bool, default False
        Raise :class:`ConvergenceError` when the optimiser does not converge (else warn).
    n_starts : int
        Maximum number of optimiser starts.
    random_state : int
        Seed for the subsample and the restart perturbations.
    """

    name: ClassVar[str] = ""
    param_names: ClassVar[tuple[str, ...]] = ()
    _negative_log_likelihood_hessian: ClassVar[Callable[..., Any] | None] = None
    _subsample_start: ClassVar[bool] = True
    """Start large fits from a fit on a subsample (off where Newton needs no help)."""
    _time_params: ClassVar[tuple[str, ...]] = ()
    """Parameters in the unit of time (rates such as ``alpha``): scaled for the lifetimes penalty."""
    _time_column: ClassVar[int] = 2
    """Index of T among the compressed columns (models with ``_time_params``)."""

    def __init__(self, penalizer: float = 0.0, *, penalizer_kind: str = "log", strict: bool = False,
                 n_starts: int = DEFAULT_N_STARTS, random_state: int = 0):
        self.penalizer = penalizer
        self.penalizer_kind = penalizer_kind
        self.strict = strict
        self.n_starts = n_starts
        self.random_state = random_state

    # ----------------------------------------------------------------- hooks for subclasses
    @staticmethod
    def _negative_log_likelihood(
        log_params: np.ndarray, columns: tuple[np.ndarray, ...], weights: np.ndarray
    ) -> tuple[float, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _prepare(self, columns: tuple[np.ndarray, ...], weights: np.ndarray) -> Any:
        return columns

    def _initial_log_params(self, columns: tuple[np.ndarray, ...],
                            weights: np.ndarray) -> np.ndarray:
        return np.zeros(len(self.param_names))

    # ----------------------------------------------------------------- fitting
    def _objective(self, columns: Any, weights: np.ndarray, *, hessian: bool = False):
        """Per-customer penalised objective f(theta), its gradient (and Hessian)."""
        n_total = float(weights.sum())
        nll_fn = self._negative_log_likelihood_hessian if hessian else self._negative_log_likelihood

        def f(theta: np.ndarray):
            with np.errstate(all="ignore"):
                out = nll_fn(theta, columns, weights)
                p_value, p_grad, p_hess = self._penalty(theta)
            value = out[0] / n_total + p_value
            g = np.asarray(out[1], dtype=np.float64) / n_total + p_grad
            if not (np.isfinite(value) and np.all(np.isfinite(g))):
                return (np.inf, np.zeros_like(theta), None, out) if hessian else (np.inf, 0 * g)
            if not hessian:
                return value, g
            h = np.asarray(out[2], dtype=np.float64) / n_total + np.diag(p_hess)
            return value, g, h, out

        return f

    def _penalty(self, theta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """The penalty per customer at ``theta``: value, gradient, Hessian diagonal."""
        return penalty_terms(self.penalizer_kind, float(self.penalizer), theta,
                             getattr(self, "_penalty_scale", np.ones_like(theta)))

    def _set_penalty_scale(self, columns: tuple[np.ndarray, ...]) -> None:
        """Per-parameter scale of the lifetimes penalty: 1 / max(T) for ``_time_params``."""
        scale = np.ones(len(self.param_names))
        if self._time_params:
            max_T = float(np.max(columns[self._time_column])) if columns[self._time_column].size else 0.0
            if max_T > 0:
                for name in self._time_params:
                    scale[self.param_names.index(name)] = 1.0 / max_T
        self._penalty_scale = scale

    def _minimize(self, data: Any, weights: np.ndarray, start: np.ndarray, rng, *,
                  step_tol: float = _optimize.NEWTON_STEP_TOL) -> tuple:
        """Optimum from ``start``: (theta, converged, message, starts used, raw) or theta None.

        Newton when the model has an exact Hessian (``raw`` = (nll, grad, hess) at the optimum),
        else or if Newton fails L-BFGS-B with restarts (``raw`` None), polished by Newton."""
        has_hessian = self._negative_log_likelihood_hessian is not None
        fh = self._objective(data, weights, hessian=True) if has_hessian else None
        if has_hessian:
            found = _optimize.newton(fh, start, step_tol=step_tol)
            if found is not None:
                return found[0], True, found[2], 1, found[1]
        best, ok, messages, n_used = _optimize.lbfgs_multistart(
            self._objective(data, weights), start, n_starts=self.n_starts, rng=rng)
        if best is None:
            return None, False, ("optimiser returned non-finite values from every start: "
                                 + "; ".join(messages)), n_used, None
        theta = np.asarray(best.x, dtype=np.float64)
        if has_hessian and ok:
            found = _optimize.newton(fh, theta, step_tol=step_tol)
            if found is not None:
                return found[0], True, found[2], n_used, found[1]
        return theta, ok, str(best.message), n_used, None

    def _log_bounds(self) -> list[tuple[float, float]] | None:
        """Bounds on the log-parameters tighter than the optimiser's, or None (the default)."""
        return None

    def _minimize_within(self, data: Any, weights: np.ndarray, theta: np.ndarray, rng,
                         bounds: list[tuple[float, float]]) -> tuple:
        """The optimum within ``bounds`` when the unconstrained one lies outside: L-BFGS-B from
        the unconstrained optimum moved inside (standard errors then by differences)."""
        start = np.clip(theta, [lo for lo, _ in bounds], [hi for _, hi in bounds])
        best, ok, messages, n_used = _optimize.lbfgs_multistart(
            self._objective(data, weights), start, n_starts=self.n_starts, rng=rng, bounds=bounds)
        if best is None:
            return None, False, "bounded optimiser returned non-finite values: " + "; ".join(messages), n_used, None
        held = [n for n, v, (lo, hi) in zip(self.param_names, best.x, bounds, strict=True)
                if np.isclose(v, lo) or np.isclose(v, hi)]
        note = f"; {', '.join(held)} held at the bound" if held else ""
        return np.asarray(best.x, dtype=np.float64), ok, str(best.message) + note, n_used, None

    def _fit_compressed(self, columns: tuple[np.ndarray, ...], weights: np.ndarray) -> BaseModel:
        """Fit on compressed rows (output of :func:`compress`) and set all fitted attributes."""
        columns = tuple(np.asarray(c, dtype=np.float64) for c in columns)
        weights = np.asarray(weights, dtype=np.float64)
        total = float(weights.sum()) if weights.size else 0.0
        if total <= 0:
            raise ValueError("no data to fit (empty input or all weights zero)")
        check_settings(self.penalizer, self.penalizer_kind)
        self._set_penalty_scale(columns)
        pending_fingerprint = _persist.fingerprint_later(columns, weights)
        data = self._prepare(columns, weights)
        rng = np.random.default_rng(self.random_state)
        bound = _optimize.LOG_PARAM_BOUND
        start = np.clip(np.asarray(self._initial_log_params(columns, weights), dtype=np.float64),
                        -bound + 1, bound - 1)
        if self._subsample_start and total > SUBSAMPLE_MIN_CUSTOMERS:
            rows, counts = subsample_rows(weights, SUBSAMPLE_CUSTOMERS, rng)
            if rows.size > 2 * start.size:
                sub_cols = tuple(c[rows] for c in columns)
                sub_w = counts.astype(np.float64)
                theta, ok, _, _, _ = self._minimize(
                    self._prepare(sub_cols, sub_w), sub_w, start, rng,
                    step_tol=_optimize.START_STEP_TOL)
                if ok:
                    start = np.clip(theta, -bound + 1, bound - 1)
        theta, ok, message, n_used, raw = self._minimize(data, weights, start, rng)
        bounds = self._log_bounds()
        if theta is not None and bounds is not None and any(
                not lo <= v <= hi for v, (lo, hi) in zip(theta, bounds, strict=True)):
            theta, ok, message, n_used, raw = self._minimize_within(data, weights, theta, rng, bounds)
        if theta is None:
            self._set_failed(columns, weights, message, n_used, pending_fingerprint())
            return self
        at_bound = np.abs(theta) >= bound - 1e-6
        if np.any(at_bound):
            ok = False
            names = [n for n, b in zip(self.param_names, at_bound, strict=True) if b]
            message += f"; log-parameter at bound +/-{bound} for {names}"
        self._set_results(theta, columns, data, weights, ok, message, n_used, raw,
                          fingerprint=pending_fingerprint())
        if not ok:
            if self.strict:
                raise ConvergenceError(message)
            warnings.warn(f"{type(self).__name__} did not converge: {message}",
                          ConvergenceWarning, stacklevel=3)
        return self

    def _set_common(self, columns, weights, n_used: int, fingerprint: str | None = None) -> None:
        total = float(weights.sum())
        self.n_customers_ = round(total) if all_integral(weights) else total
        self.n_rows_ = int(weights.size)
        self.n_starts_used_ = n_used
        self.data_fingerprint_ = fingerprint or _persist.fingerprint(columns, weights)

    def _set_failed(self, columns, weights, message: str, n_used: int,
                    fingerprint: str | None = None) -> None:
        self._set_common(columns, weights, n_used, fingerprint)
        nan = float("nan")
        self.params_ = dict.fromkeys(self.param_names, nan)
        self.std_errors_ = dict.fromkeys(self.param_names, nan)
        k = len(self.param_names)
        self.covariance_ = np.full((k, k), nan)
        self.covariance_ok_ = False
        self.log_likelihood_ = nan
        self.converged_ = False
        self.convergence_message_ = message
        if self.strict:
            raise ConvergenceError(message)
        warnings.warn(f"{type(self).__name__} did not converge: {message}",
                      ConvergenceWarning, stacklevel=4)

    def _set_results(self, theta, columns, data, weights, ok: bool, message: str,
                     n_used: int, raw=None, *, fingerprint: str | None = None) -> None:
        """``raw``: (nll, grad, hess) in log-parameters at ``theta`` (sum scale), if known."""
        self._set_common(columns, weights, n_used, fingerprint)
        params = np.exp(theta)
        if raw is None:
            with np.errstate(all="ignore"):
                nll, _ = self._negative_log_likelihood(theta, data, weights)
            hess = self._natural_hessian(params, data, weights)
        else:
            nll, grad, hess_log = raw
            n_total = float(weights.sum())
            _, p_grad, p_hess = self._penalty(theta)
            grad = np.asarray(grad) + n_total * p_grad
            hess_log = np.asarray(hess_log) + n_total * np.diag(p_hess)
            hess = (hess_log - np.diag(grad)) / np.outer(params, params)
            hess = 0.5 * (hess + hess.T)
        self.params_ = {n: float(p) for n, p in zip(self.param_names, params, strict=True)}
        self.log_likelihood_ = float(-nll)
        self.converged_ = bool(ok)
        self.convergence_message_ = message
        cov, cov_ok = _optimize.invert_information(hess)
        self.covariance_ = cov
        self.covariance_ok_ = cov_ok
        se = np.sqrt(np.diag(cov)) if cov_ok else np.full(len(params), np.nan)
        self.std_errors_ = {n: float(s) for n, s in zip(self.param_names, se, strict=True)}

    def _natural_hessian(self, params: np.ndarray, data, weights) -> np.ndarray:
        """Hessian of the penalised NLL (sum scale) in natural parameters, central differences."""
        f = self._objective(data, weights)
        n_total = float(weights.sum())

        def grad_natural(p: np.ndarray) -> np.ndarray:
            _, g = f(np.log(p))
            return g * n_total / p  # d/dp = (d/dlog p) / p

        k = params.size
        hess = np.empty((k, k))
        for j in range(k):
            h = HESSIAN_REL_STEP * params[j]
            up, down = params.copy(), params.copy()
            up[j] += h
            down[j] -= h
            hess[:, j] = (grad_natural(up) - grad_natural(down)) / (2.0 * h)
        return 0.5 * (hess + hess.T)

    # ----------------------------------------------------------------- helpers for predictions
    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() or from_params() first")

    def _params(self) -> tuple[float, ...]:
        """Fitted parameters as floats in ``param_names`` order."""
        self._check_fitted()
        return tuple(self.params_[n] for n in self.param_names)

    def log_covariance(self) -> np.ndarray:
        """Covariance of the log-parameters (delta method: diag(1/p) covariance_ diag(1/p))."""
        self._check_fitted()
        p = np.asarray(self._params())
        return self.covariance_ / np.outer(p, p)

    def sample_params(self, n_draws: int, *, random_state: Any = None) -> np.ndarray:
        """Draw parameters from the asymptotic normal of the log-parameters.

        Returns an ``(n_draws, k)`` array of natural parameters (order ``param_names``):
        ``exp(theta_hat + L z)`` with ``L L^T`` the log-parameter covariance and ``z`` standard
        normal. Raises ValueError when the covariance is unavailable.
        """
        self._check_fitted()
        if not getattr(self, "covariance_ok_", False):
            raise ValueError("covariance is not available (Hessian not positive definite)")
        rng = np.random.default_rng(random_state)
        theta = np.log(np.asarray(self._params()))
        chol = np.linalg.cholesky(self.log_covariance())
        z = rng.standard_normal((int(n_draws), theta.size))
        return np.exp(theta + z @ chol.T)

    def __repr__(self) -> str:
        if hasattr(self, "params_"):
            inner = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
            return f"<{type(self).__name__}: {inner}>"
        return f"<{type(self).__name__} (not fitted), penalizer={self.penalizer}>"

