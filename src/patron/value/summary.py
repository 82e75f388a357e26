"""Per-customer summaries (frequency, recency, T, monetary value, ...) computed in the engine.

:func:`summary` is the Python face of ``patron summary``. The exact definitions and the portable SQL
(run by Spark) are in :mod:`patron.value.summary_sql`; on DuckDB the same summary comes from one
aggregation into per-customer lists finished with NumPy (:mod:`patron.value.summary_arrays`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from datetime import date, datetime
from typing import Any, Literal

import duckdb
import pyarrow as pa

from patron.data.dialect import DUCKDB
from patron.data.engines import Engine, require_spark_inputs, resolve_engine
from patron.data.store import connect, reader, table_exists
from patron.dates import default_as_of, parse_day
from patron.errors import InputError, NoDataError
from patron.value.summary_arrays import run_summary
from patron.value.summary_sql import (
    HOLDOUT_COLUMNS,
    SummarySpec,
    check_summary_columns,
    compress_sql,
)

Output = Literal["pandas", "arrow"]

ROWS_PER_BUCKET = 12_500_000
"""Transactions per hash bucket of customers when summarising a large base (see ``buckets``)."""


def _auto_buckets(con: duckdb.DuckDBPyConnection, table: str) -> int:
    rows = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    return max(1, -(-int(rows) // ROWS_PER_BUCKET))


def _register_frame(con: duckdb.DuckDBPyConnection, frame: Any, mapping: Mapping[str, str] | None) -> None:
    """The in-memory transactions as the view ``transactions_in``; customer ids keep their type
    (integers stay integers), times become TIMESTAMP and amounts DOUBLE."""
    # imported here: the ingest package is not needed to summarise a database (a one-shot
    # ``patron summary`` does not pay for importing it)
    from patron.data.ingest.readers import to_arrow

    table = to_arrow(frame)
    m = {"customer_id": "customer_id", "occurred_at": "occurred_at", "amount": "amount", **(mapping or {})}
    missing = [f"{k} (column {v!r})" for k, v in m.items() if v not in table.column_names and k != "amount"]
    if missing:
        raise InputError(f"transactions table lacks {', '.join(missing)}; columns are {', '.join(table.column_names)}")
    con.register("_frame", table)
    q = DUCKDB.ident
    amount = f"CAST({q(m['amount'])} AS DOUBLE)" if m["amount"] in table.column_names else "0.0"
    con.execute(
        f"""CREATE TEMP VIEW transactions_in AS SELECT {q(m['customer_id'])} AS customer_id,
        CAST({q(m['occurred_at'])} AS TIMESTAMP) AS occurred_at, {amount} AS amount FROM _frame"""
    )


def _hand_back_cache(con: duckdb.DuckDBPyConnection) -> None:
    """Make the engine hand the memory it caches back to the system, its limit unchanged (setting
    the memory limit, even to the same value, does that): between the buckets of a large base the
    cached blocks of the transactions spare re-reading them (a 1 GB limit instead cost 30% more
    time at 10M customers), but before the sort they are only weight (1.2 GB at 10M)."""
    limit = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    con.execute(f"SET memory_limit = {DUCKDB.literal(str(limit))}").fetchall()


def _in_order(con: duckdb.DuckDBPyConnection, result: pa.Table, keys: tuple[str, ...]) -> pa.Table:
    """``result`` sorted by ``keys`` in the engine (parallel; Arrow's single-threaded sort of
    strings takes several times longer on a million customers)."""
    con.register("_result", result)
    try:
        order = ", ".join(DUCKDB.ident(k) for k in keys)
        return con.sql(f"SELECT * FROM _result ORDER BY {order}").to_arrow_table()
    finally:
        con.unregister("_result")


def _as_input_ids(frame: Any, result: Any, mapping: Mapping[str, str] | None) -> Any:
    """The summary's ``customer_id`` in the dtype of the input pandas column (nullable integers,
    categories, ...), when the engine's round trip changed it."""
    import pandas as pd

    column = (mapping or {}).get("customer_id", "customer_id")
    if isinstance(frame, pd.DataFrame) and "customer_id" in result.columns:
        dtype = frame[column].dtype
        if result["customer_id"].dtype != dtype:
            try:
                result["customer_id"] = result["customer_id"].astype(dtype)
            except (TypeError, ValueError):
                pass
    return result


