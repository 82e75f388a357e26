"""Shared base for patron's customer-base models: one optimiser, compression, save/load.

Interface for model authors (kept small and stable)
----------------------------------------------------
A model subclasses :class:`BaseModel` and defines:

``name``  (class attribute, str)
    CLI / registry name, e.g. ``"bgnbd"``. Also written to JSON and used by :meth:`BaseModel.load`.
``param_names``  (class attribute, tuple of str)
    Literature names in a fixed order, e.g. ``("r", "alpha", "a", "b")``.
``_negative_log_likelihood(log_params, columns, weights)``  (staticmethod)
    ``log_params``: 1-D array of log-parameters (order of ``param_names``); ``columns``: tuple of the
    1-D arrays returned by :func:`compress`; ``weights``: 1-D float array (same length). Returns
    ``(nll, grad)``: the weighted *sum* of negative log-likelihoods (float) and its exact gradient
    with respect to ``log_params`` (1-D array). No penalty, no scaling: the base adds those.
``_prepare(columns, weights)``  (method, optional)
    Precompute whatever the likelihood needs once per fit (unique values, per-value weight sums);
    its return value is what ``_negative_log_likelihood`` receives as ``columns``. Default: the
    compressed columns unchanged.
``_initial_log_params(columns, weights)``  (method)
    A sensible first start (1-D array of log-parameters); ``zeros`` is acceptable.
``fit(...)``
    Validates the model's own data, calls ``columns, weights = compress(*data, weights=weights)``,
    then ``return self._fit_compressed(columns, weights)``.

The base then sets, after ``fit``: ``params_`` (dict name -> float), ``std_errors_`` (dict),
``covariance_`` (k x k array, natural parameters, order ``param_names``), ``log_likelihood_``
(unpenalised, float), ``n_customers_`` (sum of weights; int when the weights are integral),
``n_rows_`` (distinct rows fitted), ``converged_``, ``convergence_message_``, ``n_starts_used_``,
``data_fingerprint_``. Helpers for predictions: ``self._params()`` (tuple of floats in
``param_names`` order, raises if not fitted) and :meth:`sample_params` (parametric bootstrap draws).

Transaction models used by :mod:`patron.models.clv` also provide a staticmethod
``_conditional_expected_purchases_fn(t, *data_columns, *params)`` that broadcasts over array-valued
params (shape ``(n_draws, 1)`` against data of shape ``(1, n_customers)``).

Optimisation
------------
Minimises ``f(theta) = -LL(theta) / N + penalizer * sum(theta**2)`` over ``theta = log(params)``
(``N`` = sum of weights; the penalty is lifetimes' L2 penaliser on log-parameters) with
``scipy.optimize.minimize(method="L-BFGS-B")`` and the model's analytic gradient, bounded to
``|theta| <= LOG_PARAM_BOUND``. If the first start fails (optimiser reports failure or a non-finite
value) further starts are drawn around it with a seeded generator (``random_state``); the best finite
result wins. ``converged_`` is True when scipy reports success, or when it stops with a projected
gradient below ``GRADIENT_TOLERANCE_ACCEPT`` (L-BFGS-B sometimes ends on a line-search precision
warning at the optimum). ``strict=True`` raises :class:`ConvergenceError` instead of warning.

Standard errors
---------------
Observed information: the Hessian of ``N * f`` (the penalised negative log-likelihood; with
``penalizer=0`` exactly the NLL) with respect to the *natural* parameters at the optimum, computed by
central finite differences of the analytic gradient (step ``HESSIAN_REL_STEP * param``) and
symmetrised. ``covariance_`` is its inverse; if it is not positive definite the covariance and
standard errors are NaN and ``covariance_ok_`` is False.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from scipy import optimize

__all__ = [
    "BaseModel",
    "ConvergenceError",
    "ConvergenceWarning",
    "check_frequency_recency_T",
    "compress",
    "unique_rows",
]

LOG_PARAM_BOUND = 30.0
"""Box bound on every log-parameter during optimisation (params within [e^-30, e^30])."""

DEFAULT_N_STARTS = 8
"""Maximum number of optimiser starts (the first plus seeded perturbations)."""

START_PERTURBATION_SD = 1.0
"""Standard deviation (log scale) of the perturbation applied to the first start for restarts."""

GRADIENT_TOLERANCE_ACCEPT = 1e-5
"""Max |gradient| of the per-customer objective accepted as converged after a non-success stop."""

HESSIAN_REL_STEP = 1e-4
"""Relative step for central differences of the gradient (natural-parameter Hessian)."""

_OPTIMIZER_OPTIONS = {"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-9, "maxcor": 20}

JSON_FORMAT_VERSION = 1
"""Version of the JSON layout written by :meth:`BaseModel.to_json`."""

_REGISTRY: dict[str, type[BaseModel]] = {}


class ConvergenceError(RuntimeError):
    """The optimiser did not converge; ``message`` holds what it reported."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class ConvergenceWarning(UserWarning):
    """Warning issued (instead of :class:`ConvergenceError`) when ``strict=False``."""


