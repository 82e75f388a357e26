"""Pareto/NBD P(X(T, T+t) = n | x, t_x, T) (patron.value.models.pareto_pmf): against adaptive
quadrature of its integral, its mean against the closed-form conditional expectation (SMC 1987
eq. 22), and summing to one."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, special

from patron.value.models import ParetoNBD

BTYD_CDNOW = {"r": 0.5534, "alpha": 10.5802, "s": 0.6061, "beta": 11.6562}
"""Pareto/NBD estimates on CDNOW in the BTYD walkthrough (R package BTYD)."""

QUAD_REL_TOL = 1e-8
SUM_TOL = 1e-9
CUSTOMERS = [(0, 0.0, 38.86, 10.0), (2, 30.43, 38.86, 39.0), (26, 30.86, 31.0, 52.0),
             (5, 2.0, 38.0, 100.0), (1, 0.5, 1.0, 3.0)]


def _by_quadrature(t, n, x, tx, T, r, alpha, s, beta):
    """The same quantity with the posterior written out and scipy.integrate.quad."""
    model = ParetoNBD.from_params(r=r, alpha=alpha, s=s, beta=beta)
    alive = float(model.probability_alive(x, tx, T))
    A, B, k = alpha + T, beta + T, r + x

    def nb(u):
        q = A / (A + u)
        return np.exp(special.gammaln(k + n) - special.gammaln(k) - special.gammaln(n + 1)
                      + k * np.log(q) + special.xlogy(n, 1 - q))

    through = (B / (B + t)) ** s * nb(t)
    died = integrate.quad(lambda u: s / (B + u) * (B / (B + u)) ** s * nb(u), 0, t,
                          epsabs=0, epsrel=1e-12, limit=200)[0]
    return alive * (through + died) + (1 - alive) * (n == 0)


@pytest.mark.parametrize("customer", CUSTOMERS)
def test_pmf_matches_quadrature(customer):
    x, tx, T, t = customer
    model = ParetoNBD.from_params(BTYD_CDNOW)
    for n in (0, 1, 3, 12):
        want = _by_quadrature(t, n, x, tx, T, *BTYD_CDNOW.values())
        assert model.conditional_probability_of_n_purchases(t, n, x, tx, T) == pytest.approx(want, rel=QUAD_REL_TOL, abs=1e-300)


@pytest.mark.parametrize("customer", CUSTOMERS)
def test_pmf_sums_to_one_and_its_mean_is_the_conditional_expectation(customer):
    x, tx, T, t = customer
    model = ParetoNBD.from_params(BTYD_CDNOW)
    n = np.arange(600)
    pmf = model.conditional_probability_of_n_purchases(t, n, x, tx, T)
    assert pmf.sum() == pytest.approx(1.0, abs=SUM_TOL)
    assert (pmf * n).sum() == pytest.approx(float(model.conditional_expected_purchases(t, x, tx, T)), rel=1e-8)


def test_pmf_at_t_zero_and_bad_arguments():
    model = ParetoNBD.from_params(BTYD_CDNOW)
    np.testing.assert_array_equal(model.conditional_probability_of_n_purchases(0.0, [0, 1, 2], 3, 10.0, 20.0), [1, 0, 0])
    with pytest.raises(ValueError):
        model.conditional_probability_of_n_purchases(1.0, 0.5, 3, 10.0, 20.0)
    with pytest.raises(ValueError):
        model.conditional_probability_of_n_purchases(-1.0, 1, 3, 10.0, 20.0)
