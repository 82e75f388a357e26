"""Scoring on Spark executors: predictions, CLV and per-customer intervals for every customer of a
Spark summary, computed by the same vectorized model code as :func:`patron.value.scoring.score`.

The fitted models (a few numbers each) travel to the executors inside the function given to
``mapInPandas``; each Arrow batch of customers is scored with NumPy there, so no customer row
reaches the driver. Customer equity (the sum of CLV, overall or by a column) is aggregated on the
cluster, and so is its delta-method interval (:func:`equity_interval_spark`): each partition sums
its customers' CLV and log-parameter gradients, the cluster adds the sums, and the driver combines
a handful of numbers with the models' covariances -- the same arithmetic as
:func:`patron.value.models.clv.clv_intervals` on one machine.

:func:`score_on_spark` runs the whole of ``patron score --engine spark`` from Python: summary,
fits, scores written as Parquet, equity and its interval.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from patron.data.engines import require_spark, require_spark_inputs

require_spark()  # one line naming the extra, before pyspark is imported

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, StringType, StructField, StructType
from scipy import special

from patron.errors import InputError
from patron.value.models import BaseModel
from patron.value.models.clv import clv_intervals, equity_gradients, equity_variance
from patron.value.scoring import TRANSACTION_MODELS, spend_basis
from patron.value.settings import (
    SPEND_BASES,
    SPEND_NO_REPEAT,
    SPEND_NONPOSITIVE,
    SPEND_OWN,
    ValueSettings,
)

SCORE_COLUMNS: tuple[str, ...] = (
    "expected_purchases", "probability_alive", "expected_spend", "discounted_purchases", "expected_revenue",
    "clv", "clv_lower", "clv_upper",
)
"""Number columns :func:`score_spark` adds, as in :func:`patron.value.scoring.score` (which also gives the
text column ``spend_basis``)."""

NEEDED_COLUMNS: tuple[str, ...] = ("frequency", "recency", "T", "monetary_value")
"""Summary columns scoring reads."""


def score_batch(
    summary: pd.DataFrame,
    transaction_model: BaseModel,
    spend_model: BaseModel,
    *,
    horizon: float,
    discount_rate_per_period: float,
    margin: float,
    level: float,
    cost_per_customer: float = 0.0,
    cost_per_order: float = 0.0,
) -> pd.DataFrame:
    """``summary`` (one batch of customers) with :data:`SCORE_COLUMNS` and ``spend_basis``
    added; a new frame.

    ``expected_purchases`` in the next ``horizon`` periods, ``probability_alive``,
    ``expected_spend`` (per purchase, currency), ``discounted_purchases`` (P),
    ``expected_revenue`` (spend x P), ``clv`` = ``margin`` x spend x P - ``cost_per_order`` x P -
    ``cost_per_customer``, and its delta-method interval at ``level`` (parameter uncertainty).
    Each customer's values depend only on its own row, so batches can be scored anywhere."""
    x, tx, T, m = (summary[c].to_numpy(dtype=np.float64) for c in NEEDED_COLUMNS)
    out = summary.copy()
    if x.size == 0:
        for c in SCORE_COLUMNS:
            out[c] = np.empty(0)
        out["spend_basis"] = np.empty(0, dtype=object)
        return out
    res = clv_intervals(transaction_model, spend_model, x, tx, T, m, horizon=horizon,
                        discount_rate_per_step=discount_rate_per_period, margin=margin, level=level,
                        cost_to_serve=cost_per_customer or None, cost_per_purchase=cost_per_order)
    out["expected_purchases"] = transaction_model.conditional_expected_purchases(horizon, x, tx, T)
    out["probability_alive"] = transaction_model.probability_alive(x, tx, T)
    out["expected_spend"] = spend_model.conditional_expected_average_spend(x, m)
    out["discounted_purchases"] = res.purchases
    out["expected_revenue"] = out["expected_spend"].to_numpy() * res.purchases
    out["clv"], out["clv_lower"], out["clv_upper"] = res.clv, res.lower, res.upper
    out["spend_basis"] = spend_basis(x, m)
    return out


