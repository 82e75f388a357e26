"""The covariate models keep scikit-learn's estimator contract and patron's model file layout,
as the models without covariates do (issue 17's contract, issue 19's models): clone and
get_params/set_params, NotFittedError, penalizer_kind, from_params, and one loader for saved
models."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.utils.validation import check_is_fitted

from patron.errors import InputError
from patron.value.models import BaseModel, BetaGeo, NotFittedError, ParetoNBD
from patron.value.models.beta_geo_covariates import BetaGeoCovariates
from patron.value.models.pareto_nbd_covariates import ParetoNBDCovariates
from patron.value.models.pareto_nbd_dynamic import ParetoNBDDynamic
from patron.value.models.sampling_covariates import sample_pareto_nbd_covariates

CLASSES = [BetaGeoCovariates, ParetoNBDCovariates, ParetoNBDDynamic]

PUBLISHED = 5e-4
"""lifetimes' figures are given to 3 digits."""

SAME = 1e-12
"""Two routes to the same number (saved and loaded, built from the same parameters)."""


@pytest.fixture(scope="module")
def pareto_fit():
    rng = np.random.default_rng(4)
    cov = {"vip": rng.integers(0, 2, 3000).astype(float), "score": rng.normal(0, 1, 3000).round(1)}
    d = sample_pareto_nbd_covariates(cov, r=0.8, alpha=5.0, s=0.6, beta=12.0, T=52.0,
                                     gamma_purchase={"vip": 0.6}, gamma_dropout={"score": 0.3}, random_state=5)
    model = ParetoNBDCovariates(["vip", "score"], ["score"]).fit(d["frequency"], d["recency"], d["T"], cov)
    return model, d, cov


@pytest.mark.parametrize("cls", CLASSES)
def test_clone_and_params_round_trip(cls):
    model = cls(["vip"], (), constrained=(), penalizer=0.25, penalizer_kind="lifetimes", regularization=(0.1, 0.2),
                n_starts=3, random_state=7)
    twin = clone(model)
    assert twin is not model and type(twin) is cls
    assert twin.get_params() == model.get_params()
    assert set(model.get_params()) == {"purchase_covariates", "dropout_covariates", "constrained", "penalizer",
                                       "penalizer_kind", "regularization", "strict", "n_starts", "random_state"}
    assert model.set_params(penalizer=0.5) is model and model.penalizer == 0.5
    with pytest.raises(ValueError, match="invalid parameter"):
        model.set_params(penaliser=1.0)


@pytest.mark.parametrize("cls", CLASSES)
def test_not_fitted_error_is_what_scikit_learn_code_catches(cls):
    model = cls()
    with pytest.raises(NotFittedError) as info:
        model.covariate_effects()
    assert isinstance(info.value, ValueError) and isinstance(info.value, AttributeError)
    with pytest.raises(SklearnNotFittedError):
        check_is_fitted(model)


def test_bad_settings_are_value_errors_at_fit(pareto_fit):
    _, d, cov = pareto_fit
    for bad in ({"penalizer": -1.0}, {"penalizer_kind": "ridge"}, {"regularization": -0.1}):
        with pytest.raises(ValueError):
            ParetoNBDCovariates(**bad).fit(d["frequency"], d["recency"], d["T"], cov)


