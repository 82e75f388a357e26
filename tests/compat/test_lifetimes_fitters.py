"""patron.compat.lifetimes fitters: lifetimes 0.11.3's API with the published figures its own tests
cite (Fader, Hardie & Lee 2005; Fader & Hardie's notes and spreadsheets; the R packages BTYD and
BTYDplus). lifetimes' tests are not copied here: these cover the same behaviours."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import patron.compat.lifetimes as lifetimes
from patron.compat.lifetimes import utils
from patron.compat.lifetimes.datasets import (
    load_cdnow_summary,
    load_cdnow_summary_data_with_monetary_value,
    load_donations,
    load_transaction_data,
)

TWO_DECIMALS = 0.015
"""Published parameters given to 2 decimals (NumPy's ``decimal=2``: within 1.5e-2)."""

THREE_DECIMALS = 0.0005 + 1e-9

SPREADSHEET = 1e-3
"""Figures read from Hardie's spreadsheets (4 significant digits)."""

FHL_CDNOW = (0.243, 4.414, 0.793, 2.426)
"""BG/NBD on CDNOW: Fader, Hardie & Lee (2005), r, alpha, a, b."""


@pytest.fixture(scope="module")
def cdnow():
    return load_cdnow_summary()


@pytest.fixture(scope="module")
def bgf(cdnow):
    return lifetimes.BetaGeoFitter().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])


def test_import_as_lifetimes_and_module_layout():
    import patron.compat.lifetimes.fitters.beta_geo_fitter as bg_module

    assert lifetimes.__version__ == "0.11.3"
    assert bg_module.BetaGeoFitter is lifetimes.BetaGeoFitter
    for name in ("BetaGeoFitter", "ParetoNBDFitter", "ModifiedBetaGeoFitter", "BetaGeoBetaBinomFitter",
                 "GammaGammaFitter"):
        assert name in lifetimes.__all__
    assert repr(lifetimes.BetaGeoFitter()) == "<lifetimes.BetaGeoFitter>"


