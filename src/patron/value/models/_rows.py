"""Grouping identical rows fast: factorize columns, collapse rows with weights, dot products.

Fitting and predicting work on *distinct* values: a base of millions of customers built from daily
transactions has few distinct (x, t_x, T) rows, fewer distinct (x, T) and a few hundred distinct
T or t_x. These helpers find them in a few linear passes (direct indexing or hashing of each
column, a combined integer key per row; no sorting of the rows).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["compress", "factorize", "group_rows", "subsample_rows", "unique_rows", "wdot"]

SMALL_INTEGER_CODES = 1 << 22
"""Columns of non-negative multiples of 1/D (D a small integer) whose largest multiple is below
this are coded by direct indexing instead of hashing."""

GRID_DENOMINATORS = tuple(range(1, 65))
"""Candidate D: integers (D = 1), halves, whole days divided by 7 (weeks), by 24, ..."""

GRID_SAMPLE = 256
"""Elements inspected to guess D before the whole column is checked exactly."""

KEY_LIMIT = 1 << 62
"""Combined mixed-radix keys are re-densified before their range would pass this (int64)."""

DIRECT_KEY_FACTOR = 32
"""Combined keys whose range is below this multiple of the row count (and below
``DIRECT_KEY_MAX``) are grouped through a dense lookup table instead of hashing."""

DIRECT_KEY_MAX = 1 << 25
"""Largest dense lookup table (entries; 4 bytes each)."""

COUNT_KEY_FACTOR = 8
"""compress sums weights straight into a dense array of the key range when it is below this
multiple of the row count (8 bytes per entry)."""


def _grid_denominator(v: np.ndarray) -> int | None:
    """Smallest D in GRID_DENOMINATORS with v * D integral on a sample (None if none)."""
    sample = v[:: max(1, v.size // GRID_SAMPLE)][:GRID_SAMPLE]
    for d in GRID_DENOMINATORS:
        scaled = sample * d
        if np.all(np.abs(scaled - np.rint(scaled)) <= 1e-9 * np.maximum(scaled, 1.0)):
            return d
    return None


def _grid_factorize(v: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Direct-indexing factorize of non-negative multiples of 1/D, verified exactly; else None."""
    lo, hi = v.min(), v.max()
    if not (lo >= 0 and hi < SMALL_INTEGER_CODES):  # also False when NaN is present
        return None
    if v.dtype.kind != "f":
        ints, d = v.astype(np.intp), 1
    else:
        d = _grid_denominator(v)
        if d is None or hi * d >= SMALL_INTEGER_CODES:
            return None
        ints = np.rint(v * d).astype(np.intp) if d > 1 else v.astype(np.intp)
    present = np.bincount(ints, minlength=int(ints.max()) + 1) > 0
    rank = np.cumsum(present) - 1
    uniques = np.flatnonzero(present)
    uniques = (uniques / d if d > 1 else uniques).astype(v.dtype)
    codes = rank[ints]
    if v.dtype.kind == "f" and not np.array_equal(uniques[codes], v):
        return None
    return uniques, codes


