"""Engines that run patron's SQL where the data lives.

DuckDB (embedded, the default) runs in :mod:`patron.summary`; :mod:`patron.engines.spark_summary`
runs the *same* SQL text, rendered by :mod:`patron.sql` for the Spark dialect, on Apache Spark, in a
session from :mod:`patron.engines.spark`. Importing this package needs nothing beyond patron's own
dependencies; the ``patron.engines.spark*`` modules need ``pyspark`` (``pip install
'patron[spark]'``) and Java 17.
"""

from __future__ import annotations

ENGINES: tuple[str, ...] = ("duckdb", "spark")
"""Names of the engines patron can run its summary SQL on."""

__all__ = ["ENGINES"]