class TestBetaGeo:
    def test_parameters_match_fhl_2005(self, bgf):
        np.testing.assert_allclose(bgf._unload_params("r", "alpha", "a", "b"), FHL_CDNOW, atol=THREE_DECIMALS)
        assert isinstance(bgf.params_, pd.Series) and list(bgf.params_.index) == ["r", "alpha", "a", "b"]
        assert repr(bgf).startswith("<lifetimes.BetaGeoFitter: fitted with 2357 subjects, a: 0.79, alpha: 4.41")

    def test_summary_intervals_and_variance(self, bgf):
        s = bgf.summary
        assert list(s.columns) == ["coef", "se(coef)", "lower 95% bound", "upper 95% bound"]
        np.testing.assert_allclose(np.diag(bgf.variance_matrix_), bgf.standard_errors_ ** 2)
        np.testing.assert_allclose(bgf.variance_matrix_, bgf.variance_matrix_.T)  # delta method: symmetric
        np.testing.assert_allclose(s["upper 95% bound"] - s["coef"], 1.959964 * s["se(coef)"], rtol=1e-6)

    def test_predictions_match_hardie_spreadsheet(self, bgf):
        # FHL 2005 note / spreadsheet: conditional expectation of a customer (2, 30.43, 38.86) over 39 weeks
        assert bgf.conditional_expected_number_of_purchases_up_to_time(39, 2, 30.43, 38.86) == pytest.approx(1.226, abs=SPREADSHEET)
        times = np.array([0.1429, 1.0, 3.00, 31.8571, 32.00, 78.00])
        np.testing.assert_allclose(bgf.expected_number_of_purchases_up_to_time(times),
                                   [0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576], atol=SPREADSHEET)
        assert bgf.predict(39, 2, 30.43, 38.86) == bgf.conditional_expected_number_of_purchases_up_to_time(39, 2, 30.43, 38.86)

    def test_probability_of_n_purchases_matches_btyd(self):
        bgf = lifetimes.BetaGeoFitter()
        bgf.params_ = pd.Series(dict(zip(("r", "alpha", "a", "b"), FHL_CDNOW, strict=True)))
        assert bgf.probability_of_n_purchases_up_to_time(2, 10) == pytest.approx(1.07869e-07, abs=1e-10)
        assert bgf.probability_of_n_purchases_up_to_time(39, 0) == pytest.approx(0.5737864, abs=1e-6)
        btyd_pmf = [0.0019995214, 0.0015170236, 0.0011633150, 0.0009003148, 0.0007023638, 0.0005517902,
                    0.0004361913, 0.0003467171, 0.0002769613, 0.0002222260]  # BTYD pbgnbd, t = 30, n = 11..20
        got = [bgf.probability_of_n_purchases_up_to_time(30, n) for n in range(11, 21)]
        np.testing.assert_allclose(got, btyd_pmf, rtol=1e-6)

    def test_probability_alive(self, bgf):
        assert bgf.conditional_probability_alive(0, 1, 1) == 1.0
        grid = np.array([[i, j, k] for i in range(0, 100, 10) for j in range(0, 100, 10) for k in range(j, 100, 10)])
        p = bgf.conditional_probability_alive(grid[:, 0], grid[:, 1], grid[:, 2])
        assert np.all((p >= 0) & (p <= 1))
        old = np.seterr(all="raise")
        try:
            assert bgf.conditional_probability_alive(frequency=1000, recency=10, T=100) == 0.0
        finally:
            np.seterr(**old)

    def test_alive_matrix_equals_single_predictions(self, bgf):
        Z = bgf.conditional_probability_alive_matrix()
        max_t = int(bgf.data["T"].max())
        assert Z.shape == (max_t + 1, int(bgf.data["frequency"].max()) + 1) and Z[0][0] == 1
        for t_x in range(0, Z.shape[0], 7):
            for x in range(0, Z.shape[1], 3):
                assert Z[t_x][x] == bgf.conditional_probability_alive(x, t_x, max_t)

    def test_penalizer_shrinks_towards_zero_as_lifetimes(self, cdnow, bgf):
        f, r, T = cdnow["frequency"], cdnow["recency"], cdnow["T"]
        p1 = bgf.params_
        p2 = lifetimes.BetaGeoFitter(penalizer_coef=0.1).fit(f, r, T).params_
        p3 = lifetimes.BetaGeoFitter(penalizer_coef=10).fit(f, r, T).params_
        assert np.all(p2 < p1) and np.all(p3 < p2)
        # lifetimes 0.11.3 at 0.1 (issue 17): a = 0.129, b = 0.267
        assert p2["a"] == pytest.approx(0.129, abs=THREE_DECIMALS) and p2["b"] == pytest.approx(0.267, abs=THREE_DECIMALS)

    def test_scaling_time_gives_the_same_probabilities(self, cdnow, bgf):
        scaled = lifetimes.BetaGeoFitter().fit(cdnow["frequency"], 10 * cdnow["recency"], 10 * cdnow["T"])
        assert scaled._scale < 1.0
        for x, tx, T in ((1, 1, 2), (1, 2, 10)):
            assert scaled.conditional_probability_alive(x, 10 * tx, 10 * T)[0] == pytest.approx(
                bgf.conditional_probability_alive(x, tx, T)[0], abs=1e-6)

    def test_weights_give_the_same_fit_as_rows(self, cdnow, bgf):
        w = cdnow.assign(weights=1.0).groupby(["frequency", "recency", "T"])["weights"].sum().reset_index()
        assert (w["weights"] > 1).any()
        weighted = lifetimes.BetaGeoFitter().fit(w["frequency"], w["recency"], w["T"], weights=w["weights"])
        np.testing.assert_allclose(weighted.params_, bgf.params_, rtol=1e-6)

    def test_index_and_data(self, cdnow):
        index = range(len(cdnow), 0, -1)
        m = lifetimes.BetaGeoFitter().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"], index=index)
        assert list(m.data.index) == list(index)
        assert list(m.data.columns) == ["frequency", "recency", "T", "weights"]

    @pytest.mark.parametrize("how", ["all", "no data", "no generator", "placeholder"])
    def test_save_and_load(self, tmp_path, bgf, how):
        path = tmp_path / "bgf.pkl"
        kwargs = {"all": {}, "no data": {"save_data": False}, "no generator": {"save_generate_data_method": False},
                  "placeholder": {"save_data": False, "values_to_save": [""]}}[how]
        bgf.save_model(str(path), **kwargs)
        new = lifetimes.BetaGeoFitter()
        new.load_model(str(path))
        assert new.params_.equals(bgf.params_) and new._scale == bgf._scale
        assert new._negative_log_likelihood_ == bgf._negative_log_likelihood_
        assert new.predict(1, 1, 2, 5) == bgf.predict(1, 1, 2, 5)
        assert new.__dict__["predict"].__self__ is new
        if how == "all":
            pd.testing.assert_frame_equal(new.data, bgf.data)
            assert len(new.generate_new_data(size=3)) == 3
        if how == "no data":
            assert new.data is None
        if how == "no generator":
            assert new.generate_new_data is None
        if how == "placeholder":
            assert new.data == ""
        assert bgf.data is not None and bgf.generate_new_data is not None  # the fitter itself untouched

    def test_not_converging_is_lifetimes_convergence_error(self, monkeypatch, cdnow):
        from patron.value.models import BetaGeo, ConvergenceError

        def fails(self, *args, **kwargs):
            raise ConvergenceError("ABNORMAL_TERMINATION_IN_LNSRCH")

        monkeypatch.setattr(BetaGeo, "fit", fails)
        with pytest.raises(utils.ConvergenceError, match="larger penalizer") as info:
            lifetimes.BetaGeoFitter().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
        assert isinstance(info.value, ValueError) and isinstance(info.value, ConvergenceError)


