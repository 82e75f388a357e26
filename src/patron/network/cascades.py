"""Referral cascades built in the engine: who brought whom, generation by generation.

Definitions (``docs/referrals.md`` has the long form):

* An **acquisition edge** referrer -> referred exists when a referral row names both and the
  referred person was acquired by it: a row of an acquisition kind (``signed_up``, ``purchased``)
  or a first purchase within ``conversion_window_days`` after the first referral touch.
* Reported and not counted: **self-referrals**; referrals to someone **already a customer** (first
  purchase before the first touch); **duplicate claims** (a person acquired by several referrers:
  the earliest first touch wins); **cycles** (edges no seed reaches).
* A **seed** is a sharer (a referrer with a referral row) not acquired by a referral in the scope;
  its **cascade** (tree) is everyone it brought, directly or not. Scopes are ``(all)`` and each
  campaign (``(none)`` for rows without a campaign).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from patron.data.store import reader, table_exists
from patron.errors import NoDataError
from patron.network import sql as S
from patron.network.rules import ReferralRules, referral_rules
from patron.network.stats import structural_virality, subtree_sizes
from patron.settings import get_settings

SECONDS_PER_DAY = 86_400.0
"""Seconds in one day, to express time spans in days."""


@dataclass(frozen=True)
class Cascades:
    """Everything the referral analysis computed in the engine.

    ``nodes``: one row per person per scope (``scope, tree_id, customer_id, parent_id, depth,
    acquired_at, first_touch, first_purchase, subtree_size``); ``trees``: one row per cascade
    (``scope, tree_id, size, generations, structural_virality``); ``anomalies``: the referrals not
    counted (``referrer_id, referred_id, campaign_id, reason, occurred_at``); ``sharers`` and
    ``sharers_by_month``: the per-scope sums behind K; ``offers``: the limit checks per acquisition.
    """

    nodes: pd.DataFrame
    trees: pd.DataFrame
    anomalies: pd.DataFrame
    sharers: pd.DataFrame
    sharers_by_month: pd.DataFrame
    offers: pd.DataFrame
    rules: ReferralRules


def _walk(con: duckdb.DuckDBPyConnection, max_generations: int) -> None:
    """Fill ``_nodes`` from ``_scoped`` and ``_sharer_rows``: seeds, then one join per generation."""
    con.execute(S.ROOTS_SQL).fetchall()
    for depth in range(max_generations):
        con.execute(S.generation_sql(depth)).fetchall()
        added = con.execute(f"SELECT count(*) FROM _nodes WHERE depth = {depth + 1}").fetchall()[0][0]
        if not added:
            break


def build_in(con: duckdb.DuckDBPyConnection, rules: ReferralRules) -> None:
    """Create the temp tables ``_first_purchase, _pairs, _edges, _anomalies, _scoped,
    _sharer_rows, _nodes`` on an open connection holding ``referrals`` (and ``transactions``)."""
    con.execute(S.first_purchase_sql(has_transactions=table_exists(con, "transactions"))).fetchall()
    con.execute(S.pairs_sql(acquisition_kinds=rules.acquisition_kinds, window_days=rules.conversion_window_days)).fetchall()
    con.execute(S.EDGES_SQL).fetchall()
    con.execute(S.ANOMALIES_SQL).fetchall()
    con.execute(S.scoped_edges_sql(by_campaign=False)).fetchall()
    con.execute(S.sharer_rows_sql(by_campaign=False)).fetchall()
    _walk(con, rules.max_generations)
    con.execute(S.CYCLES_SQL).fetchall()
    con.execute(S.DROP_CYCLES_SQL).fetchall()
    con.execute(S.scoped_edges_sql(by_campaign=True)).fetchall()
    con.execute(S.sharer_rows_sql(by_campaign=True)).fetchall()
    _walk(con, rules.max_generations)


def _tree_frames(nodes: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Add ``subtree_size`` to ``nodes`` and compute one row per tree."""
    if nodes.empty:
        trees = pd.DataFrame(columns=["scope", "tree_id", "size", "generations", "structural_virality"])
        return nodes.assign(subtree_size=pd.Series(dtype=float)), trees
    nodes = nodes.sort_values(["scope", "depth", "tree_id", "customer_id"], kind="stable").reset_index(drop=True)
    index = pd.Series(np.arange(len(nodes)), index=pd.MultiIndex.from_frame(nodes[["scope", "customer_id"]]))
    keys = pd.MultiIndex.from_arrays([nodes["scope"], nodes["parent_id"].fillna("\x00")])
    parent = index.reindex(keys).fillna(-1).to_numpy(dtype=np.int64)
    tree_codes, tree_keys = pd.factorize(pd.MultiIndex.from_frame(nodes[["scope", "tree_id"]]))
    depth = nodes["depth"].to_numpy(dtype=np.int64)
    size, virality = structural_virality(parent, depth, tree_codes)
    nodes = nodes.assign(subtree_size=subtree_sizes(parent, depth))
    generations = np.zeros(len(tree_keys), dtype=np.int64)
    np.maximum.at(generations, tree_codes, depth)
    trees = pd.DataFrame({
        "scope": tree_keys.get_level_values(0), "tree_id": tree_keys.get_level_values(1),
        "size": size.astype(np.int64), "generations": generations, "structural_virality": virality,
    })
    return nodes, trees.sort_values(["scope", "size", "tree_id"], ascending=[True, False, True]).reset_index(drop=True)


def cascades(db: str | os.PathLike[str] | None = None, *, config: Any = None) -> Cascades:
    """Build the referral cascades of database ``db`` (see the module docstring for definitions).

    ``config``: the rules file, a parsed dict, or :class:`ReferralRules`.
    """
    rules = referral_rules(config)
    with reader(db if db is not None else get_settings().db) as con:
        if not table_exists(con, "referrals") or not con.execute("SELECT count(*) FROM referrals").fetchall()[0][0]:
            raise NoDataError(f"database {db or get_settings().db} holds no referrals: run patron ingest FILE --kind referrals first")
        build_in(con, rules)
        nodes = con.execute(
            "SELECT n.*, f.first_purchase FROM _nodes n LEFT JOIN _first_purchase f ON f.customer_id = n.customer_id"
        ).df()
        anomalies = con.execute("SELECT * FROM _anomalies ORDER BY reason, occurred_at, referrer_id, referred_id").df()
        sharers = con.execute(S.sharers_sql(invitation_kinds=rules.invitation_kinds, by_month=False)).df()
        by_month = con.execute(S.sharers_sql(invitation_kinds=rules.invitation_kinds, by_month=True)).df()
        offers = con.execute(S.offer_flags_sql()).df() if table_exists(con, "offers") else pd.DataFrame(
            columns=["offer_id", "referrer_id", "referred_id", "acquired_at", "n_th", "within_window", "within_quota", "invitation_ok"])
    if not offers.empty:
        offers["inside_limits"] = offers[["within_window", "within_quota", "invitation_ok"]].all(axis=1)
    nodes, trees = _tree_frames(nodes)
    return Cascades(nodes=nodes, trees=trees, anomalies=anomalies, sharers=sharers.drop(columns="month"),
                    sharers_by_month=by_month, offers=offers, rules=rules)


def days_between(later: pd.Series, earlier: pd.Series) -> pd.Series:
    """``later - earlier`` in (fractional) days."""
    return (pd.to_datetime(later) - pd.to_datetime(earlier)).dt.total_seconds() / SECONDS_PER_DAY
