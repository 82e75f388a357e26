"""Meta-learners for per-customer uplift (the effect of being contacted on the chance of buying),
built from scikit-learn estimators.

* **T-learner** (two models): ``mu1(x) = P(y=1 | x, treated)`` and ``mu0(x) = P(y=1 | x, control)``
  fitted separately; uplift ``tau(x) = mu1(x) - mu0(x)``.
* **X-learner** (Künzel et al. 2019, PNAS 116:4156): after the T-learner's ``mu0, mu1``, impute each
  customer's effect (treated: ``y - mu0(x)``; control: ``mu1(x) - y``), regress it on ``x`` within
  each arm (``tau1``, ``tau0``), and combine ``tau(x) = g tau0(x) + (1 - g) tau1(x)`` with ``g`` the
  propensity, here the share treated (a random holdout makes it constant).

Base models: ``gbm`` — histogram gradient boosting (scikit-learn's ``HistGradientBoosting*``,
which accepts missing values, e.g. no purchase yet) — or ``logistic`` — median imputation with
missing-value indicators, standardisation and a logistic (Ridge for the X-learner's second stage)
regression. Features are transformed with ``log1p`` (counts, days and money are skewed; the trees
are unaffected).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from threadpoolctl import threadpool_limits

from patron.extras import require

LEARNERS: tuple[str, ...] = ("t", "x")
"""Meta-learners: ``t`` (two models) and ``x`` (Künzel's X-learner)."""

BASES: tuple[str, ...] = ("gbm", "logistic")
"""Base models: histogram gradient boosting, or logistic regression."""

GBM_PARAMS: dict[str, Any] = {
    "max_iter": 300, "learning_rate": 0.05, "max_leaf_nodes": 8, "min_samples_leaf": 100,
    "early_stopping": True, "validation_fraction": 0.2, "n_iter_no_change": 10,
}
"""Gradient boosting settings: small trees, and early stopping on a 20% validation split. A
response model that fits the noise of each arm makes the T-learner's difference noisy; stopping
when the validation loss stops improving keeps the uplift ranking stable (on the simulated
experiments of the tests it lifted the Qini coefficient from near 0 to near that of the true
segments)."""


def _bases(base: str, seed: int) -> tuple[Any, Any]:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if base == "gbm":
        kw: dict[str, Any] = dict(GBM_PARAMS, random_state=seed)
        return HistGradientBoostingClassifier(**kw), HistGradientBoostingRegressor(**kw)
    if base == "logistic":
        pre = (SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True), StandardScaler())
        return make_pipeline(*pre, LogisticRegression(max_iter=1000)), make_pipeline(*pre, Ridge(alpha=1.0))
    raise ValueError(f"base must be one of {', '.join(BASES)}; got {base!r}")


def transform(X: ArrayLike) -> np.ndarray:
    """``log1p`` of the features clipped at 0 (missing values stay missing)."""
    x = np.asarray(X, dtype=float)
    return np.log1p(np.clip(x, 0.0, None))


class UpliftModel:
    """A T- or X-learner for a binary response.

    Parameters
    ----------
    learner
        ``t`` or ``x``.
    base
        ``gbm`` or ``logistic``.
    seed
        Random state of the base models.
    threads
        Threads the base models may use while fitting and predicting (1 by default: at the sizes
        of campaign data, one thread is faster than contended OpenMP threads; ``None``: the
        libraries' default).

    Attributes
    ----------
    mu0_, mu1_
        Response models of control and treated (set by :meth:`fit`, as all of these).
    tau0_, tau1_
        X-learner effect models; ``None`` for the T-learner.
    propensity_
        Share of customers treated.
    n_treated_, n_control_
        Customers in each arm.
    """

    def __init__(self, learner: str = "t", base: str = "gbm", seed: int = 0, threads: int | None = 1) -> None:
        self.learner = learner
        self.base = base
        self.seed = seed
        self.threads = threads

    def fit(self, X: ArrayLike, treated: ArrayLike, y: ArrayLike) -> UpliftModel:
        """Fit on features ``X`` (n x p), arm ``treated`` (bool) and response ``y`` (0/1)."""
        if self.learner not in LEARNERS:
            raise ValueError(f"learner must be one of {', '.join(LEARNERS)}; got {self.learner!r}")
        require("uplift", "patron.contact.effect.UpliftModel")
        x = transform(X)
        w = np.asarray(treated).astype(bool)
        r = np.asarray(y).astype(int)
        for arm, name in ((w, "treated"), (~w, "control")):
            if len(np.unique(r[arm])) < 2:
                raise ValueError(f"the {name} arm needs both responders and non-responders")
        with threadpool_limits(self.threads):
            return self._fit(x, w, r)

    def _fit(self, x: np.ndarray, w: np.ndarray, r: np.ndarray) -> UpliftModel:
        from sklearn.base import clone

        clf, reg = _bases(self.base, self.seed)
        self.mu1_ = clone(clf).fit(x[w], r[w])
        self.mu0_ = clone(clf).fit(x[~w], r[~w])
        self.propensity_ = float(w.mean())
        self.n_treated_, self.n_control_ = int(w.sum()), int((~w).sum())
        self.tau0_ = self.tau1_ = None
        if self.learner == "x":
            d1 = r[w] - self.mu0_.predict_proba(x[w])[:, 1]
            d0 = self.mu1_.predict_proba(x[~w])[:, 1] - r[~w]
            self.tau1_ = clone(reg).fit(x[w], d1)
            self.tau0_ = clone(reg).fit(x[~w], d0)
        return self

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predicted uplift in response probability (treated minus control), per row of ``X``."""
        x = transform(X)
        with threadpool_limits(self.threads):
            if self.tau0_ is not None and self.tau1_ is not None:
                g = self.propensity_
                return g * self.tau0_.predict(x) + (1.0 - g) * self.tau1_.predict(x)
            return self.mu1_.predict_proba(x)[:, 1] - self.mu0_.predict_proba(x)[:, 1]
