"""PyMC-Marketing's CLV conventions on patron's engine: data as one frame with columns
``customer_id, frequency, recency, T[, monetary_value]``, built by :func:`rfm_summary` and
:func:`rfm_train_test_split`, and models that take that frame (``BetaGeoModel(data).fit()``,
``model.expected_purchases(future_t=...)``, ...). The mapping from PyMC-Marketing's calls is in
docs/migrating-from-lifetimes.md.

The models are maximum-likelihood fits (patron's :mod:`patron.value.models`), so predictions are point
estimates returned as pandas Series indexed by ``customer_id``, where PyMC-Marketing returns
posterior draws (xarray, ``chain`` x ``draw`` x ``customer_id``); ``fit_summary()`` gives the
estimates with standard errors where PyMC-Marketing gives posterior summaries. PyMC-Marketing's
``fit(fit_method="map")`` is the closest of its fits.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from patron.value.models import BaseModel, BetaGeo, GammaGamma, ModifiedBetaGeo, ParetoNBD

from .lifetimes import fitters as _lifetimes_fitters
from .lifetimes import utils as _lifetimes_utils

__all__ = [
    "BetaGeoModel",
    "GammaGammaModel",
    "ModifiedBetaGeoModel",
    "ParetoNBDModel",
    "clv_summary",
    "rfm_summary",
    "rfm_train_test_split",
]


def rfm_summary(transactions: pd.DataFrame, customer_id_col: str, datetime_col: str,
                monetary_value_col: str | None = None, datetime_format: str | None = None,
                observation_period_end: Any = None, time_unit: str = "D", time_scaler: float = 1,
                include_first_transaction: bool = False, sort_transactions: bool = True) -> pd.DataFrame:
    """One row per customer: ``customer_id, frequency, recency, T[, monetary_value]`` (times in
    ``time_unit`` divided by ``time_scaler``). With ``include_first_transaction`` (RFM
    segmentation) ``frequency`` counts every purchase period, ``recency`` is the time since the
    last purchase and ``T`` is left out, as PyMC-Marketing does. ``sort_transactions`` is accepted
    and unused (the engine needs no sorted input)."""
    s = _lifetimes_utils.summary_data_from_transaction_data(
        transactions, customer_id_col, datetime_col, monetary_value_col=monetary_value_col,
        datetime_format=datetime_format, observation_period_end=observation_period_end, freq=time_unit,
        freq_multiplier=time_scaler, include_first_transaction=include_first_transaction)
    if include_first_transaction:
        s["recency"] = s["T"] - s["recency"]
        s = s.drop(columns="T")
    return s.rename_axis("customer_id").reset_index()


clv_summary = rfm_summary
"""PyMC-Marketing's earlier name of :func:`rfm_summary`."""


def rfm_train_test_split(transactions: pd.DataFrame, customer_id_col: str, datetime_col: str, train_period_end: Any,
                         test_period_end: Any = None, time_unit: str = "D", time_scaler: float = 1,
                         datetime_format: str | None = None, monetary_value_col: str | None = None,
                         include_first_transaction: bool = False, sort_transactions: bool = True) -> pd.DataFrame:
    """The training summary of customers with a purchase by ``train_period_end`` with
    ``test_frequency`` (purchase periods after it, up to ``test_period_end``),
    ``test_monetary_value`` (their mean value) and ``test_T`` (the test period's length)."""
    s = _lifetimes_utils.calibration_and_holdout_data(
        transactions, customer_id_col, datetime_col, train_period_end, observation_period_end=test_period_end,
        freq=time_unit, freq_multiplier=time_scaler, datetime_format=datetime_format,
        monetary_value_col=monetary_value_col, include_first_transaction=include_first_transaction)
    s.columns = [c.removesuffix("_cal") for c in s.columns]
    s = s.rename(columns={"frequency_holdout": "test_frequency", "monetary_value_holdout": "test_monetary_value",
                          "duration_holdout": "test_T"})
    return s.rename_axis("customer_id").reset_index()


