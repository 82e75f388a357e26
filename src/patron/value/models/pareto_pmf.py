"""Pareto/NBD: the distribution of a customer's purchases in (T, T+t] given their history,
P(X(T, T+t) = n | x, t_x, T) (the quantity of Fader & Hardie's note 028, "The Pareto/NBD Model:
Conditional PMF", 2016), derived and computed here without hypergeometric functions.

Derivation. A customer alive at T has purchase rate lambda and death rate mu with, given the
history, the posterior of the "alive" branch of the likelihood (lambda^x e^-(lambda+mu)T):
lambda ~ Gamma(k = r+x, A = alpha+T), mu ~ Gamma(s, B = beta+T), independent. Alive, they either
live through (T, T+t] (chance e^-mu t) and buy Poisson(lambda t) times, or die at T+u, u < t
(density mu e^-mu u) after Poisson(lambda u) purchases. Averaging over the posterior:

    P(n | alive) = (B/(B+t))^s NB(n; k, A/(A+t)) + int_0^t s/(B+u) (B/(B+u))^s NB(n; k, A/(A+u)) du,
    NB(n; k, q) = G(k+n) / (G(k) n!) q^k (1-q)^n,

and a customer who is no longer alive buys nothing, so

    P(X(T, T+t) = n | x, t_x, T) = P(alive) P(n | alive) + (1 - P(alive)) [n = 0].

The integral is evaluated with a Gauss-Legendre rule in y = log(1 + u/A) (so that long horizons
and the peak of the NB factor near u = A n / k are resolved alike). Summed over n, P(n | alive)
is (B/(B+t))^s + 1 - (B/(B+t))^s = 1, so the pmf sums to 1 exactly in the limit; the tests check
this and check the integral against adaptive quadrature.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special

from .pareto_likelihood import probability_alive

__all__ = ["conditional_probability_of_n_purchases"]

PMF_NODES = 96
"""Gauss-Legendre nodes of the integral over the time of death in (T, T+t]."""

_GL_X, _GL_W = np.polynomial.legendre.leggauss(PMF_NODES)
_NODES = 0.5 * (_GL_X + 1.0)
_WEIGHTS = 0.5 * _GL_W


def conditional_probability_of_n_purchases(t: Any, n: Any, frequency: Any, recency: Any, T: Any,
                                           r: float, alpha: float, s: float, beta: float) -> np.ndarray:
    """P(X(T, T+t) = n | x, t_x, T) for the Pareto/NBD (module docstring); arrays broadcast.

    ``t`` >= 0 in the unit of T (at t = 0 the pmf is 1 at n = 0); ``n`` integers >= 0.
    """
    t, n, x, tx, T_ = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64)
                                             for v in (t, n, frequency, recency, T)))
    if np.any(n < 0) or np.any(n != np.round(n)):
        raise ValueError("n must hold non-negative integers")
    if np.any(t < 0):
        raise ValueError("t must be non-negative")
    shape = t.shape
    t, n, x, tx, T_ = (v.ravel() for v in (t, n, x, tx, T_))
    alive = np.atleast_1d(probability_alive(x, tx, T_, r, alpha, s, beta))
    A, B, k = alpha + T_, beta + T_, r + x
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_front = special.gammaln(k + n) - special.gammaln(k) - special.gammaln(n + 1.0)
        # alive through (T, T+t]
        lt_A = np.log1p(t / A)
        through = np.exp(-s * np.log1p(t / B) + log_front - k * lt_A
                         + special.xlogy(n, t) - n * np.log(A + t))
        # died at T+u: u = A (e^y - 1), du = A e^y dy, y in [0, log(1 + t/A)]
        y = lt_A[:, None] * _NODES
        u = A[:, None] * np.expm1(y)
        log_g = (np.log(s) - np.log(B[:, None] + u) - s * np.log1p(u / B[:, None])
                 + log_front[:, None] - k[:, None] * y + special.xlogy(n[:, None], u)
                 - n[:, None] * np.log(A[:, None] + u) + np.log(A[:, None]) + y)
        died = lt_A * (np.exp(log_g) @ _WEIGHTS)
    p_alive = np.where(t > 0, through + died, np.where(n == 0, 1.0, 0.0))
    out = alive * p_alive + (1.0 - alive) * (n == 0)
    return np.clip(out, 0.0, 1.0).reshape(shape)
