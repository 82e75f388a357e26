"""Reading and writing tables at the edges (CSV and Parquet by file extension)."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from patron.errors import InputError


def write_table(table: pa.Table, path: str | os.PathLike[str]) -> Path:
    """Write ``table`` to ``path`` as Parquet (``.parquet``/``.pq``) or CSV (anything else)."""
    p = Path(path)
    if p.parent and not p.parent.exists():
        raise InputError(f"{p}: folder {p.parent} does not exist")
    if p.suffix.lower() in (".parquet", ".pq"):
        pq.write_table(table, p)
    else:
        pacsv.write_csv(table, p)
    return p


def read_table(path: str | os.PathLike[str]) -> pa.Table:
    """Read a CSV or Parquet file into an Arrow table (one clear error when it cannot)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            return pq.read_table(p)
        return pacsv.read_csv(p)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{p}: cannot read: {str(exc).splitlines()[0]}") from None
