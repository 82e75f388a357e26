"""Plotly figures of contact effects for the HTML report: :func:`report_figures`.

Each figure builder takes a result (a DataFrame) and returns a figure; :func:`report_figures`
computes the results from a database and leaves out what the data cannot support.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from patron.contact.effect.lift import Config, campaign_effect
from patron.errors import PatronError
from patron.extras import graph_objects

if TYPE_CHECKING:
    import plotly.graph_objects as go

PERCENT: float = 100.0
"""Percentage points per unit of a share."""

DOSE_MIN_SEGMENT_MONTHS = 100
"""Segments with fewer customer-months than this are left out of the dose-response figure (their
intervals span most of the scale and squash the others' curves); the figure's title says which."""

MIN_CLIP_HALF_RANGE = 1.0
"""Margin (percentage points) around a clipped axis whose estimates are all 0."""


def lift_figure(lift: pd.DataFrame) -> go.Figure:
    """Response-rate lift (percentage points) per campaign with its interval as error bars."""
    go = graph_objects("contact-effect figures")
    d = lift.dropna(subset=["response_lift"])
    fig = go.Figure(go.Scatter(
        x=d["campaign_id"].astype(str), y=d["response_lift"] * PERCENT, mode="markers",
        error_y={"type": "data", "symmetric": False,
                 "array": (d["response_lift_upper"] - d["response_lift"]) * PERCENT,
                 "arrayminus": (d["response_lift"] - d["response_lift_lower"]) * PERCENT},
        customdata=d[["n_treated", "n_control"]].to_numpy(),
        hovertemplate="%{x}: %{y:.2f} pp<br>treated %{customdata[0]:,}, control %{customdata[1]:,}<extra></extra>",
        name="response lift",
    ))
    level = float(d["level"].iloc[0]) if len(d) else 0.95
    fig.add_hline(y=0, line_dash="dot", line_color="grey")
    fig.update_layout(title=f"Campaign lift in response rate vs holdout ({level:.0%} intervals)",
                      xaxis_title="campaign", yaxis_title="response rate lift (percentage points)")
    return fig


def qini_figure(curve: pd.DataFrame, *, label: str = "model") -> go.Figure:
    """The Qini curve of an uplift model against random targeting."""
    go = graph_objects("contact-effect figures")
    fig = go.Figure()
    fig.add_scatter(x=curve["fraction"] * PERCENT, y=curve["qini"] * PERCENT, mode="lines", name=label)
    fig.add_scatter(x=curve["fraction"] * PERCENT, y=curve["random"] * PERCENT, mode="lines", name="random", line_dash="dash")
    fig.update_layout(title="Qini curve of the uplift model (held-out customers)", xaxis_title="customers targeted (%)",
                      yaxis_title="incremental responders (% of customers)")
    return fig


def _clipped_range(values: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> list[float] | None:
    """:func:`patron.display.clip_range` with a margin of :data:`MIN_CLIP_HALF_RANGE` points."""
    from patron.display import clip_range

    return clip_range(values, lower, upper, min_half_range=MIN_CLIP_HALF_RANGE)


def segment_order(segments: Any, *, config: Config = None) -> list[str]:
    """Dose-response segments in a meaningful order: ``all`` first, then statuses (new to lost) and
    value tiers (most valuable first, as ``[tiers]`` of ``config``), others last."""
    from patron.display import ordered
    from patron.relationship.categories import kind_order

    return ordered(segments, ("all", *kind_order("status"), *kind_order("value_tier", config=config)))


def dose_figure(curves: pd.DataFrame, *, min_months: int = DOSE_MIN_SEGMENT_MONTHS, config: Config = None) -> go.Figure:
    """Per segment: the effect of each further contact on the share of months with a purchase
    (adjusted, percentage points, with intervals) and the unsubscribe rate (% of months), by
    contacts per month; one panel per unit.

    Segments with fewer than ``min_months`` customer-months are left out and named in the title;
    segments follow :func:`segment_order` (tiers as ``[tiers]`` of ``config`` names them). When an interval reaches beyond the
    estimates' range, the axis is clipped to that range (padded) and the title says so."""
    graph_objects("contact-effect figures")  # the report extra, or one line naming it
    from plotly.subplots import make_subplots

    size = curves.groupby("segment", sort=False)["customer_months"].sum()
    small = size[size < min_months]
    shown = curves[~curves["segment"].isin(small.index)]
    order = segment_order(shown["segment"], config=config)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("effect of one more contact on months with a purchase (pp)",
                                                        "unsubscribes (% of months)"))
    clipped = []
    for col, (rate, lo, hi) in enumerate((("gain", "gain_lower", "gain_upper"),
                                          ("unsubscribe_rate", "unsubscribe_rate_lower", "unsubscribe_rate_upper")), start=1):
        for segment in order:
            g = shown[shown["segment"].astype(str) == segment].sort_values("bin_order")
            fig.add_scatter(
                x=g["dose_bin"], y=g[rate] * PERCENT, mode="lines+markers", name=segment, legendgroup=segment,
                showlegend=col == 1, row=1, col=col,
                error_y={"type": "data", "symmetric": False, "array": (g[hi] - g[rate]) * PERCENT,
                         "arrayminus": (g[rate] - g[lo]) * PERCENT},
                customdata=g["customer_months"].to_numpy(),
                hovertemplate=f"{segment}, %{{x}} contacts: %{{y:.2f}}{' pp' if col == 1 else '%'}"
                              "<br>%{customdata:,} customer-months<extra></extra>",
            )
        arr = [shown[c].to_numpy(dtype=float) * PERCENT for c in (rate, lo, hi)]
        bounds = _clipped_range(*arr)
        if bounds is not None:
            fig.update_yaxes(range=bounds, row=1, col=col)
            clipped.append("effect" if col == 1 else "unsubscribes")
    fig.add_hline(y=0, line_dash="dot", line_color="grey", row=1, col=1)
    fig.update_xaxes(title_text="contacts received in the month")
    fig.update_yaxes(title_text="percentage points", row=1, col=1)
    fig.update_yaxes(title_text="% of customer-months", row=1, col=2)
    notes = []
    if len(small):
        notes.append(f"left out, under {min_months:,} customer-months: "
                     + ", ".join(f"{s} ({int(n):,})" for s, n in small.items()))
    if clipped:
        notes.append(f"{' and '.join(clipped)} axis clipped to the estimates; wider intervals run off it")
    fig.update_layout(title="Dose-response: contacts per month vs purchases and unsubscribes (within alike customer-months; "
                            "observational)" + (f"<br><sub>{'; '.join(notes)}</sub>" if notes else ""),
                      margin={"t": 120 if notes else 80})
    fig.layout.meta = {"left_out": [str(s) for s in small.index], "clipped": clipped}
    return fig


def report_figures(db: str | os.PathLike[str] | None = None, *, config: Config = None, uplift: bool = True) -> list[tuple[str, go.Figure]]:
    """``(name, figure)`` pairs for the report: ``campaign_lift``, ``qini`` (when an uplift model
    can be fitted; set ``uplift=False`` to skip the fit) and ``dose_response``. Figures whose data
    are missing are left out; nothing is written to the database."""
    from patron.contact.effect.dose import dose_response
    from patron.contact.effect.uplift import fit_uplift

    figures: list[tuple[str, go.Figure]] = []
    try:
        lift = campaign_effect(db, config=config)
        if lift["response_lift"].notna().any():
            figures.append(("campaign_lift", lift_figure(lift)))
    except PatronError:
        return figures
    if uplift:
        try:
            res = fit_uplift(db, config=config, score=False, write=False)
            figures.append(("qini", qini_figure(res.qini_curve, label=res.label)))
        except PatronError:
            pass
    try:
        figures.append(("dose_response", dose_figure(dose_response(db, config=config), config=config)))
    except PatronError:
        pass
    return figures
