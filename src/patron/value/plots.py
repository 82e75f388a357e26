"""Model plots as Matplotlib figures (object API only: nothing global changes on import), and a
self-contained HTML page holding them (PNG embedded, no network needed to view).

Every function takes results or a fitted model and returns a :class:`matplotlib.figure.Figure`.
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from patron.extras import require

require("report", "patron.value.plots", modules=("matplotlib",))

from matplotlib.figure import Figure  # noqa: E402

from patron.data.outputs import atomic_output, output_folder  # noqa: E402
from patron.value.evaluation import HoldoutComparison, model_grid  # noqa: E402


def _grid(model_fn: Any, *, max_frequency: int, T: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return model_grid(model_fn, max_frequency=max_frequency, T=T)


def frequency_recency_heatmap(model: Any, *, T: float, t: float = 1.0, max_frequency: int = 20) -> Figure:
    """Expected purchases in the next ``t`` periods for customers observed for ``T`` periods, by
    frequency (rows) and recency (columns). Customers with frequency 0 have recency 0 only."""
    x, tx, Z = _grid(lambda a, b, c: model.conditional_expected_purchases(t, a, b, c), max_frequency=max_frequency, T=T)
    return _heatmap(x, tx, Z, title=f"Expected purchases in the next {t:g} period(s), T = {T:.1f}", label="expected purchases")


def probability_alive_matrix(model: Any, *, T: float, max_frequency: int = 20) -> Figure:
    """P(alive) by frequency and recency for customers observed for ``T`` periods."""
    x, tx, Z = _grid(model.probability_alive, max_frequency=max_frequency, T=T)
    return _heatmap(x, tx, Z, title=f"Probability alive, T = {T:.1f}", label="P(alive)", vmin=0.0, vmax=1.0)


def _heatmap(x: np.ndarray, tx: np.ndarray, Z: np.ndarray, *, title: str, label: str, vmin: float | None = None, vmax: float | None = None) -> Figure:
    fig = Figure(figsize=(7, 5), layout="constrained")
    ax = fig.add_subplot()
    mesh = ax.pcolormesh(tx, x, np.ma.masked_invalid(Z), shading="nearest", cmap="viridis", vmin=vmin, vmax=vmax)
    fig.colorbar(mesh, ax=ax, label=label)
    ax.set_xlabel("recency (time of last purchase)")
    ax.set_ylabel("frequency (repeat purchases)")
    ax.set_title(title)
    return fig


def holdout_plot(comparison: HoldoutComparison) -> Figure:
    """Mean holdout purchases per calibration frequency: actual vs predicted."""
    t = comparison.by_frequency
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    pos = np.arange(len(t))
    ax.bar(pos - 0.2, t["actual"], width=0.4, label="actual")
    ax.bar(pos + 0.2, t["predicted"], width=0.4, label="model")
    ax.set_xticks(pos, t["frequency"])
    ax.set_xlabel("purchases in calibration period (repeat)")
    ax.set_ylabel("mean purchases in holdout")
    ax.set_title(f"Calibration vs holdout (MAE {comparison.mae:.3f}, RMSE {comparison.rmse:.3f})")
    ax.legend()
    return fig


def tracking_plot(tracking: pd.DataFrame, *, calibration_end_period: float | None = None, unit: str = "W") -> Figure:
    """Cumulative repeat purchases, actual vs expected, per period since the cohort's start."""
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(tracking["period"], tracking["actual"], label="actual")
    ax.plot(tracking["period"], tracking["expected"], linestyle="--", label="model")
    if calibration_end_period is not None:
        ax.axvline(calibration_end_period, color="grey", linewidth=0.8)
    ax.set_xlabel(f"periods since start ({unit})")
    ax.set_ylabel("cumulative repeat purchases")
    ax.set_title("Tracking cumulative repeat purchases")
    ax.legend()
    return fig


def png_bytes(fig: Figure, *, dpi: int = 110) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def html_page(title: str, figures: Sequence[tuple[str, Figure]], *, tables: Sequence[tuple[str, pd.DataFrame]] = ()) -> str:
    """A self-contained HTML page with the figures embedded as PNG and optional tables."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:900px;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    for caption, df in tables:
        parts.append(f"<h2>{html.escape(caption)}</h2>" + df.to_html(index=False, float_format=lambda v: f"{v:,.4g}"))
    for caption, fig in figures:
        data = base64.b64encode(png_bytes(fig)).decode("ascii")
        parts.append(f"<h2>{html.escape(caption)}</h2><img alt='{html.escape(caption)}' src='data:image/png;base64,{data}'>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_figures(folder: str | os.PathLike[str], figures: Sequence[tuple[str, Figure]]) -> list[Path]:
    """Write each figure as ``<folder>/<name>.png``; returns the paths."""
    out = output_folder(folder)
    paths = []
    for name, fig in figures:
        p = out / f"{name}.png"
        data = png_bytes(fig)
        with atomic_output(p) as target:
            target.write_bytes(data)
        paths.append(p)
    return paths
