"""Time-varying covariates from a file, laid over the customers of a database.

The file (CSV or Parquet) has one row per customer and period: ``customer_id``, ``period_start``
(a date) and numeric covariate columns. Period starts must be equally spaced (e.g. every 7 days);
the spacing, in the model's time unit (``--period``), is the period length of
:mod:`patron.value.models.dynamic_paths`, and the earliest period start is the grid origin.

Odd rows never stop the fit; each rule below is counted and reported:

* a period missing for a customer takes the customer's value of the nearest earlier period (or,
  before their first row, of their first row); counted over the periods the model reads (from
  the acquisition's to the one of T, or of T + horizon, within the file's periods);
* an empty value takes the customer's nearest earlier (else first) value of that covariate (else
  the others' mean); of rows repeating a customer and period, the last in the file is kept;
* a customer with no row at all takes, per period, the mean over the customers who have it;
* periods the file does not cover (before its first or after its last start) take the nearest
  covered period's values; customers acquired before the grid origin are left out of the fit
  (``keep_early=False``, ``patron fit``) or kept, the grid then starting at the earliest first
  purchase (``keep_early=True``: scoring values every customer);
* a row whose ``customer_id`` has no purchase is ignored.

For predictions (``horizon``) the grid reaches every customer's T + horizon; periods after the
file's last start take each customer's last values (counted when the horizon needs them): the
future covariate path is then "as last observed" unless the file gives it.

Repeat purchases per period come from the transactions (purchase days after the first, up to the
calibration end, as the summary counts them: docs/summary.md), so that the likelihood's term
exp(gamma . x(t_j)) uses the covariates of the period of each purchase.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from patron.constants import PERIOD_UNITS
from patron.errors import InputError

__all__ = ["DynamicInputs", "dynamic_inputs"]


@dataclass
class DynamicInputs:
    """What :meth:`patron.value.models.pareto_nbd_dynamic.ParetoNBDDynamic.fit` takes, for the kept
    customers (``customer_id``), and the notes about odd rows."""

    customer_id: np.ndarray
    frequency: np.ndarray
    recency: np.ndarray
    T: np.ndarray
    first: np.ndarray
    paths: np.ndarray
    names: tuple[str, ...]
    purchase_counts: np.ndarray
    period_length: float
    origin: date
    notes: list[str] = field(default_factory=list)


def _read(path: str | os.PathLike[str], names: tuple[str, ...] | None) -> tuple[pd.DataFrame, tuple[str, ...]]:
    from patron.data.io import read_table

    frame = read_table(path).to_pandas()
    frame.columns = [str(c).strip() for c in frame.columns]
    for col in ("customer_id", "period_start"):
        if col not in frame.columns:
            raise InputError(f"{path}: missing column {col} (columns: {', '.join(frame.columns)})")
    cov = tuple(names) if names else tuple(c for c in frame.columns if c not in ("customer_id", "period_start"))
    if not cov:
        raise InputError(f"{path}: no covariate columns besides customer_id and period_start")
    for c in cov:
        if c not in frame.columns:
            raise InputError(f"{path}: no covariate column {c!r} (columns: {', '.join(frame.columns)})")
        values = pd.to_numeric(frame[c], errors="coerce")
        bad = values.isna() & frame[c].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0]) + 2
            raise InputError(f"{path}: row {row}, column {c}: {frame[c].iloc[row - 2]!r} is not a number "
                             "(time-varying covariates must be numeric; encode categories as 0/1 columns)")
        frame[c] = values
    starts = pd.to_datetime(frame["period_start"], errors="coerce")
    if starts.isna().any():
        row = int(np.flatnonzero(starts.isna().to_numpy())[0]) + 2
        raise InputError(f"{path}: row {row}, column period_start: {frame['period_start'].iloc[row - 2]!r} is not a date")
    frame["period_start"] = starts.dt.normalize()
    frame["customer_id"] = frame["customer_id"].astype(str)
    return frame, cov


def dynamic_inputs(db: str | os.PathLike[str] | None, path: str | os.PathLike[str], *, period: str = "W",
                   end: str | date | None = None, names: tuple[str, ...] | None = None, summary: pd.DataFrame | None = None,
                   horizon: float = 0.0, keep_early: bool = False) -> DynamicInputs:
    """Summary, covariate paths and repeat purchases per period for every customer of ``db``
    (module docstring); ``period`` is the model's time unit, ``end`` the calibration end.
    ``summary``: the customers' summary (with ``first_purchase``) when already computed;
    ``horizon`` (in ``period`` units): the paths also cover it, for predictions; ``keep_early``:
    keep customers acquired before the file's first period."""
    from patron.value.summary import summary as run_summary

    frame, cov = _read(path, names)
    summ = run_summary(db, period=period, end=end) if summary is None else summary
    if summ.empty:
        raise InputError(f"{db}: no customer with a purchase to fit")
    unit_days = PERIOD_UNITS[period.upper()]
    starts = np.sort(frame["period_start"].unique())
    steps = np.unique(np.diff(starts).astype("timedelta64[D]").astype(int)) if starts.size > 1 else np.array([7])
    if steps.size != 1 or steps[0] <= 0:
        raise InputError(f"{path}: period_start values must be equally spaced (found gaps of {', '.join(map(str, steps[:5]))} days)")
    spacing = int(steps[0])
    origin = pd.Timestamp(starts[0])
    notes: list[str] = []
    first_day = pd.to_datetime(summ["first_purchase"]).dt.normalize().reset_index(drop=True)
    end_day = first_day + pd.to_timedelta(summ["T"].to_numpy(dtype=float) * unit_days, unit="D")
    before = (first_day < origin).to_numpy()
    if before.any() and keep_early:
        early = int(np.ceil((origin - first_day.min()).days / spacing))
        origin = origin - pd.Timedelta(days=early * spacing)
        notes.append(f"{int(before.sum()):,} customers acquired before the first period ({pd.Timestamp(starts[0]).date()}) "
                     f"took its values for the {early:,} periods before it")
    elif before.any():
        notes.append(f"{int(before.sum()):,} customers acquired before the first period ({origin.date()}) left out")
        summ, first_day, end_day = summ[~before], first_day[~before], end_day[~before]
    reach = end_day.max() + pd.Timedelta(days=float(horizon) * unit_days)
    J = int(np.ceil(((reach - origin).days + 1) / spacing))
    span = ((pd.Timestamp(starts[0]) - origin).days // spacing, (pd.Timestamp(starts[-1]) - origin).days // spacing)
    J = max(J, span[1] + 1)
    beyond = J - 1 - span[1]
    if horizon > 0 and beyond > 0:
        notes.append(f"the horizon reaches {beyond:,} periods past the file's last ({pd.Timestamp(starts[-1]).date()}): "
                     "they take each customer's last values")
    ids = summ["customer_id"].astype(str).to_numpy()
    # each customer's periods the model reads: from the acquisition's to the one of T (+ horizon)
    last_day = np.minimum((end_day - origin).dt.days.to_numpy() + float(horizon) * unit_days, J * spacing - 1)
    window = ((first_day - origin).dt.days.to_numpy() // spacing, np.floor(last_day / spacing).astype(int))
    paths = _lay_paths(frame, cov, ids, origin, spacing, J, window, span, notes, path)
    first = (first_day - origin).dt.days.to_numpy(dtype=float) / unit_days
    counts = _purchase_counts(db, ids, first_day, origin, spacing, J, end_day.max())
    x = summ["frequency"].to_numpy(dtype=float)
    diff = np.abs(counts.sum(1) - x) > 0
    if diff.any():  # purchases the summary does not count (should not happen): trust the summary
        raise InputError(f"{db}: purchases per period disagree with the summary for {int(diff.sum())} customers")
    return DynamicInputs(ids, x, summ["recency"].to_numpy(dtype=float), summ["T"].to_numpy(dtype=float), first, paths,
                         cov, counts, spacing / unit_days, origin.date(), notes)


def _lay_paths(frame: pd.DataFrame, cov: tuple[str, ...], ids: np.ndarray, origin: pd.Timestamp, spacing: int, J: int,
               window: tuple[np.ndarray, np.ndarray], span: tuple[int, int], notes: list[str],
               path: str | os.PathLike[str]) -> np.ndarray:
    """Covariate paths (n, J, k) of the customers ``ids`` from the file's rows, odd rows treated
    and counted in ``notes`` (module docstring). ``window``: each customer's first and last period
    the model reads; ``span``: the file's first and last period on the grid."""
    n, k = ids.size, len(cov)
    ci = pd.Index(ids).get_indexer(frame["customer_id"])
    ignored = int((ci < 0).sum())
    if ignored:
        notes.append(f"{ignored:,} covariate rows of customers without a purchase ignored")
    keep = ci >= 0
    ci = ci[keep]
    pj = (frame["period_start"] - origin).dt.days.to_numpy()[keep] // spacing
    values = frame.loc[keep, list(cov)].to_numpy(dtype=float)
    cell = ci * J + pj
    last = np.unique(cell[::-1], return_index=True)[1]
    if last.size < cell.size:
        notes.append(f"{cell.size - last.size:,} repeated rows of a customer and period: the last in the file kept")
        pick = cell.size - 1 - last
        ci, pj, values = ci[pick], pj[pick], values[pick]
    empty = int(np.isnan(values).any(axis=1).sum())
    if empty:
        notes.append(f"{empty:,} rows with an empty covariate value: it took the customer's nearest earlier (else first) "
                     "value of that covariate, else the others' mean")
    paths = np.full((n, J, k), np.nan)
    paths[ci, pj] = values
    has_row = np.zeros(n, dtype=bool)
    has_row[ci] = True
    present = np.zeros((n, J), dtype=bool)
    present[ci, pj] = True
    period = np.arange(J)[None, :]
    read = (period >= np.maximum(window[0], span[0])[:, None]) & (period <= np.minimum(window[1], span[1])[:, None])
    filled = int((read & ~present)[has_row].sum())
    if filled:
        notes.append(f"{filled:,} customer-periods without a row took the customer's nearest earlier (else first) period's "
                     "values (periods from the acquisition to T or the horizon, within the file's)")
    # per column: forward fill along periods, before the first value that value (vectorized)
    seen = ~np.isnan(paths)
    idx = np.where(seen, np.arange(J)[None, :, None], -1)
    np.maximum.accumulate(idx, axis=1, out=idx)
    idx = np.where(idx < 0, np.argmax(seen, axis=1)[:, None, :], idx)
    paths = np.take_along_axis(paths, idx, axis=1)
    if (~has_row).any():
        notes.append(f"{int((~has_row).sum()):,} customers without any covariate row took the mean of the others per period")
    gaps = np.isnan(paths)
    if gaps.any():  # customers without a row, or whose rows leave a column empty: the others' mean
        known = has_row[:, None, None] & ~gaps
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(known, paths, 0.0).sum(axis=0) / known.sum(axis=0)
        if np.isnan(means).any():
            name = cov[int(np.flatnonzero(np.isnan(means).any(axis=0))[0])]
            raise InputError(f"{path}: column {name} has no value for any customer with a purchase")
        paths = np.where(gaps, means[None], paths)
    return paths


def _purchase_counts(db, ids, first_day, origin, spacing, J, last_day) -> np.ndarray:
    """Repeat purchases (purchase days after the first, to the calibration end) per customer and
    period, counted as the summary counts them (distinct days with a purchase, amount >= 0)."""
    from patron.data.store import reader

    with reader(db) as con:
        days = con.execute(
            "SELECT CAST(customer_id AS VARCHAR) AS customer_id, CAST(occurred_at AS DATE) AS day FROM transactions "
            "WHERE amount >= 0 AND CAST(occurred_at AS DATE) <= ? GROUP BY 1, 2", [pd.Timestamp(last_day).date()]).df()
    ci = pd.Index(ids).get_indexer(days["customer_id"])
    day = pd.to_datetime(days["day"])
    keep = ci >= 0
    ci, day = ci[keep], day[keep]
    repeat = day.to_numpy() > first_day.to_numpy()[ci]
    pj = ((day - origin).dt.days.to_numpy() // spacing)
    counts = np.zeros((len(ids), J))
    np.add.at(counts, (ci[repeat], np.minimum(pj[repeat], J - 1)), 1.0)
    return counts
