"""Pareto/NBD DERT in closed form against the discounted expected purchases integrated numerically."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate

from patron.value.models import ParetoNBD
from patron.value.models.pareto_dert import continuous_rate

QUADRATURE_REL_TOLERANCE = 1e-6
"""The closed form and adaptive quadrature of the same integral agree to quadrature accuracy."""

CDNOW_PARETO = {"r": 0.5533, "alpha": 10.5776, "s": 0.6061, "beta": 11.6650}
"""Fader, Hardie & Lee (2005), CDNOW estimates (weeks)."""


def fitted(params: dict[str, float]) -> ParetoNBD:
    m = ParetoNBD()
    m.params_ = dict(params)
    return m


@pytest.mark.parametrize(("x", "tx", "T"), [(0, 0.0, 38.86), (2, 30.43, 38.86), (7, 35.0, 38.0), (1, 1.71, 38.86), (20, 37.0, 39.0)])
@pytest.mark.parametrize("delta", [continuous_rate(0.15, 52.0), 0.01])
def test_dert_equals_the_integral_of_discounted_expected_purchases(x, tx, T, delta):
    """DERT = integral of e^(-delta t) dE[X(T, T+t]] = delta * integral of e^(-delta t) E(t) dt."""
    m = fitted(CDNOW_PARETO)
    closed = float(m.discounted_expected_residual_transactions(x, tx, T, delta=delta))

    def integrand(t: float) -> float:
        return np.exp(-delta * t) * float(m.conditional_expected_purchases(t, x, tx, T))

    value, _ = integrate.quad(integrand, 0, np.inf, limit=500, epsabs=0, epsrel=1e-10)
    assert closed == pytest.approx(delta * value, rel=QUADRATURE_REL_TOLERANCE)


def test_dert_grows_with_frequency_and_falls_with_inactivity():
    m = fitted(CDNOW_PARETO)
    d = continuous_rate(0.15, 52.0)
    more = m.discounted_expected_residual_transactions(np.array([1, 5, 10]), np.array([30.0, 30.0, 30.0]), 39.0, delta=d)
    stale = m.discounted_expected_residual_transactions(np.array([5, 5, 5]), np.array([35.0, 20.0, 5.0]), 39.0, delta=d)
    assert np.all(np.diff(more) > 0) and np.all(np.diff(stale) < 0)
    assert np.all(np.isfinite(more)) and np.all(more > 0)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(
    x=st.integers(0, 5000),
    frac=st.floats(0, 1),
    T=st.floats(0.5, 5000),
    r=st.floats(0.01, 50), alpha=st.floats(0.01, 500), s=st.floats(0.01, 50), beta=st.floats(0.01, 500),
    delta=st.floats(1e-4, 0.5),
)
def test_dert_is_finite_and_positive_on_valid_input(x, frac, T, r, alpha, s, beta, delta):
    tx = 0.0 if x == 0 else frac * T
    m = fitted({"r": r, "alpha": alpha, "s": s, "beta": beta})
    value = m.discounted_expected_residual_transactions(x, tx, T, delta=delta)
    assert np.isfinite(value) and value >= 0


def test_log_tricomi_u_matches_scipy_where_scipy_is_finite():
    from scipy import special

    from patron.value.models.pareto_dert import log_tricomi_u_diagonal

    z = np.geomspace(1e-3, 200, 60)
    for s in (0.3, 0.6062, 1.0, 1.7, 3.0, 8.0):
        ref = special.hyperu(s, s, z)
        ok = np.isfinite(ref) & (ref > 0)
        np.testing.assert_allclose(log_tricomi_u_diagonal(s, z[ok]), np.log(ref[ok]), rtol=0, atol=1e-7)


def test_scalar_input_where_scipy_fails():
    """Found by hypothesis: a scalar customer with s = 10 and a small argument (scipy's hyperu NaN)."""
    m = fitted({"r": 1.0, "alpha": 1.0, "s": 10.0, "beta": 1.0})
    value = m.discounted_expected_residual_transactions(0, 0.0, 1.0, delta=0.0625)
    assert np.ndim(value) == 0 and np.isfinite(value) and value > 0
