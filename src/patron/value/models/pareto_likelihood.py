"""The Pareto/NBD likelihood and P(alive), per customer (the formulas of
:mod:`patron.value.models.pareto_nbd`, whose docstring derives them).

They sit in a module of their own, below :mod:`~patron.value.models.pareto_nbd`,
:mod:`~patron.value.models.pareto_dert` and :mod:`~patron.value.models.pareto_pmf`, which all use
them: so those modules import downward, with no circle (docs/architecture.md).
:mod:`~patron.value.models.pareto_nbd` re-exports :func:`log_likelihood` and
:func:`probability_alive`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special

from ._rows import unique_rows
from .pareto_tail import log_tail_integral

__all__ = ["DEDUPE_MIN_ROWS", "log_likelihood", "probability_alive"]


def _as_float(*arrays: Any) -> list[np.ndarray]:
    return [np.asarray(v, dtype=np.float64) for v in arrays]


def _log1mexp(d: np.ndarray) -> np.ndarray:
    """log(1 - exp(d)) for d <= 0 (-inf at d = 0)."""
    with np.errstate(divide="ignore"):
        return np.where(d > -0.693, np.log(-np.expm1(d)), np.log1p(-np.exp(d)))


def _log_parts(x, tx, T, r, alpha, s, beta, log_I_tx, log_I_T):
    """log of the two likelihood terms after the common factor: alive at T, and died in (t_x, T]."""
    log_alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    gap = np.minimum(log_I_T - log_I_tx, 0.0)
    log_died = np.log(s) + log_I_tx + _log1mexp(gap)
    return log_alive, log_died


def _log_front(x, r, alpha, s, beta):
    return special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)


def log_likelihood(frequency, recency, T, r, alpha, s, beta) -> np.ndarray:
    """Per-customer log-likelihood ln L(r, alpha, s, beta | x, t_x, T) (FH 2005 note, Section 3)."""
    x, tx, T, r, alpha, s, beta = _as_float(frequency, recency, T, r, alpha, s, beta)
    log_alive, log_died = _log_parts(x, tx, T, r, alpha, s, beta,
                                     *_log_tail_pair(x, tx, T, r, alpha, s, beta))
    return _log_front(x, r, alpha, s, beta) + np.logaddexp(log_alive, log_died)


DEDUPE_MIN_ROWS = 20_000
"""Predictions evaluate I(t) once per distinct (x, t) pair when there are more rows than this."""


def _log_tail_pair(x, tx, T, r, alpha, s, beta):
    """log I(t_x) and log I(T); with scalar parameters and many rows, once per distinct pair."""
    if np.ndim(r) == 0 and x.ndim == 1 and x.size > DEDUPE_MIN_ROWS:
        x2, tx2, T2 = np.broadcast_arrays(x, tx, T)
        (ux, ut), inv = unique_rows(np.concatenate([x2, x2]), np.concatenate([tx2, T2]))
        log_I = log_tail_integral(ux, ut, r, alpha, s, beta)[inv]
        return log_I[: x2.size], log_I[x2.size:]
    return log_tail_integral(x, tx, r, alpha, s, beta), log_tail_integral(x, T, r, alpha, s, beta)


def probability_alive(frequency, recency, T, r, alpha, s, beta) -> np.ndarray:
    """P(alive at T | x, t_x, T) = alive term / likelihood (FH 2005 note, Section 5)."""
    x, tx, T, r, alpha, s, beta = _as_float(frequency, recency, T, r, alpha, s, beta)
    log_alive, log_died = _log_parts(x, tx, T, r, alpha, s, beta,
                                     *_log_tail_pair(x, tx, T, r, alpha, s, beta))
    return np.exp(log_alive - np.logaddexp(log_alive, log_died))