class TestModifiedBetaGeo:
    def test_parameters_match_btydplus(self, cdnow):
        m = lifetimes.ModifiedBetaGeoFitter().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
        # BTYDplus mbgcnbd.EstimateParameters on CDNOW (k = 1): r, alpha, a, b
        np.testing.assert_allclose(m._unload_params("r", "alpha", "a", "b"), [0.525, 6.183, 0.891, 1.614],
                                   atol=THREE_DECIMALS)
        assert m.conditional_probability_alive(0, 1, 1)[0] < 1.0
        assert m.conditional_expected_number_of_purchases_up_to_time(39, 2, 30.43, 38.86) == pytest.approx(1.226, abs=0.05)

    def test_hourly_and_daily_data_predict_the_same(self):
        tx = load_transaction_data(parse_dates=["date"])
        end = tx["date"].max()
        daily = utils.summary_data_from_transaction_data(tx, "id", "date", observation_period_end=end, freq="D")
        hourly = utils.summary_data_from_transaction_data(tx, "id", "date", observation_period_end=end, freq="h")
        np.testing.assert_allclose(hourly["T"], 24 * daily["T"])
        m = lifetimes.ModifiedBetaGeoFitter()
        by_day = m.fit(daily["frequency"], daily["recency"], daily["T"]).expected_number_of_purchases_up_to_time(30)
        by_hour = m.fit(hourly["frequency"], hourly["recency"], hourly["T"]).expected_number_of_purchases_up_to_time(30 * 24)
        assert by_hour == pytest.approx(by_day, rel=1e-7)


@pytest.fixture(scope="module")
def ptf(cdnow):
    return lifetimes.ParetoNBDFitter().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])


@pytest.fixture(scope="module")
def donations():
    return load_donations()


@pytest.fixture(scope="module")
def bbtf(donations):
    return lifetimes.BetaGeoBetaBinomFitter().fit(donations["frequency"], donations["recency"],
                                                  donations["periods"], donations["weights"])


@pytest.fixture(scope="module")
def spend():
    return load_cdnow_summary_data_with_monetary_value()


