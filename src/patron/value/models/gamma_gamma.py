"""Gamma-Gamma model of spend per transaction (Fader & Hardie 2013, "The Gamma-Gamma Model of
Monetary Value"; Colombo & Jiang 1999).

Transaction values z_ij ~ Gamma(p, nu_j), nu_j ~ Gamma(q, v). Data per customer: x > 0 repeat
transactions and their mean value zbar (same currency as v). Customers with x = 0 carry no
information about spend, and neither do customers whose repeat transactions total 0 or less
(zbar <= 0: zero-value orders, or a summary that nets refunds): a Gamma-distributed value is
positive, so such a mean is outside the model's support. Both are left out by
:meth:`GammaGamma.fit` and predicted at the population mean E[Z] = p v / (q - 1), the conditional
expectation with no information (:func:`conditional_expected_average_spend`). The fit works on
per-distinct-x sums and two scalar statistics; only ln(v + x zbar) is evaluated per customer.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from scipy import special

from . import _optimize
from ._base import DEFAULT_N_STARTS, BaseModel, keeps_index, wdot
from ._checks import all_finite, all_integral
from ._rows import ROW_BLOCK, factorize, row_blocks

__all__ = [
    "GammaGamma",
    "conditional_expected_average_spend",
    "negative_log_likelihood",
]


class Prepared(NamedTuple):
    """Per-fit precomputation; terms in x alone are summed once per distinct x."""

    n: float
    ux: np.ndarray
    wx: np.ndarray
    w: np.ndarray | None  # row weights; None when every weight is 1 (sums then skip the product)
    wx_rows: np.ndarray  # w * x per row
    xz: np.ndarray  # x * zbar per row (total repeat spend)
    sum_w_log_z: float  # sum w x ln zbar  (p coefficient, zbar^{px-1} x^{px})
    sum_w_x_log_x: float
    const: float  # sum w (-ln zbar), the parameter-free part
    scratch: np.ndarray  # (2, ROW_BLOCK) work space of the per-row passes


def prepare(x: np.ndarray, zbar: np.ndarray, w: np.ndarray, *, unit: bool | None = None) -> Prepared:
    """Sufficient statistics of repeat buyers (x > 0, zbar > 0) with row weights ``w``;
    ``unit`` says all weights are 1 (checked when not given)."""
    if unit is None:
        unit = bool(w.size) and w.min() == 1.0 and w.max() == 1.0
    wx_rows = x if unit else w * x
    xz = np.multiply(x, zbar)
    scratch = np.empty((2, ROW_BLOCK))
    sum_log_z = sum_x_log_z = 0.0
    x_max = int(x.max()) if x.size else 0
    direct = bool(x.size) and x_max < 4 * x.size  # counts: sum weights per x by direct indexing
    per_x = np.zeros(x_max + 1 if direct else 0)
    for rows in row_blocks(x.size):
        log_z = np.log(zbar[rows], out=scratch[0, : rows.stop - rows.start])
        sum_log_z += float(log_z.sum()) if unit else wdot(w[rows], log_z)
        sum_x_log_z += wdot(wx_rows[rows], log_z)
        if direct:
            per_x += np.bincount(x[rows].astype(np.intp), weights=None if unit else w[rows], minlength=per_x.size)
    if direct:
        ux = np.flatnonzero(per_x).astype(np.float64)
        wx = per_x[ux.astype(np.intp)]
    else:
        ux, inv = factorize(x)
        wx = np.bincount(inv, weights=None if unit else w, minlength=ux.size).astype(np.float64)
    return Prepared(float(w.sum()), ux, wx, None if unit else w, wx_rows, xz,
                    sum_x_log_z, wdot(wx, ux * np.log(ux)), -sum_log_z, scratch)


def _row_sums(data: Prepared, v: float, hessian: bool) -> tuple[float, ...]:
    """Sums over rows, block by block, with L = ln(v + x zbar) and I = 1 / (v + x zbar):
    (w x L, w L, w x I, w I) and, for the Hessian, (w x I^2, w I^2)."""
    sums = np.zeros(6)
    for rows in row_blocks(data.xz.size):
        size = rows.stop - rows.start
        vxz = np.add(data.xz[rows], v, out=data.scratch[0, :size])
        inv = np.reciprocal(vxz, out=data.scratch[1, :size])
        wx, w = data.wx_rows[rows], None if data.w is None else data.w[rows]
        sums[2] += wdot(wx, inv)
        sums[3] += float(inv.sum()) if w is None else wdot(w, inv)
        if hessian:
            inv *= inv
            sums[4] += wdot(wx, inv)
            sums[5] += float(inv.sum()) if w is None else wdot(w, inv)
        log_vxz = np.log(vxz, out=vxz)
        sums[0] += wdot(wx, log_vxz)
        sums[1] += float(log_vxz.sum()) if w is None else wdot(w, log_vxz)
    return tuple(float(t) for t in sums)


def _likelihood_terms(log_params: np.ndarray, data: Prepared, hessian: bool):
    """Log-likelihood, gradient and (optionally) Hessian in the natural parameters (p, q, v)."""
    p, q, v = np.exp(log_params)
    ux, wx, n = data.ux, data.wx, data.n
    px = p * ux
    a_x, a_1, b_x, b_1, c_x, c_1 = _row_sums(data, float(v), hessian)
    ll = wdot(wx, special.gammaln(px + q) - special.gammaln(px))
    ll += n * (q * np.log(v) - special.gammaln(q))
    ll += p * (data.sum_w_log_z + data.sum_w_x_log_x) + data.const - p * a_x - q * a_1
    psi_pxq = special.digamma(px + q)
    g = np.array([
        wdot(wx * ux, psi_pxq - special.digamma(px)) + data.sum_w_log_z + data.sum_w_x_log_x
        - a_x,
        wdot(wx, psi_pxq) - n * special.digamma(q) + n * np.log(v) - a_1,
        n * q / v - p * b_x - q * b_1,
    ])
    if not hessian:
        return ll, g, None
    tri_pxq = special.polygamma(1, px + q)
    h_pq = wdot(wx * ux, tri_pxq)
    h = np.array([
        [wdot(wx * ux * ux, tri_pxq - special.polygamma(1, px)), h_pq, -b_x],
        [h_pq, wdot(wx, tri_pxq) - n * special.polygamma(1, q), n / v - b_1],
        [-b_x, n / v - b_1, -n * q / v**2 + p * c_x + q * c_1],
    ])
    return ll, g, h


def negative_log_likelihood(
    log_params: np.ndarray, data: Prepared, weights: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """Weighted NLL and gradient in log-parameters (Fader & Hardie 2013, eq. 3):
    ln f(zbar | x) = lnG(px+q) - lnG(px) - lnG(q) + q ln v + (px-1) ln zbar + px ln x
                     - (px+q) ln(v + x zbar).
    """
    ll, g, _ = _likelihood_terms(log_params, data, False)
    return -ll, -g * np.exp(log_params)


def negative_log_likelihood_hessian(
    log_params: np.ndarray, data: Prepared, weights: np.ndarray | None = None
) -> tuple[float, np.ndarray, np.ndarray]:
    """As :func:`negative_log_likelihood`, plus the exact Hessian in log-parameters."""
    ll, g, h = _likelihood_terms(log_params, data, True)
    par = np.exp(log_params)
    return -ll, -g * par, -(h * np.outer(par, par) + np.diag(g * par))


def conditional_expected_average_spend(x: Any, zbar: Any, p: Any, q: Any, v: Any, *,
                                       as_observed: bool = False) -> np.ndarray:
    """E[Z | x, zbar] = (p v + p x zbar) / (p x + q - 1) (Fader & Hardie 2013, eq. 5).

    For x = 0 this is the population mean p v / (q - 1), the limit of the expression as the
    customer's information (p x) goes to 0. A customer with x > 0 but zbar <= 0 (or NaN) has no
    observation the model can use (module docstring) and gets the population mean too, unless
    ``as_observed`` (lifetimes' convention: eq. 5 applied to every row as given). The mean
    exists only when p x + q > 1 (in particular q > 1 for x = 0); elsewhere the result is +inf.
    """
    x, zbar, p, q, v = (np.asarray(a, dtype=np.float64) for a in (x, zbar, p, q, v))
    no_information = (x > 0) & ~(zbar > 0)
    if no_information.any() and not as_observed:  # treated as x = 0: zbar is then ignored
        x = np.where(no_information, 0.0, x)
    total = x * zbar  # total repeat spend; zbar is ignored where x = 0 (even if NaN)
    if np.ndim(total) and not all_finite(total):
        total[x == 0] = 0.0
    elif not np.ndim(total):
        total = np.where(x > 0, total, 0.0)
    denom = p * x + (q - 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        if np.ndim(total) and np.shape(denom) == np.shape(total):  # in place, no temporaries
            total += v
            total *= p
            total /= denom
        else:  # parameter draws broadcast against customers
            total = p * (v + total) / denom
    if np.ndim(total) and np.all(denom > 0):
        return total
    return np.where(denom > 0, total, np.inf)


class GammaGamma(BaseModel):
    """Gamma-Gamma spend model (Fader & Hardie 2013). Parameters ``p, q, v``.

    ``fit(frequency, monetary_value)`` uses customers with frequency > 0 and monetary_value (the
    mean value of their repeat transactions) > 0; the others carry no information on spend, are
    ignored and not counted in ``n_customers_`` (module docstring).

    ``q_constraint=True`` keeps q >= 1 (lifetimes' option of that name): the population mean
    spend p v / (q - 1) needs q > 1, and a fit with q < 1 would give customers without repeat
    purchases a negative expected spend; the constrained optimum is found by L-BFGS-B when the
    unconstrained one has q < 1 (at q = 1 that mean is infinite: such data hardly inform it).
    """

    name = "gammagamma"
    param_names = ("p", "q", "v")
    _negative_log_likelihood = staticmethod(negative_log_likelihood)
    _negative_log_likelihood_hessian = staticmethod(negative_log_likelihood_hessian)
    _conditional_expected_average_spend_fn = staticmethod(conditional_expected_average_spend)

    def __init__(self, penalizer: float = 0.0, *, q_constraint: bool = False,
                 penalizer_kind: str = "log", strict: bool = False, n_starts: int = DEFAULT_N_STARTS,
                 random_state: int = 0):
        super().__init__(penalizer, penalizer_kind=penalizer_kind, strict=strict,
                         n_starts=n_starts, random_state=random_state)
        self.q_constraint = q_constraint

    def _log_bounds(self) -> list[tuple[float, float]] | None:
        if not self.q_constraint:
            return None
        free = (-_optimize.LOG_PARAM_BOUND, _optimize.LOG_PARAM_BOUND)
        return [free, (0.0, _optimize.LOG_PARAM_BOUND), free]  # log q >= 0

    def fit(self, frequency: Any, monetary_value: Any, *, weights: Any = None) -> GammaGamma:
        """Fit on repeat buyers' (x, zbar); ``weights`` are per-row customer counts."""
        x = np.asarray(frequency, dtype=np.float64).ravel()
        z = np.asarray(monetary_value, dtype=np.float64).ravel()
        if x.shape != z.shape:
            raise ValueError("frequency and monetary_value must have the same length")
        if not (all_finite(x) and all_finite(z)):
            raise ValueError("frequency and monetary_value must be finite")
        # Each check reads the arrays once and allocates little: these passes are a fair part of
        # a fit on a million customers, and every array-sized temporary is fresh memory.
        rows = np.flatnonzero(x > 0)
        xk, zk = x.take(rows), z.take(rows)
        if (x.size and x.min() < 0) or not all_integral(xk):  # x <= 0 rows are 0
            raise ValueError("frequency must be a non-negative integer")
        if zk.size and zk.min() <= 0:  # no information on spend (module docstring): left out
            keep = np.flatnonzero(zk > 0)
            rows, xk, zk = rows.take(keep), xk.take(keep), zk.take(keep)
        if not xk.size:
            raise ValueError("no customer has repeat purchases of positive value: the Gamma-Gamma spend model "
                             "needs at least one")
        unit = weights is None
        w = np.ones(xk.size) if unit else np.asarray(weights, dtype=np.float64).ravel().take(rows)
        # No row compression: the only per-row term, ln(v + x zbar), rarely repeats (mean spends
        # are continuous), so finding identical rows would cost more than it saves; terms in x
        # alone are summed per distinct x and the ln zbar terms reduce to two scalars (prepare).
        return self._fit_compressed((xk, zk), w)

    def _prepare(self, columns, weights) -> Prepared:
        return prepare(columns[0], columns[1], weights)

    def _initial_log_params(self, columns, weights) -> np.ndarray:
        mean_z = wdot(weights, columns[1]) / float(weights.sum())
        return np.log([1.0, 2.0, mean_z])  # p/(q-1) v = mean spend

    @keeps_index
    def conditional_expected_average_spend(self, frequency: Any, monetary_value: Any) -> np.ndarray:
        """Expected mean transaction value given (x, zbar); population mean when x = 0 or zbar <= 0."""
        return conditional_expected_average_spend(frequency, monetary_value, *self._params())
