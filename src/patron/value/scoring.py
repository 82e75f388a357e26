"""Lifetime value from a customer summary: fit a model by name, score every customer, and sum
customer equity. The Python face of ``patron fit`` and ``patron score``.

Units: ``horizon`` is in the summary's period unit (weeks by default); ``discount_rate`` is an
**annual** rate, converted to the period unit (:attr:`ValueSettings.discount_rate_per_period`).
The settings and their defaults are those of the ``[value]`` rules section
(:mod:`patron.value.settings`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from patron.constants import DAYS_PER_YEAR
from patron.data.io import read_table
from patron.errors import InputError
from patron.value.models import MODELS, BaseModel, GammaGamma
from patron.value.models.clv import clv_intervals
from patron.value.settings import SPEND_BASES, ValueSettings, spend_note

__all__ = [
    "DAYS_PER_YEAR", "MODEL_DATA", "TRANSACTION_MODELS", "Scores", "check_summary", "fit_model", "read_summary", "score",
    "spend_basis",
]

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
    from patron.value.models.shifted_beta_geo import survivors_to_durations

    try:
        duration, churned, weight = survivors_to_durations(table["survivors"].to_numpy(dtype=float))
    except ValueError as exc:
        raise InputError(f"{label}: {exc}") from None
    return pd.DataFrame({"duration": duration, "churned": churned, "weight": weight})


@dataclass(frozen=True)
class Scores:
    """Per-customer scores and customer equity with its interval (parameter uncertainty), the
    settings they were computed with, and customers per spend basis
    (:data:`patron.value.settings.SPEND_BASES`)."""

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
    settings: ValueSettings = field(default_factory=ValueSettings)
    spend_bases: dict[str, int] = field(default_factory=dict)
    covariate_notes: list[str] = field(default_factory=list)
    """How the covariates were encoded (one-hot, missing values), when the model has covariates."""

    @property
    def has_covariates(self) -> bool:
        """Whether the transaction model is a covariate model (``[value] covariates``)."""
        return hasattr(self.transaction_model, "coefficients_")

    @property
    def population_mean_spend(self) -> float:
        """The fitted Gamma-Gamma population mean spend per purchase, p v / (q - 1) (+inf when
        q <= 1), in currency: the expected spend of customers without usable repeat spend."""
        return float(self.spend_model.conditional_expected_average_spend(0.0, 0.0))

    def notes(self, currencies: tuple[str, ...] = ()) -> list[str]:
        """The lines to print beside these values: the settings line, and the spend-basis note
        when some customers' repeat purchases total 0 or less."""
        note = spend_note(self.spend_bases, self.population_mean_spend, self.settings.label(currencies))
        return [self.settings.line(currencies)] + ([note] if note else []) + list(self.covariate_notes)


SUMMARY_CHECKS: tuple[tuple[str, str], ...] = (
    ("frequency, recency or T is missing or not a finite number", "fill the values or drop those rows"),
    ("frequency is not a whole number >= 0", "frequency counts repeat purchases"),
    ("recency is not between 0 and T", "recency is the time from the first to the last purchase, T from the first purchase to the end"),
    ("recency is not 0 although frequency is 0", "without a repeat purchase recency is 0"),
    ("T is 0 although frequency is positive", "T must cover the repeat purchases"),
    ("monetary_value is missing or not a finite number for a customer with repeat purchases",
     "give the mean value of the repeat purchases (0 is allowed: the customer is valued at the population mean spend)"),
)
"""What :func:`check_summary` rejects, and the fix it names."""


def _floats(column: pd.Series) -> np.ndarray:
    """A column as float64, NaN where a value is not a number (a numeric column without a copy
    when it is float64 already)."""
    if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
        return column.to_numpy(dtype=float, na_value=np.nan)
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)


