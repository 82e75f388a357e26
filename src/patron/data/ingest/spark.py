"""Validated ingest on Apache Spark: read Parquet (or a Spark DataFrame), check every row against
the data contract with the *same* SQL builders as the DuckDB ingest (:mod:`patron.data.ingest.checks`,
rendered for the :data:`~patron.data.dialect.SPARK` dialect), and write the good rows and the
rejects as Parquet.

Differences from :func:`patron.ingest` (DuckDB), all because Spark has no patron store:

* Keys already stored are not checked (there is no store to look in): re-running an ingest over
  the same input writes the same rows again; derived keys are the same, so a later merge can
  de-duplicate on the key.
* Outputs are Parquet folders (``out``, ``rejects_out``) instead of tables and a CSV file.
* Rows are numbered 1, 2, ... in file order (``_metadata.row_index`` of each Parquet file); a
  folder of several files is numbered in the order of the files' paths, file after file.

Rejects have the same ``(row, column, value, reason)`` as DuckDB's ``rejects`` table, except the
text shown for a value read from a non-text column (Spark writes ``1.0E7`` where DuckDB writes
``10000000.0``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from patron.data.engines import require_spark

require_spark()  # one line naming the extra, before pyspark is imported

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.utils import AnalysisException

from patron.data.dialect import SPARK, java_datetime_pattern
from patron.data.engines.spark import _use_utc
from patron.data.ingest.checks import (
    SourceColumn,
    derived_key_sql,
    duplicate_key_problems_sql,
    occurrence_sql,
    parsed_select_sql,
    problem_selects,
)
from patron.data.ingest.columns import parse_mapping, resolve_sources
from patron.data.ingest.readers import Malformed, Staged
from patron.data.schema import CONTRACTS, TableContract
from patron.errors import InputError
from patron.settings import get_settings

SPARK_TO_DUCKDB_TYPES: dict[str, str] = {
    "string": "VARCHAR", "double": "DOUBLE", "float": "FLOAT", "int": "INTEGER", "bigint": "BIGINT",
    "smallint": "SMALLINT", "tinyint": "TINYINT", "boolean": "BOOLEAN", "date": "DATE",
    "timestamp": "TIMESTAMP", "timestamp_ntz": "TIMESTAMP",
}
"""Spark column types (``DataFrame.dtypes``) and the DuckDB type names the check builders expect.
A Spark ``timestamp`` is an instant and ``timestamp_ntz`` is read as UTC (the session time zone),
so both are plain UTC timestamps here; ``decimal(p,s)`` is ``DECIMAL``."""

REJECT_COLUMNS = ("row", "column", "value", "reason")
"""Columns of the rejects Parquet: 1-based input row, contract column (NULL for the whole row),
the input text, and the reason (the same words as DuckDB's ``rejects`` table)."""

_STAGE, _PARSED, _PROBLEMS = "_stage", "_parsed", "_problems"
"""Temporary views of one ingest; ``_parsed`` is the name the check builders read."""


def _duck_type(spark_type: str) -> str:
    if spark_type.startswith("decimal"):
        return "DECIMAL"
    return SPARK_TO_DUCKDB_TYPES.get(spark_type, spark_type.upper())


def _read(spark: SparkSession, source: Any) -> tuple[DataFrame, str]:
    """The input with a 1-based ``_row`` (file order), and a label for messages."""
    if isinstance(source, DataFrame):
        frame, label = source, "<DataFrame>"
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
        label = str(path)
        try:
            frame = spark.read.parquet(os.fspath(path))
        except AnalysisException as exc:
            raise InputError(f"{path}: cannot read as Parquet: {str(exc).splitlines()[0]}") from None
    else:
        raise InputError(f"cannot ingest an object of type {type(source).__name__} on Spark: give a Parquet path or a Spark DataFrame")
    if "_row" in frame.columns:  # numbered by the caller
        return frame.withColumn("_row", F.col("_row").cast("bigint")), label
    try:
        if not frame.inputFiles():
            raise LookupError("not read from files")
        located = frame.select("*", F.col("_metadata.file_path").alias("__file"), F.col("_metadata.row_index").alias("__index"))
    except (AnalysisException, LookupError):
        # Not read from files: number rows in the DataFrame's partition order (one partition).
        return frame.withColumn("_row", F.row_number().over(_order_by_id())), label
    # Row n of a file follows every row of the files before it (by path): the offsets are running
    # sums over the per-file counts (one row per file, so one small partition), joined back (no
    # global sort). All in the JVM: no Python runs on the executors for an ingest (a DataFrame
    # made from a Python list would need a Python worker there).
    from pyspark.sql import Window

    before = Window.orderBy("__file").rowsBetween(Window.unboundedPreceding, -1)
    spark_offsets = (located.groupBy("__file").count()
                     .select("__file", F.coalesce(F.sum("count").over(before), F.lit(0)).alias("__offset")))
    numbered = located.join(F.broadcast(spark_offsets), "__file").withColumn(
        "_row", (F.col("__offset") + F.col("__index") + 1).cast("bigint")
    )
    return numbered.drop("__file", "__index", "__offset"), label


def _order_by_id() -> Any:
    from pyspark.sql import Window

    return Window.orderBy(F.monotonically_increasing_id())


def ingest_spark(
    spark: SparkSession,
    source: DataFrame | str | os.PathLike[str],
    *,
    kind: str = "transactions",
    out: str | os.PathLike[str],
    rejects_out: str | os.PathLike[str],
    mapping: Mapping[str, str] | Sequence[str] | None = None,
    date_format: str | None = None,
    now: datetime | None = None,
    future_tolerance_hours: float | None = None,
    date_floor: date | None = None,
) -> dict[str, int]:
    """Check ``source`` against the ``kind`` contract on Spark; write the accepted rows to ``out``
    and the rejects to ``rejects_out`` (both Parquet folders, which must not exist yet).

    Parameters are those of :func:`patron.ingest` (``mapping`` contract column -> input column;
    ``date_format`` a strftime format made of ``%Y %m %d %H %M %S``, ``%%`` and literal
    characters; timestamps later than ``now`` plus ``future_tolerance_hours`` are rejected unless
    the column may lie in the future, and so are timestamps before ``date_floor``). A ``source``
    DataFrame with a ``_row`` column keeps it as the row number.

    ``out`` holds the contract's columns (timestamps as UTC ``TIMESTAMP`` without time zone,
    numbers as ``DOUBLE``, derived keys as in DuckDB); ``rejects_out`` holds
    :data:`REJECT_COLUMNS`, sorted by row and column, and is written even when empty.

    Returns ``{"rows_read", "accepted", "rejected"}`` (``rejected``: input rows with at least
    one problem).

    Raises
    ------
    InputError
        Unknown kind, unreadable source, missing required column, unsupported date format code,
        no valid row; or, for an ``all_or_nothing`` contract (consents, preferences), any rejected
        row: then ``out`` is not written and the message names the first bad row and column.
    """
    if kind not in CONTRACTS:
        raise InputError(f"kind must be one of {', '.join(CONTRACTS)}; got {kind!r}")
    contract = CONTRACTS[kind]
    if date_format:
        try:
            java_datetime_pattern(date_format)
        except ValueError as exc:
            raise InputError(str(exc)) from None
    mapping_d = parse_mapping(mapping, contract)
    settings = get_settings()
    tolerance = settings.future_tolerance_hours if future_tolerance_hours is None else future_tolerance_hours
    limit = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None) + timedelta(hours=tolerance)
    floor = settings.date_floor if date_floor is None else date_floor
    _use_utc(spark)

    frame, label = _read(spark, source)
    # Input columns are staged by position (as in DuckDB): no input name becomes SQL text.
    positions = [i for i, c in enumerate(frame.columns) if c != "_row"]
    names = [frame.columns[i] for i in positions]
    staged = Staged(columns=names, rows_read=0, malformed=Malformed(), typed=True)
    types = [_duck_type(frame.dtypes[i][1]) for i in positions]
    sources, extras = resolve_sources(contract, staged, types, mapping_d, label)
    idents = iter(staged.idents)
    frame.toDF(*["_row" if c == "_row" else next(idents) for c in frame.columns]).createOrReplaceTempView(_STAGE)

    derive = contract.key not in sources
    parsed = spark.sql(parsed_select_sql(contract, sources, extras, date_format=date_format, content_hash=derive, dialect=SPARK, stage=_STAGE)).cache()
    try:
        return _check_and_write(spark, parsed, contract, sources, label=label, derive=derive, date_format=date_format,
                                future_limit=limit, date_floor=floor, out=os.fspath(out), rejects_out=os.fspath(rejects_out))
    finally:
        parsed.unpersist()
        for view in (_STAGE, _PARSED, _PROBLEMS):
            spark.catalog.dropTempView(view)


