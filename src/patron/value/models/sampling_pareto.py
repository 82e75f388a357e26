"""Draw customer summaries (x, t_x, T) from the Pareto/NBD generative process (SMC 1987).

lambda ~ Gamma(r, rate alpha), mu ~ Gamma(s, rate beta), lifetime omega ~ Exponential(mu);
purchases follow a Poisson process of rate lambda on (0, min(omega, T)]. Given x purchases in
(0, tau], their times are uniform order statistics, so the last one is tau * U^(1/x).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["sample_pareto_nbd"]


def sample_pareto_nbd(
    n: int,
    *,
    r: float,
    alpha: float,
    s: float,
    beta: float,
    T: Any,
    time_step: float | None = None,
    random_state: Any = None,
) -> dict[str, np.ndarray]:
    """Simulate ``n`` customers; returns ``{"frequency", "recency", "T"}`` (float arrays) and the
    drawn ``lambda``, ``mu`` and ``alive`` (lifetime beyond T).

    Parameters
    ----------
    T : float or array of length n
        Observation length of each customer (time unit of ``alpha`` and ``beta``).
    time_step : float, optional
        If given, recency is recorded on a grid of ``time_step`` (e.g. ``1/7`` for daily data in
        weeks), as a summary built from dated transactions is: the acquisition falls at a uniform
        instant of its step and purchase days are counted from the acquisition's, so recency is
        ``floor((u + t_x) / time_step) * time_step`` with u ~ U(0, time_step): within one step of
        t_x, unbiased, and at most T when T is on the grid (``T`` itself is kept as given: the
        observation length). Truncating t_x alone (``floor(t_x / time_step)``, this sampler's
        earlier rule) records every last purchase half a step early on average, which the
        likelihood reads as earlier dropout: at 100k weekly customers with daily dates beta came
        out 0.42 low (1.3 standard errors) against 0.002 with this rule (benchmarks/README.md).
    random_state : seed or numpy Generator.
    """
    rng = np.random.default_rng(random_state)
    T_arr = np.broadcast_to(np.asarray(T, dtype=np.float64), (n,)).copy()
    lam = rng.gamma(r, 1.0 / alpha, n)
    mu = rng.gamma(s, 1.0 / beta, n)
    with np.errstate(divide="ignore"):
        omega = rng.exponential(1.0, n) / mu
    tau = np.minimum(omega, T_arr)
    x = rng.poisson(lam * tau).astype(np.float64)
    u = rng.random(n)
    with np.errstate(divide="ignore"):
        tx = np.where(x > 0, tau * u ** (1.0 / np.maximum(x, 1.0)), 0.0)
    if time_step is not None:
        offset = rng.random(n) * time_step
        tx = np.where(x > 0, np.minimum(np.floor((tx + offset) / time_step) * time_step, T_arr), 0.0)
    return {"frequency": x, "recency": tx, "T": T_arr, "lambda": lam, "mu": mu, "alive": omega > T_arr}
