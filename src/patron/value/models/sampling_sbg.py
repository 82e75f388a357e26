"""Draw contract durations from the shifted-beta-geometric model (Fader & Hardie 2007, section 3):
theta ~ Beta(alpha, beta) per customer and lifetime T ~ Geometric(theta) on {1, 2, ...}.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["sample_sbg"]


def sample_sbg(
    n: int, *, alpha: float, beta: float, n_periods: int, random_state: Any = None
) -> dict[str, np.ndarray]:
    """Simulate ``n`` customers observed for ``n_periods`` periods.

    Returns ``{"duration", "churned"}``: the churn period when it falls within the observation
    window (``churned`` True), else ``n_periods`` (still active, right-censored).
    """
    rng = np.random.default_rng(random_state)
    theta = rng.beta(alpha, beta, n)
    lifetime = rng.geometric(np.clip(theta, 1e-300, 1.0)).astype(np.float64)
    churned = lifetime <= n_periods
    return {"duration": np.where(churned, lifetime, float(n_periods)), "churned": churned}