def rejects_folder(out: str | os.PathLike[str]) -> Path:
    """The default rejects folder beside ``out``: ``orders`` -> ``orders_rejects``."""
    path = Path(out)
    return path.with_name(path.name + "_rejects")


def ingest_on_spark(
    source: DataFrame | str | os.PathLike[str],
    *,
    out: str | os.PathLike[str] | None,
    kind: str = "transactions",
    rejects_out: str | os.PathLike[str] | None = None,
    mapping: Mapping[str, str] | Sequence[str] | None = None,
    date_format: str | None = None,
    spark: SparkSession | None = None,
) -> dict[str, Any]:
    """``patron ingest --engine spark`` from Python: :func:`ingest_spark` in ``spark`` (default
    :func:`patron.data.engines.spark.spark_session`, whose master is ``$PATRON_SPARK_MASTER`` or
    local), the rejects in ``rejects_out`` (default :func:`rejects_folder` of ``out``).

    Returns ingest_spark's counts with ``kind``, ``out``, ``rejects`` (the folders, as text) and
    ``engine`` (``"spark"``). Without ``out`` (there is no store on Spark: the accepted rows go to
    a Parquet folder) an :class:`~patron.errors.InputError` naming ``out``."""
    if out is None or not str(out).strip():
        raise InputError("out is needed on the Spark engine: a folder for the accepted rows (Parquet)", parameters=("out",))
    from patron.data.engines import Engine
    from patron.data.engines.spark import spark_session

    rejects = Path(rejects_out) if rejects_out is not None else rejects_folder(out)
    counts = ingest_spark(spark if spark is not None else spark_session(), source, kind=kind, out=out,
                          rejects_out=rejects, mapping=mapping, date_format=date_format)
    return {**counts, "kind": kind, "out": os.fspath(out), "rejects": str(rejects), "engine": Engine.SPARK.value}


