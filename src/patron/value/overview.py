"""Headline figures of a customer base from its summary (customers, repeat buyers, orders, revenue,
quantiles): what `patron summary` and the demo print. In the value stage, beside the summary, so
that the core prints them without the report extra."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


@dataclass(frozen=True)
class BaseOverview:
    """Headline figures of a customer summary.

    ``repeat_buyers``: customers with ``frequency > 0``. ``revenue``: net spend (refunds deducted)
    up to the summary's end. Quantiles are over all customers; ``monetary_value`` quantiles over
    repeat buyers only (it is undefined for the others). Time figures are in the summary's unit.
    """

    customers: int
    repeat_buyers: int
    repeat_share: float
    orders: int
    revenue: float
    revenue_per_customer: float
    frequency_mean: float
    frequency_quantiles: dict[str, float]
    recency_mean: float
    T_mean: float
    monetary_value_quantiles: dict[str, float]
    first_purchase: str
    last_purchase: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_QUANTILES = {"p25": 0.25, "median": 0.5, "p75": 0.75, "p95": 0.95, "max": 1.0}


def _column(summary: pd.DataFrame | pa.Table, name: str) -> np.ndarray:
    if hasattr(summary, "column_names"):  # a pyarrow Table: no pandas frame in between, nor pandas imported
        from patron.data.arrow_numpy import to_numpy

        return to_numpy(summary.column(name))
    return summary[name].to_numpy()


def _extreme(summary: pd.DataFrame | pa.Table, name: str, which: str) -> str:
    """The earliest (``min``) or latest (``max``) timestamp of a column as pandas prints it
    (``2024-01-01 00:00:00``; ``NaT`` when there is none)."""
    if hasattr(summary, "column_names"):
        import pyarrow.compute as pc

        value = pc.min_max(summary.column(name))[which].as_py()
        return "NaT" if value is None else str(value)  # datetime prints as pandas' Timestamp
    return str(getattr(summary[name], which)())


def overview(summary: pd.DataFrame | pa.Table) -> BaseOverview:
    """Headline figures of ``summary`` (the output of :func:`patron.summary`, a pandas DataFrame or
    a pyarrow Table with at least ``frequency``, ``recency``, ``T``, ``monetary_value``,
    ``n_orders``, ``total_spend``, ``first_purchase`` and ``last_purchase``). Computed with NumPy
    on the columns, as pandas computes them (means and sums skip missing values; quantiles
    interpolate linearly), so a Table is not converted to a frame first."""
    frequency = _column(summary, "frequency")
    n = len(frequency)
    repeat = frequency > 0
    n_repeat = int(np.count_nonzero(repeat))
    revenue = float(np.nansum(_column(summary, "total_spend")))

    def mean(values: np.ndarray) -> float:
        return round(float(np.nanmean(values)), 4) if len(values) else float("nan")

    def q(values: np.ndarray) -> dict[str, float]:
        values = values[~np.isnan(values)] if values.dtype.kind == "f" else values
        if not len(values):
            return dict.fromkeys(_QUANTILES, 0.0)
        found = np.percentile(values, [v * 100 for v in _QUANTILES.values()])  # pandas' call
        return {k: round(float(v), 4) for k, v in zip(_QUANTILES, found, strict=True)}

    return BaseOverview(
        customers=n,
        repeat_buyers=n_repeat,
        repeat_share=round(n_repeat / n, 4) if n else 0.0,
        orders=int(np.sum(_column(summary, "n_orders"))),
        revenue=round(revenue, 2),
        revenue_per_customer=round(revenue / n, 2) if n else 0.0,
        frequency_mean=mean(frequency),
        frequency_quantiles=q(frequency),
        recency_mean=mean(_column(summary, "recency")),
        T_mean=mean(_column(summary, "T")),
        monetary_value_quantiles=q(_column(summary, "monetary_value")[repeat]),
        first_purchase=_extreme(summary, "first_purchase", "min"),
        last_purchase=_extreme(summary, "last_purchase", "max"),
    )
