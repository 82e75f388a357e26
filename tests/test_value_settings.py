"""One set of value settings (``[value]``) and the rows the spend model cannot use.

Expected values come from an independent pandas reading of the planted rows (who made only
zero-value repeat purchases), from the Gamma-Gamma population mean p v / (q - 1) of the fitted
parameters (Fader & Hardie 2013, eq. 5 with x = 0), and from the model-level CLV function
(:func:`patron.value.models.clv.customer_lifetime_value`, itself checked against quadrature in
tests/models/test_clv.py) called with the settings' arithmetic done here by hand; never from the
settings plumbing under test.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import patron
from patron.cli import main
from patron.data.datasets import load_cdnow
from patron.errors import InputError
from patron.value.models import BetaGeo, GammaGamma
from patron.value.models.clv import customer_lifetime_value
from patron.value.scoring import score
from patron.value.settings import (
    SPEND_NO_REPEAT,
    SPEND_NONPOSITIVE,
    SPEND_OWN,
    ValueSettings,
    value_settings,
)

EQUITY_REL_TOLERANCE = 1e-9
"""Same data, same fit, same settings: equity agrees to floating-point summation order."""

LAST_DAY = "1998-06-30"
"""Last day of the CDNOW sample: every command's default as-of date."""

RULES = """
[value]
horizon = 26
discount_rate = 0.05
margin = 0.3
cost_per_customer = 1.0
cost_per_order = 0.5
currency = "usd"
"""
"""Settings far from every default, so that a surface that ignores one of them shows it."""

LINE = "CLV: 26 weeks, 5%/year, margin 30%, cost to serve 1.00 per customer + 0.50 per order, USD"
"""The settings line of :data:`RULES`, written out by hand."""


# --- the settings themselves --------------------------------------------------------------------


def test_defaults_rules_file_and_flags(tmp_path):
    default = ValueSettings()
    assert (default.model, default.horizon, default.period, default.discount_rate, default.margin) == ("bgnbd", 52.0, "W", 0.10, 1.0)
    assert default.line() == "CLV: 52 weeks, 10%/year, margin 100%, currency not set"
    rules = tmp_path / "patron.toml"
    rules.write_text(RULES)
    read = value_settings(rules)
    assert read.line() == LINE
    assert read.margin_is_set and not default.margin_is_set
    assert read.discount_rate_per_period == pytest.approx(1.05 ** (7 / 365.25) - 1, rel=1e-12)
    flagged = value_settings(rules, margin=0.6, period="m", horizon=None)
    assert (flagged.margin, flagged.period, flagged.horizon, flagged.currency) == (0.6, "M", 26.0, "USD")
    assert flagged.line().startswith("CLV: 26 months, 5%/year, margin 60%")
    assert flagged.horizon_weeks == pytest.approx(26 * 365.25 / 12 / 7, rel=1e-12)


@pytest.mark.parametrize(("raw", "message"), [
    ({"margin": 1.5}, r"\[value\] margin"),
    ({"horizon": 0}, r"\[value\] horizon"),
    ({"period": "Y"}, r"\[value\] period"),
    ({"currency": "dollars"}, r"\[value\] currency"),
    ({"horizont": 52}, r"\[value\] horizont"),
])
def test_a_bad_setting_names_section_and_key(raw, message):
    with pytest.raises(InputError, match=message):
        value_settings({"value": raw})


def test_a_bad_value_names_the_parameter_and_the_cli_its_flag(tmp_path, capsys):
    with pytest.raises(InputError, match=r"^discount_rate: Input should be greater than or equal to 0 \(got -0.1\)$"):
        value_settings({}, discount_rate=-0.1)
    from patron.cli import main

    assert main(["score", "--db", str(tmp_path / "none.duckdb"), "--out", str(tmp_path / "s.csv"), "--discount-rate", "-0.1"]) == 2
    assert capsys.readouterr().err.strip() == "patron: error: --discount-rate: Input should be greater than or equal to 0 (got -0.1)"


