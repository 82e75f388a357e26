"""Covariate paths over calendar periods, and each customer's time axis laid over them.

The time-varying covariates of :mod:`patron.value.models.pareto_nbd_dynamic` are piecewise constant on a
grid of equal calendar periods: period j covers ``[j L, (j+1) L)`` in the model's time unit from
the grid origin (L = ``period_length``, e.g. 1 for weekly periods and a weekly model). Customer i
is acquired at ``first[i]`` on that axis, so their time t (since the first purchase) is calendar
time ``first[i] + t``, and the integrated rate multipliers are

    A_i(t) = int_0^t exp(gamma . x_i(first_i + u)) du = sum_j exp(gamma . x_ij) |[jL, (j+1)L) n [first_i, first_i + t]|,

i.e. sums of the covariate factor times the *overlap* of each period with the customer's window
(Bachmann, Meierer & Naef 2021, Section 3.2: the walks of adjusted covariates). The overlaps do
not depend on the parameters and are computed once.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["DynamicData", "dynamic_data", "overlaps"]


def overlaps(first: np.ndarray, length: np.ndarray, n_periods: int, period_length: float) -> np.ndarray:
    """|[jL, (j+1)L) n [first_i, first_i + length_i]| as an (n, n_periods) array."""
    starts = np.arange(n_periods) * period_length
    lo = np.maximum(starts[None, :], first[:, None])
    hi = np.minimum(starts[None, :] + period_length, (first + length)[:, None])
    return np.maximum(hi - lo, 0.0)


class DynamicData(NamedTuple):
    """One fit's data, the periods of each customer merged into *segments*: runs of consecutive
    periods with the same purchase and dropout covariates (the rates are constant on a run, so it
    is one piece of the likelihood's integral; seasonal or static covariates give a few segments
    per customer instead of one per period).

    Per customer: x, t_x, T, weights, ``first`` (acquisition on the grid); per segment (n, m):
    calendar bounds ``lo``, ``hi`` (padding segments have lo = hi), covariates ``X`` (n, m, kp)
    and ``Z`` (n, m, kd), overlaps ``ov_T``, ``ov_tx`` with the customer's (0, T] and (0, t_x];
    ``S`` (n, kp) the purchase covariates summed over the repeat purchases."""

    x: np.ndarray
    tx: np.ndarray
    T: np.ndarray
    w: np.ndarray
    first: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    X: np.ndarray
    Z: np.ndarray
    S: np.ndarray
    ov_T: np.ndarray
    ov_tx: np.ndarray
    period_length: float

    @property
    def n(self) -> float:
        return float(self.w.sum())

    def window(self, start: np.ndarray, length: np.ndarray) -> np.ndarray:
        """Overlap (n, m) of each segment with the customer-time window (start, start + length]."""
        a = self.first + start
        return np.maximum(np.minimum(self.hi, (a + length)[:, None]) - np.maximum(self.lo, a[:, None]), 0.0)


def segments(X: np.ndarray, Z: np.ndarray, period_length: float):
    """Merge runs of equal covariate rows: (lo, hi, X_seg, Z_seg), each (n, m[, k])."""
    n, J = X.shape[:2]
    both = np.concatenate([X, Z], axis=2)
    change = np.ones((n, J), dtype=bool)
    if J > 1:
        change[:, 1:] = np.any(both[:, 1:] != both[:, :-1], axis=2) if both.shape[2] else False
    seg = np.cumsum(change, 1) - 1
    m = int(seg.max()) + 1 if seg.size else 0
    rows = np.repeat(np.arange(n), J)
    starts = np.arange(J) * period_length
    lo = np.full((n, m), np.inf)
    hi = np.full((n, m), np.inf)
    np.minimum.at(lo, (rows, seg.ravel()), np.tile(starts, n))
    hi_vals = np.full((n, m), -np.inf)
    np.maximum.at(hi_vals, (rows, seg.ravel()), np.tile(starts + period_length, n))
    hi = np.where(np.isfinite(lo), hi_vals, np.inf)
    ii, jj = np.nonzero(change)
    Xs = np.zeros((n, m, X.shape[2]))
    Zs = np.zeros((n, m, Z.shape[2]))
    Xs[ii, seg[ii, jj]] = X[ii, jj]
    Zs[ii, seg[ii, jj]] = Z[ii, jj]
    return lo, hi, Xs, Zs


def dynamic_data(x, tx, T, first, X, Z, S, *, period_length: float = 1.0, weights=None) -> DynamicData:
    """Validate and assemble :class:`DynamicData`. ``X``/``Z``: (n, J, k) covariate values per
    period of the grid, covering every customer's window ``[first, first + T]`` (and the
    prediction horizon, for predictions); ``S``: (n, kp) purchase-covariate sums over the repeat
    purchases (:func:`purchase_sums`)."""
    x, tx, T, first = (np.asarray(v, dtype=np.float64).ravel() for v in (x, tx, T, first))
    X, Z = np.asarray(X, dtype=np.float64), np.asarray(Z, dtype=np.float64)
    S = np.asarray(S, dtype=np.float64).reshape(x.size, X.shape[2])
    n, J = x.size, X.shape[1]
    if X.shape[:2] != (n, J) or Z.shape[:2] != (n, J):
        raise ValueError(f"covariate paths must have shape (customers, periods, k); got {X.shape} and {Z.shape}")
    if np.any(first < 0) or np.any(first + T > J * period_length + 1e-9):
        raise ValueError("covariate paths must cover every customer from the first purchase to T")
    for name, arr in (("X", X), ("Z", Z), ("S", S)):
        if arr.size and not np.all(np.isfinite(arr)):
            raise ValueError(f"covariate {name} contains NaN or infinite values")
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    lo, hi, Xs, Zs = segments(X, Z, float(period_length))
    data = DynamicData(x, tx, T, w, first, lo, hi, Xs, Zs, S, np.zeros(lo.shape), np.zeros(lo.shape),
                       float(period_length))
    zero = np.zeros(n)
    return data._replace(ov_T=data.window(zero, T), ov_tx=data.window(zero, tx))


def purchase_sums(counts: np.ndarray, X: np.ndarray) -> np.ndarray:
    """S_i = sum_j counts_ij X_ij: the purchase covariates summed over the repeat purchases
    (``counts``: (n, J) repeat purchases per period)."""
    return np.einsum("nj,njk->nk", np.asarray(counts, dtype=np.float64), X)
