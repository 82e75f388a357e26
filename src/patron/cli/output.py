"""Shared output helpers of the CLI commands: JSON-safe values and records, files from frames, and
the customer-base overview table."""

from __future__ import annotations

import math
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console


def json_safe(value: Any) -> Any:
    """A JSON-safe scalar: ``None``, pandas NA/NaT and non-finite floats become null; a timestamp
    at midnight becomes its ISO date (``2024-03-31``), another timestamp its ISO date and time;
    NumPy scalars become Python ones."""
    import pandas as pd

    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and not math.isfinite(value)):
        return None
    if isinstance(value, datetime):
        midnight = (value.hour, value.minute, value.second, value.microsecond) == (0, 0, 0, 0)
        return value.date().isoformat() if midnight and value.tzinfo is None else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "item"):
        return json_safe(value.item())
    return value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of ``frame`` as JSON-safe dicts (:func:`json_safe`)."""
    return [{str(k): json_safe(v) for k, v in row.items()} for row in frame.astype(object).to_dict(orient="records")]


def write_frame(frame: pd.DataFrame, path: str | Path | None) -> None:
    """Write ``frame`` to ``path`` (``.csv`` or ``.parquet``; nothing when ``path`` is ``None``)."""
    if path is None:
        return
    import pyarrow as pa

    from patron.data.io import write_table

    write_table(pa.Table.from_pandas(frame, preserve_index=False), path)


def print_overview(console: Console, fig: Any, *, unit: str) -> None:
    """Print the figures of :func:`patron.value.overview.overview` as a table (``unit``: the period unit
    of recency and T)."""
    from rich.table import Table

    t = Table(title="Customer base", show_header=False, title_justify="left")
    t.add_column("figure")
    t.add_column("value", justify="right")
    t.add_row("customers", f"{fig.customers:,}")
    t.add_row("repeat buyers", f"{fig.repeat_buyers:,} ({fig.repeat_share:.1%})")
    t.add_row("orders", f"{fig.orders:,}")
    t.add_row("revenue (net of refunds)", f"{fig.revenue:,.2f}")
    t.add_row("revenue per customer", f"{fig.revenue_per_customer:,.2f}")
    t.add_row("repeat purchases per customer (mean)", f"{fig.frequency_mean:.3f}")
    fq = fig.frequency_quantiles
    t.add_row("repeat purchases: median / p95 / max", f"{fq['median']:g} / {fq['p95']:g} / {fq['max']:g}")
    t.add_row(f"recency, mean ({unit})", f"{fig.recency_mean:.2f}")
    t.add_row(f"T, mean ({unit})", f"{fig.T_mean:.2f}")
    mq = fig.monetary_value_quantiles
    t.add_row("repeat order value: median / p95", f"{mq['median']:,.2f} / {mq['p95']:,.2f}")
    t.add_row("purchases from / to", f"{fig.first_purchase[:10]} / {fig.last_purchase[:10]}")
    console.print(t)
