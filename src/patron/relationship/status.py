"""Relationship status: where each customer stands as of a date, and the numbers that put them there.

Statuses (:data:`STATUSES`) are ``prospect, new, active, cooling, at_risk, lapsed, lost``. They are
assigned by the rules of the ``[status]`` section of the rules file (:class:`StatusRules`),
evaluated in the order :data:`PRECEDENCE` (the first rule that matches wins), from one number the
model gives every buyer and two calendar facts:

* ``probability_purchase``: P(at least one purchase in the ``horizon_weeks`` weeks after
  ``as_of``) from a buy-till-you-die model (BG/NBD by default) fitted on the weekly summary
  ``patron.summary(db, period="W", end=as_of)`` (BG/NBD: P(alive) [1 - ((alpha+T)/(alpha+T+t))^(r+x)],
  :func:`patron.value.models.beta_geo.probability_of_purchase`). It falls with time since the last
  purchase for everyone, one-time buyers included (whose P(alive) is 1 by construction);
* ``days_since_first_purchase`` / ``days_since_last_purchase``: whole days from the day of the
  first / last purchase to ``as_of``;
* ``frequency``: repeat purchases; a repeat buyer (``frequency > 0``) is called ``lost`` only after
  ``lost_days`` without a purchase, because the model's dropout evidence alone (P(alive)) proved
  too pessimistic for them on real data (docs/status.md, "Why").

``probability_alive`` (P(alive at as_of)) and ``expected_purchases`` (next :data:`HORIZON_WEEKS`
weeks) are reported beside it; the ``_before`` columns hold the same numbers with the *same fitted
parameters* from the summary as of ``as_of - lookback_days`` (the trend shown in the reasons),
missing for customers who had not bought by that day.

The per-customer rules run vectorised (``numpy.select``); history and migration matrices are in
:mod:`patron.relationship.status_history`, backtests against what customers did next in :mod:`patron.relationship.backtest`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from patron.constants import DEFAULT_HORIZON_WEEKS
from patron.data.dialect import DUCKDB, Dialect
from patron.data.store import reader, table_exists
from patron.dates import default_as_of, parse_day
from patron.errors import InputError, NoDataError
from patron.relationship.status_rules import (  # noqa: F401  (re-exported: the rules are part of this API)
    NO_MARKETING_STATUSES,
    PRECEDENCE,
    STATUSES,
    StatusRules,
    classify,
    status_rules,
)
from patron.settings import get_settings
from patron.value.models import MODELS
from patron.value.models import BaseModel as TransactionModel
from patron.value.summary import summary

HORIZON_WEEKS: float = DEFAULT_HORIZON_WEEKS
"""Horizon of ``expected_purchases``, in weeks (the default value horizon,
:data:`patron.constants.DEFAULT_HORIZON_WEEKS`)."""

TRANSACTION_MODELS: tuple[str, ...] = ("bgnbd", "mbgnbd", "pareto")
"""Models that give P(alive), P(purchase) and expected purchases from (frequency, recency, T)."""

STATUS_COLUMNS: tuple[str, ...] = (
    "customer_id", "as_of", "status", "status_reason", "probability_purchase", "probability_purchase_before",
    "probability_alive", "probability_alive_before", "expected_purchases", "expected_purchases_before",
    "days_since_first_purchase", "days_since_last_purchase", "first_purchase", "last_purchase", "n_orders",
    "frequency", "recency", "T",
)
"""Columns of :func:`relationship_status`, in order."""

def last_purchase_day(db: str | os.PathLike[str] | None) -> date:
    """Day of the last purchase in ``db``: the default ``as_of`` (:func:`patron.dates.default_as_of`)."""
    with reader(db) as con:
        if not table_exists(con, "transactions"):
            raise NoDataError(f"database {db} holds no transactions: run patron ingest FILE --kind transactions first")
        return default_as_of(con, where=str(db or get_settings().db))


def prospects_sql(as_of: date, dialect: Dialect = DUCKDB) -> str:
    """Ids in ``customers`` known by ``as_of`` (``first_seen`` empty or on/before it) with no
    purchase (``amount >= 0``) on or before ``as_of``."""
    day = dialect.date_literal(as_of)
    return f"""SELECT c.customer_id
