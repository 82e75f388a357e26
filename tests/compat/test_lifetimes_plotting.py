# ruff: noqa: NPY002  - lifetimes' simulations follow np.random.seed: that is what is tested
"""patron.compat.lifetimes.plotting (lifetimes' arguments, titles and labels; values drawn equal
the model's predictions) and generate_data (simulation with known truth)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib import pyplot as plt
from scipy import stats

import patron.compat.lifetimes as lifetimes
from patron.compat.lifetimes import generate_data, plotting, utils
from patron.compat.lifetimes.datasets import load_cdnow_summary, load_transaction_data
from patron.value.models import BetaGeo, BetaGeoBetaBinom, ParetoNBD

SIGMAS = 4.0
"""Monte Carlo checks: within this many standard errors of the truth."""

FHS = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}
BG = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}


@pytest.fixture(scope="module")
def cdnow():
    return load_cdnow_summary()


@pytest.fixture(scope="module")
def bgf(cdnow):
    return lifetimes.BetaGeoFitter().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _labels(ax):
    return ax.title.get_text(), ax.xaxis.get_label().get_text(), ax.yaxis.get_label().get_text()


def test_period_transactions_compares_data_with_a_simulation(bgf, cdnow):
    np.random.seed(0)
    ax = plotting.plot_period_transactions(bgf)
    heights = [p.get_height() for p in ax.patches]
    actual = cdnow["frequency"].value_counts().sort_index().iloc[:7].tolist()
    assert heights[:7] == actual
    # the simulation against the model's own expectation, sum over customers of P(X(T_i) = x) (FHL eq. 8)
    expected = [BetaGeo.from_params(bgf.params_.to_dict()).probability_of_n_purchases(cdnow["T"], x).sum() for x in range(7)]
    sd = np.sqrt(expected)
    assert np.all(np.abs(np.array(heights[7:]) - expected) < SIGMAS * sd + 1)
    assert _labels(ax) == ("Frequency of Repeat Transactions", "Number of Calibration Period Transactions", "Customers")
    assert [t.get_text() for t in ax.legend_.get_texts()] == ["Actual", "Model"]
    plt.close()
    ax = plotting.plot_period_transactions(bgf, max_frequency=12, label=["A", "B"])
    assert len(ax.patches) == 24 and [t.get_text() for t in ax.legend_.get_texts()] == ["A", "B"]


def test_matrices_hold_the_predictions(bgf):
    ax = plotting.plot_frequency_recency_matrix(bgf)
    z = ax.get_images()[0].get_array()
    assert z.shape == (39, 30)
    np.testing.assert_array_equal(z[29, :], bgf.conditional_expected_number_of_purchases_up_to_time(1, np.arange(30.0), 29.0, 38.0))
    assert _labels(ax) == ("Expected Number of Future Purchases for 1 Unit of Time,\nby Frequency and Recency of a Customer",
                           "Customer's Historical Frequency", "Customer's Recency")
    plt.close()
    ax = plotting.plot_frequency_recency_matrix(bgf, T=5, max_frequency=100, max_recency=100)
    assert ax.get_images()[0].get_array().shape == (101, 101) and "for 5 Units of Time" in ax.title.get_text()
    plt.close()
    ax = plotting.plot_probability_alive_matrix(bgf, max_frequency=100)
    z = ax.get_images()[0].get_array()
    assert z.shape == (39, 101)
    np.testing.assert_array_equal(z, bgf.conditional_probability_alive_matrix(max_frequency=100))
    assert ax.title.get_text() == "Probability Customer is Alive,\nby Frequency and Recency of a Customer"


def test_expected_repeat_purchases_curve(bgf):
    ax = plotting.plot_expected_repeat_purchases(bgf, label="BG/NBD")
    solid, dashed = ax.lines[0], ax.lines[1]
    x, y = solid.get_data()
    assert x[0] == 0 and x[-1] == pytest.approx(bgf.data["T"].max())
    np.testing.assert_array_equal(y, bgf.expected_number_of_purchases_up_to_time(x))
    assert dashed.get_linestyle() == "--" and dashed.get_data()[0][-1] == pytest.approx(1.5 * bgf.data["T"].max())
    assert [t.get_text() for t in ax.legend_.get_texts()] == ["BG/NBD"]
    assert _labels(ax) == ("Expected Number of Repeat Purchases per Customer", "Time Since First Purchase", "")


def test_heterogeneity_densities(bgf):
    r, alpha, a, b = bgf._unload_params("r", "alpha", "a", "b")
    ax = plotting.plot_transaction_rate_heterogeneity(bgf)
    x, y = ax.lines[0].get_data()
    np.testing.assert_allclose(y, stats.gamma(r, scale=1 / alpha).pdf(x))
    assert plt.gcf()._suptitle.get_text() == "Heterogeneity in Transaction Rate"
    assert ax.title.get_text() == f"mean: {r / alpha:.3f}, var: {r / alpha ** 2:.3f}"
    plt.close()
    ax = plotting.plot_dropout_rate_heterogeneity(bgf)
    x, y = ax.lines[0].get_data()
    np.testing.assert_allclose(y, stats.beta(a, b).pdf(x))
    assert _labels(ax)[1:] == ("Dropout Probability p", "Density")


@pytest.mark.parametrize("kind", ["frequency_cal", "time_since_last_purchase"])
def test_calibration_vs_holdout(kind):
    tx = load_transaction_data()
    summary = utils.calibration_and_holdout_data(tx, "id", "date", "2014-09-01", "2014-12-31")
    bgf = lifetimes.BetaGeoFitter().fit(summary["frequency_cal"], summary["recency_cal"], summary["T_cal"])
    ax = plotting.plot_calibration_purchases_vs_holdout_purchases(bgf, summary, kind=kind)
    key = summary["frequency_cal"] if kind == "frequency_cal" else summary["T_cal"] - summary["recency_cal"]
    predicted = bgf.predict(summary["duration_holdout"].iloc[0], summary["frequency_cal"], summary["recency_cal"], summary["T_cal"])
    want = pd.DataFrame({"frequency_holdout": summary["frequency_holdout"], "model_predictions": np.asarray(predicted)}) \
        .groupby(key.to_numpy()).mean().iloc[:7]
    np.testing.assert_allclose(ax.lines[0].get_data()[1], want["frequency_holdout"])
    np.testing.assert_allclose(ax.lines[1].get_data()[1], want["model_predictions"])
    assert [t.get_text() for t in ax.legend_.get_texts()] == ["frequency_holdout", "model_predictions"]
    assert ax.title.get_text() == "Actual Purchases in Holdout Period vs Predicted Purchases"


def test_history_and_tracking_plots(bgf):
    tx = load_transaction_data(parse_dates=["date"])
    s = utils.summary_data_from_transaction_data(tx, "id", "date")
    model = lifetimes.BetaGeoFitter().fit(s["frequency"], s["recency"], s["T"])
    ax = plotting.plot_history_alive(model, 200, tx[tx["id"] == 33], "date")
    assert ax.title.get_text() == "History of P_alive"
    np.testing.assert_array_equal(ax.lines[0].get_data()[1], utils.calculate_alive_path(model, tx[tx["id"] == 33], "date", 200))
    plt.close()
    ax = plotting.plot_cumulative_transactions(model, tx, "date", "id", 40, 30)
    assert ax.get_ylabel() == "Cumulative Transactions" and ax.lines[-1].get_xdata()[0] == 30
    plt.close()
    ax = plotting.plot_incremental_transactions(model, tx, "date", "id", 40, 30)
    assert ax.title.get_text() == "Tracking Daily Transactions"


def test_nothing_global_changes_on_import():
    import subprocess
    import sys

    code = ("import sys; import pandas as pd; before = pd.get_option('mode.chained_assignment'); "
            "import patron.compat.lifetimes, patron.compat.lifetimes.plotting, patron.compat.lifetimes.utils; "
            "assert 'matplotlib.pyplot' not in sys.modules; assert pd.get_option('mode.chained_assignment') == before")
    subprocess.run([sys.executable, "-c", code], check=True)


# ----------------------------------------------------------------------------- generate_data
def test_bg_simulation_matches_the_model():
    """Mean repeat purchases of simulated customers = E[X(T)] (FHL eq. 9); P(alive) of the
    simulated customers by history = the model's P(alive)."""
    np.random.seed(11)
    T = 52.0
    sim = generate_data.beta_geometric_nbd_model(T, *BG.values(), size=40_000)
    assert list(sim.columns) == ["frequency", "recency", "T", "lambda", "p", "alive"] and sim.index.name == "customer_id"
    model = BetaGeo.from_params(BG)
    want = float(model.expected_purchases(T))
    assert abs(sim["frequency"].mean() - want) < SIGMAS * sim["frequency"].std() / np.sqrt(len(sim))
    p_alive = model.probability_alive(sim["frequency"], sim["recency"], sim["T"])
    assert abs(sim["alive"].mean() - p_alive.mean()) < SIGMAS * np.sqrt(0.25 / len(sim))


