"""Uplift models and their evaluation (patron.contact.effect.uplift, .learners, .qini).

Expected values come from hand-worked Qini curves (arithmetic in the comments) and from simulated
experiments whose heterogeneous effect is known: segment A responds +10 percentage points to the
campaign, segment B not at all (patron.contact.effect.simulate)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patron.cli import main
from patron.contact.effect import (
    INCREMENTAL_VALUE_COLUMNS,
    fit_uplift,
    qini_coefficient,
    qini_curve,
    simulate_experiment,
    uplift_at_k,
)
from patron.data.store import connect
from patron.errors import NoDataError

EXACT = 1e-12
"""Tolerance of exact arithmetic."""

HETEROGENEITY = {"A": 0.10, "B": 0.0}
"""True lift of each segment, in response probability."""


def load(db: str, contacts: pd.DataFrame, transactions: pd.DataFrame) -> None:
    """Write contacts and transactions straight into the store."""
    with connect(db) as con:
        con.register("c_in", contacts)
        con.register("t_in", transactions)
        con.execute("INSERT INTO contacts BY NAME SELECT * FROM c_in")
        con.execute("INSERT INTO transactions BY NAME SELECT * FROM t_in")


def test_qini_by_hand() -> None:
    # sorted by score: (T, 1), (C, 0), (T, 0), (C, 1)
    # Q(k) = r_t - r_c n_t / n_c: k=1: 1 (no control yet), k=2: 1, k=3: 1, k=4: 1 - 1*2/2 = 0
    score, treated, y = [1, 3, 2, 4], [False, False, True, True], [1, 0, 0, 1]
    c = qini_curve(score, treated, y)
    assert c["fraction"].tolist() == [0, 0.25, 0.5, 0.75, 1.0]
    assert c["qini"].tolist() == pytest.approx([0, 0.25, 0.25, 0.25, 0], abs=EXACT)
    assert c["random"].tolist() == pytest.approx([0] * 5, abs=EXACT)
    # trapezoids: .25*(0+.25)/2 + .25*(.25+.25)/2 + .25*(.25+.25)/2 + .25*(.25+0)/2
    #           = .03125 + .0625 + .0625 + .03125 = 0.1875
    assert qini_coefficient(score, treated, y) == pytest.approx(0.1875, abs=EXACT)
    assert uplift_at_k(score, treated, y, 0.5) == pytest.approx(1.0, abs=EXACT)  # top 2: T bought, C did not
    assert np.isnan(uplift_at_k(score, treated, y, 0.25))  # top 1 has no control
    assert uplift_at_k(score, treated, y, 1.0) == pytest.approx(0.0, abs=EXACT)  # 1/2 - 1/2


def test_constant_score_is_the_random_line() -> None:
    rng = np.random.default_rng(0)
    treated, y = rng.random(500) < 0.6, rng.random(500) < 0.2
    assert qini_coefficient(np.zeros(500), treated, y) == pytest.approx(0.0, abs=EXACT)
    assert len(qini_curve(np.zeros(500), treated, y)) == 2  # one step across the tie


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(20, 200))
def test_qini_depends_only_on_the_ordering(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    score, treated, y = rng.normal(size=n), rng.random(n) < 0.5, rng.random(n) < 0.3
    q = qini_coefficient(score, treated, y)
    assert qini_coefficient(np.exp(3 * score) + 7, treated, y) == pytest.approx(q, abs=1e-12)
    # the curve ends at the whole-set incremental responders, whatever the score
    end = y[treated].sum() - y[~treated].sum() * treated.sum() / max((~treated).sum(), 1)
    assert qini_curve(score, treated, y)["qini"].iloc[-1] * n == pytest.approx(end if (~treated).any() else y[treated].sum(), abs=1e-9)


@pytest.fixture(scope="module")
def experiment(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict]:
    db = str(tmp_path_factory.mktemp("uplift") / "u.duckdb")
    contacts, orders, truth = simulate_experiment(
        12000, base_rate=0.10, heterogeneity=HETEROGENEITY, holdout_fraction=0.4, seed=7)
    load(db, contacts, orders)
    return db, truth


def _segment_means(res, truth: dict) -> pd.Series:
    seg = truth["segments"].set_index("customer_id")["segment"]
    return res.test.assign(segment=res.test["customer_id"].map(seg)).groupby("segment")["uplift"].mean()


def test_t_learner_ranks_the_responsive_segment_first(experiment: tuple[str, dict]) -> None:
    db, truth = experiment
    res = fit_uplift(db, campaign_id="sim")
    means = _segment_means(res, truth)
    assert means["A"] > means["B"] + 0.03  # truth: 0.10 vs 0.00
    assert res.qini_coefficient > 0
    assert res.qini_coefficient > res.qini_random
    assert res.uplift_at_k[0.3] > res.observed_lift_test  # the top 30% respond more than average
    # incremental_value: every customer, value = uplift x value per response
    with connect(db, read_only=True) as con:
        table = con.execute("SELECT * FROM incremental_value").df()
    assert tuple(table.columns) == INCREMENTAL_VALUE_COLUMNS
    assert len(table) == table["customer_id"].nunique() == 12000
    assert table["expected_incremental_value"].to_numpy() == pytest.approx(
        table["uplift"].to_numpy() * res.value_per_response, rel=1e-9)
    seg = truth["segments"].set_index("customer_id")["segment"]
    top = table.nlargest(2400, "uplift")["customer_id"].map(seg)
    assert (top == "A").mean() > 0.8  # the top fifth is mostly the responsive segment


def test_x_learner_with_logistic_base(experiment: tuple[str, dict]) -> None:
    db, truth = experiment
    res = fit_uplift(db, learner="x", base="logistic", write=False, score=False)
    means = _segment_means(res, truth)
    assert means["A"] > means["B"]
    assert res.qini_coefficient > max(res.qini_random, 0.0)
    assert res.scores.empty


def test_random_scores_have_no_qini_on_average(experiment: tuple[str, dict]) -> None:
    db, _ = experiment
    res = fit_uplift(db, base="logistic", write=False, score=False)
    t = res.test
    rng = np.random.default_rng(1)
    random_q = [qini_coefficient(rng.random(len(t)), t["in_control"] == 0, t["responded"]) for _ in range(200)]
    # a random score's Qini is centred on 0; the model's is far above the random spread
    assert abs(np.mean(random_q)) < 3 * np.std(random_q) / np.sqrt(200)
    assert res.qini_coefficient > np.quantile(random_q, 0.99)


def test_too_few_data_is_a_clear_error(db: str) -> None:
    contacts, orders, _ = simulate_experiment(100, holdout_fraction=0.2, seed=1)
    load(db, contacts, orders)
    with pytest.raises(NoDataError, match=r"arm has .* exposures .* uplift_min_per_arm"):
        fit_uplift(db)


def test_cli_uplift_json(experiment: tuple[str, dict], capsys: pytest.CaptureFixture[str]) -> None:
    db, _ = experiment
    assert main(["contact-effect", "--db", db, "--uplift", "--base", "logistic", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["uplift"]["qini_coefficient"] > 0
    assert data["uplift"]["customers_scored"] == 12000
    assert set(data["uplift"]["uplift_at_k"]) == {"10%", "20%", "30%", "50%"}
    assert main(["contact-effect", "--db", db, "--uplift", "--learner", "z"]) == 2
    capsys.readouterr()
    assert main(["contact-effect", "--db", db, "--uplift", "--base", "logistic"]) == 0
    assert "Qini coefficient" in capsys.readouterr().out


def test_report_figures_and_section(experiment: tuple[str, dict]) -> None:
    from patron.contact.effect import report_figures
    from patron.report.contact_effect_section import contact_effect_section

    db, _ = experiment
    figures = dict(report_figures(db))
    assert list(figures) == ["campaign_lift", "qini", "dose_response"]
    lift_trace = figures["campaign_lift"].data[0]
    assert list(lift_trace.x) == ["sim"] and lift_trace.error_y.array is not None
    assert figures["qini"].data[0].x[-1] == pytest.approx(100.0)

    from types import SimpleNamespace

    ctx = SimpleNamespace(config={"contact_effect": {"uplift_min_per_arm": 10_000_000}})  # no uplift model: a note
    sec = contact_effect_section(db, ctx)
    assert sec is not None and len(sec.figures) == 2
    assert any("uplift" in note for note in sec.notes)
