"""``patron fit/score/report`` with covariates, on a shop simulated with planted effects: covariates
from summary columns and from customer attributes (one-hot, missing values), time-varying
covariates from a file, the JSON shape, and the report's effects section."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import patron
from patron.cli import main
from patron.value.models.sampling_covariates import sample_beta_geo_covariates

PLANTED_APP = 0.8
"""Purchase effect of channel "app" against "web" (the most common channel) in the simulation."""

Z_CHECK = 4.0
"""Estimates within this many standard errors of the planted effect."""

START = pd.Timestamp("2023-01-02")


def _shop(n: int = 3000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Transactions (daily, 52 weeks) and customers with a ``channel`` and ``age`` attribute; the
    BG/NBD purchase rate is exp(0.8) higher for app customers."""
    rng = np.random.default_rng(seed)
    channel = rng.choice(["web", "app", "store"], n, p=[0.5, 0.3, 0.2])
    first_day = rng.integers(0, 140, n)
    T = (364 - first_day) / 7.0
    d = sample_beta_geo_covariates({"app": (channel == "app").astype(float)}, r=0.9, alpha=6.0, a=0.8, b=3.0, T=T,
                                   gamma_purchase={"app": PLANTED_APP}, random_state=seed)
    x = d["frequency"].astype(int)
    cust = np.repeat(np.arange(n), x)
    # repeat purchases: the last at t_x, the others uniform before it (whole days)
    last = np.repeat(d["recency"] * 7.0, x)
    is_last = np.ones(cust.size, dtype=bool)
    is_last[:-1] = cust[1:] != cust[:-1]
    offset = np.where(is_last, last, rng.random(cust.size) * last)
    days = np.concatenate([first_day, first_day[cust] + np.floor(offset).astype(int)])
    ids = np.concatenate([np.arange(n), cust])
    tx = pd.DataFrame({"customer_id": [f"c{i}" for i in ids], "occurred_at": START + pd.to_timedelta(days, unit="D"),
                       "amount": np.round(rng.gamma(5.0, 8.0, ids.size), 2)})
    known = np.arange(n) % 10 != 0  # a tenth of the buyers have no customer record
    customers = pd.DataFrame({"customer_id": [f"c{i}" for i in np.arange(n)[known]], "channel": channel[known],
                              "age": rng.normal(40.0, 10.0, n)[known].round(1)})
    return tx, customers


@pytest.fixture(scope="module")
def shop_db(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("cov") / "shop.duckdb")
    tx, customers = _shop()
    patron.ingest(tx, kind="transactions", db=path)
    patron.ingest(customers, kind="customers", db=path)
    return path


