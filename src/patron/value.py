"""Lifetime value from a customer summary: fit a model by name, score every customer, and sum
customer equity. The Python face of ``patron fit`` and ``patron score``.

Units: ``horizon`` is in the summary's period unit (weeks by default); ``discount_rate`` is an
**annual** rate, converted to the period unit with :func:`patron.models.clv.per_period_rate`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from patron.constants import PERIOD_UNITS
from patron.errors import InputError
from patron.io import read_table
from patron.models import MODELS, BaseModel, GammaGamma
from patron.models.clv import clv_intervals, per_period_rate

DAYS_PER_YEAR = 365.25
"""Mean days per Gregorian year, to turn an annual discount rate into a per-period one."""

MODEL_DATA: dict[str, tuple[str, ...]] = {
    "bgnbd": ("frequency", "recency", "T"),
    "mbgnbd": ("frequency", "recency", "T"),
    "pareto": ("frequency", "recency", "T"),
    "gammagamma": ("frequency", "monetary_value"),
    "bgbb": ("frequency", "recency", "n_periods"),
    "sbg": ("duration", "churned"),
}
"""Summary columns each model is fitted on, in the order of its ``fit`` arguments."""

TRANSACTION_MODELS = ("bgnbd", "mbgnbd", "pareto")
"""Models that predict purchases from (frequency, recency, T) and so can score CLV."""

ALIASES = {"ID": "customer_id", "x": "frequency", "t_x": "recency", "zbar": "monetary_value"}
"""Column names of the Fader-Hardie files, read as patron's names."""


def read_summary(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A summary CSV/Parquet file as a DataFrame, with Fader-Hardie names (x, t_x, zbar) renamed."""
    df = read_table(path).to_pandas()
    df.columns = [str(c).strip() for c in df.columns]
    return df.rename(columns={k: v for k, v in ALIASES.items() if k in df.columns and v not in df.columns})


def fit_model(name: str, summary: pd.DataFrame, *, penalizer: float = 0.0, weight_column: str = "weight", label: str = "summary") -> BaseModel:
    """Fit the model called ``name`` (bgnbd, mbgnbd, pareto, gammagamma, bgbb, sbg) on the columns
    of ``summary`` it needs (:data:`MODEL_DATA`); an optional ``weight`` column counts identical
    customers. For sbg, a table with a ``survivors`` column (one cohort's survivor counts per
    period, the first being the cohort size) is accepted too."""
    if name not in MODELS:
        raise InputError(f"unknown model {name!r}; choose one of {', '.join(sorted(MODELS))}")
    if name == "sbg" and "survivors" in summary.columns:
        summary = _survivors_table(summary, label)
    needed = MODEL_DATA[name]
    missing = [c for c in needed if c not in summary.columns]
    if missing:
        raise InputError(f"{label}: missing column {', '.join(missing)} for {name} (columns: {', '.join(map(str, summary.columns))})")
    data = [summary[c].to_numpy(dtype=float) for c in needed]
    weights = summary[weight_column].to_numpy(dtype=float) if weight_column in summary.columns else None
    try:
        return MODELS[name](penalizer=penalizer).fit(*data, weights=weights)
    except ValueError as exc:
        raise InputError(f"{label}: {exc}") from None


def _survivors_table(table: pd.DataFrame, label: str) -> pd.DataFrame:
    """A cohort's survivor counts (column ``survivors``, first row = cohort size, one row per
    period, in order) as (duration, churned, weight) rows for the sBG likelihood."""
    from patron.models.shifted_beta_geo import survivors_to_durations

    try:
        duration, churned, weight = survivors_to_durations(table["survivors"].to_numpy(dtype=float))
    except ValueError as exc:
        raise InputError(f"{label}: {exc}") from None
    return pd.DataFrame({"duration": duration, "churned": churned, "weight": weight})


@dataclass(frozen=True)
class Scores:
    """Per-customer scores and customer equity with its interval (parameter uncertainty)."""

    customers: pd.DataFrame
    equity: float
    equity_lower: float
    equity_upper: float
    level: float
    transaction_model: BaseModel
    spend_model: BaseModel
    horizon: float
    period: str
    method: str


def score(
    summary: pd.DataFrame,
    *,
    model: str = "bgnbd",
    period: str = "W",
    horizon: float = 52.0,
    discount_rate: float = 0.0,
    margin: float = 1.0,
    cost_to_serve: Any = None,
    interval_method: str = "delta",
    n_draws: int = 200,
    level: float = 0.95,
    penalizer: float = 0.0,
    random_state: int = 0,
) -> Scores:
    """Fit ``model`` and Gamma-Gamma on ``summary`` and score every customer.

    Output columns: ``customer_id, frequency, recency, T, monetary_value, expected_purchases``
    (in the next ``horizon`` periods), ``probability_alive``, ``expected_spend`` (per purchase),
    ``clv``, ``clv_lower``, ``clv_upper`` (``margin`` x spend x discounted expected purchases, minus
    ``cost_to_serve``; interval at ``level`` for parameter uncertainty, by the delta method or,
    with ``interval_method="bootstrap"``, a parametric bootstrap of ``n_draws`` draws).
    """
    if interval_method not in ("delta", "bootstrap"):
        raise InputError(f"--interval-method must be delta or bootstrap; got {interval_method!r}")
    if model not in TRANSACTION_MODELS or model not in MODELS:
        raise InputError(f"--model must be one of {', '.join(m for m in TRANSACTION_MODELS if m in MODELS)}; got {model!r}")
    if horizon <= 0:
        raise InputError(f"--horizon must be positive; got {horizon}")
    tm = fit_model(model, summary, penalizer=penalizer)
    sm: GammaGamma = fit_model("gammagamma", summary, penalizer=penalizer)  # type: ignore[assignment]
    x, tx, T = (summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    m = summary["monetary_value"].to_numpy(dtype=float)
    d = per_period_rate(discount_rate, DAYS_PER_YEAR / PERIOD_UNITS[period.upper()]) if discount_rate else 0.0
    res = clv_intervals(tm, sm, x, tx, T, m, horizon=horizon, discount_rate=d, margin=margin, cost_to_serve=cost_to_serve, method=interval_method, n_draws=n_draws, level=level, random_state=random_state)
    out = pd.DataFrame(
        {
            "customer_id": summary["customer_id"].to_numpy() if "customer_id" in summary.columns else np.arange(len(summary)),
            "frequency": x, "recency": tx, "T": T, "monetary_value": m,
            "expected_purchases": tm.conditional_expected_purchases(horizon, x, tx, T),
            "probability_alive": tm.probability_alive(x, tx, T),
            "expected_spend": sm.conditional_expected_average_spend(x, m),
            "clv": res.clv, "clv_lower": res.lower, "clv_upper": res.upper,
        }
    )
    return Scores(out, float(res.equity), float(res.equity_lower), float(res.equity_upper), level, tm, sm, horizon, period.upper(), res.method)
