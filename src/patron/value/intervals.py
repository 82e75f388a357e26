"""Interval estimates for shares and for differences between a treated and a control group,
vectorised over rows (used by the backtests and the measured effect of contact).

* :func:`wilson_interval` — Wilson score interval of a proportion (Wilson 1927).
* :func:`newcombe_interval` — Newcombe's hybrid score interval for a difference of proportions
  (Newcombe 1998, *Statistics in Medicine* 17:873-890, method 10): Wilson limits of each arm
  combined by the square-and-add rule. Better coverage than the Wald interval near 0 and 1.
* :func:`welch_interval` — Welch's interval for a difference of means with unequal variances
  (Welch-Satterthwaite degrees of freedom).
* :func:`mantel_haenszel_difference` — the Mantel-Haenszel risk difference over strata
  (Greenland & Robins 1985, *Biometrics* 41:55-68) with Sato's variance (Sato 1989, *Biometrics*
  45:1323-1324), which stays valid with many small strata.
* :func:`ratio_interval` — a ratio of two sums over the same units (actual over predicted
  purchases), with the linearised (sandwich) variance of the ratio estimator (Cochran 1977,
  *Sampling Techniques*, section 6.4).

All take NumPy arrays (or scalars) and return arrays; a row with no data gives NaN.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

Interval = tuple[np.ndarray, np.ndarray, np.ndarray]


def z_value(level: float) -> float:
    """Two-sided standard-normal quantile for ``level`` (1.959964 for 0.95)."""
    return float(stats.norm.ppf(0.5 + level / 2.0))


def wilson_interval(successes: ArrayLike, n: ArrayLike, *, level: float = 0.95) -> Interval:
    """``(p, lower, upper)``: the share ``successes / n`` and its Wilson score interval."""
    x = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    z = z_value(level)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = x / n
        centre = (x + z * z / 2.0) / (n + z * z)
        half = z * np.sqrt(n * p * (1.0 - p) + z * z / 4.0) / (n + z * z)
    bad = ~(n > 0)
    p, lo, hi = (np.where(bad, np.nan, a) for a in (p, centre - half, centre + half))
    return p, np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)


def newcombe_interval(x1: ArrayLike, n1: ArrayLike, x0: ArrayLike, n0: ArrayLike, *, level: float = 0.95) -> Interval:
    """``(difference, lower, upper)`` for ``x1/n1 - x0/n0`` (Newcombe 1998, method 10)."""
    p1, l1, u1 = wilson_interval(x1, n1, level=level)
    p0, l0, u0 = wilson_interval(x0, n0, level=level)
    d = p1 - p0
    lower = d - np.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    upper = d + np.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    return d, lower, upper


def welch_interval(
    mean1: ArrayLike, var1: ArrayLike, n1: ArrayLike, mean0: ArrayLike, var0: ArrayLike, n0: ArrayLike, *, level: float = 0.95
) -> Interval:
    """``(difference, lower, upper)`` for ``mean1 - mean0`` with Welch's t interval.

    ``var1`` and ``var0`` are sample variances (denominator ``n - 1``). When both are 0 the interval
    is the point itself; when an arm has fewer than 2 members it is NaN.
    """
    m1, v1, k1, m0, v0, k0 = (np.asarray(a, dtype=float) for a in (mean1, var1, n1, mean0, var0, n0))
    d = m1 - m0
    with np.errstate(invalid="ignore", divide="ignore"):
        a, b = v1 / k1, v0 / k0
        se = np.sqrt(a + b)
        df = (a + b) ** 2 / (a * a / (k1 - 1.0) + b * b / (k0 - 1.0))
        t = stats.t.ppf(0.5 + level / 2.0, np.where(np.isfinite(df) & (df > 0), df, 1.0))
    half = np.where(se == 0, 0.0, t * se)
    half = np.where((k1 < 2) | (k0 < 2), np.nan, half)
    return d, d - half, d + half


def mantel_haenszel_difference(
    x1: ArrayLike, n1: ArrayLike, x0: ArrayLike, n0: ArrayLike, *, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(difference, lower, upper, weight)``: the Mantel-Haenszel estimate of ``x1/n1 - x0/n0``
    common to the strata along the last axis, with a normal interval from Sato's variance.

    With ``N = n1 + n0`` per stratum, the estimate is ``sum((x1 n0 - x0 n1) / N) / W``, ``W =
    sum(n1 n0 / N)`` (``weight``); only strata with members in both groups count. Its variance is
    ``(d P + Q) / W**2`` with ``P = sum((n1**2 x0 - n0**2 x1 + n1 n0 (n0 - n1) / 2) / N**2)`` and
    ``Q = sum((x1 (n0 - x0) + x0 (n1 - x1)) / (2 N))``; with one stratum it is the Wald variance
    ``p1 (1 - p1) / n1 + p0 (1 - p0) / n0``. NaN where no stratum has both groups.
    """
    a, m1, c, m0 = (np.asarray(v, dtype=float) for v in (x1, n1, x0, n0))
    both = (m1 > 0) & (m0 > 0)
    big_n = np.where(both, m1 + m0, 1.0)
    w = np.where(both, m1 * m0 / big_n, 0.0)
    total = w.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.where(both, (a * m0 - c * m1) / big_n, 0.0).sum(axis=-1) / total
        p = np.where(both, (m1**2 * c - m0**2 * a + m1 * m0 * (m0 - m1) / 2.0) / big_n**2, 0.0).sum(axis=-1)
        q = np.where(both, (a * (m0 - c) + c * (m1 - a)) / (2.0 * big_n), 0.0).sum(axis=-1)
        half = z_value(level) * np.sqrt(np.maximum((d * p + q) / total**2, 0.0))
    d = np.where(total > 0, d, np.nan)
    return d, d - half, d + half, total


