"""``BetaGeoFitter`` (BG/NBD, Fader, Hardie & Lee 2005) over :class:`patron.value.models.BetaGeo`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from patron.value.models import BetaGeo

from ..utils import _check_inputs, _scale_time
from . import BaseFitter, DataGenerator, like_input


def _grid_alive(fitter: Any, max_frequency: int | None, max_recency: int | None) -> np.ndarray:
    """P(alive) on the grid [t_x, x] with T = max_recency (``conditional_probability_alive_matrix``)."""
    max_frequency = max_frequency or int(fitter.data["frequency"].max())
    max_recency = max_recency or int(fitter.data["T"].max())
    tx, x = np.meshgrid(np.arange(max_recency + 1.0), np.arange(max_frequency + 1.0), indexing="ij")
    return np.asarray(fitter.conditional_probability_alive(x, tx, float(max_recency)), dtype=np.float64)


class BetaGeoFitter(BaseFitter):
    """BG/NBD model (Fader, Hardie & Lee 2005): purchases at Poisson rate lambda ~ Gamma(r, alpha)
    while active, dropout with probability p ~ Beta(a, b) after each repeat purchase.

    Parameters
    ----------
    penalizer_coef : float
        Weight of lifetimes' L2 penalty on the parameters (rates scaled by 1 / max(T)).
    """

    _native = BetaGeo
    _params_order = ("r", "alpha", "a", "b")

    def __init__(self, penalizer_coef: float = 0.0):
        self.penalizer_coef = penalizer_coef

    def fit(self, frequency: Any, recency: Any, T: Any, weights: Any = None, initial_params: Any = None,
            verbose: bool = False, tol: float = 1e-7, index: Any = None, **kwargs: Any) -> BetaGeoFitter:
        """Fit on (frequency, recency, T); ``weights`` count customers per row. Optimiser
        options are accepted and unused (see :mod:`patron.compat.lifetimes.fitters`)."""
        frequency = np.asarray(frequency).astype(int)
        recency, T = np.asarray(recency), np.asarray(T)
        _check_inputs(frequency, recency, T)
        self._scale = _scale_time(T)
        self._fit_native((frequency, recency, T), weights, penalizer=self.penalizer_coef, index=index,
                         names=("frequency", "recency", "T"))
        self.generate_new_data = DataGenerator(self._generator(), T, tuple(self.params_))
        self.predict = self.conditional_expected_number_of_purchases_up_to_time
        return self

    @staticmethod
    def _generator() -> Any:
        from ..generate_data import beta_geometric_nbd_model

        return beta_geometric_nbd_model

    def conditional_expected_number_of_purchases_up_to_time(self, t: Any, frequency: Any, recency: Any,
                                                            T: Any) -> Any:
        """Expected repeat purchases in (T, T+t] given the history (FHL 2005 eq. 10)."""
        return like_input(self._model.conditional_expected_purchases(t, frequency, recency, T))

    def conditional_probability_alive(self, frequency: Any, recency: Any, T: Any) -> Any:
        """P(alive at T | frequency, recency, T) (FHL 2005 eq. 11); an array (1 when frequency is 0)."""
        out = self._model.probability_alive(frequency, recency, T)
        return out if isinstance(out, pd.Series) else np.atleast_1d(out)

    def conditional_probability_alive_matrix(self, max_frequency: int | None = None,
                                             max_recency: int | None = None) -> np.ndarray:
        """P(alive) by [recency, frequency] for customers of age ``max_recency`` (default the
        largest T fitted; frequencies up to the largest fitted)."""
        return _grid_alive(self, max_frequency, max_recency)

    def expected_number_of_purchases_up_to_time(self, t: Any) -> Any:
        """E[X(t)] for a new customer (FHL 2005 eq. 9)."""
        return like_input(self._model.expected_purchases(t))

    def probability_of_n_purchases_up_to_time(self, t: float, n: int) -> Any:
        """P(X(t) = n) for a new customer (FHL 2005 eq. 8)."""
        return like_input(self._model.probability_of_n_purchases(t, n))
