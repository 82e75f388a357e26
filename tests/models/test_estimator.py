"""The scikit-learn estimator contract, the two penalties, models from known parameters and
pandas-in, pandas-out predictions (issue 17, part 2)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, special
from sklearn.base import clone
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.utils.validation import check_is_fitted

from patron.value.models import (
    MODELS,
    PENALIZER_KINDS,
    BetaGeo,
    GammaGamma,
    ModifiedBetaGeo,
    NotFittedError,
    ParetoNBD,
)

PUBLISHED = 5e-4
"""Published figures are given to 3-4 significant digits."""

ROUNDED_PARAMS = 2e-3
"""Predictions from parameters published to 3 decimals differ from the published predictions
(computed at full precision) by up to this, relative."""

OPTIMUM = 1e-4
"""Two optimisers of the same objective agree on the parameters to this (relative)."""

FHL_CDNOW = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
"""BG/NBD estimates on the CDNOW sample, Fader, Hardie & Lee (2005), Table 1 / section 4."""


@pytest.mark.parametrize("name", sorted(MODELS))
def test_clone_and_params_round_trip_on_every_model(name):
    cls = MODELS[name]
    model = cls(0.25, penalizer_kind="lifetimes", n_starts=3, random_state=7)
    twin = clone(model)
    assert twin is not model and type(twin) is cls
    assert twin.get_params() == model.get_params()
    assert twin.get_params()["penalizer_kind"] == "lifetimes"
    assert model.set_params(penalizer=0.5) is model and model.penalizer == 0.5
    with pytest.raises(ValueError, match="invalid parameter"):
        model.set_params(penaliser=1.0)


def test_clone_keeps_model_specific_settings():
    assert clone(GammaGamma(q_constraint=True)).q_constraint is True


def test_not_fitted_error_is_what_scikit_learn_code_catches():
    model = BetaGeo()
    with pytest.raises(NotFittedError) as info:
        model.expected_purchases(1.0)
    assert isinstance(info.value, ValueError) and isinstance(info.value, AttributeError)
    with pytest.raises(SklearnNotFittedError):
        check_is_fitted(model)
    check_is_fitted(BetaGeo.from_params(FHL_CDNOW))  # does not raise


@pytest.mark.parametrize("bad", [{"penalizer": -1.0}, {"penalizer": float("nan")},
                                 {"penalizer": "a lot"}, {"penalizer_kind": "ridge"}])
def test_bad_settings_are_value_errors_at_fit(cdnow_summary, bad):
    model = BetaGeo(**bad)  # scikit-learn's rule: __init__ only stores
    with pytest.raises(ValueError):
        model.fit(cdnow_summary["frequency"], cdnow_summary["recency"], cdnow_summary["T"])


def test_from_params_predicts_the_published_figures():
    """BTYD's pbgnbd pmf and FHL 2005 figures at the published CDNOW estimates."""
    model = BetaGeo.from_params(**FHL_CDNOW)
    assert model.probability_of_n_purchases(39, 0) == pytest.approx(0.5737864, abs=PUBLISHED)
    assert model.probability_of_n_purchases(2, 10) == pytest.approx(1.07869e-07, rel=1e-3)
    # FHL 2005 note / spreadsheet: E[X(t)] at t = 1, 3, 78 weeks
    np.testing.assert_allclose(model.expected_purchases([1.0, 3.0, 78.0]), [0.0532, 0.1506, 1.8576],
                               rtol=ROUNDED_PARAMS)
    assert np.isnan(model.log_likelihood_) and model.n_customers_ is None
    with pytest.raises(ValueError, match="missing b"):
        BetaGeo.from_params(r=1, alpha=1, a=1)
    with pytest.raises(ValueError, match="positive"):
        BetaGeo.from_params(r=1, alpha=1, a=1, b=-2)
    with pytest.raises(ValueError, match="unknown s"):
        BetaGeo.from_params(r=1, alpha=1, a=1, b=2, s=3)


def test_from_params_with_a_covariance_gives_standard_errors_and_survives_json():
    cov = np.diag([0.01, 0.04, 0.02, 0.09])
    model = BetaGeo.from_params(FHL_CDNOW, covariance=cov)
    assert model.std_errors_["b"] == pytest.approx(0.3)
    again = BetaGeo.from_json(model.to_json())
    assert again.params_ == model.params_
    np.testing.assert_array_equal(again.covariance_, cov)


