"""How well the model forecasts, in Plotly: the report's and dashboard's "Model check" section
(registered on import; see :mod:`patron.report.registry`) and the figures and page of
``patron evaluate`` (one plotting stack for what users open; the matplotlib plots of
:mod:`patron.value.plots` stay for ``patron.compat.lifetimes.plotting`` and ``--png``).

Figures (pure functions of results or a fitted model):

- :func:`holdout_figure`: mean holdout purchases per calibration frequency, actual vs the model's
  conditional expectation (:func:`patron.value.evaluation.holdout_comparison`);
- :func:`tracking_figure`: cumulative repeat purchases of the cohort, actual vs expected, with the
  calibration end marked (:func:`patron.value.evaluation.cumulative_tracking`);
- :func:`frequency_recency_figure` / :func:`probability_alive_figure`: the model's expected
  purchases in the next period and P(alive) by frequency and recency
  (:func:`patron.value.evaluation.model_grid`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from patron.errors import PatronError
from patron.report.figures import ACCENT, _layout
from patron.report.html import Metric, Section, render_page
from patron.report.registry import register_section
from patron.value.evaluation import HoldoutComparison, model_grid
from patron.value.models import ConvergenceError

SECTION_KEY = "model_check"
"""Key of the section in the report and on the dashboard."""

SECTION_TITLE = "How well the model forecasts"
"""Title of the section."""

HOLDOUT_MONTHS = 3
"""The report's check holds out the last this many months before the report date (a quarter, as
the status backtest): the model is fitted on the purchases before and forecasts these months."""

PERIOD_WORDS: dict[str, str] = {"D": "days", "W": "weeks", "M": "months"}
"""How a period unit is said on axes."""

MODEL_COLOR = "#f97316"
"""Colour of the model's series (the data's are :data:`patron.report.figures.ACCENT`)."""


def holdout_figure(comparison: HoldoutComparison, *, name: str = "model") -> go.Figure:
    """Mean purchases per customer in the holdout by purchases in the calibration period
    (``comparison.by_frequency``: one bar pair per bucket, in bucket order): what customers did
    and what ``name`` forecast; MAE and RMSE (purchases per customer) in the title."""
    t = comparison.by_frequency
    labels = t["frequency"].astype(str).tolist()
    custom = t["customers"].to_numpy()
    fig = go.Figure([
        go.Bar(x=labels, y=t["actual"].to_numpy(dtype=float), name="actual", marker_color=ACCENT, customdata=custom,
               hovertemplate="%{x} repeat purchases before: %{y:.2f} on average (%{customdata:,} customers)<extra>actual</extra>"),
        go.Bar(x=labels, y=t["predicted"].to_numpy(dtype=float), name=name, marker_color=MODEL_COLOR,
               hovertemplate="%{x} repeat purchases before: %{y:.2f} expected<extra>" + name + "</extra>"),
    ])
    fig = _layout(fig, f"Calibration vs holdout, {name} (MAE {comparison.mae:.3f}, RMSE {comparison.rmse:.3f} purchases per customer)",
                  xaxis_title="repeat purchases in the calibration period", yaxis_title="mean purchases in the holdout",
                  barmode="group", legend={"orientation": "h", "y": -0.2})
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=labels)
    return fig


def tracking_figure(tracking: pd.DataFrame, *, calibration_end_period: float | None = None, unit: str = "W",
                    name: str = "model") -> go.Figure:
    """Cumulative repeat purchases of the cohort per period since its start (``tracking``:
    ``period, actual, expected``), actual and expected, with the end of the calibration period
    as a dotted line."""
    words = PERIOD_WORDS.get(unit.upper(), unit)
    fig = go.Figure([
        go.Scatter(x=tracking["period"], y=tracking["actual"].to_numpy(dtype=float), mode="lines", name="actual",
                   line={"color": ACCENT, "width": 2}),
        go.Scatter(x=tracking["period"], y=tracking["expected"].to_numpy(dtype=float), mode="lines", name=name,
                   line={"color": MODEL_COLOR, "width": 2, "dash": "dash"}),
    ])
    if calibration_end_period is not None:
        fig.add_vline(x=calibration_end_period, line_dash="dot", line_color="#6b7280",
                      annotation_text="calibration end", annotation_position="top left")
    return _layout(fig, f"Cumulative repeat purchases, actual vs {name}", xaxis_title=f"{words} since the cohort's start",
                   yaxis_title="cumulative repeat purchases", hovermode="x unified", legend={"orientation": "h", "y": -0.2})


def _grid_figure(x: np.ndarray, tx: np.ndarray, z: np.ndarray, *, title: str, label: str, unit: str,
                 zmin: float | None = None, zmax: float | None = None) -> go.Figure:
    words = PERIOD_WORDS.get(unit.upper(), unit)
    fig = go.Figure(go.Heatmap(
        z=z, x=tx, y=x, colorscale="Viridis", zmin=zmin, zmax=zmax, colorbar={"title": label},
        hovertemplate=f"frequency %{{y:.0f}}, recency %{{x:.1f}} {words}: %{{z:.3f}}<extra></extra>"))
    return _layout(fig, title, height=460, xaxis_title=f"recency ({words} from first to last purchase)",
                   yaxis_title="frequency (repeat purchases)")


def frequency_recency_figure(model: Any, *, T: float, t: float = 1.0, max_frequency: int = 20, unit: str = "W") -> go.Figure:
    """Expected purchases in the next ``t`` periods of customers observed for ``T`` periods, by
    frequency (rows) and recency (columns); frequency 0 has recency 0 only."""
    x, tx, z = model_grid(lambda a, b, c: model.conditional_expected_purchases(t, a, b, c), max_frequency=max_frequency, T=T)
    return _grid_figure(x, tx, z, title=f"Expected purchases in the next {t:g} period(s), customers observed {T:.1f} periods",
                        label="purchases", unit=unit)


def probability_alive_figure(model: Any, *, T: float, max_frequency: int = 20, unit: str = "W") -> go.Figure:
    """P(alive) by frequency and recency of customers observed for ``T`` periods (scale 0 to 1)."""
    x, tx, z = model_grid(model.probability_alive, max_frequency=max_frequency, T=T)
    return _grid_figure(x, tx, z, title=f"Probability alive, customers observed {T:.1f} periods", label="P(alive)",
                        unit=unit, zmin=0.0, zmax=1.0)


def model_figures(name: str, model: Any, comparison: HoldoutComparison, tracking: pd.DataFrame, *, T: float,
                  unit: str = "W") -> list[tuple[str, go.Figure]]:
    """The four evaluation figures of one model, named as ``patron evaluate --png`` names its
    files (``<model>_holdout``, ``_tracking``, ``_frequency_recency``, ``_probability_alive``)."""
    return [
        (f"{name}_holdout", holdout_figure(comparison, name=name)),
        (f"{name}_tracking", tracking_figure(tracking, calibration_end_period=T, unit=unit, name=name)),
        (f"{name}_frequency_recency", frequency_recency_figure(model, T=T, unit=unit)),
        (f"{name}_probability_alive", probability_alive_figure(model, T=T, unit=unit)),
    ]


def evaluation_page(title: str, sections: list[Section], *, subtitle: str = "") -> str:
    """The page ``patron evaluate`` writes: one self-contained HTML document (plotly.js inlined
    once, nothing loaded from the network), one section per model."""
    return render_page(title, sections, subtitle=subtitle)


@register_section(SECTION_KEY, order=32, title=SECTION_TITLE)
def model_check_section(db: str, ctx: Any) -> Section | None:
    """The report's transaction model (``[value] model``) fitted on the purchases up to
    :data:`HOLDOUT_MONTHS` months before the report date, against what customers did since: the
    holdout comparison and cumulative tracking; ``None`` (with a note) when there is too little
    history before that date."""
    from patron.dates import parse_day
    from patron.relationship.status import last_purchase_day
    from patron.report.sections import months_before
    from patron.value.evaluation import (
        cumulative_tracking,
        holdout_comparison,
        tracking_counts_from_lists,
    )
    from patron.value.scoring import fit_model
    from patron.value.summary import summary

    value = ctx.value()
    cal_end = months_before(ctx.as_of, HOLDOUT_MONTHS)

    def compute() -> tuple[Any, HoldoutComparison, pd.DataFrame, pd.DataFrame]:
        data = (ctx.summary_at(cal_end, value.period, holdout_end=ctx.as_of) if hasattr(ctx, "summary_at")
                else summary(db, period=value.period, end=cal_end, holdout_end=ctx.as_of))
        model = fit_model(value.model, data)
        start = parse_day(str(data["first_purchase"].min())[:10], "start")
        counts = None
        if hasattr(ctx, "order_lists") and last_purchase_day(db) <= ctx.as_of:  # the lists hold every purchase
            counts = tracking_counts_from_lists(ctx.order_lists(), start=start, end=ctx.as_of, unit=value.period)
        return data, holdout_comparison(model, data), model, cumulative_tracking(
            model, db, start=start, end=ctx.as_of, unit=value.period, counts=counts)

    try:
        data, comparison, model, tracking = ctx.memo(SECTION_KEY, compute)
    except (PatronError, ConvergenceError, ValueError) as exc:
        ctx.notes.append(f"The model check is left out: {exc}")
        return None
    if not len(data):
        return None
    T = float(data["T"].max())
    name = {"bgnbd": "BG/NBD", "pareto": "Pareto/NBD", "mbgnbd": "MBG/NBD"}.get(value.model, value.model)
    ratio = comparison.predicted_total / comparison.actual_total if comparison.actual_total else float("nan")
    sec = Section(SECTION_KEY, SECTION_TITLE, intro=(
        f"The {name} model fitted on the purchases up to {cal_end.isoformat()} only, against what those customers did "
        f"from then to {ctx.as_of.isoformat()} ({HOLDOUT_MONTHS} months held out): mean purchases in the holdout by "
        "purchases before, and the cohort's cumulative repeat purchases. The command patron evaluate draws the same figures "
        "for any calibration and holdout dates."))
    sec.metrics.append(Metric("holdout purchases, model / actual", f"{ratio:.2f} x" if np.isfinite(ratio) else "n/a",
                              f"{comparison.predicted_total:,.0f} expected, {comparison.actual_total:,.0f} made",
                              "Total purchases the model expected in the holdout divided by those customers made; 1 is exact."))
    sec.metrics.append(Metric("error per customer", f"{comparison.mae:.3f}", f"MAE, RMSE {comparison.rmse:.3f} purchases",
                              "Mean absolute difference between a customer's expected and actual holdout purchases."))
    figs = model_figures(name, model, comparison, tracking, T=T, unit=value.period)
    sec.figures.extend(fig for key, fig in figs if key.endswith(("_holdout", "_tracking")))
    shown = comparison.by_frequency.rename(columns={"frequency": "repeat purchases before", "actual": "actual (mean)",
                                                    "predicted": "model (mean)"})
    sec.tables.append((f"Holdout purchases per customer, {cal_end.isoformat()} to {ctx.as_of.isoformat()}", shown))
    return sec
