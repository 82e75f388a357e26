"""``GammaGammaFitter`` (Fader & Hardie 2013, "The Gamma-Gamma Model of Monetary Value") over
:class:`patron.value.models.GammaGamma`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from patron.value.models import GammaGamma
from patron.value.models.gamma_gamma import conditional_expected_average_spend

from ..utils import _check_inputs, _customer_lifetime_value
from . import BaseFitter


class GammaGammaFitter(BaseFitter):
    """Gamma-Gamma spend model: transaction values Gamma(p, nu), nu ~ Gamma(q, v).

    As lifetimes documents, ``fit`` takes repeat customers only: a monetary value of 0 or less
    raises ``ValueError`` (patron's own :class:`patron.value.models.GammaGamma` leaves such customers
    out of the fit and values them at the population mean instead).
    """

    _native = GammaGamma
    _params_order = ("p", "q", "v")

    def __init__(self, penalizer_coef: float = 0.0):
        self.penalizer_coef = penalizer_coef

    def fit(self, frequency: Any, monetary_value: Any, weights: Any = None, initial_params: Any = None,
            verbose: bool = False, tol: float = 1e-7, index: Any = None, q_constraint: bool = False,
            **kwargs: Any) -> GammaGammaFitter:
        """Fit on repeat customers' (frequency, mean repeat spend); ``q_constraint=True`` keeps
        q >= 1 so that the population mean spend p v / (q - 1) stays positive."""
        _check_inputs(np.asarray(frequency), monetary_value=np.asarray(monetary_value))
        frequency = np.asarray(frequency).astype(float)
        monetary_value = np.asarray(monetary_value).astype(float)
        self._fit_native((frequency, monetary_value), weights, penalizer=self.penalizer_coef, index=index,
                         names=("frequency", "monetary_value"), q_constraint=q_constraint)
        self.data = self.data[["monetary_value", "frequency", "weights"]]
        return self

    def conditional_expected_average_profit(self, frequency: Any = None, monetary_value: Any = None) -> Any:
        """E[mean spend | frequency, monetary_value] (FH 2013 eq. 5): a weighted average of the
        customer's mean and the population mean p v / (q - 1); defaults to the fitted data."""
        if monetary_value is None:
            monetary_value = self.data["monetary_value"]
        if frequency is None:
            frequency = self.data["frequency"]
        p, q, v = self._unload_params("p", "q", "v")
        out = conditional_expected_average_spend(frequency, monetary_value, p, q, v, as_observed=True)
        if isinstance(frequency, pd.Series) or isinstance(monetary_value, pd.Series):
            index = (frequency if isinstance(frequency, pd.Series) else monetary_value).index
            return pd.Series(out, index=index)
        return out[()] if np.ndim(out) == 0 else out

    def customer_lifetime_value(self, transaction_prediction_model: Any, frequency: Any, recency: Any, T: Any,
                                monetary_value: Any, time: int = 12, discount_rate: float = 0.01,
                                freq: str = "D") -> pd.Series:
        """Discounted CLV over ``time`` months with a monthly ``discount_rate``; ``freq`` is the
        unit of T (D, H, W, M), months converted as lifetimes did (30 days, 4.345 weeks)."""
        adjusted = self.conditional_expected_average_profit(frequency, monetary_value)
        return _customer_lifetime_value(transaction_prediction_model, frequency, recency, T, adjusted, time,
                                        discount_rate, freq=freq)
