"""Reading and writing tables at the edges (CSV and Parquet by file extension)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from patron.data.outputs import atomic_output, guard_formulas
from patron.errors import InputError
from patron.scope import csv_safe, note_file


def write_table(table: pa.Table, path: str | os.PathLike[str], *, csv_safe_cells: bool | None = None,
                avoid: Mapping[str | os.PathLike[str], str] | None = None, dictionary: bool | Sequence[str] = True) -> Path:
    """Write ``table`` to ``path`` as Parquet (``.parquet``/``.pq``), Arrow IPC
    (``.arrow``/``.feather``/``.ipc``) or CSV (anything else),
    through :func:`patron.data.outputs.atomic_output` (never over the database or a file of the same
    command, whole or not at all, one-line errors).

    In CSV, text cells a spreadsheet would run as a formula get a leading apostrophe
    (:func:`patron.data.outputs.guard_formulas`) unless ``csv_safe_cells`` is false (default: the
    setting ``PATRON_CSV_SAFE``, or ``patron --csv-raw``). Parquet is written as it is;
    ``dictionary`` names the columns worth dictionary-encoding (default all: Arrow tries each
    column and gives up on those with too many values, which costs about half the writing time of
    a table of unique numbers)."""
    p = Path(path)
    parquet = p.suffix.lower() in (".parquet", ".pq")
    arrow = p.suffix.lower() in (".arrow", ".feather", ".ipc")
    with atomic_output(p, avoid=avoid) as target:
        if parquet:
            pq.write_table(table, target, use_dictionary=dictionary if isinstance(dictionary, bool) else list(dictionary))
        elif arrow:
            import pyarrow.feather as feather

            feather.write_feather(table, str(target), compression="uncompressed")
        else:
            pacsv.write_csv(guard_formulas(table) if csv_safe(csv_safe_cells) else table, target)
    return p


def read_table(path: str | os.PathLike[str]) -> pa.Table:
    """Read a CSV or Parquet file into an Arrow table (one clear error when it cannot)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    note_file(p)
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            return pq.read_table(p)
        return pacsv.read_csv(p)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{p}: cannot read: {str(exc).splitlines()[0]}") from None
