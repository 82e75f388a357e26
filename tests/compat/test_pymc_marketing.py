"""patron.compat: PyMC-Marketing's CLV data conventions (rfm_summary, rfm_train_test_split,
frame-first models) over patron's summary and models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import patron.compat as compat
from patron.compat.lifetimes.datasets import load_cdnow_summary_data_with_monetary_value
from patron.value.models import BetaGeo, GammaGamma


@pytest.fixture
def orders():
    """Customer "a": 2020-03-01 (10), 03-04 twice (5 + 7), 03-10 (20); "b": 03-05 (8); "c": 03-12 (4)."""
    return pd.DataFrame({"cust": ["a", "a", "b", "a", "a", "c"],
                         "ts": pd.to_datetime(["2020-03-04", "2020-03-01", "2020-03-05", "2020-03-10", "2020-03-04", "2020-03-12"]),
                         "value": [5.0, 10.0, 8.0, 20.0, 7.0, 4.0]})


def test_rfm_summary_columns_and_values(orders):
    s = compat.rfm_summary(orders, "cust", "ts", "value", observation_period_end="2020-03-15")
    assert list(s.columns) == ["customer_id", "frequency", "recency", "T", "monetary_value"]
    assert s.iloc[0].tolist() == ["a", 2.0, 9.0, 14.0, 16.0]
    weeks = compat.rfm_summary(orders, "cust", "ts", observation_period_end="2020-03-15", time_scaler=7)
    assert weeks.loc[0, "T"] == 2.0
    seg = compat.rfm_summary(orders, "cust", "ts", "value", observation_period_end="2020-03-15", include_first_transaction=True)
    # segmentation convention: every purchase counted, recency = days since the last purchase, no T
    assert list(seg.columns) == ["customer_id", "frequency", "recency", "monetary_value"]
    assert seg.iloc[0].tolist() == ["a", 3.0, 5.0, 14.0]
    assert compat.clv_summary is compat.rfm_summary


def test_rfm_train_test_split(orders):
    s = compat.rfm_train_test_split(orders, "cust", "ts", "2020-03-05", "2020-03-15", monetary_value_col="value")
    assert list(s.columns) == ["customer_id", "frequency", "recency", "T", "monetary_value", "test_frequency",
                               "test_monetary_value", "test_T"]
    assert s.iloc[0].tolist() == ["a", 1.0, 3.0, 4.0, 12.0, 1.0, 20.0, 10.0]
    assert list(s["customer_id"]) == ["a", "b"]  # "c" first bought in the test period


def test_frame_models_equal_the_native_models():
    data = load_cdnow_summary_data_with_monetary_value().reset_index()
    bg = compat.BetaGeoModel(data).fit()
    native = BetaGeo().fit(data["frequency"], data["recency"], data["T"])
    assert bg.model.params_ == native.params_
    got = bg.expected_purchases(future_t=10)
    assert got.index.name == "customer_id" and list(got.index[:3]) == [1, 2, 3]
    np.testing.assert_array_equal(got.to_numpy(), native.conditional_expected_purchases(10, data["frequency"], data["recency"], data["T"]))
    np.testing.assert_array_equal(bg.expected_probability_alive().to_numpy(),
                                  native.probability_alive(data["frequency"], data["recency"], data["T"]))
    gg = compat.GammaGammaModel(data).fit()
    assert gg.model.params_ == GammaGamma().fit(data["frequency"], data["monetary_value"]).params_
    assert list(gg.fit_summary().index) == ["p", "q", "v"]
    clv = gg.expected_customer_lifetime_value(bg, future_t=1, discount_rate=0.0, time_unit="W")
    month = native.conditional_expected_purchases(4.345, data["frequency"], data["recency"], data["T"])
    np.testing.assert_allclose(clv.to_numpy(), gg.expected_customer_spend().to_numpy() * month, rtol=1e-12)
    with pytest.raises(ValueError, match="recency"):
        compat.BetaGeoModel(data.drop(columns="recency"))
