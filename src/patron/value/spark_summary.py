"""The customer summary and its compressed sufficient statistics on Apache Spark.

The SQL is not written here. :func:`summary_spark` registers the transactions as a temporary
view named ``transactions`` and runs the text of :func:`patron.value.summary_sql.summary_sql` rendered
for the :data:`~patron.data.dialect.SPARK` dialect, the same builder DuckDB runs with
:data:`~patron.data.dialect.DUCKDB`; only date arithmetic is spelt differently (see
:mod:`patron.data.dialect`). So the two engines cannot drift apart: there is one definition.

What reaches the driver: :func:`summary_spark` returns a lazy Spark DataFrame (one row per
customer, left on the cluster); :func:`sufficient_statistics_spark` brings back only the
*distinct* rows of the columns a model needs, with ``weight`` = the number of customers sharing them
(a few thousand to a few million rows, whatever the number of customers). The fits on those rows are
in :mod:`patron.value.spark_fit`.

Dates are UTC days (:func:`patron.data.engines.spark.spark_session` and
:func:`~patron.data.engines.spark.register_transactions` set the session time zone to UTC).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from patron.data.dialect import SPARK
from patron.data.engines import require_spark_inputs
from patron.data.engines.spark import TRANSACTIONS_VIEW, _as_date, register_transactions
from patron.errors import InputError, NoDataError
from patron.value.summary_sql import SummarySpec, sufficient_statistics_sql, summary_sql

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

DEFAULT_MAX_DRIVER_ROWS = 5_000_000
"""Most distinct statistic rows :func:`sufficient_statistics_spark` brings to the driver: with
four float64 columns (x, t_x, T, weight) that is 160 MB of arrays, about 0.5 GB with pandas and
Arrow copies during the transfer."""


def _spec(transactions: Any, period: str, end: Any, holdout_end: Any, grain: str) -> SummarySpec:
    require_spark_inputs(transactions, end)
    end_d: date = _as_date(end, "end")  # type: ignore[assignment]  # not None: checked above
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

    Same columns, definitions and units as :func:`patron.summary` (see :mod:`patron.value.summary_sql`):
    ``customer_id, frequency, recency, T, monetary_value, n_orders, total_spend, refunded,
    first_purchase, last_purchase`` (+ ``frequency_holdout, monetary_value_holdout,
    duration_holdout`` with ``holdout_end``); ``recency``, ``T`` and ``duration_holdout`` in
    ``period`` units (D, W = 7 days, M). ``end`` and ``holdout_end`` are inclusive UTC days.
    """
    spec = _spec(transactions, period, end, holdout_end, grain)
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
    spec = _spec(transactions, period, end, holdout_end, grain)
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
