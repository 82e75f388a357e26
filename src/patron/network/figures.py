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


def size_figure(sizes: pd.Series) -> go.Figure:
    """Cascades per size (``sizes``: count of cascades indexed by size, people per cascade), bars on
    a log count axis whose ticks are 1-2-5 steps of each decade (:func:`patron.display.log_ticks`),
    labelled as plain counts."""
    go = graph_objects("referral figures")
    from patron.display import log_ticks, tick_text

    sizes = sizes.sort_index()
    counts = sizes.to_numpy(dtype=float)
    fig = go.Figure(go.Bar(x=sizes.index.astype(int), y=counts, hovertemplate="%{y:,} cascades of %{x} people<extra></extra>"))
    ticks = log_ticks(1.0, float(counts.max())) if counts.size else []
    fig.update_layout(title="Cascade sizes (people per cascade, seed included)", xaxis_title="cascade size (people)",
                      yaxis={"title": "cascades (log scale)", "type": "log", "tickvals": ticks, "ticktext": tick_text(ticks)},
                      template="plotly_white")
    return fig


def _size_figure(c: Cascades) -> go.Figure:
    return size_figure(c.trees.loc[c.trees["scope"] == ALL, "size"].value_counts())


def _k_figure(c: Cascades) -> go.Figure:
    from patron.network.viral import viral_by_month

    return k_figure(viral_by_month(c, campaign=ALL), level=c.rules.level)


def k_figure(k: pd.DataFrame, *, level: float = 0.95) -> go.Figure:
    """K by month of invitation (``k``: ``month, k, k_lower, k_upper``) with its interval as a
    band; when the intervals of a few thin months would flatten the others, the axis is clipped to
    the estimates (:func:`patron.display.clip_range`) and the title says so."""
    go = graph_objects("referral figures")
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=k["month"], y=k["k_upper"], mode="lines", line={"width": 0}, showlegend=False, hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=k["month"], y=k["k_lower"], mode="lines", line={"width": 0}, fill="tonexty",
                             name=f"{level:.0%} interval", hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=k["month"], y=k["k"], mode="lines+markers", name="K"))
    title = "Viral coefficient K by month of invitation"
    from patron.display import clip_range

    bounds = clip_range(k["k"], k["k_lower"], k["k_upper"], min_half_range=0.1)
    if bounds is not None:  # months with few sharers have intervals that would flatten the others
        fig.update_yaxes(range=bounds)
        title += "<br><sub>axis clipped to the estimates; wider intervals (months with few sharers) run off it</sub>"
    fig.update_layout(title=title, yaxis_title="conversions per sharer", template="plotly_white")
    return fig


METRIC_UNITS: dict[str, tuple[str, str]] = {
    "repeat_rate": ("repeat rate", "pp"), "purchase_rate": ("repeat purchases per week", "purchases"),
    "clv": ("CLV", "money"), "probability_alive": ("P(alive)", "pp"), "discount_order_share": ("share of orders on discount", "pp"),
}
"""How each compared metric (:data:`patron.network.compare.METRICS`) is named and its unit: ``pp``
(a difference of shares, drawn in percentage points), ``money`` (in the reporting currency) or a
count per week."""


def comparison_figure(differences: pd.DataFrame, *, currency: str | None = None) -> go.Figure:
    """Referred minus other customers, one small panel per unit (money, percentage points,
    repeat purchases per week), each with its own axis and the no-difference line, so that a CLV
    difference in money does not shrink the rate differences to dots. ``differences`` as
    :func:`patron.network.compare.compare_referred` returns (shares as fractions)."""
    go = graph_objects("referral figures")
    from plotly.subplots import make_subplots

    from patron.display import money_title

    d = differences.dropna(subset=["difference"]).reset_index(drop=True)
    units = [METRIC_UNITS.get(str(m), (str(m), "value"))[1] for m in d["metric"]]
    groups = list(dict.fromkeys(units))
    titles = {"pp": "difference (percentage points)", "money": money_title("difference", currency),
              "purchases": "difference (repeat purchases per week)", "value": "difference"}
    fig = make_subplots(rows=len(groups) or 1, cols=1, subplot_titles=[titles[g] for g in groups] or [""],
                        vertical_spacing=0.18 if len(groups) > 1 else 0.1)
    for row, unit in enumerate(groups, start=1):
        part = d[[u == unit for u in units]]
        scale = 100.0 if unit == "pp" else 1.0
        labels = [METRIC_UNITS.get(str(m), (str(m), ""))[0] for m in part["metric"]]
        value = part["difference"].to_numpy(dtype=float) * scale
        fig.add_trace(go.Scatter(
            x=value, y=labels, mode="markers", showlegend=False, marker={"size": 10},
            error_x={"type": "data", "symmetric": False, "array": part["upper"].to_numpy(dtype=float) * scale - value,
                     "arrayminus": value - part["lower"].to_numpy(dtype=float) * scale},
            hovertemplate="%{y}: %{x:+,.2f}" + {"pp": " pp", "money": "", "purchases": " purchases"}.get(unit, "") + "<extra></extra>",
        ), row=row, col=1)
        fig.add_vline(x=0, line_dash="dash", row=row, col=1)
        if unit == "money":
            from patron.display import plotly_money_axis

            fig.update_xaxes(**plotly_money_axis(currency), row=row, col=1)
    fig.update_layout(title="Referred minus other customers acquired in the same months (one panel per unit)",
                      height=max(320, 150 * len(groups) + 100), template="plotly_white")
    return fig


def _comparison_figure(differences: pd.DataFrame, currency: str | None = None) -> go.Figure:
    return comparison_figure(differences, currency=currency)


def report_figures(db: str | os.PathLike[str] | None = None, *, config: Any = None,
                   cascade: Cascades | None = None, currency: str | None = None) -> list[tuple[str, go.Figure]]:
    """The referral section of the HTML report: ``(name, figure)`` pairs (``cascade``: already
    built cascades of ``db``, to avoid building them again; ``currency``: of the CLV difference)."""
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

        figures.append(("referral_referred_vs_other", _comparison_figure(compare_referred(db, cascade=c).differences, currency)))
    except PatronError:
        pass
    return figures
