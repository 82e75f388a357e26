"""Optimisers behind :class:`patron.value.models._base.BaseModel`: a modified Newton method for models
with an exact Hessian, L-BFGS-B with seeded restarts for the others, and the covariance from the
observed information.

Both work on a per-customer objective of log-parameters, ``f(theta) -> (value, grad)`` (L-BFGS-B)
or ``(value, grad, hess, extra)`` (Newton); a non-finite value means "outside the domain".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import optimize
from threadpoolctl import threadpool_limits

LOG_PARAM_BOUND = 30.0
"""Box bound on every log-parameter during optimisation (params within [e^-30, e^30])."""

START_PERTURBATION_SD = 1.0
"""Standard deviation (log scale) of the perturbation applied to the first start for restarts."""

GRADIENT_TOLERANCE_ACCEPT = 1e-5
"""Max |gradient| of the per-customer objective accepted as converged (L-BFGS-B after a
non-success stop; Newton at its final point)."""

NEWTON_STEP_TOL = 1e-9
"""Newton stops where its next step would change no log-parameter by more than this."""

START_STEP_TOL = 1e-4
"""The same for optima that only serve as a start (subsample fits)."""

NEWTON_MAX_ITER = 100
"""Maximum Newton iterations."""

NEWTON_FULL_STEP = 1e-6
"""Newton steps smaller than this (max |log-parameter change|) are taken without line search:
inside the quadratic region the objective's rounding noise exceeds the predicted decrease."""

NEWTON_MAX_STEP = 2.0
"""Largest log-parameter change per Newton step (the step is scaled down to it)."""

NEWTON_MIN_SHIFT = 1e-8
"""First diagonal shift (relative to the largest |diagonal| element) tried when the Hessian is not
positive definite; multiplied by 10 until it is (Levenberg-Marquardt style modified Newton)."""

ARMIJO = 1e-4
"""Sufficient-decrease constant of the backtracking line search."""

LBFGS_OPTIONS = {"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-8, "maxcor": 20}


def _cholesky(h: np.ndarray) -> np.ndarray | None:
    if not np.all(np.isfinite(h)):
        return None
    try:
        return np.linalg.cholesky(h)
    except np.linalg.LinAlgError:
        return None


def _newton_direction(h: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, bool] | None:
    """-(h + mu I)^-1 g with the smallest shift mu >= 0 found that makes it positive definite."""
    chol = _cholesky(h)
    exact = chol is not None
    mu = NEWTON_MIN_SHIFT * max(float(np.max(np.abs(np.diag(h)))), 1.0)
    while chol is None:
        if not np.isfinite(mu) or mu > 1e12:
            return None
        chol = _cholesky(h + mu * np.eye(h.shape[0]))
        mu *= 10.0
    y = np.linalg.solve(chol, -g)
    return np.linalg.solve(chol.T, y), exact


def newton(f: Callable[[np.ndarray], tuple], theta: np.ndarray, *,
           step_tol: float = NEWTON_STEP_TOL) -> tuple[np.ndarray, Any, str] | None:
    """Modified Newton with backtracking from ``theta``.

    Returns ``(theta, extra, message)`` at the first point where the Hessian is positive definite,
    the gradient small and the Newton step changes no log-parameter by more than ``step_tol`` (the
    step is not taken: by quadratic convergence the point is then within about ``step_tol`` of
    the optimum, its objective within ~``step_tol**2``); None when it fails (no descent possible,
    iteration limit).
    """
    theta = np.asarray(theta, dtype=np.float64)
    value, g, h, extra = f(theta)
    if not np.isfinite(value):
        return None
    for iteration in range(1, NEWTON_MAX_ITER + 1):
        found = _newton_direction(h, g)
        if found is None:
            return None
        step, exact = found
        largest = float(np.max(np.abs(step)))
        if exact and largest < step_tol:
            grad_max = float(np.max(np.abs(g)))
            if grad_max >= GRADIENT_TOLERANCE_ACCEPT:
                return None
            return theta, extra, (f"Newton converged in {iteration - 1} iterations "
                                  f"(max |gradient| {grad_max:.1e})")
        if largest > NEWTON_MAX_STEP:
            step *= NEWTON_MAX_STEP / largest
            largest = NEWTON_MAX_STEP
        slope = float(g @ step)
        t = 1.0
        while True:
            cand = np.clip(theta + t * step, -LOG_PARAM_BOUND, LOG_PARAM_BOUND)
            out = f(cand)
            small = exact and t * largest < NEWTON_FULL_STEP
            if np.isfinite(out[0]) and (small or out[0] <= value + ARMIJO * t * slope):
                break
            t *= 0.5
            if t * largest < step_tol * 1e-3:
                return None
        theta = cand
        value, g, h, extra = out
    return None


def lbfgs_multistart(f: Callable[[np.ndarray], tuple], first: np.ndarray, *, n_starts: int,
                     rng: np.random.Generator,
                     bounds: list[tuple[float, float]] | None = None) -> tuple[Any, bool, list[str], int]:
    """L-BFGS-B from ``first`` then seeded perturbations of it until one converges, within
    ``bounds`` (default ``+/-LOG_PARAM_BOUND`` on every log-parameter).

    Returns ``(best scipy result or None, converged, messages, starts used)``; the best finite
    result wins, a converged one before any other.
    """
    bounds = bounds or [(-LOG_PARAM_BOUND, LOG_PARAM_BOUND)] * first.size
    # L-BFGS-B's updates are tiny BLAS calls; a multi-threaded BLAS spends more time waking its
    # threads than computing (measured ~10 ms vs ~0.8 ms per iteration on 2 cores).
    with threadpool_limits(limits=1, user_api="blas"):
        return _lbfgs_starts(f, first, bounds, n_starts=n_starts, rng=rng)


def _lbfgs_starts(f: Callable[[np.ndarray], tuple], first: np.ndarray, bounds: list, *, n_starts: int,
                  rng: np.random.Generator) -> tuple[Any, bool, list[str], int]:
    k = first.size
    best, best_ok, messages, n_used = None, False, [], 0
    for i in range(max(1, int(n_starts))):
        x0 = first if i == 0 else np.clip(first + rng.normal(0.0, START_PERTURBATION_SD, k),
                                          -LOG_PARAM_BOUND + 1, LOG_PARAM_BOUND - 1)
        x0 = np.clip(x0, [lo for lo, _ in bounds], [hi for _, hi in bounds])
        n_used += 1
        res = optimize.minimize(f, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                                options=LBFGS_OPTIONS)
        finite = bool(np.isfinite(res.fun))
        ok = finite and (bool(res.success) or
                         float(np.max(np.abs(res.jac))) < GRADIENT_TOLERANCE_ACCEPT)
        messages.append(str(res.message))
        if finite and (best is None or (ok and not best_ok) or
                       (ok == best_ok and res.fun < best.fun)):
            best, best_ok = res, ok
        if ok:
            break
    return best, best_ok, messages, n_used


def invert_information(hess: np.ndarray) -> tuple[np.ndarray, bool]:
    """Invert an observed information matrix; NaN matrix if it is not positive definite."""
    k = hess.shape[0]
    chol = _cholesky(hess)
    if chol is None:
        return np.full((k, k), np.nan), False
    inv_chol = np.linalg.solve(chol, np.eye(k))
    cov = inv_chol.T @ inv_chol
    return 0.5 * (cov + cov.T), True