class _FrameModel:
    """A patron model fitted on and predicting for a PyMC-Marketing style frame."""

    _native: ClassVar[type[BaseModel]]
    _columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")

    def __init__(self, data: pd.DataFrame, model_config: dict[str, Any] | None = None):
        missing = [c for c in ("customer_id", *self._columns) if c not in data.columns]
        if missing:
            raise ValueError(f"data lacks the column(s) {', '.join(missing)}; it needs customer_id, "
                             f"{', '.join(self._columns)}")
        self.data = data
        self.model_config = dict(model_config or {})
        self.model = self._native(**self.model_config)

    def _frame(self, data: pd.DataFrame | None) -> tuple[pd.DataFrame, pd.Index]:
        data = self.data if data is None else data
        return data, pd.Index(data["customer_id"], name="customer_id")

    def _series(self, values: Any, index: pd.Index, name: str) -> pd.Series:
        return pd.Series(np.asarray(values, dtype=np.float64), index=index, name=name)

    def fit(self, fit_method: str = "mle", **kwargs: Any) -> _FrameModel:
        """Maximum-likelihood fit on the frame's columns (``fit_method`` and sampler options are
        accepted for compatibility)."""
        self.model.fit(*(self.data[c].to_numpy(dtype=np.float64) for c in self._columns))
        return self

    def fit_summary(self) -> pd.DataFrame:
        """Estimates with standard errors and 95% intervals, one row per parameter."""
        est = pd.Series(self.model.params_)
        se = pd.Series(self.model.std_errors_)
        z = _lifetimes_fitters.Z_95
        return pd.DataFrame({"mean": est, "sd": se, "hdi_2.5%": est - z * se, "hdi_97.5%": est + z * se})


class _PurchaseModel(_FrameModel):
    def expected_purchases(self, data: pd.DataFrame | None = None, *, future_t: Any = 1) -> pd.Series:
        """Expected purchases of each customer in the next ``future_t`` periods."""
        data, index = self._frame(data)
        t = data["future_t"].to_numpy() if "future_t" in data.columns else future_t
        values = self.model.conditional_expected_purchases(t, *(data[c].to_numpy(dtype=np.float64) for c in self._columns))
        return self._series(values, index, "expected_purchases")

    def expected_probability_alive(self, data: pd.DataFrame | None = None) -> pd.Series:
        """P(alive) of each customer now."""
        data, index = self._frame(data)
        values = self.model.probability_alive(*(data[c].to_numpy(dtype=np.float64) for c in self._columns))
        return self._series(values, index, "probability_alive")

    def expected_purchases_new_customer(self, data: pd.DataFrame | None = None, *, t: Any = 1) -> pd.Series:
        """Expected purchases of a new customer in ``t`` periods (one value per row of ``data``)."""
        data, index = self._frame(data)
        return self._series(np.broadcast_to(self.model.expected_purchases(t), len(index)), index,
                            "expected_purchases_new_customer")


class BetaGeoModel(_PurchaseModel):
    """BG/NBD (:class:`patron.value.models.BetaGeo`) on a frame ``customer_id, frequency, recency, T``."""

    _native = BetaGeo


class ModifiedBetaGeoModel(_PurchaseModel):
    """MBG/NBD (:class:`patron.value.models.ModifiedBetaGeo`) on the same frame."""

    _native = ModifiedBetaGeo


class ParetoNBDModel(_PurchaseModel):
    """Pareto/NBD (:class:`patron.value.models.ParetoNBD`) on the same frame."""

    _native = ParetoNBD


class GammaGammaModel(_FrameModel):
    """Gamma-Gamma (:class:`patron.value.models.GammaGamma`) on a frame ``customer_id, frequency,
    monetary_value``: customers with frequency 0 (or no positive spend) are left out of the fit and
    valued at the population mean (patron's rule)."""

    _native = GammaGamma
    _columns = ("frequency", "monetary_value")

    def expected_customer_spend(self, data: pd.DataFrame | None = None) -> pd.Series:
        """Expected mean spend per purchase of each customer (FH 2013 eq. 5)."""
        data, index = self._frame(data)
        values = self.model.conditional_expected_average_spend(data["frequency"].to_numpy(dtype=np.float64),
                                                               data["monetary_value"].to_numpy(dtype=np.float64))
        return self._series(values, index, "expected_customer_spend")

    def expected_customer_lifetime_value(self, transaction_model: _PurchaseModel, data: pd.DataFrame | None = None, *,
                                         future_t: int = 12, discount_rate: float = 0.0, time_unit: str = "D") -> pd.Series:
        """CLV over ``future_t`` months with a monthly ``discount_rate``, T in ``time_unit``
        (months of 30 days, 4.345 weeks, as PyMC-Marketing and lifetimes)."""
        data, index = self._frame(data)
        values = _lifetimes_utils._customer_lifetime_value(
            transaction_model.model, data["frequency"].to_numpy(dtype=np.float64),
            data["recency"].to_numpy(dtype=np.float64), data["T"].to_numpy(dtype=np.float64),
            self.expected_customer_spend(data).to_numpy(), time=future_t, discount_rate=discount_rate, freq=time_unit)
        return self._series(values, index, "expected_customer_lifetime_value")