def _lifetimes_objective(log_params, x, tx, T, penalizer):
    """lifetimes' BG/NBD objective written from FHL 2005 eq. 6 (times divided by max T), an
    implementation independent of patron's likelihood code."""
    r, alpha, a, b = np.exp(log_params)
    ll = (special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
          + special.betaln(a, b + x) - special.betaln(a, b))
    alive = -(r + x) * np.log(alpha + T)
    drop = np.log(a) - np.log(b + np.maximum(x, 1) - 1) - (r + x) * np.log(alpha + tx)
    ll = ll + np.where(x > 0, np.logaddexp(alive, drop), alive)
    return -ll.mean() + penalizer * float(np.sum(np.exp(log_params) ** 2))


def test_lifetimes_penalty_reproduces_lifetimes(cdnow_summary):
    """penalizer 0.1 on CDNOW: lifetimes 0.11.3 gives a = 0.129, b = 0.267 (figures of issue 17,
    lifetimes run side by side); the same optimum as an independent Nelder-Mead on the objective."""
    x, tx, T = (cdnow_summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    model = BetaGeo(0.1, penalizer_kind="lifetimes").fit(x, tx, T)
    assert model.params_["a"] == pytest.approx(0.129, abs=PUBLISHED)
    assert model.params_["b"] == pytest.approx(0.267, abs=PUBLISHED)
    scale = 1.0 / T.max()
    res = optimize.minimize(_lifetimes_objective, np.log([0.3, 0.5, 0.2, 0.3]),
                            args=(x, tx * scale, T * scale, 0.1), method="Nelder-Mead",
                            options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 20000, "maxfev": 20000})
    want = np.exp(res.x) / np.array([1.0, scale, 1.0, 1.0])
    got = np.array([model.params_[n] for n in BetaGeo.param_names])
    np.testing.assert_allclose(got, want, rtol=OPTIMUM)
    # the default penalty shrinks towards 1, not 0 (issue 17: a = 0.816, b = 1.188)
    log_kind = BetaGeo(0.1).fit(x, tx, T)
    assert log_kind.params_["a"] == pytest.approx(0.816, abs=PUBLISHED)
    assert log_kind.params_["b"] == pytest.approx(1.188, abs=PUBLISHED)


def test_lifetimes_penalty_does_not_depend_on_the_time_unit(cdnow_summary):
    """Rates are penalised as alpha / max(T): days instead of weeks give the same fit."""
    x, tx, T = (cdnow_summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    weeks = MODELS["pareto"](0.05, penalizer_kind="lifetimes").fit(x, tx, T)
    days = MODELS["pareto"](0.05, penalizer_kind="lifetimes").fit(x, 7 * tx, 7 * T)
    for name, factor in (("r", 1), ("alpha", 7), ("s", 1), ("beta", 7)):
        assert days.params_[name] == pytest.approx(factor * weeks.params_[name], rel=OPTIMUM)


def test_every_penalizer_kind_is_documented():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "models.md").read_text()
    for kind in PENALIZER_KINDS:
        assert f'penalizer_kind="{kind}"' in doc


@pytest.mark.parametrize("cls", [BetaGeo, ModifiedBetaGeo])
def test_predictions_on_series_keep_the_index(cls, cdnow_summary):
    rows = cdnow_summary.set_index("customer_id").sample(50, random_state=3)  # shuffled ids
    model = cls.from_params(FHL_CDNOW)
    got = model.conditional_expected_purchases(10, rows["frequency"], rows["recency"], rows["T"])
    assert isinstance(got, pd.Series) and got.index.equals(rows.index)
    arrays = model.conditional_expected_purchases(10, *(rows[c].to_numpy() for c in ("frequency", "recency", "T")))
    assert isinstance(arrays, np.ndarray)
    np.testing.assert_array_equal(got.to_numpy(), arrays)
    one = rows.loc[rows.index[7]]
    assert got.loc[rows.index[7]] == model.conditional_expected_purchases(10, one["frequency"], one["recency"], one["T"])
    assert model.probability_alive(rows["frequency"], rows["recency"], rows["T"]).index.equals(rows.index)


def test_series_indexed_differently_are_refused(cdnow_summary):
    model = ParetoNBD.from_params(r=0.553, alpha=10.578, s=0.606, beta=11.669)
    f = cdnow_summary["frequency"]
    with pytest.raises(ValueError, match="indexed differently"):
        model.probability_alive(f, cdnow_summary["recency"].sort_index(ascending=False), cdnow_summary["T"])


def test_spend_predictions_keep_the_index(cdnow_spend):
    rows = cdnow_spend.set_index("customer_id")
    model = GammaGamma.from_params(p=6.25, q=3.74, v=15.44)  # FH 2013
    got = model.conditional_expected_average_spend(rows["frequency"], rows["monetary_value"])
    assert got.index.equals(rows.index)
    # FH 2013 spreadsheet: the first customers' expected spend (lifetimes' test uses the same)
    np.testing.assert_allclose(got.iloc[:3], [24.65, 18.91, 35.17], rtol=ROUNDED_PARAMS)
