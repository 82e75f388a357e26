"""MBG/NBD model (Batislam, Denizel & Filiztekin 2007, "Empirical validation and comparison of
models for customer base analysis", IJRM 24(3)).

As BG/NBD (:mod:`patron.value.models.beta_geo`: lambda ~ Gamma(r, alpha), p ~ Beta(a, b)) except that a
customer may also drop out right after the first purchase, so customers with x = 0 can be inactive.
Same parameter names ``r, alpha, a, b``; times in the unit of T. The likelihood and predictions are
the BG/NBD ones with ``shift=1`` (Beta-function arguments b + x + 1 instead of b + x).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .beta_geo import (
    BetaGeo,
    conditional_expected_shifted,
    expected_given_alive,
    probability_alive_shifted,
    probability_of_n_shifted,
    probability_of_purchase_shifted,
)

__all__ = [
    "ModifiedBetaGeo",
    "conditional_expected_purchases",
    "expected_purchases",
    "expected_purchases_if_alive",
    "probability_alive",
    "probability_of_n_purchases",
    "probability_of_purchase",
]

_SHIFT = 1


def expected_purchases(t: Any, r: Any, alpha: Any, a: Any, b: Any) -> np.ndarray:
    """E[X(t)] = b/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b+1; a+b; t/(alpha+t))] (Batislam 2007).

    Written as P(not dropped at the first purchase) = b/(a+b) times the expected purchases of an
    alive customer with p ~ Beta(a, b+1).
    """
    a_, b_ = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return b_ / (a_ + b_) * expected_given_alive(t, r, alpha, a_, b_ + 1.0)


def conditional_expected_purchases(t, x, tx, T, r, alpha, a, b) -> np.ndarray:
    """E[Y(t) | x, t_x, T] = P(alive) (a+b+x)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x)
    2F1(r+x, b+x+1; a+b+x; t/(alpha+T+t))] (Batislam 2007)."""
    return conditional_expected_shifted(t, x, tx, T, r, alpha, a, b, shift=_SHIFT)


def probability_alive(x, tx, T, r, alpha, a, b) -> np.ndarray:
    """P(alive) = 1 / (1 + a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x)) (Batislam 2007)."""
    return probability_alive_shifted(x, tx, T, r, alpha, a, b, shift=_SHIFT)


def expected_purchases_if_alive(t, x, T, r, alpha, a, b) -> np.ndarray:
    """Expected purchases in (T, T+t] of a customer alive at T (the factor after P(alive) in
    :func:`conditional_expected_purchases`)."""
    x, T, b_ = (np.asarray(v, dtype=np.float64) for v in (x, T, b))
    return expected_given_alive(t, r + x, alpha + T, a, b_ + x + _SHIFT)


def probability_of_n_purchases(t, n, r, alpha, a, b) -> np.ndarray:
    """P(X(t) = n) = B(a, b+n+1)/B(a,b) NB(n; r, alpha/(alpha+t))
    + B(a+1, b+n)/B(a,b) P(NB >= n) (derived as FHL 2005 eq. 8 with the extra dropout chance)."""
    return probability_of_n_shifted(t, n, r, alpha, a, b, shift=_SHIFT)


def probability_of_purchase(t, x, tx, T, r, alpha, a, b) -> np.ndarray:
    """P(at least one purchase in (T, T+t] | x, t_x, T) = P(alive) [1 - ((alpha+T)/(alpha+T+t))^(r+x)]:
    the BG/NBD derivation (:func:`patron.value.models.beta_geo.probability_of_purchase_shifted`), whose
    alive branch is (1-p)^(x+1) lambda^x e^(-lambda T) here, so lambda is again Gamma(r+x, alpha+T)."""
    return probability_of_purchase_shifted(t, x, tx, T, r, alpha, a, b, shift=_SHIFT)


class ModifiedBetaGeo(BetaGeo):
    """MBG/NBD model (Batislam et al. 2007). Parameters ``r, alpha, a, b``; API as :class:`BetaGeo`."""

    name = "mbgnbd"
    param_names = ("r", "alpha", "a", "b")
    _shift = _SHIFT
    _conditional_expected_purchases_fn = staticmethod(conditional_expected_purchases)
    _expected_purchases_fn = staticmethod(expected_purchases)
    _probability_alive_fn = staticmethod(probability_alive)
    _expected_given_alive_fn = staticmethod(expected_purchases_if_alive)
