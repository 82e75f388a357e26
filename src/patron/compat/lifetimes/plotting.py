"""lifetimes' ``plotting``: the same figures, arguments and defaults, drawn with matplotlib's
pyplot (as lifetimes, so that ``plt.show()`` and ``plt.savefig`` work as they did); every
function returns the axes. The numbers come from the fitter's patron model.

pyplot is imported when a function is called, never at import (nothing global changes on
``import patron.compat.lifetimes``).

Differences from lifetimes 0.11.3: :func:`plot_period_transactions` counts customers with their
fit ``weights`` (lifetimes counted rows, which is wrong for weighted, compressed data) and
simulates that many customers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .utils import calculate_alive_path, expected_cumulative_transactions

__all__ = [
    "plot_calibration_purchases_vs_holdout_purchases",
    "plot_cumulative_transactions",
    "plot_dropout_rate_heterogeneity",
    "plot_expected_repeat_purchases",
    "plot_frequency_recency_matrix",
    "plot_history_alive",
    "plot_incremental_transactions",
    "plot_period_transactions",
    "plot_probability_alive_matrix",
    "plot_transaction_rate_heterogeneity",
]

HETEROGENEITY_QUANTILE = 0.99
"""The heterogeneity plots draw the density up to this quantile."""

CURVE_POINTS = 100
"""Points of each drawn curve."""

EXTRAPOLATION = 1.5
""":func:`plot_expected_repeat_purchases` continues (dashed) to this multiple of the largest T."""


def _pyplot() -> Any:
    from patron.extras import require

    require("report", "patron.compat.lifetimes.plotting", modules=("matplotlib",))
    from matplotlib import pyplot as plt

    return plt


def forceAspect(ax: Any, aspect: float = 1) -> None:
    """Make the image of ``ax`` square (``aspect`` = width / height of the drawn box)."""
    extent = ax.get_images()[0].get_extent()
    ax.set_aspect(abs((extent[1] - extent[0]) / (extent[3] - extent[2])) / aspect)


def plot_period_transactions(model: Any, max_frequency: int = 7, title: str = "Frequency of Repeat Transactions",
                             xlabel: str = "Number of Calibration Period Transactions", ylabel: str = "Customers",
                             **kwargs: Any) -> Any:
    """Customers by number of repeat transactions, fitted data against as many customers
    simulated from the fitted model (bars for frequencies 0 .. ``max_frequency`` - 1)."""
    plt = _pyplot()
    labels = kwargs.pop("label", ["Actual", "Model"])
    counts = model.data.groupby("frequency")["weights"].sum()
    simulated = model.generate_new_data(size=int(counts.sum()))
    simulated_counts = simulated["frequency"].value_counts().sort_index()
    both = pd.concat([counts.sort_index().iloc[:max_frequency], simulated_counts.iloc[:max_frequency]],
                     axis=1).fillna(0)
    both.columns = labels
    ax = both.plot(kind="bar", **kwargs)
    plt.legend()
    plt.title(title)
    plt.ylabel(ylabel)
    plt.xlabel(xlabel)
    return ax


def plot_calibration_purchases_vs_holdout_purchases(model: Any, calibration_holdout_matrix: pd.DataFrame,
                                                    kind: str = "frequency_cal", n: int = 7, **kwargs: Any) -> Any:
    """Mean holdout purchases, actual and predicted, by ``kind``: ``frequency_cal``,
    ``recency_cal``, ``T_cal`` or ``time_since_last_purchase`` (first ``n`` values)."""
    plt = _pyplot()
    x_labels = {
        "frequency_cal": "Purchases in calibration period",
        "recency_cal": "Age of customer at last purchase",
        "T_cal": "Age of customer at the end of calibration period",
        "time_since_last_purchase": "Time since user made last purchase",
    }
    if kind not in x_labels:
        raise ValueError(f"kind must be one of {', '.join(x_labels)}; got {kind!r}")
    summary = calibration_holdout_matrix.copy()
    duration = summary["duration_holdout"].iloc[0]
    summary["model_predictions"] = np.asarray(model.conditional_expected_number_of_purchases_up_to_time(
        duration, summary["frequency_cal"], summary["recency_cal"], summary["T_cal"]))
    if kind == "time_since_last_purchase":
        summary[kind] = summary["T_cal"] - summary["recency_cal"]
    means = summary.groupby(kind)[["frequency_holdout", "model_predictions"]].mean().iloc[:n]
    ax = means.plot(**kwargs)
    plt.title("Actual Purchases in Holdout Period vs Predicted Purchases")
    plt.xlabel(x_labels[kind])
    plt.ylabel("Average of Purchases in Holdout Period")
    plt.legend()
    return ax


def _matrix_axes(z: np.ndarray, title: str, xlabel: str, ylabel: str, **kwargs: Any) -> Any:
    plt = _pyplot()
    interpolation = kwargs.pop("interpolation", "none")
    ax = plt.subplot(111)
    image = ax.imshow(z, interpolation=interpolation, **kwargs)
    plt.xlabel(xlabel)
    plt.ylabel(ylabel)
    plt.title(title)
    forceAspect(ax)
    plt.colorbar(image, ax=ax)
    return ax


def plot_frequency_recency_matrix(model: Any, T: float = 1, max_frequency: int | None = None,
                                  max_recency: int | None = None, title: str | None = None,
                                  xlabel: str = "Customer's Historical Frequency", ylabel: str = "Customer's Recency",
                                  **kwargs: Any) -> Any:
    """Heatmap of the expected purchases in the next ``T`` periods by [recency, frequency], for
    customers of age ``max_recency`` (default the largest T fitted)."""
    max_frequency = max_frequency if max_frequency is not None else int(model.data["frequency"].max())
    max_recency = max_recency if max_recency is not None else int(model.data["T"].max())
    tx, x = np.meshgrid(np.arange(max_recency + 1.0), np.arange(max_frequency + 1.0), indexing="ij")
    z = np.asarray(model.conditional_expected_number_of_purchases_up_to_time(T, x, tx, float(max_recency)),
                   dtype=np.float64)
    if title is None:
        title = ("Expected Number of Future Purchases for {} Unit{} of Time,".format(T, "" if T == 1 else "s")
                 + "\nby Frequency and Recency of a Customer")
    return _matrix_axes(z, title, xlabel, ylabel, **kwargs)


def plot_probability_alive_matrix(model: Any, max_frequency: int | None = None, max_recency: int | None = None,
                                  title: str = "Probability Customer is Alive,\nby Frequency and Recency of a Customer",
                                  xlabel: str = "Customer's Historical Frequency", ylabel: str = "Customer's Recency",
                                  **kwargs: Any) -> Any:
    """Heatmap of P(alive) by [recency, frequency] (``model.conditional_probability_alive_matrix``)."""
    z = model.conditional_probability_alive_matrix(max_frequency, max_recency)
    return _matrix_axes(z, title, xlabel, ylabel, **kwargs)


def plot_expected_repeat_purchases(model: Any, title: str = "Expected Number of Repeat Purchases per Customer",
                                   xlabel: str = "Time Since First Purchase", ax: Any = None, label: str | None = None,
                                   **kwargs: Any) -> Any:
    """E[X(t)] of a new customer up to the largest T fitted (solid), then to 1.5 times it (dashed)."""
    plt = _pyplot()
    if ax is None:
        ax = plt.subplot(111)
    color = kwargs.pop("c", None) or kwargs.pop("color", None) or ax._get_lines.get_next_color()
    max_T = float(model.data["T"].max())
    for start, stop, style in ((0.0, max_T, "-"), (max_T, EXTRAPOLATION * max_T, "--")):
        times = np.linspace(start, stop, CURVE_POINTS)
        ax.plot(times, model.expected_number_of_purchases_up_to_time(times), color=color, ls=style,
                label=label if style == "-" else None, **kwargs)
    plt.title(title)
    plt.xlabel(xlabel)
    plt.legend(loc="lower right")
    return ax


def plot_history_alive(model: Any, t: int, transactions: pd.DataFrame, datetime_col: str, freq: str = "D",
                       start_date: Any = None, ax: Any = None, **kwargs: Any) -> Any:
    """P(alive) of one customer over ``t`` periods since their first purchase, with their
    purchases marked (``transactions`` holds that customer's orders)."""
    plt = _pyplot()
    when = pd.to_datetime(transactions[datetime_col])
    if start_date is None:
        start_date = when.min()
    if ax is None:
        ax = plt.subplot(111)
    path = calculate_alive_path(model, transactions, datetime_col, t, freq)
    pandas_freq = "h" if str(freq).upper() == "H" else freq
    dates = pd.date_range(start=when.min(), periods=len(path), freq=pandas_freq)
    plt.plot(dates, path, "-", label="P_alive")
    bought = pd.Series(1, index=pd.DatetimeIndex(when)).resample(pandas_freq).sum()
    plt.vlines(bought[bought >= 1].index.values, ymin=0, ymax=1, colors="r", linestyles="dashed", label="purchases")
    plt.ylim(0, 1.0)
    plt.yticks(np.arange(0, 1.1, 0.1))
    plt.xlim(start_date, dates[-1])
    plt.legend(loc=3)
    plt.ylabel("P_alive")
    plt.title("History of P_alive")
    return ax


def _tracking_axes(df: pd.DataFrame, t_cal: float, set_index_date: bool, title: str, xlabel: str, ylabel: str,
                   ax: Any, **kwargs: Any) -> Any:
    ax = df.plot(ax=ax, title=title, **kwargs)
    if set_index_date:
        x_vline, xlabel = df.index[int(t_cal)], "date"
    else:
        x_vline = t_cal
    ax.axvline(x=x_vline, color="r", linestyle="--")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return ax


def plot_cumulative_transactions(model: Any, transactions: pd.DataFrame, datetime_col: str, customer_id_col: str,
                                 t: int, t_cal: float, datetime_format: str | None = None, freq: str = "D",
                                 set_index_date: bool = False, title: str = "Tracking Cumulative Transactions",
                                 xlabel: str = "day", ylabel: str = "Cumulative Transactions", ax: Any = None,
                                 **kwargs: Any) -> Any:
    """Actual and predicted cumulative repeat purchases (:func:`expected_cumulative_transactions`),
    with a line at the end of calibration ``t_cal``."""
    if ax is None:
        ax = _pyplot().subplot(111)
    df = expected_cumulative_transactions(model, transactions, datetime_col, customer_id_col, t,
                                          datetime_format=datetime_format, freq=freq, set_index_date=set_index_date)
    return _tracking_axes(df, t_cal, set_index_date, title, xlabel, ylabel, ax, **kwargs)


def plot_incremental_transactions(model: Any, transactions: pd.DataFrame, datetime_col: str, customer_id_col: str,
                                  t: int, t_cal: float, datetime_format: str | None = None, freq: str = "D",
                                  set_index_date: bool = False, title: str = "Tracking Daily Transactions",
                                  xlabel: str = "day", ylabel: str = "Transactions", ax: Any = None,
                                  **kwargs: Any) -> Any:
    """Actual and predicted repeat purchases per period (differences of the cumulative ones)."""
    if ax is None:
        ax = _pyplot().subplot(111)
    df = expected_cumulative_transactions(model, transactions, datetime_col, customer_id_col, t,
                                          datetime_format=datetime_format, freq=freq, set_index_date=set_index_date)
    return _tracking_axes(df.diff(), t_cal, set_index_date, title, xlabel, ylabel, ax, **kwargs)


def _density_axes(rv: Any, subtitle: str, suptitle: str, xlabel: str, ylabel: str, suptitle_fontsize: int,
                  **kwargs: Any) -> Any:
    plt = _pyplot()
    x = np.linspace(0, rv.ppf(HETEROGENEITY_QUANTILE), CURVE_POINTS)
    fig, ax = plt.subplots(1)
    fig.suptitle(suptitle, fontsize=suptitle_fontsize, fontweight="bold")
    ax.set_title(subtitle)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    fig.tight_layout(rect=[0, 0.03, 1, 0.95])
    plt.plot(x, rv.pdf(x), **kwargs)
    return ax


def plot_transaction_rate_heterogeneity(model: Any, suptitle: str = "Heterogeneity in Transaction Rate",
                                        xlabel: str = "Transaction Rate", ylabel: str = "Density",
                                        suptitle_fontsize: int = 14, **kwargs: Any) -> Any:
    """Density of the purchase rate lambda ~ Gamma(r, alpha), with its mean and variance."""
    r, alpha = model._unload_params("r", "alpha")
    return _density_axes(stats.gamma(r, scale=1 / alpha), f"mean: {r / alpha:.3f}, var: {r / alpha ** 2:.3f}",
                         suptitle, xlabel, ylabel, suptitle_fontsize, **kwargs)


def plot_dropout_rate_heterogeneity(model: Any, suptitle: str = "Heterogeneity in Dropout Probability",
                                    xlabel: str = "Dropout Probability p", ylabel: str = "Density",
                                    suptitle_fontsize: int = 14, **kwargs: Any) -> Any:
    """Density of the dropout probability p ~ Beta(a, b), with its mean and variance."""
    a, b = model._unload_params("a", "b")
    mean, var = a / (a + b), a * b / ((a + b) ** 2 * (a + b + 1))
    return _density_axes(stats.beta(a, b), f"mean: {mean:.3f}, var: {var:.3f}", suptitle, xlabel, ylabel,
                         suptitle_fontsize, **kwargs)