def check_summary(summary: pd.DataFrame, label: str = "summary") -> None:
    """Stop with one line naming the customers (up to three, and how many) of the first problem
    of :data:`SUMMARY_CHECKS` that ``summary`` has; the transaction and spend models need
    ``frequency, recency, T`` (and ``monetary_value``) to be valid for every customer."""
    missing = [c for c in ("frequency", "recency", "T", "monetary_value") if c not in summary.columns]
    if missing:
        raise InputError(f"{label}: missing column {', '.join(missing)} (columns: {', '.join(map(str, summary.columns))})")
    x, tx, T, m = (_floats(summary[c]) for c in ("frequency", "recency", "T", "monetary_value"))
    with np.errstate(invalid="ignore"):
        bad_number = ~(np.isfinite(x) & np.isfinite(tx) & np.isfinite(T))
        masks = (
            bad_number,
            ~bad_number & ((x < 0) | (x != np.floor(x))),
            ~bad_number & ((tx < 0) | (tx > T)),
            ~bad_number & (x == 0) & (tx != 0),
            ~bad_number & (x > 0) & (T <= 0),
            ~bad_number & (x > 0) & ~np.isfinite(m),
        )
    for mask, (problem, fix) in zip(masks, SUMMARY_CHECKS, strict=True):
        n = int(mask.sum())
        if n:  # the first three customers named (no string per customer built otherwise)
            rows = np.flatnonzero(mask)[:3]
            ids = (summary["customer_id"].iloc[rows].astype(str).tolist() if "customer_id" in summary.columns
                   else [f"row {i + 1}" for i in rows])
            shown = ", ".join(ids) + (", ..." if n > 3 else "")
            who = "customer" if n == 1 else "customers"
            raise InputError(f"{label}: {problem} for {n:,} {who} ({shown}); {fix}")


def _spend_basis_codes(frequency: np.ndarray, monetary_value: np.ndarray) -> np.ndarray:
    """Index into :data:`patron.value.settings.SPEND_BASES` of each customer's spend basis."""
    with np.errstate(invalid="ignore"):
        return np.where(frequency > 0, np.where(monetary_value > 0, 0, 2), 1)


def _labels(codes: np.ndarray, labels: tuple[str, ...]) -> Any:
    """``labels[codes]`` as a text column built by Arrow (pandas' Arrow-backed text), without a
    Python string per row."""
    import pyarrow as pa

    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int8)), pa.array(labels)).cast(pa.string()).to_pandas().array


def spend_basis(frequency: np.ndarray, monetary_value: np.ndarray) -> np.ndarray:
    """Each customer's spend basis (:data:`patron.value.settings.SPEND_BASES`): ``own`` for
    repeat buyers with repeat purchases of positive value, else why the population mean spend
    is used."""
    return np.array(SPEND_BASES, dtype=object).take(_spend_basis_codes(frequency, monetary_value))


