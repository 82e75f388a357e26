"""RFM scores, value tiers, the segment table, equity by column, and the CLI, on hand-made tables.

RFM scores are checked against an independent computation (pandas ``qcut`` of the rank, and
``numpy.array_split`` of the sorted customers, which is what ``NTILE`` specifies); tiers and the
segment table against values worked out by hand in the comments."""

from __future__ import annotations

import json
import math

import duckdb
import numpy as np
import pandas as pd
import pytest

from patron.cli import main
from patron.config import section
from patron.data.store import connect
from patron.errors import InputError
from patron.relationship.profiles import PROFILE_COLUMNS
from patron.relationship.rfm import RfmRules, rfm_sql
from patron.relationship.segments import definitions, equity_by, members, segment_table
from patron.relationship.tiers import TierRules, tiers_sql

SHARE_TOLERANCE = 1e-12
"""Shares and sums of a few hand values agree to rounding."""

# --- RFM --------------------------------------------------------------------------------------


def rfm_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "customer_id": [f"c{i:05d}" for i in range(n)],
        "as_of": pd.Timestamp("2024-12-31"),
        "last_purchase": pd.Timestamp("2024-12-31") - pd.to_timedelta(rng.permutation(n) * 3 + 1, unit="D"),  # distinct days
        "recency": rng.permutation(n) * 0.5,
        "n_orders": rng.geometric(0.5, n),  # heavy ties, like real order counts
        "total_spend": rng.permutation(n) * 1.25 + 10.0,  # distinct
    })


def run_rfm(frame: pd.DataFrame, rules: RfmRules | None = None) -> pd.DataFrame:
    con = duckdb.connect()
    con.register("src", frame)
    out = con.sql(rfm_sql("src", rules)).df().set_index("customer_id").loc[frame["customer_id"]]
    con.close()
    return out


def ntile(order_keys: list[np.ndarray], bins: int) -> np.ndarray:
    """Independent NTILE: sort by the keys (last key first in lexsort), split positions into
    ``bins`` nearly equal consecutive groups (the first n mod bins one larger)."""
    order = np.lexsort(order_keys[::-1])
    score = np.empty(order.size, dtype=int)
    for k, part in enumerate(np.array_split(order, bins), start=1):
        score[part] = k
    return score


def test_rfm_quintiles_match_qcut_of_the_rank_for_distinct_values():
    frame = rfm_frame(1000, seed=1)  # 1000 = 5 x 200: qcut of the rank and NTILE coincide
    got = run_rfm(frame)
    days = (frame["as_of"] - frame["last_purchase"]).dt.days
    labels = [1, 2, 3, 4, 5]
    expected_r = pd.qcut((-days).rank(method="first"), 5, labels=labels).astype(int).to_numpy()
    expected_m = pd.qcut(frame["total_spend"].rank(method="first"), 5, labels=labels).astype(int).to_numpy()
    assert np.array_equal(got["recency_score"].to_numpy(), expected_r)
    assert np.array_equal(got["monetary_score"].to_numpy(), expected_m)
    assert np.bincount(got["frequency_score"])[1:].tolist() == [200] * 5


def test_rfm_ntile_with_ties_and_uneven_sizes_matches_array_split():
    frame = rfm_frame(1003, seed=2)
    got = run_rfm(frame)
    cid = frame["customer_id"].to_numpy()
    days = (frame["as_of"] - frame["last_purchase"]).dt.days.to_numpy()
    assert np.array_equal(got["frequency_score"], ntile([frame["n_orders"].to_numpy(), cid], 5))  # ties broken by customer_id
    assert np.array_equal(got["recency_score"], ntile([-days, cid], 5))
    assert np.bincount(got["monetary_score"])[1:].tolist() == [201, 201, 201, 200, 200]  # first n mod 5 groups larger
    digits = got["recency_score"].astype(str) + got["frequency_score"].astype(str) + got["monetary_score"].astype(str)
    assert (got["rfm_score"] == digits).all()


def test_rfm_ties_together_share_a_score_and_lifetimes_recency_option():
    frame = rfm_frame(500, seed=3)
    got = run_rfm(frame, RfmRules(bins=4, ties="together", recency_days_since_last=False))
    n = len(frame)
    expected_f = 1 + np.floor(4 * (frame["n_orders"].rank(method="min") - 1) / n).astype(int)
    expected_r = 1 + np.floor(4 * (frame["recency"].rank(method="min") - 1) / n).astype(int)
    assert np.array_equal(got["frequency_score"], expected_f.to_numpy())
    assert np.array_equal(got["recency_score"], expected_r.to_numpy())
    same = got.groupby(frame.set_index("customer_id")["n_orders"])["frequency_score"].nunique()
    assert (same == 1).all()