def test_currency_comes_from_the_data_when_not_set(tmp_path):
    db = str(tmp_path / "c.duckdb")
    frame = pd.DataFrame({"customer_id": ["a", "a", "b"], "occurred_at": ["2024-01-01", "2024-02-01", "2024-01-05"],
                          "amount": [10.0, 12.0, 8.0], "currency": ["eur", "EUR", "EUR"]})
    patron.ingest(frame, kind="transactions", db=db)
    from patron.value.settings import db_currencies

    assert db_currencies(db) == ("EUR",)
    assert ValueSettings().line(db_currencies(db)).endswith(", EUR")
    assert ValueSettings(currency="USD").line(("EUR",)).endswith(", USD")
    patron.ingest(pd.DataFrame({"customer_id": ["c"], "occurred_at": ["2024-01-09"], "amount": [5.0], "currency": ["USD"]}),
                  kind="transactions", db=db)
    assert ValueSettings().line(db_currencies(db)).endswith("currency not set (transactions in EUR, USD, summed unconverted)")


def test_every_setting_is_documented():
    text = (Path(__file__).resolve().parents[1] / "docs" / "models.md").read_text(encoding="utf-8")
    for name in ValueSettings.model_fields:
        assert f"| {name} |" in text, name
    for basis in (SPEND_OWN, SPEND_NO_REPEAT, SPEND_NONPOSITIVE):
        assert f"`{basis}`" in text, basis


# --- rows the spend model cannot use ---------------------------------------------------------------

PLANTED = pd.DataFrame([
    # a $0.00 repeat purchase, as CDNOW master's customer 10244
    ("zero_repeat", "1997-02-01", 20.0), ("zero_repeat", "1997-05-01", 0.0),
    # two zero-value repeats and a refund larger than any order
    ("zero_refunded", "1997-02-03", 15.0), ("zero_refunded", "1997-03-01", 0.0), ("zero_refunded", "1997-04-01", 0.0),
    ("zero_refunded", "1997-04-02", -40.0),
    # a refund larger than the orders: net spend negative, repeat spend positive
    ("refund_bigger", "1997-02-05", 30.0), ("refund_bigger", "1997-06-01", 10.0), ("refund_bigger", "1997-06-02", -50.0),
    # a refund and nothing else
    ("refund_only", "1997-03-03", -25.0),
    # a zero-value first (and only) purchase
    ("zero_first", "1997-03-10", 0.0),
], columns=["customer_id", "occurred_at", "amount"])
"""Customers planted in the CDNOW sample, each with an odd row."""


def nonpositive_repeat_buyers(transactions: pd.DataFrame, end: str = LAST_DAY) -> set[str]:
    """Independently of patron: customers with a repeat purchase day (amount >= 0, days merged)
    whose repeat days are worth 0 or less in total."""
    t = transactions[(transactions["amount"] >= 0) & (pd.to_datetime(transactions["occurred_at"]) <= pd.Timestamp(end))].copy()
    t["day"] = pd.to_datetime(t["occurred_at"]).dt.normalize()
    days = t.groupby(["customer_id", "day"], as_index=False)["amount"].sum().sort_values(["customer_id", "day"])
    repeat = days[days.groupby("customer_id").cumcount() > 0]
    totals = repeat.groupby("customer_id")["amount"].sum()
    return set(totals[totals <= 0].index.astype(str))


@pytest.fixture(scope="module")
def odd_db(tmp_path_factory) -> tuple[str, pd.DataFrame]:
    db = str(tmp_path_factory.mktemp("odd") / "odd.duckdb")
    sample = load_cdnow()[["customer_id", "occurred_at", "amount"]]
    planted = PLANTED.assign(occurred_at=pd.to_datetime(PLANTED["occurred_at"]))
    patron.ingest(pd.concat([sample, planted], ignore_index=True), kind="transactions", db=db)
    patron.ingest(pd.DataFrame({"customer_id": ["refund_only"]}), kind="customers", db=db)
    return db, pd.concat([sample, planted], ignore_index=True)


def test_odd_rows_are_valued_at_the_population_mean_and_counted(odd_db):
    db, transactions = odd_db
    expected = nonpositive_repeat_buyers(transactions)
    assert expected == {"zero_repeat", "zero_refunded"}  # the sample itself has none
    summary = patron.summary(db, end=LAST_DAY)
    scores = score(summary)
    rows = scores.customers.set_index("customer_id")
    assert set(rows.index[rows["spend_basis"] == SPEND_NONPOSITIVE]) == expected
    assert scores.spend_bases[SPEND_NONPOSITIVE] == len(expected)
    assert rows.loc["refund_bigger", "spend_basis"] == SPEND_OWN
    assert rows.loc["zero_first", "spend_basis"] == SPEND_NO_REPEAT
    assert "refund_only" not in rows.index
    # the spend model is the fit on the usable customers only
    usable = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    alone = GammaGamma().fit(usable["frequency"], usable["monetary_value"])
    for k, v in alone.params_.items():
        assert scores.spend_model.params_[k] == pytest.approx(v, rel=1e-9)
    p, q, v = (alone.params_[k] for k in ("p", "q", "v"))
    np.testing.assert_allclose(rows.loc[sorted(expected), "expected_spend"], p * v / (q - 1), rtol=1e-9)
    assert np.isfinite(rows["clv"]).all()
    note = scores.notes()[1]
    assert note.startswith(f"{len(expected)} customers valued at the population mean spend ({p * v / (q - 1):,.2f})")