FROM customers c
WHERE (c.first_seen IS NULL OR CAST(c.first_seen AS DATE) <= {day})
  AND NOT EXISTS (
    SELECT 1 FROM transactions t
    WHERE t.customer_id = c.customer_id AND t.amount >= 0 AND CAST(t.occurred_at AS DATE) <= {day}
  )"""


def _prospects(db: str | os.PathLike[str] | None, as_of: date) -> np.ndarray:
    with reader(db) as con:
        if not (table_exists(con, "customers") and table_exists(con, "transactions")):
            return np.array([], dtype=object)
        rows = con.execute(prospects_sql(as_of)).fetchall()
    return np.array([r[0] for r in rows], dtype=object)


def transaction_model(
    model: str = "bgnbd",
    params: Mapping[str, float] | TransactionModel | None = None,
    data: pd.DataFrame | None = None,
) -> TransactionModel:
    """A fitted transaction model: ``params`` itself when it is a fitted model, the class of
    ``model`` with the fixed ``params`` (e.g. ``{"r": .., "alpha": .., "a": .., "b": ..}``), or
    ``model`` fitted by maximum likelihood on ``data`` (a weekly summary)."""
    if isinstance(params, TransactionModel):
        if params.name not in TRANSACTION_MODELS:
            raise InputError(f"a {params.name} model gives no P(alive); use one of {', '.join(TRANSACTION_MODELS)}")
        return params
    if model not in TRANSACTION_MODELS:
        raise InputError(f"model must be one of {', '.join(TRANSACTION_MODELS)}; got {model!r}")
    cls = MODELS[model]
    if params is not None:
        missing = [k for k in cls.param_names if k not in params]
        if missing:
            raise InputError(f"params for {model} lack {', '.join(missing)} (need {', '.join(cls.param_names)})")
        fixed = cls()
        fixed.params_ = {k: float(params[k]) for k in cls.param_names}
        return fixed
    from patron.value.scoring import fit_model

    if data is None:
        raise InputError("give params or a summary to fit the model on")
    informative = data[data["T"] > 0]  # customers whose first purchase is on as_of add nothing
    if informative.empty:
        raise NoDataError("cannot fit a model: every customer made their first purchase on as_of; pick a later date or give params")
    return fit_model(model, informative, label="status")


def load_model(path: str | os.PathLike[str]) -> TransactionModel:
    """A fitted transaction model saved by ``patron fit MODEL --save FILE`` (JSON)."""
    import json
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such model file")
    try:
        fitted = TransactionModel.from_json(p.read_text(encoding="utf-8"))
    except (ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise InputError(f"{p}: not a saved patron model ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    if not isinstance(fitted, TransactionModel):
        raise InputError(f"{p}: a {fitted.name} model needs each customer's covariates; relationship status uses a model "
                         "without covariates (save one with patron fit bgnbd --save FILE, no --covariates)")
    return transaction_model(params=fitted)


def predict(tm: TransactionModel, frame: pd.DataFrame, horizon_weeks: float) -> dict[str, np.ndarray]:
    """``probability_purchase`` (P(a purchase within ``horizon_weeks``)), ``probability_alive`` and
    ``expected_purchases`` (next :data:`HORIZON_WEEKS` weeks) for the rows of ``frame`` (a weekly
    summary with ``frequency, recency, T``)."""
    x, tx, T = (frame[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    if x.size == 0:
        return {k: np.zeros(0) for k in ("probability_purchase", "probability_alive", "expected_purchases")}
    return {
        "probability_purchase": np.asarray(tm.conditional_probability_of_purchase(horizon_weeks, x, tx, T), dtype=float),
        "probability_alive": np.asarray(tm.probability_alive(x, tx, T), dtype=float),
        "expected_purchases": np.asarray(tm.conditional_expected_purchases(HORIZON_WEEKS, x, tx, T), dtype=float),
    }


def _scores_now(scores: Any, now: pd.DataFrame) -> tuple[dict[str, np.ndarray], Any]:
    """P(alive), expected purchases and, when given, P(purchase) for the rows of ``now`` from
    ``scores`` (a DataFrame or a :class:`patron.value.scoring.Scores`); also the scores' model, when known."""
    model = getattr(scores, "transaction_model", None)
    if hasattr(model, "coefficients_"):  # a covariate model needs each customer's covariates: status fits its own
        model = None
    frame = getattr(scores, "customers", scores)
    need = ("customer_id", "probability_alive", "expected_purchases")
    if not isinstance(frame, pd.DataFrame) or any(c not in frame.columns for c in need):
        raise InputError("scores must be a DataFrame with columns customer_id, probability_alive, expected_purchases")
    keyed = frame.assign(customer_id=frame["customer_id"].astype(str)).drop_duplicates("customer_id").set_index("customer_id")
    ids = now["customer_id"].astype(str)
    missing = ~ids.isin(keyed.index)
    if missing.any():
        raise InputError(f"scores lack {int(missing.sum()):,} of the {len(ids):,} customers who bought by as_of (e.g. {ids[missing].iloc[0]})")
    sub = keyed.loc[ids]
    given = [c for c in ("probability_purchase", "probability_alive", "expected_purchases") if c in sub.columns]
    return {c: sub[c].to_numpy(dtype=float) for c in given}, model