def test_pareto_and_mbg_simulations_match_the_models():
    np.random.seed(12)
    params = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
    sim = generate_data.pareto_nbd_model(39.0, *params.values(), size=40_000)
    want = float(ParetoNBD.from_params(params).expected_purchases(39.0))
    assert abs(sim["frequency"].mean() - want) < SIGMAS * sim["frequency"].std() / np.sqrt(len(sim))
    assert set(sim.columns) >= {"lambda", "mu", "alive"}
    from patron.value.models import ModifiedBetaGeo

    mbg = generate_data.modified_beta_geometric_nbd_model(39.0, 0.525, 6.183, 0.891, 1.614, size=40_000)
    want = float(ModifiedBetaGeo.from_params(r=0.525, alpha=6.183, a=0.891, b=1.614).expected_purchases(39.0))
    assert abs(mbg["frequency"].mean() - want) < SIGMAS * mbg["frequency"].std() / np.sqrt(len(mbg))


def test_bgbb_simulation_alive_and_parameter_recovery():
    np.random.seed(13)
    sim = generate_data.beta_geometric_beta_binom_model(N=6, size=200_000, **FHS)
    assert (sim["frequency"] >= 0).all() and sim["frequency"].max() == 6 and sim["recency"].max() == 6
    model = BetaGeoBetaBinom.from_params(FHS)
    for x, tx in ((0, 0), (2, 4), (6, 6)):
        group = sim[(sim["frequency"] == x) & (sim["recency"] == tx)]
        truth = float(model.probability_alive([x], [tx], [6])[0])
        assert abs(group["alive"].mean() - truth) < SIGMAS * np.sqrt(truth * (1 - truth) / len(group))
    grouped = sim.groupby(["frequency", "recency", "n_periods"])["customer_id"].count().reset_index(name="weights")
    fit = lifetimes.BetaGeoBetaBinomFitter().fit(grouped["frequency"], grouped["recency"], grouped["n_periods"], grouped["weights"])
    z = (fit.params_ - pd.Series(FHS)) / fit.standard_errors_
    assert np.all(np.abs(z) < SIGMAS)


@pytest.mark.parametrize(("T", "freq"), [(100, "D"), ([400, 200, 5, 103, 198, 401], "D"), (100, "h")])
def test_transactions_summarise_back_to_the_simulated_customers(T, freq):
    """Same seed, same customers: the transactions' summary at the simulation's own time unit gives
    T exactly, and frequency and recency (floored) wherever no two purchases share a unit."""
    size = 500 if isinstance(T, int) else len(T)
    np.random.seed(188)
    tx = generate_data.beta_geometric_nbd_model_transactional_data(T, *BG.values(), observation_period_end="2019-1-1",
                                                                   freq=freq, size=size)
    got = utils.summary_data_from_transaction_data(tx, "customer_id", "date", observation_period_end="2019-1-1",
                                                   freq=freq).reset_index(drop=True)
    np.random.seed(188)
    want = generate_data.beta_geometric_nbd_model(T, *BG.values(), size=size).reset_index(drop=True)
    np.testing.assert_array_equal(got["T"], want["T"])
    same = got["frequency"] == want["frequency"]
    assert same.mean() > 0.8 and (got["frequency"] <= want["frequency"]).all()
    np.testing.assert_array_equal(got.loc[same, "recency"], np.floor(want.loc[same, "recency"]))
