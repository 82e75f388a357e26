"""Headline figures of a customer base from its summary (customers, repeat buyers, orders, revenue,
quantiles): what `patron summary` and the demo print. In the value stage, beside the summary, so
that the core prints them without the report extra."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd


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


def overview(summary: pd.DataFrame) -> BaseOverview:
    """Headline figures of ``summary`` (the output of :func:`patron.summary`)."""
    n = len(summary)
    repeat = summary[summary["frequency"] > 0]
    revenue = float(summary["total_spend"].sum())

    def q(series: pd.Series) -> dict[str, float]:
        if series.empty:
            return dict.fromkeys(_QUANTILES, 0.0)
        return {k: round(float(series.quantile(v)), 4) for k, v in _QUANTILES.items()}

    return BaseOverview(
        customers=n,
        repeat_buyers=len(repeat),
        repeat_share=round(len(repeat) / n, 4) if n else 0.0,
        orders=int(summary["n_orders"].sum()),
        revenue=round(revenue, 2),
        revenue_per_customer=round(revenue / n, 2) if n else 0.0,
        frequency_mean=round(float(summary["frequency"].mean()), 4),
        frequency_quantiles=q(summary["frequency"]),
        recency_mean=round(float(summary["recency"].mean()), 4),
        T_mean=round(float(summary["T"].mean()), 4),
        monetary_value_quantiles=q(repeat["monetary_value"]),
        first_purchase=str(summary["first_purchase"].min()),
        last_purchase=str(summary["last_purchase"].max()),
    )