def value_settings(settings: ValueSettings | None = None, **values: Any) -> ValueSettings:
    """``settings`` (default :class:`~patron.value.settings.ValueSettings`'s defaults, the one set
    of value defaults :func:`patron.value.scoring.score` uses too) with the ``values`` given (not
    ``None``) replacing them; an invalid value is an :class:`~patron.errors.InputError` naming
    its parameter."""
    return (settings or ValueSettings()).override(**values)


def score_spark(
    summary: DataFrame,
    transaction_model: BaseModel,
    spend_model: BaseModel,
    *,
    settings: ValueSettings | None = None,
    horizon: float | None = None,
    period: str | None = None,
    discount_rate: float | None = None,
    margin: float | None = None,
    level: float = 0.95,
    cost_per_customer: float | None = None,
    cost_per_order: float | None = None,
) -> DataFrame:
    """Score every customer of a Spark ``summary`` (from :func:`~patron.value.spark_summary.summary_spark`)
    on the executors; a lazy DataFrame with the summary's columns, :data:`SCORE_COLUMNS` and
    ``spend_basis``.

    The value settings are those of :func:`patron.value.scoring.score`: ``settings`` (default
    :class:`~patron.value.settings.ValueSettings`'s defaults: 52 weeks, 10% a year, margin 1, no
    costs), with any of ``horizon`` (in ``period`` units, the summary's), ``period``,
    ``discount_rate`` (annual, converted per period), ``margin``, ``cost_per_customer`` and
    ``cost_per_order`` (currency) given here replacing them; so the same call gives the same CLV
    on both engines. The models are fitted ones, e.g. from
    :func:`~patron.value.spark_fit.fit_spark` (``bgnbd``, ``mbgnbd`` or ``pareto``, and
    ``gammagamma``). The executors need patron installed in their Python.
    """
    _check_summary(summary)
    s = value_settings(settings, horizon=horizon, period=period, discount_rate=discount_rate, margin=margin,
                       cost_per_customer=cost_per_customer, cost_per_order=cost_per_order)
    _check_models(transaction_model, spend_model)
    kwargs: dict[str, Any] = dict(horizon=float(s.horizon), discount_rate_per_period=s.discount_rate_per_period,
                                  margin=float(s.margin), level=float(level),
                                  cost_per_customer=float(s.cost_per_customer), cost_per_order=float(s.cost_per_order))
    tm, sm = transaction_model, spend_model

    def score_partition(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            yield score_batch(batch, tm, sm, **kwargs)

    schema = StructType([*summary.schema.fields, *(StructField(c, DoubleType()) for c in SCORE_COLUMNS),
                         StructField("spend_basis", StringType())])
    return summary.mapInPandas(score_partition, schema=schema)


def spend_basis_counts_spark(summary: DataFrame) -> dict[str, int]:
    """Customers per spend basis (:data:`patron.value.settings.SPEND_BASES`) of a Spark
    ``summary``, counted on the cluster with the rule of :func:`patron.value.scoring.spend_basis`."""
    basis = (F.when((F.col("frequency") > 0) & (F.col("monetary_value") > 0), F.lit(SPEND_OWN))
             .when(F.col("frequency") > 0, F.lit(SPEND_NONPOSITIVE)).otherwise(F.lit(SPEND_NO_REPEAT)))
    rows = summary.groupBy(basis.alias("basis")).count().collect()
    found = {r["basis"]: int(r["count"]) for r in rows}
    return {b: found.get(b, 0) for b in SPEND_BASES}


def _check_summary(summary: DataFrame) -> None:
    missing = [c for c in NEEDED_COLUMNS if c not in summary.columns]
    if missing:
        raise InputError(f"summary lacks column {', '.join(missing)}; columns are {', '.join(summary.columns)}")


def _check_models(transaction_model: BaseModel, spend_model: BaseModel) -> None:
    if transaction_model.name not in TRANSACTION_MODELS or spend_model.name != "gammagamma":
        raise InputError(f"score with a transaction model ({', '.join(TRANSACTION_MODELS)}) and gammagamma; "
                         f"got {transaction_model.name} and {spend_model.name}")


def equity_interval_spark(
    summary: DataFrame,
    transaction_model: BaseModel,
    spend_model: BaseModel,
    *,
    settings: ValueSettings | None = None,
    horizon: float | None = None,
    period: str | None = None,
    discount_rate: float | None = None,
    margin: float | None = None,
    level: float = 0.95,
    cost_per_customer: float | None = None,
    cost_per_order: float | None = None,
) -> tuple[float, float, float]:
    """Customer equity of a Spark ``summary`` and its delta-method interval at ``level``:
    ``(equity, lower, upper)``, equal to :func:`patron.value.scoring.score`'s on the same customers.

    Each partition computes its customers' CLV sum and summed log-parameter gradients
    (:func:`patron.value.models.clv.equity_gradients`); the cluster adds them; only
    1 + (number of parameters) numbers reach the driver. The value settings as in :func:`score_spark`."""
    _check_summary(summary)
    s = value_settings(settings, horizon=horizon, period=period, discount_rate=discount_rate, margin=margin,
                       cost_per_customer=cost_per_customer, cost_per_order=cost_per_order)
    _check_models(transaction_model, spend_model)
    rate, horizon_, margin_ = s.discount_rate_per_period, float(s.horizon), float(s.margin)
    per_order, per_customer = float(s.cost_per_order), float(s.cost_per_customer)
    tm, sm = transaction_model, spend_model
    t_names = [f"grad_t{j}" for j in range(len(tm.param_names))]
    s_names = [f"grad_s{j}" for j in range(len(sm.param_names))]

    def partial_sums(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            x, tx, T, m = (batch[c].to_numpy(dtype=np.float64) for c in NEEDED_COLUMNS)
            eq, gt, gs = equity_gradients(tm, sm, x, tx, T, m, horizon=horizon_, discount_rate_per_step=rate,
                                          margin=margin_, cost_per_purchase=per_order)
            eq -= per_customer * x.size  # a constant per customer: no gradient
            yield pd.DataFrame([[eq, *gt, *gs]], columns=["equity", *t_names, *s_names])

    schema = StructType([StructField(c, DoubleType()) for c in ("equity", *t_names, *s_names)])
    sums = (summary.select(*NEEDED_COLUMNS).mapInPandas(partial_sums, schema=schema)
            .agg(*(F.sum(c).alias(c) for c in ("equity", *t_names, *s_names))).first())
    equity = float(sums["equity"] or 0.0)
    grad_t = np.array([[float(sums[c] or 0.0) for c in t_names]])
    grad_s = np.array([[float(sums[c] or 0.0) for c in s_names]])
    half = float(special.ndtri(0.5 + level / 2.0)) * float(np.sqrt(equity_variance(tm, sm, grad_t, grad_s))[0])
    return equity, equity - half, equity + half


def equity_spark(scores: DataFrame, *, by: str | None = None) -> float | pd.DataFrame:
    """Customer equity, the sum of ``clv``, aggregated on the cluster: a float, or with ``by``
    a pandas frame ``(by, customers, equity)`` with one row per value of that column."""
    if by is None:
        return float(scores.agg(F.sum("clv")).first()[0] or 0.0)
    return scores.groupBy(by).agg(F.count("*").alias("customers"), F.sum("clv").alias("equity")).toPandas()


def write_scores(scores: DataFrame, path: str | os.PathLike[str], *, partition_by: str | None = None,
                 mode: str = "overwrite") -> None:
    """Write ``scores`` as Parquet from the executors, in folders ``partition_by=value/`` when a
    column is given (e.g. a segment or region column joined to the summary)."""
    writer = scores.write.mode(mode)
    if partition_by is not None:
        if partition_by not in scores.columns:
            raise InputError(f"cannot partition by {partition_by!r}: not a column of the scores")
        writer = writer.partitionBy(partition_by)
    writer.parquet(os.fspath(path))


@dataclass(frozen=True)
class SparkScores:
    """What :func:`score_on_spark` computed: the scores themselves are in the Parquet folder
    ``out``; these are the figures that reach the driver."""

    out: str
    """Parquet folder of the per-customer scores (:func:`score_spark`'s columns)."""
    customers: int
    """Customers scored."""
    equity: float
    """Customer equity, the sum of CLV (currency)."""
    equity_lower: float
    """Lower end of equity's delta-method interval at ``level`` (currency)."""
    equity_upper: float
    """Upper end of that interval (currency)."""
    level: float
    """Level of the interval, e.g. 0.95."""
    method: str
    """How the interval is computed (:data:`patron.value.models.clv.METHODS` ``["delta"]``)."""
    spend_bases: dict[str, int]
    """Customers per spend basis (:func:`spend_basis_counts_spark`)."""
    settings: ValueSettings
    """The value settings the customers were scored with."""
    notes: list[str]
    """Lines to show with the figures: the settings line, and a note on customers valued at the
    population mean spend when there are some."""


def score_on_spark(
    transactions: DataFrame | str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    end: str | date | datetime,
    settings: ValueSettings | None = None,
    interval_method: str = "delta",
    level: float = 0.95,
    partition_by: str | None = None,
    spark: SparkSession | None = None,
) -> SparkScores:
    """Score every customer of ``transactions`` (Parquet file or folder, or a Spark DataFrame) on
    Spark, as ``patron score --engine spark`` does: the summary as of ``end`` (calibration end,
    inclusive) is computed once and kept on the cluster, the transaction model of ``settings``
    and Gamma-Gamma are fitted on its compressed statistics (:func:`~patron.value.spark_fit.fit_spark_summary`),
    the customers are scored on the executors (:func:`score_spark`) and written to ``out`` as
    Parquet (in folders by ``partition_by``, a summary column), and customer equity with its
    delta-method interval at ``level`` is aggregated on the cluster (:func:`equity_interval_spark`).

    ``settings``: the ``[value]`` settings (default their defaults); models with covariates are
    scored on DuckDB only, and intervals are by the delta method only (``interval_method``).
    ``spark``: the session (default :func:`patron.data.engines.spark.spark_session`, whose master
    is ``$PATRON_SPARK_MASTER`` or local). Problems are one-line
    :class:`~patron.errors.InputError` naming the parameter."""
    from patron.data.engines.spark import spark_session
    from patron.value.models.clv import METHODS
    from patron.value.settings import spend_note
    from patron.value.spark_fit import fit_spark_summary
    from patron.value.spark_summary import summary_spark

    if interval_method != "delta":
        raise InputError(f"interval_method must be delta on the Spark engine (intervals by the delta method only); "
                         f"got {interval_method!r}", parameters=("interval_method",))
    s = settings or ValueSettings()
    if s.all_covariates or s.dynamic_covariates:
        raise InputError("models with covariates are scored on the DuckDB engine, not on Spark")
    require_spark_inputs(transactions, end)
    session = spark if spark is not None else spark_session()
    summary = summary_spark(session, transactions, period=s.period, end=end).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        tm = fit_spark_summary(s.model, summary)
        sm = fit_spark_summary("gammagamma", summary)
        write_scores(score_spark(summary, tm, sm, settings=s, level=level), out, partition_by=partition_by)
        equity = equity_interval_spark(summary, tm, sm, settings=s, level=level)
        customers = int(summary.count())
        spend = spend_basis_counts_spark(summary)
    finally:
        summary.unpersist()
    note = spend_note(spend, float(sm.conditional_expected_average_spend(0.0, 0.0)), s.label())
    return SparkScores(os.fspath(out), customers, *equity, level, METHODS["delta"], spend, s, [s.line()] + ([note] if note else []))