def _patron_version() -> str:
    try:
        return metadata.version("patron")
    except metadata.PackageNotFoundError:  # pragma: no cover - source checkout without install
        return "unknown"


def compress(
    *columns: Any, weights: Any = None
) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Collapse identical rows into unique rows with summed weights.

    Parameters
    ----------
    *columns : 1-D array-likes of equal length (the sufficient statistics, e.g. x, t_x, T).
    weights : 1-D array-like, optional. Non-negative frequency weights (default 1 per row).
        Rows with weight 0 are dropped.

    Returns
    -------
    (unique_columns, summed_weights): unique rows sorted lexicographically (first column is the
    primary key), each column keeping its dtype, and float64 weights. The result does not depend on
    the order of the input rows.
    """
    if not columns:
        raise ValueError("compress needs at least one column")
    cols = [np.asarray(c).ravel() for c in columns]
    n = cols[0].shape[0]
    if any(c.shape[0] != n for c in cols):
        raise ValueError("all columns must have the same length")
    if weights is None:
        w = np.ones(n, dtype=np.float64)
    else:
        w = np.asarray(weights, dtype=np.float64).ravel()
        if w.shape[0] != n:
            raise ValueError("weights must have the same length as the columns")
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError("weights must be finite and non-negative")
        keep = w > 0
        if not np.all(keep):
            cols = [c[keep] for c in cols]
            w = w[keep]
            n = w.shape[0]
    if n == 0:
        return tuple(c[:0] for c in cols), w[:0]
    order = np.lexsort(cols[::-1])
    sorted_cols = [c[order] for c in cols]
    new_group = np.zeros(n, dtype=bool)
    new_group[0] = True
    for c in sorted_cols:
        new_group[1:] |= c[1:] != c[:-1]
    starts = np.flatnonzero(new_group)
    summed = np.add.reduceat(w[order], starts)
    return tuple(c[starts] for c in sorted_cols), summed


def unique_rows(*columns: Any) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Unique rows of equal-length 1-D columns and the inverse index.

    Returns ``(unique_columns, inverse)`` with ``unique_columns[j][inverse] == columns[j]``; used by
    predictions to evaluate expensive terms once per distinct value combination.
    """
    cols = [np.asarray(c).ravel() for c in columns]
    n = cols[0].shape[0]
    if n == 0:
        return tuple(cols), np.zeros(0, dtype=np.intp)
    order = np.lexsort(cols[::-1])
    sorted_cols = [c[order] for c in cols]
    new_group = np.zeros(n, dtype=bool)
    new_group[0] = True
    for c in sorted_cols:
        new_group[1:] |= c[1:] != c[:-1]
    group_id = np.cumsum(new_group) - 1
    inverse = np.empty(n, dtype=np.intp)
    inverse[order] = group_id
    starts = np.flatnonzero(new_group)
    return tuple(c[starts] for c in sorted_cols), inverse


