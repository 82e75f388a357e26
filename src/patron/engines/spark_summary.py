"""The customer summary, compressed sufficient statistics and model fits on Apache Spark.

The SQL is not written here. :func:`summary_spark` registers the transactions as a temporary
view named ``transactions`` and runs the text of :func:`patron.sql.summary.summary_sql` rendered
for the :data:`~patron.sql.dialect.SPARK` dialect, the same builder DuckDB runs with
:data:`~patron.sql.dialect.DUCKDB`; only date arithmetic is spelt differently (see
:mod:`patron.sql.dialect`). So the two engines cannot drift apart: there is one definition.

What reaches the driver: :func:`summary_spark` returns a lazy Spark DataFrame (one row per
customer, left on the cluster); :func:`sufficient_statistics_spark` and :func:`fit_spark` bring
back only the *distinct* rows of the columns a model needs, with ``weight`` = the number of
customers sharing them (a few thousand to a few million rows, whatever the number of customers).

Dates are UTC days (:func:`patron.engines.spark.spark_session` and
:func:`~patron.engines.spark.register_transactions` set the session time zone to UTC).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from patron.engines.spark import TRANSACTIONS_VIEW, _as_date, register_transactions
from patron.errors import InputError, NoDataError
from patron.models import BaseModel
from patron.sql.dialect import SPARK
from patron.sql.summary import SummarySpec, compress_sql, sufficient_statistics_sql, summary_sql
from patron.value import MODEL_DATA, fit_model

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

DEFAULT_MAX_DRIVER_ROWS = 5_000_000
"""Most distinct statistic rows :func:`sufficient_statistics_spark` brings to the driver: with
four float64 columns (x, t_x, T, weight) that is 160 MB of arrays, about 0.5 GB with pandas and
Arrow copies during the transfer."""


def _spec(period: str, end: Any, holdout_end: Any, grain: str) -> SummarySpec:
    end_d = _as_date(end, "end")
    if end_d is None:
        raise InputError("give the calibration end date (end=...) for a summary on Spark")
    try:
        return SummarySpec(end=end_d, unit=period.upper(), grain=grain.upper(),
                           holdout_end=_as_date(holdout_end, "holdout end"), table=TRANSACTIONS_VIEW)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def summary_spark(
    spark: SparkSession,
    transactions: DataFrame | str | os.PathLike[str],
    *,
    period: str = "W",
    end: str | date | datetime,
    holdout_end: str | date | datetime | None = None,
    grain: str = "D",
) -> DataFrame:
    """The per-customer summary on Spark, as a lazy DataFrame (one row per customer, no order).

    Same columns, definitions and units as :func:`patron.summary` (see :mod:`patron.sql.summary`):
    ``customer_id, frequency, recency, T, monetary_value, n_orders, total_spend, refunded,
    first_purchase, last_purchase`` (+ ``frequency_holdout, monetary_value_holdout,
    duration_holdout`` with ``holdout_end``); ``recency``, ``T`` and ``duration_holdout`` in
    ``period`` units (D, W = 7 days, M). ``end`` and ``holdout_end`` are inclusive UTC days.
    """
    spec = _spec(period, end, holdout_end, grain)
    register_transactions(spark, transactions)
    return spark.sql(summary_sql(spec, SPARK))


def sufficient_statistics_spark(
    spark: SparkSession,
    transactions: DataFrame | str | os.PathLike[str],
    *,
    columns: Sequence[str] = ("frequency", "recency", "T"),
    period: str = "W",
    end: str | date | datetime,
    holdout_end: str | date | datetime | None = None,
    grain: str = "D",
    max_rows: int = DEFAULT_MAX_DRIVER_ROWS,
) -> pd.DataFrame:
    """Distinct values of the summary ``columns`` with ``weight`` (customers sharing them),
    aggregated on the cluster; only these rows come to the driver, as pandas (no order).

    Raises :class:`~patron.errors.InputError` if there are more than ``max_rows`` distinct rows
    (see :data:`DEFAULT_MAX_DRIVER_ROWS`), :class:`~patron.errors.NoDataError` if none.
    """
    spec = _spec(period, end, holdout_end, grain)
    try:
        sql = sufficient_statistics_sql(spec, SPARK, tuple(columns))
    except ValueError as exc:
        raise InputError(str(exc)) from None
    register_transactions(spark, transactions)
    rows = spark.sql(sql).limit(max_rows + 1).toPandas()
    if len(rows) > max_rows:
        raise InputError(f"more than {max_rows:,} distinct ({', '.join(columns)}) rows: too many for the driver; "
                         "use a coarser grain or period, or raise max_rows")
    if rows.empty:
        raise NoDataError(f"no purchases on or before {spec.end}")
    return rows


def fit_spark(
    model_name: str,
    spark: SparkSession,
    transactions: DataFrame | str | os.PathLike[str],
    *,
    period: str = "W",
    end: str | date | datetime,
    holdout_end: str | date | datetime | None = None,
    grain: str = "D",
    penalizer: float = 0.0,
    max_rows: int = DEFAULT_MAX_DRIVER_ROWS,
) -> BaseModel:
    """Fit the model called ``model_name`` (``bgnbd``, ``mbgnbd``, ``pareto``, ``gammagamma``) on
    the compressed statistics of :func:`sufficient_statistics_spark`, on the driver, exactly as
    :func:`patron.value.fit_model` fits locally (each distinct row weighted by its customers)."""
    columns = MODEL_DATA.get(model_name)
    if columns is None:
        raise InputError(f"model {model_name!r} cannot be fitted from a Spark summary; "
                         f"choose one of {', '.join(MODEL_DATA)}")
    stats = sufficient_statistics_spark(spark, transactions, columns=columns, period=period, end=end,
                                        holdout_end=holdout_end, grain=grain, max_rows=max_rows)
    return fit_model(model_name, stats, penalizer=penalizer, label="Spark summary")


SUMMARY_VIEW = "patron_summary"
"""Temporary view name of a summary DataFrame given to :func:`fit_spark_summary`."""


def fit_spark_summary(model_name: str, summary: DataFrame, *, penalizer: float = 0.0,
                      max_rows: int = DEFAULT_MAX_DRIVER_ROWS) -> BaseModel:
    """As :func:`fit_spark`, from a summary already computed by :func:`summary_spark` (persist it
    first when it serves several fits and the scoring: the transactions are then read once). The
    summary is compressed on the cluster by the same SQL as the other engines (``compress_sql``)."""
    columns = MODEL_DATA.get(model_name)
    if columns is None:
        raise InputError(f"model {model_name!r} cannot be fitted from a Spark summary; "
                         f"choose one of {', '.join(MODEL_DATA)}")
    missing = [c for c in columns if c not in summary.columns]
    if missing:
        raise InputError(f"summary lacks column {', '.join(missing)} for {model_name}")
    summary.createOrReplaceTempView(SUMMARY_VIEW)
    rows = summary.sparkSession.sql(compress_sql(SUMMARY_VIEW, tuple(columns))).limit(max_rows + 1).toPandas()
    if len(rows) > max_rows:
        raise InputError(f"more than {max_rows:,} distinct ({', '.join(columns)}) rows: too many for the driver; "
                         "use a coarser grain or period, or raise max_rows")
    if rows.empty:
        raise NoDataError("the summary has no customers")
    return fit_model(model_name, rows, penalizer=penalizer, label="Spark summary")
