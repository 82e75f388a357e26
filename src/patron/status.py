"""Relationship status: where each customer stands as of a date, and the numbers that put them there.

Statuses (:data:`STATUSES`) are ``prospect, new, active, cooling, at_risk, lapsed, lost``. They are
assigned from the customer's purchase dates and a buy-till-you-die model (BG/NBD by default) by
the rules of the ``[status]`` section of the rules file (:class:`StatusRules`), evaluated in the
order :data:`PRECEDENCE`: the first rule that matches wins.

Definitions (``as_of`` is a date; all purchase data up to and including it):

* ``days_since_first_purchase`` / ``days_since_last_purchase``: whole days from the day of the
  first / last purchase to ``as_of``.
* ``probability_alive``: P(alive at ``as_of``) from the model (BG/NBD: Fader, Hardie & Lee 2005,
  eq. 11) on the weekly summary ``patron.summary(db, period="W", end=as_of)``.
* ``expected_purchases``: expected purchases in the :data:`HORIZON_WEEKS` weeks after ``as_of``.
* ``probability_alive_before`` / ``expected_purchases_before``: the same, with the *same fitted
  parameters*, from the summary as of ``as_of - cooling_lookback_days`` (what the model said then
  with the history known then); missing for customers who had not bought by that day.

The per-customer rules run vectorised (``numpy.select``); history and migration matrices are in
:mod:`patron.status_history`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel as PydanticModel
from pydantic import ConfigDict, Field, model_validator

from patron.config import section
from patron.errors import InputError, NoDataError
from patron.models import MODELS
from patron.models import BaseModel as TransactionModel
from patron.settings import get_settings
from patron.sql.dialect import DUCKDB, Dialect
from patron.store import reader, table_exists
from patron.summary import summary

STATUSES: tuple[str, ...] = ("prospect", "new", "active", "cooling", "at_risk", "lapsed", "lost")
"""Every status, from the start of a relationship to its end (the order tables are shown in)."""

PRECEDENCE: tuple[str, ...] = ("prospect", "lost", "lapsed", "new", "at_risk", "cooling", "active")
"""Order in which the rules are evaluated; the first match wins (``active`` when none matches)."""

HORIZON_WEEKS: float = 52.0
"""Horizon of ``expected_purchases``, in weeks."""

TRANSACTION_MODELS: tuple[str, ...] = ("bgnbd", "mbgnbd", "pareto")
"""Models that give P(alive) and expected purchases from (frequency, recency, T)."""

STATUS_COLUMNS: tuple[str, ...] = (
    "customer_id", "as_of", "status", "status_reason", "probability_alive", "probability_alive_before",
    "expected_purchases", "expected_purchases_before", "days_since_first_purchase", "days_since_last_purchase",
    "first_purchase", "last_purchase", "n_orders", "frequency", "recency", "T",
)
"""Columns of :func:`relationship_status`, in order."""


class StatusRules(PydanticModel):
    """The ``[status]`` section of the rules file: thresholds of each relationship status.

    Probability thresholds are compared strictly (``P(alive) < threshold``), day limits strictly
    (``days since last purchase > limit``); ``new`` is inclusive (``<= new_days``).
    """

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    new_days: int = Field(90, ge=0)
    """new: first purchase at most this many days before as_of (days)."""
    lost_probability_alive: float = Field(0.10, ge=0.0, le=1.0)
    """lost ("not that into you"): P(alive) below this (probability)."""
    lost_days: int = Field(730, ge=1)
    """lost: more than this many days since the last purchase (days)."""
    lapsed_probability_alive: float = Field(0.30, ge=0.0, le=1.0)
    """lapsed: P(alive) below this (probability)."""
    lapsed_days: int = Field(365, ge=1)
    """lapsed: more than this many days since the last purchase (days)."""
    at_risk_probability_alive: float = Field(0.50, ge=0.0, le=1.0)
    """at_risk: P(alive) below this (probability)."""
    at_risk_days: int = Field(180, ge=1)
    """at_risk: more than this many days since the last purchase (days)."""
    cooling_lookback_days: int = Field(90, ge=1)
    """cooling: compare P(alive) and expected purchases now with their values this many days before as_of (days)."""
    cooling_relative_drop: float = Field(0.25, gt=0.0, lt=1.0)
    """cooling: P(alive) or expected purchases fell by more than this share of their earlier value (fraction)."""

    @model_validator(mode="after")
    def _ordered(self) -> StatusRules:
        if not self.lost_probability_alive <= self.lapsed_probability_alive <= self.at_risk_probability_alive:
            raise ValueError("need lost_probability_alive <= lapsed_probability_alive <= at_risk_probability_alive")
        if not self.lost_days >= self.lapsed_days >= self.at_risk_days:
            raise ValueError("need lost_days >= lapsed_days >= at_risk_days")
        return self


def status_rules(config: str | os.PathLike[str] | dict[str, Any] | StatusRules | None = None) -> StatusRules:
    """The ``[status]`` rules from ``config`` (a rules file path, a parsed dict, a
    :class:`StatusRules`, or ``None`` for ``$PATRON_CONFIG`` / ``./patron.toml`` / defaults)."""
    if isinstance(config, StatusRules):
        return config
    return section("status", StatusRules, config)


def parse_date(value: str | date | datetime | None, name: str = "as_of") -> date | None:
    """``value`` as a date (``None`` stays ``None``); a bad text is an :class:`InputError`."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise InputError(f"{name} must be a date like 1998-06-30; got {value!r}") from None


