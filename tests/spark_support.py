"""What every Spark test module shares: its marks (one Spark session per xdist worker with
``--dist loadgroup``; slow; pyspark's pandas warnings silenced, results are checked instead)."""

from __future__ import annotations

import pytest

SPARK_MODULE_MARKS: list[pytest.MarkDecorator] = [
    pytest.mark.spark,
    pytest.mark.xdist_group("spark"),
    pytest.mark.slow,
    # pyspark 4.x warns about pandas 3 on every conversion; the results are checked by the tests.
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]
