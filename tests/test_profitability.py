"""Profitability arithmetic on a constructed history with given contact costs and scores, and a CDNOW
smoke test against the summary and patron.value.scoring.score."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from patron.cli.demo import CDNOW_SAMPLE_COLUMNS
from patron.data.datasets import data_path
from patron.data.ingest import ingest
from patron.errors import InputError
from patron.relationship.profitability import CostRules, profitability

EXACT = 1e-9
"""Tolerance for a few multiplications and divisions of exact decimals."""

AS_OF = "2024-01-10"

TRANSACTIONS = [
    {"customer_id": "a", "occurred_at": "2024-01-01", "amount": 100.0, "margin": 30.0},
    {"customer_id": "a", "occurred_at": "2024-01-08", "amount": 50.0, "margin": None},
    {"customer_id": "a", "occurred_at": "2024-01-09", "amount": -20.0, "margin": -6.0},  # refund
    {"customer_id": "a", "occurred_at": "2024-02-01", "amount": 1000.0, "margin": 500.0},  # after as_of
    {"customer_id": "b", "occurred_at": "2024-01-01", "amount": 40.0, "margin": None},
    {"customer_id": "c", "occurred_at": "2024-01-10", "amount": 10.0, "margin": None},
]

CONTACTS = [
    {"customer_id": "a", "occurred_at": "2024-01-02", "channel": "email", "kind": "sent"},
    {"customer_id": "a", "occurred_at": "2024-01-03", "channel": "SMS", "kind": "sent"},
    {"customer_id": "a", "occurred_at": "2024-01-03", "channel": "email", "kind": "opened"},  # not a send
    {"customer_id": "a", "occurred_at": "2024-01-11", "channel": "phone", "kind": "sent"},  # after as_of
    {"customer_id": "b", "occurred_at": "2023-12-25", "channel": "mail", "kind": "sent"},
    {"customer_id": "b", "occurred_at": "2024-01-02", "channel": "whatsapp", "kind": "sent"},
    {"customer_id": "p", "occurred_at": "2024-01-05", "channel": "email", "kind": "sent"},  # a prospect
]

SCORES = pd.DataFrame({"customer_id": ["a", "b"], "clv": [200.0, 100.0], "probability_alive": [0.5, 1.0]})


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "p.duckdb")
    ingest(pd.DataFrame(TRANSACTIONS), kind="transactions", db=path)
    ingest(pd.DataFrame(CONTACTS), kind="contacts", db=path)
    return path


def test_arithmetic_by_hand(db):
    f = profitability(db, scores=SCORES, as_of=AS_OF).set_index("customer_id")
    assert list(f.index) == ["a", "b", "c"]  # the prospect p has no order
    a, b, c = f.loc["a"], f.loc["b"], f.loc["c"]
    # a: revenue 100 + 50 - 20; margin 30 - 6 over the 80 of revenue that carries a margin
    assert a["revenue"] == pytest.approx(130, abs=EXACT)
    assert a["margin_total"] == pytest.approx(24, abs=EXACT) and a["margin_rate"] == pytest.approx(0.3, abs=EXACT)
    # two sends: email 0.002 + sms 0.05; observed 2024-01-01..2024-01-10 = 10 days
    assert a["contacts"] == 2 and a["contact_cost"] == pytest.approx(0.052, abs=EXACT)
    assert a["weeks_observed"] == pytest.approx(10 / 7, abs=EXACT)
    expected_a = 0.052 / (10 / 7) * 52 * 0.5
    assert a["expected_contact_cost"] == pytest.approx(expected_a, abs=EXACT)
    assert a["clv_net"] == pytest.approx(200 * 0.3 - expected_a, abs=EXACT)
    # b: mail 0.60 + whatsapp (not configured: 'other' = 0); first contact before the first order
    assert b["contact_cost"] == pytest.approx(0.60, abs=EXACT) and b["weeks_observed"] == pytest.approx(17 / 7, abs=EXACT)
    assert b["expected_contact_cost"] == pytest.approx(0.60 / (17 / 7) * 52 * 1.0, abs=EXACT)
    assert np.isnan(b["margin_total"]) and np.isnan(b["margin_rate"]) and np.isnan(b["clv_net"])
    # c: no contacts, one day observed -> floored to one week; not in the scores
    assert c["contacts"] == 0 and c["contact_cost"] == 0 and c["weeks_observed"] == 1.0
    assert np.isnan(c["clv"]) and np.isnan(c["clv_net"])


def test_rules_fill_margin_and_price_channels(db):
    rules = {"costs": {"default_margin_rate": 0.5, "sms": 0.1, "other": 0.02, "channels": {"WhatsApp": 0.01}}}
    f = profitability(db, scores=SCORES, as_of=AS_OF, config=rules, horizon_weeks=26).set_index("customer_id")
    a, b = f.loc["a"], f.loc["b"]
    # a: 30 + 0.5 x 50 - 6 = 49 over all 130
    assert a["margin_total"] == pytest.approx(49, abs=EXACT) and a["margin_rate"] == pytest.approx(49 / 130, abs=EXACT)
    assert a["contact_cost"] == pytest.approx(0.002 + 0.1, abs=EXACT)
    assert b["contact_cost"] == pytest.approx(0.60 + 0.01, abs=EXACT)  # channels named in any case
    expected_b = 0.61 / (17 / 7) * 26 * 1.0
    assert b["clv_net"] == pytest.approx(100 * 0.5 - expected_b, abs=EXACT)
    other = profitability(db, scores=SCORES, as_of=AS_OF, config={"costs": {"other": 0.02}}).set_index("customer_id")
    assert other.loc["b", "contact_cost"] == pytest.approx(0.62, abs=EXACT)


def test_as_of_moves_the_window(db):
    f = profitability(db, scores=SCORES, as_of="2024-02-01").set_index("customer_id")
    a = f.loc["a"]
    assert a["revenue"] == pytest.approx(1130, abs=EXACT) and a["margin_total"] == pytest.approx(524, abs=EXACT)
    assert a["contacts"] == 3 and a["contact_cost"] == pytest.approx(2.052, abs=EXACT)
    assert a["weeks_observed"] == pytest.approx(32 / 7, abs=EXACT)


def test_bad_scores_and_rules(db):
    with pytest.raises(InputError, match="probability_alive"):
        profitability(db, scores=SCORES[["customer_id", "clv"]], as_of=AS_OF)
    with pytest.raises(InputError, match=r"\[costs\] email"):
        profitability(db, scores=SCORES, as_of=AS_OF, config={"costs": {"email": -1}})
    with pytest.raises(InputError, match=r"\[costs\] fax"):
        profitability(db, scores=SCORES, as_of=AS_OF, config={"costs": {"fax": 1.0}})
    assert CostRules().per_channel()["mail"] == 0.60


def test_cdnow_default_scores(tmp_path, capsys):
    import json

    from patron.cli import main
    from patron.value.scoring import score
    from patron.value.summary import summary

    db = str(tmp_path / "cdnow.duckdb")
    ingest(data_path("CDNOW_sample.txt"), kind="transactions", db=db, columns=CDNOW_SAMPLE_COLUMNS, mapping={"occurred_at": "date"}, date_format="%Y%m%d")
    f = profitability(db, as_of="1997-09-30", config={"costs": {"default_margin_rate": 0.3}}).set_index("customer_id")
    s = summary(db, period="W", end="1997-09-30").set_index("customer_id").loc[f.index]
    np.testing.assert_allclose(f["revenue"].to_numpy(), s["total_spend"].to_numpy(), rtol=1e-12)
    ref = score(s.reset_index(), model="bgnbd", period="W", horizon=52, discount_rate=0.10, margin=1.0).customers.set_index("customer_id")
    np.testing.assert_allclose(f["clv"].to_numpy(), ref.loc[f.index, "clv"].to_numpy(), rtol=1e-9)
    # no contacts in CDNOW: net CLV is the margin share of CLV
    assert (f["contacts"] == 0).all()
    np.testing.assert_allclose(f["clv_net"].to_numpy(), 0.3 * f["clv"].to_numpy(), rtol=1e-12)
    assert main(["profitability", "--db", db, "--as-of", "1997-09-30", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["customers"] == 2357 and data["clv_net"] is None and data["contacts"] == 0
    assert data["clv"] == pytest.approx(float(f["clv"].sum()), rel=1e-9)


@pytest.mark.parametrize("rules, settings", [
    (CostRules(), {}),
    (CostRules(default_margin_rate=0.25, channels={"whatsapp": 0.01}), {"cost_per_order": 0.5, "cost_per_customer": 2.0}),
    (CostRules(), {"margin": 0.4, "horizon": 26}),
])
def test_profitability_in_sql_is_profitability(db, rules, settings):
    """net_profitability_sql (the profiles' query, scores read from a relation) gives what
    profitability gives with the same scores, rules and value settings, to the last bit."""
    import duckdb

    from patron.relationship.profitability import PROFITABILITY_COLUMNS, net_profitability_sql
    from patron.value.settings import ValueSettings

    value = ValueSettings(**settings)
    scores = SCORES.assign(expected_revenue=[180.0, 90.0], discounted_purchases=[2.5, 1.25], spend_basis=["own", "own"])
    expected = profitability(db, scores=scores, as_of=AS_OF, config={"costs": rules.model_dump()}, settings=value)
    con = duckdb.connect(db, read_only=True)
    con.register("scores_in", scores)
    got = con.sql(net_profitability_sql(pd.Timestamp(AS_OF).date(), "scores_in", rules=rules, value=value)
                  + " ORDER BY f.customer_id").df()
    assert list(got.columns) == list(PROFITABILITY_COLUMNS)
    for column in PROFITABILITY_COLUMNS:
        left, right = expected[column].to_numpy(), got[column].to_numpy()
        if pd.api.types.is_float_dtype(expected[column]):
            assert np.array_equal(left.astype(float), right.astype(float), equal_nan=True), column
        else:
            assert [None if pd.isna(v) else v for v in left] == [None if pd.isna(v) else v for v in right], column
    assert got["clv_net"].notna().sum() == (2 if rules.default_margin_rate is not None or "margin" in settings else 1)