def test_fit_reads_customer_attributes_one_hot_and_reports_effects(shop_db, capsys):
    assert main(["fit", "bgnbd", "--db", shop_db, "--covariates", "channel", "--dropout-covariates", "age", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    effects, se = out["covariate_effects"], out["covariate_std_errors"]
    assert set(effects["purchase"]) == {"channel=(missing)", "channel=app", "channel=store"}  # web: the reference
    assert set(effects["dropout"]) == {"age"}
    assert set(se["purchase"]) == set(effects["purchase"])
    assert abs(effects["purchase"]["channel=app"] - PLANTED_APP) <= Z_CHECK * se["purchase"]["channel=app"]
    assert abs(effects["purchase"]["channel=store"]) <= Z_CHECK * se["purchase"]["channel=store"]
    assert out["converged"] and out["n_customers"] == 3000
    assert any("300 customers have no row in customers" in note for note in out["notes"])


def test_fit_from_a_summary_file_with_constraint_and_regularization(tmp_path, capsys):
    rng = np.random.default_rng(3)
    n = 2000
    vip = rng.integers(0, 2, n).astype(float)
    d = sample_beta_geo_covariates({"vip": vip}, r=0.9, alpha=6.0, a=0.8, b=3.0, T=40.0,
                                   gamma_purchase={"vip": 0.6}, random_state=4)
    path = tmp_path / "summary.csv"
    pd.DataFrame({"customer_id": np.arange(n), "frequency": d["frequency"], "recency": d["recency"], "T": d["T"],
                  "vip": vip}).to_csv(path, index=False)
    assert main(["fit", "bgnbd", "--summary", str(path), "--covariates", "vip", "--constrained", "vip", "--json"]) == 0
    tied = json.loads(capsys.readouterr().out)
    assert tied["covariate_effects"]["purchase"]["vip"] == tied["covariate_effects"]["dropout"]["vip"]
    assert tied["constrained"] == ["vip"]
    assert main(["fit", "bgnbd", "--summary", str(path), "--covariates", "vip", "--regularization", "1000", "--json"]) == 0
    shrunk = json.loads(capsys.readouterr().out)
    assert abs(shrunk["covariate_effects"]["purchase"]["vip"]) < 1e-2
    assert main(["fit", "bgnbd", "--summary", str(path), "--covariates", "vip"]) == 0
    assert "covariate effects" in capsys.readouterr().out
    assert main(["fit", "bgnbd", "--summary", str(path), "--covariates", "nope"]) == 2
    assert "covariate nope is not a column of the summary" in capsys.readouterr().err
    assert main(["fit", "mbgnbd", "--summary", str(path), "--covariates", "vip"]) == 2
    assert main(["fit", "bgnbd", "--summary", str(path), "--regularization", "-1", "--covariates", "vip"]) == 2


def test_score_and_report_use_the_covariate_model_when_configured(shop_db, tmp_path, capsys):
    rules = tmp_path / "patron.toml"
    rules.write_text('[value]\ncovariates = ["channel"]\n')
    out = tmp_path / "scores.csv"
    assert main(["score", "--db", shop_db, "--config", str(rules), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "covariates channel" in text and "one-hot encoded against its most common level 'web'" in text
    scores = pd.read_csv(out)
    assert len(scores) == 3000 and np.isfinite(scores["clv"]).all()
    # app customers buy more: their expected purchases are higher at the same history
    assert main(["score", "--db", shop_db, "--out", str(tmp_path / "plain.csv")]) == 0
    page = tmp_path / "report.html"
    assert main(["report", "--db", shop_db, "--config", str(rules), "--out", str(page)]) == 0
    html = page.read_text(encoding="utf-8")
    assert "Covariate effects" in html and "channel=app" in html
    assert main(["report", "--db", shop_db, "--out", str(tmp_path / "plain.html")]) == 0
    assert "Covariate effects" not in (tmp_path / "plain.html").read_text(encoding="utf-8")


def test_fit_time_varying_covariates_from_a_file(shop_db, tmp_path, capsys):
    """Odd rows of the file are treated and each kind counted once: a row of a customer without a
    purchase, customers without rows, a period missing inside a customer's window (a period
    before their first purchase is never read, so not counted), an empty value, a repeated row."""
    from patron.value.summary import summary

    weeks = pd.date_range("2022-12-26", periods=60, freq="7D")
    ids = [f"c{i}" for i in range(0, 3000, 2)]  # half the customers have covariate rows
    grid = pd.MultiIndex.from_product([ids, weeks], names=["customer_id", "period_start"]).to_frame(index=False)
    grid["season"] = (grid["period_start"].dt.month >= 11).astype(float)
    acquired = pd.Timestamp(summary(shop_db).set_index("customer_id").loc["c0", "first_purchase"]).normalize()
    before, after = weeks[weeks + pd.Timedelta(days=6) < acquired][0], weeks[weeks > acquired][2]
    grid = grid[~((grid["customer_id"] == "c0") & grid["period_start"].isin([before, after]))]
    grid.loc[(grid["customer_id"] == "c2") & (grid["period_start"] == weeks[30]), "season"] = np.nan  # an empty cell
    repeated = grid[(grid["customer_id"] == "c4") & (grid["period_start"] == weeks[30])].assign(season=1.0)
    extra = pd.DataFrame({"customer_id": ["nobody"], "period_start": [weeks[0]], "season": [0.0]})
    path = tmp_path / "dyn.csv"
    pd.concat([grid, repeated, extra]).to_csv(path, index=False)
    assert main(["fit", "pareto", "--db", shop_db, "--dynamic-covariates", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["time_varying"] and set(out["covariate_effects"]["purchase"]) == {"season"}
    assert np.isfinite(out["covariate_std_errors"]["dropout"]["season"])
    notes = out["notes"]

    def count(fragment, lines):
        return [n.split()[0] for n in lines if fragment in n]

    assert count("covariate rows of customers without a purchase ignored", notes) == ["1"]
    assert count("customers without any covariate row", notes) == ["1,500"]
    assert count("customer-periods without a row", notes) == ["1"], notes
    assert count("rows with an empty covariate value", notes) == ["1"]
    assert count("repeated rows of a customer and period", notes) == ["1"]
    # scoring: paths reach the 52-week horizon past the file's last period; those periods have
    # their own note and are not counted again as periods without a row (only c0's gap is)
    assert main(["score", "--db", shop_db, "--model", "pareto", "--dynamic-covariates", str(path),
                 "--out", str(tmp_path / "scores.csv"), "--json"]) == 0
    score_notes = json.loads(capsys.readouterr().out)["notes"]
    assert count("periods past the file's last", score_notes) == ["the"]
    assert count("customer-periods without a row", score_notes) == ["1"], score_notes
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"customer_id": ["c1"], "period_start": ["2023-01-02"], "season": ["high"]}).to_csv(bad, index=False)
    assert main(["fit", "pareto", "--db", shop_db, "--dynamic-covariates", str(bad)]) == 2
    assert "row 2, column season" in capsys.readouterr().err
    empty = tmp_path / "empty.csv"
    grid.assign(promo=np.nan).to_csv(empty, index=False)
    assert main(["fit", "pareto", "--db", shop_db, "--dynamic-covariates", str(empty)]) == 2
    assert f"{empty}: column promo has no value for any customer with a purchase" in capsys.readouterr().err


def test_score_values_customers_along_their_time_varying_path(shop_db, tmp_path, capsys):
    """``patron score --dynamic-covariates``: CLV = expected spend x the model's own discounted
    purchases (ParetoNBDDynamic.discounted_purchases) on covariate paths built here from the
    file's rule; the [value] setting gives the same scores; the saved model keeps its period."""
    from patron.value.models import BaseModel
    from patron.value.models.dynamic_paths import dynamic_data
    from patron.value.scoring import dynamic_model
    from patron.value.settings import value_settings
    from patron.value.summary import summary

    origin = pd.Timestamp("2022-12-26")
    weeks = pd.date_range(origin, periods=120, freq="7D")  # calibration (53 weeks) and the 52-week horizon
    season = (weeks.month >= 11).astype(float)
    ids = [f"c{i}" for i in range(3000)]
    grid = pd.MultiIndex.from_product([ids, weeks], names=["customer_id", "period_start"]).to_frame(index=False)
    grid["season"] = np.tile(season, len(ids))
    path = tmp_path / "season.parquet"
    grid.to_parquet(path)
    out = tmp_path / "scores.csv"
    assert main(["score", "--db", shop_db, "--model", "pareto", "--dynamic-covariates", str(path), "--out", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert "time-varying covariates season.parquet" in info["value_settings"]["line"]
    scores = pd.read_csv(out)
    rules = tmp_path / "patron.toml"
    rules.write_text(f'[value]\nmodel = "pareto"\ndynamic_covariates = "{path}"\n')
    settings = value_settings(rules)
    summ = summary(shop_db, period="W")
    model, _, _ = dynamic_model(summ, settings, db=shop_db)  # the model score fitted (same data, deterministic)
    x, tx, T = (scores[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    first = summ.set_index(summ["customer_id"].astype(str)).loc[scores["customer_id"].astype(str), "first_purchase"]
    first = ((pd.to_datetime(first).dt.normalize() - origin).dt.days / 7.0).to_numpy()
    X = np.broadcast_to(season[None, :, None], (x.size, weeks.size, 1))
    data = dynamic_data(x, tx, T, first, X, X, np.zeros((x.size, 1)), period_length=1.0)
    purchases = model.discounted_purchases(data, horizon=52.0, discount_rate_per_step=settings.discount_rate_per_period)
    np.testing.assert_allclose(scores["discounted_purchases"], purchases, rtol=1e-9)
    np.testing.assert_allclose(scores["clv"], scores["expected_spend"] * purchases, rtol=1e-9)
    np.testing.assert_allclose(scores["expected_purchases"], model.conditional_expected_purchases(52.0, data), rtol=1e-9)
    assert (scores["clv_lower"] < scores["clv"]).mean() > 0.99 and (scores["clv"] < scores["clv_upper"]).mean() > 0.99
    again = tmp_path / "again.csv"
    assert main(["score", "--db", shop_db, "--config", str(rules), "--out", str(again)]) == 0
    capsys.readouterr()
    np.testing.assert_allclose(pd.read_csv(again)["clv"], scores["clv"], rtol=1e-12)
    saved = tmp_path / "dynamic.json"
    assert main(["fit", "pareto", "--db", shop_db, "--dynamic-covariates", str(path), "--save", str(saved)]) == 0
    loaded = BaseModel.load(saved)
    assert loaded.period_length_ == 1.0 and loaded.coefficients_ == model.coefficients_
    np.testing.assert_allclose(loaded.discounted_purchases(loaded.path_data(x, tx, T, first, X, ["season"]), horizon=52.0,
                                                           discount_rate_per_step=settings.discount_rate_per_period), purchases, rtol=1e-9)
    assert main(["score", "--db", shop_db, "--dynamic-covariates", str(path), "--out", str(again)]) == 2
    assert "--model pareto" in capsys.readouterr().err