def ratio_interval(sum_y: ArrayLike, sum_x: ArrayLike, sum_yy: ArrayLike, sum_xy: ArrayLike, sum_xx: ArrayLike,
                   n: ArrayLike, *, level: float = 0.95) -> Interval:
    """``(ratio, lower, upper)`` for ``R = sum(y) / sum(x)`` over ``n`` units (e.g. customers'
    actual and predicted purchases), from the sums ``sum(y)``, ``sum(x)``, ``sum(y^2)``,
    ``sum(x y)``, ``sum(x^2)`` of each row's units.

    Normal interval around ``R`` with the linearised variance of a ratio estimator,
    ``n / (n - 1) * sum((y - R x)^2) / sum(x)^2``, where ``sum((y - R x)^2) = sum(y^2) - 2 R
    sum(x y) + R^2 sum(x^2)``; the lower limit is clipped at 0. When ``sum(y)`` is 0 (no event in
    the row, where that variance is 0) the interval is ``[0, -ln((1 - level) / 2) / sum(x)]``, the
    exact Poisson upper limit for 0 events (3.689 / sum(x) at 95%). NaN when ``sum(x)`` is not
    positive or ``n < 2``.
    """
    y, x, yy, xy, xx, k = (np.asarray(a, dtype=float) for a in (sum_y, sum_x, sum_yy, sum_xy, sum_xx, n))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = y / x
        rss = np.maximum(yy - 2.0 * r * xy + r * r * xx, 0.0)
        se = np.sqrt(k / (k - 1.0) * rss) / x
    half = z_value(level) * se
    with np.errstate(invalid="ignore", divide="ignore"):
        zero_upper = -np.log((1.0 - level) / 2.0) / x
    upper = np.where(y == 0, zero_upper, r + half)
    bad = ~(x > 0) | (k < 2)
    r, lo, hi = (np.where(bad, np.nan, a) for a in (r, np.maximum(r - half, 0.0), upper))
    return r, lo, hi