class TestParetoNBD:
    def test_parameters_match_fader_hardie(self, ptf):
        # FH 2005 note 009 / BTYD on CDNOW: r, alpha, s, beta
        np.testing.assert_allclose(ptf._unload_params("r", "alpha", "s", "beta"), [0.553, 10.578, 0.606, 11.669],
                                   atol=TWO_DECIMALS)
        assert ptf.summary.shape == (4, 4)  # standard errors too (lifetimes had none)

    def test_predictions_match_btyd(self, ptf):
        btyd = [0.0, 0.05077821, 0.09916088, 0.14542507, 0.18979930, 0.23247466, 0.27361274, 0.31335159,
                0.35181024, 0.38909211]  # BTYD pnbd.Expectation, t = 0..9
        # BTYD's figures come from BTYD's own estimates, which differ from the exact optimum in
        # the 3rd decimal: compared to 5e-3
        np.testing.assert_allclose(ptf.expected_number_of_purchases_up_to_time(range(10)), btyd, atol=5e-3)
        # BTYD walkthrough: customer (26, 30.86, 31) over 52 weeks
        assert ptf.conditional_expected_number_of_purchases_up_to_time(52, 26.0, 30.86, 31) == pytest.approx(25.46, abs=0.01)

    def test_probability_alive_matches_btyd_and_stays_in_bounds(self):
        ptf = lifetimes.ParetoNBDFitter()
        ptf.params_ = pd.Series([0.5534, 10.5802, 0.6061, 11.6562], ["r", "alpha", "s", "beta"])
        assert ptf.conditional_probability_alive(26.00, 30.86, 31.00) == pytest.approx(0.9979, abs=1e-3)
        ptf.params_ = pd.Series([10.465, 7.98565181e-03, 3.0516, 2.820], ["r", "alpha", "s", "beta"])
        p = ptf.conditional_probability_alive(np.array([40.0, 50.0, 50.0]), np.array([5.0, 1.0, 4.0]), np.array([6.0, 37.0, 37.0]))
        assert np.all(np.isfinite(p) & (p >= 0) & (p <= 1))

    def test_conditional_expectation_has_no_underflow(self):
        ptf = lifetimes.ParetoNBDFitter()
        ptf.params_ = pd.Series({"alpha": 10.58, "beta": 11.67, "r": 0.55, "s": 0.61})
        left = ptf.conditional_expected_number_of_purchases_up_to_time(10, 132, 200, 200)
        right = ptf.conditional_expected_number_of_purchases_up_to_time(10, 133, 200, 200)
        assert np.isfinite(left) and abs(left - right) < 0.05

    def test_probability_of_n_purchases_is_a_distribution(self, ptf):
        for x, tx, T, t in ((0, 0, 5, 3), (4, 3, 8, 9), (9, 8, 9, 1), (2, 1, 2, 5)):
            pmf = np.array([ptf.conditional_probability_of_n_purchases_up_to_time(n, t, x, tx, T) for n in range(60)])
            assert np.all((pmf >= 0) & (pmf <= 1))
            assert pmf.sum() == pytest.approx(1.0, abs=1e-6)

    def test_alive_matrix_and_weights(self, cdnow, ptf):
        Z = ptf.conditional_probability_alive_matrix()
        max_t = int(ptf.data["T"].max())
        for t_x in range(0, Z.shape[0], 9):
            for x in range(0, Z.shape[1], 5):
                assert Z[t_x][x] == ptf.conditional_probability_alive(x, t_x, max_t)
        w = cdnow.groupby(["frequency", "recency", "T"]).size().reset_index(name="weights")
        weighted = lifetimes.ParetoNBDFitter().fit(w["frequency"], w["recency"], w["T"], w["weights"])
        np.testing.assert_allclose(weighted.params_, ptf.params_, rtol=1e-5)


class TestBetaGeoBetaBinom:
    def test_parameters_match_fhs_2010(self, bbtf):
        np.testing.assert_allclose(bbtf._unload_params("alpha", "beta", "gamma", "delta"), [1.204, 0.750, 0.657, 2.783],
                                   atol=THREE_DECIMALS)
        for attribute in ("standard_errors_", "variance_matrix_", "confidence_intervals_"):
            assert hasattr(bbtf, attribute)

    def test_probability_alive_matches_fhs_table_6(self, donations, bbtf):
        p = bbtf.conditional_probability_alive(1, donations["frequency"], donations["recency"], donations["periods"])
        by = dict(zip(zip(donations["frequency"], donations["recency"], strict=True), p, strict=True))
        np.testing.assert_allclose([by[(0, 0)], by[(2, 4)], by[(6, 6)]], [0.11, 0.59, 0.93], atol=0.005)

    def test_expectations_match_hardie_spreadsheet(self, donations, bbtf):
        # note 010 spreadsheet: conditional expectations (II), total of "Exp Tot" over 5 years
        total = (bbtf.conditional_expected_number_of_purchases_up_to_time(
            5, donations["frequency"], donations["recency"], donations["periods"]) * donations["weights"]).sum()
        assert total == pytest.approx(12884.2, abs=1.0)
        fit = bbtf.expected_number_of_transactions_in_first_n_periods(6)
        assert fit.index.name == "frequency" and list(fit.columns) == ["model"]
        np.testing.assert_allclose(fit.loc[[0, 6], "model"], [3454.9, 1253.1], atol=1.0)  # cells C18, C24

    def test_exploded_rows_give_the_same_fit(self, donations, bbtf):
        rows = donations.loc[donations.index.repeat(donations["weights"])]
        plain = lifetimes.BetaGeoBetaBinomFitter().fit(rows["frequency"], rows["recency"], rows["periods"])
        np.testing.assert_allclose(plain.params_, bbtf.params_, rtol=1e-6)


