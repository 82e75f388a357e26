"""Draw customer summaries (x, t_x, n) from the BG/BB generative process (Fader, Hardie & Shang
2010, section 2): p ~ Beta(alpha, beta), theta ~ Beta(gamma, delta); an alive customer dies at the
start of each opportunity with probability theta and, while alive, transacts with probability p.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["sample_bgbb"]

CHUNK_CELLS = 1 << 23
"""Customer-opportunity cells drawn at once (bounds memory)."""


def sample_bgbb(
    n: int,
    *,
    alpha: float,
    beta: float,
    gamma: float,
    delta: float,
    n_periods: int,
    random_state: Any = None,
) -> dict[str, np.ndarray]:
    """Simulate ``n`` customers over ``n_periods`` opportunities.

    Returns ``{"frequency", "recency", "n_periods", "alive"}``; ``alive`` says whether the customer
    is still alive at opportunity ``n_periods`` (for checking P(alive) predictions); also the
    drawn ``p``, ``theta`` and ``lifetime`` (opportunities survived).
    """
    rng = np.random.default_rng(random_state)
    p = rng.beta(alpha, beta, n)
    theta = rng.beta(gamma, delta, n)
    # opportunities survived: P(lifetime >= t) = (1 - theta)^t
    lifetime = rng.geometric(np.clip(theta, 1e-300, 1.0)) - 1
    x = np.empty(n)
    tx = np.empty(n)
    step = max(1, CHUNK_CELLS // max(1, n_periods))
    t_idx = np.arange(1, n_periods + 1)
    for start in range(0, n, step):
        sl = slice(start, start + step)
        buys = (rng.random((p[sl].size, n_periods)) < p[sl, None]) & (
            t_idx[None, :] <= lifetime[sl, None])
        x[sl] = buys.sum(axis=1)
        last = n_periods - np.argmax(buys[:, ::-1], axis=1)
        tx[sl] = np.where(x[sl] > 0, last, 0)
    return {"frequency": x, "recency": tx, "n_periods": np.full(n, float(n_periods)),
            "alive": lifetime >= n_periods, "p": p, "theta": theta, "lifetime": lifetime}
