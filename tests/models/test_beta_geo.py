"""BG/NBD: published CDNOW estimates and predictions, gradients, SEs, numerics, coverage."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, special, stats

from patron.value.models import BetaGeo
from patron.value.models import beta_geo as bg
from patron.value.models._base import compress
from tests.models.strategies import history, param_st

PUBLISHED_REL_TOL = 1e-3  # published figures have 4-5 significant digits ("within 0.1%")
PUBLISHED_LL_ABS_TOL = 0.1
GRADIENT_REL_TOL = 1e-6
SE_REL_TOL = 1e-3
EXACT_REL_TOL = 1e-9  # two computations of the same quantity in floating point
NUMERIC_REL_TOL = 1e-6  # closed form vs adaptive quadrature

# Fader, Hardie & Lee (2005), Marketing Science 24(2), CDNOW sample, 39-week calibration.
FHL_PARAMS = {"r": 0.2426, "alpha": 4.4136, "a": 0.7929, "b": 2.4259}
FHL_LL = -9582.43


@pytest.fixture(scope="module")
def fitted(cdnow_summary):
    d = cdnow_summary
    return BetaGeo().fit(d["frequency"], d["recency"], d["T"])


def test_cdnow_estimates_match_fhl_2005(fitted):
    assert fitted.converged_
    for name, value in FHL_PARAMS.items():
        assert fitted.params_[name] == pytest.approx(value, rel=PUBLISHED_REL_TOL)
    assert fitted.log_likelihood_ == pytest.approx(FHL_LL, abs=PUBLISHED_LL_ABS_TOL)
    assert fitted.n_customers_ == 2357


def test_cdnow_predictions_match_fhl_2005(fitted):
    # FHL 2005 section 5: customer with x=2, t_x=30.43, T=38.86 expects 1.226 purchases in 39 weeks;
    # E[X(t)] = 0.0532 at t=1 and 1.8576 at t=78 (the cumulative tracking figure's values).
    assert fitted.conditional_expected_purchases(39, 2, 30.43, 38.86) == pytest.approx(
        1.226, rel=PUBLISHED_REL_TOL)
    np.testing.assert_allclose(fitted.expected_purchases(np.array([1.0, 78.0])),
                               [0.0532, 1.8576], rtol=PUBLISHED_REL_TOL)


def _naive_nll(params, x, tx, T):
    """Per-row BG/NBD log-likelihood straight from FHL 2005 eq. 6 (no compression, no softplus)."""
    r, alpha, a, b = params
    log_common = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    term1 = special.betaln(a, b + x) - special.betaln(a, b) - (r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        term2 = (special.betaln(a + 1, b + x - 1) - special.betaln(a, b)
                 - (r + x) * np.log(alpha + tx))
    term2 = np.where(x > 0, term2, -np.inf)
    return -float(np.sum(log_common + np.logaddexp(term1, term2)))


def test_likelihood_matches_naive_formula_on_raw_rows(cdnow_summary):
    d = cdnow_summary
    x, tx, T = (d[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    params = np.array([0.3, 5.0, 0.7, 2.0])
    cols, w = compress(x, tx, T)
    nll, _ = bg.negative_log_likelihood(np.log(params), bg.prepare(*cols, w, shift=0))
    assert nll == pytest.approx(_naive_nll(params, x, tx, T), rel=EXACT_REL_TOL)


def test_compressed_fit_equals_raw_fit(cdnow_summary):
    d = cdnow_summary
    raw = BetaGeo().fit(d["frequency"], d["recency"], d["T"])
    grouped = d.groupby(["frequency", "recency", "T"]).size().reset_index(name="n")
    comp = BetaGeo().fit(grouped["frequency"], grouped["recency"], grouped["T"],
                         weights=grouped["n"])
    assert len(grouped) < len(d)
    assert comp.log_likelihood_ == pytest.approx(raw.log_likelihood_, rel=EXACT_REL_TOL)
    for k in BetaGeo.param_names:
        assert comp.params_[k] == pytest.approx(raw.params_[k], rel=EXACT_REL_TOL)


@pytest.mark.parametrize("params", [[0.24, 4.4, 0.79, 2.4], [3.0, 0.5, 5.0, 0.3],
                                    [0.05, 80.0, 0.2, 20.0]])
def test_gradient_matches_finite_differences(cdnow_summary, params, numdiff):
    d = cdnow_summary
    cols, w = compress(*(d[c].to_numpy(float) for c in ("frequency", "recency", "T")))
    prep = bg.prepare(*cols, w, shift=0)
    theta = np.log(params)
    _, grad = bg.negative_log_likelihood(theta, prep)
    numeric = numdiff.gradient(lambda t: bg.negative_log_likelihood(t, prep)[0], theta)
    np.testing.assert_allclose(grad, numeric, rtol=GRADIENT_REL_TOL, atol=1e-6)


def test_standard_errors_match_hessian_of_function(fitted, cdnow_summary, numdiff):
    d = cdnow_summary
    x, tx, T = (d[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    p_hat = np.array([fitted.params_[k] for k in BetaGeo.param_names])
    hess = numdiff.hessian(lambda p: _naive_nll(p, x, tx, T), p_hat)
    se = np.sqrt(np.diag(np.linalg.inv(hess)))
    np.testing.assert_allclose([fitted.std_errors_[k] for k in BetaGeo.param_names], se,
                               rtol=SE_REL_TOL)


def _quad_expected_given_alive(t, r, alpha, a, b):
    """E_{p~Beta(a,b)}[(1 - (alpha/(alpha+p t))^r)/p] by adaptive quadrature (independent)."""
    def integrand(p):
        return -np.expm1(-r * np.log1p(p * t / alpha)) / p * stats.beta.pdf(p, a, b)
    return integrate.quad(integrand, 0, 1, limit=200, epsabs=0, epsrel=1e-10,
                          points=[min(0.5, alpha / t)])[0]


@pytest.mark.parametrize("t,r,alpha,a,b", [
    (39.0, 2.24, 43.3, 0.79, 4.43), (78.0, 0.24, 4.41, 0.79, 2.43), (5.0, 1.0, 1.0, 1.0, 1.0),
    (10.0, 0.5, 2.0, 1.00003, 3.0), (100.0, 3.0, 10.0, 2.5, 0.7), (20.0, 12.2, 50.0, 0.3, 11.5),
    (52.0, 0.8, 3.0, 0.6, 0.5),
])
def test_expected_given_alive_matches_quadrature(t, r, alpha, a, b):
    assert bg.expected_given_alive(t, r, alpha, a, b) == pytest.approx(
        _quad_expected_given_alive(t, r, alpha, a, b), rel=NUMERIC_REL_TOL)


@pytest.mark.parametrize("t", [1.0, 39.0, 200.0])
def test_pmf_sums_to_one_and_its_mean_is_expected_purchases(fitted, t):
    n = np.arange(0, 3000)
    pmf = fitted.probability_of_n_purchases(t, n)
    assert pmf.sum() == pytest.approx(1.0, rel=1e-8)
    assert float(n @ pmf) == pytest.approx(float(fitted.expected_purchases(t)), rel=1e-7)


def test_probability_alive_is_one_without_repeat_purchases(fitted):
    assert fitted.probability_alive(0, 0, 38.86) == 1.0
    assert 0 < fitted.probability_alive(2, 5.0, 38.86) < fitted.probability_alive(2, 38.0, 38.86)


def test_predictions_do_not_modify_inputs(fitted):
    x, tx, T = np.array([0.0, 2.0]), np.array([0.0, 30.43]), np.array([38.86, 38.86])
    copies = [v.copy() for v in (x, tx, T)]
    fitted.conditional_expected_purchases(10, x, tx, T)
    fitted.probability_alive(x, tx, T)
    for v, c in zip((x, tx, T), copies, strict=True):
        np.testing.assert_array_equal(v, c)


# --------------------------------------------------------------------------- no NaN / inf


@settings(max_examples=150, deadline=None)
@given(params=param_st, h=history(), t=st.floats(0.0, 1e4))
def test_predictions_are_finite(params, h, t):
    x, tx, T = h
    vals = [bg.conditional_expected_purchases(t, x, tx, T, *params),
            bg.probability_alive(x, tx, T, *params),
            bg.expected_purchases(t, *params),
            bg.probability_of_n_purchases(t, x, *params)]
    for v in vals:
        assert np.all(np.isfinite(v))
        assert np.all(v >= 0)
    assert bg.probability_alive(x, tx, T, *params) <= 1.0


# --------------------------------------------------------------------------- coverage
COVERAGE_SEEDS = 40
COVERAGE_N = 50_000
Z95 = stats.norm.ppf(0.975)
"""Two-sided 95% normal quantile."""


@pytest.mark.slow
@pytest.mark.parametrize("truth", [dict(r=0.25, alpha=4.0, a=0.8, b=2.5),
                                   dict(r=1.5, alpha=10.0, a=2.0, b=6.0)])
def test_wald_interval_coverage(truth):
    from patron.value.models.sampling import sample_beta_geo

    misses = 0
    for seed in range(COVERAGE_SEEDS):
        rng = np.random.default_rng(1000 + seed)
        data = sample_beta_geo(COVERAGE_N, T=rng.uniform(5, 52, COVERAGE_N),
                               random_state=rng, **truth)
        m = BetaGeo().fit(data["frequency"], data["recency"], data["T"])
        assert m.converged_
        for k, v in truth.items():
            misses += abs(m.params_[k] - v) > Z95 * m.std_errors_[k]
    n_checks = COVERAGE_SEEDS * len(truth)
    # misses ~ Binomial(160, 0.05) if intervals are right: mean 8, sd 2.76; allow mean + 3.5 sd.
    sd = np.sqrt(n_checks * 0.05 * 0.95)
    assert misses <= n_checks * 0.05 + 3.5 * sd


def test_probability_alive_matches_log_odds_form():
    # FHL 2005 eq. 11 as expit of minus the log-odds, computed in logs (a second route to it)
    rng = np.random.default_rng(5)
    x = rng.integers(1, 400, 2000).astype(float)
    T = rng.uniform(0.1, 200.0, 2000)
    tx = T * rng.uniform(0.0, 1.0, 2000)
    r, alpha, a, b = 0.7, 3.0, 0.9, 2.5
    z = np.log(a) - np.log(b + x - 1) + (r + x) * (np.log(alpha + T) - np.log(alpha + tx))
    expected = special.expit(-z)
    got = bg.probability_alive(x, tx, T, r, alpha, a, b)
    keep = expected > 1e-250  # below that the odds overflow and patron returns exactly 0
    np.testing.assert_allclose(got[keep], expected[keep], rtol=1e-10)
    assert np.all(got[~keep] < 1e-250)
