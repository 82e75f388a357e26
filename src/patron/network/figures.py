"""Figures of the referral analysis for the HTML report (plotly): cascade trees of the largest
cascades, the cascade size distribution, K by month, and referred vs other customers.

Tree layout: depth (generation) on y, leaves in depth-first order on x, each inner node centred
over its leaves; computed one generation at a time.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from patron.errors import PatronError
from patron.extras import graph_objects
from patron.network.cascades import Cascades, cascades
from patron.network.sql import ALL

if TYPE_CHECKING:
    import plotly.graph_objects as go


def tree_layout(nodes: pd.DataFrame) -> pd.DataFrame:
    """``x, y`` for the nodes of one tree (columns ``customer_id, parent_id, depth``; one root).

    y is minus the depth; leaves get x = 0, 1, 2, ... in depth-first order (children ordered by
    acquisition time, then id); an inner node sits at the middle of its leaves."""
    order = [c for c in ("depth", "acquired_at", "customer_id") if c in nodes]
    t = nodes.sort_values(order, kind="stable").reset_index(drop=True)
    index = pd.Series(np.arange(len(t)), index=t["customer_id"])
    parent = index.reindex(t["parent_id"].fillna("\x00")).fillna(-1).to_numpy(dtype=np.int64)
    depth = t["depth"].to_numpy(dtype=np.int64)
    rank = t.groupby(t["parent_id"].fillna("\x00")).cumcount().to_numpy()
    width = len(str(int(rank.max(initial=0))))
    path = np.array([""] * len(t), dtype=object)
    for d in range(1, int(depth.max(initial=0)) + 1):  # one pass per generation
        at = np.flatnonzero(depth == d)
        path[at] = path[parent[at]] + pd.Series(rank[at]).astype(str).str.zfill(width).to_numpy(dtype=object) + "."
    has_child = np.zeros(len(t), bool)
    has_child[parent[parent >= 0]] = True
    leaves = np.flatnonzero(~has_child)
    x_min = np.full(len(t), np.inf)
    x_max = np.full(len(t), -np.inf)
    leaf_x = np.empty(len(leaves))
    leaf_x[np.argsort(path[leaves].astype(str), kind="stable")] = np.arange(len(leaves))
    x_min[leaves] = x_max[leaves] = leaf_x
    for d in range(int(depth.max(initial=0)), 0, -1):
        at = np.flatnonzero(depth == d)
        np.minimum.at(x_min, parent[at], x_min[at])
        np.maximum.at(x_max, parent[at], x_max[at])
    return t.assign(x=(x_min + x_max) / 2.0, y=-depth.astype(float))


def cascade_tree_figure(nodes: pd.DataFrame, *, title: str) -> go.Figure:
    """A picture of one cascade: edges from each person to the people they brought."""
    go = graph_objects("referral figures")
    t = tree_layout(nodes)
    pos = t.set_index("customer_id")[["x", "y"]]
    kids = t[t["parent_id"].notna()]
    px, py = pos.reindex(kids["parent_id"])["x"].to_numpy(), pos.reindex(kids["parent_id"])["y"].to_numpy()
    ex = np.column_stack([px, kids["x"].to_numpy(), np.full(len(kids), np.nan)]).ravel()
    ey = np.column_stack([py, kids["y"].to_numpy(), np.full(len(kids), np.nan)]).ravel()
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=ex, y=ey, mode="lines", line={"width": 1, "color": "#999"}, hoverinfo="skip", showlegend=False))
    fig.add_trace(go.Scatter(x=t["x"], y=t["y"], mode="markers", text=t["customer_id"], hoverinfo="text", showlegend=False,
                             marker={"size": 7, "color": t["depth"], "colorscale": "Viridis"}))
    fig.update_layout(title=title, xaxis={"visible": False}, yaxis={"title": "generation", "tickvals": sorted(set(t["y"])),
                      "ticktext": [str(int(-v)) for v in sorted(set(t["y"]))]}, template="plotly_white")
    return fig


def _size_figure(c: Cascades) -> go.Figure:
    go = graph_objects("referral figures")
    sizes = c.trees.loc[c.trees["scope"] == ALL, "size"].value_counts().sort_index()
    fig = go.Figure(go.Bar(x=sizes.index.astype(int), y=sizes.to_numpy()))
    fig.update_layout(title="Cascade sizes (people per cascade, seed included)", xaxis_title="cascade size",
                      yaxis={"title": "cascades", "type": "log"}, template="plotly_white")
    return fig


def _k_figure(c: Cascades) -> go.Figure:
    go = graph_objects("referral figures")
    from patron.network.viral import viral_by_month

    k = viral_by_month(c, campaign=ALL)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=k["month"], y=k["k_upper"], mode="lines", line={"width": 0}, showlegend=False, hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=k["month"], y=k["k_lower"], mode="lines", line={"width": 0}, fill="tonexty",
                             name=f"{c.rules.level:.0%} interval", hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=k["month"], y=k["k"], mode="lines+markers", name="K"))
    fig.update_layout(title="Viral coefficient K by month of invitation", yaxis_title="conversions per sharer", template="plotly_white")
    return fig


def _comparison_figure(differences: pd.DataFrame) -> go.Figure:
    go = graph_objects("referral figures")
    d = differences.dropna(subset=["difference"])
    fig = go.Figure(go.Scatter(
        x=d["difference"], y=d["metric"], mode="markers",
        error_x={"type": "data", "symmetric": False, "array": d["upper"] - d["difference"], "arrayminus": d["difference"] - d["lower"]},
    ))
    fig.add_vline(x=0, line_dash="dash")
    fig.update_layout(title="Referred minus other customers acquired in the same months", xaxis_title="difference", template="plotly_white")
    return fig


def report_figures(db: str | os.PathLike[str] | None = None, *, config: Any = None,
                   cascade: Cascades | None = None) -> list[tuple[str, go.Figure]]:
    """The referral section of the HTML report: ``(name, figure)`` pairs (``cascade``: already
    built cascades of ``db``, to avoid building them again)."""
    c = cascade if cascade is not None else cascades(db, config=config)
    figures: list[tuple[str, go.Figure]] = []
    big = c.trees[(c.trees["scope"] == ALL) & (c.trees["size"] >= 2) & (c.trees["size"] <= c.rules.max_tree_nodes)]
    for i, tree in enumerate(big.head(c.rules.largest_cascades).itertuples(index=False), start=1):
        nodes = c.nodes[(c.nodes["scope"] == ALL) & (c.nodes["tree_id"] == tree.tree_id)]
        title = f"Cascade of {tree.tree_id}: {tree.size} people, {tree.generations} generations, structural virality {tree.structural_virality:.2f}"
        figures.append((f"referral_cascade_{i}", cascade_tree_figure(nodes, title=title)))
    figures.append(("referral_cascade_sizes", _size_figure(c)))
    figures.append(("referral_k_by_month", _k_figure(c)))
    try:
        from patron.network.compare import compare_referred

        figures.append(("referral_referred_vs_other", _comparison_figure(compare_referred(db, cascade=c).differences)))
    except PatronError:
        pass
    return figures
