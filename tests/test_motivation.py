"""The motivation profile (patron.relationship.motivation) on hand-made data whose answer is worked
out by hand in the comments: discount share and depth, lookback, the response to discount and
other campaigns against their holdout, content from interactions and opens, referrals, the values
survey, the scores, the classification, and the profile column in rules and equity."""

from __future__ import annotations

import pandas as pd
import pytest

import patron
from patron.data.store import connect
from patron.errors import InputError
from patron.relationship.motivation import MOTIVATION_COLUMNS, MotivationRules, motivations, rules
from patron.relationship.motivation_simulate import INTERACTIONS_DDL

AS_OF = "2024-06-30"


def _tx(rows: list[tuple[str, str, float, float | None]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "occurred_at", "amount", "discount"])


def _row(frame: pd.DataFrame, customer: str) -> pd.Series:
    return frame.set_index("customer_id").loc[customer]


@pytest.fixture
def price_db(tmp_path) -> str:
    db = str(tmp_path / "price.duckdb")
    patron.ingest(_tx([
        # a: 4 orders in the lookback, 3 at a discount of 5 on a list price of 20 (amount 15)
        ("a", "2024-01-05", 15.0, 5.0), ("a", "2024-02-05", 15.0, 5.0), ("a", "2024-03-05", 15.0, 5.0),
        ("a", "2024-04-05", 20.0, 0.0), ("a", "2024-04-06", -15.0, 0.0),  # a refund is not an order
        # b: 4 full-price orders and nothing else
        ("b", "2024-01-05", 10.0, 0.0), ("b", "2024-02-05", 10.0, 0.0), ("b", "2024-03-05", 10.0, 0.0),
        ("b", "2024-04-05", 10.0, 0.0),
        # c: a single order (weight 2 x 1/3 < 1: unknown)
        ("c", "2024-04-01", 10.0, 0.0),
        # e: 3 discounted orders more than 365 days before as_of, 2 full price inside
        ("e", "2022-01-05", 10.0, 1.0), ("e", "2022-02-05", 10.0, 1.0), ("e", "2023-06-30", 10.0, 1.0),
        ("e", "2024-05-01", 10.0, 0.0), ("e", "2024-05-02", 10.0, 0.0),
        # m: 4 orders, 2 at a discount, and a values survey answer of 5 out of 10
        ("m", "2024-01-05", 8.0, 2.0), ("m", "2024-02-05", 8.0, 2.0), ("m", "2024-03-05", 10.0, 0.0),
        ("m", "2024-04-05", 10.0, 0.0),
        # n: discount unknown on every order: no price signal
        ("n", "2024-01-05", 10.0, None), ("n", "2024-02-05", 10.0, None), ("n", "2024-03-05", 10.0, None),
    ]), kind="transactions", db=db)
    patron.ingest(pd.DataFrame({"customer_id": ["m", "m"], "occurred_at": ["2024-02-01", "2024-03-01"],
                                "score": [5.0, 1.0], "kind": ["values", "nps"]}), kind="feedback", db=db)
    patron.ingest(pd.DataFrame({"customer_id": ["p"]}), kind="customers", db=db)  # a prospect
    return db


