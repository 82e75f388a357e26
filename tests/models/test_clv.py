"""CLV and customer equity: definition checked by independent quadrature; intervals (delta method
and parametric bootstrap) against an independent delta-method computation and each other."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from patron.value.models import BetaGeo, GammaGamma
from patron.value.models.clv import (
    clv_intervals,
    customer_equity,
    customer_lifetime_value,
    per_period_rate,
)

NUMERIC_REL_TOL = 1e-6  # closed form vs adaptive quadrature
EXACT_REL_TOL = 1e-12
INTERVAL_REL_TOL = 0.2  # bootstrap (400 draws) half-width vs delta method: MC error ~ 5-10%
DELTA_REL_TOL = 1e-4  # two finite-difference delta methods (steps 1e-5, different code)


@pytest.fixture(scope="module")
def models(cdnow_spend):
    d = cdnow_spend
    bg = BetaGeo().fit(d["frequency"], d["recency"], d["T"])
    gg = GammaGamma().fit(d["frequency"], d["monetary_value"])
    return bg, gg


def _independent_clv(bg, gg, x, tx, T, z, horizon, rate, margin, step):
    """CLV from FHL 2005 eq. 11 (P(alive)), the Beta-mixture integral by quad, FH 2013 eq. 5."""
    r, alpha, a, b = (bg.params_[k] for k in ("r", "alpha", "a", "b"))
    p, q, v = (gg.params_[k] for k in ("p", "q", "v"))
    alive = 1.0 if x == 0 else 1.0 / (1 + a / (b + x - 1) * ((alpha + T) / (alpha + tx)) ** (r + x))

    def cum(t):  # expected purchases in (T, T+t] given alive, integrated over p ~ Beta(a, b+x)
        def f(pp):
            return (1 - ((alpha + T) / (alpha + T + pp * t)) ** (r + x)) / pp * stats.beta.pdf(
                pp, a, b + x)
        return alive * integrate.quad(f, 0, 1, epsrel=1e-11, limit=200)[0]

    spend = p * (v + x * z) / (p * x + q - 1)
    ends = np.minimum(np.arange(1, int(np.ceil(horizon / step)) + 1) * step, horizon)
    total, prev = 0.0, 0.0
    for k, t in enumerate(ends, start=1):
        c = cum(t)
        total += (c - prev) / (1 + rate) ** k
        prev = c
    return margin * spend * total


@pytest.mark.parametrize("row", [0, 1, 5, 100])
def test_clv_matches_independent_computation(models, cdnow_spend, row):
    bg, gg = models
    d = cdnow_spend.iloc[[row]]
    args = [d[c].to_numpy(float) for c in ("frequency", "recency", "T", "monetary_value")]
    rate = per_period_rate(0.10, 52)
    got = customer_lifetime_value(bg, gg, *args, horizon=20, discount_rate_per_step=rate, margin=0.3,
                                  step=4.0)
    ref = _independent_clv(bg, gg, *(a[0] for a in args), 20, rate, 0.3, 4.0)
    assert got[0] == pytest.approx(ref, rel=NUMERIC_REL_TOL)


def test_per_period_rate_compounds_to_annual():
    assert (1 + per_period_rate(0.10, 52)) ** 52 == pytest.approx(1.10, rel=EXACT_REL_TOL)


def test_cost_to_serve_and_equity_by_group(models, cdnow_spend):
    bg, gg = models
    d = cdnow_spend
    args = [d[c].to_numpy(float) for c in ("frequency", "recency", "T", "monetary_value")]
    base = customer_lifetime_value(bg, gg, *args, horizon=13, discount_rate_per_step=0.002, margin=0.3)
    cost = np.full(len(d), 0.5)
    net = customer_lifetime_value(bg, gg, *args, horizon=13, discount_rate_per_step=0.002, margin=0.3,
                                  cost_to_serve=cost)
    np.testing.assert_allclose(net, base - 0.5, rtol=EXACT_REL_TOL)
    groups = np.where(d["frequency"] > 0, "repeat", "one-off")
    by_group = customer_equity(base, groups)
    expected = pd.Series(base).groupby(groups).sum()
    assert by_group == pytest.approx(expected.to_dict(), rel=EXACT_REL_TOL)
    assert customer_equity(base) == pytest.approx(base.sum(), rel=EXACT_REL_TOL)


def _equity(bg, gg, args, **kw):
    return float(customer_lifetime_value(bg, gg, *args, **kw).sum())


def test_interval_width_agrees_with_delta_method(models, cdnow_spend):
    bg, gg = models
    d = cdnow_spend
    args = [d[c].to_numpy(float) for c in ("frequency", "recency", "T", "monetary_value")]
    kw = dict(horizon=26.0, discount_rate_per_step=0.002, margin=0.3, step=13.0)
    res = clv_intervals(bg, gg, *args, method="bootstrap", n_draws=400, random_state=7, **kw)
    assert res.n_draws == 400 and "bootstrap" in res.method
    assert res.equity == pytest.approx(res.clv.sum(), rel=EXACT_REL_TOL)
    assert res.equity_lower < res.equity < res.equity_upper
    assert np.all(res.lower <= res.clv + 1e-9) and np.all(res.clv <= res.upper + 1e-9)
    # delta method on log-parameters, gradient by central differences of the equity
    var = 0.0
    for model in (bg, gg):
        names = model.param_names
        grad = np.empty(len(names))
        for j, name in enumerate(names):
            vals = []
            for sign in (1, -1):
                m = copy.deepcopy(model)
                m.params_ = dict(model.params_)
                m.params_[name] = model.params_[name] * np.exp(sign * 1e-5)
                vals.append(_equity(m if model is bg else bg, m if model is gg else gg, args,
                                    **kw))
            grad[j] = (vals[0] - vals[1]) / 2e-5
        var += grad @ model.log_covariance() @ grad
    half_width = (res.equity_upper - res.equity_lower) / 2
    assert half_width == pytest.approx(stats.norm.ppf(0.975) * np.sqrt(var),
                                       rel=INTERVAL_REL_TOL)


def test_chunking_and_groups_do_not_change_results(models, cdnow_spend):
    bg, gg = models
    d = cdnow_spend.iloc[:300]
    args = [d[c].to_numpy(float) for c in ("frequency", "recency", "T", "monetary_value")]
    kw = dict(horizon=8.0, step=8.0, n_draws=50, random_state=3, method="bootstrap")
    groups = np.where(d["frequency"] > 1, "a", "b")
    big = clv_intervals(bg, gg, *args, groups=groups, **kw)
    small = clv_intervals(bg, gg, *args, groups=groups, max_cells=120, **kw)
    np.testing.assert_allclose(small.lower, big.lower, rtol=EXACT_REL_TOL)
    np.testing.assert_allclose(small.upper, big.upper, rtol=EXACT_REL_TOL)
    for k in ("a", "b"):
        assert small.equity_lower[k] == pytest.approx(big.equity_lower[k], rel=1e-9)
    total = clv_intervals(bg, gg, *args, **kw)
    assert total.equity == pytest.approx(sum(big.equity.values()), rel=EXACT_REL_TOL)


def _independent_delta_sd(bg, gg, args, rows, **kw):
    """Delta method done by hand: perturb each log-parameter of a copied model by +/- 1e-5 and
    recompute the CLV with customer_lifetime_value (per customer for ``rows``, and the equity)."""
    grads = []
    for model in (bg, gg):
        g = np.empty((len(model.param_names), len(rows) + 1))
        for j, name in enumerate(model.param_names):
            vals = []
            for sign in (1, -1):
                m = copy.deepcopy(model)
                m.params_ = dict(model.params_)
                m.params_[name] = model.params_[name] * np.exp(sign * 1e-5)
                clv = customer_lifetime_value(m if model is bg else bg, m if model is gg else gg,
                                              *args, **kw)
                vals.append(np.append(clv[rows], clv.sum()))
            g[j] = (vals[0] - vals[1]) / 2e-5
        grads.append((g, model.log_covariance()))
    var = sum(np.einsum("ji,jk,ki->i", g, cov, g) for g, cov in grads)
    return np.sqrt(var)


def test_delta_intervals_match_independent_delta_method(models, cdnow_spend):
    bg, gg = models
    d = cdnow_spend
    args = [d[c].to_numpy(float) for c in ("frequency", "recency", "T", "monetary_value")]
    kw = dict(horizon=26.0, discount_rate_per_step=0.002, margin=0.3, step=13.0)
    res = clv_intervals(bg, gg, *args, level=0.9, **kw)
    assert res.n_draws == 0 and res.method.startswith("delta")
    rows = [0, 1, 5, 100, 2000]
    sd = _independent_delta_sd(bg, gg, args, rows, **kw)
    z = stats.norm.ppf(0.95)
    np.testing.assert_allclose((res.upper - res.clv)[rows], z * sd[:-1], rtol=DELTA_REL_TOL)
    np.testing.assert_allclose((res.clv - res.lower)[rows], z * sd[:-1], rtol=DELTA_REL_TOL)
    assert (res.equity_upper - res.equity) == pytest.approx(z * sd[-1], rel=DELTA_REL_TOL)
    np.testing.assert_allclose(res.clv, customer_lifetime_value(bg, gg, *args, **kw),
                               rtol=EXACT_REL_TOL)


def test_delta_and_bootstrap_widths_agree_per_customer(models, cdnow_spend):
    bg, gg = models
    d = cdnow_spend
    args = [d[c].to_numpy(float) for c in ("frequency", "recency", "T", "monetary_value")]
    kw = dict(horizon=52.0, step=4.0, discount_rate_per_step=0.008, margin=0.3)
    delta = clv_intervals(bg, gg, *args, **kw)
    boot = clv_intervals(bg, gg, *args, method="bootstrap", n_draws=400, random_state=11, **kw)
    ratio = (boot.upper - boot.lower) / (delta.upper - delta.lower)
    assert np.median(ratio) == pytest.approx(1.0, rel=INTERVAL_REL_TOL)
    assert np.quantile(ratio, 0.9) < 1 + 2 * INTERVAL_REL_TOL
    assert np.quantile(ratio, 0.1) > 1 - 2 * INTERVAL_REL_TOL
    eq_ratio = (boot.equity_upper - boot.equity_lower) / (delta.equity_upper - delta.equity_lower)
    assert eq_ratio == pytest.approx(1.0, rel=INTERVAL_REL_TOL)


def test_delta_equity_by_group_and_cost(models, cdnow_spend):
    bg, gg = models
    d = cdnow_spend
    args = [d[c].to_numpy(float) for c in ("frequency", "recency", "T", "monetary_value")]
    groups = np.where(d["frequency"] > 2, "high", "low")
    kw = dict(horizon=13.0, discount_rate_per_step=0.002, margin=0.3)
    by_group = clv_intervals(bg, gg, *args, groups=groups, cost_to_serve=0.25, **kw)
    for label in ("high", "low"):
        members = groups == label
        alone = clv_intervals(bg, gg, *(a[members] for a in args), cost_to_serve=0.25, **kw)
        assert by_group.equity[label] == pytest.approx(alone.equity, rel=EXACT_REL_TOL)
        assert by_group.equity_upper[label] == pytest.approx(alone.equity_upper,
                                                             rel=EXACT_REL_TOL)
    plain = clv_intervals(bg, gg, *args, **kw)
    np.testing.assert_allclose(by_group.clv, plain.clv - 0.25, rtol=EXACT_REL_TOL, atol=1e-12)
    np.testing.assert_allclose(by_group.upper - by_group.clv, plain.upper - plain.clv,
                               rtol=1e-9, atol=1e-12)  # differences of values ~0.25 apart


class _NoFactoredHooks(BetaGeo):
    """BG/NBD seen as a model without P(alive) x E[purchases | alive] hooks (generic path)."""

    _probability_alive_fn = None
    _expected_given_alive_fn = None


def test_generic_path_equals_factored_path(models, cdnow_spend):
    bg, gg = models
    generic = copy.deepcopy(bg)
    generic.__class__ = _NoFactoredHooks
    d = cdnow_spend
    args = [d[c].to_numpy(float) for c in ("frequency", "recency", "T", "monetary_value")]
    kw = dict(horizon=30.0, discount_rate_per_step=0.01, margin=0.5, step=4.0)
    np.testing.assert_allclose(customer_lifetime_value(generic, gg, *args, **kw),
                               customer_lifetime_value(bg, gg, *args, **kw), rtol=1e-12)
    # a small max_cells forces several chunks
    np.testing.assert_allclose(customer_lifetime_value(bg, gg, *args, max_cells=50, **kw),
                               customer_lifetime_value(bg, gg, *args, **kw), rtol=1e-14)


def test_unknown_interval_method_is_rejected(models):
    bg, gg = models
    with pytest.raises(ValueError):
        clv_intervals(bg, gg, [1.0], [2.0], [3.0], [10.0], horizon=4.0, method="jackknife")


@pytest.mark.parametrize("row", [0, 5, 100])
def test_cost_per_purchase_and_discounted_purchases_match_independent_computation(models, cdnow_spend, row):
    """CLV = (margin x spend - cost per purchase) x P - cost per customer, with P the discounted
    expected purchases; P and the spend from the independent quadrature of FHL 2005 / FH 2013."""
    bg, gg = models
    d = cdnow_spend.iloc[[row]]
    args = [d[c].to_numpy(float) for c in ("frequency", "recency", "T", "monetary_value")]
    rate = per_period_rate(0.10, 52)
    kw = dict(horizon=20, discount_rate_per_step=rate, margin=0.3, step=4.0)
    got = customer_lifetime_value(bg, gg, *args, cost_per_purchase=0.8, cost_to_serve=1.5, **kw)
    revenue = _independent_clv(bg, gg, *(a[0] for a in args), 20, rate, 1.0, 4.0)  # spend x P
    p, q, v = (gg.params_[k] for k in ("p", "q", "v"))
    x, z = args[0][0], args[3][0]
    purchases = revenue / (p * (v + x * z) / (p * x + q - 1))
    assert got[0] == pytest.approx(0.3 * revenue - 0.8 * purchases - 1.5, rel=NUMERIC_REL_TOL)
    res = clv_intervals(bg, gg, *args, cost_per_purchase=0.8, cost_to_serve=1.5, **kw)
    assert res.purchases[0] == pytest.approx(purchases, rel=NUMERIC_REL_TOL)
    assert res.clv[0] == pytest.approx(got[0], rel=EXACT_REL_TOL)


def test_delta_intervals_with_a_cost_per_purchase_match_independent_delta_method(models, cdnow_spend):
    from patron.value.models.clv import equity_gradients

    bg, gg = models
    d = cdnow_spend
    args = [d[c].to_numpy(float) for c in ("frequency", "recency", "T", "monetary_value")]
    kw = dict(horizon=26.0, discount_rate_per_step=0.002, margin=0.3, step=13.0, cost_per_purchase=2.5)
    res = clv_intervals(bg, gg, *args, **kw)
    rows = [0, 1, 5, 100, 2000]
    sd = _independent_delta_sd(bg, gg, args, rows, **kw)
    z = stats.norm.ppf(0.975)
    np.testing.assert_allclose((res.upper - res.clv)[rows], z * sd[:-1], rtol=DELTA_REL_TOL)
    assert (res.equity_upper - res.equity) == pytest.approx(z * sd[-1], rel=DELTA_REL_TOL)
    equity, _, _ = equity_gradients(bg, gg, *args, **kw)  # the Spark path's sums
    assert equity == pytest.approx(res.equity, rel=EXACT_REL_TOL)