def _days(as_of: date, stamps: pd.Series) -> np.ndarray:
    day = pd.to_datetime(stamps).dt.floor("D")
    return (pd.Timestamp(as_of) - day).dt.days.to_numpy(dtype=float)


def relationship_status(
    db: str | os.PathLike[str] | None = None,
    *,
    as_of: str | date | datetime | None = None,
    config: str | os.PathLike[str] | dict[str, Any] | StatusRules | None = None,
    scores: Any = None,
    model: str = "bgnbd",
    params: Mapping[str, float] | TransactionModel | None = None,
    weekly_summary: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per customer (prospects included) with their relationship status as of ``as_of``.

    Parameters
    ----------
    db
        The patron database (default ``patron.duckdb`` or ``$PATRON_DB``).
    as_of
        The date of the assessment (inclusive); default the day of the last purchase.
    config
        Rules file path, parsed dict, or :class:`StatusRules` (see :func:`status_rules`).
    scores
        Optional existing scores to reuse for ``probability_alive`` and ``expected_purchases``
        (next 52 weeks), and ``probability_purchase`` when they have it: a DataFrame with
        ``customer_id, probability_alive, expected_purchases`` or a :class:`patron.value.scoring.Scores`
        (whose model then gives the other numbers).
    model
        Transaction model fitted on the weekly summary as of ``as_of``: bgnbd, mbgnbd or pareto.
    params
        Fixed model parameters (e.g. ``{"r": 0.24, "alpha": 4.41, "a": 0.79, "b": 2.43}``, rates
        per week) or a fitted model, instead of fitting.
    weekly_summary
        The weekly summary as of ``as_of`` (``patron.summary(db, period="W", end=as_of)``) when
        the caller has it already (:func:`patron.relationship.profiles.build_profiles`), so that it is not
        computed twice; by default computed here.

    Returns
    -------
    Columns :data:`STATUS_COLUMNS`. Prospects have NaN/NaT purchase columns and ``n_orders`` 0.
    """
    return assess(db, as_of=as_of, config=config, scores=scores, model=model, params=params,
                  weekly_summary=weekly_summary)[0]


ROW_COLUMN = "_order_row"
"""Optional column of the summaries ``assess(summary_at=...)`` reads: each customer's position in a
list common to every summary it returns (ascending), for matching them without comparing ids."""


def _row_of(before: np.ndarray, now: np.ndarray) -> np.ndarray:
    """For the customers at positions ``now`` of a common list, their row among those at positions
    ``before`` (-1 where absent)."""
    size = int(max(before.max(initial=-1), now.max(initial=-1))) + 1
    rank = np.full(size, -1, dtype=np.intp)
    rank[before] = np.arange(len(before))
    return rank[now]


def assess(
    db: str | os.PathLike[str] | None = None,
    *,
    as_of: str | date | datetime | None = None,
    config: str | os.PathLike[str] | dict[str, Any] | StatusRules | None = None,
    scores: Any = None,
    model: str = "bgnbd",
    params: Mapping[str, float] | TransactionModel | None = None,
    weekly_summary: pd.DataFrame | None = None,
    reasons: bool = True,
    summary_at: Callable[[date], pd.DataFrame] | None = None,
) -> tuple[pd.DataFrame, TransactionModel]:
    """:func:`relationship_status` and the fitted transaction model behind it (for backtests that
    ask the same model what it expected); without ``reasons`` the buyers' ``status_reason`` is
    left empty (statuses only, for counts over a large base). ``summary_at(day)``: the weekly
    summary of ``db`` as of a day (same rows and values as :func:`patron.value.summary.summary`,
    any row order; :class:`NoDataError` without purchases) when the caller has a faster source
    than a query per day (the report finishes them from one read of the orders); when both of its
    summaries have the column :data:`ROW_COLUMN` (each customer's position in one common list),
    the earlier one is matched to the current one by it instead of a join on ``customer_id``."""
    rules = status_rules(config)
    as_of_d = parse_day(as_of) or last_purchase_day(db)
    before_d = as_of_d - timedelta(days=rules.lookback_days)
    def weekly(day: date) -> pd.DataFrame:
        return summary_at(day) if summary_at is not None else summary(db, period="W", end=day)

    now = weekly_summary if weekly_summary is not None else weekly(as_of_d)
    given, fitted = _scores_now(scores, now) if scores is not None else ({}, None)
    if params is not None or fitted is None:
        fitted = transaction_model(model, params, now)
    numbers = predict(fitted, now, rules.horizon_weeks) | given
    try:
        before = weekly(before_d)
    except NoDataError:
        before = now.iloc[:0]
    predicted_before = predict(fitted, before, rules.horizon_weeks)
    positional = weekly_summary is None and summary_at is not None and ROW_COLUMN in now.columns and ROW_COLUMN in before.columns
    out = pd.DataFrame(
        {
            "customer_id": now["customer_id"].array if positional else now["customer_id"].to_numpy(),
            **numbers,
            "days_since_first_purchase": _days(as_of_d, now["first_purchase"]),
            "days_since_last_purchase": _days(as_of_d, now["last_purchase"]),
            "first_purchase": now["first_purchase"].to_numpy(),
            "last_purchase": now["last_purchase"].to_numpy(),
            "n_orders": now["n_orders"].to_numpy(dtype=np.int64),
            "frequency": now["frequency"].to_numpy(dtype=float),
            "recency": now["recency"].to_numpy(dtype=float),
            "T": now["T"].to_numpy(dtype=float),
        }
    )
    if positional:  # both summaries list their customers in one order: matched by position, not by id
        at = _row_of(before[ROW_COLUMN].to_numpy(), now[ROW_COLUMN].to_numpy())
        found = at >= 0
        for k, v in predicted_before.items():
            column = np.full(len(out), np.nan)
            column[found] = np.asarray(v, dtype=float)[at[found]]
            out[f"{k}_before"] = column
    else:
        earlier = pd.DataFrame({f"{k}_before": v for k, v in predicted_before.items()})
        earlier["customer_id"] = before["customer_id"].to_numpy()
        out = out.merge(earlier, on="customer_id", how="left")
    status, reason = classify(out, rules, as_of=as_of_d, before=before_d, reasons=reasons)
    out["status"], out["status_reason"] = status, reason
    prospects = _prospects(db, as_of_d)
    if prospects.size:
        pros = pd.DataFrame({"customer_id": prospects, "status": "prospect", "n_orders": np.zeros(prospects.size, dtype=np.int64),
                             "status_reason": f"known customer with no purchase on or before {as_of_d}"})
        out = pd.concat([out, pros], ignore_index=True)
        out["n_orders"] = out["n_orders"].astype(np.int64)
    out["as_of"] = as_of_d
    out["customer_id"] = out["customer_id"].astype(str)
    return out[list(STATUS_COLUMNS)], fitted


def status_counts(statuses: pd.DataFrame) -> pd.DataFrame:
    """Count, share, mean P(purchase) and mean P(alive) per status (every status listed, in
    :data:`STATUSES` order).

    ``statuses`` has columns ``status``, ``probability_purchase`` and ``probability_alive`` (the
    output of :func:`relationship_status`); the means are NaN for prospects and empty rows.
    """
    g = statuses.groupby("status", observed=True)
    counts = g.size().reindex(list(STATUSES), fill_value=0).astype(np.int64)
    total = int(counts.sum())
    means = {c: g[c].mean().reindex(list(STATUSES)).to_numpy(dtype=float) for c in ("probability_purchase", "probability_alive")}
    return pd.DataFrame(
        {
            "status": list(STATUSES),
            "count": counts.to_numpy(),
            "share": counts.to_numpy() / total if total else np.zeros(len(STATUSES)),
            "mean_probability_purchase": means["probability_purchase"],
            "mean_probability_alive": means["probability_alive"],
        }
    )
