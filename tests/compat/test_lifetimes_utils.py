"""patron.compat.lifetimes.utils: summaries from transactions (hand-computed cases, the published
CDNOW summary and its spend statistics), holdout splits, alive paths, tracking against the BTYD
walkthrough, lifetimes' CLV convention and input checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import patron.compat.lifetimes as lifetimes
from patron.compat.lifetimes import utils
from patron.compat.lifetimes.datasets import load_cdnow_summary, load_dataset, load_transaction_data


@pytest.fixture
def orders():
    """Customer 1 (integer ids): Sun 2020-03-01 (10), Wed 03-04 twice (5 + 7), Tue 03-10 (20);
    customer 2: Thu 03-05 (8); customer 3: Thu 03-12 (4)."""
    return pd.DataFrame({
        "id": [1, 1, 2, 1, 1, 3],
        "when": ["2020-03-04", "2020-03-01", "2020-03-05", "2020-03-10", "2020-03-04", "2020-03-12"],
        "value": [5.0, 10.0, 8.0, 20.0, 7.0, 4.0],
    })


def test_daily_summary_by_hand(orders):
    s = utils.summary_data_from_transaction_data(orders, "id", "when", observation_period_end="2020-03-15")
    expected = pd.DataFrame({"frequency": [2.0, 0.0, 0.0], "recency": [9.0, 0.0, 0.0], "T": [14.0, 10.0, 3.0]},
                            index=pd.Index([1, 2, 3], name="id"))
    pd.testing.assert_frame_equal(s, expected)
    assert s.index.dtype == np.int64


def test_weekly_monthly_hourly_and_multiplier(orders):
    weekly = utils.summary_data_from_transaction_data(orders, "id", "when", observation_period_end="2020-03-15", freq="W")
    # ISO weeks: 03-01 is in the week of 02-24, 03-04/05 of 03-02, 03-10/12/15 of 03-09
    assert weekly.loc[1].tolist() == [2.0, 2.0, 2.0] and weekly.loc[2].tolist() == [0.0, 0.0, 1.0]
    weeks = utils.summary_data_from_transaction_data(orders, "id", "when", observation_period_end="2020-03-15",
                                                     freq="D", freq_multiplier=7)
    assert weeks.loc[1].tolist() == [2.0, 9 / 7, 2.0]
    hourly = utils.summary_data_from_transaction_data(orders, "id", "when", observation_period_end="2020-03-15", freq="h")
    assert hourly.loc[1].tolist() == [2.0, 9 * 24.0, 14 * 24.0]
    with pytest.raises(ValueError, match="freq"):
        utils.summary_data_from_transaction_data(orders, "id", "when", freq="Q")


def test_monetary_value_and_first_transaction(orders):
    s = utils.summary_data_from_transaction_data(orders, "id", "when", "value", observation_period_end="2020-03-15")
    assert s.loc[1, "monetary_value"] == (12.0 + 20.0) / 2 and s.loc[2, "monetary_value"] == 0.0
    first = utils.summary_data_from_transaction_data(orders, "id", "when", "value", observation_period_end="2020-03-15",
                                                     include_first_transaction=True)
    assert first.loc[1, "frequency"] == 3.0 and first.loc[1, "monetary_value"] == (10.0 + 12.0 + 20.0) / 3
    shuffled = orders.sample(frac=1.0, random_state=4)
    pd.testing.assert_frame_equal(s, utils.summary_data_from_transaction_data(
        shuffled, "id", "when", "value", observation_period_end="2020-03-15"))


def test_string_ids_and_datetime_format(orders):
    text = orders.assign(id=orders["id"].map({1: "x", 2: "y", 3: "z"}), when=orders["when"].str.replace("-", ""))
    s = utils.summary_data_from_transaction_data(text, "id", "when", observation_period_end="20200315", datetime_format="%Y%m%d")
    assert list(s.index) == ["x", "y", "z"] and s.loc["x", "T"] == 14.0


def test_cdnow_summary_from_transactions_matches_the_published_one():
    """The CDNOW sample summarised to 1997-09-30 in days / 7 equals FHL 2005's summary file, and
    the repeat customers' mean spend has the statistics of FHL 2005 ("RFM and CLV", section 3):
    946 customers, mean $35, sd $30, median $27, from $3 to $300."""
    tx = load_dataset("CDNOW_sample.txt", header=None, sep=r"\s+",
                      names=["master_id", "id", "date", "cds", "spent"], dtype={"date": str})
    tx = tx[tx["date"] < "19971001"]
    s = utils.summary_data_from_transaction_data(tx, "id", "date", "spent", datetime_format="%Y%m%d",
                                                 observation_period_end="19970930", freq="D", freq_multiplier=7)
    published = load_cdnow_summary().set_index("ID")
    assert (s["frequency"] == published["frequency"]).all()
    np.testing.assert_allclose(s["recency"], published["recency"], atol=0.005 + 1e-9)
    np.testing.assert_allclose(s["T"], published["T"], atol=0.005 + 1e-9)
    spend = s.loc[s["frequency"] > 0, "monetary_value"].describe()
    assert [round(spend[k]) for k in ("count", "mean", "std", "min", "50%", "max")] == [946, 35, 30, 3, 27, 300]


def test_calibration_and_holdout(orders):
    out = utils.calibration_and_holdout_data(orders, "id", "when", "2020-03-05", observation_period_end="2020-03-15",
                                             monetary_value_col="value")
    assert list(out.columns) == ["frequency_cal", "recency_cal", "T_cal", "monetary_value_cal", "frequency_holdout",
                                 "monetary_value_holdout", "duration_holdout"]
    assert out.loc[1].tolist() == [1.0, 3.0, 4.0, 12.0, 1.0, 20.0, 10.0]
    assert out.loc[2].tolist() == [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 10.0]
    with pytest.raises(KeyError):
        out.loc[3]  # first purchase in the holdout
    boundary = utils.calibration_and_holdout_data(orders, "id", "when", "2020-03-04", observation_period_end="2020-03-10")
    assert boundary.loc[1, ["frequency_cal", "frequency_holdout"]].tolist() == [1.0, 1.0]  # both ends inclusive
    assert list(boundary.index) == [1]
    weekly = utils.calibration_and_holdout_data(orders, "id", "when", "2020-03-05", observation_period_end="2020-03-15", freq="W")
    assert weekly.loc[1].tolist() == [1.0, 1.0, 1.0, 1.0, 1.0]  # the week of 03-02 holds the calibration end
    other_index = orders.set_axis(np.random.default_rng(1).integers(0, 3, len(orders)))
    pd.testing.assert_frame_equal(utils.calibration_and_holdout_data(
        other_index, "id", "when", "2020-03-05", observation_period_end="2020-03-15"),
        utils.calibration_and_holdout_data(orders, "id", "when", "2020-03-05", observation_period_end="2020-03-15"))
    with pytest.raises(ValueError, match="There is no data available"):
        utils.calibration_and_holdout_data(orders, "id", "when", "2019-02-01", observation_period_end="2019-02-07")


def test_purchases_in_one_period_count_once():
    same_day = pd.DataFrame({"id": [1, 1], "t": ["2015-01-01", "2015-01-01"]})
    assert utils.summary_data_from_transaction_data(same_day, "id", "t", freq="W").loc[1, "frequency"] == 0.0


@pytest.fixture(scope="module")
def example():
    tx = load_transaction_data(parse_dates=["date"])
    s = utils.summary_data_from_transaction_data(tx, "id", "date", observation_period_end=tx["date"].max())
    return tx, s, lifetimes.BetaGeoFitter().fit(s["frequency"], s["recency"], s["T"])


def test_alive_path_is_the_probability_alive_of_each_age(example):
    tx, s, bgf = example
    one = tx[tx["id"] == 33]
    path = utils.calculate_alive_path(bgf, one, "date", 205)
    assert len(path) == 206 and path[0] == 1
    days = (one["date"] - one["date"].min()).dt.days.drop_duplicates().sort_values().to_numpy()
    for age in (0, 10, 100, 205, int(s.loc[33, "T"])):
        seen = days[days <= age]
        want = bgf.conditional_probability_alive(len(seen) - 1, seen.max(), age)[0]
        assert path[age] == pytest.approx(want, rel=1e-12)
    freq, rec, T = s.loc[33]
    assert path[int(T)] == bgf.conditional_probability_alive(freq, rec, T)


def test_clv_follows_lifetimes_convention(example):
    """Month 1 with no discount is the expected purchases in the next 30 days; a rate of 100% halves
    it; two months add the second month's purchases, discounted once more."""
    _, s, bgf = example
    head = s.head()
    one = pd.Series(np.ones(len(head)), index=head.index)
    month = bgf.predict(30, head["frequency"], head["recency"], head["T"])
    np.testing.assert_allclose(utils._customer_lifetime_value(bgf, head["frequency"], head["recency"], head["T"], one,
                                                              time=1, discount_rate=0.0), month, rtol=1e-12)
    np.testing.assert_allclose(utils._customer_lifetime_value(bgf, head["frequency"], head["recency"], head["T"], one,
                                                              time=1, discount_rate=1.0), month / 2, rtol=1e-12)
    second = bgf.predict(60, head["frequency"], head["recency"], head["T"]) - month
    np.testing.assert_allclose(utils._customer_lifetime_value(bgf, head["frequency"], head["recency"], head["T"], one,
                                                              time=2, discount_rate=1.0), month / 2 + second / 4, rtol=1e-12)
    # lifetimes 0.11.3 run side by side: 30-day predictions of the first five customers
    np.testing.assert_allclose(month, [0.016053, 0.021171, 0.030461, 0.031686, 0.001607], atol=1e-5)


