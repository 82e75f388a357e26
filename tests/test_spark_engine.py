"""Spark (local mode) and DuckDB give the same summaries, statistics and fitted parameters.

The reference for every Spark result is the DuckDB engine (:func:`patron.summary`), an
independent SQL engine running the same query text in its own dialect; the CDNOW summary is also
checked against the published file (Fader, Hardie & Lee 2005, as shipped with lifetimes 0.11.3).

One Spark session serves the whole module; it starts in about 15-35 s on 2 busy cores, so the
module is marked ``slow``. Skipped where pyspark or Java is missing.
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyspark  # noqa: F401  (the test environment has the spark extra: a missing pyspark fails)
import pytest

import patron
from patron.data.datasets import (
    CDNOW_CALIBRATION_END,
    CDNOW_HOLDOUT_END,
    load_cdnow,
    load_cdnow_summary_with_transactions,
)
from patron.errors import InputError
from patron.value.scoring import fit_model, score
from patron.value.simulate import simulate_transactions

if shutil.which("java") is None:
    pytest.skip("Spark needs Java 17 on the PATH and `java` was not found", allow_module_level=True)

from pyspark.sql import functions as F

from patron.data.engines.spark import SHORT_RUN_JAVA_OPTIONS, spark_session
from patron.value.spark_fit import fit_spark
from patron.value.spark_score import (
    SCORE_COLUMNS,
    equity_interval_spark,
    equity_spark,
    score_spark,
    write_scores,
)
from patron.value.spark_summary import sufficient_statistics_spark, summary_spark
from tests.spark_support import SPARK_MODULE_MARKS

pytestmark = SPARK_MODULE_MARKS

FLOAT_REL_TOLERANCE = 1e-12
"""Sums of amounts differ between engines in the last bits (summation order)."""

PARAM_REL_TOLERANCE = 1e-9
"""Fitted parameters on the two engines' compressed statistics (issue 7)."""

SCORE_REL_TOLERANCE = 1e-9
"""Predictions and CLV from the two engines' models and summaries (issue 7)."""

INTERVAL_REL_TOLERANCE = 1e-8
"""CLV interval bounds: the delta method's forward differences (step 1e-6 in the log-parameters)
magnify last-bit differences of the inputs about a million times."""

PUBLISHED_TOLERANCE = 0.0101
"""The published CDNOW summary rounds t_x and T to 2 decimals."""

SIM_START = date(2024, 1, 1)
"""Default first day of :func:`simulate_transactions`' cohort window."""

SIM_OBSERVATION_DAYS = 546
"""Default observation length of :func:`simulate_transactions`: its natural end is start + 546 days."""

SIM_CUSTOMERS = 20_000

BGNBD_COLUMNS = ("frequency", "recency", "T")


@pytest.fixture(scope="module")
def spark():
    session = spark_session("local[2]", **{"spark.driver.extraJavaOptions": SHORT_RUN_JAVA_OPTIONS})
    yield session
    session.stop()


def _write_parquet(table: pa.Table, path: Path) -> str:
    pq.write_table(table, path, coerce_timestamps="us")  # Spark cannot read nanosecond timestamps
    return str(path)


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return load_cdnow()[["customer_id", "occurred_at", "amount"]]


@pytest.fixture(scope="module")
def cdnow_parquet(cdnow, tmp_path_factory) -> str:
    table = pa.Table.from_pandas(cdnow, preserve_index=False)
    return _write_parquet(table, tmp_path_factory.mktemp("cdnow") / "cdnow.parquet")


@pytest.fixture(scope="module")
def simulated() -> pa.Table:
    return simulate_transactions(SIM_CUSTOMERS, seed=7)


@pytest.fixture(scope="module")
def simulated_parquet(simulated, tmp_path_factory) -> str:
    return _write_parquet(simulated, tmp_path_factory.mktemp("sim") / "sim.parquet")