def last_purchase_day(db: str | os.PathLike[str] | None) -> date:
    """Day of the last purchase in ``db`` (the default ``as_of``)."""
    with reader(db) as con:
        if not table_exists(con, "transactions"):
            raise NoDataError(f"database {db} holds no transactions: run patron ingest FILE --kind transactions first")
        last = con.execute("SELECT CAST(max(occurred_at) AS DATE) FROM transactions WHERE amount >= 0").fetchall()[0][0]
    if last is None:
        raise NoDataError(f"no purchases in {db or get_settings().db}")
    return last


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
    from patron.value import fit_model

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
    return transaction_model(params=fitted)


def _predict(tm: TransactionModel, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    x, tx, T = (frame[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    if x.size == 0:
        return np.zeros(0), np.zeros(0)
    return np.asarray(tm.probability_alive(x, tx, T), dtype=float), np.asarray(
        tm.conditional_expected_purchases(HORIZON_WEEKS, x, tx, T), dtype=float
    )


def _scores_now(scores: Any, now: pd.DataFrame, tm_fallback: Any) -> tuple[np.ndarray, np.ndarray, Any]:
    """P(alive) and expected purchases for the rows of ``now`` from ``scores`` (a DataFrame or a
    :class:`patron.value.Scores`); also the model to use for the earlier values, when known."""
    model = getattr(scores, "transaction_model", None)
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
    return sub["probability_alive"].to_numpy(dtype=float), sub["expected_purchases"].to_numpy(dtype=float), model or tm_fallback


def _days(as_of: date, stamps: pd.Series) -> np.ndarray:
    day = pd.to_datetime(stamps).dt.floor("D")
    return (pd.Timestamp(as_of) - day).dt.days.to_numpy(dtype=float)


def _f2(values: np.ndarray) -> np.ndarray:
    return np.char.mod("%.2f", np.asarray(values, dtype=float))


def _f3(values: np.ndarray) -> np.ndarray:
    return np.char.mod("%.3f", np.asarray(values, dtype=float))


def _fd(values: np.ndarray) -> np.ndarray:
    return np.char.mod("%d", np.asarray(values, dtype=float).astype(np.int64))


def _join(*parts: Any) -> np.ndarray:
    out = np.asarray(parts[0], dtype=str)
    for part in parts[1:]:
        out = np.char.add(out, np.asarray(part, dtype=str))
    return out


def _either(a_hit: np.ndarray, a: np.ndarray, b_hit: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a``, ``b`` or ``a and b``, by which of the two conditions hold (at least one does)."""
    return np.where(a_hit & b_hit, _join(a, " and ", b), np.where(a_hit, a, b))


def classify(frame: pd.DataFrame, rules: StatusRules, *, as_of: date, before: date) -> tuple[np.ndarray, np.ndarray]:
    """Status and reason per row of ``frame`` (customers with a purchase by ``as_of``).

    ``frame`` has ``probability_alive(_before)``, ``expected_purchases(_before)``,
    ``frequency_before``, ``days_since_first_purchase`` and ``days_since_last_purchase``. Rules in :data:`PRECEDENCE`
    order (prospects are handled by the caller); each reason names the numbers that decided.
    """
    p = frame["probability_alive"].to_numpy(dtype=float)
    pb = frame["probability_alive_before"].to_numpy(dtype=float)
    e = frame["expected_purchases"].to_numpy(dtype=float)
    eb = frame["expected_purchases_before"].to_numpy(dtype=float)
    xb = frame["frequency_before"].to_numpy(dtype=float)
    first = frame["days_since_first_purchase"].to_numpy(dtype=float)
    last = frame["days_since_last_purchase"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # P(alive) of a one-time buyer is 1 by construction (BG/NBD): a fall from it is no sign
        # of cooling, so the P(alive) part needs a repeat buyer at the lookback date
        drop_p = np.where((pb > 0) & (xb > 0), (pb - p) / pb, np.nan)
        drop_e = np.where(eb > 0, (eb - e) / eb, np.nan)
    r = rules
    hits = {
        "lost": (p < r.lost_probability_alive, last > r.lost_days),
        "lapsed": (p < r.lapsed_probability_alive, last > r.lapsed_days),
        "at_risk": (p < r.at_risk_probability_alive, last > r.at_risk_days),
        "cooling": (drop_p > r.cooling_relative_drop, drop_e > r.cooling_relative_drop),
    }
    new = first <= r.new_days
    order = ["lost", "lapsed", "new", "at_risk", "cooling"]
    conds = [new if s == "new" else hits[s][0] | hits[s][1] for s in order]
    status = np.select(conds, order, default="active").astype(object)
    reason = np.empty(status.size, dtype=object)
    days_txt = lambda m: _join(_fd(last[m]), " days since last purchase")  # noqa: E731
    for name in ("lost", "lapsed", "at_risk"):
        m = status == name
        if not m.any():
            continue
        p_hit, d_hit = hits[name][0][m], hits[name][1][m]
        limit_p, limit_d = getattr(r, f"{name}_probability_alive"), getattr(r, f"{name}_days")
        by_p = _join("P(alive) ", _f3(p[m]), f" < {limit_p:g}")
        by_d = _join(days_txt(m), f" > {limit_d}")
        context = np.where(p_hit, _join("; ", days_txt(m)), _join("; P(alive) ", _f3(p[m])))
        context = np.where(p_hit & d_hit, "", context)
        reason[m] = _join(_either(p_hit, by_p, d_hit, by_d), f" ({name.replace('_', ' ')})", context)
    m = status == "new"
    if m.any():
        reason[m] = _join("first purchase ", _fd(first[m]), f" days before {as_of} <= {r.new_days} (new); P(alive) ", _f3(p[m]))
    m = status == "cooling"
    if m.any():
        share = f" > {r.cooling_relative_drop:.0%} since {before}"
        by_p = _join("P(alive) ", _f3(pb[m]), " -> ", _f3(p[m]), " (-", np.char.mod("%.0f", 100 * drop_p[m]), "%", share, ")")
        by_e = _join("expected purchases (52 weeks) ", _f2(eb[m]), " -> ", _f2(e[m]), " (-",
                     np.char.mod("%.0f", 100 * np.nan_to_num(drop_e[m])), "%", share, ")")
        reason[m] = _join(_either(hits["cooling"][0][m], by_p, hits["cooling"][1][m], by_e), " (cooling)")
    m = status == "active"
    if m.any():
        trend = np.where(np.isnan(pb[m]), f"no purchase history on {before}", f"no drop > {r.cooling_relative_drop:.0%} since {before}")
        reason[m] = _join("P(alive) ", _f3(p[m]), f" >= {r.at_risk_probability_alive:g}, ", days_txt(m),
                          f" <= {r.at_risk_days}, ", trend, " (active)")
    return status, reason


def relationship_status(
    db: str | os.PathLike[str] | None = None,
    *,
    as_of: str | date | datetime | None = None,
    config: str | os.PathLike[str] | dict[str, Any] | StatusRules | None = None,
    scores: Any = None,
    model: str = "bgnbd",
    params: Mapping[str, float] | TransactionModel | None = None,
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
        (next 52 weeks): a DataFrame with ``customer_id, probability_alive, expected_purchases``
        or a :class:`patron.value.Scores` (whose model then also gives the earlier values).
    model
        Transaction model fitted on the weekly summary as of ``as_of``: bgnbd, mbgnbd or pareto.
    params
        Fixed model parameters (e.g. ``{"r": 0.24, "alpha": 4.41, "a": 0.79, "b": 2.43}``, rates
        per week) or a fitted model, instead of fitting.

    Returns
    -------
    Columns :data:`STATUS_COLUMNS`. Prospects have NaN/NaT purchase columns and ``n_orders`` 0.
    """
    rules = status_rules(config)
    as_of_d = parse_date(as_of) or last_purchase_day(db)
    before_d = as_of_d - timedelta(days=rules.cooling_lookback_days)
    now = summary(db, period="W", end=as_of_d)
    fitted = None if scores is not None and params is None else transaction_model(model, params, now)
    if scores is not None:
        p_now, e_now, fitted = _scores_now(scores, now, fitted)
        if fitted is None:
            fitted = transaction_model(model, None, now)
    else:
        p_now, e_now = _predict(fitted, now)
    try:
        before = summary(db, period="W", end=before_d)
    except NoDataError:
        before = now.iloc[:0]
    p_b, e_b = _predict(fitted, before)
    earlier = pd.DataFrame({"customer_id": before["customer_id"].to_numpy(), "probability_alive_before": p_b,
                            "expected_purchases_before": e_b, "frequency_before": before["frequency"].to_numpy(dtype=float)})
    out = pd.DataFrame(
        {
            "customer_id": now["customer_id"].to_numpy(),
            "probability_alive": p_now,
            "expected_purchases": e_now,
            "days_since_first_purchase": _days(as_of_d, now["first_purchase"]),
            "days_since_last_purchase": _days(as_of_d, now["last_purchase"]),
            "first_purchase": now["first_purchase"].to_numpy(),
            "last_purchase": now["last_purchase"].to_numpy(),
            "n_orders": now["n_orders"].to_numpy(dtype=np.int64),
            "frequency": now["frequency"].to_numpy(dtype=float),
            "recency": now["recency"].to_numpy(dtype=float),
            "T": now["T"].to_numpy(dtype=float),
        }
    ).merge(earlier, on="customer_id", how="left")
    status, reason = classify(out, rules, as_of=as_of_d, before=before_d)
    out["status"], out["status_reason"] = status, reason
    prospects = _prospects(db, as_of_d)
    if prospects.size:
        pros = pd.DataFrame({"customer_id": prospects, "status": "prospect", "n_orders": np.zeros(prospects.size, dtype=np.int64),
                             "status_reason": f"known customer with no purchase on or before {as_of_d}"})
        out = pd.concat([out, pros], ignore_index=True)
        out["n_orders"] = out["n_orders"].astype(np.int64)
    out["as_of"] = as_of_d
    out["customer_id"] = out["customer_id"].astype(str)
    return out[list(STATUS_COLUMNS)]


def status_counts(statuses: pd.DataFrame) -> pd.DataFrame:
    """Count, share and mean P(alive) per status (every status listed, in :data:`STATUSES` order).

    ``statuses`` has columns ``status`` and ``probability_alive`` (the output of
    :func:`relationship_status`); ``mean_probability_alive`` is NaN for prospects and empty rows.
    """
    g = statuses.groupby("status", observed=True)
    counts = g.size().reindex(list(STATUSES), fill_value=0).astype(np.int64)
    total = int(counts.sum())
    mean_p = g["probability_alive"].mean().reindex(list(STATUSES))
    return pd.DataFrame(
        {
            "status": list(STATUSES),
            "count": counts.to_numpy(),
            "share": counts.to_numpy() / total if total else np.zeros(len(STATUSES)),
            "mean_probability_alive": mean_p.to_numpy(dtype=float),
        }
    )