@pytest.fixture(scope="module")
def cdnow_tracking():
    tx = load_dataset("CDNOW_sample.txt", header=None, sep=r"\s+", names=["master_id", "id", "date", "cds", "spent"])
    s = utils.summary_data_from_transaction_data(tx, "id", "date", datetime_format="%Y%m%d", freq="D",
                                                 freq_multiplier=7, observation_period_end="19970930")
    model = lifetimes.ParetoNBDFitter().fit(s["frequency"], s["recency"], s["T"])
    return tx, utils.expected_cumulative_transactions(model, tx, "date", "id", 25 * 7, "%Y%m%d", "D",
                                                      freq_multiplier=7)


def test_tracking_matches_the_btyd_walkthrough(cdnow_tracking):
    """BTYD walkthrough (Pareto/NBD on CDNOW): weeks 20-25 of cumulative and weekly repeat purchases."""
    _, cum = cdnow_tracking
    assert len(cum) == 25 and list(cum.columns) == ["actual", "predicted"]
    np.testing.assert_array_equal(cum["actual"].iloc[19:25], [1359, 1414, 1484, 1517, 1573, 1672])
    np.testing.assert_array_equal(cum["predicted"].iloc[19:25].round(), [1309, 1385, 1460, 1533, 1604, 1674])
    inc = cum.diff()
    np.testing.assert_array_equal(inc["actual"].iloc[19:25], [73, 55, 70, 33, 56, 99])
    np.testing.assert_allclose(inc["predicted"].iloc[19:25], [78.31, 76.42, 74.65, 72.98, 71.41, 69.93], atol=0.01)