def _sorted(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return df.sort_values(keys, kind="stable").reset_index(drop=True)


def assert_same_summary(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Same columns in the same order, same customers; integers and timestamps equal, floats to
    :data:`FLOAT_REL_TOLERANCE`."""
    assert list(got.columns) == list(expected.columns)
    got, expected = _sorted(got, ["customer_id"]), _sorted(expected, ["customer_id"])
    assert got["customer_id"].tolist() == expected["customer_id"].tolist()
    for col in expected.columns[1:]:
        g, e = got[col].to_numpy(), expected[col].to_numpy()
        if e.dtype.kind == "f":
            np.testing.assert_allclose(g, e, rtol=FLOAT_REL_TOLERANCE, atol=0, err_msg=col)
        else:
            assert g.dtype.kind == e.dtype.kind and (g == e).all(), col


GRAINS_UNITS = [(g, u) for g in "DWM" for u in "DWM"]


@pytest.mark.parametrize(("grain", "unit"), GRAINS_UNITS)
@pytest.mark.parametrize("holdout_end", [None, CDNOW_HOLDOUT_END])
def test_cdnow_summary_same_as_duckdb(spark, cdnow, cdnow_parquet, grain, unit, holdout_end):
    kw = dict(period=unit, end=CDNOW_CALIBRATION_END, holdout_end=holdout_end, grain=grain)
    got = summary_spark(spark, cdnow_parquet, **kw).toPandas()
    assert_same_summary(got, patron.summary(cdnow, **kw))


def test_cdnow_summary_matches_published(spark, cdnow_parquet):
    got = _sorted(summary_spark(spark, cdnow_parquet, end=CDNOW_CALIBRATION_END).toPandas(), ["customer_id"])
    got.index = got["customer_id"].astype(int)
    ref = load_cdnow_summary_with_transactions().set_index("customer_id").loc[got.index]
    assert len(got) == 2357
    assert (got["frequency"].to_numpy() == ref["frequency"].to_numpy()).all()
    for col in ("recency", "T", "monetary_value"):
        assert np.abs(got[col].to_numpy() - ref[col].to_numpy()).max() <= PUBLISHED_TOLERANCE, col


def test_spark_dataframe_input_same_as_parquet(spark, cdnow, cdnow_parquet):
    frame = spark.read.parquet(cdnow_parquet)
    got = summary_spark(spark, frame, end=CDNOW_CALIBRATION_END).toPandas()
    assert_same_summary(got, patron.summary(cdnow, end=CDNOW_CALIBRATION_END))


def test_simulated_summary_same_as_duckdb(spark, simulated, simulated_parquet):
    end = SIM_START + timedelta(days=365)
    kw = dict(period="W", end=end, holdout_end=SIM_START + timedelta(days=SIM_OBSERVATION_DAYS))
    got = summary_spark(spark, simulated_parquet, **kw).toPandas()
    expected = patron.summary(simulated, **kw)
    assert len(expected) > SIM_CUSTOMERS / 2  # customers who bought by ``end``
    assert_same_summary(got, expected)


@pytest.mark.parametrize("base", ["cdnow", "simulated"])
def test_compressed_statistics_and_bgnbd_fit_same_as_duckdb(spark, request, base):
    source = request.getfixturevalue(base)
    path = request.getfixturevalue(f"{base}_parquet")
    end = CDNOW_CALIBRATION_END if base == "cdnow" else SIM_START + timedelta(days=SIM_OBSERVATION_DAYS)
    got = sufficient_statistics_spark(spark, path, columns=BGNBD_COLUMNS, end=end)
    expected = patron.summary(source, end=end, compressed=BGNBD_COLUMNS)
    keys = list(BGNBD_COLUMNS)
    # Exact: x is an integer and t_x, T are whole days divided by 7 in both engines (one IEEE division).
    pd.testing.assert_frame_equal(_sorted(got, keys), _sorted(expected, keys), check_dtype=False)
    assert got["weight"].sum() == len(patron.summary(source, end=end))

    on_spark = fit_spark("bgnbd", spark, path, end=end)
    on_duckdb = fit_model("bgnbd", expected)
    assert on_spark.converged_ and on_duckdb.converged_
    for name, value in on_duckdb.params_.items():
        assert on_spark.params_[name] == pytest.approx(value, rel=PARAM_REL_TOLERANCE), name


def test_gamma_gamma_fit_same_as_duckdb(spark, cdnow, cdnow_parquet):
    columns = ("frequency", "monetary_value")
    on_spark = fit_spark("gammagamma", spark, cdnow_parquet, end=CDNOW_CALIBRATION_END)
    on_duckdb = fit_model("gammagamma", patron.summary(cdnow, end=CDNOW_CALIBRATION_END, compressed=columns))
    for name, value in on_duckdb.params_.items():
        assert on_spark.params_[name] == pytest.approx(value, rel=PARAM_REL_TOLERANCE), name


def test_missing_column_is_one_line_error(spark, cdnow):
    frame = spark.createDataFrame(cdnow.rename(columns={"amount": "value"}).head(3))
    with pytest.raises(InputError, match="lack column amount"):
        summary_spark(spark, frame, end=CDNOW_CALIBRATION_END)


def test_session_refuses_jar_downloads():
    with pytest.raises(ValueError, match="does not download"):
        spark_session(**{"spark.jars.packages": "org.example:thing:1.0"})


@pytest.mark.parametrize("base", ["cdnow", "simulated"])
def test_scores_on_executors_same_as_local(spark, request, base, tmp_path):
    source = request.getfixturevalue(base)
    path = request.getfixturevalue(f"{base}_parquet")
    end = CDNOW_CALIBRATION_END if base == "cdnow" else SIM_START + timedelta(days=365)
    kw = dict(horizon=52.0, discount_rate=0.1, margin=0.3)
    tm, sm = fit_spark("bgnbd", spark, path, end=end), fit_spark("gammagamma", spark, path, end=end)
    scored = score_spark(summary_spark(spark, path, end=end), tm, sm, **kw)
    write_scores(scored.withColumn("repeat_buyer", F.col("frequency") > 0), tmp_path / "scores",
                 partition_by="repeat_buyer")
    local = score(patron.summary(source, end=end), model="bgnbd", **kw)

    got = _sorted(pq.read_table(tmp_path / "scores").to_pandas(), ["customer_id"])
    expected = _sorted(local.customers, ["customer_id"])
    assert got["customer_id"].astype(str).tolist() == expected["customer_id"].astype(str).tolist()
    assert (got["repeat_buyer"].astype(str) == (expected["frequency"] > 0).astype(str).str.lower()).all()
    assert sorted(p.name for p in (tmp_path / "scores").glob("repeat_buyer=*")) == [
        "repeat_buyer=false", "repeat_buyer=true"]
    for col in SCORE_COLUMNS:
        rtol = INTERVAL_REL_TOLERANCE if col in ("clv_lower", "clv_upper") else SCORE_REL_TOLERANCE
        np.testing.assert_allclose(got[col].to_numpy(float), expected[col].to_numpy(float), rtol=rtol, err_msg=col)
    assert equity_spark(scored) == pytest.approx(local.equity, rel=SCORE_REL_TOLERANCE)
    equity, lower, upper = equity_interval_spark(summary_spark(spark, path, end=end), tm, sm, **kw)
    assert equity == pytest.approx(local.equity, rel=SCORE_REL_TOLERANCE)
    assert lower == pytest.approx(local.equity_lower, rel=INTERVAL_REL_TOLERANCE)
    assert upper == pytest.approx(local.equity_upper, rel=INTERVAL_REL_TOLERANCE)
    assert lower < equity < upper
    if base == "cdnow":  # equity by a column, aggregated on the cluster
        by = equity_spark(scored.withColumn("repeat_buyer", F.col("frequency") > 0), by="repeat_buyer")
        expected_by = expected.groupby(expected["frequency"] > 0)["clv"].sum()
        for flag, total in expected_by.items():
            row = by[by["repeat_buyer"] == flag]
            assert row["customers"].item() == (expected["frequency"] > 0).eq(flag).sum()
            assert row["equity"].item() == pytest.approx(total, rel=SCORE_REL_TOLERANCE)


def test_default_value_settings_give_the_same_clv_on_both_engines(spark, cdnow, cdnow_parquet):
    """``score_spark`` and ``equity_interval_spark`` given no value settings use the one set of
    defaults (:class:`~patron.value.settings.ValueSettings`: 52 weeks, 10% a year, margin 1), as
    :func:`patron.value.scoring.score` does; and those defaults matter (a 0% rate, the old Spark
    default, gives another CLV)."""
    end = CDNOW_CALIBRATION_END
    tm, sm = fit_spark("bgnbd", None, cdnow_parquet, end=end), fit_spark("gammagamma", spark, cdnow_parquet, end=end)
    summary = summary_spark(spark, cdnow_parquet, end=end)
    local = score(patron.summary(cdnow, end=end))
    expected = _sorted(local.customers, ["customer_id"])
    got = _sorted(score_spark(summary, tm, sm).toPandas(), ["customer_id"])
    for col in ("clv", "discounted_purchases", "expected_purchases"):
        np.testing.assert_allclose(got[col].to_numpy(float), expected[col].to_numpy(float), rtol=SCORE_REL_TOLERANCE, err_msg=col)
    equity, lower, upper = equity_interval_spark(summary, tm, sm)
    assert equity == pytest.approx(local.equity, rel=SCORE_REL_TOLERANCE)
    assert (lower, upper) == pytest.approx((local.equity_lower, local.equity_upper), rel=INTERVAL_REL_TOLERANCE)
    undiscounted = equity_interval_spark(summary, tm, sm, discount_rate=0.0)[0]
    assert undiscounted > equity * 1.03  # a year at 10%: about 5% more without discounting


def test_score_on_spark_from_python_same_as_local(spark, cdnow, cdnow_parquet, tmp_path):
    """The whole of ``patron score --engine spark`` from the Python API (no CLI): scores written as
    Parquet, equity and its interval, spend bases and the settings line, equal to the local score
    with the same value settings."""
    from patron.value.settings import ValueSettings
    from patron.value.spark_score import score_on_spark

    settings = ValueSettings(model="pareto", horizon=26, margin=0.3, discount_rate=0.05, cost_per_order=0.5)
    res = score_on_spark(cdnow_parquet, tmp_path / "scores", end=CDNOW_CALIBRATION_END, settings=settings, spark=spark)
    local = score(patron.summary(cdnow, end=CDNOW_CALIBRATION_END), settings=settings)
    assert res.customers == len(local.customers) == 2357
    assert res.equity == pytest.approx(local.equity, rel=SCORE_REL_TOLERANCE)
    assert (res.equity_lower, res.equity_upper) == pytest.approx((local.equity_lower, local.equity_upper), rel=INTERVAL_REL_TOLERANCE)
    assert res.spend_bases == local.spend_bases and res.level == local.level and res.method == local.method
    assert res.notes[0] == settings.line()
    got = _sorted(pq.read_table(tmp_path / "scores").to_pandas(), ["customer_id"])
    expected = _sorted(local.customers, ["customer_id"])
    np.testing.assert_allclose(got["clv"].to_numpy(float), expected["clv"].to_numpy(float), rtol=SCORE_REL_TOLERANCE)
    with pytest.raises(InputError, match=r"^interval_method must be delta on the Spark engine") as caught:
        score_on_spark(cdnow_parquet, tmp_path / "x", end=CDNOW_CALIBRATION_END, interval_method="bootstrap", spark=spark)
    assert caught.value.parameters == ("interval_method",)
    with pytest.raises(InputError, match=r"^end is needed on the Spark engine"):
        score_on_spark(cdnow_parquet, tmp_path / "x", end=None, spark=spark)  # type: ignore[arg-type]
    assert not (tmp_path / "x").exists()


# ---------------------------------------------------------------- status and segment rules


STATUS_AS_OF = "1998-03-31"
"""An assessment date inside the CDNOW data with customers in every purchasing status."""


@pytest.fixture(scope="module")
def cdnow_db(cdnow, tmp_path_factory) -> tuple[str, str]:
    """CDNOW in a patron database, plus 25 known people who never bought (prospects); and the
    same people as a Parquet file of the customers table."""
    folder = tmp_path_factory.mktemp("cdnow_db")
    db = str(folder / "cdnow.duckdb")
    patron.ingest(cdnow, kind="transactions", db=db)
    people = pd.DataFrame({"customer_id": [f"p{i}" for i in range(25)]})
    patron.ingest(people, kind="customers", db=db)
    path = _write_parquet(pa.Table.from_pandas(people, preserve_index=False), folder / "customers.parquet")
    return db, path


def test_status_on_spark_same_as_duckdb(spark, cdnow_db, cdnow_parquet):
    """Every customer's status, reason, P(purchase) and P(alive) from Spark equal relationship_status's."""
    from patron.relationship.spark_status import status_spark
    from patron.relationship.status import relationship_status

    db, customers = cdnow_db
    got = _sorted(status_spark(spark, cdnow_parquet, as_of=STATUS_AS_OF, customers=customers).toPandas(), ["customer_id"])
    expected = _sorted(relationship_status(db, as_of=STATUS_AS_OF), ["customer_id"])
    assert got["customer_id"].tolist() == expected["customer_id"].astype(str).tolist()
    assert (got["status"] == "prospect").sum() == 25 and got["status"].nunique() >= 5
    assert (got["status"].to_numpy() == expected["status"].to_numpy()).all()
    assert (got["status_reason"].to_numpy() == expected["status_reason"].to_numpy()).all()
    for col in ("probability_purchase", "probability_purchase_before", "probability_alive", "probability_alive_before",
                "expected_purchases", "days_since_last_purchase"):
        np.testing.assert_allclose(got[col].to_numpy(float), expected[col].to_numpy(float), rtol=SCORE_REL_TOLERANCE,
                                   equal_nan=True, err_msg=col)


def test_status_on_spark_from_python_counts_as_duckdb(spark, cdnow_db, cdnow_parquet, tmp_path):
    """``patron status --engine spark`` from the Python API: the counts per status equal
    status_counts of relationship_status, and the statuses written to ``out`` are every customer's."""
    from patron.relationship.spark_status import status_on_spark
    from patron.relationship.status import relationship_status, status_counts

    db, customers = cdnow_db
    counts = status_on_spark(cdnow_parquet, as_of=STATUS_AS_OF, customers=customers, out=tmp_path / "statuses", spark=spark)
    expected = status_counts(relationship_status(db, as_of=STATUS_AS_OF))
    assert counts["status"].tolist() == expected["status"].tolist()
    assert counts["count"].tolist() == expected["count"].tolist()
    np.testing.assert_allclose(counts["mean_probability_alive"], expected["mean_probability_alive"], rtol=SCORE_REL_TOLERANCE)
    assert pq.read_table(tmp_path / "statuses").num_rows == int(expected["count"].sum())


SEGMENT_RULES = (
    "status in [at_risk, lapsed] and clv > 20",
    "rfm_score = '555' or value_tier = 'gold'",
    "rfm_cell in [champions, hibernating] and not returned",
    "frequency between 1 and 3 and probability_alive < 0.5",
    "customer_id in ['1', '2', 'x''y', 'back\\slash']",
)
"""Rules over every kind of column, the virtual rfm_cell, and text needing escapes in both dialects."""


def test_segment_rules_on_spark_same_as_duckdb(spark, cdnow_db, tmp_path):
    from patron.relationship.profiles import build_profiles
    from patron.relationship.segments import evaluate
    from patron.relationship.spark_status import segment_spark

    db, _ = cdnow_db
    profiles = build_profiles(db, as_of=STATUS_AS_OF)
    path = _write_parquet(pa.Table.from_pandas(profiles, preserve_index=False), tmp_path / "profiles.parquet")
    frame = spark.read.parquet(path)
    for rule in SEGMENT_RULES:
        got = sorted(r[0] for r in segment_spark(frame, rule).select("customer_id").collect())
        expected = sorted(evaluate(db, rule, as_of=STATUS_AS_OF)["customer_id"].astype(str))
        assert got == expected, rule
        assert rule.startswith("customer_id") or len(expected) > 0, rule


def test_segment_rule_errors_on_spark_name_the_rule(spark, tmp_path):
    from patron.relationship.spark_status import segment_spark

    frame = spark.createDataFrame(pd.DataFrame({"customer_id": ["a"], "clv": [1.0]}))
    with pytest.raises(InputError, match=r'segment "vip".*unknown column "clvv"'):
        segment_spark(frame, "clvv > 3", name="vip")