def test_lifetimes_penalty_without_covariates_is_lifetimes_bgnbd(cdnow_summary):
    """penalizer 0.1 of kind lifetimes on CDNOW: lifetimes 0.11.3's a = 0.129, b = 0.267 (issue
    17), here through the covariate estimator with no covariate, against BetaGeo's own fit."""
    x, tx, T = (cdnow_summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    model = BetaGeoCovariates((), (), penalizer=0.1, penalizer_kind="lifetimes").fit(x, tx, T, {})
    assert model.params_["a"] == pytest.approx(0.129, abs=PUBLISHED)
    assert model.params_["b"] == pytest.approx(0.267, abs=PUBLISHED)
    plain = BetaGeo(0.1, penalizer_kind="lifetimes").fit(x, tx, T)
    for name, value in plain.params_.items():
        assert model.params_[name] == pytest.approx(value, rel=1e-6)


def test_saved_model_loads_through_the_loader_of_every_model(pareto_fit, tmp_path):
    model, d, cov = pareto_fit
    path = tmp_path / "pareto_cov.json"
    model.save(path)
    back = BaseModel.load(path)
    assert type(back) is ParetoNBDCovariates and back.get_params() == {**model.get_params(),
                                                                     "purchase_covariates": ["vip", "score"],
                                                                     "dropout_covariates": ["score"], "constrained": []}
    assert back.coefficients_ == model.coefficients_ and back.params_ == model.params_
    assert back.coefficient_std_errors_ == model.coefficient_std_errors_
    np.testing.assert_array_equal(back.covariance_, model.covariance_)
    assert back.data_fingerprint_ == model.data_fingerprint_ and len(back.data_fingerprint_) == 64
    np.testing.assert_allclose(back.probability_alive(d["frequency"], d["recency"], d["T"], cov),
                               model.probability_alive(d["frequency"], d["recency"], d["T"], cov), rtol=SAME)
    with pytest.raises(ValueError, match="cannot load it as ParetoNBD"):
        ParetoNBD.load(path)


def test_status_refuses_a_covariate_model_file_with_a_reason(pareto_fit, tmp_path):
    from patron.relationship.status import load_model

    path = tmp_path / "m.json"
    pareto_fit[0].save(path)
    with pytest.raises(InputError, match="covariates"):
        load_model(path)


def test_from_params_predicts_as_the_fitted_model_and_as_the_plain_model_at_zero(pareto_fit):
    model, d, cov = pareto_fit
    built = ParetoNBDCovariates.from_params(model.params_, coefficients=model.coefficients_,
                                            covariance=model.covariance_)
    args = (d["frequency"], d["recency"], d["T"], cov)
    np.testing.assert_allclose(built.probability_alive(*args), model.probability_alive(*args), rtol=SAME)
    for proc, errors in model.coefficient_std_errors_.items():
        assert built.coefficient_std_errors_[proc] == pytest.approx(errors, rel=SAME)
    check_is_fitted(built)
    zero = ParetoNBDCovariates.from_params(r=0.8, alpha=5.0, s=0.6, beta=12.0,
                                           coefficients={"purchase": {"vip": 0.0}, "dropout": {}})
    plain = ParetoNBD.from_params(r=0.8, alpha=5.0, s=0.6, beta=12.0)
    np.testing.assert_allclose(zero.conditional_expected_purchases(10.0, *args),
                               plain.conditional_expected_purchases(10.0, *args[:3]), rtol=SAME)
    with pytest.raises(ValueError, match="per process"):
        ParetoNBDCovariates.from_params(model.params_, coefficients={"buy": {"vip": 1.0}})
    with pytest.raises(ValueError, match="missing beta"):
        ParetoNBDCovariates.from_params(r=1.0, alpha=1.0, s=1.0)


def test_files_of_the_first_covariate_models_still_load(pareto_fit):
    """The layout written before the shared loader (issue 19's first version): ``covariates:
    true`` and the free vector at the top level."""
    model = pareto_fit[0]
    d = model.design_
    legacy = {"model": "pareto_covariates", "class": "ParetoNBDCovariates", "covariates": True,
              "settings": {"purchase_covariates": list(d.purchase), "dropout_covariates": list(d.dropout),
                           "constrained": [], "penalizer": 0.0, "regularization": [0.0, 0.0], "strict": False,
                           "n_starts": 8, "random_state": 0},
              "theta": model.theta_.tolist(), "theta_covariance": model.theta_covariance_.tolist(),
              "params": model.params_, "coefficients": model.coefficients_, "log_likelihood": model.log_likelihood_,
              "n_customers": 3000, "n_rows": model.n_rows_, "converged": True, "convergence_message": "ok"}
    back = BaseModel.from_dict(legacy)
    assert type(back) is ParetoNBDCovariates and back.coefficients_ == model.coefficients_
    np.testing.assert_array_equal(back.covariance_, model.covariance_)


def test_every_setting_of_the_covariate_models_is_documented():
    """docs/models.md's settings table has a row per constructor argument of the covariate models
    (as tests/test_value_settings.py does for [value]), and names fit's period_length."""
    import inspect
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "models.md").read_text(encoding="utf-8")
    for cls in CLASSES:
        for name in list(inspect.signature(cls.__init__).parameters)[1:]:
            assert f"| `{name}` |" in doc, (cls.__name__, name)
    assert "`period_length`" in doc