def test_price_signal_scores_and_classes(price_db):
    m = motivations(price_db, as_of=AS_OF)
    assert sorted(m["customer_id"]) == ["a", "b", "c", "e", "m", "n"]  # buyers; the prospect has no signal
    a = _row(m, "a")
    assert a["motivation_orders"] == 4 and a["motivation_discount_share"] == pytest.approx(0.75)
    assert a["motivation_discount_depth"] == pytest.approx(15 / 60)  # 3 x 5 off 3 x 20
    # only the price signal, weight 2: D = s, V = 1 - s
    assert a["motivation_discount_score"] == pytest.approx(0.75) and a["motivation_values_score"] == pytest.approx(0.25)
    assert a["motivation_evidence"] == pytest.approx(2.0) and a["motivation"] == "discount"
    # full price and nothing else is not a values customer: other
    b = _row(m, "b")
    assert b["motivation_values_score"] == pytest.approx(1.0) and b["motivation"] == "other"
    c = _row(m, "c")
    assert c["motivation_evidence"] == pytest.approx(2 / 3) and c["motivation"] == "unknown"
    e = _row(m, "e")  # the 3 old discounted orders are outside the 365 days
    assert e["motivation_orders"] == 2 and e["motivation_discount_share"] == 0.0
    # m: s = 0.5 at weight 2, survey (5 - 0) / 10 = 0.5 at weight 1 (the nps answer is not the survey)
    mm = _row(m, "m")
    assert mm["motivation_survey"] == pytest.approx(0.5)
    assert mm["motivation_discount_score"] == pytest.approx(0.5)
    assert mm["motivation_values_score"] == pytest.approx((2 * 0.5 + 0.5) / 3)
    assert mm["motivation"] == "mixed"
    n = _row(m, "n")
    assert n["motivation_orders"] == 0 and pd.isna(n["motivation_discount_share"]) and n["motivation"] == "unknown"


def test_a_longer_lookback_and_other_thresholds_come_from_the_rules(price_db):
    m = motivations(price_db, as_of=AS_OF, config={"motivation": {"lookback_days": 1000}})
    e = _row(m, "e")  # now 5 orders, 3 discounted
    assert e["motivation_orders"] == 5 and e["motivation_discount_share"] == pytest.approx(0.6)
    strict = motivations(price_db, as_of=AS_OF, config={"motivation": {"strong": 0.8, "weak": 0.4}})
    assert _row(strict, "a")["motivation"] == "other"  # D = 0.75 < 0.8


def test_bad_rules_are_one_line_errors():
    with pytest.raises(InputError, match=r"\[motivation\].*weak must not exceed strong"):
        rules({"motivation": {"strong": 0.3, "weak": 0.5}})
    with pytest.raises(InputError, match=r"\[motivation\] colour"):
        rules({"motivation": {"colour": 1}})
    assert MotivationRules().weights.price == 2.0


@pytest.fixture
def contact_db(tmp_path) -> str:
    """Campaign D1 (discount, 2024-03-01) with a holdout, C1 (content, 2024-04-01) without, D2
    (discount) sent 10 days before as_of, so its 30-day window is still open."""
    db = str(tmp_path / "contacts.duckdb")
    patron.ingest(pd.DataFrame({"campaign_id": ["D1", "C1", "D2"], "kind": ["discount", "content", "discount"],
                                "discount_pct": [20.0, None, 10.0]}), kind="campaigns", db=db)
    sent = "2024-03-01 09:00:00"
    rows = [
        ("x", sent, "D1", "sent", False), ("x", "2024-03-01 09:05:00", "D1", "delivered", False),
        ("x", "2024-04-01 09:00:00", "C1", "sent", False), ("x", "2024-04-02 10:00:00", "C1", "opened", False),
        ("x", "2024-06-20 09:00:00", "D2", "sent", False),
        ("h1", sent, "D1", "sent", True), ("h2", sent, "D1", "sent", True),  # the holdout of D1
        ("y", "2024-04-01 09:00:00", "C1", "sent", False),  # y got C1, never opened it
        ("z", "2024-04-01 09:00:00", "ZZ", "sent", False),  # ZZ is not in campaigns: left out
    ]
    patron.ingest(pd.DataFrame(rows, columns=["customer_id", "occurred_at", "campaign_id", "kind", "in_holdout"])
                  .assign(channel="email"), kind="contacts", db=db)
    patron.ingest(_tx([
        ("x", "2024-03-06", 8.0, 2.0),   # 5 days after D1: answers it
        ("x", "2024-06-25", 10.0, 0.0),  # after D2, whose window is not closed: not counted as a response
        ("h1", "2024-03-20", 10.0, 0.0),  # one of the two held-out customers bought in the window: rate 0.5
        ("y", "2024-01-10", 10.0, 0.0), ("z", "2024-04-10", 10.0, 0.0),
    ]), kind="transactions", db=db)
    return db


