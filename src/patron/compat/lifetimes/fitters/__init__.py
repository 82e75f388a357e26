"""lifetimes' fitters as adapters over patron's models (:mod:`patron.value.models`).

Each ``*Fitter`` holds a fitted native model in ``_model`` and presents it the lifetimes way:
``params_`` a pandas Series, ``data`` the fitted data, ``summary``, ``variance_matrix_``,
``standard_errors_``, ``confidence_intervals_``, ``predict``, ``generate_new_data``,
``save_model``/``load_model``. Fits use lifetimes' penalty (``penalizer_kind="lifetimes"``, times
scaled by ``1 / max(T)`` as lifetimes does), so a ``penalizer_coef`` means what it meant there.
The optimiser is patron's (exact likelihood and gradients, Newton steps to the optimum): the
optimiser options lifetimes passed to scipy (``initial_params``, ``tol``, ``verbose``,
``iterative_fitting``, ``fit_method``, ``maxiter``, other keyword arguments) are accepted and
have no effect. A fit that does not converge raises :class:`patron.compat.lifetimes.utils.ConvergenceError`,
a ``ValueError`` as in lifetimes.

Differences from lifetimes 0.11.3, where it had a bug (docs/migrating-from-lifetimes.md lists
them all): ``variance_matrix_`` is the delta-method covariance diag(p) H^-1 diag(p) (lifetimes
multiplied H^-1 by p_j^2 column-wise, a wrong off-diagonal); intervals use the normal quantile
1.959964, not 1.96; the Pareto/NBD fitter has standard errors too.
"""

from __future__ import annotations

import pickle
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import stats

from patron.value.models import BaseModel
from patron.value.models import ConvergenceError as NativeConvergenceError

__all__ = ["BaseFitter"]

Z_95 = float(stats.norm.ppf(0.975))
"""Normal quantile of the 95% intervals of ``confidence_intervals_`` (lifetimes used 1.96)."""


def _as_array(value: Any, dtype: Any = np.float64) -> np.ndarray:
    return np.asarray(value, dtype=dtype)


def like_input(out: Any) -> Any:
    """A 0-d result as a NumPy scalar (lifetimes returned scalars for scalar inputs)."""
    if isinstance(out, np.ndarray) and out.ndim == 0:
        return out[()]
    return out


class DataGenerator:
    """``generate_new_data(size=1)`` of a fitted fitter: draws from the fitted model with the
    fitted customers' observation lengths (a picklable callable, where lifetimes used a lambda)."""

    def __init__(self, function: Any, lengths: np.ndarray, params: tuple[float, ...]):
        self.function = function
        self.lengths = lengths
        self.params = params

    def __call__(self, size: int = 1) -> pd.DataFrame:
        lengths = np.resize(self.lengths, int(size)) if len(self.lengths) else self.lengths
        return self.function(lengths, *self.params, size=int(size))