class TestGammaGamma:
    def test_parameters_match_fh_2013(self, spend):
        repeat = spend[spend["frequency"] > 0]
        for q_constraint in (False, True):
            ggf = lifetimes.GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"], q_constraint=q_constraint)
            np.testing.assert_allclose(ggf._unload_params("p", "q", "v"), [6.25, 3.74, 15.44], atol=TWO_DECIMALS)
        assert list(ggf.data.columns) == ["monetary_value", "frequency", "weights"]

    def test_non_repeat_customers_are_refused_as_lifetimes_documents(self, spend):
        with pytest.raises(ValueError):
            lifetimes.GammaGammaFitter().fit(spend["frequency"], spend["monetary_value"])

    def test_expected_average_profit_matches_fh_2013_spreadsheet(self, spend):
        ggf = lifetimes.GammaGammaFitter()
        ggf.params_ = pd.Series({"p": 6.25, "q": 3.74, "v": 15.44})
        head = spend.head(10)
        got = ggf.conditional_expected_average_profit(head["frequency"], head["monetary_value"])
        np.testing.assert_allclose(got.values, [24.65, 18.91, 35.17, 35.17, 35.17, 71.46, 18.91, 35.17, 27.28, 35.17],
                                   atol=0.1)
        assert got.index.equals(head.index)
        # lifetimes' eq. 5 for a repeat customer whose mean is 0 (patron's own model: the population mean)
        zero = ggf.conditional_expected_average_profit(np.array([2.0]), np.array([0.0]))
        p, q, v = 6.25, 3.74, 15.44
        assert zero[0] == pytest.approx((1 - 2 * p / (2 * p + q - 1)) * p * v / (q - 1))

    def test_clv_is_the_discounted_sum_of_monthly_purchases(self, spend):
        ggf = lifetimes.GammaGammaFitter()
        ggf.params_ = pd.Series({"p": 6.25, "q": 3.74, "v": 15.44})
        bgf = lifetimes.BetaGeoFitter().fit(spend["frequency"], spend["recency"], spend["T"])
        f, r, T, m = (spend[c] for c in ("frequency", "recency", "T", "monetary_value"))
        clv = ggf.customer_lifetime_value(bgf, f, r, T, m, time=3, discount_rate=0.01, freq="W")
        spend_hat = ggf.conditional_expected_average_profit(f, m)
        months = [bgf.predict(4.345 * k, f, r, T) - bgf.predict(4.345 * (k - 1), f, r, T) for k in (1, 2, 3)]
        want = sum(spend_hat * months[k - 1] / 1.01 ** k for k in (1, 2, 3))
        np.testing.assert_allclose(clv.values, want.values, rtol=1e-9)
        assert clv.index.equals(spend.index) and clv.name == "clv"
        same = utils._customer_lifetime_value(bgf, f, r, T, spend_hat, time=3, discount_rate=0.01, freq="W")
        np.testing.assert_array_equal(clv.values, same.values)

    def test_weights_give_the_same_fit(self, spend):
        repeat = spend[spend["frequency"] > 0]
        w = repeat.assign(weights=1.0).groupby(["frequency", "monetary_value"])["weights"].sum().reset_index()
        assert (w["weights"] > 1).any()
        a = lifetimes.GammaGammaFitter().fit(w["frequency"], w["monetary_value"], weights=w["weights"])
        b = lifetimes.GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
        np.testing.assert_allclose(a.params_, b.params_, rtol=1e-6)
