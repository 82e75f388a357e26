"""The motivation on Spark: the motivation query gives DuckDB's answer for every customer, and a rule
naming the motivation (``motivation = 'values'``) selects the same customers as on DuckDB.

The expected values are DuckDB's answers over the same tables (a simulated base with planted
motivations and every source of the query), an independent engine running the same query text in
its own dialect."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from patron.data.dialect import SPARK
from patron.data.engines.spark import SHORT_RUN_JAVA_OPTIONS, spark_session
from patron.data.store import connect
from patron.relationship.motivation import MOTIVATION_COLUMNS, Sources, motivation_sql, motivations
from patron.relationship.motivation_simulate import AS_OF, simulate_planted, store_planted
from tests.spark_support import SPARK_MODULE_MARKS

pytestmark = SPARK_MODULE_MARKS

TABLES = ("transactions", "campaigns", "contacts", "interactions", "referrals", "feedback")

RULES = (
    "motivation = 'values'",
    "motivation in [discount, mixed] and clv > 50",
    "motivation = 'values' and motivation_content_days >= 3 and motivation_discount_share < 0.2",
    "motivation_discount_score >= 0.6 or motivation_referrals > 2",
)
"""Rules over the motivation columns, alone and with other profile columns."""


@pytest.fixture(scope="module")
def spark():
    session = spark_session("local[2]", **{"spark.driver.extraJavaOptions": SHORT_RUN_JAVA_OPTIONS})
    yield session
    session.stop()


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> tuple[str, dict[str, str]]:
    """A planted base in a DuckDB file, and each of its tables as a Parquet file."""
    folder = tmp_path_factory.mktemp("motivation_spark")
    db = str(folder / "planted.duckdb")
    store_planted(simulate_planted(600, seed=7), db)
    paths = {}
    with connect(db) as con:
        for name in TABLES:
            paths[name] = str(folder / f"{name}.parquet")
            con.execute(f"COPY {name} TO '{paths[name]}' (FORMAT PARQUET)")
    return db, paths


def test_motivation_query_on_spark_gives_duckdbs_answer(spark, planted) -> None:
    db, paths = planted
    for name, path in paths.items():
        spark.read.parquet(path).createOrReplaceTempView(name)
    every = Sources(contacts=True, interactions=True, referrals=True, feedback=True)
    got = spark.sql(motivation_sql(AS_OF, present=every, dialect=SPARK)).toPandas().sort_values("customer_id")
    expected = motivations(db, as_of=AS_OF)
    assert len(expected) == 600 and expected["motivation"].nunique() == 4
    assert got["customer_id"].tolist() == expected["customer_id"].tolist()
    for col, sql_type in MOTIVATION_COLUMNS.items():
        a, b = got[col].to_numpy(), expected[col].to_numpy()
        if sql_type == "VARCHAR":
            assert (a == b).all(), col
        else:
            np.testing.assert_allclose(pd.to_numeric(a).astype(float), pd.to_numeric(pd.Series(b)).astype(float),
                                       rtol=1e-12, equal_nan=True, err_msg=col)


def test_motivation_rules_on_spark_same_as_duckdb(spark, planted, tmp_path) -> None:
    from patron.relationship.profiles import build_profiles
    from patron.relationship.segments import evaluate
    from patron.relationship.spark_status import segment_spark

    db, _ = planted
    build_profiles(db, as_of=AS_OF)
    path = str(tmp_path / "profiles.parquet")
    with connect(db) as con:
        con.execute(f"COPY customer_profiles TO '{path}' (FORMAT PARQUET)")
    frame = spark.read.parquet(path)
    for rule in RULES:
        got = sorted(r[0] for r in segment_spark(frame, rule).select("customer_id").collect())
        expected = sorted(evaluate(db, rule, as_of=AS_OF)["customer_id"].astype(str))
        assert got == expected, rule
        assert 0 < len(expected) < 600, rule