class BaseFitter:
    """Base class of the lifetimes fitters (``repr``, ``_unload_params``, ``summary``,
    ``save_model``/``load_model``)."""

    _native: ClassVar[type[BaseModel] | None] = None
    _params_order: ClassVar[tuple[str, ...]] = ()

    def __repr__(self) -> str:
        name = type(self).__name__
        try:
            subjects = f" fitted with {self.data.shape[0]:d} subjects,"
        except AttributeError:
            subjects = ""
        try:
            params = ", ".join(f"{k}: {v:.2f}" for k, v in sorted(self.params_.items()))
        except AttributeError:
            return f"<lifetimes.{name}>"
        return f"<lifetimes.{name}:{subjects} {params}>"

    def _unload_params(self, *args: str) -> list[float]:
        if not hasattr(self, "params_"):
            raise ValueError("the model is not fitted: call fit() first (or set params_)")
        return [self.params_[x] for x in args]

    @property
    def _model(self) -> BaseModel:
        """The native model with this fitter's parameters (fitted, or from ``params_`` set by hand)."""
        params = dict(zip(self._params_order, self._unload_params(*self._params_order), strict=True))
        cached = self.__dict__.get("_native_model")
        if cached is not None and cached.params_ == params:
            return cached
        assert self._native is not None
        model = self._native.from_params(params)
        self.__dict__["_native_model"] = model
        return model

    # ------------------------------------------------------------------ fitting
    def _fit_native(self, columns: tuple[Any, ...], weights: Any, *, penalizer: float,
                    index: Any, names: tuple[str, ...], **settings: Any) -> BaseModel:
        """Fit the native model with lifetimes' penalty and set lifetimes' attributes."""
        assert self._native is not None
        model = self._native(penalizer, penalizer_kind="lifetimes", strict=True, **settings)
        w = None if weights is None else _as_array(weights)
        try:
            model.fit(*columns, weights=w)
        except NativeConvergenceError as exc:
            from ..utils import ConvergenceError

            raise ConvergenceError(
                f"The model did not converge ({exc.message}). Try adding a larger penalizer "
                "to see if that helps convergence.") from None
        self.__dict__["_native_model"] = model
        self.params_ = pd.Series(model.params_, dtype=np.float64)[list(self._params_order)]
        n = len(columns[0])
        weights_out = np.ones(n, dtype=np.int64) if weights is None else np.asarray(weights)
        self.data = pd.DataFrame({**dict(zip(names, columns, strict=True)), "weights": weights_out},
                                 index=index)
        self._set_uncertainty(model)
        return model

    def _set_uncertainty(self, model: BaseModel) -> None:
        names = list(self._params_order)
        order = [model.param_names.index(n) for n in names]
        cov = np.asarray(model.covariance_)[np.ix_(order, order)]
        self.variance_matrix_ = pd.DataFrame(cov, index=names, columns=names)
        self.standard_errors_ = pd.Series(np.sqrt(np.diag(cov)), index=names)
        self.confidence_intervals_ = pd.DataFrame(
            {"lower 95% bound": self.params_ - Z_95 * self.standard_errors_,
             "upper 95% bound": self.params_ + Z_95 * self.standard_errors_},
            index=names)
        total = float(np.sum(self.data["weights"]))
        penalty = float(model._penalty(np.log(model._params()))[0])
        self._negative_log_likelihood_ = -model.log_likelihood_ / total + penalty
        log_cov = model.log_covariance()
        self._hessian_ = (np.linalg.inv(log_cov[np.ix_(order, order)]) / total
                          if np.all(np.isfinite(log_cov)) else None)

    # ------------------------------------------------------------------ lifetimes' API
    @property
    def summary(self) -> pd.DataFrame:
        """Parameters with ``coef``, ``se(coef)`` and the 95% interval bounds."""
        df = pd.DataFrame(index=self.params_.index)
        df["coef"] = self.params_
        df["se(coef)"] = self.standard_errors_
        df["lower 95% bound"] = self.confidence_intervals_["lower 95% bound"]
        df["upper 95% bound"] = self.confidence_intervals_["upper 95% bound"]
        return df

    def save_model(self, path: str, save_data: bool = True, save_generate_data_method: bool = True,
                   values_to_save: list[Any] | None = None) -> None:
        """Pickle the fitter to ``path`` (lifetimes used dill; plain pickle suffices here, as
        nothing fitted is a lambda). ``save_data=False`` / ``save_generate_data_method=False``
        store ``values_to_save`` (default None) in place of ``data`` / ``generate_new_data``."""
        left_out = [name for name, keep in (("data", save_data),
                                            ("generate_new_data", save_generate_data_method)) if not keep]
        fill = list(values_to_save or []) + [None] * len(left_out)
        state = dict(self.__dict__)
        for name, value in zip(left_out, fill, strict=False):
            if name in state:
                state[name] = value
        state.pop("_native_model", None)
        clone = object.__new__(type(self))
        clone.__dict__.update(state)
        if "predict" in state:  # a method bound to this instance: rebind to the copy
            clone.predict = getattr(clone, state["predict"].__name__)
        with open(path, "wb") as out:
            pickle.dump(clone, out)

    def load_model(self, path: str) -> None:
        """Load a fitter written by :meth:`save_model` into this one."""
        with open(path, "rb") as source:
            loaded = pickle.load(source)
        self.__dict__.update(loaded.__dict__)
        if "predict" in loaded.__dict__:
            self.predict = getattr(self, loaded.__dict__["predict"].__name__)
