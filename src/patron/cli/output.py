"""Shared output helpers of the CLI commands: JSON-safe values and records, and files from frames."""

from __future__ import annotations

import math
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


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

    from patron.io import write_table

    write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
