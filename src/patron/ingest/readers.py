"""Streaming readers: turn an input file or in-memory table into a DuckDB relation named
``_stage`` whose columns are the input's columns, in input order, plus ``_row``.

The staged columns are named by position (:func:`stage_ident`: ``_c0``, ``_c1``, ...), never by the
input's names: a name read from a file (a CSV header cell, a JSON key, a Parquet field) is data,
and data never becomes SQL text. :attr:`Staged.columns` keeps the input's names, in the same order,
for matching, messages and the ``attributes`` keys; any name is legal (quotes, semicolons, ``_row``,
names that differ only in case).

``_row`` is the 1-based source row number that rejects report: the N-th non-empty record after
the header line (CSV, whitespace-separated text, JSON Lines), or the N-th row (Parquet, tables).
Text inputs are read in blocks of a few megabytes and Parquet row group by row group, and
appended to a temporary table, so a file larger than memory streams through.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from patron.errors import InputError

BLOCK_BYTES = 16 << 20
"""Bytes read per block from a text file (16 MiB)."""

WHITESPACE = "whitespace"
"""Delimiter name for files whose fields are separated by runs of spaces or tabs."""

_DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|", "space": WHITESPACE, WHITESPACE: WHITESPACE}
_FORMATS = {
    ".csv": "csv", ".tsv": "csv", ".txt": "csv", ".dat": "csv", ".gz": "csv",
    ".parquet": "parquet", ".pq": "parquet",
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
}


@dataclass
class Malformed:
    """Rows the reader could not split into the expected columns (reported as rejects)."""

    rows: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def add(self, row: int, text: str, reason: str) -> None:
        self.rows.append(row)
        self.texts.append(text[:200])
        self.reasons.append(reason)


def stage_ident(position: int) -> str:
    """The name of the staged column holding the input's column number ``position`` (0-based)."""
    return f"_c{position}"


@dataclass
class Staged:
    """What a reader produced: input column names, rows read, and malformed rows.

    ``columns[i]`` is the input's name of the staged column :func:`stage_ident` ``(i)``."""

    columns: list[str]
    rows_read: int
    malformed: Malformed
    typed: bool = False
    """True when columns keep their source types (Parquet, Arrow); False when all are text."""
    incomplete: str | None = None
    """Why part of the input could not be read (damaged or truncated data), None when whole.
    The rows read are stored; ingest then fails with this reason."""

    @property
    def idents(self) -> list[str]:
        """The staged column names, in input order (:func:`stage_ident`)."""
        return [stage_ident(i) for i in range(len(self.columns))]


def _positional(table: pa.Table) -> pa.Table:
    """``table`` (input columns then ``_row``) with its input columns renamed by position."""
    n = table.num_columns - 1
    return table.rename_columns([stage_ident(i) for i in range(n)] + ["_row"])


def file_format(path: Path) -> str:
    """``csv``, ``parquet`` or ``jsonl`` from the file name's extension (CSV when unknown)."""
    suffixes = [s.lower() for s in path.suffixes]
    for s in reversed(suffixes):
        if s in _FORMATS and s != ".gz":
            return _FORMATS[s]
    return "csv"


def resolve_delimiter(path: Path, delimiter: str | None) -> str:
    """The delimiter to use: the one given (a character, or tab/comma/semicolon/pipe/whitespace),
    else sniffed from the first lines of the file."""
    if delimiter:
        d = _DELIMITER_NAMES.get(delimiter.lower(), delimiter)
        if d != WHITESPACE and len(d) != 1:
            raise InputError(f"--delimiter must be one character or one of {', '.join(_DELIMITER_NAMES)}; got {delimiter!r}")
        return d
    with _open_text(path) as fh:
        head = fh.read(64 << 10)
    lines = [ln for ln in head.splitlines() if ln.strip()][:20]
    if not lines:
        return ","
    sample = "\n".join(lines)
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        pass
    return WHITESPACE if any(ch in lines[0].strip() for ch in " \t") else ","


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix.lower() == ".gz":
        import gzip

        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace", newline="")
    return open(path, encoding="utf-8", errors="replace", newline="")


