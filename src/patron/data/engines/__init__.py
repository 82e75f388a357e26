"""Engines that run patron's SQL where the data lives: their names, the choice between them, and
what every Spark run needs.

DuckDB (embedded, the default) runs the summary in :mod:`patron.value.summary`; on Apache Spark the
*same* SQL text, rendered by :mod:`patron.data.dialect` for the Spark dialect, runs in a session
from :mod:`patron.data.engines.spark`. What runs there belongs to its stage: ingest in
:mod:`patron.data.ingest.spark`, the summary, fits and scores in :mod:`patron.value.spark_summary`,
:mod:`patron.value.spark_fit` and :mod:`patron.value.spark_score`, statuses and segment rules in
:mod:`patron.relationship.spark_status`. Importing this package needs nothing beyond patron's own
dependencies; the Spark modules need ``pyspark`` (``pip install 'patron[spark]'``) and Java 17.

The one place where an engine is chosen is :func:`resolve_engine`: every function and command that
takes ``engine`` passes it through it, so an unknown name is refused the same way everywhere. The
one place a Spark module says it needs ``pyspark`` is :func:`require_spark`, and the one place a
Spark run says which inputs it lacks is :func:`require_spark_inputs`.
"""

from __future__ import annotations

import difflib
import os
from datetime import date
from enum import StrEnum
from typing import Any

from patron.errors import InputError


class Engine(StrEnum):
    """An engine patron runs its SQL on; a ``str`` (``Engine.SPARK == "spark"``)."""

    DUCKDB = "duckdb"
    """Embedded DuckDB: the database file (``db``) or an in-memory table."""
    SPARK = "spark"
    """Apache Spark, local or a cluster: transactions from Parquet (or a Spark DataFrame)."""


ENGINES: tuple[str, ...] = tuple(e.value for e in Engine)
"""Names of the engines patron can run its summary SQL on (the values of :class:`Engine`)."""

SPARK_FEATURE = "the Spark engine"
"""What the one-line error of a missing ``pyspark`` names (:func:`require_spark`)."""


def resolve_engine(engine: str | Engine | None = None) -> Engine:
    """The :class:`Engine` named by ``engine`` (any case, surrounding blanks ignored), or by the
    setting ``PATRON_ENGINE`` (:attr:`patron.settings.Settings.engine`, default ``duckdb``) when
    ``engine`` is ``None`` or blank.

    An unknown name is an :class:`~patron.errors.InputError` naming the parameter ``engine``, the
    choices and the nearest one:

    >>> resolve_engine("Spark")
    <Engine.SPARK: 'spark'>
    >>> resolve_engine("sprak")
    Traceback (most recent call last):
    ...
    patron.errors.InputError: engine must be one of duckdb, spark; got 'sprak' (did you mean spark?)
    """
    if isinstance(engine, Engine):
        return engine
    if engine is None or (isinstance(engine, str) and not engine.strip()):
        from patron.settings import get_settings

        engine = get_settings().engine
    name = engine.strip().lower() if isinstance(engine, str) else engine
    try:
        return Engine(name)
    except ValueError:
        close = difflib.get_close_matches(str(name), ENGINES, n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise InputError(f"engine must be one of {', '.join(ENGINES)}; got {engine!r}{hint}", parameters=("engine",)) from None


def require_spark() -> None:
    """Check that ``pyspark`` is installed before a Spark module imports it: without it, a
    :class:`~patron.extras.MissingExtraError` of one line naming the ``spark`` extra (the CLI
    prints it and exits 1)."""
    from patron.extras import require

    require("spark", SPARK_FEATURE)


def require_spark_inputs(transactions: Any, day: str | date | None, *, day_name: str = "end") -> None:
    """Check the inputs every Spark run needs, before a session starts: ``transactions`` (a Parquet
    file or folder, or a Spark DataFrame; there is no database on Spark) and the day the run is
    cut at, ``day`` (the calibration end, or the as-of date named ``day_name``: on Spark it is not
    looked up from the data). A missing one is an :class:`~patron.errors.InputError` naming its
    parameter (the CLI writes the flag: ``--transactions``, ``--end``, ``--as-of``).

    >>> require_spark_inputs("t.parquet", None)
    Traceback (most recent call last):
    ...
    patron.errors.InputError: end is needed on the Spark engine: the last day of the calibration period
    """
    if transactions is None or (isinstance(transactions, str | os.PathLike) and not str(transactions).strip()):
        raise InputError("transactions is needed on the Spark engine: a Parquet file or folder of transactions "
                         "(there is no database on Spark)", parameters=("transactions",))
    if day is None or (isinstance(day, str) and not day.strip()):
        what = "the last day of the calibration period" if day_name == "end" else "the day of the assessment"
        raise InputError(f"{day_name} is needed on the Spark engine: {what}", parameters=(day_name,))


__all__ = ["ENGINES", "SPARK_FEATURE", "Engine", "require_spark", "require_spark_inputs", "resolve_engine"]
