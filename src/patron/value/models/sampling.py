"""Summary-level samplers with known truth, for BG/NBD, MBG/NBD and Gamma-Gamma.

Each draws the per-customer sufficient statistics directly (no transaction log), vectorized:
given lambda and p, the purchase count in (0, T] is N ~ Poisson(lambda T) and the number of
purchases the customer lives to make is K (BG/NBD: geometric on {1, 2, ...}, dropout after each
purchase; MBG/NBD: on {0, 1, ...}, a dropout chance also right after the first purchase). Then
x = min(N, K), and since given N = n the purchase times are n uniform order statistics on (0, T],
t_x = T * Beta(x, n - x + 1) for x > 0 (t_x = 0 when x = 0).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["sample_beta_geo", "sample_beta_geo_transactions", "sample_gamma_gamma", "sample_modified_beta_geo"]


def _sample_bg(n: int, r: float, alpha: float, a: float, b: float, T: Any, rng, shift: int):
    T_ = np.broadcast_to(np.asarray(T, dtype=np.float64), (n,)).copy()
    if np.any(T_ <= 0):
        raise ValueError("T must be positive")
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    n_events = rng.poisson(lam * T_)
    k_alive = rng.geometric(np.clip(p, 1e-300, 1.0)) - shift  # purchases made before dropout
    x = np.minimum(n_events, k_alive)
    pos = x > 0
    xs = np.where(pos, x, 1)
    frac = rng.beta(xs, np.where(pos, n_events - x + 1, 1))
    tx = np.where(pos, T_ * frac, 0.0)
    return {"frequency": x.astype(np.float64), "recency": tx, "T": T_,
            "lambda": lam, "p": p, "alive": n_events < k_alive}


def sample_beta_geo(n: int, *, r: float, alpha: float, a: float, b: float, T: Any,
                    random_state: Any = None) -> dict[str, np.ndarray]:
    """Draw n customers from BG/NBD (FHL 2005); ``T`` scalar or length-n array (time units).

    Returns a dict of float arrays ``frequency``, ``recency``, ``T``, the customers' drawn
    ``lambda`` and ``p``, and ``alive`` (True when not dropped out by T).
    """
    return _sample_bg(int(n), r, alpha, a, b, T, np.random.default_rng(random_state), 0)


def sample_modified_beta_geo(n: int, *, r: float, alpha: float, a: float, b: float, T: Any,
                             random_state: Any = None) -> dict[str, np.ndarray]:
    """Draw n customers from MBG/NBD (Batislam et al. 2007); as :func:`sample_beta_geo`."""
    return _sample_bg(int(n), r, alpha, a, b, T, np.random.default_rng(random_state), 1)


def sample_beta_geo_transactions(n: int, *, r: float, alpha: float, a: float, b: float, T: Any,
                                 shift: int = 0, random_state: Any = None) -> dict[str, np.ndarray]:
    """Draw n customers from BG/NBD (``shift=0``) or MBG/NBD (``shift=1``) with the times of their
    repeat purchases: ``customer`` and ``time`` (time since the customer's first purchase, sorted
    within each customer), and per customer ``frequency``, ``recency``, ``T``, ``lambda``, ``p``,
    ``alive`` as :func:`sample_beta_geo`.

    Given N ~ Poisson(lambda T) events in (0, T] they are N sorted uniforms on (0, T]; the
    customer lives to make K of them (K as in the module docstring), so the purchases are the
    first min(N, K).
    """
    rng = np.random.default_rng(random_state)
    n = int(n)
    T_ = np.broadcast_to(np.asarray(T, dtype=np.float64), (n,)).copy()
    if np.any(T_ <= 0):
        raise ValueError("T must be positive")
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    n_events = rng.poisson(lam * T_)
    k_alive = rng.geometric(np.clip(p, 1e-300, 1.0)) - shift
    x = np.minimum(n_events, k_alive)
    owner = np.repeat(np.arange(n), n_events)
    times = rng.random(owner.size) * T_[owner]
    order = np.lexsort((times, owner))
    owner, times = owner[order], times[order]
    rank = np.arange(owner.size) - np.repeat(np.cumsum(n_events) - n_events, n_events)
    keep = rank < x[owner]
    owner, times = owner[keep], times[keep]
    recency = np.zeros(n)
    if owner.size:
        last = np.flatnonzero(np.r_[owner[1:] != owner[:-1], True])
        recency[owner[last]] = times[last]
    return {"customer": owner, "time": times, "frequency": x.astype(np.float64), "recency": recency, "T": T_,
            "lambda": lam, "p": p, "alive": n_events < k_alive}


def sample_gamma_gamma(frequency: Any, *, p: float, q: float, v: float,
                       random_state: Any = None) -> np.ndarray:
    """Mean repeat-transaction value per customer (Fader & Hardie 2013); 0 where frequency = 0.

    nu ~ Gamma(q, rate v); the sum of x values Gamma(p, rate nu) is Gamma(p x, rate nu).
    """
    rng = np.random.default_rng(random_state)
    x = np.asarray(frequency, dtype=np.float64).ravel()
    nu = rng.gamma(q, 1.0 / v, x.size)
    pos = x > 0
    total = rng.gamma(np.where(pos, p * x, 1.0), 1.0 / nu)
    return np.where(pos, total / np.where(pos, x, 1.0), 0.0)
