"""Engagement on Spark: segment rules over the engagement columns of ``customer_profiles`` select
the same customers on Spark as on DuckDB, and the hand-made answer; the per-customer and weekly
SQL run on Spark in its dialect and give DuckDB's figures (the hand-made data of test_engagement)."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyspark  # noqa: F401  (the test environment has the spark extra: a missing pyspark fails)
import pytest

import patron
from patron.data.dialect import SPARK
from patron.relationship.engagement import ENGAGED_NOT_BUYING, customer_sql, engagement, weekly_sql
from patron.relationship.profiles import build_profiles
from patron.relationship.segments import evaluate
from tests.spark_support import SPARK_MODULE_MARKS
from tests.test_engagement import AS_OF, NOW, hand_rows

pytestmark = SPARK_MODULE_MARKS

if shutil.which("java") is None:
    pytest.fail("Spark needs Java 17 on the PATH and `java` was not found")

from patron.data.engines.spark import SHORT_RUN_JAVA_OPTIONS, spark_session  # noqa: E402

RULES = {
    "engagement_trend < 0 and engagement_recency_days > 30": ["c"],
    ENGAGED_NOT_BUYING: ["c"],
    "engagement_band in [medium, high] or engagement_trend_label = 'rising'": ["a", "b", "c"],
    "engagement_score is null and clv >= 0": ["x"],
    "engagement_active_days_28 >= 3 and engagement_channels_90 = 3": ["a"],
}
"""Rules over the engagement columns and the customers they select in the hand-made data."""


@pytest.fixture(scope="module")
def spark():
    session = spark_session("local[2]", **{"spark.driver.extraJavaOptions": SHORT_RUN_JAVA_OPTIONS})
    yield session
    session.stop()


@pytest.fixture(scope="module")
def hand_db(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("engagement_spark")
    db = str(folder / "e.duckdb")
    patron.ingest(pd.DataFrame(hand_rows()), kind="interactions", db=db, now=NOW)
    tx = pd.DataFrame({"customer_id": ["a", "a", "b", "c", "x", "x"],
                       "occurred_at": ["2023-10-01", "2024-03-20", "2024-03-01", "2023-12-01", "2023-11-01", "2024-01-15"],
                       "amount": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]})
    patron.ingest(tx, kind="transactions", db=db, now=NOW)
    return db


def test_engagement_rules_on_spark_same_as_duckdb_and_known(spark, hand_db, tmp_path):
    from patron.relationship.spark_status import segment_spark

    profiles = build_profiles(hand_db, as_of=AS_OF)
    path = tmp_path / "profiles.parquet"
    pq.write_table(pa.Table.from_pandas(profiles, preserve_index=False), path, coerce_timestamps="us")
    frame = spark.read.parquet(str(path))
    for rule, expected in RULES.items():
        got = sorted(r[0] for r in segment_spark(frame, rule).select("customer_id").collect())
        duck = sorted(evaluate(hand_db, rule, as_of=AS_OF)["customer_id"].astype(str))
        assert got == duck == expected, rule


def test_engagement_sql_on_spark_same_as_duckdb(spark, hand_db, tmp_path):
    path = tmp_path / "interactions.parquet"
    frame = pd.DataFrame(hand_rows())
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"])
    pq.write_table(pa.Table.from_pandas(frame[["customer_id", "occurred_at", "channel", "kind"]], preserve_index=False), path,
                   coerce_timestamps="us")
    spark.read.parquet(str(path)).createOrReplaceTempView("interactions_spark")
    source = "SELECT * FROM interactions_spark"
    expected = engagement(hand_db, as_of=AS_OF)
    got = spark.sql(customer_sql(source, AS_OF, dialect=SPARK)).toPandas().sort_values("customer_id").reset_index(drop=True)
    want = expected.customers.sort_values("customer_id").reset_index(drop=True)
    assert list(got.columns) == list(want.columns)
    for col in want.columns:
        if want[col].dtype.kind in "fi":
            np.testing.assert_allclose(got[col].to_numpy(float), want[col].to_numpy(float), rtol=1e-12, err_msg=col)
        else:
            assert got[col].tolist() == want[col].tolist(), col
    weekly = spark.sql(weekly_sql(source, as_of=AS_OF, dialect=SPARK)).toPandas().sort_values(["customer_id", "week_start"])
    ref = expected.weekly.sort_values(["customer_id", "week_start"])
    assert len(weekly) == len(ref)
    for col in ("interactions", "interactions_web", "active_days", "channels", "score", "recency_days"):
        np.testing.assert_allclose(weekly[col].to_numpy(float), ref[col].to_numpy(float), err_msg=col)
    assert [str(d)[:10] for d in weekly["week_start"]] == [str(d)[:10] for d in ref["week_start"]]
