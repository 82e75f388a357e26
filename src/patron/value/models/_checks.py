"""Validation of model inputs (shared by the continuous-time transaction models)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._rows import ROW_BLOCK, row_blocks

__all__ = ["all_finite", "all_integral", "check_frequency_recency_T"]


def all_finite(a: np.ndarray) -> bool:
    """True when every element is finite (two reductions, no temporary array)."""
    return a.size == 0 or bool(np.isfinite(a.min()) and np.isfinite(a.max()))


def all_integral(a: np.ndarray) -> bool:
    """True when every element of the float array ``a`` is a whole number; checked block by
    block, so no array-sized temporary is allocated (fresh memory costs page faults)."""
    scratch = np.empty(min(a.size, ROW_BLOCK))
    for rows in row_blocks(a.size):
        block = a[rows]
        if not np.array_equal(block, np.floor(block, out=scratch[: block.size])):
            return False
    return True


def check_frequency_recency_T(
    frequency: Any, recency: Any, T: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate and convert (x, t_x, T) for continuous-time models.

    Requires equal-length 1-D finite arrays with x a non-negative integer, ``0 <= t_x <= T``,
    ``T >= 0`` (``T = 0``: a customer first seen at the end of the period, who carries no
    information but is scored like any other; only with ``x = 0``) and ``t_x == 0`` whenever ``x == 0``. Returns float64 arrays (x as float64 too).
    """
    x = np.asarray(frequency, dtype=np.float64).ravel()
    tx = np.asarray(recency, dtype=np.float64).ravel()
    T_ = np.asarray(T, dtype=np.float64).ravel()
    if not (x.shape == tx.shape == T_.shape):
        raise ValueError("frequency, recency and T must have the same length")
    for name, arr in (("frequency", x), ("recency", tx), ("T", T_)):
        if not all_finite(arr):
            raise ValueError(f"{name} contains NaN or infinite values")
    if x.size == 0:
        return x, tx, T_
    if x.min() < 0 or not np.array_equal(x, np.trunc(x)):
        raise ValueError("frequency must be a non-negative integer")
    if T_.min() < 0:
        raise ValueError("T must be non-negative")
    if np.any((T_ == 0) & (x > 0)):
        raise ValueError("T must be positive for customers with repeat purchases")
    if tx.min() < 0 or np.any(tx > T_):
        raise ValueError("recency must satisfy 0 <= recency <= T")
    if np.any(tx[x == 0] != 0):
        raise ValueError("recency must be 0 when frequency is 0")
    return x, tx, T_
