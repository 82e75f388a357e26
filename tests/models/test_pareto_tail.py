"""The Pareto/NBD tail integral's second derivatives (patron.value.models.pareto_tail) against central
differences of its first derivatives, which test_pareto_nbd.py checks against differences of
the value, itself checked against scipy.integrate."""

from __future__ import annotations

import numpy as np
import pytest

from patron.value.models.pareto_tail import HESSIAN_PAIRS, log_tail_integral

HESSIAN_RTOL = 1e-6
"""Analytic vs central-difference second derivatives (relative step 1e-6: difference error
~1e-9 of the scale), relative to the row's largest second derivative."""

CASES = {
    "alpha > beta": (3.0, 10.0, 0.8, 12.0, 0.6, 4.0),
    "alpha < beta": (0.0, 0.0, 0.5, 3.0, 1.4, 20.0),
    "alpha = beta": (5.0, 2.0, 0.9, 7.0, 0.7, 7.0),
    "many purchases, late": (60.0, 90.0, 1.2, 0.5, 2.5, 80.0),
    "far apart": (1.0, 0.5, 0.3, 1e-3, 0.2, 400.0),
}


@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
def test_hessian_matches_differences_of_the_gradient(case):
    x, t, *params = case
    value, grad, hess = log_tail_integral(x, t, *params, hessian=True)
    assert value == log_tail_integral(x, t, *params)  # the same value with or without derivatives
    assert np.array_equal(grad, log_tail_integral(x, t, *params, grad=True)[1])
    full = np.empty((4, 4))
    for k, (i, j) in enumerate(HESSIAN_PAIRS):
        full[i, j] = full[j, i] = hess[k]
    for j in range(4):
        step = 1e-6 * params[j]
        up, down = list(params), list(params)
        up[j] += step
        down[j] -= step
        num = (log_tail_integral(x, t, *up, grad=True)[1] - log_tail_integral(x, t, *down, grad=True)[1]) / (2 * step)
        assert np.max(np.abs(num - full[:, j])) <= HESSIAN_RTOL * np.max(np.abs(full)), (j, num, full[:, j])


def test_arrays_in_chunks_give_the_rows_alone():
    rng = np.random.default_rng(3)
    n = 5000  # more than one chunk
    x, t = rng.integers(0, 30, n).astype(float), rng.random(n) * 50
    alpha, beta = np.exp(rng.normal(1.5, 1.5, n)), np.exp(rng.normal(1.5, 1.5, n))
    value, grad, hess = log_tail_integral(x, t, 0.7, alpha, 0.9, beta, hessian=True)
    for i in (0, 2047, 2048, n - 1):
        one = log_tail_integral(x[i], t[i], 0.7, alpha[i], 0.9, beta[i], hessian=True)
        assert one[0] == value[i] and np.array_equal(one[1], grad[:, i]) and np.array_equal(one[2], hess[:, i])
