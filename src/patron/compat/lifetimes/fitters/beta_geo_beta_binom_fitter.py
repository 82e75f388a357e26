"""``BetaGeoBetaBinomFitter`` (BG/BB, Fader, Hardie & Shang 2010) over
:class:`patron.value.models.BetaGeoBetaBinom`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from patron.value.models import BetaGeoBetaBinom

from ..utils import _check_inputs
from . import BaseFitter, DataGenerator, like_input


class BetaGeoBetaBinomFitter(BaseFitter):
    """BG/BB model: discrete transaction opportunities; while alive a customer transacts with
    probability p ~ Beta(alpha, beta) and dies with probability theta ~ Beta(gamma, delta) at
    each opportunity."""

    _native = BetaGeoBetaBinom
    _params_order = ("alpha", "beta", "gamma", "delta")

    def __init__(self, penalizer_coef: float = 0.0):
        self.penalizer_coef = penalizer_coef

    def fit(self, frequency: Any, recency: Any, n_periods: Any, weights: Any = None, initial_params: Any = None,
            verbose: bool = False, tol: float = 1e-7, index: Any = None, **kwargs: Any) -> BetaGeoBetaBinomFitter:
        """Fit on (frequency, recency, n_periods); ``weights`` count customers per row."""
        frequency = np.asarray(frequency).astype(int)
        recency = np.asarray(recency).astype(int)
        n_periods = np.asarray(n_periods).astype(int)
        _check_inputs(frequency, recency, n_periods)
        self._fit_native((frequency, recency, n_periods), weights, penalizer=self.penalizer_coef,
                         index=index, names=("frequency", "recency", "n_periods"))
        from ..generate_data import beta_geometric_beta_binom_model

        counts = self.data["weights"].to_numpy()
        self.generate_new_data = DataGenerator(beta_geometric_beta_binom_model,
                                               np.repeat(n_periods, counts.astype(np.int64)),
                                               tuple(self.params_))
        return self

    def conditional_expected_number_of_purchases_up_to_time(self, m_periods_in_future: Any, frequency: Any,
                                                            recency: Any, n_periods: Any) -> Any:
        """Expected transactions in the next ``m_periods_in_future`` opportunities (FHS eq. 13)."""
        return like_input(self._model.conditional_expected_purchases(m_periods_in_future, frequency, recency,
                                                                     n_periods))

    def conditional_probability_alive(self, m_periods_in_future: Any, frequency: Any, recency: Any,
                                      n_periods: Any) -> Any:
        """P(alive at opportunity n_periods + m_periods_in_future | history) (FHS eq. A10)."""
        return like_input(self._model.probability_alive(frequency, recency, n_periods,
                                                        periods_ahead=m_periods_in_future))

    def expected_number_of_transactions_in_first_n_periods(self, n: int) -> pd.DataFrame:
        """Expected number of customers with x transactions in the first ``n`` opportunities, for
        each x fitted: P(X(n) = x) (FHS eq. 7) times the number of customers fitted."""
        counts = self.data.groupby("frequency")["weights"].sum()
        x = np.asarray(counts.index, dtype=np.float64)
        model = self._model.probability_of_n_purchases(n, x) * float(counts.sum())
        return pd.DataFrame(model, index=pd.Index(counts.index, name="frequency"), columns=["model"])
