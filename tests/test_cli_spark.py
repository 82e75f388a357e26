"""``patron summary --engine spark`` gives the DuckDB engine's summary (Spark in local mode)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pyspark  # noqa: F401  (the test environment has the spark extra: a missing pyspark fails)
import pytest

import patron
from patron.data.datasets import CDNOW_CALIBRATION_END, CDNOW_HOLDOUT_END, load_cdnow

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


def _run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "patron", *args], capture_output=True, text=True, timeout=900, cwd=cwd)


def test_fit_and_score_engine_spark_equal_duckdb(tmp_path):
    """`patron fit/score --engine spark` give the parameters, scores and equity interval of the
    DuckDB engine on the same CDNOW transactions (fits to 1e-9 relative, as issue 7 asks)."""
    import json

    source = tmp_path / "cdnow.parquet"
    load_cdnow().to_parquet(source)
    db = tmp_path / "cdnow.duckdb"
    patron.ingest(load_cdnow(), kind="transactions", db=db)
    common = ["--end", CDNOW_CALIBRATION_END]
    spark_fit = _run("fit", "bgnbd", "--engine", "spark", "--transactions", str(source), *common, "--json")
    duck_fit = _run("fit", "bgnbd", "--db", str(db), *common, "--json")
    assert spark_fit.returncode == 0 and duck_fit.returncode == 0, spark_fit.stderr[-2000:] + duck_fit.stderr[-2000:]
    got, want = json.loads(spark_fit.stdout), json.loads(duck_fit.stdout)
    for name, value in want["params"].items():
        assert got["params"][name] == pytest.approx(value, rel=1e-9), name

    kw = ["--horizon", "52", "--discount-rate", "0.1", "--margin", "0.3", *common, "--json"]
    spark_score = _run("score", "--engine", "spark", "--transactions", str(source), "--out", str(tmp_path / "scores"),
                       "--partition-by", "frequency", *kw)
    duck_score = _run("score", "--db", str(db), "--out", str(tmp_path / "scores.parquet"), *kw)
    assert spark_score.returncode == 0 and duck_score.returncode == 0, spark_score.stderr[-2000:] + duck_score.stderr[-2000:]
    got, want = json.loads(spark_score.stdout), json.loads(duck_score.stdout)
    assert got["customers"] == want["customers"] == 2357
    for key in ("customer_equity", "customer_equity_lower", "customer_equity_upper"):
        assert got[key] == pytest.approx(want[key], rel=1e-8), key
    spark_rows = pd.read_parquet(tmp_path / "scores").sort_values("customer_id").reset_index(drop=True)
    duck_rows = pd.read_parquet(tmp_path / "scores.parquet").sort_values("customer_id").reset_index(drop=True)
    assert (spark_rows["customer_id"].astype(str).to_numpy() == duck_rows["customer_id"].astype(str).to_numpy()).all()
    np.testing.assert_allclose(spark_rows["clv"], duck_rows["clv"], rtol=1e-9)
    assert len(list((tmp_path / "scores").glob("frequency=*"))) == duck_rows["frequency"].nunique()


def test_score_engine_spark_refuses_bootstrap_in_one_line(tmp_path):
    proc = _run("score", "--engine", "spark", "--transactions", "x.parquet", "--end", "1997-09-30", "--out", "o",
                "--interval-method", "bootstrap", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "delta" in proc.stderr


def test_status_engine_spark_counts_equal_duckdb(tmp_path):
    """`patron status --engine spark` prints the DuckDB engine's counts per status (CDNOW)."""
    import json

    source = tmp_path / "cdnow.parquet"
    load_cdnow().to_parquet(source)
    db = tmp_path / "cdnow.duckdb"
    patron.ingest(load_cdnow(), kind="transactions", db=db)
    as_of = ["--as-of", "1998-03-31", "--json"]
    spark = _run("status", "--engine", "spark", "--transactions", str(source), *as_of)
    duck = _run("status", "--db", str(db), *as_of)
    assert spark.returncode == 0 and duck.returncode == 0, spark.stderr[-2000:] + duck.stderr[-2000:]
    got, want = json.loads(spark.stdout), json.loads(duck.stdout)
    assert got["customers"] == want["customers"] == 2357
    for g, w in zip(got["statuses"], want["statuses"], strict=True):
        assert g["status"] == w["status"] and g["count"] == w["count"], (g, w)
        for key in ("mean_probability_purchase", "mean_probability_alive"):
            if w[key] is not None:
                assert g[key] == pytest.approx(w[key], rel=1e-9)


