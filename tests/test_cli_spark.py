"""``patron summary --engine spark`` gives the DuckDB engine's summary (Spark in local mode)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import patron
from patron.datasets import CDNOW_CALIBRATION_END, CDNOW_HOLDOUT_END, load_cdnow

pytest.importorskip("pyspark", reason="pyspark is not installed (pip install 'patron[spark]')")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.spark,
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java 17 (java not found)"),
]

ENGINE_REL_TOLERANCE = 1e-12
"""Both engines sum the same doubles, possibly in another order."""


def test_summary_engine_spark_equals_duckdb(tmp_path):
    source = tmp_path / "cdnow.parquet"
    load_cdnow().to_parquet(source)
    proc = subprocess.run(
        [sys.executable, "-m", "patron", "summary", "--engine", "spark", "--transactions", str(source),
         "--end", CDNOW_CALIBRATION_END, "--holdout-end", CDNOW_HOLDOUT_END, "--out", str(tmp_path / "s.parquet"), "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    spark = pd.read_parquet(tmp_path / "s.parquet").sort_values("customer_id").reset_index(drop=True)
    duck = patron.summary(load_cdnow(), end=CDNOW_CALIBRATION_END, holdout_end=CDNOW_HOLDOUT_END).sort_values("customer_id").reset_index(drop=True)
    assert list(spark.columns) == list(duck.columns) and len(spark) == len(duck) == 2357
    for col in duck.columns:
        if duck[col].dtype.kind == "f":
            np.testing.assert_allclose(spark[col], duck[col], rtol=ENGINE_REL_TOLERANCE, err_msg=col)
        elif col in ("first_purchase", "last_purchase"):
            assert (pd.to_datetime(spark[col]).values == pd.to_datetime(duck[col]).values).all(), col
        else:
            assert (spark[col].to_numpy() == duck[col].to_numpy()).all(), col


def test_summary_engine_spark_needs_a_parquet_source(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "patron", "summary", "--engine", "spark", "--end", "2024-01-01"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "--transactions" in proc.stderr