def _append(con: duckdb.DuckDBPyConnection, batch: pa.Table, created: bool) -> None:
    con.register("_batch", batch)
    if created:
        con.execute("INSERT INTO _stage SELECT * FROM _batch")
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE _stage AS SELECT * FROM _batch")
    con.unregister("_batch")


def _with_rows(table: pa.Table, first_row: int) -> pa.Table:
    rows = pa.array(np.arange(first_row, first_row + table.num_rows, dtype=np.int64))
    return table.append_column("_row", rows)


def _empty_stage(con: duckdb.DuckDBPyConnection, columns: list[str]) -> None:
    """An empty ``_stage`` with one text column per input column (by position) and ``_row``."""
    empty = pa.table({stage_ident(i): pa.array([], pa.string()) for i in range(len(columns))} | {"_row": pa.array([], pa.int64())})
    _append(con, empty, created=False)


def stage_delimited(con: duckdb.DuckDBPyConnection, path: Path, *, delimiter: str, columns: list[str] | None, progress: Any = None) -> Staged:
    """Stage a CSV-like file with a one-character delimiter (quoted fields allowed)."""
    malformed = Malformed()
    header_offset = 0 if columns else 1

    def on_invalid(row: Any) -> str:
        # pyarrow numbers non-empty records from 1, header included.
        number = (row.number or 0) - header_offset
        malformed.add(number, row.text or "", f"expected {row.expected_columns} fields, found {row.actual_columns}")
        return "skip"

    read_opts = pacsv.ReadOptions(block_size=BLOCK_BYTES, use_threads=False, column_names=columns or None, autogenerate_column_names=False)
    try:
        probe = pacsv.open_csv(path, read_options=read_opts, parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=on_invalid))
        names = list(probe.schema.names)
        probe.close()
    except pa.ArrowInvalid as exc:
        if "Empty CSV file" in str(exc):
            raise InputError(f"{path}: the file is empty") from None
        raise InputError(f"{path}: cannot read as delimited text: {str(exc).splitlines()[0]}") from None
    malformed = Malformed()
    reader = pacsv.open_csv(
        path,
        read_options=read_opts,
        parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=on_invalid, newlines_in_values=False),
        convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names}, strings_can_be_null=False),
    )
    total = 0
    created = False
    try:
        for batch in reader:
            table = pa.Table.from_batches([batch])
            # Valid records are numbered around the malformed ones skipped before them.
            k = np.arange(total, total + table.num_rows, dtype=np.int64)
            bad = np.sort(np.asarray(malformed.rows, dtype=np.int64))
            rows = _number_around(k, bad)
            table = _positional(table.append_column("_row", pa.array(rows)))
            _append(con, table, created)
            created = True
            total += table.num_rows
            if progress is not None:
                progress(total)
    except pa.ArrowInvalid as exc:
        raise InputError(f"{path}: cannot read as delimited text: {str(exc).splitlines()[0]}") from None
    if not created:
        _empty_stage(con, names)
    return Staged(columns=names, rows_read=total + len(malformed.rows), malformed=malformed)


