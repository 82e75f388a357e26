"""The tail integral of the Pareto/NBD likelihood, with its exact first and second derivatives.

    I(t) = int_t^inf (alpha+tau)^-(r+x) (beta+tau)^-(s+1) dtau

(:mod:`patron.value.models.pareto_nbd` writes the likelihood with it instead of the paper's 2F1:
Fader & Hardie 2005, "A Note on Deriving the Pareto/NBD Model", Section 3). With
M = max(alpha, beta), m = min(alpha, beta), K = M + t, q = (M - m) / (m + t) and
tau = K e^w - M,

    I(t) = K^-(a-c) (m+t)^-c J(a, c, q),   J = int_0^inf exp(-a w - c L(w)) dw,
    L(w) = log(1 + q (1 - e^-w)),   a = r+s+x,   c = s+1 (alpha >= beta) or r+x (alpha < beta).

The integrand of J is log-convex and decreasing; after w = sigma (e^u - 1), with sigma the
distance to its branch point (scaled by 1/max(c, 1)), it is smooth in u and a fixed
Gauss-Legendre rule on [0, U] (U covering a drop of ``TAIL_LOG_DROP`` nats) is accurate to
~1e-13 relative for |log(alpha/beta)| up to ~14.

Derivatives. With E[.] the mean under the density exp(-a w - c L) / J (the quadrature weights
normalised), d log J / d(a, c, q) = -E[w], -E[L], -c E[L_q] with L_q = dL/dq =
(1 - e^-w) / (1 + q (1 - e^-w)), and the second derivatives are the covariances of those
scores plus the mean curvature: Var w, Cov(w, L), c Cov(w, L_q), Var L,
c Cov(L, L_q) - E[L_q], c^2 Var L_q + c E[L_q^2] (dL_q/dq = -L_q^2). The chain rule through
(a, c, M, m) gives the derivatives in (r, alpha, s, beta); every moment is a sum over the same
nodes, so the gradient and the Hessian are exact to the precision of the value.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["CHUNK_ROWS", "QUADRATURE_NODES", "TAIL_LOG_DROP", "log_tail_integral"]

QUADRATURE_NODES = 64
"""Gauss-Legendre nodes for the tail integral I(t) (one fixed rule, mapped per row)."""

TAIL_LOG_DROP = 45.0
"""Nats of decay of the integrand (relative to its value at the lower limit) covered by the rule;
the neglected tail is below exp(-TAIL_LOG_DROP) ~ 3e-20 of the integral."""

CHUNK_ROWS = 2048
"""Rows evaluated together: a temporary of CHUNK_ROWS x QUADRATURE_NODES doubles (1 MiB) stays
in the CPU's cache between the passes over it, where larger chunks go to memory on every pass
(180k rows with derivatives, medians of 5: 16,384 rows per chunk 1.3x slower for the gradient,
2x with the Hessian)."""

_GL_X, _GL_W = np.polynomial.legendre.leggauss(QUADRATURE_NODES)
_NODES = 0.5 * (_GL_X + 1.0)
_WEIGHTS = 0.5 * _GL_W

HESSIAN_PAIRS = ((0, 0), (0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3), (2, 2), (2, 3), (3, 3))
"""The (i, j), i <= j, of the Hessian entries returned, in (r, alpha, s, beta) order."""


def _mean(g: np.ndarray, h: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Row means of ``h`` under the (unnormalised) node weights ``g``."""
    return np.einsum("ij,ij->i", g, h) / total


