"""Figures of the customer equity report: pure functions from DataFrames to plotly Figures.

Each function takes the table another part of patron returns (equity over time, a segment table,
a migration matrix, cohorts, per-customer CLV) and draws it without reading files or databases, so
that the figure's data can be checked against its input. Money is in the reporting currency
(``currency``: an ISO code or the settings label, shown by :mod:`patron.display` as a symbol or
code on axes and hovers); shares are fractions in [0, 1] shown as percentages. Categories are drawn
in their meaningful order (:func:`patron.relationship.categories.category_order`), not by size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from patron.display import hover_money, money, money_title, plotly_money_axis
from patron.relationship.categories import category_order
from patron.relationship.status_rules import STATUSES

STATUS_ORDER: tuple[str, ...] = STATUSES
"""Relationship statuses in the order they are drawn (from not yet a customer to gone)."""

STATUS_COLORS: dict[str, str] = {
    "prospect": "#9aa5b1", "new": "#3b82f6", "active": "#16a34a", "cooling": "#eab308",
    "at_risk": "#f97316", "lapsed": "#dc2626", "lost": "#57534e",
}
"""Colour of each status, shared by every figure that shows statuses."""

GRID = "#ebf0f8"
"""Colour of grid and zero lines. Figures keep plotly's default template and set a white
background and these light lines themselves (as ``plotly_white`` does): assigning a named template
to each figure costs a tenth of a second per figure for validation."""

LOG_SKEW_THRESHOLD = 2.0
"""Sample skewness of positive CLVs above which the CLV histogram uses a log10 axis."""

HISTOGRAM_BINS = 40
"""Number of bins of the CLV histogram."""

LOG_FLOOR_QUANTILE = 0.01
"""On the log axis of the CLV histogram, CLVs below this quantile of the positive CLVs are
counted in the first bar."""

ACCENT = "#2563eb"
"""Colour of single-series figures."""

CATEGORY_COLORS: dict[str, str] = {
    "returned": "#16a34a", "one purchase": "#f97316",
    "shortening": "#16a34a", "steady": "#9aa5b1", "lengthening": "#f97316",
    "rising": "#16a34a", "falling": "#f97316",
    "full price": "#16a34a", "occasional discount": "#9aa5b1", "discount dependent": "#dc2626",
}
"""Colour of each loyalty category: green for the loyal behaviour, grey neutral, orange/red not."""

LABEL_MIN_SHARE = 0.08
"""Bar segments of the loyalty figure narrower than this share are labelled on hover only."""

EXTRA_COLORS: tuple[str, ...] = ("#3b82f6", "#a855f7", "#14b8a6", "#eab308", "#ec4899", "#64748b")
"""Colours for categories not in :data:`CATEGORY_COLORS`, in order of appearance."""


def _layout(fig: go.Figure, title: str, *, height: int = 420, **kw: object) -> go.Figure:
    fig.update_layout(title={"text": title, "x": 0.01}, height=height, plot_bgcolor="white", paper_bgcolor="white",
                      margin={"l": 60, "r": 20, "t": 60, "b": 50}, **kw)
    lines = {"gridcolor": GRID, "zerolinecolor": GRID, "linecolor": GRID}
    fig.update_xaxes(**lines)
    fig.update_yaxes(**lines)
    return fig


def _status_sorted(labels: Sequence[str]) -> list[str]:
    """Known statuses first in :data:`STATUS_ORDER`, then any others in their given order."""
    return category_order("status", labels)


def _money_axis(fig: go.Figure, axis: str, currency: str | None) -> None:
    (fig.update_yaxes if axis == "y" else fig.update_xaxes)(**plotly_money_axis(currency))


def equity_gaps(frame: pd.DataFrame) -> list[str]:
    """Why points of an equity history have no value or no interval, one line per kind of gap
    (``frame`` as :func:`equity_over_time_figure` takes it); empty when every point has both."""
    df = frame.sort_values("as_of")
    days = pd.to_datetime(df["as_of"]).dt.strftime("%Y-%m-%d").to_numpy()
    equity = df["equity"].to_numpy(dtype=float)
    notes = []
    missing = ~np.isfinite(equity)
    if missing.any():
        notes.append(f"No customer equity on {', '.join(days[missing])}: the models could not be fitted on the purchases "
                     "up to that day (too little history, or the fit did not converge), so that point and its interval "
                     "are left empty.")
    if {"equity_lower", "equity_upper"} <= set(df.columns):
        no_band = np.isfinite(equity) & ~(np.isfinite(df["equity_lower"].to_numpy(dtype=float))
                                          & np.isfinite(df["equity_upper"].to_numpy(dtype=float)))
        if no_band.any():
            notes.append(f"No interval on {', '.join(days[no_band])}: the parameter uncertainty could not be computed "
                         "there (a singular information matrix, typically with little history).")
    return notes


def equity_over_time_figure(frame: pd.DataFrame, *, currency: str = "") -> go.Figure:
    """Customer equity at each as-of date with its interval as a shaded band.

    ``frame`` has columns ``as_of, equity`` and optionally ``equity_lower, equity_upper``
    (the interval of total CLV, in ``currency``); one row per as-of date. Points without a value
    are gaps in the line (:func:`equity_gaps` says why).
    """
    df = frame.sort_values("as_of")
    x = pd.to_datetime(df["as_of"])
    fig = go.Figure()
    if {"equity_lower", "equity_upper"} <= set(df.columns):
        fig.add_trace(go.Scatter(x=x, y=df["equity_upper"].to_numpy(dtype=float), mode="lines",
                                 line={"width": 0}, name="upper", showlegend=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=x, y=df["equity_lower"].to_numpy(dtype=float), mode="lines",
                                 line={"width": 0}, fill="tonexty", fillcolor="rgba(37,99,235,0.18)",
                                 name="95% interval", hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=x, y=df["equity"].to_numpy(dtype=float), mode="lines+markers",
                             line={"color": ACCENT, "width": 2}, name="customer equity",
                             hovertemplate=f"{hover_money('y', currency, fmt=',.0f')}<extra>customer equity</extra>"))
    fig = _layout(fig, "Customer equity over time", yaxis_title=money_title("total CLV", currency),
                  xaxis_title="as of", hovermode="x unified")
    _money_axis(fig, "y", currency)
    return fig


MOVEMENT_PARTS: dict[str, str] = {
    "new_customers": "new customers", "lost_customers": "silent customers (value fading)",
    "returning_customers": "returning customers' purchases", "rate_estimates": "re-estimated purchase rates",
    "spend_estimates": "re-estimated spend",
}
"""The parts of a change in customer equity (:mod:`patron.relationship.segments.movement`), in
evaluation order, and their names in the report."""

MOVEMENT_NOTE = (
    "How a month's change is split (docs/report.md, \"What moved customer equity\"): the models are refitted on the "
    "purchases up to every month end; new customers are valued with the previous month's models; customers already "
    "there are revalued with the previous models on their new history (those who did not buy in the month lose value "
    "as they stay silent, those who bought change it by their purchases); then the purchase-rate model and the spend "
    "model are swapped for the refitted ones. The five parts add up to the change exactly; the first month of the "
    "window has no earlier month to change from.")
"""The note beside the equity waterfall."""


def equity_waterfall(steps: pd.DataFrame, *, currency: str | None = None) -> go.Figure:
    """A Plotly Waterfall of the latest month with a movement: equity at the previous month end,
    the five parts of :data:`MOVEMENT_PARTS` (``steps`` as
    :func:`patron.relationship.segments.movement.equity_movement` returns them, in currency) and
    the equity at the month end as the total."""
    done = steps[steps["change"].notna()].sort_values("as_of")
    last = done.iloc[-1]
    parts = list(MOVEMENT_PARTS)
    start, end = pd.Timestamp(last["previous"]).strftime("%Y-%m-%d"), pd.Timestamp(last["as_of"]).strftime("%Y-%m-%d")
    x = [f"equity {start}", *MOVEMENT_PARTS.values(), f"equity {end}"]
    y = [float(last["equity_start"]), *(float(last[p]) for p in parts), float(last["equity_end"])]
    fig = go.Figure(go.Waterfall(
        x=x, y=y, measure=["absolute", *["relative"] * len(parts), "total"],
        text=[money(v, currency, decimals=0, sign=0 < i < len(y) - 1) for i, v in enumerate(y)], textposition="outside",
        increasing={"marker": {"color": "#16a34a"}}, decreasing={"marker": {"color": "#dc2626"}},
        totals={"marker": {"color": ACCENT}}, connector={"line": {"color": "#9aa5b1"}},
        hovertemplate=f"%{{x}}: {hover_money('y', currency, fmt=',.0f')}<extra></extra>", name="equity movement",
    ))
    low = min(np.cumsum(y[:-1]).min(), y[-1], y[0])
    high = max(np.cumsum(y[:-1]).max(), y[-1], y[0])
    pad = (high - low) * 0.25 or abs(high) * 0.05 or 1.0
    fig = _layout(fig, f"What moved customer equity, {start} → {end} (models refitted)", height=460,
                  yaxis_title=money_title("customer equity", currency), showlegend=False)
    fig.update_yaxes(range=[max(0.0, low - pad) if low >= 0 else low - pad, high + pad], **plotly_money_axis(currency))
    return fig


def equity_movement_table(steps: pd.DataFrame, *, currency: str | None = None) -> pd.DataFrame:
    """The movement of every month for reading and sorting: month end, equity at the previous
    month end, each part (signed), equity at the month end (amounts in ``currency``, named in the
    headers; numbers, so the report's tables sort and download them as numbers), the customers
    new, returning and silent in the month, and why a month has no movement."""
    rows = steps.sort_values("as_of").reset_index(drop=True)
    moved = (rows["why"].fillna("") == "").to_numpy()
    out = pd.DataFrame({"month end": pd.to_datetime(rows["as_of"]).dt.strftime("%Y-%m-%d").to_numpy()})
    out[money_title("equity before", currency)] = rows["equity_start"].to_numpy(dtype=float)
    for part, name in MOVEMENT_PARTS.items():
        out[money_title(name, currency)] = rows[part].to_numpy(dtype=float)
    out[money_title("equity after", currency)] = rows["equity_end"].to_numpy(dtype=float)
    for group in ("new", "returning", "silent"):
        out[f"{group} customers"] = pd.array(np.where(moved, rows[group].to_numpy(), pd.NA), dtype="Int64")
    out["note"] = rows["why"].fillna("").to_numpy()
    return out


def bar_figure(frame: pd.DataFrame, *, label: str, value: str, title: str, top: int | None = 15,
               value_title: str | None = None, percent: bool = False, order: Sequence[str] | None = None,
               currency: str | None = None) -> go.Figure:
    """Bars of ``value`` per ``label``, largest first, at most ``top`` bars (all when ``None``);
    with ``order`` (e.g. :func:`~patron.relationship.categories.category_order` of the tiers) the
    bars follow that order instead. ``currency``: ``value`` is an amount in it (axis ticks and
    hover carry the currency)."""
    df = frame.sort_values(value, ascending=False)
    if top is not None:
        df = df.head(top)
    if order is not None:
        df = df.set_index(df[label].astype(str)).reindex(list(order)).dropna(subset=[value]).reset_index(drop=True)
    hover = (f"%{{x}}: {hover_money('y', currency, fmt=',.0f')}<extra></extra>" if currency is not None
             else "%{x}: %{y:.1%}<extra></extra>" if percent else None)
    fig = go.Figure(go.Bar(x=df[label].astype(str).to_numpy(), y=df[value].to_numpy(dtype=float),
                           marker_color=ACCENT, name=value, hovertemplate=hover))
    title_y = value_title or value
    fig = _layout(fig, title, yaxis_title=money_title(title_y, currency) if currency is not None else title_y)
    if order is not None:
        fig.update_xaxes(categoryorder="array", categoryarray=df[label].astype(str).tolist())
    if percent:
        fig.update_yaxes(tickformat=".0%")
    elif currency is not None:
        _money_axis(fig, "y", currency)
    return fig


def equity_by_segment_figure(table: pd.DataFrame, *, label: str = "segment", value: str = "total_clv",
                             top: int | None = 15, currency: str | None = None) -> go.Figure:
    """Customer equity (total CLV, in ``currency``) of each segment, largest first (a segment
    table as input)."""
    return bar_figure(table, label=label, value=value, title="Customer equity by segment", top=top,
                      value_title="total CLV", currency=currency)


def status_distribution_figure(counts: pd.DataFrame) -> go.Figure:
    """Customers per relationship status; ``counts`` has columns ``status, customers``."""
    df = counts.set_index("status").reindex(_status_sorted(list(counts["status"])))
    statuses = df.index.astype(str).tolist()
    fig = go.Figure(go.Bar(x=statuses, y=df["customers"].to_numpy(dtype=float),
                           marker_color=[STATUS_COLORS.get(s, ACCENT) for s in statuses],
                           text=df["customers"].to_numpy(), textposition="outside", name="customers"))
    return _layout(fig, "Customers by relationship status", yaxis_title="customers")


def migration_heatmap(matrix: pd.DataFrame, *, from_label: str = "from", to_label: str = "to") -> go.Figure:
    """Status migration between two dates: rows are statuses at the earlier date, columns at the
    later one, cells are customer counts (``z`` is the matrix, rows and columns in status order:
    :func:`~patron.relationship.categories.category_order`)."""
    matrix = matrix.reindex(index=_status_sorted([str(i) for i in matrix.index]),
                            columns=_status_sorted([str(c) for c in matrix.columns])) if len(matrix) else matrix
    z = matrix.to_numpy(dtype=float)
    rows = z.sum(axis=1, keepdims=True)
    share = np.divide(z, rows, out=np.zeros_like(z), where=rows > 0)
    fig = go.Figure(go.Heatmap(
        z=z, x=[str(c) for c in matrix.columns], y=[str(i) for i in matrix.index],
        text=z.astype(np.int64).astype(str), texttemplate="%{text}", customdata=share,
        colorscale="Blues", colorbar={"title": "customers"},
        hovertemplate="%{y} → %{x}: %{z:,.0f} customers (%{customdata:.1%} of row)<extra></extra>",
    ))
    fig = _layout(fig, f"Status migration, {from_label} → {to_label}", height=460,
                  xaxis_title=f"status on {to_label}", yaxis_title=f"status on {from_label}")
    fig.update_yaxes(autorange="reversed")
    return fig


def cohort_retention_heatmap(cohorts: pd.DataFrame, *, max_periods: int | None = None) -> go.Figure:
    """Retention by acquisition cohort (rows) and periods since acquisition (columns).

    ``cohorts`` has columns ``cohort, period, retention`` (share of the cohort's customers who
    bought in that period); missing cells (periods not yet reached) are blank.
    """
    df = cohorts if max_periods is None else cohorts[cohorts["period"] <= max_periods]
    grid = df.pivot_table(index="cohort", columns="period", values="retention", aggfunc="first").sort_index()
    z = grid.to_numpy(dtype=float)
    text = np.where(np.isnan(z), "", np.char.mod("%.0f%%", np.nan_to_num(z) * 100.0))
    fig = go.Figure(go.Heatmap(
        z=z, x=[str(c) for c in grid.columns], y=[_label(c) for c in grid.index], text=text,
        texttemplate="%{text}", colorscale="Greens", zmin=0.0, colorbar={"title": "retention", "tickformat": ".0%"},
        hovertemplate="cohort %{y}, period %{x}: %{z:.1%}<extra></extra>",
    ))
    fig = _layout(fig, "Cohort retention", height=max(360, 22 * len(grid) + 140),
                  xaxis_title="periods since first purchase", yaxis_title="cohort (first purchase)")
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category")
    return fig


def cohort_revenue_figure(cohorts: pd.DataFrame, *, value: str = "cumulative_revenue_per_customer",
                          currency: str | None = None) -> go.Figure:
    """Cumulative revenue per acquired customer (in ``currency``) by periods since acquisition,
    one line per cohort."""
    fig = go.Figure()
    for cohort, part in cohorts.sort_values(["cohort", "period"]).groupby("cohort", sort=True):
        fig.add_trace(go.Scatter(x=part["period"].to_numpy(), y=part[value].to_numpy(dtype=float),
                                 mode="lines", name=_label(cohort),
                                 hovertemplate=f"period %{{x}}: {hover_money('y', currency)}<extra>{_label(cohort)}</extra>"))
    fig = _layout(fig, "Cumulative revenue per customer by cohort", xaxis_title="periods since first purchase",
                  yaxis_title=money_title("revenue per customer", currency))
    _money_axis(fig, "y", currency)
    return fig


def _label(value: object) -> str:
    """A cohort key as text: dates as YYYY-MM-DD (YYYY-MM when on the 1st), others via ``str``."""
    if isinstance(value, pd.Timestamp | np.datetime64) or hasattr(value, "strftime"):
        ts = pd.Timestamp(value)
        return ts.strftime("%Y-%m") if ts.day == 1 else ts.strftime("%Y-%m-%d")
    return str(value)


def clv_histogram(clv: pd.Series | np.ndarray, *, log: bool | None = None, bins: int = HISTOGRAM_BINS,
                  floor_quantile: float = LOG_FLOOR_QUANTILE, currency: str | None = None) -> go.Figure:
    """Distribution of CLV over customers, binned here so the page stays small at any size.

    ``log=None`` chooses a log10 axis when positive CLVs are skewed (sample skewness above
    :data:`LOG_SKEW_THRESHOLD`); on a log axis customers with CLV <= 0 cannot be placed and are
    counted in the title instead, and values below the ``floor_quantile`` quantile of the positive
    CLVs are counted in the first bar (so a few near-zero CLVs do not stretch the axis over many
    decades). Bars are drawn at bin centres with the bins' widths (on the log axis: widths in
    log10 units, ticks labelled in money, in ``currency``).
    """
    values = np.asarray(clv, dtype=float)
    values = values[np.isfinite(values)]
    positive = values[values > 0]
    if log is None:
        log = positive.size > 2 and float(pd.Series(positive).skew()) > LOG_SKEW_THRESHOLD
    title = "Distribution of customer lifetime value"
    if log and positive.size:
        logs = np.log10(positive)
        floor = float(np.quantile(logs, floor_quantile)) if floor_quantile > 0 else float(logs.min())
        n_floor = int(np.sum(logs < floor))
        counts, edges = np.histogram(np.maximum(logs, floor), bins=bins)
        fig = go.Figure(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges),
                               marker_color=ACCENT, name="customers",
                               customdata=np.stack([10 ** edges[:-1], 10 ** edges[1:]], axis=1),
                               hovertemplate=(f"CLV {hover_money('customdata[0]', currency)} to {hover_money('customdata[1]', currency)}: "
                                              "%{y:,} customers<extra></extra>")))
        decades = np.arange(np.floor(edges[0]), np.ceil(edges[-1]) + 1)
        ticks = (decades[:, None] + np.log10([1.0, 2.0, 5.0])[None, :]).ravel()
        ticks = ticks[(ticks >= edges[0] - 1e-9) & (ticks <= edges[-1] + 1e-9)]
        fig.update_xaxes(tickvals=ticks, ticktext=[money(10 ** t, currency, decimals=max(0, int(-np.floor(t + 1e-9))))
                                                   for t in ticks],
                         range=[edges[0], edges[-1]])
        n_out = values.size - positive.size
        notes = ["log scale"]
        if n_floor:
            notes.append(f"{n_floor:,} below {money(10 ** floor, currency)} in the first bar")
        if n_out:
            notes.append(f"{n_out:,} customers with CLV ≤ 0 not shown")
        title += f" ({'; '.join(notes)})"
        xtitle = money_title("CLV", currency) + ", log scale"
    else:
        counts, edges = np.histogram(values, bins=bins) if values.size else (np.array([], dtype=np.int64), np.array([0.0]))
        fig = go.Figure(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges),
                               marker_color=ACCENT, name="customers",
                               hovertemplate=f"CLV about {hover_money('x', currency)}: %{{y:,}} customers<extra></extra>"))
        _money_axis(fig, "x", currency)
        xtitle = money_title("CLV", currency)
    return _layout(fig, title, xaxis_title=xtitle, yaxis_title="customers", bargap=0.02)


def loyalty_trends_figure(mix: pd.DataFrame) -> go.Figure:
    """Share of customers in each category of several loyalty measures, one stacked bar per measure.

    ``mix`` has columns ``measure, category, customers`` (e.g. measure "inter-purchase times" with
    categories shortening / steady / lengthening); shares are within each measure. Each row of
    ``mix`` is one trace (one bar segment, in the row order of ``mix``); a category keeps one colour
    (:data:`CATEGORY_COLORS`) across measures and is named inside its bar segment (no legend).
    """
    df = mix[mix["customers"] > 0].copy()
    df["share"] = df["customers"] / df.groupby("measure")["customers"].transform("sum")
    measures = list(dict.fromkeys(df["measure"]))
    fig = go.Figure()
    palette = iter(EXTRA_COLORS * 4)
    colors: dict[str, str] = {}
    for measure, category, customers, share in df[["measure", "category", "customers", "share"]].itertuples(index=False):
        cat = str(category)
        color = colors.setdefault(cat, CATEGORY_COLORS.get(cat) or next(palette))
        fig.add_trace(go.Bar(
            y=[measure], x=[float(share)], orientation="h", name=cat, showlegend=False, marker_color=color,
            text=[f"{cat} {share:.0%}" if share >= LABEL_MIN_SHARE else ""], textposition="inside", insidetextanchor="middle",
            customdata=[float(customers)], hovertemplate=f"%{{y}}: {cat} %{{x:.1%}} (%{{customdata:,.0f}} customers)<extra></extra>",
        ))
    fig = _layout(fig, "Loyalty behaviour", height=max(260, 70 * len(measures) + 120), barmode="stack",
                  xaxis_title="share of customers", showlegend=False)
    fig.update_xaxes(tickformat=".0%", range=[0, 1])
    fig.update_yaxes(autorange="reversed", categoryorder="array", categoryarray=measures)
    return fig


def satisfaction_figure(table: pd.DataFrame, *, value: str = "return_rate") -> go.Figure:
    """Loyalty behaviour (``value``, by default the return rate) by satisfaction band, one group of
    bars per feedback kind; ``table`` has columns ``kind, band, band_order, customers, <value>``
    (:func:`patron.relationship.satisfaction.satisfaction_vs_loyalty`). Bars follow ``band_order`` in each kind."""
    fig = go.Figure()
    for i, (kind, part) in enumerate(table.sort_values(["kind", "band_order"]).groupby("kind", sort=True)):
        fig.add_trace(go.Bar(
            x=part["band"].astype(str).to_numpy(), y=part[value].to_numpy(dtype=float), name=str(kind),
            marker_color=EXTRA_COLORS[i % len(EXTRA_COLORS)], customdata=part["customers"].to_numpy(dtype=float),
            hovertemplate=f"{kind} %{{x}}: %{{y:.1%}} (%{{customdata:,.0f}} customers)<extra></extra>",
        ))
    fig = _layout(fig, f"{value.replace('_', ' ').capitalize()} by satisfaction band", xaxis_title="satisfaction band",
                  yaxis_title=value.replace("_", " "))
    if value.endswith(("rate", "share")):
        fig.update_yaxes(tickformat=".0%")
    return fig
