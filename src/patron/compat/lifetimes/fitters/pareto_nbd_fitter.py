"""``ParetoNBDFitter`` (Pareto/NBD, Schmittlein, Morrison & Colombo 1987) over
:class:`patron.value.models.ParetoNBD`."""

from __future__ import annotations

from typing import Any

import numpy as np

from patron.value.models import ParetoNBD

from ..utils import _check_inputs, _scale_time
from . import BaseFitter, DataGenerator, like_input


class ParetoNBDFitter(BaseFitter):
    """Pareto/NBD model: purchases at Poisson rate lambda ~ Gamma(r, alpha) while alive, lifetime
    exponential with rate mu ~ Gamma(s, beta).

    lifetimes divided the Pareto/NBD objective by the mean weight where the other models divide
    by the total, so its penalty weighed ``penalizer_coef / rows`` per customer; the same is done
    here, so that a ``penalizer_coef`` gives lifetimes' parameters.
    """

    _native = ParetoNBD
    _params_order = ("r", "alpha", "s", "beta")

    def __init__(self, penalizer_coef: float = 0.0):
        self.penalizer_coef = penalizer_coef

    def fit(self, frequency: Any, recency: Any, T: Any, weights: Any = None, iterative_fitting: int = 1,
            initial_params: Any = None, verbose: bool = False, tol: float = 1e-4, index: Any = None,
            fit_method: str = "Nelder-Mead", maxiter: int = 2000, **kwargs: Any) -> ParetoNBDFitter:
        """Fit on (frequency, recency, T); ``weights`` count customers per row. Optimiser options
        are accepted and unused (see :mod:`patron.compat.lifetimes.fitters`)."""
        if iterative_fitting <= 0:
            raise ValueError("iterative_fitting must be at least 1")
        frequency = np.asarray(frequency).astype(int)
        recency, T = np.asarray(recency), np.asarray(T)
        _check_inputs(frequency, recency, T)
        self._scale = _scale_time(T)
        rows = max(len(frequency), 1)
        model = self._fit_native((frequency, recency, T), weights, penalizer=self.penalizer_coef / rows,
                                 index=index, names=("frequency", "recency", "T"))
        # lifetimes' objective: -sum(w ll) / mean(w) + penalty
        total = float(np.sum(self.data["weights"]))
        self._negative_log_likelihood_ = (-model.log_likelihood_ * rows / total
                                          + rows * float(model._penalty(np.log(model._params()))[0]))
        from ..generate_data import pareto_nbd_model

        self.generate_new_data = DataGenerator(pareto_nbd_model, T, tuple(self.params_))
        self.predict = self.conditional_expected_number_of_purchases_up_to_time
        return self

    def conditional_expected_number_of_purchases_up_to_time(self, t: Any, frequency: Any, recency: Any,
                                                            T: Any) -> Any:
        """Expected repeat purchases in (T, T+t] given the history (FH 2005 note, eq. 41)."""
        return like_input(self._model.conditional_expected_purchases(t, frequency, recency, T))

    def conditional_probability_alive(self, frequency: Any, recency: Any, T: Any) -> Any:
        """P(alive at T | frequency, recency, T) (FH 2005 note, section 5.1)."""
        return like_input(self._model.probability_alive(frequency, recency, T))

    def conditional_probability_alive_matrix(self, max_frequency: int | None = None,
                                             max_recency: int | None = None) -> np.ndarray:
        """P(alive) by [recency, frequency] for customers of age ``max_recency``."""
        from .beta_geo_fitter import _grid_alive

        return _grid_alive(self, max_frequency, max_recency)

    def expected_number_of_purchases_up_to_time(self, t: Any) -> Any:
        """E[X(t)] for a new customer (FH 2005 note, eq. 27)."""
        return like_input(self._model.expected_purchases(t))

    def conditional_probability_of_n_purchases_up_to_time(self, n: Any, t: Any, frequency: Any,
                                                          recency: Any, T: Any) -> Any:
        """P(exactly n purchases in (T, T+t] | history) (the quantity of FH note 028; computed as in
        :mod:`patron.value.models.pareto_pmf`). At t = 0 it is 1 for n = 0 (lifetimes returned 0)."""
        return like_input(self._model.conditional_probability_of_n_purchases(t, n, frequency, recency, T))
