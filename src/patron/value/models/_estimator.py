"""The scikit-learn estimator contract of patron's models, the penalty choices, models built from
known parameters, and pandas-in, pandas-out predictions.

scikit-learn is not imported here (it costs seconds at start-up): the contract is the duck-typed
one ``sklearn.base.clone`` relies on. ``get_params`` reads the constructor's signature, so a
subclass that adds a constructor argument must store it under the same name; ``set_params``
sets them back. :class:`NotFittedError` has the bases of scikit-learn's (``ValueError`` and
``AttributeError``), so code that catches either, or scikit-learn's ``check_is_fitted`` idiom of
``hasattr(model, "params_")``, works unchanged.

Penalty (``penalizer_kind``)
----------------------------
Both add ``penalizer * P(theta)`` to the mean negative log-likelihood (per customer), with
``theta`` the log-parameters:

``"log"`` (default): ``P = sum(theta ** 2)``, an L2 penalty on the log-parameters. It is a
    Gaussian prior on each log-parameter centred at 0, so it shrinks every parameter towards 1
    (never to the edge of the parameter space) and its curvature does not vanish as a parameter
    grows or shrinks: it is what makes a fit on a handful of customers converge.
``"lifetimes"``: ``P = sum((s_i * exp(theta_i)) ** 2)``, lifetimes 0.11.3's penalty: an L2
    penalty on the parameters themselves, which shrinks them towards 0. lifetimes fits the
    time-rate parameters (``alpha``, ``beta``) with times divided by the largest ``T``, so the
    penalty sees ``alpha / max(T)``: ``s_i = 1 / max(T)`` for those parameters and 1 for the others
    (:attr:`BaseModel._time_params`), and the same penalizer gives the same parameters as lifetimes.
    At 0.1 on the CDNOW summary BG/NBD gives a = 0.129, b = 0.267 (lifetimes' figures) where
    ``"log"`` gives a = 0.816, b = 1.188.

The default stays ``"log"``: models saved and CLI runs keep their meaning, and shrinking towards
1 keeps a penalised BG/NBD away from a, b near 0, where Beta(a, b) splits customers into those
who never drop out and those who drop out at their first repeat purchase. lifetimes users get lifetimes' penalty from
:mod:`patron.compat.lifetimes`, or here with ``penalizer_kind="lifetimes"``.
"""

from __future__ import annotations

import functools
import inspect
import math
import sys
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

__all__ = ["PENALIZER_KINDS", "NotFittedError", "keeps_index", "penalty_terms"]

PENALIZER_KINDS: dict[str, str] = {
    "log": "L2 on the log-parameters: sum(log(param)**2), shrinks towards 1 (patron's default)",
    "lifetimes": "L2 on the parameters, rates scaled by 1/max(T): shrinks towards 0 (lifetimes 0.11.3)",
}
"""The values of ``penalizer_kind`` and what each penalises."""


class NotFittedError(ValueError, AttributeError):
    """A prediction or an attribute that needs ``fit`` (or ``from_params``) first; the bases of
    scikit-learn's ``NotFittedError``."""


