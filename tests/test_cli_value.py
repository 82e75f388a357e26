"""``patron fit`` and ``patron score`` on CDNOW, checked against published estimates."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from patron.data.datasets import data_path

PUBLISHED_REL_TOLERANCE = 1e-3
"""Published estimates are given to 4-5 significant digits."""

BGNBD_CDNOW = {"r": 0.2426, "alpha": 4.4136, "a": 0.7929, "b": 2.4259}
"""Fader, Hardie & Lee (2005), "Counting your customers the easy way", CDNOW sample, 39 weeks."""

GAMMA_GAMMA_CDNOW = {"p": 6.249, "q": 3.745, "v": 15.448}
"""Fader & Hardie (2013), "The Gamma-Gamma model of monetary value", 946 repeat buyers."""

PARETO_CDNOW = {"r": 0.5532, "alpha": 10.578, "s": 0.6062, "beta": 11.669}
"""Fader, Hardie & Lee (2005), CDNOW sample, 39 weeks (LL -9594.98)."""

SBG_HIGH_END = {"alpha": 0.668, "beta": 3.806}
"""Fader & Hardie (2007), "How to project customer retention", high-end segment, 7 years."""

HIGH_END_SURVIVORS = [1000, 869, 743, 653, 593, 551, 517, 491]
"""Fader & Hardie (2007), Table 1: customers still active after each year, high-end segment."""


def patron(*args: str, cwd) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "patron", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.parametrize(
    ("model", "file", "published", "ll"),
    [
        ("bgnbd", "cdnow_customers_summary.csv", BGNBD_CDNOW, -9582.43),
        ("gammagamma", "cdnow_customers_summary_with_transactions.csv", GAMMA_GAMMA_CDNOW, None),
        ("pareto", "cdnow_customers_summary.csv", PARETO_CDNOW, -9594.98),
        ("sbg", "survivors.csv", SBG_HIGH_END, None),
    ],
)
def test_fit_json_matches_published(tmp_path, model, file, published, ll):
    path = data_path(file)
    if model == "sbg":
        path = tmp_path / file
        path.write_text("survivors\n" + "\n".join(map(str, HIGH_END_SURVIVORS)) + "\n")
    proc = patron("fit", model, "--summary", str(path), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert {"model", "params", "std_errors", "log_likelihood", "n_customers", "converged"} <= set(out)
    assert out["converged"] is True
    for k, v in published.items():
        assert abs(out["params"][k] - v) / v < PUBLISHED_REL_TOLERANCE, (k, out["params"][k])
    if ll is not None:
        assert abs(out["log_likelihood"] - ll) < 0.1


def test_fit_reports_missing_columns_in_one_line(tmp_path):
    (tmp_path / "s.csv").write_text("frequency,recency\n1,2\n")
    proc = patron("fit", "bgnbd", "--summary", "s.csv", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "missing column T" in proc.stderr


def test_score_writes_every_customer_and_equity_is_their_sum(tmp_path):
    db = str(tmp_path / "c.duckdb")
    cols = "master_customer_id,customer_id,date,number_of_cds,amount"
    assert patron("ingest", str(data_path("CDNOW_sample.txt")), "--db", db, "--columns", cols, "--map", "occurred_at=date", cwd=tmp_path).returncode == 0
    proc = patron("score", "--db", db, "--end", "1997-09-30", "--horizon", "39", "--draws", "50", "--out", "scores.parquet", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    scores = pd.read_parquet(tmp_path / "scores.parquet")
    assert len(scores) == info["customers"] == 2357
    assert scores["clv"].sum() == pytest.approx(info["customer_equity"], rel=1e-9)
    assert info["customer_equity_lower"] < info["customer_equity"] < info["customer_equity_upper"]
    assert ((scores["clv_lower"] <= scores["clv"] + 1e-9) & (scores["clv"] <= scores["clv_upper"] + 1e-9)).all()
    assert scores["probability_alive"].between(0, 1).all()
