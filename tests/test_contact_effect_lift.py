"""Campaign lift against a holdout (patron.contact.effect.lift, .stats, the CLI).

Expected values come from hand-made data (arithmetic in the comments), from the published examples
of Newcombe (1998), from SciPy's own Welch t-test and Wilson interval, and from simulations with a
known true effect (patron.contact.effect.simulate)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from patron.cli import main
from patron.contact.effect import campaign_effect, simulate_experiment
from patron.data.store import connect
from patron.errors import InputError, NoDataError
from patron.value.intervals import newcombe_interval, welch_interval, wilson_interval

EXACT = 1e-9
"""Tolerance of exact arithmetic."""

PUBLISHED = 5e-5
"""Tolerance against values published to 4 decimals."""


def load(db: str, contacts: pd.DataFrame, transactions: pd.DataFrame) -> None:
    """Write contacts and transactions straight into the store (ingest is tested elsewhere)."""
    with connect(db) as con:
        con.register("c_in", contacts)
        con.register("t_in", transactions)
        con.execute("INSERT INTO contacts BY NAME SELECT * FROM c_in")
        con.execute("INSERT INTO transactions BY NAME SELECT * FROM t_in")


def _contact(rows: list[tuple[str, str, str, str, bool | None]]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["customer_id", "occurred_at", "campaign_id", "kind", "in_holdout"])
    df["occurred_at"] = pd.to_datetime(df["occurred_at"], format="ISO8601")
    df["channel"] = "email"
    df["contact_id"] = [f"k{i}" for i in range(len(df))]
    return df


def _orders(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["customer_id", "occurred_at", "amount"])
    df["occurred_at"] = pd.to_datetime(df["occurred_at"], format="ISO8601")
    df["order_id"] = [f"o{i}" for i in range(len(df))]
    return df


@pytest.fixture
def hand_db(db: str) -> str:
    """Campaign ``spring`` sent 2024-03-01 10:00: a, b, c, d treated; e, f held out; g has a holdout
    row and a sent row (assignment wins: control). Campaign ``summer`` has no holdout."""
    send = "2024-03-01 10:00"
    contacts = _contact([
        ("a", send, "spring", "sent", False), ("a", "2024-03-01 10:05", "spring", "opened", None),
        ("b", send, "spring", "sent", None), ("b", "2024-03-03", "spring", "unsubscribed", None),
        ("c", send, "spring", "sent", False),
        ("d", send, "spring", "sent", False), ("d", "2024-03-15", "spring", "sent", False),
        ("d", "2024-03-02", "spring", "complained", None),
        ("e", send, "spring", "sent", True), ("f", send, "spring", "sent", True),
        ("g", send, "spring", "sent", True), ("g", "2024-03-01 11:00", "spring", "sent", False),
        ("a", "2024-06-01", "summer", "sent", False), ("b", "2024-06-01", "summer", "sent", False),
    ])
    orders = _orders([
        ("a", "2024-03-05", 100.0), ("a", "2024-03-20", 50.0),      # 2 purchases, 150
        ("b", "2024-04-15", 80.0),                                  # day 45: outside 30 days
        ("c", "2024-03-10", -20.0), ("c", "2024-03-31 09:59", 20.0),  # 1 purchase, revenue 0
        ("d", "2024-02-20", 30.0),                                  # before the send
        ("e", "2024-03-31 10:00", 40.0),                            # exactly at the window end: in
        ("f", "2024-03-01 10:00", 10.0),                            # at the send itself: out
        ("a", "2024-08-01", 5.0),
    ])
    load(db, contacts, orders)
    return db


def test_hand_made_lift_arithmetic(hand_db: str) -> None:
    res = campaign_effect(hand_db).set_index("campaign_id")
    s = res.loc["spring"]
    # treated a, b, c, d: purchases [2, 0, 1, 0], revenue [150, 0, 0, 0], responders a, c
    # control e, f, g:     purchases [1, 0, 0],    revenue [40, 0, 0],     responder e
    assert (s.n_treated, s.n_control) == (4, 3)
    assert s.response_rate_treated == pytest.approx(0.5, abs=EXACT)
    assert s.response_rate_control == pytest.approx(1 / 3, abs=EXACT)
    assert s.response_lift == pytest.approx(1 / 6, abs=EXACT)
    assert s.response_lift_relative == pytest.approx(0.5, abs=EXACT)
    assert s.purchases_lift == pytest.approx(0.75 - 1 / 3, abs=EXACT)
    assert s.revenue_treated == pytest.approx(37.5, abs=EXACT)
    assert s.revenue_lift == pytest.approx(37.5 - 40 / 3, abs=EXACT)
    assert s.incremental_purchases == pytest.approx(4 * (0.75 - 1 / 3), abs=EXACT)
    assert s.incremental_revenue == pytest.approx(4 * (37.5 - 40 / 3), abs=EXACT)
    assert s.incremental_responders == pytest.approx(4 / 6, abs=EXACT)
    assert s.unsubscribe_rate_treated == pytest.approx(0.25, abs=EXACT)
    assert s.complaint_rate_treated == pytest.approx(0.25, abs=EXACT)
    assert s.unsubscribe_rate_control == 0.0
    # Welch interval: SciPy's own t-test on the raw per-customer values
    ci = stats.ttest_ind([150.0, 0, 0, 0], [40.0, 0, 0], equal_var=False).confidence_interval(0.95)
    assert (s.revenue_lift_lower, s.revenue_lift_upper) == pytest.approx((ci.low, ci.high), abs=1e-7)
    assert s.incremental_revenue_lower == pytest.approx(4 * ci.low, abs=1e-6)
    # summer has no holdout: sizes but no lift
    u = res.loc["summer"]
    assert (u.n_treated, u.n_control) == (2, 0)
    assert np.isnan(u.response_lift) and np.isnan(u.revenue_lift_lower)


def test_window_and_campaign_filter(hand_db: str) -> None:
    res = campaign_effect(hand_db, campaign_id="spring", window_days=60)
    assert list(res["campaign_id"]) == ["spring"]
    # 60 days: b's purchase on day 45 now counts -> treated responders a, b, c
    assert res["response_rate_treated"].iloc[0] == pytest.approx(0.75, abs=EXACT)
    assert res["window_days"].iloc[0] == 60
    cfg = {"contact_effect": {"window_days": 60, "level": 0.9}}
    via_rules = campaign_effect(hand_db, campaign_id="spring", config=cfg)
    assert via_rules["response_rate_treated"].iloc[0] == pytest.approx(0.75, abs=EXACT)
    assert via_rules["level"].iloc[0] == 0.9
    with pytest.raises(NoDataError, match="campaign 'nope'"):
        campaign_effect(hand_db, campaign_id="nope")
    with pytest.raises(InputError, match=r"\[contact_effect\] window_dayz"):
        campaign_effect(hand_db, config={"contact_effect": {"window_dayz": 3}})


def test_newcombe_reproduces_the_published_examples() -> None:
    # Newcombe (1998), Statistics in Medicine 17:873-890, Table II, method 10
    x1, n1, x0, n0 = [56, 9, 6, 5], [70, 10, 7, 56], [48, 3, 2, 0], [80, 10, 7, 29]
    _, lo, hi = newcombe_interval(x1, n1, x0, n0)
    assert lo == pytest.approx([0.0524, 0.1705, 0.0582, -0.0381], abs=PUBLISHED)
    assert hi == pytest.approx([0.3339, 0.8090, 0.8062, 0.1926], abs=PUBLISHED)


def test_wilson_and_welch_agree_with_scipy() -> None:
    rng = np.random.default_rng(3)
    for k, n in [(0, 12), (3, 40), (81, 263), (50, 50)]:
        ref = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
        _, lo, hi = wilson_interval(k, n)
        assert (lo, hi) == pytest.approx((ref.low, ref.high), abs=1e-9)
    a, b = rng.gamma(2.0, 3.0, 37), rng.gamma(2.0, 2.0, 91)
    ref = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.9)
    _, lo, hi = welch_interval(a.mean(), a.var(ddof=1), len(a), b.mean(), b.var(ddof=1), len(b), level=0.9)
    assert (lo, hi) == pytest.approx((ref.low, ref.high), abs=1e-9)


def _simulated_lift(path: str, seed: int, n: int) -> tuple[pd.Series, dict]:
    contacts, orders, truth = simulate_experiment(n, base_rate=0.10, true_lift=0.05, holdout_fraction=0.3, seed=seed)
    load(path, contacts, orders)
    res = campaign_effect(path, campaign_id=truth["campaign_id"])
    return res.iloc[0], truth


def test_interval_covers_the_true_lift_and_is_informative(db: str) -> None:
    row, truth = _simulated_lift(db, seed=11, n=8000)
    assert row.response_lift_lower <= truth["response_lift"] <= row.response_lift_upper
    assert row.purchases_lift_lower <= truth["purchases_lift"] <= row.purchases_lift_upper
    assert row.revenue_lift_lower <= truth["revenue_lift"] <= row.revenue_lift_upper
    assert row.response_lift_lower > 0  # informative: the effect is detected
    assert row.response_lift_upper - row.response_lift_lower < 0.05


def test_coverage_over_twenty_seeds(db: str) -> None:
    truths, contacts, orders = {}, [], []
    for seed in range(20):
        c, o, truth = simulate_experiment(
            2000, base_rate=0.10, true_lift=0.05, holdout_fraction=0.3, seed=100 + seed,
            id_prefix=f"s{seed}-", campaign_id=f"s{seed}")
        contacts.append(c)
        orders.append(o)
        truths[f"s{seed}"] = truth
    load(db, pd.concat(contacts, ignore_index=True), pd.concat(orders, ignore_index=True))
    res = campaign_effect(db).set_index("campaign_id").loc[list(truths)]
    hits = {}
    for name in ("response", "purchases", "revenue"):
        true = np.array([t[f"{name}_lift"] for t in truths.values()])
        hits[name] = int(((res[f"{name}_lift_lower"] <= true) & (true <= res[f"{name}_lift_upper"])).sum())
    # 95% intervals: P(fewer than 16 of 20 cover) = 0.3% under nominal coverage
    assert min(hits.values()) >= 16, hits


def test_heterogeneous_truth_is_the_population_average(db: str) -> None:
    contacts, orders, truth = simulate_experiment(
        10000, base_rate=0.1, heterogeneity={"A": 0.10, "B": 0.0}, holdout_fraction=0.3, seed=5)
    load(db, contacts, orders)
    row = campaign_effect(db, campaign_id="sim").iloc[0]
    assert 0.045 < truth["response_lift"] < 0.055
    assert row.response_lift_lower <= truth["response_lift"] <= row.response_lift_upper


def test_cli_json_and_table(hand_db: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["contact-effect", "--db", hand_db, "--campaign", "spring", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    spring = data["campaigns"][0]
    assert spring["campaign_id"] == "spring" and spring["n_control"] == 3
    assert spring["response_lift"] == pytest.approx(1 / 6, abs=EXACT)
    from patron.cli.app import out

    monkeypatch.setattr(out, "width", 250)
    assert main(["contact-effect", "--db", hand_db]) == 0
    text = capsys.readouterr().out
    assert "spring" in text and "summer" in text and "+16.67" in text
    assert main(["contact-effect", "--db", hand_db, "--campaign", "nope"]) == 2
    assert "campaign 'nope'" in capsys.readouterr().err


def test_ingested_contacts_file_end_to_end(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    import patron

    contacts, orders, truth = simulate_experiment(3000, base_rate=0.1, true_lift=0.1, holdout_fraction=0.5, seed=2)
    cpath, opath, db = tmp_path / "contacts.csv", tmp_path / "orders.csv", str(tmp_path / "e.duckdb")
    contacts.to_csv(cpath, index=False)
    orders.to_csv(opath, index=False)
    patron.ingest(opath, kind="transactions", db=db)
    patron.ingest(cpath, kind="contacts", db=db)
    assert main(["contact-effect", "--db", db, "--campaign", "sim", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)["campaigns"][0]
    assert row["n_treated"] + row["n_control"] == 3000
    assert row["response_lift_lower"] <= truth["response_lift"] <= row["response_lift_upper"]


def test_every_rule_and_option_is_documented() -> None:
    from pathlib import Path

    from patron.contact.effect import ContactEffectRules

    doc = (Path(__file__).resolve().parents[1] / "docs" / "contact-effect.md").read_text()
    for name in ContactEffectRules.model_fields:
        assert f"{name} =" in doc or f"`{name}`" in doc, name
    for option in ("--campaign", "--window-days", "--uplift", "--learner", "--base", "--dose", "--json"):
        assert option in doc, option
    assert "patron contact-effect" in doc


def test_sql_builders_speak_both_dialects() -> None:
    from datetime import datetime

    from patron.contact.effect import dose_sql, sql
    from patron.data.dialect import DUCKDB, SPARK

    built = {
        name: (fn(d=DUCKDB), fn(d=SPARK))
        for name, fn in {
            "training": lambda d: sql.training_sql(window_days=30, campaign_id="it's", d=d),
            "scoring": lambda d: sql.scoring_sql(datetime(2024, 5, 1, 12), d),
            "dose": lambda d: dose_sql.dose_cells_sql(top=10, d=d),
            "recent": lambda d: dose_sql.recent_contacts_sql(recent_months=3, top=10, d=d),
        }.items()
    }
    for name, (duck, spark) in built.items():
        assert "date_diff(" not in spark and "::" not in spark and "::" not in duck, name
        assert "INTERVAL '30' DAY" in duck or name != "training"
    assert "'it''s'" in built["training"][0]  # quoted literal
    assert "datediff(" in built["training"][1] and "date_trunc('MONTH'" in built["dose"][1]
    assert sql.campaign_arms_sql(window_days=7).count("INTERVAL '7' DAY") == 2


def test_headline_counts_only_proven_campaigns() -> None:
    from patron.contact.effect import revenue_headline

    # A raised revenue, B lowered it (both intervals exclude 0), C's interval includes 0, D has no holdout
    lift = pd.DataFrame({
        "campaign_id": ["A", "B", "C", "D"], "level": 0.95,
        "incremental_revenue": [100.0, -50.0, 30.0, np.nan],
        "incremental_revenue_lower": [20.0, -90.0, -10.0, np.nan],
        "incremental_revenue_upper": [180.0, -10.0, 70.0, np.nan],
        "revenue_proven": [True, True, False, False],
    })
    h = revenue_headline(lift)
    assert (h["proven"], h["unproven"], h["without_holdout"]) == (2, 1, 1)
    assert h["proven_campaigns"] == ["A", "B"] and h["unproven_campaigns"] == ["C"]
    # total of A and B; standard errors (half-width / z) add in quadrature, so the half-width of
    # the total is sqrt(80^2 + 40^2) whatever z is
    assert h["incremental_revenue"] == pytest.approx(50.0, abs=EXACT)
    half = np.sqrt(80.0**2 + 40.0**2)
    assert (h["incremental_revenue_lower"], h["incremental_revenue_upper"]) == pytest.approx((50 - half, 50 + half), abs=1e-9)
    assert (h["unproven_incremental_revenue"], h["unproven_incremental_revenue_lower"]) == pytest.approx((30.0, -10.0), abs=1e-9)


def test_unproven_campaign_is_not_a_headline(hand_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    from patron.report.contact_effect_section import contact_effect_section

    # spring: revenue per customer 150, 0, 0, 0 treated vs 40, 0, 0 control: the interval includes 0
    lift = campaign_effect(hand_db).set_index("campaign_id")
    assert lift.loc["spring", "incremental_revenue"] > 0 and not lift.loc["spring", "revenue_proven"]
    assert main(["contact-effect", "--db", hand_db, "--json"]) == 0
    h = json.loads(capsys.readouterr().out)["headline"]
    assert (h["proven"], h["unproven"], h["without_holdout"]) == (0, 1, 1) and h["incremental_revenue"] == 0
    assert main(["contact-effect", "--db", hand_db]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "none of the 1 measured campaigns is proven" in text and "Not proven (interval includes 0), not counted: 1" in text
    sec = contact_effect_section(hand_db, None)
    metric = {m.label: m for m in sec.metrics}["incremental revenue, proven campaigns"]
    assert metric.value == "none proven" and "excludes 0" in metric.detail
