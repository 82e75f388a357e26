"""The report's "Why customers buy" section (registered on import; see :mod:`patron.report.registry`):
each motivation's share of the buyers and of customer equity, their loyalty side by side, and how
the mix moved over the last quarters (:mod:`patron.relationship.motivation_mix`). Only aggregates
reach the page. Left out when no buyer has a motivation other than ``unknown`` (no discount,
campaign, content, referral or survey data)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from patron.display import money_title
from patron.errors import PatronError
from patron.relationship.motivation import MOTIVATIONS
from patron.relationship.motivation_mix import (
    DEFAULT_PERIODS,
    motivation_over_time,
    motivation_table,
)
from patron.report import Metric, Section, register_section
from patron.report.figures import _layout

MOTIVATION_COLORS: dict[str, str] = {
    "discount": "#f97316", "values": "#16a34a", "mixed": "#a855f7", "other": "#9aa5b1", "unknown": "#d4d4d8",
}
"""Colour of each motivation in every figure of the section."""

TABLE = {
    "motivation": "motivation", "customers": "customers", "share": "share of buyers (%)",
    "equity_share": "share of equity (%)", "mean_clv": "mean CLV", "repeat_rate": "repeat rate (%)",
    "active_share": "new or active (%)", "mean_probability_alive": "mean P(alive)",
    "mean_discount_share": "orders at a discount (%)", "mean_discount_score": "discount score",
    "mean_values_score": "values score",
}
"""Columns of the side-by-side table and their headings."""

PERCENT_COLUMNS = ("share", "equity_share", "repeat_rate", "active_share", "mean_discount_share")
"""Shares shown in percent in the table."""


def share_figure(table: pd.DataFrame) -> go.Figure:
    """Share of buyers and share of customer equity per motivation (grouped bars); ``table`` is
    :func:`~patron.relationship.motivation_mix.motivation_table`."""
    fig = go.Figure()
    for column, name, opacity in (("share", "share of buyers", 1.0), ("equity_share", "share of equity", 0.55)):
        fig.add_trace(go.Bar(
            x=table["motivation"].astype(str).tolist(), y=table[column].astype(float).tolist(), name=name,
            marker_color=[MOTIVATION_COLORS.get(m, "#64748b") for m in table["motivation"]], opacity=opacity,
            customdata=table["customers"].astype(float).tolist(),
            hovertemplate=f"%{{x}}: {name} %{{y:.1%}} (%{{customdata:,.0f}} customers)<extra></extra>",
        ))
    fig = _layout(fig, "Why customers buy: share of buyers and of customer equity", barmode="group",
                  xaxis_title="motivation", yaxis_title="share")
    fig.update_yaxes(tickformat=".0%")
    return fig


def loyalty_figure(table: pd.DataFrame) -> go.Figure:
    """Repeat rate and share in an active status per motivation (grouped bars)."""
    fig = go.Figure()
    for i, (column, name) in enumerate((("repeat_rate", "repeat rate"), ("active_share", "new or active"))):
        fig.add_trace(go.Bar(
            x=table["motivation"].astype(str).tolist(), y=table[column].astype(float).tolist(), name=name,
            marker_color=("#2563eb", "#14b8a6")[i], hovertemplate=f"%{{x}}: {name} %{{y:.1%}}<extra></extra>",
        ))
    fig = _layout(fig, "Loyalty by motivation", barmode="group", xaxis_title="motivation", yaxis_title="share of buyers")
    fig.update_yaxes(tickformat=".0%", range=[0, 1])
    return fig


def mix_figure(history: pd.DataFrame) -> go.Figure:
    """The motivation mix at each period end (stacked areas of shares); ``history`` is
    :func:`~patron.relationship.motivation_mix.motivation_over_time`."""
    fig = go.Figure()
    wide = history.pivot(index="as_of", columns="motivation", values="share").fillna(0.0)
    counts = history.pivot(index="as_of", columns="motivation", values="customers").fillna(0)
    days = [d.strftime("%Y-%m-%d") for d in pd.to_datetime(wide.index)]
    for m in [m for m in MOTIVATIONS if m in wide.columns]:
        fig.add_trace(go.Scatter(
            x=days, y=wide[m].astype(float).tolist(), name=m, mode="lines", stackgroup="mix",
            line={"color": MOTIVATION_COLORS[m]}, customdata=counts[m].astype(float).tolist(),
            hovertemplate=f"{m} %{{x}}: %{{y:.1%}} (%{{customdata:,.0f}} customers)<extra></extra>",
        ))
    fig = _layout(fig, "The motivation mix over time (customers with evidence in the year before each date)",
                  xaxis_title="as of", yaxis_title="share of customers")
    fig.update_yaxes(tickformat=".0%", range=[0, 1])
    fig.update_xaxes(type="category")
    return fig


def side_by_side(table: pd.DataFrame, currency: str | None = None) -> pd.DataFrame:
    """The table shown in the report: shares in percent, CLV in ``currency``, scores 0-1."""
    out = table[list(TABLE)].copy()
    for c in PERCENT_COLUMNS:
        out[c] = out[c].astype(float) * 100.0
    names = dict(TABLE, mean_clv=money_title("mean CLV", currency))
    return out.rename(columns=names)


@register_section("motivation", order=88, title="Why customers buy")
def motivation_section(db: str, ctx: object) -> Section | None:
    """Motivations side by side and over time; ``None`` when every buyer is ``unknown``."""
    config = getattr(ctx, "config", None)
    as_of = getattr(ctx, "as_of", None)
    settings = ctx.value() if hasattr(ctx, "value") else None
    currency = ctx.currency() if hasattr(ctx, "currency") else None
    try:
        if hasattr(ctx, "store_profiles"):
            ctx.store_profiles()  # the report's profiles (written once), which the table reads
        elif hasattr(ctx, "profiles"):
            ctx.profiles()
        table = motivation_table(db, as_of=as_of, config=config, settings=settings)
    except PatronError:
        return None
    known = table[table["motivation"] != "unknown"]
    if known.empty:
        return None
    sec = Section("motivation", "Why customers buy",
                  intro="Discount seekers and customers who share the brand's values, told apart by behaviour: orders at "
                        "a discount, the response to discount offers against other campaigns (each against its "
                        "holdout), non-promotional content, referrals and the values survey, over the year before "
                        "the report date. See docs/motivation.md for the scores and thresholds.")
    shares = dict(zip(table["motivation"], table["share"], strict=True))
    for m in ("discount", "values"):
        if m in shares:
            row = table[table["motivation"] == m].iloc[0]
            sec.metrics.append(Metric(f"{m} motivation", f"{shares[m]:.1%}", f"{int(row['customers']):,} buyers, "
                                      f"{row['equity_share']:.1%} of equity" if row["equity_share"] == row["equity_share"] else "",
                                      "Share of the customers who bought by the report date."))
    sec.figures.append(share_figure(table))
    sec.figures.append(loyalty_figure(table))
    try:
        history = motivation_over_time(db, as_of=as_of, freq="Q", periods=DEFAULT_PERIODS, config=config)
        if history["as_of"].nunique() > 1:
            sec.figures.append(mix_figure(history))
    except PatronError as exc:
        sec.notes.append(f"No mix over time: {exc}")
    sec.tables.append(("Motivations side by side (buyers)", side_by_side(table, currency)))
    return sec
