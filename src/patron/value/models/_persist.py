"""JSON save / load of fitted models (the layout behind :meth:`~patron.value.models.BaseModel.to_json` and friends).

Layout (``format_version`` 1): ``model`` (registry name), ``class``, ``patron_version``,
``settings`` (constructor arguments), ``params``, ``std_errors``, ``covariance`` (natural
parameters, order ``param_names``), ``log_likelihood``, ``n_customers``, ``n_rows``, ``converged``,
``convergence_message``, ``data_fingerprint``. Non-finite numbers are written as ``null``.
Models with more fitted state add top-level keys (:meth:`PersistMixin._extra_state`): the
covariate models ``covariates`` (names per process, coefficients, the free vector and its
covariance; :mod:`patron.value.models.covariates`), the time-varying one also ``period_length``.
One loader reads them all: ``BaseModel.load`` / ``from_json`` dispatch on ``model`` through
:data:`MODEL_REGISTRY`.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

JSON_FORMAT_VERSION = 1
"""Version of the JSON layout written by :func:`model_to_dict`."""

MODEL_REGISTRY: dict[str, type] = {}
"""Every model class with a ``name``, by name: what :meth:`PersistMixin.from_dict` dispatches on
(the models of :mod:`patron.value.models` and the covariate models alike)."""


def patron_version() -> str:
    """Installed patron version ("unknown" in a source checkout without install)."""
    try:
        return metadata.version("patron")
    except metadata.PackageNotFoundError:  # pragma: no cover - source checkout without install
        return "unknown"


def fingerprint(columns: Sequence[np.ndarray], weights: np.ndarray) -> str:
    """SHA-256 of the compressed data (columns and weights as float64 bytes)."""
    h = hashlib.sha256()
    for c in (*columns, weights):
        h.update(memoryview(np.ascontiguousarray(c, dtype=np.float64)).cast("B"))  # no copy
    return h.hexdigest()


def fingerprint_later(columns: Sequence[np.ndarray], weights: np.ndarray) -> Callable[[], str]:
    """:func:`fingerprint` computed on a second thread while the caller goes on (hashlib releases
    the GIL on large buffers, so on two cores the hash of a fit's data costs no wall time);
    returns the function that waits for the digest. The arrays must not change meanwhile."""
    result: list[str] = []
    thread = threading.Thread(target=lambda: result.append(fingerprint(columns, weights)),
                              name="patron-fingerprint", daemon=True)
    thread.start()

    def wait() -> str:
        thread.join()
        return result[0] if result else fingerprint(columns, weights)

    return wait


def _finite_or_none(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def _none_to_nan(v: Any) -> float:
    return float("nan") if v is None else float(v)


class FittedModel(Protocol):
    """What saving and loading read and set on a model (:class:`~patron.value.models.BaseModel`
    and the covariate models alike). Written as a protocol so that this module, which the model
    classes import, imports none of them (no import circle inside :mod:`patron.value.models`)."""

    name: ClassVar[str]
    param_names: ClassVar[tuple[str, ...]]
    params_: dict[str, float]
    std_errors_: dict[str, float]
    covariance_: np.ndarray
    covariance_ok_: bool
    log_likelihood_: float
    n_customers_: Any
    n_rows_: Any
    converged_: bool
    convergence_message_: str
    data_fingerprint_: str | None
    n_starts_used_: Any

    def get_params(self) -> dict[str, Any]: ...

    def _extra_state(self) -> dict[str, Any]: ...

    def _restore_extra_state(self, data: Mapping[str, Any]) -> None: ...


def model_to_dict(model: FittedModel) -> dict[str, Any]:
    """Fitted state of ``model`` as a JSON-ready dict (NaN written as null)."""
    return {
        "format_version": JSON_FORMAT_VERSION,
        "model": model.name,
        "class": type(model).__name__,
        "patron_version": patron_version(),
        "settings": model.get_params(),
        "params": {k: _finite_or_none(v) for k, v in model.params_.items()},
        "std_errors": {k: _finite_or_none(v) for k, v in model.std_errors_.items()},
        "covariance": [[_finite_or_none(v) for v in row] for row in model.covariance_],
        "log_likelihood": _finite_or_none(model.log_likelihood_),
        "n_customers": model.n_customers_,
        "n_rows": model.n_rows_,
        "converged": model.converged_,
        "convergence_message": model.convergence_message_,
        "data_fingerprint": model.data_fingerprint_,
        **model._extra_state(),
    }


def _upgrade(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """The current layout from that of the first covariate models (``"covariates": true``,
    ``theta`` and ``theta_covariance`` at the top level, no standard errors)."""
    if data.get("covariates") is not True:
        return data
    settings = data.get("settings", {})
    params = data.get("params", {})
    return {**data, "std_errors": dict.fromkeys(params), "covariance": [],
            "covariates": {"purchase": settings.get("purchase_covariates", []),
                           "dropout": settings.get("dropout_covariates", []),
                           "constrained": settings.get("constrained", []),
                           "theta": data["theta"], "theta_covariance": data["theta_covariance"]}}


def model_from_dict(cls: type[FittedModel], data: Mapping[str, Any],
                    registry: Mapping[str, type]) -> FittedModel:
    """Rebuild a fitted model; ``cls`` is the base class (dispatch on ``data["model"]`` through
    ``registry``) or a subclass (whose name must match)."""
    data = _upgrade(data)
    name = data.get("model")
    target = registry.get(name) if not cls.name else cls
    if target is None or target.name != name:
        raise ValueError(f"JSON holds model {name!r}, cannot load it as {cls.__name__}")
    model = target(**data.get("settings", {}))
    model.params_ = {k: _none_to_nan(v) for k, v in data["params"].items()}
    if tuple(model.params_) != target.param_names:
        raise ValueError(f"parameter names {tuple(model.params_)} != {target.param_names}")
    model.std_errors_ = {k: _none_to_nan(v) for k, v in data["std_errors"].items()}
    model.covariance_ = np.array([[_none_to_nan(v) for v in row] for row in data["covariance"]],
                                 dtype=np.float64)
    model.covariance_ok_ = bool(np.all(np.isfinite(model.covariance_)))
    model.log_likelihood_ = _none_to_nan(data["log_likelihood"])
    model.n_customers_ = data["n_customers"]
    model.n_rows_ = data.get("n_rows")
    model.converged_ = bool(data["converged"])
    model.convergence_message_ = data.get("convergence_message", "")
    model.data_fingerprint_ = data.get("data_fingerprint")
    model.n_starts_used_ = None
    model._restore_extra_state(data)
    return model


class PersistMixin:
    """JSON save / load of a fitted model (the methods of :class:`BaseModel` and of the
    covariate models); subclasses with a ``name`` are registered in :data:`MODEL_REGISTRY`."""

    name: str = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            MODEL_REGISTRY[cls.name] = cls

    def _extra_state(self) -> dict[str, Any]:
        """Fitted state beyond the common layout, as JSON-ready top-level keys (none here)."""
        return {}

    def _restore_extra_state(self, data: Mapping[str, Any]) -> None:
        """Restore what :meth:`_extra_state` wrote (nothing here)."""

    def to_dict(self) -> dict[str, Any]:
        """Fitted state as a JSON-ready dict (NaN written as null); see :mod:`._persist`."""
        self._check_fitted()  # type: ignore[attr-defined]
        return model_to_dict(self)  # type: ignore[arg-type]

    def to_json(self, *, indent: int | None = 2) -> str:
        """Serialise the fitted model as JSON text (see :meth:`to_dict`)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_json` to ``path`` (UTF-8), through :func:`patron.data.outputs.atomic_output`."""
        from patron.data.outputs import atomic_output

        text = self.to_json()
        with atomic_output(path) as target:
            target.write_text(text, encoding="utf-8")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        """Rebuild a fitted model from :meth:`to_dict` output.

        Called on :class:`BaseModel` it dispatches on ``data["model"]``; called on a subclass it
        checks the name matches.
        """
        return model_from_dict(cls, data, MODEL_REGISTRY)  # type: ignore[arg-type]

    @classmethod
    def from_json(cls, text: str) -> Any:
        """Rebuild a fitted model from :meth:`to_json` text."""
        return cls.from_dict(json.loads(text))

    @classmethod
    def load(cls, path: str | Path) -> Any:
        """Read a model written by :meth:`save`."""
        from patron.scope import note_file

        note_file(path)
        return cls.from_json(Path(path).read_text(encoding="utf-8"))