def test_response_to_discount_and_other_campaigns_against_the_holdout(contact_db):
    m = motivations(contact_db, as_of=AS_OF)
    x = _row(m, "x")
    # D1: answered 1 - control 0.5 = 0.5; C1: 0 - 0 (no holdout) = 0; D2 still open: not counted
    assert x["motivation_discount_response"] == pytest.approx(0.5)
    assert x["motivation_other_response"] == pytest.approx(0.0)
    assert x["motivation_response_preference"] == pytest.approx(0.75)  # 0.5 + (0.5 - 0) / 2
    # content: the open of C1 is one day -> 1/4; price: 1 of 2 orders discounted, weight 2 x 2/3
    assert x["motivation_content_days"] == 1
    wp = 2 * 2 / 3
    assert x["motivation_discount_score"] == pytest.approx((wp * 0.5 + 0.75) / (wp + 1))
    assert x["motivation_values_score"] == pytest.approx((wp * 0.5 + 0.25 + 0.25) / (wp + 2))
    assert x["motivation"] == "discount"  # D = 0.607, V = 0.350
    y = _row(m, "y")  # sent content, never opened: content signal 0; no response signal (one kind only)
    assert y["motivation_content_days"] == 0 and pd.isna(y["motivation_response_preference"])
    z = _row(m, "z")  # only a campaign of unknown kind: no content signal
    assert pd.isna(z["motivation_content_days"]) and pd.isna(z["motivation_discount_response"])
    assert pd.isna(_row(m, "h1")["motivation_discount_response"])  # held out: no exposure of their own


@pytest.fixture
def values_db(tmp_path) -> str:
    db = str(tmp_path / "values.duckdb")
    patron.ingest(pd.DataFrame({"campaign_id": ["C1", "D1"], "kind": ["values", "discount"]}), kind="campaigns", db=db)
    patron.ingest(pd.DataFrame({"customer_id": ["v"], "occurred_at": ["2024-01-01"], "channel": ["email"],
                                "campaign_id": ["C1"], "kind": ["sent"]}), kind="contacts", db=db)
    patron.ingest(_tx([("v", "2024-01-05", 10.0, 0.0), ("v", "2024-02-05", 10.0, 0.0), ("v", "2024-03-05", 10.0, 0.0),
                       ("w", "2024-01-05", 10.0, 0.0), ("w", "2024-02-05", 10.0, 0.0), ("w", "2024-03-05", 10.0, 0.0)]),
                  kind="transactions", db=db)
    interactions = pd.DataFrame([
        ("i1", "v", "2024-02-01 10:00:00", "web", "content_view", "story-1"),
        ("i2", "v", "2024-02-01 18:00:00", "web", "content_view", "story-2"),  # same day: one day
        ("i3", "v", "2024-02-03 10:00:00", "app", "content_view", "story-3"),
        ("i4", "v", "2024-02-04 10:00:00", "email", "email_open", "C1"),  # opened a values campaign
        ("i5", "v", "2024-02-05 10:00:00", "web", "page_view", "home"),  # not content
        ("i6", "v", "2024-02-06 10:00:00", "web", "content_view", "D1"),  # the discount offer's page: promotional
        ("i7", "v", "2022-02-06 10:00:00", "web", "content_view", "old"),  # outside the lookback
    ], columns=["interaction_id", "customer_id", "occurred_at", "channel", "kind", "object"])
    with connect(db) as con:
        con.execute(INTERACTIONS_DDL)
        con.register("_i", interactions)
        con.execute("INSERT INTO interactions BY NAME SELECT interaction_id, customer_id, CAST(occurred_at AS TIMESTAMP) "
                    "AS occurred_at, channel, kind, object FROM _i")
    patron.ingest(pd.DataFrame({"referrer_id": ["v", "v"], "occurred_at": ["2024-03-01", "2024-03-02"],
                                "kind": ["shared", "clicked"]}), kind="referrals", db=db)
    patron.ingest(pd.DataFrame({"customer_id": ["v"], "occurred_at": ["2024-02-01"], "score": [9.0], "kind": ["values"]}),
                  kind="feedback", db=db)
    return db