def factorize(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values and the code of each element (``uniques[codes] == values``).

    Columns of non-negative multiples of 1/D for a small integer D (counts, whole days divided by
    7, ...) are coded by direct indexing after scaling, checked to reproduce every value exactly;
    anything else is hashed (pandas.factorize on the bare array). NaN is one value of its own;
    -0.0 equals 0.0.
    """
    v = np.asarray(values).ravel()
    if v.size == 0:
        return v[:0], np.zeros(0, dtype=np.intp)
    if v.dtype.kind in "iuf":
        found = _grid_factorize(v)
        if found is not None:
            return found
    codes, uniques = pd.factorize(v, sort=True, use_na_sentinel=False)
    return np.asarray(uniques, dtype=v.dtype), codes.astype(np.intp, copy=False)


def _combined_key(cols: list[np.ndarray]) -> tuple[np.ndarray, int, list[np.ndarray] | None]:
    """Mixed-radix key of each row (order = lexicographic order of the rows), its range, and the
    distinct values of each column to decode keys (None after a re-densification)."""
    key, size, uniques = None, 1, []
    for c in cols:
        uniq, code = factorize(c)
        if key is None:
            key, size = code, uniq.size
        else:
            if size * uniq.size >= KEY_LIMIT:
                key = pd.factorize(key, sort=True)[0].astype(np.intp)
                size, uniques = int(key.max()) + 1, None
            key = key * uniq.size + code
            size *= uniq.size
        if uniques is not None:
            uniques.append(uniq)
    return key, size, uniques


def _decode(keys: np.ndarray, uniques: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    out = []
    for uniq in reversed(uniques):
        keys, code = np.divmod(keys, uniq.size)
        out.append(uniq[code])
    return tuple(reversed(out))


def group_rows(*columns: Any) -> tuple[np.ndarray, np.ndarray]:
    """Group equal rows of 1-D columns: ``(representative, inverse)``.

    ``inverse[i]`` is the group of row ``i``; groups are numbered in lexicographic order of the
    rows' values (first column = primary key); ``representative[g]`` is the index of one row of
    group ``g``.
    """
    _, inverse, representative = _group(columns, need_representative=True)
    return representative, inverse


def _group(columns, *, need_representative: bool):
    """(unique columns or None, inverse, representative or None)."""
    cols = [np.asarray(c).ravel() for c in columns]
    n = cols[0].shape[0]
    if any(c.shape[0] != n for c in cols):
        raise ValueError("all columns must have the same length")
    if n == 0:
        empty = np.zeros(0, dtype=np.intp)
        return tuple(c[:0] for c in cols), empty, empty
    key, size, uniques = _combined_key(cols)
    if size <= min(DIRECT_KEY_FACTOR * n, DIRECT_KEY_MAX):
        present = np.zeros(size, dtype=bool)
        present[key] = True
        keys = np.flatnonzero(present)
        table = np.empty(size, dtype=np.int32)
        table[keys] = np.arange(keys.size, dtype=np.int32)
        inverse = table[key].astype(np.intp)
    else:
        inverse, keys = pd.factorize(key, sort=True)
        inverse = inverse.astype(np.intp, copy=False)
    representative = None
    if need_representative or uniques is None:
        representative = np.empty(keys.size, dtype=np.intp)
        representative[inverse] = np.arange(n)  # any row of the group: all its rows are equal
    unique_cols = (_decode(np.asarray(keys, dtype=np.intp), uniques) if uniques is not None
                   else tuple(c[representative] for c in cols))
    return unique_cols, inverse, representative


def compress(
    *columns: Any, weights: Any = None
) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Collapse identical rows into unique rows with summed weights.

    Parameters
    ----------
    *columns : 1-D array-likes of equal length (the sufficient statistics, e.g. x, t_x, T).
    weights : 1-D array-like, optional. Non-negative frequency weights (default 1 per row).
        Rows with weight 0 are dropped.

    Returns
    -------
    (unique_columns, summed_weights): unique rows sorted lexicographically (first column is the
    primary key), each column keeping its dtype, and float64 weights. The result does not depend on
    the order of the input rows.
    """
    if not columns:
        raise ValueError("compress needs at least one column")
    cols = [np.asarray(c).ravel() for c in columns]
    n = cols[0].shape[0]
    if any(c.shape[0] != n for c in cols):
        raise ValueError("all columns must have the same length")
    if weights is None:
        w = None
    else:
        w = np.asarray(weights, dtype=np.float64).ravel()
        if w.shape[0] != n:
            raise ValueError("weights must have the same length as the columns")
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError("weights must be finite and non-negative")
        keep = w > 0
        if not np.all(keep):
            cols = [c[keep] for c in cols]
            w = w[keep]
            n = w.shape[0]
    if n == 0:
        return tuple(c[:0] for c in cols), np.zeros(0)
    key, size, uniques = _combined_key(cols)
    if uniques is not None and size <= COUNT_KEY_FACTOR * n:
        sums = np.bincount(key, weights=w, minlength=size)
        keys = np.flatnonzero(sums)
        unique_cols = _decode(keys, uniques)
        return tuple(u.astype(c.dtype, copy=False) for u, c in zip(unique_cols, cols,
                                                                    strict=True)), \
            sums[keys].astype(np.float64, copy=False)
    unique_cols, inverse, _ = _group(cols, need_representative=False)
    summed = np.bincount(inverse, weights=w, minlength=unique_cols[0].size).astype(np.float64)
    return unique_cols, summed


def unique_rows(*columns: Any) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Unique rows of equal-length 1-D columns and the inverse index.

    Returns ``(unique_columns, inverse)`` with ``unique_columns[j][inverse] == columns[j]``, rows in
    lexicographic order; used to evaluate expensive terms once per distinct value combination.
    """
    unique_cols, inverse, _ = _group(columns, need_representative=False)
    return unique_cols, inverse


def wdot(a: np.ndarray, b: np.ndarray) -> float:
    """sum(a * b) without BLAS: multithreaded BLAS dot products on 1-D arrays can be far slower
    (thread start-up, contention) than a single-threaded sum of products."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim == 1 and a.shape == b.shape:
        return float(np.einsum("i,i->", a, b))
    return float(np.multiply(a, b).sum())


ROW_BLOCK = 1 << 14
"""Rows per block of the per-row passes that only need sums: a block's temporaries (128 KiB of
float64) stay in the CPU's cache and are reused, where array-sized temporaries would each be
fresh memory, page-faulted in on every pass."""


def row_blocks(n: int):
    """Slices ``[i, i + ROW_BLOCK)`` covering ``range(n)``."""
    return (slice(i, min(i + ROW_BLOCK, n)) for i in range(0, n, ROW_BLOCK))



def subsample_rows(weights: np.ndarray, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``size`` customers drawn with replacement from compressed rows, in proportion to their
    ``weights`` (uniformly when every weight is 1, without building the CDF): the distinct rows
    drawn (sorted) and how often each was drawn. Sorted draws make the binary searches walk the
    CDF in order (cache-friendly, ~3x faster on 500k rows) and give sorted picks, so runs
    replace np.unique's sort."""
    if float(weights.sum()) == weights.size and weights.min() == 1.0:
        picks = rng.integers(0, weights.size, size)
        picks.sort()
    else:
        cdf = np.cumsum(weights)
        draws = rng.random(size)
        draws.sort()
        picks = np.searchsorted(cdf, draws * cdf[-1], side="right")
        np.minimum(picks, weights.size - 1, out=picks)
    starts = np.flatnonzero(np.r_[True, picks[1:] != picks[:-1]])
    return picks[starts], np.diff(np.r_[starts, picks.size])