def _number_around(k: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """1-based row numbers of the valid records with 0-based valid index ``k``, given the sorted
    1-based row numbers ``bad`` of skipped records (vectorized complement numbering)."""
    if bad.size == 0:
        return k + 1
    # The j-th skipped row has (bad[j] - 1 - j) valid rows before it.
    valid_before = bad - 1 - np.arange(bad.size)
    shift = np.searchsorted(valid_before, k, side="right")
    return k + 1 + shift


def _iter_line_blocks(path: Path) -> Iterator[list[str]]:
    with _open_text(path) as fh:
        while True:
            lines = fh.readlines(BLOCK_BYTES)
            if not lines:
                return
            yield lines


def stage_whitespace(con: duckdb.DuckDBPyConnection, path: Path, *, columns: list[str] | None, progress: Any = None) -> Staged:
    """Stage a file whose fields are separated by runs of whitespace (no quoting), such as
    ``CDNOW_master.txt``."""
    malformed = Malformed()
    names: list[str] | None = list(columns) if columns else None
    total_records = 0
    rows_staged = 0
    created = False
    for lines in _iter_line_blocks(path):
        arr = pc.utf8_trim_whitespace(pa.array(lines, pa.string()))
        arr = pc.filter(arr, pc.greater(pc.utf8_length(arr), 0))
        if names is None:
            if len(arr) == 0:
                continue
            names = str(arr[0]).split()
            arr = arr[1:]
        parts = pc.split_pattern_regex(arr, r"\s+")
        counts = pc.list_value_length(parts).to_numpy(zero_copy_only=False)
        rows = np.arange(total_records + 1, total_records + 1 + len(arr), dtype=np.int64)
        ok = counts == len(names)
        for i in np.flatnonzero(~ok)[:100_000]:
            malformed.add(int(rows[i]), str(arr[int(i)]), f"expected {len(names)} fields, found {int(counts[i])}")
        good = pc.filter(parts, pa.array(ok))
        table = pa.table({stage_ident(j): pc.list_element(good, j) if len(good) else pa.array([], pa.string()) for j in range(len(names))})
        table = table.append_column("_row", pa.array(rows[ok]))
        _append(con, table, created)
        created = True
        rows_staged += table.num_rows
        total_records += len(arr)
        if progress is not None:
            progress(total_records)
    if names is None:
        raise InputError(f"{path}: the file is empty")
    if not created:
        _empty_stage(con, names)
    return Staged(columns=names, rows_read=total_records, malformed=malformed)


JSON_KEYS_SAMPLE = 100_000
"""JSON Lines objects whose keys make up the columns (the first ones of the file)."""

_LINE_PROBLEM = (
    "CASE WHEN NOT json_valid(_line) THEN 'not a JSON object' "
    "WHEN json_type(_line) <> 'OBJECT' THEN 'not a JSON object' "
    "WHEN len(json_keys(_line)) <> len(list_distinct(json_keys(_line))) THEN 'repeated key' END"
)
"""Why a JSON Lines line cannot be a row, NULL when it can. ``CASE`` evaluates ``json_type`` only
for valid JSON (it raises on invalid text, such as a lone surrogate). An object with a repeated
key is refused: JSON leaves its value undefined (DuckDB reads the first, Python the last)."""


def json_pointer(key: str) -> str:
    """The RFC 6901 JSON Pointer of the top-level ``key``: ``/`` then the key with ``~`` written
    ``~0`` and ``/`` written ``~1``; every other character (quotes, ``$``, dots, brackets) is
    itself. It is passed to DuckDB as a bound parameter, never as SQL text."""
    return "/" + key.replace("~", "~0").replace("/", "~1")


def _repeated_key(line: str) -> str:
    """The first top-level key that appears twice in the JSON object ``line`` (for the reason)."""
    import json

    objects: list[list[tuple[str, Any]]] = []  # the hook sees inner objects first, the line's last
    try:
        json.loads(line, object_pairs_hook=lambda items: objects.append(items) or {})
    except (ValueError, RecursionError):
        return "?"
    seen: set[str] = set()
    for key, _ in objects[-1] if objects else []:
        if key in seen:
            return key
        seen.add(key)
    return "?"


def stage_jsonl(con: duckdb.DuckDBPyConnection, path: Path, *, progress: Any = None) -> Staged:
    """Stage a JSON Lines file: one object per line; keys become columns, values text.

    The keys are those of the first :data:`JSON_KEYS_SAMPLE` objects. Values are extracted in
    one pass per line with ``json_extract_string(_line, $pointers)``, the list of JSON Pointers
    (:func:`json_pointer`) bound as a parameter, so no key is ever part of the SQL text; a JSON
    ``null`` and an absent key are both NULL; a nested object or array is its JSON text. A line
    that is not a JSON object, or whose object repeats a key, is a malformed row."""
    total = 0
    created = False
    for lines in _iter_line_blocks(path):
        arr = pc.utf8_trim_whitespace(pa.array(lines, pa.string()))
        arr = pc.filter(arr, pc.greater(pc.utf8_length(arr), 0))
        table = pa.table({"_line": arr})
        table = _with_rows(table, total + 1)
        con.register("_batch", table)
        select = f"SELECT _line, _row, {_LINE_PROBLEM} AS _problem FROM _batch"
        con.execute(f"INSERT INTO _lines {select}" if created else f"CREATE OR REPLACE TEMP TABLE _lines AS {select}")
        con.unregister("_batch")
        created = True
        total += len(arr)
        if progress is not None:
            progress(total)
    if not created:
        raise InputError(f"{path}: the file is empty")
    keys = [
        r[0]
        for r in con.execute(
            f"SELECT DISTINCT unnest(json_keys(_line)) FROM (SELECT _line FROM _lines WHERE _problem IS NULL LIMIT {JSON_KEYS_SAMPLE:d})"
        ).fetchall()
    ]
    keys.sort()
    malformed = Malformed()
    bad = con.execute("SELECT _row, _line, _problem FROM _lines WHERE _problem IS NOT NULL ORDER BY _row LIMIT 100000").fetchall()
    for row, text, problem in bad:
        if problem == "repeated key":
            problem = f"the key {_repeated_key(text)!r} appears more than once in the object"
        malformed.add(int(row), text, problem)
    cols = "".join(f"v[{i + 1}] AS {stage_ident(i)}, " for i in range(len(keys)))
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _stage AS SELECT {cols}_row "
        "FROM (SELECT json_extract_string(_line, $pointers::VARCHAR[]) AS v, _row FROM _lines WHERE _problem IS NULL)",
        {"pointers": [json_pointer(k) for k in keys]},
    )
    con.execute("DROP TABLE _lines")
    return Staged(columns=keys, rows_read=total, malformed=malformed)