def test_content_referrals_and_survey_make_a_values_customer(values_db):
    m = motivations(values_db, as_of=AS_OF)
    v = _row(m, "v")
    assert v["motivation_content_days"] == 3  # 1 Feb, 3 Feb, 4 Feb
    assert v["motivation_referrals"] == 1  # shared; clicked is not an act of the referrer
    assert v["motivation_survey"] == pytest.approx(0.9)
    # V = (2 x 1 + 3/4 + 1/2 + 0.9) / 5; D = 0
    assert v["motivation_values_score"] == pytest.approx((2 + 0.75 + 0.5 + 0.9) / 5)
    assert v["motivation_discount_score"] == pytest.approx(0.0)
    assert v["motivation"] == "values"
    w = _row(m, "w")  # full price, no content, no referral (both known to be 0): V = 2 / 4
    assert w["motivation_content_days"] == 0 and w["motivation_referrals"] == 0
    assert w["motivation_values_score"] == pytest.approx(0.5) and w["motivation"] == "other"


def test_profiles_carry_the_motivation_for_rules_and_equity(values_db):
    from patron.relationship.profiles import build_profiles
    from patron.relationship.segments import equity_by, evaluate

    patron.ingest(pd.DataFrame({"customer_id": ["p"]}), kind="customers", db=values_db)
    profiles = build_profiles(values_db, as_of=AS_OF).set_index("customer_id")
    assert set(MOTIVATION_COLUMNS) <= set(profiles.columns)
    assert profiles.loc["v", "motivation"] == "values" and profiles.loc["w", "motivation"] == "other"
    assert profiles.loc["p", "motivation"] == "unknown" and profiles.loc["p", "motivation_evidence"] == 0
    assert evaluate(values_db, "motivation = 'values'", as_of=AS_OF)["customer_id"].tolist() == ["v"]
    assert evaluate(values_db, "motivation_values_score > 0.6 and motivation_content_days >= 3",
                    as_of=AS_OF)["customer_id"].tolist() == ["v"]
    by = equity_by(values_db, "motivation", as_of=AS_OF).set_index("motivation")
    assert by["customers"].to_dict() == {"values": 1, "other": 1, "unknown": 1}


def test_a_misspelt_motivation_in_a_rule_is_refused(values_db):
    from patron.relationship.segments import evaluate

    with pytest.raises(InputError, match="valeus"):
        evaluate(values_db, "motivation = 'valeus'", as_of=AS_OF)


# --- generated SQL, pinned ------------------------------------------------------------------------

SNAPSHOTS = __import__("pathlib").Path(__file__).parent / "snapshots"


def generated_sql() -> dict[str, str]:
    from datetime import date

    from patron.data.dialect import SPARK
    from patron.relationship.motivation import Sources, motivation_sql

    every = Sources(contacts=True, interactions=True, referrals=True, feedback=True)
    return {
        "motivation_duckdb": motivation_sql(date(2024, 6, 30), present=every),
        "motivation_spark": motivation_sql(date(2024, 6, 30), present=every, dialect=SPARK),
        "motivation_transactions_only": motivation_sql(date(2024, 6, 30)),
    }


@pytest.mark.parametrize("name", sorted(generated_sql()))
def test_generated_sql_snapshot(name):
    """If this fails after an intended change, regenerate the snapshot and review the diff."""
    assert generated_sql()[name] + "\n" == (SNAPSHOTS / f"{name}.sql").read_text()


# --- the mix: side by side and over time ----------------------------------------------------------


