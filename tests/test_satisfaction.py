"""Satisfaction against loyalty behaviour on a constructed history with hand-computed bands and rank
correlation."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from patron.data.ingest import ingest
from patron.relationship.satisfaction import (
    SATISFACTION_COLUMNS,
    feedback_behaviour,
    satisfaction_vs_loyalty,
)

EXACT = 1e-12
"""Tolerance for ratios of small integers."""

TRANSACTIONS = [
    ("a", "2024-01-01", 10.0), ("a", "2024-02-01", 20.0), ("a", "2024-03-01", 30.0),
    ("b", "2024-01-01", 5.0), ("b", "2024-01-15", 5.0),
    ("c", "2024-01-01", 8.0),
    ("d", "2024-01-01", 4.0), ("d", "2024-01-01", 6.0),  # two orders, one day: not returned
]
# e answered but never bought

FEEDBACK = [
    ("a", "2024-01-10", 10, "nps"), ("a", "2024-02-15", 0, "nps"),  # only the first response counts
    ("b", "2024-01-10", 7, "nps"), ("c", "2024-01-10", 3, "nps"), ("d", "2024-01-10", 9, "NPS"),
    ("e", "2024-01-10", 0, "nps"),
    ("a", "2024-01-20", 4.6, "csat"), ("b", "2024-01-20", 2, "csat"), ("c", "2024-03-01", 5, "csat"),
]


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "s.duckdb")
    ingest(pd.DataFrame(TRANSACTIONS, columns=["customer_id", "occurred_at", "amount"]), kind="transactions", db=path)
    return path


def with_feedback(db: str, rows=FEEDBACK) -> str:
    ingest(pd.DataFrame(rows, columns=["customer_id", "occurred_at", "score", "kind"]), kind="feedback", db=db)
    return db


def test_no_feedback_is_an_empty_table(db):
    out = satisfaction_vs_loyalty(db)
    assert out.empty and list(out.columns) == list(SATISFACTION_COLUMNS)


def test_nps_bands_and_rank_correlation(db):
    out = satisfaction_vs_loyalty(with_feedback(db))
    nps = out[out["kind"] == "nps"].set_index("band")
    assert list(nps.index) == ["detractor", "passive", "promoter"]
    assert list(nps["customers"]) == [2, 1, 2]  # detractors c (3), e (0); passive b (7); promoters a (10), d (9)
    assert nps.loc["detractor", "return_rate"] == 0 and nps.loc["detractor", "mean_orders"] == pytest.approx(0.5)
    assert nps.loc["detractor", "mean_spend"] == pytest.approx(4.0)  # (8 + 0) / 2
    assert nps.loc["passive", "return_rate"] == 1
    assert nps.loc["promoter", "return_rate"] == pytest.approx(0.5) and nps.loc["promoter", "mean_orders"] == pytest.approx(2.5)
    # purchases after 2024-01-10 to 2024-03-01 (51 days): a 2, b 1, c 0, d 0, e 0
    per_year = 365.25 / 51
    assert nps.loc["promoter", "mean_purchases_after_per_year"] == pytest.approx(per_year, abs=EXACT)
    # Spearman by hand: score ranks (a..e) 5, 3, 2, 4, 1; purchase ranks 5, 4, 2, 2, 2 (ties averaged)
    # deviations (2, 0, -1, 1, -2) and (2, 1, -1, -1, -1): rho = 6 / sqrt(10 * 8)
    assert nps["spearman_rho"].iloc[0] == pytest.approx(6 / math.sqrt(80), abs=1e-12)
    assert (nps["n_correlated"] == 5).all()


def test_csat_bands_and_a_response_on_the_as_of_day(db):
    out = satisfaction_vs_loyalty(with_feedback(db))
    csat = out[out["kind"] == "csat"].set_index("band")
    assert list(csat.index) == ["2", "5"]  # 4.6 rounds to 5
    assert list(csat["customers"]) == [1, 2]
    # c answered on the as-of day: no follow-up window, left out of the correlation
    assert (csat["n_correlated"] == 2).all() and math.isnan(csat["spearman_rho"].iloc[0])
    fb = feedback_behaviour(db).set_index(["kind", "customer_id"])
    assert fb.loc[("csat", "c"), "days_after"] == 0 and pd.isna(fb.loc[("csat", "c"), "purchases_after_per_year"])
    assert fb.loc[("nps", "a"), "score"] == 10 and fb.loc[("nps", "a"), "purchases_after"] == 2


def test_other_kinds_raw_or_quartiles(db):
    rows = [(c, "2024-01-05", s, "ces") for c, s in zip("abcd", (1, 2, 2, 3), strict=True)]
    rows += [(c, "2024-01-05", s, "effort") for c, s in zip("abcde", (1, 2, 3, 4, 5), strict=True)]
    rows += [(f"x{i}", "2024-01-05", float(i), "wide") for i in range(8)]
    out = satisfaction_vs_loyalty(with_feedback(db, rows))
    assert list(out.loc[out["kind"] == "ces", "band"]) == ["1", "2", "3"]
    assert list(out.loc[out["kind"] == "ces", "customers"]) == [1, 2, 1]
    wide = out[out["kind"] == "wide"]
    assert len(wide) == 4 and list(wide["customers"]) == [2, 2, 2, 2] and wide["band"].iloc[0].startswith("q1")