def _log_tail_chunk(x, t, r, alpha, s, beta, order: int):
    """log I(t), and for ``order`` >= 1 d log I / d(r, alpha, s, beta) (4, n), for ``order`` 2
    the second derivatives at :data:`HESSIAN_PAIRS` (10, n); 1-D arrays of equal length."""
    a = r + s + x
    ge = alpha >= beta
    K = np.where(ge, alpha, beta) + t
    omz = (np.where(ge, beta, alpha) + t) / K  # 1 - z, computed without cancellation
    z = 1.0 - omz
    c = np.where(ge, s + 1.0, r + x)
    with np.errstate(divide="ignore"):
        branch = -np.log(z)  # distance of the integrand's branch point from w = 0 (inf if z = 0)
    kappa = 1.0 + c * z / (omz * a)  # initial decay rate relative to the asymptotic one (>= 1)
    sigma = 1.0 / (a + np.maximum(c, 1.0) / branch)
    U = np.log1p((TAIL_LOG_DROP + np.log(kappa)) / (a * sigma))
    e_u = np.multiply.outer(U, _NODES)
    np.exp(e_u, out=e_u)
    w = np.subtract(e_u, 1.0)
    w *= sigma[:, None]
    one_m_ew = np.negative(w)
    np.expm1(one_m_ew, out=one_m_ew)
    np.negative(one_m_ew, out=one_m_ew)
    q = z / omz
    # log((1 - z e^-w) / (1 - z)) = log(1 + q (1 - e^-w)); absolute error ~1e-16, all that matters
    den = one_m_ew * q[:, None]
    den += 1.0
    log_m_rel = np.log(den)
    g = np.multiply(log_m_rel, -c[:, None])
    g -= a[:, None] * w
    np.maximum(g, -700.0, out=g)  # the clip only avoids slow subnormals
    np.exp(g, out=g)
    g *= e_u
    g *= (sigma * U)[:, None] * _WEIGHTS  # dw = sigma e^u du on u in [0, U]
    total = g.sum(axis=1)
    log_omz = np.log(omz)
    log_K = np.log(K)
    log_I = -a * log_K - c * log_omz + np.log(total)
    if order == 0:
        return log_I, None, None
    e_w = _mean(g, w, total)
    e_L = _mean(g, log_m_rel, total)
    e_log_m = log_omz + e_L
    # e^-w / (1 - z e^-w) = (1 - one_m_ew) / (omz * (1 + q one_m_ew))
    ratio = np.subtract(1.0, one_m_ew)
    ratio /= den
    e_q = _mean(g, ratio, total) / omz
    d_a = -log_K - e_w  # d log I / d a
    d_c = -e_log_m  # d log I / d c
    d_big = (-a + c * e_q * omz) / K  # d log I / d M
    d_small = -c * e_q / K  # d log I / d m
    d_r = d_a + np.where(ge, 0.0, d_c)
    d_s = d_a + np.where(ge, d_c, 0.0)
    d_alpha = np.where(ge, d_big, d_small)
    d_beta = np.where(ge, d_small, d_big)
    grad = np.stack([d_r, d_alpha, d_s, d_beta])
    if order == 1:
        return log_I, grad, None
    return log_I, grad, _hessian(g, total, w, e_w, log_m_rel, e_L, one_m_ew, den, a, c, q, K, omz, ge)