def stage_parquet(con: duckdb.DuckDBPyConnection, path: Path, *, progress: Any = None) -> Staged:
    """Stage a Parquet file row group by row group (one row group in memory at a time), keeping
    the columns' types. The input's column names come from the file's schema, as written (DuckDB's
    own reader renames repeated names and refuses a column named ``file_row_number``).

    A row group that cannot be read (damaged pages, an unreadable type) is one malformed row
    naming its row range, and the input is marked incomplete; the other row groups are staged."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        schema = pf.schema_arrow
        groups = [pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)]
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read as Parquet: {_first_line(exc)}") from None
    names = list(schema.names)
    malformed = Malformed()
    incomplete = None
    total = 0
    created = False
    for g, n in enumerate(groups):
        try:
            table = pf.read_row_group(g)
        except (pa.ArrowException, OSError, ValueError, IndexError) as exc:
            reason = f"rows {total + 1}-{total + n} (Parquet row group {g + 1} of {len(groups)}) cannot be read: {_first_line(exc)}"
            malformed.add(total + 1, "", reason)
            incomplete = incomplete or f"Parquet row group {g + 1} of {len(groups)} is damaged ({_first_line(exc)}); its {n:,} rows were not read"
            total += n
            continue
        _append(con, _positional(_with_rows(table, total + 1)), created)
        created = True
        total += n
        if progress is not None:
            progress(total)
    if not created:
        _append(con, _positional(_with_rows(schema.empty_table(), 1)), created=False)
    return Staged(columns=names, rows_read=total, malformed=malformed, typed=True, incomplete=incomplete)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def stage_table(con: duckdb.DuckDBPyConnection, table: Any) -> Staged:
    """Stage an in-memory table: pandas or polars DataFrame, or pyarrow Table."""
    arrow = to_arrow(table)
    names = [str(n) for n in arrow.column_names]
    con.register("_stage_src", _positional(_with_rows(arrow, 1)))
    con.execute("CREATE OR REPLACE TEMP VIEW _stage AS SELECT * FROM _stage_src")
    return Staged(columns=names, rows_read=arrow.num_rows, malformed=Malformed(), typed=True)


def to_arrow(table: Any) -> pa.Table:
    """A pyarrow Table from a pandas DataFrame, polars DataFrame or pyarrow Table/RecordBatch."""
    if isinstance(table, pa.Table):
        return table
    if isinstance(table, pa.RecordBatch):
        return pa.Table.from_batches([table])
    if hasattr(table, "to_arrow"):  # polars
        return table.to_arrow()
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover
        pd = None
    if pd is not None and isinstance(table, pd.DataFrame):
        return pa.Table.from_pandas(table, preserve_index=False)
    raise InputError(f"cannot ingest an object of type {type(table).__name__}: give a file path, a pandas or polars DataFrame, or a pyarrow Table")
