"""patron on Apache Spark: the customer summary, compressed sufficient statistics and model fits.

The SQL is not written here. :func:`summary_spark` registers the transactions as a temporary
view named ``transactions`` and runs the text of :func:`patron.sql.summary.summary_sql` rendered
for the :data:`~patron.sql.dialect.SPARK` dialect, the same builder DuckDB runs with
:data:`~patron.sql.dialect.DUCKDB`; only date arithmetic is spelt differently (see
:mod:`patron.sql.dialect`). So the two engines cannot drift apart: there is one definition.

What reaches the driver: :func:`summary_spark` returns a lazy Spark DataFrame (one row per
customer, left on the cluster); :func:`sufficient_statistics_spark` and :func:`fit_spark` bring
back only the *distinct* rows of the columns a model needs, with ``weight`` = the number of
customers sharing them (a few thousand to a few million rows, whatever the number of customers).

Dates are UTC days: the session time zone (``spark.sql.session.timeZone``) is set to UTC on the
session these functions are given, so ``CAST(occurred_at AS DATE)`` gives the same day as DuckDB.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import pandas as pd

from patron.extras import require

require("spark", "the Spark engine")  # one line naming the extra, before pyspark is imported

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from patron.errors import InputError, NoDataError
from patron.models import BaseModel
from patron.sql.dialect import SPARK
from patron.sql.summary import SummarySpec, compress_sql, sufficient_statistics_sql, summary_sql
from patron.value import MODEL_DATA, fit_model

TRANSACTIONS_VIEW = "transactions"
"""Name of the temporary view the summary SQL reads (replaced on every call)."""

CONTRACT_COLUMNS: tuple[str, ...] = ("customer_id", "occurred_at", "amount")
"""Transaction columns the summary needs (names from ``docs/data-contract.md``)."""

SESSION_TIME_ZONE = "UTC"
"""Time zone in which timestamps are cut into days; DuckDB's TIMESTAMP days are UTC days."""

DEFAULT_SHUFFLE_PARTITIONS = 4
"""Shuffle partitions of a local session: Spark's default of 200 is for clusters, and turns a
small local job into hundreds of tiny tasks."""

DEFAULT_MAX_DRIVER_ROWS = 5_000_000
"""Most distinct statistic rows :func:`sufficient_statistics_spark` brings to the driver: with
four float64 columns (x, t_x, T, weight) that is 160 MB of arrays, about 0.5 GB with pandas and
Arrow copies during the transfer."""

LOCAL_CONF: dict[str, str] = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.sql.shuffle.partitions": str(DEFAULT_SHUFFLE_PARTITIONS),
    "spark.sql.session.timeZone": SESSION_TIME_ZONE,
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}
"""Configuration of a local session: no web UI, loopback only, few shuffle partitions, UTC."""

SHORT_RUN_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
"""JVM options that start a local driver about 2x faster (C1 compiler only, serial GC): right for
tests and small jobs of a few seconds, wrong for long jobs (pass as
``spark.driver.extraJavaOptions``)."""

DEFAULT_LOCAL_MASTER = "local[2]"
"""Master of a new session started outside ``spark-submit``: two cores of this machine."""

SPARK_SUBMIT_ENV = "PYSPARK_GATEWAY_PORT"
"""Set by ``spark-submit`` for the Python driver it launches: the cluster's settings then apply."""

DOWNLOAD_CONF = ("spark.jars.packages", "spark.jars.repositories", "spark.jars.ivy", "spark.jars.ivySettings")
"""Settings that make Spark resolve and download jars (Maven/Ivy); refused for local sessions."""