def test_motivation_table_counts_buyers_by_motivation(price_db):
    from patron.relationship.motivation_mix import TABLE_COLUMNS, motivation_table

    t = motivation_table(price_db, as_of=AS_OF).set_index("motivation")
    assert list(t.reset_index().columns) == list(TABLE_COLUMNS)
    # a discount, m mixed, b and e other, c and n unknown; the prospect p is not a buyer
    assert t.index.tolist() == ["discount", "mixed", "other", "unknown"]
    assert t["customers"].tolist() == [1, 1, 2, 2]
    assert t["share"].tolist() == pytest.approx([1 / 6, 1 / 6, 2 / 6, 2 / 6])
    assert t.loc["other", "repeat_rate"] == 1.0 and t.loc["unknown", "repeat_rate"] == 0.5  # c bought once
    assert t.loc["discount", "mean_discount_share"] == pytest.approx(0.75)
    assert t["equity_share"].sum() == pytest.approx(1.0)


def test_motivation_over_time_reclassifies_at_each_period_end(price_db):
    from patron.relationship.motivation_mix import motivation_over_time

    m = motivation_over_time(price_db, as_of=AS_OF, freq="Q", periods=2)
    got = {(str(r.as_of.date()), r.motivation): r.customers for r in m.itertuples()}
    # 2024-03-31: a (3 discounted) and m (2 of 3 discounted, survey 5: D 0.67, V 0.39) discount,
    # b other, e one discounted order in the year (weight 2/3) unknown; c had not bought; n has no evidence
    # 2024-06-30: a discount, m mixed, b and e other, c unknown
    assert got == {("2024-03-31", "discount"): 2, ("2024-03-31", "other"): 1, ("2024-03-31", "unknown"): 1,
                   ("2024-06-30", "discount"): 1, ("2024-06-30", "mixed"): 1, ("2024-06-30", "other"): 2,
                   ("2024-06-30", "unknown"): 1}
    assert m.groupby("as_of")["share"].sum().tolist() == pytest.approx([1.0, 1.0])


def test_period_ends():
    from datetime import date

    from patron.relationship.motivation_mix import period_ends

    assert period_ends(date(2024, 11, 15), "Q", 3) == [date(2024, 6, 30), date(2024, 9, 30), date(2024, 11, 15)]
    assert period_ends(date(2024, 12, 31), "Y", 2) == [date(2023, 12, 31), date(2024, 12, 31)]
    assert period_ends(date(2024, 3, 31), "M", 3) == [date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31)]
    with pytest.raises(InputError, match="freq"):
        period_ends(date(2024, 3, 31), "W")


# --- the command ----------------------------------------------------------------------------------


