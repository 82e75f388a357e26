"""Holdout comparison and cumulative tracking against a simulated base with known truth, plus the
plots and the ``patron evaluate`` command."""

from __future__ import annotations

import re
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


def _evaluate(tmp_path, db, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "patron", "evaluate", "--db", db, "--end", CAL_END.isoformat(), "--holdout-end", HOLD_END.isoformat(),
         "--model", "bgnbd", *extra], capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )


def test_evaluate_command_writes_plotly_html_by_default(tmp_path, simulated):
    db, _, _ = simulated
    proc = _evaluate(tmp_path, db)
    assert proc.returncode == 0, proc.stderr
    assert "MAE" in proc.stdout and "evaluation.html" in proc.stdout
    page = (tmp_path / "evaluation.html").read_text()
    assert page.count('class="plotly-graph-div"') == 4  # holdout, tracking, frequency-recency, P(alive)
    assert "<img" not in page and not list(tmp_path.glob("*.png"))  # no PNG, embedded or written
    scripts = re.findall(r"<script[^>]*\bsrc=", page)
    assert scripts == []  # plotly.js inlined: nothing fetched, opens offline


def test_evaluate_command_writes_png_files_behind_a_flag(tmp_path, simulated):
    db, _, _ = simulated
    proc = _evaluate(tmp_path, db, "--out", str(tmp_path / "e.html"), "--png", str(tmp_path / "png"))
    assert proc.returncode == 0, proc.stderr
    for name in ("holdout", "tracking", "frequency_recency", "probability_alive"):
        assert (tmp_path / "png" / f"bgnbd_{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "e.html").read_text().count('class="plotly-graph-div"') == 4


def test_plotly_evaluation_figures_draw_the_results(simulated):
    from patron.report.evaluation_section import model_figures

    db, summary, model = simulated
    comp = holdout_comparison(model, summary)
    track = cumulative_tracking(model, db, start=START, end=HOLD_END, unit="W")
    T = float(summary["T"].max())
    figs = dict(model_figures("bgnbd", model, comp, track, T=T))
    holdout = figs["bgnbd_holdout"]
    assert list(holdout.data[0].x) == comp.by_frequency["frequency"].tolist()
    assert list(holdout.data[0].y) == comp.by_frequency["actual"].tolist()
    assert list(holdout.data[1].y) == comp.by_frequency["predicted"].tolist()
    tracking = figs["bgnbd_tracking"]
    assert list(tracking.data[0].y) == track["actual"].tolist() and list(tracking.data[1].y) == track["expected"].tolist()
    assert tracking.layout.shapes[0].x0 == T  # calibration end marked
    alive = figs["bgnbd_probability_alive"].data[0]
    z = np.asarray(alive.z, dtype=float)
    # a cell checked against the model itself: 3 repeat purchases, the last at recency tx
    row, col = 3, 30
    expected = float(model.probability_alive(np.array([3.0]), np.array([alive.x[col]]), np.array([T]))[0])
    assert z[row, col] == pytest.approx(expected, rel=1e-12)
    assert np.isnan(z[0, 1:]).all() and not np.isnan(z[0, 0])  # frequency 0 has recency 0 only