def test_rfm_leaves_prospects_out():
    frame = rfm_frame(10, seed=4)
    frame.loc[3, ["n_orders", "total_spend", "recency"]] = np.nan
    frame.loc[3, "last_purchase"] = pd.NaT
    con = duckdb.connect()
    con.register("src", frame)
    ids = [r[0] for r in con.sql(rfm_sql("src")).fetchall()]
    con.close()
    assert len(ids) == 9 and "c00003" not in ids


# --- tiers ------------------------------------------------------------------------------------

TIER_CLV = [100.0, 90.0, 90.0, 80.0, 70.0, 60.0, 50.0, 40.0, 30.0, 20.0]


def run_tiers(clv: list[float], rules: TierRules, prospects: int = 0) -> list[str | None]:
    frame = pd.DataFrame({
        "customer_id": [f"c{i:02d}" for i in range(len(clv) + prospects)],
        "clv": clv + [0.0] * prospects,
        "n_orders": [1.0] * len(clv) + [np.nan] * prospects,
    })
    con = duckdb.connect()
    con.register("src", frame)
    got = dict(con.sql(tiers_sql("src", rules)).fetchall())
    con.close()
    return [got.get(c) for c in frame["customer_id"]]


def test_quantile_tiers_keep_ties_together():
    # n = 10, shares 10% / 20%: 100 has 0% above -> a; the two 90s have 10% above (not < 10%)
    # but < 30% -> b; 80 has 30% above -> c; the rest c. Prospects get no tier.
    rules = TierRules(names=["a", "b", "c"], shares=[0.1, 0.2])
    assert run_tiers(TIER_CLV, rules, prospects=2) == ["a", "b", "b"] + ["c"] * 7 + [None, None]


def test_default_quantile_tiers_on_distinct_values():
    clv = list(np.random.default_rng(5).permutation(1000).astype(float))
    got = run_tiers(clv, TierRules())
    order = np.argsort(-np.array(clv))  # highest first: 10 platinum, 90 gold, 400 silver, 500 bronze
    expected = np.array(["bronze"] * 1000, dtype=object)
    expected[order[:10]], expected[order[10:100]], expected[order[100:500]] = "platinum", "gold", "silver"
    assert got == expected.tolist()


