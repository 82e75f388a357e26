"""Covariates for the value models: read, encode and join them to a customer summary.

Sources: columns of a summary file (``patron fit --summary``), or customer attributes stored in
the ``customers`` table (the JSON ``attributes`` column of ingested customer files; ``--db``).
Each named covariate becomes numeric columns the models use (docs/models.md, "Covariates"):

* **numeric** (every present value reads as a number): used as is. A customer without a value
  gets the mean of the others (counted in a note);
* **categorical** (anything else): one-hot encoded, one column ``name=level`` per level except the
  reference level, which is the most common one (ties: the first in sorted order), so each
  effect compares a level with the most common one. A missing value is the level
  ``(missing)``.

Customers without a row in ``customers`` have every attribute missing. The notes say how many
customers each rule touched. Time-varying covariates (one row per customer and period) are read
by :func:`read_dynamic_covariates`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from patron.errors import InputError

__all__ = ["EncodedCovariates", "attributes_from_db", "encode_covariates", "join_covariates", "parse_names"]

MISSING_LEVEL = "(missing)"
"""The level a missing categorical value takes."""

MAX_LEVELS = 50
"""A categorical covariate with more levels than this is refused (one coefficient per level)."""


def parse_names(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"a,b"`` or a list as a tuple of stripped, non-empty names (order kept, no repeats)."""
    if text is None:
        return ()
    items = text.split(",") if isinstance(text, str) else [str(t) for t in text]
    return tuple(dict.fromkeys(i.strip() for i in items if i.strip()))


@dataclass
class EncodedCovariates:
    """Numeric covariate columns (``frame``, one row per customer, in the summary's order), the
    encoded column names of each raw covariate (``columns``), and notes for the output."""

    frame: pd.DataFrame
    columns: dict[str, list[str]]
    notes: list[str] = field(default_factory=list)

    def expand(self, names: Sequence[str]) -> list[str]:
        """The encoded columns of raw covariates ``names``."""
        return [c for n in names for c in self.columns[n]]


def _as_number(values: pd.Series) -> pd.Series | None:
    """The values as floats when every present value is a number or a boolean (true/false as
    1/0; JSON attributes arrive as text), else None."""
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return values.astype(float)
    present = values.notna()
    text = values[present].map(str).str.strip().str.lower().replace({"true": "1", "false": "0"})
    numbers = pd.to_numeric(text, errors="coerce")
    if not present.any() or numbers.isna().any():
        return None
    out = pd.Series(np.nan, index=values.index)
    out[present] = numbers.astype(float)
    return out


def encode_covariates(frame: pd.DataFrame, names: Sequence[str], label: str = "covariates") -> EncodedCovariates:
    """Encode the raw columns ``names`` of ``frame`` (module docstring)."""
    out: dict[str, np.ndarray] = {}
    columns: dict[str, list[str]] = {}
    notes: list[str] = []
    for name in names:
        if name not in frame.columns:
            raise InputError(f"{label}: no covariate {name!r} (columns: {', '.join(map(str, frame.columns))})")
        raw = frame[name]
        numbers = _as_number(raw)
        if numbers is not None:
            bad = ~np.isfinite(numbers.to_numpy(dtype=float))
            if bad.all():
                raise InputError(f"{label}: covariate {name!r} has no value for any customer")
            values = numbers.to_numpy(dtype=float)
            if bad.any():
                mean = float(values[~bad].mean())
                values = np.where(bad, mean, values)
                notes.append(f"{int(bad.sum()):,} customers without {name!r}: set to the mean of the others ({mean:.4g})")
            out[name] = values
            columns[name] = [name]
            continue
        levels = raw.astype(object).where(raw.notna(), MISSING_LEVEL).map(str).str.strip()
        counts = levels.value_counts()
        if len(counts) > MAX_LEVELS:
            raise InputError(f"{label}: covariate {name!r} has {len(counts)} levels (at most {MAX_LEVELS}); "
                             "group rare levels or give a numeric covariate")
        ordered = sorted(counts.index, key=lambda v: (-counts[v], v))
        reference = ordered[0]
        columns[name] = []
        for level in sorted(ordered[1:]):
            col = f"{name}={level}"
            out[col] = (levels == level).to_numpy(dtype=float)
            columns[name].append(col)
        n_missing = int(counts.get(MISSING_LEVEL, 0))
        notes.append(f"{name!r} one-hot encoded against its most common level {reference!r} "
                     f"({len(ordered) - 1} columns{f'; {n_missing:,} missing values as level {MISSING_LEVEL!r}' if n_missing else ''})")
    return EncodedCovariates(pd.DataFrame(out, index=frame.index), columns, notes)


def attributes_from_db(db: str | os.PathLike[str] | None, names: Sequence[str]) -> pd.DataFrame:
    """``customer_id`` and the named attributes (text from the JSON ``attributes`` of the
    ``customers`` table; None where absent). Names are passed as JSON paths in query
    parameters, never spliced into the SQL."""
    from patron.data.store import reader, table_exists

    with reader(db) as con:
        if not table_exists(con, "customers"):
            return pd.DataFrame({"customer_id": pd.Series(dtype=str), **{n: pd.Series(dtype=object) for n in names}})
        selects = ", ".join(f"json_extract_string(attributes, ?) AS c{i}" for i in range(len(names)))
        params = ["$." + json.dumps(str(n)) for n in names]
        sql = f"SELECT CAST(customer_id AS VARCHAR) AS customer_id{', ' + selects if names else ''} FROM customers"
        frame = con.execute(sql, params).df()
    frame.columns = ["customer_id", *names]
    return frame.drop_duplicates("customer_id", keep="last")


def join_covariates(summary: pd.DataFrame, names: Sequence[str], *, db: str | os.PathLike[str] | None = None,
                    label: str = "covariates") -> EncodedCovariates:
    """Encoded covariates aligned with ``summary``'s rows: from its own columns when it has all of
    ``names``, else from the customer attributes in ``db`` (joined on ``customer_id``)."""
    names = tuple(names)
    if all(n in summary.columns for n in names):
        return encode_covariates(summary[list(names)].reset_index(drop=True), names, label)
    if db is None:
        missing = [n for n in names if n not in summary.columns]
        raise InputError(f"{label}: covariate {', '.join(missing)} is not a column of the summary "
                         "(give it as a column, or give db to read customer attributes)", parameters=("db",))
    attrs = attributes_from_db(db, names)
    ids = summary["customer_id"].astype(str).reset_index(drop=True)
    joined = pd.DataFrame({"customer_id": ids}).merge(attrs, on="customer_id", how="left")
    encoded = encode_covariates(joined, names, label)
    unknown = int((~ids.isin(attrs["customer_id"])).sum())
    if unknown:
        encoded.notes.insert(0, f"{unknown:,} customers have no row in customers: their covariates are missing")
    return encoded
