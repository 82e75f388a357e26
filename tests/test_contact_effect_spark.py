"""Dose-response SQL on Spark: the same customer-month cells and recent contacts as on DuckDB.

The expected values are DuckDB's answers to the same builders over the same simulated data (with
holdout records mixed in), an independent engine."""

from __future__ import annotations

import pandas as pd
import pytest

from patron.contact.effect import planted_effect, simulate_dose_response
from patron.contact.effect.dose_sql import dose_cells_sql, recent_contacts_sql
from patron.data.dialect import DUCKDB, SPARK
from patron.data.engines.spark import SHORT_RUN_JAVA_OPTIONS, spark_session
from patron.data.store import connect
from tests.spark_support import SPARK_MODULE_MARKS

pytestmark = SPARK_MODULE_MARKS

KEYS = ["segment", "month", "recency_band", "frequency_band", "dose"]


@pytest.fixture(scope="module")
def spark():
    session = spark_session("local[2]", **{"spark.driver.extraJavaOptions": SHORT_RUN_JAVA_OPTIONS})
    yield session
    session.stop()


def test_dose_sql_gives_duckdbs_answers_on_spark(spark, db: str) -> None:
    contacts, orders, _ = simulate_dose_response(800, effect=planted_effect(3), months=8, seed=1)
    contacts.loc[contacts.index[:50], "in_holdout"] = True
    with connect(db) as con:
        con.register("c_in", contacts)
        con.register("t_in", orders)
        con.execute("INSERT INTO contacts BY NAME SELECT * FROM c_in")
        con.execute("INSERT INTO transactions BY NAME SELECT * FROM t_in")
        duck = con.execute(dose_cells_sql(top=10, d=DUCKDB)).df()
        duck_recent = con.execute(recent_contacts_sql(recent_months=3, top=10, d=DUCKDB)).df()
    spark.createDataFrame(contacts.astype({"occurred_at": "datetime64[us]"})).createOrReplaceTempView("contacts")
    spark.createDataFrame(orders.astype({"occurred_at": "datetime64[us]"})).createOrReplaceTempView("transactions")
    cells = spark.sql(dose_cells_sql(top=10, d=SPARK)).toPandas()
    recent = spark.sql(recent_contacts_sql(recent_months=3, top=10, d=SPARK)).toPandas()

    def tidy(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
        if "month" in frame:
            frame = frame.assign(month=pd.to_datetime(frame["month"]))
        return frame.sort_values(keys).reset_index(drop=True)

    assert len(duck) > 300
    pd.testing.assert_frame_equal(tidy(cells, KEYS), tidy(duck, KEYS), check_dtype=False)
    pd.testing.assert_frame_equal(tidy(recent, ["customer_id"]), tidy(duck_recent, ["customer_id"]), check_dtype=False)