def test_tracking_by_day_with_dates(cdnow_tracking):
    tx, _ = cdnow_tracking
    model = lifetimes.BetaGeoFitter().fit(*utils.summary_data_from_transaction_data(
        tx, "id", "date", datetime_format="%Y%m%d", observation_period_end="19970930").T.to_numpy())
    cum = utils.expected_cumulative_transactions(model, tx, "date", "id", 14, "%Y%m%d", "D", set_index_date=True)
    assert [str(p) for p in cum.index[-4:]] == ["1997-01-11", "1997-01-12", "1997-01-13", "1997-01-14"]
    # counted in the raw file: repeat purchase days on 1997-01-02 .. 01-14, cumulated
    raw = tx.assign(day=pd.to_datetime(tx["date"].astype(str), format="%Y%m%d")).drop_duplicates(["id", "day"])
    firsts = raw.groupby("id")["day"].transform("min")
    repeats = raw[(raw["day"] > firsts)].groupby("day").size()
    want = [int(repeats[repeats.index <= pd.Timestamp(d)].sum()) for d in ("1997-01-11", "1997-01-12", "1997-01-13", "1997-01-14")]
    assert cum["actual"].iloc[-4:].tolist() == want
    weekly = utils.expected_cumulative_transactions(model, tx, "date", "id", 10, "%Y%m%d", freq="W")
    daily = utils.expected_cumulative_transactions(model, tx, "date", "id", 10, "%Y%m%d", freq="D")
    assert (weekly["actual"].to_numpy() >= daily["actual"].to_numpy()).all()


def test_input_checks_and_scale():
    f, r, T, m = np.array([0, 1, 2]), np.array([0, 1, 10]), np.array([5, 6, 15]), np.array([2.3, 490, 33.33])
    assert utils._check_inputs(f, r, T, m) is None
    for bad in ((f, T + 1, T), (f, np.array([1, 1, 10]), T), (np.array([0, 0.5, 2]), r, T)):
        with pytest.raises(ValueError):
            utils._check_inputs(*bad)
    with pytest.raises(ValueError):
        utils._check_inputs(f, r, T, np.array([0.0, 490, 33.33]))
    assert utils._scale_time(np.arange(200.0)) == 1.0 / 199
