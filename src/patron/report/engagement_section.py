"""Report section "Engagement over time" (registered on import; see :mod:`patron.report.registry`):
weekly interactions by channel and the mean engagement score by segment (relationship status), the
share of customers per engagement trend, and, when there are purchases before and after a split,
whether engagement predicts purchases (holdout lift by band, docs/engagement.md). Aggregated in
SQL: the page holds weekly series and band totals, never a customer's own rows. Left out when the
database has no interactions."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from patron.errors import PatronError
from patron.report.html import Metric, Section
from patron.report.registry import ReportContext, register_section
from patron.value.models import ConvergenceError

WEEKS = 52
"""Weeks of history shown."""

CHANNEL_COLORS = {"web": "#2563eb", "app": "#16a34a", "email": "#d97706", "device": "#7c3aed", "store": "#dc2626", "other": "#6b7280"}


def channel_figure(by_channel: pd.DataFrame) -> go.Figure:
    """Active customers per week and channel, one line per channel."""
    fig = go.Figure()
    for channel, rows in by_channel.groupby("channel", sort=False):
        fig.add_trace(go.Scatter(x=rows["week_start"], y=rows["active_customers"], mode="lines", name=str(channel),
                                 line=dict(color=CHANNEL_COLORS.get(str(channel))),
                                 hovertemplate=f"{channel}: %{{y:,}} customers active, week of %{{x|%Y-%m-%d}}<extra></extra>"))
    fig.update_layout(title="Customers active per week, by channel", xaxis_title="week", yaxis_title="customers with an interaction",
                      height=380, margin=dict(l=10, r=10, t=40, b=40))
    return fig


def segment_figure(by_segment: pd.DataFrame, label: str) -> go.Figure:
    """Mean engagement score (percent of days active, every member counted) per week and segment."""
    fig = go.Figure()
    for segment, rows in by_segment.groupby("segment", sort=False):
        fig.add_trace(go.Scatter(x=rows["week_start"], y=rows["mean_score"], mode="lines", name=str(segment),
                                 hovertemplate=f"{segment}: %{{y:.1f}}% of days active, week of %{{x|%Y-%m-%d}}<extra></extra>"))
    fig.update_layout(title=f"Engagement score per week, by {label}", xaxis_title="week",
                      yaxis_title="mean score (% of days active)", height=380, margin=dict(l=10, r=10, t=40, b=40))
    return fig


def lift_figure(bands: pd.DataFrame) -> go.Figure:
    """Holdout lift (actual / predicted purchases) per engagement band with 95% intervals."""
    fig = go.Figure(go.Bar(
        x=bands["band"], y=bands["lift"],
        error_y=dict(type="data", symmetric=False, array=bands["lift_upper"] - bands["lift"], arrayminus=bands["lift"] - bands["lift_lower"]),
        hovertemplate="%{x}: %{y:.2f} x the prediction<extra></extra>"))
    fig.add_hline(y=1.0, line_dash="dot")
    fig.update_layout(title="Holdout purchases / BG/NBD prediction, by engagement band", xaxis_title="engagement band at the split",
                      yaxis_title="actual / predicted (95% interval)", height=340, margin=dict(l=10, r=10, t=40, b=40))
    return fig


def _trend_counts(ctx: ReportContext) -> dict[str, int] | None:
    """Customers per engagement trend label of the report's profiles, counted in SQL; ``None``
    when the profiles have no such column."""
    with ctx.profile_rows() as con:
        columns = {d[0] for d in con.execute("SELECT * FROM customer_profiles LIMIT 0").description}
        if "engagement_trend_label" not in columns:
            return None
        rows = con.execute("SELECT engagement_trend_label, count(*) FROM customer_profiles "
                           "WHERE engagement_trend_label IS NOT NULL GROUP BY 1").fetchall()
    return {str(k): int(n) for k, n in rows}


@register_section("engagement", order=58, title="Engagement over time")
def engagement_section(db: str, ctx: ReportContext) -> Section | None:
    """Engagement over time by channel and segment; ``None`` without interactions."""
    from patron.relationship.engagement import engagement_lift, engagement_over_time

    ctx.store_profiles()  # the segments are the stored profiles' statuses as of the report date
    series = engagement_over_time(db, as_of=ctx.as_of, weeks=WEEKS)
    if series is None or series.by_channel.empty:
        return None
    label = series.segment_column or "all customers"
    sec = Section("engagement", "Engagement over time",
                  intro="Interactions from every touchpoint (web, app, e-mail, devices, stores) per week. The engagement "
                        "score is the percent of days with at least one interaction; its trend is the least-squares slope "
                        "over the last 12 weeks (rising from +1 point per week). See docs/engagement.md.")
    last = series.by_segment[series.by_segment["week_start"] == series.by_segment["week_start"].max()]
    active = int(series.by_channel[series.by_channel["week_start"] == series.by_channel["week_start"].max()]["active_customers"].max())
    sec.metrics.append(Metric("customers active in the last week (busiest channel)", f"{active:,}"))
    if not last.empty:
        mean = float((last["mean_score"] * last["members"]).sum() / max(int(last["members"].sum()), 1))
        sec.metrics.append(Metric("mean score, last week", f"{mean:.1f}% of days"))
    labels = _trend_counts(ctx)
    if labels is not None:
        for name in ("rising", "falling"):
            sec.metrics.append(Metric(f"engagement {name}", f"{int(labels.get(name, 0)):,} customers"))
    sec.figures += [channel_figure(series.by_channel), segment_figure(series.by_segment, label)]
    try:
        lift = ctx.memo("engagement_lift", lambda: engagement_lift(db, holdout_end=ctx.as_of, config=ctx.config))
    except (PatronError, ConvergenceError) as exc:  # too few purchases to fit, or no fit: the series still show
        sec.notes.append(f"Holdout lift by engagement band not computed: {exc}")
    else:
        bands = lift.bands
        sec.figures.append(lift_figure(bands))
        table = bands[["band", "customers", "score_min", "score_max", "actual", "predicted", "lift", "lift_lower", "lift_upper"]].rename(
            columns={"score_min": "score from", "score_max": "score to", "lift_lower": "lift low", "lift_upper": "lift high"})
        sec.tables.append((f"Does engagement predict purchases? BG/NBD fitted to {lift.calibration_end}, holdout to "
                           f"{lift.holdout_end} ({lift.holdout_weeks} weeks); bands by score at the split", table))
        sec.notes.append("A lift above 1 means the band bought more than BG/NBD predicted from its purchases alone: "
                         "engagement carries information the purchase history does not.")
    return sec
