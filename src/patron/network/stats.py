"""Vectorized tree statistics and the intervals of the referral analysis.

Trees are given as arrays over nodes: ``parent`` (index of the parent node, -1 for a root),
``depth`` (0 for a root) and ``tree`` (index of the tree). Loops run over generations, never over
nodes.

The intervals for referred vs other customers (Welch, Newcombe) are those of
:mod:`patron.value.intervals`, the one implementation the backtests and the contact effect use
too; this module wraps them as :class:`Estimate` values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from patron.value.intervals import newcombe_interval, welch_interval, z_value


def subtree_sizes(parent: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Number of nodes in each node's subtree, itself included (one pass per generation, deepest first)."""
    parent = np.asarray(parent, dtype=np.int64)
    depth = np.asarray(depth, dtype=np.int64)
    sizes = np.ones(len(parent), dtype=np.float64)
    for d in range(int(depth.max(initial=0)), 0, -1):
        at = np.flatnonzero(depth == d)
        sizes += np.bincount(parent[at], weights=sizes[at], minlength=len(parent))
    return sizes


def structural_virality(parent: np.ndarray, depth: np.ndarray, tree: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per tree: size ``n`` and structural virality, the mean shortest-path distance over all pairs
    of nodes (Goel, Anderson, Hofman & Watts 2015, eq. 1), NaN for a single node.

    Computed through the Wiener index of a tree, ``W = sum over edges s (n - s)`` where ``s`` is the
    size of the subtree below the edge: virality ``= 2W / (n (n - 1))``.
    """
    tree = np.asarray(tree, dtype=np.int64)
    n_trees = int(tree.max(initial=-1)) + 1
    n = np.bincount(tree, minlength=n_trees).astype(np.float64)
    s = subtree_sizes(parent, depth)
    child = np.asarray(parent) >= 0
    wiener = np.bincount(tree[child], weights=s[child] * (n[tree[child]] - s[child]), minlength=n_trees)
    with np.errstate(invalid="ignore", divide="ignore"):
        virality = np.where(n > 1, 2.0 * wiener / (n * (n - 1.0)), np.nan)
    return n, virality


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its interval at ``level`` and how the interval was made."""

    value: float
    lower: float
    upper: float
    level: float
    method: str

    def to_dict(self) -> dict[str, float | str]:
        """Plain dict for JSON."""
        return {"value": self.value, "lower": self.lower, "upper": self.upper, "level": self.level, "method": self.method}


NAN_ESTIMATE = Estimate(float("nan"), float("nan"), float("nan"), 0.95, "none")


def mean_from_sums(n: float, total: float, total_sq: float, *, level: float) -> Estimate:
    """Mean of ``n`` values from their sum and sum of squares; normal (CLT) interval."""
    if n < 1:
        return Estimate(float("nan"), float("nan"), float("nan"), level, "none")
    mean = total / n
    if n < 2:
        return Estimate(float(mean), float("nan"), float("nan"), level, "none (one unit)")
    var = max(total_sq / n - mean * mean, 0.0) * n / max(n - 1.0, 1.0)
    half = z_value(level) * np.sqrt(var / n)
    return Estimate(float(mean), float(mean - half), float(mean + half), level, "normal (CLT over sharers)")


def ratio_from_sums(n: float, num: float, den: float, num_sq: float, den_sq: float, cross: float, *, level: float) -> Estimate:
    """Ratio ``sum(y) / sum(x)`` over ``n`` units with its delta-method interval: the variance is
    ``var(y - R x) / (n mean(x)^2)``, from sums, squares and cross-products."""
    if n < 1 or den <= 0:
        return Estimate(float("nan"), float("nan"), float("nan"), level, "none")
    r = num / den
    resid_sq = num_sq - 2.0 * r * cross + r * r * den_sq  # sum of (y - R x)^2
    var = resid_sq / max(n - 1.0, 1.0) / (n * (den / n) ** 2)
    half = z_value(level) * np.sqrt(max(var, 0.0))
    return Estimate(float(r), float(r - half), float(r + half), level, "delta method over sharers")


def welch(a: np.ndarray, b: np.ndarray, *, level: float) -> Estimate:
    """Difference of means ``mean(a) - mean(b)`` (non-finite values left out) with the Welch t
    interval of :func:`patron.value.intervals.welch_interval`; all NaN when a group has fewer than
    two values."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(a) < 2 or len(b) < 2:
        return Estimate(float("nan"), float("nan"), float("nan"), level, "welch")
    diff, lower, upper = welch_interval(a.mean(), a.var(ddof=1), len(a), b.mean(), b.var(ddof=1), len(b), level=level)
    return Estimate(float(diff), float(lower), float(upper), level, "welch")


def newcombe(xa: float, na: float, xb: float, nb: float, *, level: float) -> Estimate:
    """Difference of proportions ``xa/na - xb/nb`` with Newcombe's hybrid score interval
    (Newcombe 1998, method 10) of :func:`patron.value.intervals.newcombe_interval`; all NaN when a
    group is empty."""
    if na < 1 or nb < 1:
        return Estimate(float("nan"), float("nan"), float("nan"), level, "newcombe")
    diff, lower, upper = newcombe_interval(xa, na, xb, nb, level=level)
    return Estimate(float(diff), float(lower), float(upper), level, "newcombe")
