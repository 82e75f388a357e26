"""Place rules on Spark: ``within_km``, ``region`` and attribute columns compile to Spark SQL and
select the customers of the hand-made planted data of tests/test_place.py (known answers: points
just inside and just outside 5 km of the store), the same as DuckDB."""

from __future__ import annotations

import pandas as pd
import pytest

from patron.data.engines.spark import SHORT_RUN_JAVA_OPTIONS, spark_session
from patron.data.store import reader
from patron.relationship.segments import members
from tests.spark_support import SPARK_MODULE_MARKS
from tests.test_place import STORE, place_db  # noqa: F401  (the fixture)

pytestmark = SPARK_MODULE_MARKS

RULES = {
    "within_km('store-12', 5)": ["at", "in"],
    "city = 'Lyon' and clv > 100 and within_km('store-12', 5)": ["in"],
    "within_km('store-12', 394) and not within_km(\"store-12\", 5)": ["out", "paris"],
    "region = 'Île-de-France' or within_km('store-12', 0)": ["at", "paris"],
    "within_km('store-12', 100)": ["at", "in", "out"],  # beyond the H3 pre-filter: latitude band only
}


@pytest.fixture(scope="module")
def spark():
    session = spark_session("local[2]", **{"spark.driver.extraJavaOptions": SHORT_RUN_JAVA_OPTIONS})
    yield session
    session.stop()


def test_place_rules_on_spark_select_the_planted_customers(spark, place_db):  # noqa: F811
    from patron.relationship.spark_status import segment_spark

    with reader(place_db) as con:
        profiles = con.execute("SELECT customer_id, clv, city, lat, lon, h3_cell, region FROM customer_profiles").df()
        stores = con.execute("SELECT store_id, name, lat, lon, time_zone FROM stores").df()
    frame = spark.createDataFrame(profiles.astype({"lat": "float64", "lon": "float64"}))
    spark_stores = spark.createDataFrame(stores)
    for rule, expected in RULES.items():
        got = sorted(r[0] for r in segment_spark(frame, rule, stores=spark_stores).select("customer_id").collect())
        assert got == expected, rule
        assert members(place_db, rule).tolist() == expected, rule
    assert STORE.store_id in set(pd.Series(stores["store_id"]))