def check_frequency_recency_T(
    frequency: Any, recency: Any, T: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate and convert (x, t_x, T) for continuous-time models.

    Requires equal-length 1-D finite arrays with x a non-negative integer, ``0 <= t_x <= T``,
    ``T > 0`` and ``t_x == 0`` whenever ``x == 0``. Returns float64 copies (x as float64 too).
    """
    x = np.asarray(frequency, dtype=np.float64).ravel()
    tx = np.asarray(recency, dtype=np.float64).ravel()
    T_ = np.asarray(T, dtype=np.float64).ravel()
    if not (x.shape == tx.shape == T_.shape):
        raise ValueError("frequency, recency and T must have the same length")
    for name, arr in (("frequency", x), ("recency", tx), ("T", T_)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or infinite values")
    if np.any(x < 0) or np.any(x != np.round(x)):
        raise ValueError("frequency must be a non-negative integer")
    if np.any(T_ <= 0):
        raise ValueError("T must be positive")
    if np.any(tx < 0) or np.any(tx > T_):
        raise ValueError("recency must satisfy 0 <= recency <= T")
    if np.any((x == 0) & (tx != 0)):
        raise ValueError("recency must be 0 when frequency is 0")
    return x, tx, T_


def _fingerprint(columns: Sequence[np.ndarray], weights: np.ndarray) -> str:
    h = hashlib.sha256()
    for c in (*columns, weights):
        h.update(np.ascontiguousarray(c, dtype=np.float64).tobytes())
    return h.hexdigest()


def _finite_or_none(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def _none_to_nan(v: Any) -> float:
    return float("nan") if v is None else float(v)


class BaseModel:
    """Base class: maximum likelihood fit in log-parameter space, standard errors, JSON I/O.

    Parameters
    ----------
    penalizer : float, default 0
        L2 penalty on the log-parameters, added to the mean negative log-likelihood (as lifetimes).
    strict : bool, default False
        Raise :class:`ConvergenceError` when the optimiser does not converge (else warn).
    n_starts : int
        Maximum number of optimiser starts.
    random_state : int
        Seed for the restart perturbations.
    """

    name: ClassVar[str] = ""
    param_names: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            _REGISTRY[cls.name] = cls

    def __init__(
        self,
        penalizer: float = 0.0,
        *,
        strict: bool = False,
        n_starts: int = DEFAULT_N_STARTS,
        random_state: int = 0,
    ):
        self.penalizer = penalizer
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

    def _initial_log_params(
        self, columns: tuple[np.ndarray, ...], weights: np.ndarray
    ) -> np.ndarray:
        return np.zeros(len(self.param_names))

    # ----------------------------------------------------------------- fitting
    def _objective(
        self, columns: tuple[np.ndarray, ...], weights: np.ndarray
    ) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
        """Per-customer penalised objective f(theta) and its gradient (theta = log params)."""
        n_total = float(weights.sum())
        pen = float(self.penalizer)
        nll_fn = self._negative_log_likelihood

        def f(theta: np.ndarray) -> tuple[float, np.ndarray]:
            with np.errstate(all="ignore"):
                nll, grad = nll_fn(theta, columns, weights)
            value = nll / n_total + pen * float(theta @ theta)
            g = np.asarray(grad, dtype=np.float64) / n_total + 2.0 * pen * theta
            if not (np.isfinite(value) and np.all(np.isfinite(g))):
                return np.inf, np.zeros_like(theta)
            return value, g

        return f

    def _fit_compressed(self, columns: tuple[np.ndarray, ...], weights: np.ndarray) -> BaseModel:
        """Fit on compressed rows (output of :func:`compress`) and set all fitted attributes."""
        columns = tuple(np.asarray(c, dtype=np.float64) for c in columns)
        weights = np.asarray(weights, dtype=np.float64)
        if weights.size == 0 or weights.sum() <= 0:
            raise ValueError("no data to fit (empty input or all weights zero)")
        data = self._prepare(columns, weights)
        f = self._objective(data, weights)
        k = len(self.param_names)
        bounds = [(-LOG_PARAM_BOUND, LOG_PARAM_BOUND)] * k
        rng = np.random.default_rng(self.random_state)
        first = np.clip(np.asarray(self._initial_log_params(columns, weights), dtype=np.float64),
                        -LOG_PARAM_BOUND + 1, LOG_PARAM_BOUND - 1)
        best = None
        best_ok = False
        messages = []
        n_used = 0
        for i in range(max(1, int(self.n_starts))):
            x0 = first if i == 0 else np.clip(
                first + rng.normal(0.0, START_PERTURBATION_SD, k),
                -LOG_PARAM_BOUND + 1, LOG_PARAM_BOUND - 1)
            n_used += 1
            res = optimize.minimize(f, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                                    options=_OPTIMIZER_OPTIONS)
            finite = bool(np.isfinite(res.fun))
            ok = finite and (bool(res.success) or
                             float(np.max(np.abs(res.jac))) < GRADIENT_TOLERANCE_ACCEPT)
            messages.append(str(res.message))
            if finite and (best is None or (ok and not best_ok) or
                           (ok == best_ok and res.fun < best.fun)):
                best, best_ok = res, ok
            if ok:
                break
        if best is None:
            msg = "optimiser returned non-finite values from every start: " + "; ".join(messages)
            self._set_failed(columns, weights, msg, n_used)
            return self
        theta = np.asarray(best.x, dtype=np.float64)
        at_bound = np.abs(theta) >= LOG_PARAM_BOUND - 1e-6
        message = str(best.message)
        if np.any(at_bound):
            best_ok = False
            names = [n for n, b in zip(self.param_names, at_bound, strict=True) if b]
            message += f"; log-parameter at bound +/-{LOG_PARAM_BOUND} for {names}"
        self._set_results(theta, columns, data, weights, best_ok, message, n_used)
        if not best_ok:
            if self.strict:
                raise ConvergenceError(message)
            warnings.warn(f"{type(self).__name__} did not converge: {message}",
                          ConvergenceWarning, stacklevel=3)
        return self

    def _set_common(self, columns, weights, n_used: int) -> None:
        total = float(weights.sum())
        self.n_customers_ = int(round(total)) if np.all(weights == np.round(weights)) else total
        self.n_rows_ = int(weights.size)
        self.n_starts_used_ = n_used
        self.data_fingerprint_ = _fingerprint(columns, weights)

    def _set_failed(self, columns, weights, message: str, n_used: int) -> None:
        self._set_common(columns, weights, n_used)
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
                     n_used: int) -> None:
        self._set_common(columns, weights, n_used)
        params = np.exp(theta)
        with np.errstate(all="ignore"):
            nll, _ = self._negative_log_likelihood(theta, data, weights)
        self.params_ = {n: float(p) for n, p in zip(self.param_names, params, strict=True)}
        self.log_likelihood_ = float(-nll)
        self.converged_ = bool(ok)
        self.convergence_message_ = message
        hess = self._natural_hessian(params, data, weights)
        cov, cov_ok = _invert_information(hess)
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
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit() first")

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

    # ----------------------------------------------------------------- save / load
    def to_dict(self) -> dict[str, Any]:
        """Fitted state as a JSON-ready dict (NaN written as null)."""
        self._check_fitted()
        return {
            "format_version": JSON_FORMAT_VERSION,
            "model": self.name,
            "class": type(self).__name__,
            "patron_version": _patron_version(),
            "settings": {"penalizer": self.penalizer, "strict": self.strict,
                         "n_starts": self.n_starts, "random_state": self.random_state},
            "params": {k: _finite_or_none(v) for k, v in self.params_.items()},
            "std_errors": {k: _finite_or_none(v) for k, v in self.std_errors_.items()},
            "covariance": [[_finite_or_none(v) for v in row] for row in self.covariance_],
            "log_likelihood": _finite_or_none(self.log_likelihood_),
            "n_customers": self.n_customers_,
            "n_rows": self.n_rows_,
            "converged": self.converged_,
            "convergence_message": self.convergence_message_,
            "data_fingerprint": self.data_fingerprint_,
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """Serialise the fitted model as JSON text (see :meth:`to_dict`)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_json` to ``path`` (UTF-8)."""
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BaseModel:
        """Rebuild a fitted model from :meth:`to_dict` output.

        Called on :class:`BaseModel` it dispatches on ``data["model"]``; called on a subclass it
        checks the name matches.
        """
        name = data.get("model")
        target = _REGISTRY.get(name) if cls is BaseModel else cls
        if target is None or target.name != name:
            raise ValueError(f"JSON holds model {name!r}, cannot load it as {cls.__name__}")
        settings = data.get("settings", {})
        model = target(**settings)
        model.params_ = {k: _none_to_nan(v) for k, v in data["params"].items()}
        if tuple(model.params_) != target.param_names:
            raise ValueError(f"parameter names {tuple(model.params_)} != {target.param_names}")
        model.std_errors_ = {k: _none_to_nan(v) for k, v in data["std_errors"].items()}
        model.covariance_ = np.array([[_none_to_nan(v) for v in row]
                                      for row in data["covariance"]], dtype=np.float64)
        model.covariance_ok_ = bool(np.all(np.isfinite(model.covariance_)))
        model.log_likelihood_ = _none_to_nan(data["log_likelihood"])
        model.n_customers_ = data["n_customers"]
        model.n_rows_ = data.get("n_rows")
        model.converged_ = bool(data["converged"])
        model.convergence_message_ = data.get("convergence_message", "")
        model.data_fingerprint_ = data.get("data_fingerprint")
        model.n_starts_used_ = None
        return model

    @classmethod
    def from_json(cls, text: str) -> BaseModel:
        """Rebuild a fitted model from :meth:`to_json` text."""
        return cls.from_dict(json.loads(text))

    @classmethod
    def load(cls, path: str | Path) -> BaseModel:
        """Read a model written by :meth:`save`."""
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    def __repr__(self) -> str:
        if hasattr(self, "params_"):
            inner = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
            return f"<{type(self).__name__}: {inner}>"
        return f"<{type(self).__name__} (not fitted), penalizer={self.penalizer}>"


def _invert_information(hess: np.ndarray) -> tuple[np.ndarray, bool]:
    """Invert an observed information matrix; NaN matrix if it is not positive definite."""
    k = hess.shape[0]
    if not np.all(np.isfinite(hess)):
        return np.full((k, k), np.nan), False
    try:
        chol = np.linalg.cholesky(hess)
    except np.linalg.LinAlgError:
        return np.full((k, k), np.nan), False
    inv_chol = np.linalg.solve(chol, np.eye(k))
    cov = inv_chol.T @ inv_chol
    return 0.5 * (cov + cov.T), True