def test_threshold_tiers():
    rules = TierRules(method="threshold", names=["hi", "mid", "lo"], thresholds=[80, 50])
    assert run_tiers(TIER_CLV, rules) == ["hi"] * 4 + ["mid"] * 3 + ["lo"] * 3


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"shares": [0.5]}, "give 3 shares for 4 tier names"),
        ({"shares": [0.5, 0.4, 0.2]}, "sum to less than 1"),
        ({"method": "threshold", "names": ["a", "b"], "thresholds": []}, "give 1 thresholds"),
        ({"method": "threshold", "names": ["a", "b", "c"], "thresholds": [1, 2]}, "thresholds must decrease"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_tier_rules_are_validated(raw, message):
    with pytest.raises(InputError, match=r"\[tiers\]") as info:
        section("tiers", TierRules, {"tiers": raw})
    assert message in str(info.value)


# --- segment table, members, equity by --------------------------------------------------------

HAND_PROFILES = [
    # id,  status,    clv,   tier,       category, R, F, M
    ("c01", "active", 500.0, "platinum", "books", 5, 5, 5),
    ("c02", "active", 200.0, "gold", "books", 5, 4, 4),
    ("c03", "cooling", 150.0, "gold", "music", 4, 4, 3),
    ("c04", "at_risk", 100.0, "silver", "music", 2, 5, 4),
    ("c05", "at_risk", 50.0, "silver", "books", 2, 2, 2),
    ("c06", "lapsed", 30.0, "bronze", "music", 1, 3, 1),
    ("c07", "lost", 10.0, "bronze", None, 1, 1, 1),
    ("c08", "new", 60.0, "silver", "books", 5, 1, 2),
    ("c09", "prospect", 0.0, None, None, None, None, None),
    ("c10", "lapsed", 0.0, "bronze", "music", 1, 1, 2),
]
TOTAL_CLV = 1100.0


@pytest.fixture
def profiles_db(tmp_path) -> str:
    """A database whose customer_profiles table holds :data:`HAND_PROFILES` (other columns NULL)."""
    db = str(tmp_path / "p.duckdb")
    frame = pd.DataFrame(HAND_PROFILES, columns=["customer_id", "status", "clv", "value_tier", "top_category", "recency_score", "frequency_score", "monetary_score"])
    frame["as_of"] = pd.Timestamp("2024-12-31")
    select = ", ".join(
        f'CAST({"f." + chr(34) + c + chr(34) if c in frame.columns else "NULL"} AS {t}) AS "{c}"' for c, t in PROFILE_COLUMNS.items()
    )
    with connect(db) as con:
        con.register("f", frame)
        con.execute(f"CREATE TABLE customer_profiles AS SELECT {select} FROM f").fetchall()
    return db


def test_segment_table_counts_sums_and_status_mix(profiles_db):
    table = segment_table(profiles_db, segments={
        "big": "clv >= 150",  # c01, c02, c03: 850
        "at_risk_music": "status = 'at_risk' and top_category = 'music'",  # c04: 100
        "nobody": "clv > 10000",
    }).set_index("segment")
    assert table.loc["big", "customers"] == 3
    assert table.loc["big", "total_clv"] == 850.0
    assert abs(table.loc["big", "mean_clv"] - 850.0 / 3) < SHARE_TOLERANCE * 1000
    assert abs(table.loc["big", "equity_share"] - 850.0 / TOTAL_CLV) < SHARE_TOLERANCE
    assert (table.loc["big", "active"], table.loc["big", "cooling"], table.loc["big", "lost"]) == (2, 1, 0)
    assert table.loc["at_risk_music", "customers"] == 1 and table.loc["at_risk_music", "at_risk"] == 1
    assert table.loc["nobody", "customers"] == 0 and table.loc["nobody", "total_clv"] == 0.0
    assert math.isnan(table.loc["nobody", "mean_clv"])
    assert table.loc["big", "rule"] == "clv >= 150"
    assert list(table.columns) == ["rule", "customers", "total_clv", "mean_clv", "equity_share", "prospect", "new", "active", "cooling", "at_risk", "lapsed", "lost"]


def test_equity_shares_of_a_partition_sum_to_one(profiles_db):
    tiers = {t: f"value_tier = '{t}'" for t in ("platinum", "gold", "silver", "bronze")}
    table = segment_table(profiles_db, segments={**tiers, "no_tier": "value_tier is null"})
    assert table["customers"].sum() == len(HAND_PROFILES)
    assert abs(table["equity_share"].sum() - 1.0) < SHARE_TOLERANCE
    assert abs(table["total_clv"].sum() - TOTAL_CLV) < SHARE_TOLERANCE * TOTAL_CLV


def test_members_by_name_or_rule(profiles_db):
    # built-in champions: R, F and M scores all >= 4 and new/active/cooling -> c01 (555) and c02 (544);
    # c03 has M = 3, c04 R = 2.
    assert members(profiles_db, "champions").tolist() == ["c01", "c02"]
    assert members(profiles_db, "clv > 100 and status in [active, cooling]").tolist() == ["c01", "c02", "c03"]
    # the cell lost: lapsed or lost, frequency score 1-2 -> c07 (lost, F1), c10 (lapsed, F1); c05 is at_risk
    assert members(profiles_db, "rfm_cell = 'lost'").tolist() == ["c07", "c10"]
    assert members(profiles_db, "returned").tolist() == []  # a true/false column is a rule (all NULL here)
    with pytest.raises(InputError, match=r'^unknown segment "champs" \(did you mean champions\?\)$'):
        members(profiles_db, "champs")


def test_equity_by_column_and_rfm_cell(profiles_db):
    by_cat = equity_by(profiles_db, "category").set_index("top_category", drop=False)
    assert by_cat["equity"].tolist() == [810.0, 280.0, 10.0]  # books, music, none (c07 10 + c09 0)
    assert by_cat["customers"].tolist() == [4, 4, 2]
    assert abs(by_cat["equity_share"].sum() - 1.0) < SHARE_TOLERANCE
    cells = {(k if isinstance(k, str) else None): v for k, v in equity_by(profiles_db, "rfm_cell").set_index("rfm_cell")["equity"].items()}
    # recency level from the status (new/active high, cooling/at_risk mid, lapsed/lost low), frequency
    # from the score (1-2 low, 3 mid, 4-5 high): champions c01, c02 (active, F5/F4); cant_lose_them
    # c03 (cooling F4), c04 (at_risk F5); about_to_sleep c05 (at_risk F2); hibernating c06 (lapsed F3);
    # lost c07 (lost F1), c10 (lapsed F1); new_customers c08 (new F1); prospects no cell.
    assert cells == {"champions": 700.0, "cant_lose_them": 250.0, "about_to_sleep": 50.0, "hibernating": 30.0, "lost": 10.0,
                     "new_customers": 60.0, None: 0.0}
    with pytest.raises(InputError, match="did you mean clv"):
        equity_by(profiles_db, "clvv")


def test_definitions_merge_builtins_config_and_rules_file(tmp_path):
    rules = tmp_path / "extra.toml"
    rules.write_text('[segments]\nvip = "clv > 400"\nbooks = "top_category = \'books\'"\n')
    defs = definitions(config={"segments": {"vip": "clv > 300", "champions": ""}}, rules=rules)
    assert "champions" not in defs and "lost_low_value" in defs
    assert defs["vip"] == ("clv > 400", str(rules))
    assert defs["books"][0] == "top_category = 'books'"


def test_a_bad_rule_in_a_file_names_file_and_segment(profiles_db, tmp_path):
    rules = tmp_path / "bad.toml"
    rules.write_text('[segments]\nvip_at_risk = "status in [at_risk] and clvv > 200"\n')
    with pytest.raises(InputError) as info:
        segment_table(profiles_db, rules=rules)
    assert str(info.value) == f'{rules}: segment "vip_at_risk": unknown column "clvv" at character 25 (did you mean clv?)'


# --- CLI ---------------------------------------------------------------------------------------


def test_cli_malformed_rule_exits_2_with_one_line(profiles_db, tmp_path, capsys):
    rules = tmp_path / "bad.toml"
    rules.write_text('[segments]\nbroken = "status in [at_risk"\n')
    code = main(["segments", "--db", profiles_db, "--rules", str(rules)])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err
    assert lines[0] == f'patron: error: {rules}: segment "broken": expected "," or "]" in the list, found the end of the rule at character 19'


def test_cli_segments_and_equity_json(profiles_db, tmp_path, capsys):
    rules = tmp_path / "r.toml"
    rules.write_text('[segments]\nbig = "clv >= 150"\n')
    out_file = tmp_path / "segments.csv"
    assert main(["segments", "--db", profiles_db, "--rules", str(rules), "--json", "--out", str(out_file)]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {r["segment"]: r for r in data["segments"]}
    assert rows["big"]["customers"] == 3 and rows["big"]["total_clv"] == 850.0
    assert set(rows) >= {"champions", "lost_low_value", "big"}
    assert pd.read_csv(out_file)["segment"].tolist() == [r["segment"] for r in data["segments"]]
    assert main(["equity", "--db", profiles_db, "--by", "value_tier", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {r["value_tier"]: r["equity"] for r in data["rows"]} == {"platinum": 500.0, "gold": 350.0, "silver": 210.0, "bronze": 40.0, None: 0.0}
    assert main(["segments", "--db", profiles_db]) == 0
    assert "lost_low_value" in capsys.readouterr().out


# --- docs ----------------------------------------------------------------------------------------


def test_docs_describe_every_column_segment_cell_and_setting():
    from pathlib import Path

    from patron.relationship.rfm import RFM_CELLS
    from patron.relationship.segments import BUILTIN_SEGMENTS

    text = (Path(__file__).resolve().parents[1] / "docs" / "segments.md").read_text()
    for column in PROFILE_COLUMNS:
        assert f"| {column} |" in text, column
    for name, rule in BUILTIN_SEGMENTS.items():
        assert f"| {name} | `{rule}` |" in text, name
    for cell in RFM_CELLS.values():
        assert cell in text, cell
    for model, header in ((RfmRules, "[rfm]"), (TierRules, "[tiers]")):
        assert header in text
        for field in model.model_fields:
            assert f"{field} = " in text, field
    for command in ("patron profiles", "patron segments", "patron equity --by", "patron equity --over-time", "patron backtest segments --as-of"):
        assert command in text, command


def test_evaluate_runs_a_rule(profiles_db):
    from patron.relationship.segments import evaluate

    assert evaluate(profiles_db, "value_tier in [gold, silver] and clv < 150", name="mid")["customer_id"].tolist() == ["c04", "c05", "c08"]
    with pytest.raises(InputError, match=r'^segment "mid": unknown column "clvv"'):
        evaluate(profiles_db, "clvv < 1", name="mid")


# --- generated SQL, pinned ------------------------------------------------------------------------

SNAPSHOTS = __import__("pathlib").Path(__file__).parent / "snapshots"


def generated_sql() -> dict[str, str]:
    from datetime import date

    from patron.data.dialect import SPARK
    from patron.relationship.profiles import profiles_sql
    from patron.relationship.segments import BUILTIN_SEGMENTS, segment_table_sql
    from patron.relationship.segments.rules import columns_from_types, compile_rule

    cols = columns_from_types(PROFILE_COLUMNS)
    compiled = {name: (rule, compile_rule(rule, cols, name=name)) for name, rule in BUILTIN_SEGMENTS.items()}
    return {
        "segments_profiles_duckdb": profiles_sql(date(1998, 6, 30), prospects=True),
        "segments_rfm_spark": rfm_sql("base", dialect=SPARK),
        "segments_tiers_threshold": tiers_sql("base", TierRules(method="threshold", thresholds=[1000, 300, 100])),
        "segments_table_builtin": segment_table_sql(compiled),
    }


@pytest.mark.parametrize("name", sorted(generated_sql()))
def test_generated_sql_snapshot(name):
    """If this fails after an intended change, regenerate the snapshot and review the diff."""
    assert generated_sql()[name] + "\n" == (SNAPSHOTS / f"{name}.sql").read_text()