def _hessian(g, total, w, e_w, L, e_L, one_m_ew, den, a, c, q, K, omz, ge) -> np.ndarray:
    """Second derivatives of log I in (r, alpha, s, beta) (module docstring), (10, n)."""
    Lq = np.divide(one_m_ew, den, out=den)  # dL/dq; den is not needed any more
    e_Lq = _mean(g, Lq, total)
    w -= e_w[:, None]  # centred scores: covariances without cancellation
    L -= e_L[:, None]
    gw = np.multiply(g, w)
    v_ww = np.einsum("ij,ij->i", gw, w) / total
    v_wL = np.einsum("ij,ij->i", gw, L) / total
    Lq -= e_Lq[:, None]
    v_wq = np.einsum("ij,ij->i", gw, Lq) / total
    gL = np.multiply(g, L, out=gw)
    v_LL = np.einsum("ij,ij->i", gL, L) / total
    v_Lq = np.einsum("ij,ij->i", gL, Lq) / total
    v_qq = _mean(g, np.square(Lq, out=gL), total)
    e_Lq2 = v_qq + e_Lq * e_Lq
    # second derivatives of log J in (a, c, q)
    j_aa, j_ac, j_aq = v_ww, v_wL, c * v_wq
    j_cc, j_cq, j_qq = v_LL, c * v_Lq - e_Lq, c * c * v_qq + c * e_Lq2
    j_q = -c * e_Lq
    # log I = -(a - c) log KM - c log Km + log J(a, c, q),  q = KM / Km - 1
    KM = K
    Km = omz * K
    iM, im = 1.0 / KM, 1.0 / Km
    f_aM = -iM + j_aq * im
    f_am = -j_aq * KM * im * im
    f_cM = iM + j_cq * im
    f_cm = -im - j_cq * KM * im * im
    f_MM = (a - c) * iM * iM + j_qq * im * im
    f_Mm = -j_qq * KM * im ** 3 - j_q * im * im
    f_mm = c * im * im + j_qq * (KM * im * im) ** 2 + 2.0 * j_q * KM * im ** 3
    f_aa, f_ac, f_cc = j_aa, j_ac, j_cc
    # (r, s) load on a and on c (c = s+1 when alpha >= beta, r+x otherwise); alpha, beta on M or m
    f_big_c = f_aa + 2.0 * f_ac + f_cc  # the parameter in both a and c
    f_both = f_aa + f_ac
    h_rr = np.where(ge, f_aa, f_big_c)
    h_ss = np.where(ge, f_big_c, f_aa)
    h_rs = f_both
    h_r_alpha = np.where(ge, f_aM, f_am + f_cm)
    h_r_beta = np.where(ge, f_am, f_aM + f_cM)
    h_s_alpha = np.where(ge, f_aM + f_cM, f_am)
    h_s_beta = np.where(ge, f_am + f_cm, f_aM)
    h_aa = np.where(ge, f_MM, f_mm)
    h_bb = np.where(ge, f_mm, f_MM)
    return np.stack([h_rr, h_r_alpha, h_rs, h_r_beta, h_aa, h_s_alpha, f_Mm, h_ss, h_s_beta, h_bb])


def _as_float(*arrays: Any) -> list[np.ndarray]:
    return [np.asarray(v, dtype=np.float64) for v in arrays]


def log_tail_integral(x, t, r, alpha, s, beta, *, grad: bool = False, hessian: bool = False):
    """log I(t), I(t) = int_t^inf (alpha+tau)^-(r+x) (beta+tau)^-(s+1) dtau; arrays broadcast.

    With ``grad=True`` also returns an array of shape ``(4, *shape)`` holding the partial
    derivatives of log I with respect to (r, alpha, s, beta); with ``hessian=True`` (implies
    ``grad``) also the second derivatives, shape ``(10, *shape)``, at :data:`HESSIAN_PAIRS`.
    """
    arrays = np.broadcast_arrays(*_as_float(x, t, r, alpha, s, beta))
    shape = arrays[0].shape
    flat = [v.ravel() for v in arrays]
    n = flat[0].size
    order = 2 if hessian else int(bool(grad))
    out = np.empty(n)
    derivs = np.empty((4, n)) if order else None
    second = np.empty((10, n)) if order == 2 else None
    with np.errstate(over="ignore", under="ignore"):
        for start in range(0, n, CHUNK_ROWS):
            sl = slice(start, start + CHUNK_ROWS)
            val, d, h = _log_tail_chunk(*(v[sl] for v in flat), order)
            out[sl] = val
            if order:
                derivs[:, sl] = d
            if order == 2:
                second[:, sl] = h
    if order == 2:
        return out.reshape(shape), derivs.reshape((4, *shape)), second.reshape((10, *shape))
    if order:
        return out.reshape(shape), derivs.reshape((4, *shape))
    return out.reshape(shape)