COMMANDS = {
    "score": ["score", "--out", "{tmp}/scores.csv"],
    "profiles": ["profiles", "--out", "{tmp}/profiles.csv"],
    "segments": ["segments"],
    "equity": ["equity", "--by", "status"],
    "profitability": ["profitability", "--out", "{tmp}/profit.csv"],
    "report": ["report", "--out", "{tmp}/report.html"],
}
"""Every command that states a customer value, with the file it writes per customer."""


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_runs_on_the_odd_rows_and_says_how_many(odd_db, command, tmp_path, capsys):
    db, transactions = odd_db
    n = len(nonpositive_repeat_buyers(transactions))
    args = [a.format(tmp=tmp_path) for a in COMMANDS[command]]
    assert main([*args, "--db", db]) == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    assert f"{n} customers valued at the population mean spend" in text
    assert "CLV: 52 weeks, 10%/year, margin 100%, currency not set" in text
    for out in (a for a in args if a.endswith(".csv")):
        frame = pd.read_csv(out, dtype={"customer_id": str})
        assert (frame["spend_basis"] == SPEND_NONPOSITIVE).sum() == n
    if command == "profiles":
        frame = pd.read_csv(tmp_path / "profiles.csv", dtype={"customer_id": str}).set_index("customer_id")
        assert frame.loc["refund_only", "status"] == "prospect" and frame.loc["refund_only", "clv"] == 0
        assert frame.loc["refund_bigger", "total_spend"] == pytest.approx(-10.0)


def test_fit_gammagamma_says_who_it_left_out(odd_db, capsys):
    db, transactions = odd_db
    n = len(nonpositive_repeat_buyers(transactions))
    fitted = _run_json(capsys, "fit", "gammagamma", "--db", db)
    assert fitted["left_out"] == n
    summary = patron.summary(db, end=LAST_DAY)
    usable = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    assert fitted["n_customers"] == len(usable)
    assert main(["fit", "gammagamma", "--db", db]) == 0
    assert f"{n} customers with repeat purchases totalling 0 or less left out of the fit" in capsys.readouterr().out


def test_a_summary_the_models_cannot_read_names_the_customers(capsys):
    summary = pd.DataFrame({"customer_id": ["a", "b", "c", "d"], "frequency": [1, 2, 0, 1], "recency": [3.0, 9.0, 0.0, 2.0],
                            "T": [5.0, 4.0, 6.0, 3.0], "monetary_value": [10.0, 12.0, 0.0, float("nan")]})
    with pytest.raises(InputError, match=r"recency is not between 0 and T for 1 customer \(b\)"):
        score(summary)
    summary.loc[1, "recency"] = 3.0
    with pytest.raises(InputError, match=r"monetary_value is missing .* for 1 customer \(d\)"):
        score(summary)


# --- the same settings give the same customer equity everywhere -------------------------------------


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory) -> tuple[str, Path]:
    folder = tmp_path_factory.mktemp("surfaces")
    db = str(folder / "cdnow.duckdb")
    patron.ingest(load_cdnow()[["customer_id", "occurred_at", "amount"]], kind="transactions", db=db)
    rules = folder / "patron.toml"
    rules.write_text(RULES)
    return db, rules


def independent_equity(db: str, *, margin: float = 0.3) -> float:
    """Customer equity for :data:`RULES` from the models fitted directly and the model-level CLV
    function, with the settings' arithmetic written out here."""
    s = patron.summary(db, period="W", end=LAST_DAY)
    x, tx, T, m = (s[c].to_numpy(float) for c in ("frequency", "recency", "T", "monetary_value"))
    bg, gg = BetaGeo().fit(x, tx, T), GammaGamma().fit(x, m)
    weekly = 1.05 ** (7 / 365.25) - 1  # 5% a year, per week
    clv = customer_lifetime_value(bg, gg, x, tx, T, m, horizon=26, discount_rate_per_step=weekly, margin=margin,
                                  cost_per_purchase=0.5, cost_to_serve=1.0)
    return float(clv.sum())