def penalty_terms(kind: str, penalizer: float, theta: np.ndarray,
                  scale: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Value, gradient and Hessian (diagonal, as a vector) of ``penalizer * P(theta)`` with
    respect to the log-parameters ``theta`` (see the module docstring for ``P``)."""
    if not penalizer:
        return 0.0, np.zeros_like(theta), np.zeros_like(theta)
    if kind == "log":
        return penalizer * float(theta @ theta), 2.0 * penalizer * theta, np.full_like(theta, 2.0 * penalizer)
    with np.errstate(over="ignore"):
        sq = (scale * np.exp(theta)) ** 2  # (s p)^2; d/dtheta = 2 (s p)^2
    return penalizer * float(sq.sum()), 2.0 * penalizer * sq, 4.0 * penalizer * sq


def check_settings(penalizer: Any, kind: Any) -> tuple[float, str]:
    """The penalizer as a float and its kind, or ``ValueError`` naming the bad one."""
    try:
        pen = float(penalizer)
    except (TypeError, ValueError):
        raise ValueError(f"penalizer must be a number >= 0; got {penalizer!r}") from None
    if not (math.isfinite(pen) and pen >= 0):
        raise ValueError(f"penalizer must be a number >= 0; got {penalizer!r}")
    if kind not in PENALIZER_KINDS:
        raise ValueError(f"penalizer_kind must be one of {', '.join(PENALIZER_KINDS)}; got {kind!r}")
    return pen, kind


class EstimatorMixin:
    """``get_params`` / ``set_params`` (scikit-learn's contract) and ``from_params``."""

    param_names: tuple[str, ...] = ()

    @classmethod
    def _init_arg_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values()
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor arguments as a dict (scikit-learn's ``get_params``; ``deep`` is accepted
        for compatibility: no argument is itself an estimator)."""
        return {name: getattr(self, name) for name in self._init_arg_names()}

    def set_params(self, **params: Any) -> Any:
        """Set constructor arguments (``ValueError`` for an unknown one); returns self."""
        valid = self._init_arg_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}; "
                                 f"valid parameters are {', '.join(valid)}")
            setattr(self, name, value)
        return self

    def __sklearn_is_fitted__(self) -> bool:
        """scikit-learn's fitted check: parameters are known (``fit`` or ``from_params``)."""
        return hasattr(self, "params_")

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's estimator tags (called only by scikit-learn, so importing it is free):
        an estimator that needs ``fit``, of no classifier or regressor kind."""
        from sklearn.utils import Tags, TargetTags

        return Tags(estimator_type=None, target_tags=TargetTags(required=False), requires_fit=True)

    @classmethod
    def _checked_params(cls, values: Mapping[str, Any]) -> np.ndarray:
        """The values of ``param_names`` from ``values`` as an array; ``ValueError`` naming a
        missing, unknown, non-numeric or non-positive one."""
        missing = [n for n in cls.param_names if n not in values]
        extra = [n for n in values if n not in cls.param_names]
        if missing or extra:
            raise ValueError(f"{cls.__name__} takes parameters {', '.join(cls.param_names)}; "
                             + (f"missing {', '.join(missing)}" if missing else f"unknown {', '.join(extra)}"))
        p = np.empty(len(cls.param_names))
        for i, name in enumerate(cls.param_names):
            try:
                p[i] = float(values[name])
            except (TypeError, ValueError):
                raise ValueError(f"parameter {name} must be a number; got {values[name]!r}") from None
            if not (math.isfinite(p[i]) and p[i] > 0):
                raise ValueError(f"parameter {name} must be finite and positive; got {values[name]!r}")
        return p

    @classmethod
    def from_params(cls, params: Mapping[str, float] | None = None, /, *,
                    covariance: Any = None, **named: float) -> Any:
        """A model with known parameters, ready for predictions (no data needed).

        ``params`` is a mapping (or give them by name: ``BetaGeo.from_params(r=0.243,
        alpha=4.414, a=0.793, b=2.426)``, FHL 2005's CDNOW estimates); every name of
        ``param_names``, each finite and positive. ``covariance``, optional, is their k x k
        covariance in natural parameters (order ``param_names``), for intervals and parameter
        draws; without it standard errors are NaN. ``log_likelihood_`` is NaN and
        ``n_customers_`` None (no data), ``converged_`` True.
        """
        p = cls._checked_params({**(params or {}), **named})
        model = cls()
        k = len(cls.param_names)
        model.params_ = {n: float(v) for n, v in zip(cls.param_names, p, strict=True)}
        model.covariance_ = cov = _checked_covariance(covariance, k, cls.param_names)
        model.covariance_ok_ = bool(np.all(np.isfinite(cov)))
        se = np.sqrt(np.diag(cov)) if model.covariance_ok_ else np.full(k, np.nan)
        model.std_errors_ = {n: float(s) for n, s in zip(cls.param_names, se, strict=True)}
        return _no_data_record(model)


def _no_data_record(model: Any) -> Any:
    """The fit record of a model built from known parameters (no data); returns the model."""
    model.log_likelihood_ = float("nan")
    model.n_customers_ = None
    model.n_rows_ = None
    model.converged_ = True
    model.convergence_message_ = "built from known parameters (from_params)"
    model.n_starts_used_ = 0
    model.data_fingerprint_ = None
    return model


def _checked_covariance(covariance: Any, k: int, names: Any) -> np.ndarray:
    """A k x k covariance as a float array (NaN when None); ``ValueError`` for another shape."""
    if covariance is None:
        return np.full((k, k), np.nan)
    cov = np.array(covariance, dtype=np.float64)
    if cov.shape != (k, k):
        raise ValueError(f"covariance must be {k} x {k} (order {', '.join(names)})")
    return cov


def _series_index(args: tuple, kwargs: dict) -> Any:
    """The index shared by the pandas Series among the arguments (None if there is none);
    ``ValueError`` when two Series are indexed differently (they would score mixed customers)."""
    pd = sys.modules.get("pandas")
    if pd is None:
        return None
    index = None
    for value in (*args, *kwargs.values()):
        if isinstance(value, pd.Series):
            if index is None:
                index = value.index
            elif not value.index.equals(index):
                raise ValueError("the pandas Series given are indexed differently: align them "
                                 "(or pass arrays) so that each row is one customer")
    return index


def keeps_index(method: Callable[..., Any]) -> Callable[..., Any]:
    """Make a prediction method return a pandas Series indexed like its Series inputs (a plain
    array otherwise): customers stay labelled by the index their data came with."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        index = _series_index(args, kwargs)
        out = method(self, *args, **kwargs)
        if index is not None and np.ndim(out) == 1 and len(out) == len(index):
            return sys.modules["pandas"].Series(np.asarray(out), index=index)
        return out

    return wrapper
