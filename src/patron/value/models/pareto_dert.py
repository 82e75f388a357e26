"""Discounted expected residual transactions (DERT) of the Pareto/NBD, in closed form.

Fader, Hardie & Lee (2005), "RFM and CLV: Using Iso-Value Curves for Customer Base Analysis",
Journal of Marketing Research 42(4), eq. 2 (with its appendix): for continuous discounting at rate
``delta`` per unit of time (the unit of T),

    DERT = alpha^r beta^s delta^(s-1) Gamma(r+x+1) Psi(s, s; delta (beta+T))
           / ( Gamma(r) (alpha+T)^(r+x+1) L(r, alpha, s, beta | x, t_x, T) )

where Psi is the confluent hypergeometric function of the second kind (Tricomi's U) and L the
customer's likelihood. DERT is the present value (in transactions) of all the customer's future
purchases; CLV = margin x expected spend x DERT. Evaluated in log space.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import special

from .pareto_likelihood import log_likelihood


def continuous_rate(annual_rate: float, periods_per_year: float) -> float:
    """Continuously compounded rate per period equivalent to an annual rate:
    ln(1 + annual) / periods_per_year (e.g. 0.10 a year, weekly: ln(1.1)/52.18 = 0.00183)."""
    return math.log1p(annual_rate) / periods_per_year


def log_tricomi_u_diagonal(s: float, z: np.ndarray) -> np.ndarray:
    """ln U(s, s, z) for s > 0, z > 0.

    ``scipy.special.hyperu`` where it returns a finite positive value; elsewhere (it gives NaN for
    small z and larger s) U(s, s, z) = e^z Gamma(1 - s, z) = z^(1-s) R(1-s) with
    R(a) = Gamma(a, z) e^z z^(-a), carried down from a in [0, 1) by R(a) = (z R(a+1) - 1) / a
    (DLMF 13.6.4 and 8.8.2), which is stable for small z, exactly where hyperu fails.
    """
    z = np.asarray(z, dtype=np.float64)
    shape, z = z.shape, z.ravel()
    with np.errstate(all="ignore"):
        u = special.hyperu(s, s, z)
    out = np.log(np.where(np.isfinite(u) & (u > 0), u, 1.0))
    bad = ~(np.isfinite(u) & (u > 0))
    if np.any(bad):
        zs = z[bad]
        steps = max(0, math.ceil(s - 1.0)) if s > 1.0 else 0
        a = 1.0 - s + steps  # in [0, 1)
        if a == 0.0:
            R = special.exp1(zs) * np.exp(zs)
        else:
            R = special.gammaincc(a, zs) * np.exp(special.gammaln(a) + zs - a * np.log(zs))
        for _ in range(steps):
            a -= 1.0
            R = (zs * R - 1.0) / a
        with np.errstate(all="ignore"):
            out[bad] = (1.0 - s) * np.log(zs) + np.log(R)
    return out.reshape(shape)


def dert(frequency: Any, recency: Any, T: Any, r: float, alpha: float, s: float, beta: float, *, delta: float) -> np.ndarray:
    """DERT per customer (see module docstring); ``delta`` > 0 per unit of T."""
    if not delta > 0:
        raise ValueError("delta (continuous discount rate per period) must be positive")
    x, tx, T_ = (np.asarray(v, dtype=np.float64) for v in (frequency, recency, T))
    log_u = log_tricomi_u_diagonal(s, delta * (beta + T_))
    log_num = (r * math.log(alpha) + s * math.log(beta) + (s - 1.0) * math.log(delta)
               + special.gammaln(r + x + 1.0) + log_u)
    log_den = special.gammaln(r) + (r + x + 1.0) * np.log(alpha + T_) + log_likelihood(x, tx, T_, r, alpha, s, beta)
    return np.exp(log_num - log_den)