def test_patron_motivation_json_and_errors(price_db, tmp_path, capsys):
    import json

    from patron.cli import main

    out = tmp_path / "mix.csv"
    assert main(["motivation", "--db", price_db, "--as-of", AS_OF, "--periods", "2", "--json", "--out", str(out)]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["as_of"] == AS_OF
    assert {r["motivation"]: r["customers"] for r in got["motivations"]} == {"discount": 1, "mixed": 1, "other": 2, "unknown": 2}
    assert {(r["as_of"], r["motivation"]) for r in got["over_time"]} >= {("2024-03-31", "discount"), ("2024-06-30", "mixed")}
    assert pd.read_csv(out)["customers"].sum() == 6
    assert main(["motivation", "--db", price_db, "--as-of", AS_OF]) == 0
    text = capsys.readouterr().out
    assert "Why customers buy" in text and "mixed" in text
    assert main(["motivation", "--db", price_db, "--freq", "W"]) == 2  # an input error
    assert "--freq must be one of M, Q, Y; got 'W'" in capsys.readouterr().err
    assert main(["motivation", "--db", price_db, "--config", str(_rules(tmp_path, "[motivation]\nstrong = 0.2\nweak = 0.5\n"))]) == 2
    assert "weak must not exceed strong" in capsys.readouterr().err


def _rules(folder, text: str):
    path = folder / "patron.toml"
    path.write_text(text)
    return path


# --- the service ----------------------------------------------------------------------------------


def test_service_route_gives_the_mix_of_the_stored_profiles(values_db, tmp_path):
    from fastapi.testclient import TestClient

    from patron.relationship.profiles import build_profiles
    from patron.service import create_app
    from tests.service_support import create_keys

    empty = tmp_path / "empty.duckdb"
    keys = create_keys(empty)
    with TestClient(create_app(empty), raise_server_exceptions=False) as client:
        r = client.get("/v1/motivation", auth=(keys["read"], ""))
    assert r.status_code == 404 and "no scores yet" in r.json()["error"]

    build_profiles(values_db, as_of=AS_OF)
    keys = create_keys(values_db)
    with TestClient(create_app(values_db), raise_server_exceptions=False) as client:
        assert client.get("/v1/motivation").status_code == 401
        r = client.get("/v1/motivation", auth=(keys["read"], ""))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["as_of"] == AS_OF
    rows = {m["motivation"]: m for m in body["motivations"]}
    assert list(rows) == ["values", "other"]  # v and w, in the motivations' order
    assert rows["values"]["customers"] == 1 and rows["values"]["share"] == 0.5
    assert rows["values"]["mean_values_score"] == pytest.approx((2 + 0.75 + 0.5 + 0.9) / 5)
    assert rows["other"]["mean_discount_share"] == 0.0 and rows["other"]["repeat_rate"] == 1.0
    assert '"v"' not in r.text and '"w"' not in r.text  # aggregates only


def test_profiles_without_any_evidence_skip_the_query_with_its_answer(tmp_path):
    from patron.relationship.profiles import build_profiles

    db = str(tmp_path / "plain.duckdb")
    patron.ingest(_tx([("a", "2024-01-05", 10.0, None), ("a", "2024-02-05", 10.0, None), ("b", "2024-03-05", 5.0, None)]),
                  kind="transactions", db=db)
    direct = motivations(db, as_of=AS_OF).set_index("customer_id")  # the query itself
    assert (direct["motivation"] == "unknown").all() and (direct["motivation_evidence"] == 0).all()
    profiles = build_profiles(db, as_of=AS_OF).set_index("customer_id")
    for col in ("motivation", "motivation_evidence", "motivation_orders"):
        assert profiles[col].tolist() == direct[col].tolist(), col
    assert profiles["motivation_discount_score"].isna().all() and direct["motivation_discount_score"].isna().all()
    with pytest.raises(InputError, match=r"\[motivation\]"):
        build_profiles(db, as_of=AS_OF, config={"motivation": {"strong": 2}})


def test_the_single_customer_view_carries_the_motivation(values_db):
    from fastapi.testclient import TestClient

    from patron.relationship.profiles import build_profiles
    from patron.service import create_app
    from tests.service_support import create_keys

    build_profiles(values_db, as_of=AS_OF)
    keys = create_keys(values_db)
    with TestClient(create_app(values_db), raise_server_exceptions=False) as client:
        r = client.get("/v1/customers/v", auth=(keys["read"], ""))
    assert r.status_code == 200, r.text
    scores = r.json()["scores"]
    assert scores["motivation"] == "values" and scores["motivation_content_days"] == 3


def test_equity_by_motivation_and_a_rule_from_the_command_line(price_db, tmp_path, capsys):
    import json

    from patron.cli import main

    assert main(["equity", "--by", "motivation", "--db", price_db, "--as-of", AS_OF, "--json"]) == 0
    rows = {r["motivation"]: r["customers"] for r in json.loads(capsys.readouterr().out)["rows"]}
    assert rows == {"discount": 1, "mixed": 1, "other": 2, "unknown": 3}  # the prospect p is unknown too
    rules_file = _rules(tmp_path, '[segments]\nbargain = "motivation = \'discount\' and motivation_discount_depth > 0.2"\n')
    assert main(["segments", "--db", price_db, "--as-of", AS_OF, "--rules", str(rules_file), "--json"]) == 0
    table = {r["segment"]: r["customers"] for r in json.loads(capsys.readouterr().out)["segments"]}
    assert table["bargain"] == 1  # a: 3 x 5 off 20, depth 0.25
