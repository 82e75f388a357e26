"""Evaluation of uplift scores on data with a known arm: Qini curve, Qini coefficient, uplift at k.

For customers sorted by score (highest first), let ``n_t(k), n_c(k)`` be the treated and control
customers among the first ``k`` and ``r_t(k), r_c(k)`` their responders. The Qini curve
(Radcliffe 2007) is the incremental number of responders when targeting the first ``k``:

    Q(k) = r_t(k) - r_c(k) * n_t(k) / n_c(k)

plotted against the fraction targeted ``k / N`` and divided here by ``N`` (incremental responders
per customer of the evaluated set). A random ordering gives, on average, the straight line from
``(0, 0)`` to ``(1, Q(N)/N)``. The **Qini coefficient** is the area between the curve and that
line (trapezoids over the fraction targeted); positive means the score finds responsive customers
better than chance. Tied scores are one step (the curve is linear across a tie).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike


def _sorted(score: ArrayLike, treated: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s = np.asarray(score, dtype=float)
    w = np.asarray(treated).astype(bool)
    r = np.asarray(y, dtype=float)
    if not (len(s) == len(w) == len(r)) or len(s) == 0:
        raise ValueError("score, treated and y must be non-empty and of one length")
    order = np.argsort(-s, kind="stable")
    return s[order], w[order], r[order]


def qini_curve(score: ArrayLike, treated: ArrayLike, y: ArrayLike) -> pd.DataFrame:
    """The Qini curve: columns ``fraction`` (share targeted, 0-1), ``qini`` (incremental
    responders per customer of the set), ``random`` (the random-targeting line)."""
    s, w, r = _sorted(score, treated, y)
    nt, nc = np.cumsum(w), np.cumsum(~w)
    rt, rc = np.cumsum(r * w), np.cumsum(r * ~w)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = rt - np.where(nc > 0, rc * nt / nc, 0.0)
    ends = np.r_[s[1:] != s[:-1], True]  # last position of each run of tied scores
    n = len(s)
    frac = np.r_[0.0, (np.arange(1, n + 1) / n)[ends]]
    qini = np.r_[0.0, q[ends] / n]
    return pd.DataFrame({"fraction": frac, "qini": qini, "random": frac * qini[-1]})


def qini_coefficient(score: ArrayLike, treated: ArrayLike, y: ArrayLike) -> float:
    """Area between the Qini curve and the random line (incremental responders per customer x
    fraction targeted); 0 for a useless score, positive for a useful one."""
    c = qini_curve(score, treated, y)
    gap = (c["qini"] - c["random"]).to_numpy()
    x = c["fraction"].to_numpy()
    return float(np.sum((gap[1:] + gap[:-1]) * np.diff(x)) / 2.0)


def uplift_at_k(score: ArrayLike, treated: ArrayLike, y: ArrayLike, k: float) -> float:
    """Response rate of the treated minus that of the control among the top ``k`` share (0-1] of
    customers by score; NaN when that group lacks an arm."""
    if not 0.0 < k <= 1.0:
        raise ValueError(f"k must be in (0, 1]; got {k}")
    _, w, r = _sorted(score, treated, y)
    top = max(1, int(np.ceil(k * len(w))))
    w, r = w[:top], r[:top]
    if w.all() or not w.any():
        return float("nan")
    return float(r[w].mean() - r[~w].mean())
