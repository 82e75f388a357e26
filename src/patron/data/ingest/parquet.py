"""Parquet reader.

The input's column names come from the file's schema, as written (DuckDB's reader renames
repeated names). The usual path is a view over DuckDB's ``read_parquet``, which streams and reads
only the columns ingest uses; its staged columns are named by position. When that cannot be used
(a column named ``file_row_number``, which DuckDB's row numbering would collide with) or the scan
fails while ingest checks the rows (a damaged page, text that is not UTF-8), the file is read again
row group by row group through Arrow (:func:`stage_parquet_groups`): a row group that cannot be
read is one reject naming its rows, a row whose text is not UTF-8 is a reject naming the column,
and the other rows are stored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from patron.data.dialect import DUCKDB
from patron.data.ingest.readers import (
    Malformed,
    Staged,
    append_stage,
    positional,
    stage_ident,
    with_rows,
)
from patron.data.ingest.sources import decode_error, shown
from patron.errors import InputError

_UNREADABLE = (pa.ArrowException, OSError, ValueError, IndexError, MemoryError)
"""What Arrow raises for a Parquet file or row group it cannot read."""


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _schema_names(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    try:
        return list(pq.read_schema(path).names)
    except _UNREADABLE as exc:
        raise InputError(f"{path}: cannot read as Parquet: {_first_line(exc)}") from None


def stage_parquet(con: duckdb.DuckDBPyConnection, path: Path, *, progress: Any = None) -> Staged:
    """Stage a Parquet file as a view over DuckDB's reader, or row group by row group when the
    view cannot be made (see the module docstring). The view's :attr:`Staged.restage` reads the
    file again row group by row group, for ingest to call when the scan fails."""
    names = _schema_names(path)
    if any(n.lower() == "file_row_number" for n in names):
        return stage_parquet_groups(con, path, progress=progress)
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW _stage ({''.join(stage_ident(i) + ', ' for i in range(len(names)))}_row) AS "
            f"SELECT * EXCLUDE (file_row_number), file_row_number + 1 FROM read_parquet({DUCKDB.literal(str(path))}, file_row_number = true)"
        )
        n = con.execute("SELECT count(*) FROM _stage").fetchall()[0][0]
    except duckdb.Error:
        con.execute("DROP VIEW IF EXISTS _stage")
        return stage_parquet_groups(con, path, progress=progress)
    return Staged(columns=names, rows_read=int(n), malformed=Malformed(), typed=True,
                  restage=lambda c: stage_parquet_groups(c, path, progress=progress))


def _text_problems(table: pa.Table, names: list[str]) -> dict[int, tuple[str, str]]:
    """Rows of ``table`` holding text that is not UTF-8 (Arrow does not check Parquet's text; DuckDB
    refuses it): row -> (the value shown, the reason naming the column)."""
    try:
        table.validate(full=True)
        return {}
    except pa.ArrowInvalid:
        pass
    bad: dict[int, tuple[str, str]] = {}
    for j, col in enumerate(table.columns):
        try:
            col.validate(full=True)
            continue
        except pa.ArrowInvalid:
            pass
        where = f"column {j + 1} {names[j]!r}"
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            raw = pc.cast(col, pa.large_binary() if pa.types.is_large_string(col.type) else pa.binary(), safe=False).to_pylist()
            for i, value in enumerate(raw):
                if value is not None and i not in bad:
                    try:
                        value.decode("utf-8")
                    except UnicodeDecodeError:
                        bad[i] = (shown(value), decode_error(value, "utf-8", where) + " (the Parquet file's text is damaged)")
        else:  # nested text: row by row
            for i in range(table.num_rows):
                try:
                    col.slice(i, 1).validate(full=True)
                except pa.ArrowInvalid as exc:
                    bad.setdefault(i, ("", f"{where}: {_first_line(exc)} (the Parquet file's text is damaged)"))
    return bad


def stage_parquet_groups(con: duckdb.DuckDBPyConnection, path: Path, *, progress: Any = None) -> Staged:
    """Stage a Parquet file row group by row group through Arrow (one row group in memory at a
    time), keeping the columns' types. A row group that cannot be read is one malformed row naming
    its row range, and the input is marked incomplete; a row with text that is not UTF-8 is a
    malformed row; the other rows are staged."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        schema = pf.schema_arrow
        groups = [pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)]
    except _UNREADABLE as exc:
        raise InputError(f"{path}: cannot read as Parquet: {_first_line(exc)}") from None
    names = list(schema.names)
    con.execute("DROP VIEW IF EXISTS _stage")  # the view over DuckDB's reader, when it failed
    malformed = Malformed()
    incomplete = None
    total = 0
    created = False
    for g, n in enumerate(groups):
        try:
            table = pf.read_row_group(g)
        except _UNREADABLE as exc:
            where = f"Parquet row group {g + 1} of {len(groups)}"
            malformed.add(total + 1, "", f"rows {total + 1}-{total + n} ({where}) cannot be read: {_first_line(exc)}")
            incomplete = incomplete or f"{where} is damaged ({_first_line(exc)}); its {n:,} rows were not read"
            total += n
            continue
        table = with_rows(table, total + 1)
        bad = _text_problems(table, names)
        if bad:
            for i, (value, reason) in sorted(bad.items()):
                malformed.add(total + 1 + i, value, reason)
            keep = np.ones(table.num_rows, dtype=bool)
            keep[list(bad)] = False
            table = table.filter(pa.array(keep))
        append_stage(con, positional(table), created)
        created = True
        total += n
        if progress is not None:
            progress(total)
    if not created:
        append_stage(con, positional(with_rows(schema.empty_table(), 1)), created=False)
    return Staged(columns=names, rows_read=total, malformed=malformed, typed=True, incomplete=incomplete)
