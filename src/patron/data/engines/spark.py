"""The Spark session patron runs on, and the transactions it reads there.

:func:`spark_session` returns the active session or starts a local one (loopback only, few shuffle
partitions, no jar downloads); :func:`register_transactions` registers a transactions table with
the contract types as the temporary view the portable SQL reads. The customer summary and model fits
on Spark are in :mod:`patron.value.spark_summary`, scoring in :mod:`patron.value.spark_score`,
statuses and segments in :mod:`patron.relationship.spark_status`, ingest in
:mod:`patron.data.ingest.spark`.

Dates are UTC days: the session time zone (``spark.sql.session.timeZone``) is set to UTC on the
session these functions are given, so ``CAST(occurred_at AS DATE)`` gives the same day as DuckDB.
"""

from __future__ import annotations

import os
import sys
import warnings
from datetime import date, datetime

from patron.data.engines import require_spark

require_spark()  # one line naming the extra, before pyspark is imported

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from patron.errors import InputError
from patron.settings import get_settings

TRANSACTIONS_VIEW = "transactions"
"""Name of the temporary view the summary SQL reads (replaced on every call)."""

CONTRACT_COLUMNS: tuple[str, ...] = ("customer_id", "occurred_at", "amount")
"""Transaction columns the summary needs (names from ``docs/data-contract.md``)."""

SESSION_TIME_ZONE = "UTC"
"""Time zone in which timestamps are cut into days; DuckDB's TIMESTAMP days are UTC days."""

DEFAULT_SHUFFLE_PARTITIONS = 4
"""Shuffle partitions of a local session: Spark's default of 200 is for clusters, and turns a
small local job into hundreds of tiny tasks."""

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
        Spark master of a new session; default the setting ``PATRON_SPARK_MASTER``, else
        :data:`DEFAULT_LOCAL_MASTER`, except in a script launched by ``spark-submit``, where its
        ``--master`` and ``--conf`` apply.
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
    if master is None:
        master = get_settings().spark_master
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
        settings = {**session_conf(master or DEFAULT_LOCAL_MASTER), **conf}
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


ELSEWHERE_DROPPED_CONF: tuple[str, ...] = ("spark.driver.host", "spark.driver.bindAddress", "spark.sql.shuffle.partitions")
"""Settings of :data:`LOCAL_CONF` not applied when the master is on another machine: executors there must
reach the driver at its network address (Spark's default, or ``SPARK_LOCAL_IP``), and a cluster's
shuffles need more than a local session's partitions (Spark's default 200, or the cluster's setting)."""

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def session_conf(master: str) -> dict[str, str]:
    """The settings :func:`spark_session` gives a new session of ``master`` (before the caller's):
    :data:`LOCAL_CONF` for ``local[...]`` and for a cluster whose master is on this machine's
    loopback (``spark://127.0.0.1:7077``), which then stays on loopback; without
    :data:`ELSEWHERE_DROPPED_CONF` for a master elsewhere (``spark://host:7077``, ``yarn``,
    ``k8s://...``)."""
    hosts = [part.split("//")[-1].rsplit(":", 1)[0] for part in master.split(",")] if master.startswith("spark://") else []
    if master.startswith("local") or (hosts and all(h in LOOPBACK_HOSTS for h in hosts)):
        return dict(LOCAL_CONF)
    return {k: v for k, v in LOCAL_CONF.items() if k not in ELSEWHERE_DROPPED_CONF}


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