def _compress(con: duckdb.DuckDBPyConnection, result: pa.Table, columns: tuple[str, ...]) -> pa.Table:
    """Distinct rows of ``columns`` of the summary ``result`` with their ``weight``, grouped in the
    engine (:func:`patron.value.summary_sql.compress_sql`); ``columns`` already checked."""
    con.register("_summary", result)
    try:
        return con.sql(compress_sql("_summary", columns)).to_arrow_table()
    finally:
        con.unregister("_summary")


def _summary_on_spark(source: Any, *, output: Output, **spec: Any) -> Any:
    """The summary computed by Spark (see :func:`summary`), collected to the driver."""
    require_spark_inputs(source, spec.get("end"))
    # without pyspark: MissingExtraError, one line naming the spark extra
    from patron.data.engines.spark import spark_session
    from patron.value.spark_summary import summary_spark
    frame = summary_spark(spark_session(), source, **spec).toPandas()
    frame = frame.sort_values("customer_id", kind="stable", ignore_index=True)
    return pa.Table.from_pandas(frame, preserve_index=False) if output == "arrow" else frame


def summary(
    source: str | os.PathLike[str] | Any | None = None,
    *,
    period: str = "W",
    end: str | date | datetime | None = None,
    holdout_end: str | date | datetime | None = None,
    grain: str = "D",
    mapping: Mapping[str, str] | None = None,
    output: Output = "pandas",
    memory_limit: str | None = None,
    threads: int | None = None,
    compressed: tuple[str, ...] | None = None,
    buckets: int | None = None,
    engine: str | Engine | None = None,
    columns: tuple[str, ...] | None = None,
) -> Any:
    """One row per customer with the sufficient statistics of buy-till-you-die models.

    Parameters
    ----------
    source
        A patron database file (default ``patron.duckdb``) or an in-memory table of transactions
        (pandas/polars DataFrame or pyarrow Table with ``customer_id``, ``occurred_at`` and
        optionally ``amount``; other names via ``mapping``, e.g. ``{"occurred_at": "date"}``).
    period
        Unit of ``recency``, ``T`` and ``duration_holdout``: ``D`` days, ``W`` weeks (7 days),
        ``M`` months, ``H`` hours.
    end
        Last day (inclusive) of the calibration period; default the day of the last purchase
        (:func:`patron.dates.default_as_of`).
        With ``grain="H"`` it may be a timestamp (``"2015-02-07 13:00"``): orders up to and
        including that instant.
    holdout_end
        Last day (inclusive) of a holdout period after ``end``; adds ``frequency_holdout``,
        ``monetary_value_holdout`` and ``duration_holdout``.
    grain
        Purchases by one customer within one grain period count as one (``D`` by default, as in
        the published CDNOW summaries; ``W``, ``M`` or ``H`` (hour) like lifetimes'
        ``freq='W'``/``'M'``/``'h'``).
    output
        ``pandas`` (DataFrame) or ``arrow`` (pyarrow Table).
    memory_limit, threads
        DuckDB resource limits for this query (e.g. ``"4GB"``); ``threads`` also bounds the
        threads that finish the summary in NumPy.
    compressed
        Instead of one row per customer, the distinct values of these columns with ``weight``, the
        number of customers sharing them (e.g. ``("frequency", "recency", "T")`` for BG/NBD):
        the compressed sufficient statistics models are fitted on, computed in the engine.
    engine
        ``duckdb`` (default, or ``$PATRON_ENGINE``) or ``spark``: then ``source`` is a Parquet file
        or folder of transactions (or a Spark DataFrame) and the same SQL runs on Spark
        (:mod:`patron.value.spark_summary`; master from ``$PATRON_SPARK_MASTER``). An
        :class:`~patron.data.engines.Engine` or its name in any case
        (:func:`patron.data.engines.resolve_engine`); another name is an ``InputError``.
    buckets
        Summarise customers in this many hash buckets, one query each, so that each aggregation
        fits in memory; default: one bucket per :data:`ROWS_PER_BUCKET` transactions.
    columns
        Only these summary columns (``customer_id`` first whether named or not), dropped from
        each bucket as it is finished, before the customers are sorted: what a caller that reads
        a few columns of 10M customers saves (half the memory for ``patron score``'s five).
        Not with ``compressed``.

    Returns
    -------
    Columns ``customer_id, frequency, recency, T, monetary_value, n_orders, total_spend, refunded,
    first_purchase, last_purchase`` (+ the holdout columns); definitions in
    :mod:`patron.value.summary_sql`. One row per customer, sorted by ``customer_id`` whatever the
    number of threads (compressed: sorted by the compressed columns); ``customer_id`` keeps the
    type it has in the input (a pandas column's dtype, the database's VARCHAR).
    """
    if resolve_engine(engine) is Engine.SPARK:
        return _summary_on_spark(source, period=period, end=end, holdout_end=holdout_end, grain=grain, output=output)
    hourly = grain.upper() == "H"
    end_d = parse_day(end, "end", instant=hourly)
    hold_d = parse_day(holdout_end, "holdout_end", instant=hourly)
    frame = source is not None and not isinstance(source, str | os.PathLike)
    db = ":memory:" if frame else source
    if compressed is not None:
        try:
            check_summary_columns(tuple(compressed))
        except ValueError as exc:
            raise InputError(str(exc)) from None
    kept = None
    if columns is not None:
        if compressed is not None:
            raise InputError("summary: columns and compressed cannot be combined", parameters=("columns", "compressed"))
        try:
            check_summary_columns(tuple(c for c in columns if c != "customer_id"))
        except ValueError as exc:
            raise InputError(str(exc)) from None
        kept = ["customer_id", *dict.fromkeys(c for c in columns if c != "customer_id")]
        if hold_d is None and (holdout := [c for c in kept if c in HOLDOUT_COLUMNS]):
            raise InputError(f"summary: {', '.join(holdout)} need holdout_end", parameters=("columns", "holdout_end"))
    opened = connect(db, memory_limit=memory_limit, threads=threads) if frame else reader(db, memory_limit=memory_limit, threads=threads)
    with opened as con:
        table = "transactions"
        if frame:
            _register_frame(con, source, mapping)
            table = "transactions_in"
        elif not table_exists(con, "transactions"):
            raise NoDataError(f"database {db} holds no transactions: run patron ingest FILE --kind transactions first")
        if end_d is None:
            if hold_d is not None:
                raise InputError("holdout_end needs end, the last day of the calibration period", parameters=("holdout_end", "end"))
            end_d = default_as_of(con, table, instant=hourly, where=str(db) if not frame else "the table")
        try:
            spec = SummarySpec(end=end_d, unit=period.upper(), grain=grain.upper(), holdout_end=hold_d, table=table)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        n_buckets = buckets or _auto_buckets(con, table)
        try:
            parts = []
            for k in range(n_buckets):
                part = replace(spec, bucket=(k, n_buckets)) if n_buckets > 1 else spec
                done = run_summary(con, part, threads=threads)
                parts.append(done if kept is None else done.select(kept))
            result: pa.Table = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
            del parts
            if n_buckets > 1:
                _hand_back_cache(con)
            if compressed is not None:
                result = _in_order(con, _compress(con, result, tuple(compressed)), tuple(compressed))
            else:
                result = _in_order(con, result, ("customer_id",))
        except ValueError as exc:
            raise InputError(str(exc)) from None
        except duckdb.ConversionException as exc:
            raise InputError(f"cannot summarise the transactions: {str(exc).splitlines()[0]}") from None
    if result.num_rows == 0:
        raise NoDataError(f"no purchases on or before {end_d}")
    if output == "arrow":
        return result
    out = result.to_pandas()
    return _as_input_ids(source, out, mapping) if frame and compressed is None else out