def spark_session(master: str | None = None, *, app_name: str = "patron", remote: str | None = None,
                  **conf: str) -> SparkSession:
    """A Spark session for patron: the active one if there is one, else a new one.

    Parameters
    ----------
    master
        Spark master of a new session; default :data:`DEFAULT_LOCAL_MASTER`, except in a script
        launched by ``spark-submit``, where its ``--master`` and ``--conf`` apply.
    app_name
        Application name of a new local session.
    remote
        A Spark Connect URL (``sc://host:15002``): connect to that server instead (needs
        ``pyspark[connect]``); ``master`` is then ignored.
    **conf
        Extra Spark settings by full name, e.g.
        ``spark_session(**{"spark.driver.memory": "4g"})``; for a local session they override
        :data:`LOCAL_CONF`. Settings in :data:`DOWNLOAD_CONF` are refused: patron never
        downloads jars.

    An active session is reused (on a cluster, or in a notebook, it is the one to use); only the
    ``spark.sql.*`` settings of ``conf`` that can change at run time are applied to it. The time
    zone of the session returned is always UTC. A new local session runs its Python workers with
    this interpreter (``PYSPARK_PYTHON`` is set to it unless already set).
    """
    refused = [k for k in conf if k in DOWNLOAD_CONF]
    if refused or "--packages" in os.environ.get("PYSPARK_SUBMIT_ARGS", ""):
        raise ValueError(f"patron does not download jars; remove {', '.join(refused) or '--packages from PYSPARK_SUBMIT_ARGS'}")
    if remote is not None:
        spark = SparkSession.builder.remote(remote).getOrCreate()
        _apply_runtime_conf(spark, conf)
        return spark
    active = SparkSession.getActiveSession()
    if active is not None:
        _apply_runtime_conf(active, conf)
        return active
    builder = SparkSession.builder
    if master is None and SPARK_SUBMIT_ENV in os.environ:
        settings = {"spark.sql.session.timeZone": SESSION_TIME_ZONE, **conf}
    else:
        builder = builder.master(master or DEFAULT_LOCAL_MASTER).appName(app_name)
        settings = {**LOCAL_CONF, **conf}
        # Python workers of a local session run this interpreter (patron importable), unless set.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        # A local session talks to itself only: bind to loopback rather than the host's address.
        if (master or DEFAULT_LOCAL_MASTER).startswith("local"):
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    _use_utc(spark)
    return spark


def _apply_runtime_conf(spark: SparkSession, conf: dict[str, str]) -> None:
    for key, value in conf.items():
        if key.startswith("spark.sql.") and spark.conf.isModifiable(key):
            spark.conf.set(key, value)
        else:
            warnings.warn(f"{key} cannot be changed on a running Spark session; ignored", stacklevel=3)
    _use_utc(spark)


def _use_utc(spark: SparkSession) -> None:
    if spark.conf.get("spark.sql.session.timeZone") != SESSION_TIME_ZONE:
        spark.conf.set("spark.sql.session.timeZone", SESSION_TIME_ZONE)


def _as_date(value: str | date | datetime | None, name: str) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise InputError(f"{name} must be a date like 1997-09-30; got {value!r}") from None


def register_transactions(spark: SparkSession, transactions: DataFrame | str | os.PathLike[str]) -> DataFrame:
    """Register ``transactions`` (a Spark DataFrame, or a Parquet file or folder) as the temporary
    view :data:`TRANSACTIONS_VIEW` with the contract types: ``customer_id`` string,
    ``occurred_at`` timestamp (a timestamp without time zone is read as UTC), ``amount`` double."""
    frame = transactions if isinstance(transactions, DataFrame) else spark.read.parquet(os.fspath(transactions))
    missing = [c for c in CONTRACT_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"transactions lack column {', '.join(missing)}; columns are {', '.join(frame.columns)}")
    _use_utc(spark)
    typed = frame.select(
        F.col("customer_id").cast("string").alias("customer_id"),
        F.col("occurred_at").cast("timestamp").alias("occurred_at"),
        F.col("amount").cast("double").alias("amount"),
    )
    typed.createOrReplaceTempView(TRANSACTIONS_VIEW)
    return typed


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
