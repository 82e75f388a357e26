"""MBG/NBD: published CDNOW estimates, gradients, SEs, numerics, coverage."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, special, stats

from patron.value.models import ModifiedBetaGeo
from patron.value.models import beta_geo as bg
from patron.value.models import modified_beta_geo as mbg
from patron.value.models._base import compress
from tests.models.strategies import history, param_st

PUBLISHED_REL_TOL = 1e-3
PUBLISHED_LL_ABS_TOL = 0.1
GRADIENT_REL_TOL = 1e-6
SE_REL_TOL = 1e-3
NUMERIC_REL_TOL = 1e-6

# MBG/NBD on CDNOW (issue 3, from Batislam et al. 2007's model fitted to the FHL 2005 data set).
PUBLISHED = {"r": 0.5248, "alpha": 6.183, "a": 0.8914, "b": 1.614}
PUBLISHED_LL = -9582.13


@pytest.fixture(scope="module")
def fitted(cdnow_summary):
    d = cdnow_summary
    return ModifiedBetaGeo().fit(d["frequency"], d["recency"], d["T"])


def test_cdnow_estimates(fitted):
    assert fitted.converged_
    for name, value in PUBLISHED.items():
        assert fitted.params_[name] == pytest.approx(value, rel=PUBLISHED_REL_TOL)
    assert fitted.log_likelihood_ == pytest.approx(PUBLISHED_LL, abs=PUBLISHED_LL_ABS_TOL)


def _naive_nll(params, x, tx, T):
    """Batislam et al. 2007 likelihood written directly (two terms, no softplus)."""
    r, alpha, a, b = params
    common = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) - special.betaln(a, b)
    t1 = special.betaln(a, b + x + 1) - (r + x) * np.log(alpha + T)
    t2 = special.betaln(a + 1, b + x) - (r + x) * np.log(alpha + tx)
    return -float(np.sum(common + np.logaddexp(t1, t2)))


def test_gradient_and_standard_errors(fitted, cdnow_summary, numdiff):
    d = cdnow_summary
    x, tx, T = (d[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    cols, w = compress(x, tx, T)
    prep = bg.prepare(*cols, w, shift=1)
    for params in ([0.5, 6.0, 0.9, 1.6], [2.0, 1.0, 3.0, 0.2]):
        theta = np.log(params)
        nll, grad = bg.negative_log_likelihood(theta, prep)
        assert nll == pytest.approx(_naive_nll(params, x, tx, T), rel=1e-9)
        numeric = numdiff.gradient(lambda t: bg.negative_log_likelihood(t, prep)[0], theta)
        np.testing.assert_allclose(grad, numeric, rtol=GRADIENT_REL_TOL, atol=1e-6)
    p_hat = np.array([fitted.params_[k] for k in ModifiedBetaGeo.param_names])
    hess = numdiff.hessian(lambda p: _naive_nll(p, x, tx, T), p_hat)
    np.testing.assert_allclose([fitted.std_errors_[k] for k in ModifiedBetaGeo.param_names],
                               np.sqrt(np.diag(np.linalg.inv(hess))), rtol=SE_REL_TOL)


@pytest.mark.parametrize("t", [1.0, 39.0, 200.0])
def test_pmf_sums_to_one_and_mean_is_expected_purchases(fitted, t):
    n = np.arange(0, 3000)
    pmf = fitted.probability_of_n_purchases(t, n)
    assert pmf.sum() == pytest.approx(1.0, rel=1e-8)
    assert float(n @ pmf) == pytest.approx(float(fitted.expected_purchases(t)), rel=1e-7)


def test_expected_purchases_matches_quadrature(fitted):
    r, alpha, a, b = (fitted.params_[k] for k in ModifiedBetaGeo.param_names)
    t = 39.0

    def integrand(p):  # E[(1-p)/p (1 - (alpha/(alpha+p t))^r)], p ~ Beta(a, b)
        return (1 - p) / p * -np.expm1(-r * np.log1p(p * t / alpha)) * stats.beta.pdf(p, a, b)

    ref = integrate.quad(integrand, 0, 1, limit=200, epsrel=1e-10)[0]
    assert float(fitted.expected_purchases(t)) == pytest.approx(ref, rel=NUMERIC_REL_TOL)


def test_zero_repeat_customers_can_be_inactive(fitted):
    assert 0 < fitted.probability_alive(0, 0, 38.86) < 1




@settings(max_examples=150, deadline=None)
@given(params=param_st, h=history(), t=st.floats(0.0, 1e4))
def test_predictions_are_finite(params, h, t):
    x, tx, T = h
    for v in (mbg.conditional_expected_purchases(t, x, tx, T, *params),
              mbg.probability_alive(x, tx, T, *params),
              mbg.expected_purchases(t, *params),
              mbg.probability_of_n_purchases(t, x, *params)):
        assert np.all(np.isfinite(v))
        assert np.all(v >= 0)


COVERAGE_SEEDS = 40
COVERAGE_N = 50_000
Z95 = stats.norm.ppf(0.975)


@pytest.mark.slow
def test_wald_interval_coverage():
    from patron.value.models.sampling import sample_modified_beta_geo

    truth = dict(r=0.5, alpha=6.0, a=0.9, b=1.6)
    misses = 0
    for seed in range(COVERAGE_SEEDS):
        rng = np.random.default_rng(2000 + seed)
        data = sample_modified_beta_geo(COVERAGE_N, T=rng.uniform(5, 52, COVERAGE_N),
                                        random_state=rng, **truth)
        m = ModifiedBetaGeo().fit(data["frequency"], data["recency"], data["T"])
        assert m.converged_
        for k, v in truth.items():
            misses += abs(m.params_[k] - v) > Z95 * m.std_errors_[k]
    n_checks = COVERAGE_SEEDS * len(truth)
    # Binomial(160, 0.05): mean 8, sd 2.76; allow mean + 3.5 sd.
    assert misses <= n_checks * 0.05 + 3.5 * np.sqrt(n_checks * 0.05 * 0.95)
