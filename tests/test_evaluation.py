"""Holdout comparison and cumulative tracking against a simulated base with known truth, plus the
plots and the ``patron evaluate`` command."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, timedelta

import numpy as np
import pytest

import patron
from patron.value.evaluation import cumulative_tracking, holdout_comparison
from patron.value.scoring import fit_model
from patron.value.simulate import simulate_transactions

FORECAST_REL_TOLERANCE = 0.08
"""A correctly specified BG/NBD forecasts a 20,000-customer cohort's total holdout purchases to a
few percent (heterogeneity noise is ~2-3% of the total here; daily merging adds a small bias)."""

START = date(2024, 1, 1)
CAL_END = START + timedelta(days=272)  # 39 weeks
HOLD_END = START + timedelta(days=545)  # 78 weeks


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    db = str(tmp_path_factory.mktemp("sim") / "sim.duckdb")
    table = simulate_transactions(20_000, seed=7, start=START.isoformat(), cohort_days=84, observation_days=546)
    patron.ingest(table, db=db)
    summary = patron.summary(db, period="W", end=CAL_END, holdout_end=HOLD_END)
    return db, summary, fit_model("bgnbd", summary)


def test_holdout_forecast_matches_what_simulated_customers_did(simulated):
    _, summary, model = simulated
    comp = holdout_comparison(model, summary)
    assert comp.customers == len(summary) == int(comp.by_frequency["customers"].sum())
    assert comp.actual_total == summary["frequency_holdout"].sum()
    assert abs(comp.predicted_total / comp.actual_total - 1) < FORECAST_REL_TOLERANCE
    # Per bucket, more calibration purchases mean more holdout purchases, in data and model alike.
    assert np.all(np.diff(comp.by_frequency["actual"].to_numpy()[:4]) > 0)
    assert np.all(np.diff(comp.by_frequency["predicted"].to_numpy()[:4]) > 0)
    assert 0 < comp.mae < comp.rmse


def test_cumulative_tracking_follows_the_simulated_cohort(simulated):
    db, summary, model = simulated
    track = cumulative_tracking(model, db, start=START, end=HOLD_END, unit="W")
    assert len(track) == 78
    assert track["actual"].iloc[38] == pytest.approx(summary["frequency"].sum(), rel=0.01)
    assert np.all(np.diff(track["actual"]) >= 0) and np.all(np.diff(track["expected"]) >= 0)
    final = track.iloc[-1]
    assert abs(final["expected"] / final["actual"] - 1) < FORECAST_REL_TOLERANCE


def test_evaluate_command_writes_plots_and_html(tmp_path, simulated):
    db, _, _ = simulated
    proc = subprocess.run(
        [sys.executable, "-m", "patron", "evaluate", "--db", db, "--end", CAL_END.isoformat(), "--holdout-end", HOLD_END.isoformat(), "--model", "bgnbd", "--plots", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "MAE" in proc.stdout
    for name in ("holdout", "tracking", "frequency_recency", "probability_alive"):
        assert (tmp_path / f"bgnbd_{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (tmp_path / "evaluation.html").read_text()
    assert page.count("data:image/png;base64,") == 4 and "http" not in page.replace("http-equiv", "")