def test_ingest_engine_spark_writes_parquet_and_rejects(tmp_path):
    """`patron ingest --engine spark` keeps the good rows and rejects the bad one, as DuckDB does."""
    import json

    rows = pd.DataFrame({"customer_id": ["a", "b", None], "occurred_at": ["2024-01-02", "2024-01-03", "2024-01-04"],
                         "amount": [10.0, 12.5, 3.0]})
    source = tmp_path / "tx.parquet"
    rows.to_parquet(source)
    proc = _run("ingest", str(source), "--engine", "spark", "--out", str(tmp_path / "good"), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    counts = json.loads(proc.stdout)
    assert (counts["accepted"], counts["rejected"]) == (2, 1)
    assert sorted(pd.read_parquet(tmp_path / "good")["customer_id"]) == ["a", "b"]
    rejects = pd.read_parquet(tmp_path / "good_rejects")
    assert rejects[["row", "column"]].values.tolist() == [[3, "customer_id"]]


def test_score_engine_spark_values_zero_value_repeat_buyers_as_duckdb(tmp_path):
    """Two planted customers whose repeat purchases are all $0.00: both engines leave them out of
    the spend fit, value them at the population mean spend, count them, and apply the same value
    settings (margin, costs to serve) to every customer."""
    import json

    odd = pd.DataFrame({"customer_id": ["z1", "z1", "z2", "z2", "z2"],
                        "occurred_at": pd.to_datetime(["1997-02-01", "1997-05-01", "1997-02-03", "1997-03-01", "1997-04-01"]),
                        "amount": [20.0, 0.0, 15.0, 0.0, 0.0]})
    orders = pd.concat([load_cdnow()[["customer_id", "occurred_at", "amount"]], odd], ignore_index=True)
    orders.to_parquet(tmp_path / "odd.parquet")
    patron.ingest(orders, kind="transactions", db=str(tmp_path / "odd.duckdb"))
    settings = ["--margin", "0.3", "--cost-per-order", "0.5", "--cost-per-customer", "1", "--json"]
    on_spark = _run("score", "--engine", "spark", "--transactions", str(tmp_path / "odd.parquet"), "--end", "1998-06-30",
                    "--out", str(tmp_path / "spark"), *settings)
    on_duck = _run("score", "--db", str(tmp_path / "odd.duckdb"), "--out", str(tmp_path / "duck.parquet"), *settings)
    assert on_spark.returncode == 0 and on_duck.returncode == 0, on_spark.stderr[-2000:] + on_duck.stderr[-2000:]
    got, want = json.loads(on_spark.stdout), json.loads(on_duck.stdout)
    assert got["spend_basis"] == want["spend_basis"] and got["spend_basis"]["population_mean: repeat purchases total 0 or less"] == 2
    assert got["notes"] == want["notes"]
    assert got["customer_equity"] == pytest.approx(want["customer_equity"], rel=ENGINE_REL_TOLERANCE)
    spark_rows = pd.read_parquet(tmp_path / "spark").set_index("customer_id").sort_index()
    duck_rows = pd.read_parquet(tmp_path / "duck.parquet").set_index("customer_id").sort_index()
    assert (spark_rows["spend_basis"] == duck_rows.loc[spark_rows.index, "spend_basis"]).all()
    np.testing.assert_allclose(spark_rows["clv"], duck_rows.loc[spark_rows.index, "clv"], rtol=1e-9)
