"""Engines that run patron's SQL where the data lives: their names, and the Spark session.

DuckDB (embedded, the default) runs the summary in :mod:`patron.value.summary`; on Apache Spark the
*same* SQL text, rendered by :mod:`patron.data.dialect` for the Spark dialect, runs in a session
from :mod:`patron.data.engines.spark`. What runs there belongs to its stage: ingest in
:mod:`patron.data.ingest.spark`, the summary, fits and scores in :mod:`patron.value.spark_summary`,
:mod:`patron.value.spark_fit` and :mod:`patron.value.spark_score`, statuses and segment rules in
:mod:`patron.relationship.spark_status`. Importing this package needs nothing beyond patron's own
dependencies; the Spark modules need ``pyspark`` (``pip install 'patron[spark]'``) and Java 17.
"""

from __future__ import annotations

ENGINES: tuple[str, ...] = ("duckdb", "spark")
"""Names of the engines patron can run its summary SQL on."""

__all__ = ["ENGINES"]
