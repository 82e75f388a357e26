"""Relationship status and segment rules on Spark, with the code the DuckDB engine runs.

* :func:`status_spark`: the summaries as of the assessment date and as of the cooling lookback
  date come from the shared summary SQL (:func:`~patron.value.spark_summary.summary_spark`), the model
  is fitted on their compressed statistics (:func:`~patron.value.spark_fit.fit_spark_summary`), and
  each Arrow batch of customers is classified on the executors by
  :func:`patron.relationship.status.classify` -- the function :func:`patron.relationship.status.relationship_status` uses.
  Prospects come from :func:`patron.relationship.status.prospects_sql`, the same SQL text in Spark's dialect.
* :func:`status_on_spark`: the whole of ``patron status --engine spark`` from Python (statuses,
  optionally written as Parquet, and their counts).
* :func:`segment_spark`: a segment rule compiled by :func:`patron.relationship.segments.rules.compile_rule`
  for Spark and evaluated as a filter on a Spark DataFrame of customer profiles.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from patron.data.engines import require_spark, require_spark_inputs

require_spark()  # one line naming the extra, before pyspark is imported

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

from patron.data.dialect import SPARK
from patron.data.engines.spark import _as_date, register_transactions
from patron.relationship.status import StatusRules, classify, predict, prospects_sql, status_rules
from patron.value.spark_fit import fit_spark_summary
from patron.value.spark_summary import summary_spark

STATUS_SPARK_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("customer_id", StringType()), ("status", StringType()), ("status_reason", StringType()),
    ("probability_purchase", DoubleType()), ("probability_purchase_before", DoubleType()),
    ("probability_alive", DoubleType()), ("probability_alive_before", DoubleType()),
    ("expected_purchases", DoubleType()), ("expected_purchases_before", DoubleType()),
    ("days_since_first_purchase", DoubleType()), ("days_since_last_purchase", DoubleType()),
    ("n_orders", LongType()), ("frequency", DoubleType()), ("recency", DoubleType()), ("T", DoubleType()),
)
"""Columns of :func:`status_spark` (those of :func:`patron.relationship.status.relationship_status` that do
not repeat the summary's timestamps)."""

CUSTOMERS_VIEW = "customers"
"""Temporary view name of the customers table given to :func:`status_spark` (the name the
prospects SQL reads)."""


def _classify_batch(batch: pd.DataFrame, tm: Any, rules: StatusRules, as_of: date, before: date) -> pd.DataFrame:
    """Status, reason and the numbers behind them for one batch of customers (vectorized), with
    the predictions of :func:`patron.relationship.status.predict` as on DuckDB."""
    frame = pd.DataFrame({"customer_id": batch["customer_id"].astype(str).to_numpy()})
    for name, values in predict(tm, batch, rules.horizon_weeks).items():
        frame[name] = values
    earlier = batch[["frequency_before", "recency_before", "T_before"]].rename(columns=lambda c: c.removesuffix("_before"))
    known = ~earlier["frequency"].isna().to_numpy()
    for name, values in predict(tm, earlier[known], rules.horizon_weeks).items():
        column = np.full(len(batch), np.nan)
        column[known] = values
        frame[f"{name}_before"] = column
    day = pd.Timestamp(as_of)
    frame["days_since_first_purchase"] = (day - pd.to_datetime(batch["first_purchase"]).dt.floor("D")).dt.days.to_numpy(dtype=float)
    frame["days_since_last_purchase"] = (day - pd.to_datetime(batch["last_purchase"]).dt.floor("D")).dt.days.to_numpy(dtype=float)
    frame["n_orders"] = batch["n_orders"].to_numpy(dtype=np.int64)
    for c in ("frequency", "recency", "T"):
        frame[c] = batch[c].to_numpy(dtype=float)
    status, reason = classify(frame, rules, as_of=as_of, before=before)
    frame["status"], frame["status_reason"] = status, reason
    return frame[[name for name, _ in STATUS_SPARK_COLUMNS]]


def status_spark(
    spark: SparkSession,
    transactions: DataFrame | str | os.PathLike[str],
    *,
    as_of: str | date | datetime,
    config: Any = None,
    model: str = "bgnbd",
    customers: DataFrame | str | os.PathLike[str] | None = None,
) -> DataFrame:
    """Every customer's relationship status as of ``as_of``, classified on the executors: a lazy
    DataFrame with :data:`STATUS_SPARK_COLUMNS`, equal to
    :func:`patron.relationship.status.relationship_status` on the same transactions (the rules of
    ``config``'s ``[status]`` section; the model fitted on the weekly summary as of ``as_of``).

    ``customers`` (a DataFrame or Parquet path with ``customer_id`` and optionally
    ``first_seen``) adds ``prospect`` rows for known people with no purchase by ``as_of``.
    """
    require_spark_inputs(transactions, as_of, day_name="as_of")
    as_of_d: date = _as_date(as_of, "as_of")  # type: ignore[assignment]  # not None: checked above
    rules = status_rules(config)
    before_d = as_of_d - timedelta(days=rules.lookback_days)
    now = summary_spark(spark, transactions, period="W", end=as_of_d).persist(StorageLevel.MEMORY_AND_DISK)
    tm = fit_spark_summary(model, now)
    before = summary_spark(spark, transactions, period="W", end=before_d).select(
        "customer_id", F.col("frequency").alias("frequency_before"), F.col("recency").alias("recency_before"),
        F.col("T").alias("T_before"))
    joined = now.select("customer_id", "frequency", "recency", "T", "n_orders", "first_purchase", "last_purchase") \
        .join(before, "customer_id", "left")

    def classify_partition(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            yield _classify_batch(batch, tm, rules, as_of_d, before_d)

    schema = StructType([StructField(name, kind) for name, kind in STATUS_SPARK_COLUMNS])
    out = joined.mapInPandas(classify_partition, schema=schema)
    if customers is None:
        return out
    people = spark.read.parquet(os.fspath(customers)) if isinstance(customers, str | os.PathLike) else customers
    if "first_seen" not in people.columns:
        people = people.withColumn("first_seen", F.lit(None).cast("timestamp"))
    people.select(F.col("customer_id").cast("string").alias("customer_id"), "first_seen").createOrReplaceTempView(CUSTOMERS_VIEW)
    register_transactions(spark, transactions)
    reason = f"known customer with no purchase on or before {as_of_d}"
    prospects = spark.sql(prospects_sql(as_of_d, SPARK)).select(
        "customer_id", F.lit("prospect").alias("status"), F.lit(reason).alias("status_reason"),
        *(F.lit(None).cast(kind).alias(name) for name, kind in STATUS_SPARK_COLUMNS[3:11]),
        F.lit(0).cast("long").alias("n_orders"), *(F.lit(None).cast("double").alias(c) for c in ("frequency", "recency", "T")))
    return out.unionByName(prospects)


def status_counts_spark(statuses: DataFrame) -> pd.DataFrame:
    """Count, share, mean P(purchase) and mean P(alive) per status of a :func:`status_spark`
    result, aggregated on the cluster: the frame :func:`patron.relationship.status.status_counts` gives for
    the same customers."""
    from patron.relationship.status import STATUSES

    rows = statuses.groupBy("status").agg(F.count("*").alias("count"), F.avg("probability_purchase").alias("mean_q"),
                                          F.avg("probability_alive").alias("mean_p")).toPandas()
    by = rows.set_index("status")
    counts = by["count"].reindex(list(STATUSES), fill_value=0).astype(np.int64).to_numpy()
    total = int(counts.sum())
    return pd.DataFrame({
        "status": list(STATUSES),
        "count": counts,
        "share": counts / total if total else np.zeros(len(STATUSES)),
        "mean_probability_purchase": by["mean_q"].reindex(list(STATUSES)).to_numpy(dtype=float),
        "mean_probability_alive": by["mean_p"].reindex(list(STATUSES)).to_numpy(dtype=float),
    })


def status_on_spark(
    transactions: DataFrame | str | os.PathLike[str],
    *,
    as_of: str | date | datetime,
    config: Any = None,
    model: str = "bgnbd",
    customers: DataFrame | str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    spark: SparkSession | None = None,
) -> pd.DataFrame:
    """Counts per status of every customer as of ``as_of``, as ``patron status --engine spark``
    computes them: :func:`status_spark` on ``transactions`` (Parquet file or folder, or a Spark
    DataFrame), written first to ``out`` as a Parquet folder when given (then counted from what was
    written, so the statuses are computed once), and counted on the cluster
    (:func:`status_counts_spark`: the frame :func:`patron.relationship.status.status_counts`
    gives). ``spark``: the session (default :func:`patron.data.engines.spark.spark_session`)."""
    from patron.data.engines.spark import spark_session

    require_spark_inputs(transactions, as_of, day_name="as_of")
    session = spark if spark is not None else spark_session()
    statuses = status_spark(session, transactions, as_of=as_of, config=config, model=model, customers=customers)
    if out is not None:
        statuses.write.mode("overwrite").parquet(os.fspath(out))
        statuses = session.read.parquet(os.fspath(out))
    return status_counts_spark(statuses)


def segment_spark(profiles: DataFrame, rule: str, *, name: str = "rule", bins: int = 5,
                  stores: Any = None) -> DataFrame:
    """The rows of ``profiles`` (a Spark DataFrame of customer profiles, e.g. the
    ``customer_profiles`` table written as Parquet) for which segment ``rule`` is true, filtered by
    Spark: the rule compiled by :func:`patron.relationship.segments.rules.compile_rule` for Spark SQL. A bad
    rule is an :class:`~patron.errors.InputError` naming the rule and the problem. ``bins``: the
    RFM bins of the profiles (for the virtual column ``rfm_cell``, as in DuckDB). ``stores``: the
    stores ``within_km`` may name, as a mapping id -> :class:`~patron.relationship.place.Store`
    or a pandas or Spark frame of the ``stores`` table."""
    from patron.relationship.rfm import rfm_cell_sql
    from patron.relationship.segments import KNOWN_VALUES
    from patron.relationship.segments.rules import Column, columns_from_types, compile_rule

    columns = columns_from_types(dict(profiles.dtypes), dialect="spark")
    columns["rfm_cell"] = Column(rfm_cell_sql(bins), "text")
    return profiles.filter(F.expr(compile_rule(rule, columns, name=name, known_values=KNOWN_VALUES, dialect="spark",
                                               stores=_stores(stores))))


def _stores(stores: Any) -> dict[str, Any] | None:
    """Stores by id from a mapping, a pandas frame or a Spark frame of the ``stores`` table."""
    from patron.relationship.place import Store

    if stores is None or isinstance(stores, dict):
        return stores
    frame = stores.toPandas() if isinstance(stores, DataFrame) else stores
    return {str(r.store_id): Store(str(r.store_id), getattr(r, "name", None), float(r.lat), float(r.lon),
                                   getattr(r, "time_zone", None)) for r in frame.itertuples(index=False)}