def _run_json(capsys, *args: str) -> dict:
    assert main([*args, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_same_settings_same_equity_in_every_command(sample_db, tmp_path, capsys):
    db, rules = sample_db
    truth = independent_equity(db)
    config = ["--db", db, "--config", str(rules)]
    scored = _run_json(capsys, "score", *config, "--out", str(tmp_path / "s.parquet"))
    assert scored["customer_equity"] == pytest.approx(truth, rel=EQUITY_REL_TOLERANCE)
    assert scored["value_settings"]["line"] == LINE
    profiles = _run_json(capsys, "profiles", *config)
    assert profiles["customer_equity"] == pytest.approx(truth, rel=EQUITY_REL_TOLERANCE)
    equity = _run_json(capsys, "equity", *config, "--by", "value_tier")
    assert sum(r["equity"] for r in equity["rows"]) == pytest.approx(truth, rel=EQUITY_REL_TOLERANCE)
    segments = _run_json(capsys, "segments", *config)
    profit = _run_json(capsys, "profitability", *config)
    assert profit["clv"] == pytest.approx(truth, rel=EQUITY_REL_TOLERANCE)
    for answer in (profiles, equity, segments, profit):
        assert answer["value_settings"]["line"] == LINE
    # the report: its headline states the same equity and the settings
    from patron.report import build_report

    page = build_report(db, config=str(rules), sections=["headline", "equity"])
    assert LINE in page
    shown = re.search(r'<div class="label">customer equity</div><div class="value">\$([\d,.]+)</div>', page)
    assert shown and float(shown.group(1).replace(",", "")) == pytest.approx(truth, abs=0.5)
    # a flag overrides the rules file for that command only
    moved = _run_json(capsys, "score", *config, "--out", str(tmp_path / "s2.parquet"), "--margin", "0.6")
    assert moved["customer_equity"] == pytest.approx(independent_equity(db, margin=0.6), rel=EQUITY_REL_TOLERANCE)
    assert moved["value_settings"]["line"] == LINE.replace("margin 30%", "margin 60%")
    # profiles built with the rules are rebuilt when another command asks for other settings
    other = _run_json(capsys, "equity", "--db", db, "--by", "value_tier")
    assert not math.isclose(sum(r["equity"] for r in other["rows"]), truth, rel_tol=1e-3)
    assert other["value_settings"]["line"] == "CLV: 52 weeks, 10%/year, margin 100%, currency not set"


def test_text_outputs_print_the_settings_line(sample_db, tmp_path, capsys):
    db, rules = sample_db
    for args in (["score", "--out", str(tmp_path / "s.csv")], ["profiles"], ["segments"], ["equity"], ["equity", "--over-time", "--start", "1998-05-01"],
                 ["profitability"], ["report", "--out", str(tmp_path / "r.html")]):
        assert main([*args, "--db", db, "--config", str(rules)]) == 0, capsys.readouterr().err
        assert LINE in capsys.readouterr().out, args


@pytest.mark.slow
def test_the_dashboard_and_its_data_endpoint_show_the_same_equity(sample_db, tmp_path):
    from tests.service_support import running_service

    db, rules = sample_db
    served = tmp_path / "served.duckdb"
    patron.ingest(load_cdnow()[["customer_id", "occurred_at", "amount"]], kind="transactions", db=str(served))
    truth = independent_equity(db)
    with running_service(served, config=rules) as svc:
        with svc.client("read") as c:
            assert c.get("/v1/equity").status_code == 404  # nothing scored yet
        with svc.client("admin") as c:
            assert c.post("/v1/refresh", params={"wait": "true"}).status_code == 200
        with svc.client("read") as c:
            body = c.get("/v1/equity").json()
            page = c.get("/").text
    assert body["as_of"] == LAST_DAY and body["customers"] == 2357
    assert body["customer_equity"] == pytest.approx(truth, rel=EQUITY_REL_TOLERANCE)
    assert body["value_settings"]["line"] == LINE and body["value_settings"]["currency"] == "USD"
    assert body["spend_basis"][SPEND_NONPOSITIVE] == 0 and body["spend_note"] is None
    assert LINE in page