def score(
    summary: pd.DataFrame,
    *,
    settings: ValueSettings | None = None,
    model: str | None = None,
    period: str | None = None,
    horizon: float | None = None,
    discount_rate: float | None = None,
    margin: float | None = None,
    cost_to_serve: Any = None,
    cost_per_order: float | None = None,
    interval_method: str = "delta",
    n_draws: int = 200,
    level: float = 0.95,
    penalizer: float = 0.0,
    random_state: int = 0,
    db: str | os.PathLike[str] | None = None,
) -> Scores:
    """Fit the transaction model and Gamma-Gamma on ``summary`` and score every customer.

    The value settings are ``settings`` (default: :class:`ValueSettings`'s defaults, BG/NBD, 52
    weeks, 10% a year, margin 1), with any of ``model``, ``period`` (the unit of ``summary``),
    ``horizon`` (in ``period`` units), ``discount_rate`` (annual), ``margin`` and
    ``cost_per_order`` given here replacing them. ``cost_to_serve`` is the cost to serve per
    customer over the horizon (currency): a number replaces ``settings.cost_per_customer``, an
    array gives one per customer.

    Output columns: ``customer_id, frequency, recency, T, monetary_value, expected_purchases``
    (in the next ``horizon`` periods), ``probability_alive``, ``expected_spend`` (per purchase),
    ``spend_basis`` (where the expected spend comes from, :func:`spend_basis`),
    ``discounted_purchases`` (P: expected purchases over the horizon, discounted),
    ``expected_revenue`` (expected spend x P), ``clv``, ``clv_lower``, ``clv_upper``
    (``margin`` x expected_revenue - cost per order x P - cost to serve per customer; interval at
    ``level`` for parameter uncertainty, by the delta method or, with
    ``interval_method="bootstrap"``, a parametric bootstrap of ``n_draws`` draws).

    Customers with repeat purchases totalling 0 or less (zero-value orders) are left out of the
    Gamma-Gamma fit and valued at its population mean spend (``Scores.spend_bases`` counts
    them); a row the models cannot use at all stops with a line naming the customers
    (:func:`check_summary`).

    With ``settings.covariates`` the transaction model has covariates
    (:mod:`patron.value.models.covariates`): read from the summary's columns or, for those it lacks,
    the customer attributes of ``db`` (:func:`patron.value.covariate_data.join_covariates`); CLV is
    then :func:`patron.value.models.clv_covariates.covariate_clv_intervals`. With
    ``settings.dynamic_covariates`` it is the time-varying Pareto/NBD on the covariate file and
    ``db``'s purchases (:func:`dynamic_model`), CLV
    :func:`patron.value.models.clv_covariates.dynamic_clv_intervals` along each customer's path.
    """
    scalar_cost = cost_to_serve is None or np.ndim(cost_to_serve) == 0
    s = (settings or ValueSettings()).override(
        model=model, period=period, horizon=horizon, discount_rate=discount_rate, margin=margin, cost_per_order=cost_per_order,
        cost_per_customer=float(cost_to_serve) if scalar_cost and cost_to_serve is not None else None,
    )
    if interval_method not in ("delta", "bootstrap"):
        raise InputError(f"interval_method must be delta or bootstrap; got {interval_method!r}", parameters=("interval_method",))
    if s.model not in MODELS:
        raise InputError(f"model must be one of {', '.join(m for m in TRANSACTION_MODELS if m in MODELS)}; got {s.model!r}",
                         parameters=("model",))
    check_summary(summary)
    sm: GammaGamma = fit_model("gammagamma", summary, penalizer=penalizer)  # type: ignore[assignment]
    x, tx, T = (summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    m = summary["monetary_value"].to_numpy(dtype=float)
    cost = (s.cost_per_customer or None) if scalar_cost else cost_to_serve
    clv_kw = dict(horizon=s.horizon, discount_rate_per_step=s.discount_rate_per_period, margin=s.margin, cost_to_serve=cost,
                  cost_per_purchase=s.cost_per_order, method=interval_method, n_draws=n_draws, level=level,
                  random_state=random_state)
    notes: list[str] = []
    if s.dynamic_covariates:
        from patron.value.models.clv_covariates import dynamic_clv_intervals

        tm, data, notes = dynamic_model(summary, s, db=db, penalizer=penalizer)
        res = dynamic_clv_intervals(tm, sm, data, m, **clv_kw)
        expected, alive = tm.conditional_expected_purchases(s.horizon, data), tm.probability_alive(data)
    elif s.all_covariates:
        from patron.value.covariate_data import join_covariates
        from patron.value.models.clv_covariates import covariate_clv_intervals

        encoded = join_covariates(summary, s.all_covariates, db=db)
        tm = fit_covariate_model(s.model, x, tx, T, encoded, purchase=s.purchase_covariates or s.covariates,
                                 dropout=s.dropout_covariates or s.covariates, penalizer=penalizer)
        cov = encoded.frame
        res = covariate_clv_intervals(tm, sm, x, tx, T, m, cov, **clv_kw)
        expected = tm.conditional_expected_purchases(s.horizon, x, tx, T, cov)
        alive = tm.probability_alive(x, tx, T, cov)
        notes = encoded.notes
    else:
        tm = fit_model(s.model, summary, penalizer=penalizer)
        res = clv_intervals(tm, sm, x, tx, T, m, **clv_kw)
        expected, alive = tm.conditional_expected_purchases(s.horizon, x, tx, T), tm.probability_alive(x, tx, T)
    spend = sm.conditional_expected_average_spend(x, m)
    codes = _spend_basis_codes(x, m)
    basis = _labels(codes, SPEND_BASES)
    # No Python object per customer: the ids keep their array (Arrow-backed text stays Arrow) and
    # the columns are not copied into one block.
    out = pd.DataFrame(
        {
            "customer_id": summary["customer_id"].array if "customer_id" in summary.columns else np.arange(len(summary)),
            "frequency": x, "recency": tx, "T": T, "monetary_value": m,
            "expected_purchases": expected,
            "probability_alive": alive,
            "expected_spend": spend, "spend_basis": basis,
            "discounted_purchases": res.purchases, "expected_revenue": spend * res.purchases,
            "clv": res.clv, "clv_lower": res.lower, "clv_upper": res.upper,
        },
        copy=False,
    )
    counts = np.bincount(codes, minlength=len(SPEND_BASES))
    return Scores(out, float(res.equity), float(res.equity_lower), float(res.equity_upper), level, tm, sm, s.horizon, s.period,
                  res.method, s, {b: int(n) for b, n in zip(SPEND_BASES, counts, strict=True)}, notes)


COVARIATE_MODELS = ("bgnbd", "pareto")
"""Transaction models with a covariate version (:mod:`patron.value.models.covariates`)."""


def fit_covariate_model(name: str, frequency: Any, recency: Any, T: Any, encoded: Any, *, purchase: Any, dropout: Any,
                        constrained: Any = (), penalizer: float = 0.0, regularization: Any = 0.0, weights: Any = None,
                        label: str = "summary") -> Any:
    """Fit the covariate version of ``name`` (bgnbd or pareto) on encoded covariates
    (:class:`patron.value.covariate_data.EncodedCovariates`); ``purchase``, ``dropout`` and
    ``constrained`` name raw covariates (expanded to their encoded columns)."""
    from patron.value.models.beta_geo_covariates import BetaGeoCovariates
    from patron.value.models.pareto_nbd_covariates import ParetoNBDCovariates

    classes = {"bgnbd": BetaGeoCovariates, "pareto": ParetoNBDCovariates}
    if name not in classes:
        raise InputError(f"covariates need model bgnbd or pareto; got {name!r}")
    for raw in (*purchase, *dropout, *constrained):
        if raw not in encoded.columns:
            raise InputError(f"{label}: covariate {raw!r} is not among the covariates read ({', '.join(encoded.columns)})")
    model = classes[name](encoded.expand(purchase), encoded.expand(dropout), constrained=encoded.expand(constrained),
                          penalizer=penalizer, regularization=regularization)
    try:
        return model.fit(frequency, recency, T, encoded.frame, weights=weights)
    except (ValueError, KeyError) as exc:
        raise InputError(f"{label}: {exc}") from None


def dynamic_model(summary: pd.DataFrame, settings: ValueSettings, *, db: str | os.PathLike[str] | None,
                  penalizer: float = 0.0) -> tuple[Any, Any, list[str]]:
    """The time-varying Pareto/NBD of ``settings.dynamic_covariates`` fitted on ``summary``'s
    customers (every one: those acquired before the file's first period take its values) and
    ``db``'s purchases per period, with the :class:`patron.value.models.dynamic_paths.DynamicData`
    whose paths cover the horizon (for predictions) and the notes on odd rows."""
    from patron.value.dynamic_covariates import dynamic_inputs

    s = settings
    if s.model != "pareto":
        raise InputError(f"time-varying covariates (dynamic_covariates) value with the time-varying Pareto/NBD: "
                         f"use model pareto (got {s.model})", parameters=("dynamic_covariates", "model"))
    if db is None:
        raise InputError("time-varying covariates need the database: its purchases give the periods of the repeat purchases")
    path = str(s.dynamic_covariates)
    inputs = dynamic_inputs(db, path, period=s.period, names=s.all_covariates or None, summary=summary, horizon=s.horizon,
                            keep_early=True)
    model = fit_dynamic_model(inputs, purchase=s.purchase_covariates or s.covariates,
                              dropout=s.dropout_covariates or s.covariates, penalizer=penalizer, label=path)
    data = model.path_data(inputs.frequency, inputs.recency, inputs.T, inputs.first, inputs.paths, inputs.names,
                           inputs.purchase_counts)
    return model, data, inputs.notes


def fit_dynamic_model(inputs: Any, *, purchase: Any = (), dropout: Any = (), constrained: Any = (), penalizer: float = 0.0,
                      regularization: Any = 0.0, label: str = "covariates") -> Any:
    """The time-varying Pareto/NBD fitted on :class:`patron.value.dynamic_covariates.DynamicInputs`;
    ``purchase`` and ``dropout`` name the file's columns acting on each process (neither given:
    every column on both)."""
    from patron.value.models.pareto_nbd_dynamic import ParetoNBDDynamic

    purchase, dropout = tuple(purchase), tuple(dropout)
    given = bool(purchase or dropout)
    model = ParetoNBDDynamic(purchase if given else None, dropout if given else None, constrained=tuple(constrained),
                             penalizer=penalizer, regularization=regularization)
    try:
        return model.fit(inputs.frequency, inputs.recency, inputs.T, inputs.first, inputs.paths, inputs.names,
                         inputs.purchase_counts, period_length=inputs.period_length)
    except (ValueError, KeyError) as exc:
        raise InputError(f"{label}: {exc}") from None
