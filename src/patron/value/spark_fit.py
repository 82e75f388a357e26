"""Model fits on Apache Spark: the compressed statistics of the customer summary are computed on the
cluster (:mod:`patron.value.spark_summary`), only their distinct rows come to the driver, and the
model is fitted there exactly as :func:`patron.value.scoring.fit_model` fits locally."""

from __future__ import annotations

import os
from datetime import date, datetime
from typing import TYPE_CHECKING

from patron.data.engines import require_spark_inputs
from patron.errors import InputError, NoDataError
from patron.value.models import BaseModel
from patron.value.scoring import MODEL_DATA, fit_model
from patron.value.spark_summary import DEFAULT_MAX_DRIVER_ROWS, sufficient_statistics_spark
from patron.value.summary_sql import compress_sql

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def fit_spark(
    model_name: str,
    spark: SparkSession | None,
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
    :func:`patron.value.scoring.fit_model` fits locally (each distinct row weighted by its customers).
    ``spark`` ``None``: the session of :func:`patron.data.engines.spark.spark_session` (master
    ``$PATRON_SPARK_MASTER`` or local), as ``patron fit --engine spark``."""
    columns = MODEL_DATA.get(model_name)
    if columns is None:
        raise InputError(f"model {model_name!r} cannot be fitted from a Spark summary; "
                         f"choose one of {', '.join(MODEL_DATA)}")
    require_spark_inputs(transactions, end)
    if spark is None:
        from patron.data.engines.spark import spark_session

        spark = spark_session()
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