def _check_and_write(spark: SparkSession, parsed: DataFrame, contract: TableContract, sources: dict[str, SourceColumn], *,
                     label: str, derive: bool, date_format: str | None, future_limit: datetime, date_floor: date, out: str, rejects_out: str) -> dict[str, int]:
    rows_read = parsed.count()
    if rows_read == 0:
        raise InputError(f"{label}: no data rows")
    parsed.createOrReplaceTempView(_PARSED)
    key = contract.key
    future_sql = f"TIMESTAMP '{future_limit.isoformat(sep=' ')}'"
    selects = [
        s
        for col in contract.columns
        if col.name in sources or (col.required and not (col.name == key and derive))
        for s in problem_selects(col, date_format=date_format, future_limit_sql=future_sql, dialect=SPARK, date_floor=date_floor)
    ]
    empty = "SELECT CAST(NULL AS BIGINT) AS _row, CAST(NULL AS STRING) AS `column`, CAST(NULL AS STRING) AS value, CAST(NULL AS STRING) AS reason WHERE FALSE"
    spark.sql("\nUNION ALL\n".join(selects) if selects else empty).createOrReplaceTempView(_PROBLEMS)
    good = f"(SELECT p.* FROM {_PARSED} p LEFT ANTI JOIN (SELECT DISTINCT _row FROM {_PROBLEMS}) q ON q._row = p._row)"
    columns = [c.name for c in contract.columns] + (["attributes"] if contract.keep_extra_as_attributes else [])
    if derive:
        # Identical rows in one input are distinct records: number them by occurrence.
        rows = spark.sql(
            f"""SELECT p._row, {', '.join(f'p.{c}' for c in columns if c != key)}, {derived_key_sql(SPARK)} AS {key}
            FROM {_PARSED} p LEFT JOIN ({occurrence_sql(good)}) o ON o._row = p._row"""
        )
        problems = spark.table(_PROBLEMS)
    else:
        rows = spark.table(_PARSED)
        # Duplicate keys within this input: the first occurrence wins, later ones are rejected.
        duplicates = spark.sql(duplicate_key_problems_sql(key, good, SPARK))
        problems = spark.table(_PROBLEMS).unionByName(duplicates)
    problems = problems.cache()
    try:
        rejected = problems.select("_row").distinct().count()
        rejects = problems.select(F.col("_row").alias("row"), "column", "value", "reason").orderBy("row", "column")
        rejects.coalesce(1).write.parquet(rejects_out)
        if rejected and contract.all_or_nothing:
            raise InputError(f"{label}: {_first(rejects)}; nothing written ({contract.name} files are stored whole or not at all; "
                             f"{rejected} bad row{'s' if rejected != 1 else ''}, all reasons in {rejects_out})")
        accepted_rows = rows.join(problems.select("_row").distinct(), "_row", "left_anti")
        typed = [F.col(c).cast("timestamp_ntz").alias(c) if c in _timestamp_columns(contract) else F.col(c) for c in columns]
        accepted_rows = accepted_rows.select(*typed).cache()
        try:
            accepted = accepted_rows.count()
            if accepted == 0:
                raise InputError(f"{label}: no valid rows ({rejected} rejected; first: {_first(rejects)}); all reasons in {rejects_out}")
            accepted_rows.write.parquet(out)
        finally:
            accepted_rows.unpersist()
    finally:
        problems.unpersist()
    return {"rows_read": int(rows_read), "accepted": int(accepted), "rejected": int(rejected)}


def _timestamp_columns(contract: TableContract) -> set[str]:
    return {c.name for c in contract.columns if c.type == "timestamp"}


def _first(rejects: DataFrame) -> str:
    first = rejects.limit(1).collect()
    if not first:
        return "none"
    row = first[0]
    col = f", column {row['column']}" if row["column"] else ""
    return f"row {row['row']}{col}: {row['reason']}"


__all__ = ["REJECT_COLUMNS", "SPARK_TO_DUCKDB_TYPES", "ingest_spark"]
