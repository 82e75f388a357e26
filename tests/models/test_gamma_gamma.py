"""Gamma-Gamma: Fader & Hardie (2013) CDNOW estimates, gradients, SEs, predictions, coverage."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, special, stats

from patron.value.models import GammaGamma
from patron.value.models import gamma_gamma as gg
from patron.value.models._base import compress

PUBLISHED_REL_TOL = 1e-3
GRADIENT_REL_TOL = 1e-6
SE_REL_TOL = 1e-3
NUMERIC_REL_TOL = 1e-7

# Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value", CDNOW 946 repeat buyers.
FH2013 = {"p": 6.249, "q": 3.745, "v": 15.448}


@pytest.fixture(scope="module")
def fitted(cdnow_spend):
    return GammaGamma().fit(cdnow_spend["frequency"], cdnow_spend["monetary_value"])


def test_cdnow_estimates_match_fader_hardie_2013(fitted):
    assert fitted.converged_
    assert fitted.n_customers_ == 946
    for k, v in FH2013.items():
        assert fitted.params_[k] == pytest.approx(v, rel=PUBLISHED_REL_TOL)


def _naive_nll(params, x, z):
    """FH 2013 eq. 3 written out row by row."""
    p, q, v = params
    return -float(np.sum(special.gammaln(p * x + q) - special.gammaln(p * x) - special.gammaln(q)
                         + q * np.log(v) + (p * x - 1) * np.log(z) + p * x * np.log(x)
                         - (p * x + q) * np.log(v + x * z)))


def test_gradient_and_standard_errors(fitted, cdnow_spend, numdiff):
    rep = cdnow_spend[cdnow_spend["frequency"] > 0]
    x, z = rep["frequency"].to_numpy(float), rep["monetary_value"].to_numpy(float)
    cols, w = compress(x, z)
    prep = gg.prepare(*cols, w)
    for params in ([6.0, 3.7, 15.0], [0.5, 20.0, 300.0]):
        theta = np.log(params)
        nll, grad = gg.negative_log_likelihood(theta, prep)
        assert nll == pytest.approx(_naive_nll(params, x, z), rel=1e-10)
        numeric = numdiff.gradient(lambda t: gg.negative_log_likelihood(t, prep)[0], theta)
        np.testing.assert_allclose(grad, numeric, rtol=GRADIENT_REL_TOL, atol=1e-6)
    p_hat = np.array([fitted.params_[k] for k in GammaGamma.param_names])
    hess = numdiff.hessian(lambda p: _naive_nll(p, x, z), p_hat)
    np.testing.assert_allclose([fitted.std_errors_[k] for k in GammaGamma.param_names],
                               np.sqrt(np.diag(np.linalg.inv(hess))), rtol=SE_REL_TOL)


@pytest.mark.parametrize("x,zbar", [(1, 20.0), (5, 35.5), (40, 3.0)])
def test_conditional_spend_matches_posterior_integral(fitted, x, zbar):
    # E[Z | data] = p E[1/nu | data]; posterior nu ~ Gamma(q + p x, rate v + x zbar) (FH 2013 s.3)
    p, q, v = (fitted.params_[k] for k in GammaGamma.param_names)
    post = stats.gamma(q + p * x, scale=1.0 / (v + x * zbar))
    ref = integrate.quad(lambda nu: p / nu * post.pdf(nu), 0, np.inf, epsrel=1e-11)[0]
    assert float(fitted.conditional_expected_average_spend(x, zbar)) == pytest.approx(
        ref, rel=NUMERIC_REL_TOL)


def test_population_mean_for_non_repeaters(fitted):
    p, q, v = (fitted.params_[k] for k in GammaGamma.param_names)
    assert float(fitted.conditional_expected_average_spend(0, 0.0)) == pytest.approx(
        p * v / (q - 1), rel=1e-12)


@settings(max_examples=150, deadline=None)
@given(p=st.floats(1e-3, 1e3), q=st.floats(1.001, 1e3), v=st.floats(1e-3, 1e4),
       x=st.integers(0, 10_000), z=st.floats(1e-4, 1e6))
def test_predictions_are_finite(p, q, v, x, z):
    val = gg.conditional_expected_average_spend(x, z, p, q, v)
    assert np.isfinite(val) and val > 0


COVERAGE_SEEDS = 40
COVERAGE_N = 50_000
Z95 = stats.norm.ppf(0.975)


@pytest.mark.slow
def test_wald_interval_coverage():
    from patron.value.models.sampling import sample_gamma_gamma

    truth = dict(p=6.0, q=3.7, v=15.0)
    misses = 0
    for seed in range(COVERAGE_SEEDS):
        rng = np.random.default_rng(3000 + seed)
        x = rng.integers(1, 15, COVERAGE_N)
        z = sample_gamma_gamma(x, random_state=rng, **truth)
        m = GammaGamma().fit(x, z)
        assert m.converged_
        for k, v in truth.items():
            misses += abs(m.params_[k] - v) > Z95 * m.std_errors_[k]
    n_checks = COVERAGE_SEEDS * len(truth)
    # Binomial(120, 0.05): mean 6, sd 2.39; allow mean + 3.5 sd.
    assert misses <= n_checks * 0.05 + 3.5 * np.sqrt(n_checks * 0.05 * 0.95)


def test_repeat_buyers_without_positive_spend_are_left_out_and_get_the_population_mean(cdnow_spend, fitted):
    """Zero-value repeat purchases (CDNOW master has one such customer) and a negative mean (a
    summary that nets refunds) have no density under the Gamma: the fit is the fit without them
    (FH 2013's 946 repeat buyers), and their expected spend is p v / (q - 1), as for x = 0."""
    x = np.append(cdnow_spend["frequency"].to_numpy(float), [1.0, 3.0, 2.0])
    z = np.append(cdnow_spend["monetary_value"].to_numpy(float), [0.0, 0.0, -5.0])
    model = GammaGamma().fit(x, z)
    assert model.n_customers_ == 946
    for k, v in fitted.params_.items():
        assert model.params_[k] == pytest.approx(v, rel=1e-9)
    p, q, v = (model.params_[k] for k in ("p", "q", "v"))
    population_mean = p * v / (q - 1)  # FH 2013 eq. 5 with x = 0
    got = model.conditional_expected_average_spend([1.0, 3.0, 2.0, 4.0, 0.0], [0.0, 0.0, -5.0, np.nan, 7.0])
    np.testing.assert_allclose(got, population_mean, rtol=1e-12)
    own = model.conditional_expected_average_spend(3.0, 20.0)
    assert own == pytest.approx(p * (v + 3 * 20.0) / (3 * p + q - 1), rel=1e-12)
    with pytest.raises(ValueError, match="no customer has repeat purchases of positive value"):
        GammaGamma().fit([0.0, 2.0, 1.0], [0.0, 0.0, 0.0])


def test_q_constraint_keeps_q_at_least_one():
    """Spends drawn with q = 0.6 (< 1: no population mean): unconstrained q < 1; constrained
    q = 1 on the bound, with a lower likelihood; on CDNOW (q = 3.74) the constraint changes
    nothing (FH 2013's estimates)."""
    rng = np.random.default_rng(5)
    x = rng.integers(1, 6, 3000).astype(float)
    nu = rng.gamma(0.6, 1 / 10.0, x.size)
    z = rng.gamma(4.0 * x, 1 / nu) / x
    free = GammaGamma().fit(x, z)
    held = GammaGamma(q_constraint=True).fit(x, z)
    assert free.params_["q"] < 1
    assert held.params_["q"] == pytest.approx(1.0, abs=1e-9)
    assert held.converged_ and held.log_likelihood_ < free.log_likelihood_


def test_q_constraint_is_inactive_on_cdnow(cdnow_spend, fitted):
    repeat = cdnow_spend[cdnow_spend["frequency"] > 0]
    held = GammaGamma(q_constraint=True).fit(repeat["frequency"], repeat["monetary_value"])
    for name in ("p", "q", "v"):
        assert held.params_[name] == pytest.approx(fitted.params_[name], rel=1e-9)
