"""P(at least one purchase in (T, T+t] | x, t_x, T) for BG/NBD, MBG/NBD and Pareto/NBD.

Each closed form (or one-dimensional integral) is checked against an independent computation:
for BG/NBD and MBG/NBD the ratio of integrals over the *prior* of the parameters, numerator "alive
at T and buys in (T, T+t]", denominator the individual likelihood of the history (FHL 2005 eq. 3,
with one more dropout chance for MBG/NBD, Batislam et al. 2007); for Pareto/NBD, P(alive) times a
two-dimensional integral over the posterior rates of the alive (SMC 1987). No formula of the code
under test is reused.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, special, stats

from patron.value.models import BetaGeo, ModifiedBetaGeo, ParetoNBD
from patron.value.models import beta_geo as bg

NUMERIC_REL_TOL = 1e-6
"""Closed form or fixed-rule integral against adaptive two-dimensional quadrature."""

EXACT_REL_TOL = 1e-12
"""Two exact formulas for the same number."""

BG = {"r": 0.2426, "alpha": 4.4136, "a": 0.7929, "b": 2.4259}
"""BG/NBD estimates for the CDNOW sample (FHL 2005, section 5), rates per week."""

PARETO = {"r": 0.5533, "alpha": 10.5776, "s": 0.6061, "beta": 11.6689}
"""Pareto/NBD estimates for the CDNOW sample (Fader, Hardie & Lee 2005, "RFM and CLV"), per week."""

HISTORIES = [(0, 0.0, 38.0), (1, 5.0, 38.0), (2, 30.0, 39.0), (4, 10.0, 40.0), (7, 35.0, 37.0)]
"""(x, t_x, T) in weeks: a one-time buyer, and repeat buyers both recent and long silent."""


def _bg_reference(t: float, x: int, tx: float, T: float, shift: int) -> float:
    """Ratio of integrals over lambda ~ Gamma(r, alpha), p ~ Beta(a, b) of the numerator
    (1-p)^(x+shift) lambda^x e^(-lambda T) (1 - e^(-lambda t)) and the likelihood
    (1-p)^(x+shift) lambda^x e^(-lambda T) + [x + shift > 0] p (1-p)^(x+shift-1) lambda^x e^(-lambda t_x).
    The p-integrals are Beta-function moments, E[(1-p)^k] and E[p (1-p)^(k-1)] (textbook), the
    lambda-integrals adaptive quadrature."""
    r, alpha, a, b = BG["r"], BG["alpha"], BG["a"], BG["b"]
    k = x + shift
    stays = np.exp(special.betaln(a, b + k) - special.betaln(a, b))
    drops = np.exp(special.betaln(a + 1, b + k - 1) - special.betaln(a, b)) if k > 0 else 0.0

    def lam_integral(f) -> float:
        hi = stats.gamma.ppf(1 - 1e-14, r + x, scale=1 / alpha)
        return integrate.quad(lambda lam: f(lam) * stats.gamma.pdf(lam, r, scale=1 / alpha), 0, hi,
                              epsabs=0, epsrel=1e-12, limit=400)[0]

    num = stays * lam_integral(lambda lam: lam**x * np.exp(-lam * T) * -np.expm1(-lam * t))
    den = stays * lam_integral(lambda lam: lam**x * np.exp(-lam * T)) + drops * lam_integral(lambda lam: lam**x * np.exp(-lam * tx))
    return num / den


@pytest.mark.parametrize(("x", "tx", "T"), HISTORIES)
def test_bgnbd_against_the_posterior_integral(x, tx, T):
    model = BetaGeo()
    model.params_ = dict(BG)
    assert model.conditional_probability_of_purchase(26.0, x, tx, T) == pytest.approx(
        _bg_reference(26.0, x, tx, T, shift=0), rel=NUMERIC_REL_TOL)


@pytest.mark.parametrize(("x", "tx", "T"), HISTORIES)
def test_mbgnbd_against_the_posterior_integral(x, tx, T):
    model = ModifiedBetaGeo()
    model.params_ = dict(BG)
    assert model.conditional_probability_of_purchase(26.0, x, tx, T) == pytest.approx(
        _bg_reference(26.0, x, tx, T, shift=1), rel=NUMERIC_REL_TOL)


def test_bgnbd_new_customer_is_one_minus_eq_8():
    """x = 0, T = 0: 1 - P(X(t) = 0) of FHL 2005 eq. 8."""
    for t in (1.0, 26.0, 104.0):
        got = bg.probability_of_purchase(t, 0.0, 0.0, 0.0, **BG)
        assert got == pytest.approx(1.0 - bg.probability_of_n_purchases(t, 0.0, **BG), rel=EXACT_REL_TOL)


QUANTILE_NODES = 400
"""Gauss-Legendre nodes per axis of the two-dimensional Pareto/NBD reference (quantile space)."""


def _pareto_given_alive_reference(t: float, x: int, T: float) -> float:
    """E[lambda/(lambda+mu) (1 - e^(-(lambda+mu) t))] over the posterior of the alive,
    lambda ~ Gamma(r+x, alpha+T) and mu ~ Gamma(s, beta+T) independent (the alive term of the
    Pareto/NBD likelihood, lambda^x e^(-(lambda+mu) T), times the gamma priors), as a
    tensor-product Gauss-Legendre rule over the two quantile axes."""
    r, alpha, s, beta = PARETO["r"], PARETO["alpha"], PARETO["s"], PARETO["beta"]
    nodes, weights = np.polynomial.legendre.leggauss(QUANTILE_NODES)
    v, w = (nodes + 1) / 2, weights / 2
    lam = stats.gamma.ppf(v, r + x, scale=1 / (alpha + T))[:, None]
    mu = stats.gamma.ppf(v, s, scale=1 / (beta + T))[None, :]
    return float(w @ (lam / (lam + mu) * -np.expm1(-(lam + mu) * t)) @ w)


@pytest.mark.parametrize(("x", "tx", "T"), HISTORIES)
def test_pareto_nbd_against_the_posterior_integral(x, tx, T):
    """P(alive) (checked against published figures in test_pareto_nbd) times the chance that an
    alive customer buys, integrated independently over the posterior of (lambda, mu)."""
    model = ParetoNBD()
    model.params_ = dict(PARETO)
    expected = model.probability_alive(x, tx, T) * _pareto_given_alive_reference(26.0, x, T)
    assert model.conditional_probability_of_purchase(26.0, x, tx, T) == pytest.approx(expected, rel=NUMERIC_REL_TOL)


@pytest.mark.parametrize("cls", [BetaGeo, ModifiedBetaGeo, ParetoNBD])
def test_bounds_and_monotone_in_the_horizon(cls):
    """0 at t = 0, increasing in t, never above P(alive); vectorised over customers."""
    model = cls()
    model.params_ = dict(PARETO if cls is ParetoNBD else BG)
    x, tx, T = (np.array(v, dtype=float) for v in zip(*HISTORIES, strict=True))
    alive = model.probability_alive(x, tx, T)
    previous = model.conditional_probability_of_purchase(0.0, x, tx, T)
    assert np.all(previous == 0.0)
    for t in (1.0, 13.0, 26.0, 52.0, 520.0):
        p = model.conditional_probability_of_purchase(t, x, tx, T)
        assert p.shape == x.shape
        assert np.all(p > previous) and np.all(p <= alive)
        previous = p


def test_pareto_nbd_many_customers_once_per_distinct_history():
    """Above DEDUPE_MIN_ROWS rows the integral runs once per distinct (x, T), in chunks: the same
    numbers as row by row."""
    from patron.value.models import pareto_nbd

    rng = np.random.default_rng(3)
    n = pareto_nbd.DEDUPE_MIN_ROWS + 5_000
    x = rng.integers(0, 12, n).astype(float)
    T = np.round(rng.uniform(1, 60, n) * 7) / 7
    tx = T * rng.uniform(0, 1, n) * (x > 0)
    params = tuple(PARETO[k] for k in ("r", "alpha", "s", "beta"))
    many = pareto_nbd.probability_of_purchase(26.0, x, tx, T, *params)
    rows = rng.choice(n, 200, replace=False)
    one_by_one = [float(pareto_nbd.probability_of_purchase(26.0, x[i], tx[i], T[i], *params)) for i in rows]
    np.testing.assert_allclose(many[rows], one_by_one, rtol=EXACT_REL_TOL)
