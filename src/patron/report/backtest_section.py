"""The report's "How right were last quarter's statuses" section (registered on import; see
:mod:`patron.report.registry`), shown right after the status chart in the report and on the
dashboard: the statuses as of one quarter before the report date, against who bought again
since, beside what the model expected (:func:`patron.relationship.backtest.status_backtest`)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from patron.errors import PatronError
from patron.extras import graph_objects
from patron.relationship.backtest.outcomes import Backtest
from patron.relationship.backtest.status import ALL_BUYERS, status_backtest
from patron.report import Metric, Section, register_section
from patron.value.models import ConvergenceError

if TYPE_CHECKING:
    import plotly.graph_objects as go

LOOKBACK_MONTHS = 3
"""The statuses checked are those of this many months before the report date (a quarter)."""

SECTION_KEY = "status_backtest"
"""Key of the section in the report and on the dashboard."""

SECTION_TITLE = "How right were last quarter's statuses"
"""Title of the section."""


def backtest_figure(result: Backtest) -> go.Figure:
    """Share of each status's customers who bought again in the window (bars, 95% Wilson interval
    as error bars), the model's prediction for the group (diamonds) and the share of all buyers
    (dashed line)."""
    go = graph_objects("the backtest figure")
    from patron.report.figures import STATUS_COLORS, _layout

    rows = result.table[(result.table["status"] != ALL_BUYERS) & (result.table["customers"] > 0)]
    statuses = rows["status"].astype(str).tolist()
    share = rows["bought_share"].to_numpy(dtype=float)
    fig = go.Figure()
    fig.add_bar(x=statuses, y=share, name="bought again", marker_color=[STATUS_COLORS.get(s, "#2563eb") for s in statuses],
                error_y={"type": "data", "symmetric": False, "array": rows["bought_upper"].to_numpy(float) - share,
                         "arrayminus": share - rows["bought_lower"].to_numpy(float)},
                customdata=rows["customers"].to_numpy(), hovertemplate="%{x}: %{y:.1%} of %{customdata:,} bought again<extra></extra>")
    predicted = rows["predicted_share"].to_numpy(dtype=float)
    if np.isfinite(predicted).any():
        fig.add_scatter(x=statuses, y=predicted, mode="markers", name="model expected",
                        marker={"symbol": "diamond", "size": 11, "color": "#111827"},
                        hovertemplate="%{x}: model expected %{y:.1%}<extra></extra>")
    if math.isfinite(result.base_rate):
        fig.add_hline(y=result.base_rate, line_dash="dash", line_color="#6b7280",
                      annotation_text=f"all buyers {result.base_rate:.1%}", annotation_position="top right")
    w = result.window
    return _layout(fig, f"Bought again {w.as_of} to {w.observed_end}, by status on {w.as_of}",
                   yaxis_title="share who bought again", yaxis_tickformat=".0%", legend={"orientation": "h", "y": -0.15})


def _pct(v: Any) -> str:
    return "" if v is None or pd.isna(v) else f"{v:.1%}"


def backtest_table(result: Backtest) -> pd.DataFrame:
    """The rows of the backtest as text for the report: status, customers, bought again with its
    interval, the model's share, mean purchases with its interval and the model's mean."""
    t = result.table[result.table["customers"] > 0]
    return pd.DataFrame({
        "status": t["status"].astype(str).to_numpy(),
        "customers": t["customers"].to_numpy(),
        "bought again (95% interval)": [f"{_pct(s)} ({_pct(lo)}-{_pct(hi)})" for s, lo, hi in
                                        zip(t["bought_share"], t["bought_lower"], t["bought_upper"], strict=True)],
        "model": [_pct(v) for v in t["predicted_share"]],
        "purchases (95% interval)": ["" if pd.isna(m) else f"{m:.2f}" + ("" if pd.isna(lo) else f" ({lo:.2f}-{hi:.2f})")
                                     for m, lo, hi in zip(t["purchases"], t["purchases_lower"], t["purchases_upper"], strict=True)],
        "model purchases": ["" if pd.isna(v) else f"{v:.2f}" for v in t["predicted_purchases"]],
    })


@register_section(SECTION_KEY, order=31, title=SECTION_TITLE)
def status_backtest_section(db: str, ctx: Any) -> Section | None:
    """Statuses a quarter before the report date against the purchases since; ``None`` (with a
    note) when that date has no buyers or the model cannot be fitted on the history then."""
    from patron.report.sections import months_before, status_assessment

    start = months_before(ctx.as_of, LOOKBACK_MONTHS)
    try:
        def compute() -> Any:
            lists = (ctx.order_lists(), ctx.as_of) if "order_lists" in getattr(ctx, "cache", {}) else None
            if lists is not None:  # statuses per distinct statistics row, from the lists the report holds
                from patron.relationship.status_history import assessment_from_lists

                assessed = assessment_from_lists(db, day=start, lists=lists[0], config=ctx.config)
            else:
                assessed = status_assessment(db, ctx, start)  # from the report's order lists (ctx.summary_at)
            return status_backtest(db, as_of=start, horizon=f"{LOOKBACK_MONTHS}M", config=ctx.config, assessed=assessed, lists=lists)

        result = ctx.memo(SECTION_KEY, compute)
    except (PatronError, ConvergenceError) as exc:
        ctx.notes.append(f"The status backtest is left out: {exc}")
        return None
    checks = result.checks
    sec = Section(SECTION_KEY, SECTION_TITLE, intro=(
        f"Each customer's status as of {result.window.as_of} (model fitted on the purchases up to that day only), "
        f"against whether they bought again by {result.window.observed_end}, beside the share the model expected. "
        "Statuses are right when the share falls from active to lost and lost customers buy again far less than "
        "the average buyer. See docs/status.md."))
    ratio = checks.get("lost_vs_base", float("nan"))
    sec.metrics.append(Metric("bought again, all buyers", _pct(result.base_rate), f"{result.window.weeks:.1f} weeks",
                              "Share of customers with a purchase by the start of the window who bought again in it."))
    sec.metrics.append(Metric("order active to lost", "holds" if checks.get("falls") else "broken",
                              " > ".join(checks.get("statuses", [])),
                              "Whether the share who bought again falls status by status from active to lost."))
    if math.isfinite(ratio):
        sec.metrics.append(Metric("lost vs all buyers", f"{ratio:.2f} x", "at most 0.5 x expected",
                                  "Share of lost customers who bought again divided by the share of all buyers."))
    sec.figures.append(backtest_figure(result))
    sec.tables.append((f"Statuses on {result.window.as_of} and purchases to {result.window.observed_end}", backtest_table(result)))
    if checks.get("outside"):
        sec.notes.append("Model outside the 95% interval of the actual share: " + ", ".join(checks["outside"])
                         + " (docs/status.md, \"Calibration\").")
    sec.notes.extend(result.notes)
    return sec
