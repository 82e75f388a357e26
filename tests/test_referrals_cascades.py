"""Referral cascades on hand-made data with known answers.

Expected values are worked out by hand in the comments (reach, generations, distances between
nodes), or by an independent brute-force computation (all-pairs shortest paths).
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patron.cli import main
from patron.data.ingest import ingest
from patron.network import (
    ReferralRules,
    campaign_summary,
    cascades,
    referral_value,
    referrals_from_segment_events,
    report_figures,
    structural_virality,
    subtree_sizes,
    tree_layout,
    viral_by_month,
)
from patron.network.compare import METRICS
from patron.network.viral import ANOMALY_REASONS

TOL = 1e-9
"""Tolerance of exact (hand-computed) values."""

COLUMNS = ["referrer_id", "referred_id", "kind", "occurred_at", "campaign_id"]


def _db(tmp_path, rows, transactions=None):
    path = str(tmp_path / "r.duckdb")
    ingest(pd.DataFrame(rows, columns=COLUMNS), kind="referrals", db=path)
    if transactions is not None:
        ingest(pd.DataFrame(transactions, columns=["customer_id", "occurred_at", "amount"]), kind="transactions", db=path)
    return path


def _row(summary, scope):
    return summary.set_index("scope").loc[scope]


def _star(hub, leaves, campaign, day=2):
    return [(hub, leaf, "signed_up", f"2024-01-{day:02d}", campaign) for leaf in leaves]


# --- structural virality: closed forms and brute force -------------------------------------------

def _brute_force_virality(parent):
    """Mean shortest-path distance over all pairs, by Floyd-Warshall on the undirected tree."""
    n = len(parent)
    d = np.full((n, n), np.inf)
    np.fill_diagonal(d, 0)
    for child, p in enumerate(parent):
        if p >= 0:
            d[child, p] = d[p, child] = 1
    for k in range(n):
        d = np.minimum(d, d[:, [k]] + d[[k], :])
    return d[np.triu_indices(n, 1)].mean()


def _depths(parent):
    depth = np.zeros(len(parent), dtype=np.int64)
    for i, p in enumerate(parent):  # parents come first
        depth[i] = 0 if p < 0 else depth[p] + 1
    return depth


@pytest.mark.parametrize("n", [2, 3, 5, 10, 50])
def test_star_and_path_virality_closed_forms(n):
    # Goel et al. (2015): a star of n nodes has virality 2(n-1)/n, a path of n nodes (n+1)/3
    star = np.array([-1] + [0] * (n - 1))
    path = np.arange(-1, n - 1)
    for parent, expected in ((star, 2 * (n - 1) / n), (path, (n + 1) / 3)):
        size, vir = structural_virality(parent, _depths(parent), np.zeros(n, dtype=np.int64))
        assert size[0] == n
        assert vir[0] == pytest.approx(expected, abs=TOL)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=14))
def test_virality_matches_brute_force_on_random_trees(draws):
    parent = np.array([-1] + [draws[i] % (i + 1) for i in range(len(draws))])
    depth = _depths(parent)
    _size, vir = structural_virality(parent, depth, np.zeros(len(parent), dtype=np.int64))
    assert vir[0] == pytest.approx(_brute_force_virality(parent), abs=TOL)
    # subtree sizes: each node counts itself and all its descendants
    sizes = subtree_sizes(parent, depth)
    for v in range(len(parent)):
        below = {v}
        for u in range(v + 1, len(parent)):
            if parent[u] in below:
                below.add(u)
        assert sizes[v] == len(below)


# --- cascades from the store ---------------------------------------------------------------------

def test_reach_generations_and_virality_per_campaign(tmp_path):
    star = _star("a", ["b", "c", "d", "e"], "star")                                  # star of 5
    path = [("p1", "p2", "purchased", "2024-02-01", "path"), ("p2", "p3", "purchased", "2024-02-02", "path"),
            ("p3", "p4", "purchased", "2024-02-03", "path")]                        # path of 4
    broom = [("r", "s", "signed_up", "2024-03-01", "broom"), ("r", "t", "signed_up", "2024-03-01", "broom"),
             ("s", "u", "signed_up", "2024-03-02", "broom")]                        # r-(s-u, t)
    rows = [*star, *path, *broom]
    summary = campaign_summary(cascades(_db(tmp_path, rows)))
    star, path, broom, total = (_row(summary, s) for s in ("star", "path", "broom", "(all)"))
    assert (star.seeds, star.reach, star.generations) == (1, 5, 1)
    assert star.structural_virality == pytest.approx(2 * 4 / 5, abs=TOL)
    assert (path.seeds, path.reach, path.generations) == (1, 4, 3)
    assert path.structural_virality == pytest.approx(5 / 3, abs=TOL)
    # broom r-s, r-t, s-u: distances rs1 rt1 ru2 st2 su1 tu3 = 10 over 6 pairs
    assert (broom.reach, broom.generations) == (4, 2)
    assert broom.structural_virality == pytest.approx(10 / 6, abs=TOL)
    assert (total.seeds, total.reach, total.referred, total.generations) == (3, 13, 10, 3)
    assert total.size_distribution == {4: 2, 5: 1}
    assert total.amplification == pytest.approx(13 / 3, abs=TOL)


def test_k_is_invitations_per_sharer_times_conversion(tmp_path):
    rows = [("a", "b", "invited", "2024-01-01", "k"), ("a", "c", "invited", "2024-01-01", "k"), ("a", "d", "invited", "2024-01-01", "k"), ("a", "x", "invited", "2024-01-01", "k"), ("b", "e", "invited", "2024-02-01", "k"), ("b", "f", "invited", "2024-02-01", "k"), *_star("a", ["b", "c", "d"], "k", day=3), ("b", "e", "signed_up", "2024-02-03", "k")]
    c = cascades(_db(tmp_path, rows))
    k = _row(campaign_summary(c), "k")
    # sharers a (4 invitations, 3 converted) and b (2 invitations, 1 converted)
    assert (k.sharers, k.invitations, k.conversions) == (2, 6, 4)
    assert k.invitations_per_sharer == pytest.approx(3.0, abs=TOL)
    assert k.conversion_per_invitation == pytest.approx(4 / 6, abs=TOL)
    assert k.k == pytest.approx(2.0, abs=TOL)
    # conversions per sharer 3 and 1: sd = sqrt(2), se = 1, so the 95% interval is 2 -/+ 1.96
    assert k.k_lower == pytest.approx(2 - 1.959963985, abs=1e-6)
    assert k.viral_cycle_days == pytest.approx(31.0, abs=TOL)  # b acquired 01-03, e 02-03; a has no purchase
    months = viral_by_month(c, campaign="k").set_index("month")
    assert months["k"].tolist() == [3.0, 1.0]  # January: a brought 3; February: b brought 1


def test_anomalies_are_reported_and_not_counted(tmp_path):
    rows = [
        ("h", "h", "signed_up", "2024-01-01", "c1"),                                  # self-referral
        ("p", "q", "signed_up", "2024-01-01", "c1"), ("q", "p", "signed_up", "2024-01-02", "c1"),  # cycle
        ("a", "z", "invited", "2024-03-01", "c1"), ("a", "z", "signed_up", "2024-03-02", "c1"),    # z bought in 2023
        ("a", "b", "signed_up", "2024-01-05", "c1"), ("e", "b", "signed_up", "2024-01-09", "c1"),  # b claimed twice
        ("a", "y", "invited", "2024-01-01", "c1"),                                    # y buys 9 days later
        ("a", "w", "invited", "2024-01-01", "c1"),                                    # w buys 60 days later
    ]
    tx = [("z", "2023-01-01", 10.0), ("y", "2024-01-10", 5.0), ("w", "2024-03-01", 5.0)]
    c = cascades(_db(tmp_path, rows, tx))
    reasons = c.anomalies.groupby("reason")["referred_id"].apply(sorted).to_dict()
    assert reasons == {"already_customer": ["z"], "cycle": ["p", "q"], "duplicate_claim": ["b"], "self_referral": ["h"]}
    assert c.anomalies.set_index("reason").loc["duplicate_claim", "referrer_id"] == "e"  # the first referral (a) wins
    nodes = c.nodes[c.nodes["scope"] == "(all)"]
    referred = set(nodes.loc[nodes["depth"] > 0, "customer_id"])
    assert referred == {"b", "y"}  # y: first purchase within 30 days of the first touch
    assert set(nodes.loc[nodes["depth"] == 0, "customer_id"]) == {"a", "e"}  # not h, p, q
    total = _row(campaign_summary(c), "(all)")
    assert (total.reach, total.conversions) == (4, 2)
    assert (total.self_referral, total.already_customer, total.duplicate_claim, total.cycle) == (1, 1, 1, 2)
    assert total.median_days_to_first_purchase == pytest.approx(9.0, abs=TOL)


def test_window_comes_from_the_rules(tmp_path):
    rows = [("a", "w", "invited", "2024-01-01", "c1")]
    db = _db(tmp_path, rows, [("w", "2024-03-01", 5.0)])
    assert cascades(db).nodes["depth"].max() == 0
    assert cascades(db, config={"referrals": {"conversion_window_days": 60}}).nodes["depth"].max() == 1


def test_referral_value_discounts_by_generation(tmp_path):
    rows = [*_star("a", ["b", "c"], "v"), ("b", "d", "signed_up", "2024-01-05", "v"), ("d", "e", "signed_up", "2024-01-06", "v")]
    c = cascades(_db(tmp_path, rows), config={"referrals": {"generation_discount": 0.5}})
    clv = pd.Series({"b": 10.0, "c": 20.0, "d": 40.0, "e": 80.0})
    value = referral_value(c, clv).set_index("customer_id")
    # a: b + c at full weight, d at 0.5, e at 0.25 = 10 + 20 + 20 + 20
    assert value.loc["a", "referral_value"] == pytest.approx(70.0, abs=TOL)
    assert value.loc["a", "direct_value"] == pytest.approx(30.0, abs=TOL)
    assert value.loc["b", "referral_value"] == pytest.approx(40 + 40.0, abs=TOL)
    assert (value.loc["a", "direct_referred"], value.loc["a", "total_referred"]) == (2, 4)
    assert "e" not in value.index


def test_offer_limits(tmp_path):
    rows = [
        ("a", "b", "invited", "2024-01-01", "o1"), ("a", "b", "signed_up", "2024-01-02", "o1"),
        ("a", "c", "invited", "2024-01-02", "o1"), ("a", "c", "signed_up", "2024-01-03", "o1"),
        ("a", None, "shared", "2024-01-02", "o1"), ("a", "d", "signed_up", "2024-01-05", "o1"),
        ("a", "f", "signed_up", "2024-01-09", "o2"), ("a", "g", "signed_up", "2024-01-20", "o2"),
    ]
    db = _db(tmp_path, rows)
    offers = pd.DataFrame({
        "offer_id": ["o1", "o2"], "starts_at": ["2024-01-01", "2024-01-01"], "ends_at": ["2024-01-04", None],
        "duration_days": [None, "10"], "max_referrals": ["2", None], "invitation_only": ["true", "false"],
    })
    assert ingest(offers, kind="offers", db=db).accepted == 2
    flags = cascades(db).offers.set_index("referred_id")
    assert flags.loc[["b", "c"], "inside_limits"].all()
    assert not flags.loc["d", ["within_window", "within_quota", "invitation_ok"]].any()  # late, third, not invited
    assert flags.loc["f", "inside_limits"] and not flags.loc["g", "within_window"]  # 8 vs 19 days after the start


def test_bad_rows_go_to_rejects(tmp_path):
    db = str(tmp_path / "r.duckdb")
    bad = pd.DataFrame({
        "referrer_id": ["a", None, "a", "a"], "referred_id": ["b", "c", "d", "e"],
        "kind": ["invited", "invited", "shouted", "invited"], "occurred_at": ["2024-01-01", "2024-01-01", "2024-01-01", "31/02/2024"],
    })
    result = ingest(bad, kind="referrals", db=db)
    assert (result.accepted, result.rejected) == (1, 3)
    with duckdb.connect(db) as con:
        reasons = dict(con.execute('SELECT "row", reason FROM rejects ORDER BY "row"').fetchall())
    assert reasons[2] == "missing referrer_id"
    assert reasons[3].startswith('kind "shouted" is not one of shared, invited')
    assert reasons[4].startswith('unparseable timestamp "31/02/2024"')


def test_tree_layout_puts_parents_over_their_leaves():
    nodes = pd.DataFrame({"customer_id": list("abcde"), "parent_id": [None, "a", "a", "b", "b"], "depth": [0, 1, 1, 2, 2]})
    xy = tree_layout(nodes).set_index("customer_id")
    # leaves in depth-first order: d, e (under b), then c
    assert xy.loc[["d", "e", "c"], "x"].tolist() == [0.0, 1.0, 2.0]
    assert xy.loc["b", "x"] == 0.5 and xy.loc["a", "x"] == 1.0
    assert xy["y"].tolist() == [0.0, -1.0, -1.0, -2.0, -2.0]


def test_segment_events_map_to_referrals(tmp_path):
    events = [
        {"event": "Product Shared", "userId": "a", "messageId": "m1", "timestamp": "2024-01-01T10:00:00Z",
         "properties": {"share_via": "email", "recipient": "b@example.com", "campaign_id": "spring"}},
        {"event": "Cart Shared", "anonymousId": "anon", "messageId": "m2", "timestamp": "2024-01-01T11:00:00Z",
         "properties": {"share_via": "whatsapp", "url": "https://x/c/1"}},
        {"event": "Referral Accepted", "userId": "b@example.com", "messageId": "m3", "timestamp": "2024-01-02T09:00:00Z",
         "properties": {"referrer_id": "a"}, "context": {"campaign": {"name": "spring"}}},
        {"event": "Order Completed", "userId": "c", "messageId": "m4", "timestamp": "2024-01-03T09:00:00Z",
         "context": {"referrer": {"id": "a", "type": "link", "link": "L9"}}},
        {"event": "Page Viewed", "userId": "c", "messageId": "m5", "timestamp": "2024-01-03T08:00:00Z",
         "context": {"referrer": {"id": "a", "type": "link"}}},
        {"event": "Page Viewed", "userId": "z", "messageId": "m6", "timestamp": "2024-01-03T08:00:00Z"},
    ]
    frame = referrals_from_segment_events(events).set_index("referral_id")
    assert list(frame.index) == ["m1", "m2", "m3", "m4", "m5"]
    assert frame.loc["m1", ["referrer_id", "referred_id", "kind", "channel", "campaign_id"]].tolist() == ["a", "b@example.com", "invited", "email", "spring"]
    assert frame.loc["m2", ["referrer_id", "kind", "link_id"]].tolist() == ["anon", "shared", "https://x/c/1"]
    assert pd.isna(frame.loc["m2", "referred_id"])
    assert frame.loc["m3", ["referrer_id", "referred_id", "kind", "campaign_id"]].tolist() == ["a", "b@example.com", "signed_up", "spring"]
    assert frame.loc["m4", ["referrer_id", "referred_id", "kind", "link_id", "channel"]].tolist() == ["a", "c", "purchased", "L9", "link"]
    assert frame.loc["m5", "kind"] == "clicked"
    db = str(tmp_path / "s.duckdb")
    assert ingest(frame.reset_index(), kind="referrals", db=db).accepted == 5


def test_cli_json_and_errors(tmp_path, capsys):
    db = _db(tmp_path, _star("a", ["b", "c", "d"], "star"))
    assert main(["referrals", "--db", db, "--json", "--no-compare"]) == 0
    data = json.loads(capsys.readouterr().out)
    star = next(c for c in data["campaigns"] if c["scope"] == "star")
    assert (star["seeds"], star["reach"], star["generations"]) == (1, 4, 1)
    assert star["structural_virality"] == pytest.approx(1.5, abs=TOL)
    assert main(["referrals", "--db", db, "--campaign", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["referrals", "--db", db, "--no-compare"]) == 0
    assert "star" in capsys.readouterr().out
    empty = str(tmp_path / "empty.duckdb")
    ingest(pd.DataFrame({"customer_id": ["x"], "occurred_at": ["2024-01-01"], "amount": [1.0]}), db=empty)
    assert main(["referrals", "--db", empty]) == 2
    assert "no referrals" in capsys.readouterr().err


def test_report_figures_draw_the_largest_cascades(tmp_path):
    rows = [*_star("a", ["b", "c", "d"], "f"), ("b", "e", "signed_up", "2024-01-05", "f"), ("x", "y", "signed_up", "2024-01-05", "g")]
    figures = dict(report_figures(_db(tmp_path, rows)))
    assert {"referral_cascade_1", "referral_cascade_2", "referral_cascade_sizes", "referral_k_by_month"} <= set(figures)
    markers = figures["referral_cascade_1"].data[1]
    assert len(markers.x) == 5 and "5 people" in figures["referral_cascade_1"].layout.title.text  # the largest first


def test_docs_name_every_rule_and_reason():
    text = (Path(__file__).resolve().parents[1] / "docs" / "referrals.md").read_text()
    for name in ReferralRules.model_fields:
        assert f"`{name}`" in text, name
    for reason in ANOMALY_REASONS:
        assert f"`{reason}`" in text, reason
    for metric in METRICS:
        assert f"`{metric}`" in text, metric
    assert "patron referrals" in text
