"""Acquisition cohorts on constructed histories (hand-counted) and on CDNOW (against pandas)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from patron.cli.demo import CDNOW_SAMPLE_COLUMNS
from patron.data.datasets import data_path, load_cdnow
from patron.data.dialect import SPARK
from patron.data.ingest import ingest
from patron.errors import InputError
from patron.relationship.cohorts import cohorts, cohorts_sql, retention_matrix

EXACT = 1e-12
"""Tolerance for ratios of small integers."""

HISTORY = [
    # cohort January 2024: a, b, d
    ("a", "2024-01-31T23:30:00", 10.0),  # last minute of January (UTC) -> January
    ("a", "2024-02-01T00:00:00", 20.0),  # first minute of February -> period 1
    ("b", "2024-01-01", 5.0),
    ("b", "2024-03-31", 7.0),            # last day of March -> period 2
    ("d", "2024-01-15", 1.0),
    ("d", "2024-01-20", 2.0),            # same month twice: active once
    ("d", "2024-02-29", 4.0),
    # cohort February 2024: c, e
    ("c", "2024-02-29", 3.0),
    ("e", "2023-12-31", -5.0),           # a refund does not make December e's cohort
    ("e", "2024-02-01", 8.0),
    # cohort March 2024: f
    ("f", "2024-03-01", 6.0),
]


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "c.duckdb")
    frame = pd.DataFrame(HISTORY, columns=["customer_id", "occurred_at", "amount"])
    ingest(frame, kind="transactions", db=path)
    return path


def cell(frame: pd.DataFrame, cohort: str, period: int) -> pd.Series:
    rows = frame[(frame["cohort"] == date.fromisoformat(cohort)) & (frame["period"] == period)]
    assert len(rows) == 1, (cohort, period)
    return rows.iloc[0]


def test_monthly_cohorts_by_hand(db):
    f = cohorts(db)  # as of the last transaction, 2024-03-31
    assert [(str(c), p) for c, p in zip(f["cohort"], f["period"], strict=True)] == [
        ("2024-01-01", 0), ("2024-01-01", 1), ("2024-01-01", 2), ("2024-02-01", 0), ("2024-02-01", 1), ("2024-03-01", 0)]
    jan0, jan1, jan2 = (cell(f, "2024-01-01", p) for p in (0, 1, 2))
    assert (jan0["customers"], jan0["active"], jan1["active"], jan2["active"]) == (3, 3, 2, 1)
    assert jan1["retention"] == pytest.approx(2 / 3, abs=EXACT) and jan2["retention"] == pytest.approx(1 / 3, abs=EXACT)
    # revenue: period 0 = 10 + 5 + 1 + 2, period 1 = 20 + 4, period 2 = 7
    assert (jan0["revenue"], jan1["revenue"], jan2["revenue"]) == (18.0, 24.0, 7.0)
    assert jan2["cumulative_revenue_per_customer"] == pytest.approx((18 + 24 + 7) / 3, abs=EXACT)
    feb0, feb1 = cell(f, "2024-02-01", 0), cell(f, "2024-02-01", 1)
    assert (feb0["customers"], feb0["active"], feb0["revenue"]) == (2, 2, 11.0)
    assert (feb1["active"], feb1["retention"], feb1["revenue"]) == (0, 0.0, 0.0)
    assert feb1["cumulative_revenue_per_customer"] == pytest.approx(5.5, abs=EXACT)
    assert cell(f, "2024-03-01", 0)["customers"] == 1
    assert f["complete"].all()  # 2024-03-31 ends March


def test_as_of_cuts_orders_and_marks_the_partial_period(db):
    f = cohorts(db, as_of="2024-03-30")
    jan2 = cell(f, "2024-01-01", 2)
    assert jan2["active"] == 0 and not jan2["complete"]  # b's order on the 31st is after as_of
    assert cell(f, "2024-01-01", 1)["complete"]
    g = cohorts(db, as_of="2024-01-31")
    assert len(g) == 1 and cell(g, "2024-01-01", 0)["customers"] == 3 and cell(g, "2024-01-01", 0)["revenue"] == 18.0


def test_weekly_and_quarterly(db):
    w = cohorts(db, freq="W", as_of="2024-01-21")  # a Sunday: ends its ISO week
    # b buys on Monday 2024-01-01; d on Monday 2024-01-15 and Saturday 2024-01-20 (the same week)
    assert list(map(str, w["cohort"].unique())) == ["2024-01-01", "2024-01-15"]
    assert list(w["period"]) == [0, 1, 2, 0]
    assert list(w["active"]) == [1, 0, 0, 1] and cell(w, "2024-01-15", 0)["revenue"] == 3.0
    assert w["complete"].all()
    q = cohorts(db, freq="q")
    assert list(map(str, q["cohort"].unique())) == ["2024-01-01"]
    assert cell(q, "2024-01-01", 0)["customers"] == 6 and cell(q, "2024-01-01", 0)["revenue"] == 66.0


def test_retention_matrix(db):
    m = retention_matrix(cohorts(db))
    assert list(m.columns) == [0, 1, 2] and len(m) == 3
    assert m.loc[date(2024, 1, 1), 1] == pytest.approx(2 / 3) and np.isnan(m.loc[date(2024, 3, 1), 1])
    assert list(retention_matrix(cohorts(db), max_periods=1).columns) == [0, 1]
    rev = retention_matrix(cohorts(db), value="revenue")
    assert rev.loc[date(2024, 2, 1), 0] == 11.0
    with pytest.raises(InputError, match="no column 'churn'"):
        retention_matrix(cohorts(db), value="churn")


def test_bad_freq(db):
    with pytest.raises(InputError, match=r"^freq must be one of"):
        cohorts(db, freq="Y")


def test_sql_is_portable():
    spark = cohorts_sql(date(2024, 3, 31), "Q", SPARK)
    assert "date_trunc('QUARTER'" in spark and "date_diff(" not in spark


@pytest.mark.parametrize("dialect", ["duckdb", "spark"])
def test_sql_snapshot(dialect):
    """If this fails after an intended change, regenerate tests/snapshots/cohorts_*.sql and review the diff."""
    from patron.data.dialect import DIALECTS

    snapshot = Path(__file__).parent / "snapshots" / f"cohorts_{dialect}.sql"
    assert cohorts_sql(date(1997, 9, 30), "M", DIALECTS[dialect]) + "\n" == snapshot.read_text()


def test_cdnow_against_pandas(tmp_path):
    db = str(tmp_path / "cdnow.duckdb")
    ingest(data_path("CDNOW_sample.txt"), kind="transactions", db=db, columns=CDNOW_SAMPLE_COLUMNS, mapping={"occurred_at": "date"}, date_format="%Y%m%d")
    f = cohorts(db)
    # independent: month indexes from the raw transactions with pandas
    t = load_cdnow()
    t = t[t["amount"] >= 0]
    month = t["occurred_at"].dt.year * 12 + t["occurred_at"].dt.month
    t = t.assign(month=month, cohort=month.groupby(t["customer_id"]).transform("min"))
    t["period"] = t["month"] - t["cohort"]
    active = t.groupby(["cohort", "period"])["customer_id"].nunique()
    sizes = t.groupby("cohort")["customer_id"].nunique()
    got = f.assign(ck=pd.to_datetime(f["cohort"]).dt.year * 12 + pd.to_datetime(f["cohort"]).dt.month).set_index(["ck", "period"])
    assert int(sizes.sum()) == 2357 and len(sizes) == 3
    want = active.reindex(got.index, fill_value=0)
    np.testing.assert_array_equal(got["active"].to_numpy(), want.to_numpy())
    assert (got.xs(0, level="period")["retention"] == 1.0).all()
    last = f.sort_values("period").groupby("cohort").tail(1)
    assert float((last["cumulative_revenue_per_customer"] * last["customers"]).sum()) == pytest.approx(float(t["amount"].sum()), rel=1e-12)
