"""Covariate models checked against truth: the models without covariates (gamma = 0), finite
differences, CLVTools' parametrization through the static-as-dynamic identity, and simulated
bases with planted effects (patron.value.models.sampling_covariates)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from patron.value.models import BetaGeo, GammaGamma, ParetoNBD
from patron.value.models.beta_geo_covariates import BetaGeoCovariates
from patron.value.models.clv import clv_intervals
from patron.value.models.clv_covariates import covariate_clv_intervals
from patron.value.models.covariates import CovariateModel, Rows, covariate_table
from patron.value.models.dynamic_paths import dynamic_data
from patron.value.models.pareto_nbd_covariates import ParetoNBDCovariates
from patron.value.models.pareto_nbd_dynamic import ParetoNBDDynamic, log_likelihood_terms
from patron.value.models.sampling import sample_gamma_gamma
from patron.value.models.sampling_covariates import (
    sample_beta_geo_covariates,
    sample_pareto_nbd_covariates,
    sample_pareto_nbd_dynamic,
)

LL_RTOL = 1e-10
"""Log-likelihoods that must agree exactly, up to rounding."""

GRAD_RTOL = 1e-5
"""Analytic vs central-difference derivatives, relative to the largest component."""

Z_RECOVERY = 3.5
"""Recovery: every estimate within this many standard errors of the planted truth (a wrong
gradient, sign or parametrization misses by tens of standard errors)."""

TRUTH_BG = dict(r=0.8, alpha=5.0, a=0.8, b=2.5)
TRUTH_PARETO = dict(r=0.8, alpha=5.0, s=0.6, beta=12.0)
EFFECTS_P = {"vip": 0.7, "region": -0.3}
EFFECTS_D = {"vip": -0.5, "region": 0.4}


def _covariates(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"vip": rng.integers(0, 2, n).astype(float), "region": rng.integers(0, 3, n).astype(float) - 1.0}


def _base(n: int, seed: int, kind: str, gp=EFFECTS_P, gd=EFFECTS_D):
    cov = _covariates(n, seed)
    T = np.random.default_rng(seed + 100).integers(20, 53, n).astype(float)
    if kind == "bgnbd":
        d = sample_beta_geo_covariates(cov, **TRUTH_BG, T=T, gamma_purchase=gp, gamma_dropout=gd, random_state=seed)
    else:
        d = sample_pareto_nbd_covariates(cov, **TRUTH_PARETO, T=T, gamma_purchase=gp, gamma_dropout=gd,
                                         time_step=1 / 7, random_state=seed)
    return cov, d


def _rows(model: CovariateModel, d, cov) -> Rows:
    table = covariate_table(cov)
    model.design_ = model._design_for(table)
    u = table.columns(model.design_.union)
    rows = Rows(d["frequency"], d["recency"], d["T"], np.ones(d["T"].size), table.columns(model.design_.purchase),
                table.columns(model.design_.dropout), u)
    rows.model_data = model._prepare_rows(rows)
    return rows


@pytest.mark.parametrize(("cls", "nocov"), [(BetaGeoCovariates, BetaGeo), (ParetoNBDCovariates, ParetoNBD)])
def test_at_gamma_zero_the_likelihood_is_the_model_without_covariates(cls, nocov):
    cov, d = _base(4000, 1, "bgnbd" if cls is BetaGeoCovariates else "pareto")
    plain = nocov().fit(d["frequency"], d["recency"], d["T"])
    model = cls()
    rows = _rows(model, d, cov)
    theta = np.concatenate([np.log(list(plain.params_.values())), np.zeros(model.design_.n_free - 4)])
    nll, _, _ = model._nll(theta, rows, False)
    assert -nll == pytest.approx(plain.log_likelihood_, rel=LL_RTOL)


@pytest.mark.parametrize("cls", [BetaGeoCovariates, ParetoNBDCovariates])
def test_gradient_and_hessian_match_central_differences(cls):
    cov, d = _base(1500, 2, "bgnbd" if cls is BetaGeoCovariates else "pareto")
    model = cls(constrained=["vip"])
    rows = _rows(model, d, cov)
    theta = np.array([np.log(0.7), np.log(4.0), np.log(0.9), np.log(3.0), 0.3, -0.2, 0.25, 0.1])[: model.design_.n_free]
    _, g, h = model._nll(theta, rows, True)
    step = 1e-6
    num_g = np.array([(model._nll(theta + step * e, rows, False)[0] - model._nll(theta - step * e, rows, False)[0]) / (2 * step)
                      for e in np.eye(theta.size)])
    assert np.max(np.abs(num_g - g)) <= GRAD_RTOL * np.max(np.abs(g))
    num_h = np.array([(model._nll(theta + 1e-5 * e, rows, False)[1] - model._nll(theta - 1e-5 * e, rows, False)[1]) / 2e-5
                      for e in np.eye(theta.size)])
    assert np.max(np.abs(num_h - h)) <= GRAD_RTOL * np.max(np.abs(h))


def _assert_recovered(model, truth_base: dict, gp: dict, gd: dict) -> None:
    for k, v in truth_base.items():
        assert abs(model.params_[k] - v) <= Z_RECOVERY * model.std_errors_[k], (k, model.params_[k], v)
    for proc, truth in (("purchase", gp), ("dropout", gd)):
        for k, v in truth.items():
            est, se = model.coefficients_[proc][k], model.coefficient_std_errors_[proc][k]
            assert abs(est - v) <= Z_RECOVERY * se, (proc, k, est, v, se)
            assert se < 0.25 * abs(v)  # informative: the interval excludes 0


@pytest.mark.parametrize("seed", [11, 12])
def test_bgnbd_recovers_planted_effects(seed):
    cov, d = _base(20_000, seed, "bgnbd")
    model = BetaGeoCovariates().fit(d["frequency"], d["recency"], d["T"], cov)
    assert model.converged_
    _assert_recovered(model, TRUTH_BG, EFFECTS_P, EFFECTS_D)


def test_pareto_recovers_planted_effects():
    cov, d = _base(20_000, 21, "pareto")
    model = ParetoNBDCovariates().fit(d["frequency"], d["recency"], d["T"], cov)
    assert model.converged_ and model.n_rows_ < 20_000  # discrete covariates compress
    _assert_recovered(model, TRUTH_PARETO, EFFECTS_P, EFFECTS_D)
    table = model.covariate_effects()
    vip = table[(table.process == "purchase") & (table.covariate == "vip")].iloc[0]
    assert vip.rate_multiplier == pytest.approx(np.exp(vip.effect))
    assert vip.lower < EFFECTS_P["vip"] < vip.upper


@pytest.mark.parametrize("cls", [BetaGeoCovariates, ParetoNBDCovariates])
def test_a_large_base_started_from_a_subsample_reaches_the_same_optimum(cls, monkeypatch):
    """Weights of 30 put 8,000 rows above SUBSAMPLE_MIN_CUSTOMERS: the fit starts from the
    optimum on a subsample; the optimum is the one Newton finds from gamma = 0 on all rows."""
    from patron.value.models import covariates as covariate_module

    cov, d = _base(8_000, 7, "bgnbd" if cls is BetaGeoCovariates else "pareto")
    weights = np.full(d["T"].size, 30.0)
    assert weights.sum() > covariate_module.SUBSAMPLE_MIN_CUSTOMERS
    calls = []
    subsampled = covariate_module.subsample_rows
    monkeypatch.setattr(covariate_module, "subsample_rows", lambda *a: calls.append(1) or subsampled(*a))
    large = cls().fit(d["frequency"], d["recency"], d["T"], cov, weights=weights)
    monkeypatch.setattr(covariate_module, "SUBSAMPLE_MIN_CUSTOMERS", float("inf"))
    direct = cls().fit(d["frequency"], d["recency"], d["T"], cov, weights=weights)
    assert calls == [1] and large.converged_ and direct.converged_
    np.testing.assert_allclose(large.theta_, direct.theta_, rtol=0, atol=1e-7)
    assert large.log_likelihood_ == pytest.approx(direct.log_likelihood_, rel=LL_RTOL)
    np.testing.assert_allclose(large.theta_covariance_, direct.theta_covariance_, rtol=1e-5)


def test_constraint_regularization_and_save_load(tmp_path):
    cov, d = _base(5000, 5, "bgnbd", gp={"vip": 0.5, "region": 0.0}, gd={"vip": 0.5, "region": 0.0})
    free = BetaGeoCovariates().fit(d["frequency"], d["recency"], d["T"], cov)
    tied = BetaGeoCovariates(constrained=["vip"]).fit(d["frequency"], d["recency"], d["T"], cov)
    assert tied.coefficients_["purchase"]["vip"] == tied.coefficients_["dropout"]["vip"]
    assert tied.log_likelihood_ <= free.log_likelihood_ + 1e-9
    assert tied.theta_.size == free.theta_.size - 1
    plain = BetaGeo().fit(d["frequency"], d["recency"], d["T"])
    shrunk = BetaGeoCovariates(regularization=1e4).fit(d["frequency"], d["recency"], d["T"], cov)
    assert max(abs(v) for p in shrunk.coefficients_.values() for v in p.values()) < 1e-3
    assert shrunk.params_["alpha"] == pytest.approx(plain.params_["alpha"], rel=1e-2)
    path = tmp_path / "m.json"
    free.save(path)
    back = CovariateModel.load(path)
    assert isinstance(back, BetaGeoCovariates) and back.coefficients_ == free.coefficients_
    np.testing.assert_allclose(back.probability_alive(d["frequency"], d["recency"], d["T"], cov),
                               free.probability_alive(d["frequency"], d["recency"], d["T"], cov))


@pytest.mark.parametrize("kind", ["bgnbd", "pareto"])
def test_holdout_forecast_beats_the_model_without_covariates_when_a_covariate_matters(kind):
    """Calibration 0-39 weeks, holdout 39-78: the expected holdout purchases of each customer
    against the purchases simulated there (same draw of lambda and the dropout)."""
    n = 6000
    rng = np.random.default_rng(7)
    vip = rng.integers(0, 2, n).astype(float)
    noise = rng.normal(0.0, 1.0, n)
    cov = {"vip": vip, "noise": noise}
    gp, gd = {"vip": 1.0}, {"vip": -0.8}
    full_T = np.full(n, 78.0)
    if kind == "bgnbd":
        d = sample_beta_geo_covariates(cov, **TRUTH_BG, T=full_T, gamma_purchase=gp, gamma_dropout=gd, random_state=8)
        cls, plain_cls = BetaGeoCovariates, BetaGeo
    else:
        d = sample_pareto_nbd_covariates(cov, **TRUTH_PARETO, T=full_T, gamma_purchase=gp, gamma_dropout=gd, random_state=8)
        cls, plain_cls = ParetoNBDCovariates, ParetoNBD
    # the same customers observed to week 39 only: rerun the draw with T = 39 and the same seed
    # would change lambda; instead, cut the simulated 78-week histories by thinning: the
    # samplers keep only (x, t_x, T), so simulate calibration and holdout in one go below.
    del d
    cal, hold = _split_histories(kind, cov, gp, gd, n, seed=9)
    x, tx, T = cal
    plain = plain_cls().fit(x, tx, T)
    relevant = cls(["vip"], ["vip"]).fit(x, tx, T, cov)
    irrelevant = cls(["noise"], ["noise"]).fit(x, tx, T, cov)
    mae = {name: float(np.mean(np.abs(pred - hold))) for name, pred in (
        ("plain", plain.conditional_expected_purchases(39.0, x, tx, T)),
        ("relevant", relevant.conditional_expected_purchases(39.0, x, tx, T, cov)),
        ("irrelevant", irrelevant.conditional_expected_purchases(39.0, x, tx, T, cov)))}
    assert mae["relevant"] < 0.995 * mae["plain"], mae
    assert mae["irrelevant"] <= 1.002 * mae["plain"], mae


def _split_histories(kind, cov, gp, gd, n, seed):
    """Calibration (x, t_x, T = 39) and holdout purchases in (39, 78] of the same customers, drawn
    by the time-varying simulator with constant covariates (which is the static model)."""
    first = np.zeros(n)
    names = list(cov)
    paths = np.repeat(np.column_stack([cov[k] for k in names])[:, None, :], 78, axis=1)
    if kind == "pareto":
        d = sample_pareto_nbd_dynamic(first, 39.0, paths, names, **TRUTH_PARETO, gamma_purchase=gp, gamma_dropout=gd,
                                      holdout=39.0, random_state=seed)
        return (d["frequency"], d["recency"], d["T"]), d["frequency_holdout"]
    # BG/NBD: dropout happens at purchases, so draw the 78-week history and cut it at week 39
    rng = np.random.default_rng(seed)
    from patron.value.models.sampling_covariates import linear_predictor

    alpha_i = TRUTH_BG["alpha"] * np.exp(-linear_predictor(cov, gp))
    scale = np.exp(linear_predictor(cov, gd))
    lam = rng.gamma(TRUTH_BG["r"], 1.0 / alpha_i)
    p = rng.beta(TRUTH_BG["a"] * scale, TRUTH_BG["b"] * scale)
    k_alive = rng.geometric(p)  # repeat purchases before dropout
    m = rng.poisson(lam * 78.0)
    idx = np.arange(int(m.max()) or 1)[None, :]
    times = np.sort(np.where(idx < m[:, None], rng.random((n, idx.size)) * 78.0, np.inf), axis=1)
    made = idx < np.minimum(m, k_alive)[:, None]
    in_cal = made & (times <= 39.0)
    x = in_cal.sum(1).astype(float)
    tx = np.where(x > 0, np.max(np.where(in_cal, times, 0.0), axis=1), 0.0)
    hold = (made & (times > 39.0)).sum(1).astype(float)
    return (x, tx, np.full(n, 39.0)), hold


def _dynamic_base(n=3000, seed=3):
    rng = np.random.default_rng(seed)
    first = rng.integers(0, 26, n).astype(float) + rng.random(n)
    weeks = np.arange(104)
    season = ((weeks % 52) >= 40).astype(float)  # a planted high season: weeks 40-51 of each year
    paths = np.zeros((n, 104, 2))
    paths[:, :, 0] = season
    paths[:, :, 1] = rng.integers(0, 2, n)[:, None]
    d = sample_pareto_nbd_dynamic(first, 78.0 - first, paths, ["season", "vip"], **TRUTH_PARETO,
                                  gamma_purchase={"season": 0.8, "vip": 0.4}, gamma_dropout={"season": 0.5},
                                  holdout=20.0, random_state=seed + 1)
    return first, paths, d


def test_dynamic_likelihood_reduces_to_pareto_and_to_static_covariates():
    first, paths, d = _dynamic_base(800)
    x, tx, T = d["frequency"], d["recency"], d["T"]
    S = np.einsum("nj,njk->nk", d["purchase_counts"], paths)
    data = dynamic_data(x, tx, T, first, paths, paths, S)
    plain = ParetoNBD().fit(x, tx, T)
    full = np.concatenate([np.log(list(plain.params_.values())), np.zeros(4)])
    assert log_likelihood_terms(full, data, 2, grad=False)[0].sum() == pytest.approx(plain.log_likelihood_, rel=LL_RTOL)
    # a covariate constant over time is a static covariate (the paper's Section 3.3)
    vip = paths[:, :, 1:]
    data_s = dynamic_data(x, tx, T, first, vip, vip, np.einsum("nj,njk->nk", d["purchase_counts"], vip))
    theta = np.array([np.log(0.7), np.log(4.0), np.log(0.5), np.log(10.0), 0.3, 0.4])
    static = ParetoNBDCovariates()
    rows = _rows(static, d, {"vip": paths[:, 0, 1]})
    assert log_likelihood_terms(theta, data_s, 1, grad=False)[0].sum() == pytest.approx(-static._nll(theta, rows, False)[0],
                                                                                         rel=LL_RTOL)
    # the exact gradient against central differences, with every effect non-zero
    full = np.array([np.log(0.7), np.log(4.0), np.log(0.5), np.log(10.0), 0.3, -0.2, 0.4, 0.1])
    g = log_likelihood_terms(full, data, 2)[1].sum(0)
    num = np.array([(log_likelihood_terms(full + 1e-6 * e, data, 2, grad=False)[0].sum()
                     - log_likelihood_terms(full - 1e-6 * e, data, 2, grad=False)[0].sum()) / 2e-6 for e in np.eye(8)])
    assert np.max(np.abs(num - g)) <= GRAD_RTOL * np.max(np.abs(g))


def test_dynamic_recovers_a_planted_seasonal_effect_and_forecasts_the_holdout():
    first, paths, d = _dynamic_base()
    model = ParetoNBDDynamic().fit(d["frequency"], d["recency"], d["T"], first, paths, ["season", "vip"], d["purchase_counts"])
    assert model.converged_
    _assert_recovered(model, {}, {"season": 0.8, "vip": 0.4}, {"season": 0.5})
    assert abs(model.coefficients_["dropout"]["vip"]) <= Z_RECOVERY * model.coefficient_std_errors_["dropout"]["vip"]
    data = model.path_data(d["frequency"], d["recency"], d["T"], first, paths, ["season", "vip"])
    expected = model.conditional_expected_purchases(20.0, data)
    assert expected.sum() == pytest.approx(d["frequency_holdout"].sum(), rel=0.05)
    plain = ParetoNBD().fit(d["frequency"], d["recency"], d["T"])
    plain_pred = plain.conditional_expected_purchases(20.0, d["frequency"], d["recency"], d["T"])
    assert np.mean(np.abs(expected - d["frequency_holdout"])) < np.mean(np.abs(plain_pred - d["frequency_holdout"]))
    alive = model.probability_alive(data)
    assert alive[d["alive_at_T"]].mean() > alive[~d["alive_at_T"]].mean() + 0.2


def test_clv_with_covariates_is_the_plain_clv_at_gamma_zero_and_intervals_agree():
    cov, d = _base(1500, 4, "bgnbd")
    x, tx, T = d["frequency"], d["recency"], d["T"]
    m = sample_gamma_gamma(x, p=6.0, q=4.0, v=15.0, random_state=5)
    sm = GammaGamma().fit(x[x > 0], m[x > 0])
    model = BetaGeoCovariates().fit(x, tx, T, cov)
    delta = covariate_clv_intervals(model, sm, x, tx, T, m, cov, horizon=52, discount_rate_per_step=0.002)
    boot = covariate_clv_intervals(model, sm, x, tx, T, m, cov, horizon=52, discount_rate_per_step=0.002, method="bootstrap",
                                   n_draws=100, random_state=1)
    assert (boot.equity_upper - boot.equity_lower) == pytest.approx(delta.equity_upper - delta.equity_lower, rel=0.25)
    plain = BetaGeo().fit(x, tx, T)
    model.theta_ = np.concatenate([np.log(list(plain.params_.values())), np.zeros(model.theta_.size - 4)])
    at_zero = covariate_clv_intervals(model, sm, x, tx, T, m, cov, horizon=52, discount_rate_per_step=0.002)
    reference = clv_intervals(plain, sm, x, tx, T, m, horizon=52, discount_rate_per_step=0.002)
    np.testing.assert_allclose(at_zero.clv, reference.clv, rtol=1e-9)


def test_covariates_must_be_finite_and_named():
    x, tx, T = np.array([1.0, 0.0]), np.array([2.0, 0.0]), np.array([5.0, 5.0])
    with pytest.raises(ValueError, match="covariate vip contains NaN"):
        BetaGeoCovariates().fit(x, tx, T, pd.DataFrame({"vip": [1.0, np.nan]}))
    with pytest.raises(KeyError, match="covariate age not given"):
        BetaGeoCovariates(["age"], []).fit(x, tx, T, {"vip": [1.0, 0.0]})
    with pytest.raises(ValueError, match="constrained covariate"):
        BetaGeoCovariates(["vip"], [], constrained=["vip"]).fit(x, tx, T, {"vip": [1.0, 0.0]})
