"""Streaming readers: turn an input file or in-memory table into a DuckDB relation named
``_stage`` whose columns are the input's columns, in input order, plus ``_row``.

The staged columns are named by position (:func:`stage_ident`: ``_c0``, ``_c1``, ...), never by the
input's names: a name read from a file (a CSV header cell, a JSON key, a Parquet field) is data,
and data never becomes SQL text. :attr:`Staged.columns` keeps the input's names, in the same order,
for matching, messages and the ``attributes`` keys; any name is legal (quotes, semicolons, ``_row``,
names that differ only in case).

``_row`` is the 1-based source row number that rejects report: the N-th non-empty record after
the header line (CSV, whitespace-separated text, JSON Lines), or the N-th row (Parquet, tables).
Text is read from a :class:`~patron.data.ingest.sources.Source` (any compression and encoding) in
blocks of whole lines (:func:`line_blocks`) and Parquet row group by row group
(:mod:`patron.data.ingest.parquet`); each block is appended to a temporary table, so a file larger
than memory streams through.

A record is one line (a quoted field cannot hold a line break). A line whose bytes are not valid
text in the input's encoding, or whose quoted field is not closed on the line, is a malformed row
with its reason; it never costs another line its place.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from patron.data.ingest.sources import PARQUET_MAGIC, Source, decode_error, shown, sniff
from patron.errors import InputError

BLOCK_BYTES = 16 << 20
"""Bytes read per block from a text file (16 MiB, then up to the end of the line)."""

MALFORMED_LIMIT = 100_000
"""Malformed lines listed one by one per file (more are counted as read but not listed)."""

WHITESPACE = "whitespace"
"""Delimiter name for files whose fields are separated by runs of spaces or tabs."""

_COMPRESSION_SUFFIXES = {".gz", ".gzip", ".zst", ".zstd", ".bz2", ".xz"}
_FORMATS = {
    ".csv": "csv", ".tsv": "csv", ".txt": "csv", ".dat": "csv",
    ".parquet": "parquet", ".pq": "parquet",
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
}


@dataclass
class Malformed:
    """Rows the reader could not use (reported as rejects with a NULL column)."""

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
    restage: Callable[[duckdb.DuckDBPyConnection], Staged] | None = None
    """Stages the input again another way when the engine fails while reading this staging (a
    lazy view over a file that turns out damaged), None when there is no other way."""

    @property
    def idents(self) -> list[str]:
        """The staged column names, in input order (:func:`stage_ident`)."""
        return [stage_ident(i) for i in range(len(self.columns))]


def positional(table: pa.Table) -> pa.Table:
    """``table`` (input columns then ``_row``) with its input columns renamed by position."""
    n = table.num_columns - 1
    return table.rename_columns([stage_ident(i) for i in range(n)] + ["_row"])


def file_format(path: Path) -> str:
    """``csv``, ``parquet`` or ``jsonl``: Parquet by its magic bytes, else by the file name's
    extension (a compression suffix such as ``.gz`` is skipped), CSV when unknown."""
    head, compression = sniff(path)
    if compression is None and head.startswith(PARQUET_MAGIC):
        return "parquet"
    for s in reversed([s.lower() for s in path.suffixes]):
        if s in _COMPRESSION_SUFFIXES:
            continue
        if s in _FORMATS:
            return _FORMATS[s]
        break
    return "csv"


def append_stage(con: duckdb.DuckDBPyConnection, batch: pa.Table, created: bool) -> None:
    con.register("_batch", batch)
    if created:
        con.execute("INSERT INTO _stage SELECT * FROM _batch")
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE _stage AS SELECT * FROM _batch")
    con.unregister("_batch")


def with_rows(table: pa.Table, first_row: int) -> pa.Table:
    rows = pa.array(np.arange(first_row, first_row + table.num_rows, dtype=np.int64))
    return table.append_column("_row", rows)


def empty_stage(con: duckdb.DuckDBPyConnection, columns: list[str]) -> None:
    """An empty ``_stage`` with one text column per input column (by position) and ``_row``."""
    empty = pa.table({stage_ident(i): pa.array([], pa.string()) for i in range(len(columns))} | {"_row": pa.array([], pa.int64())})
    append_stage(con, empty, created=False)


# --- lines -------------------------------------------------------------------------------------

_LONE_CR = re.compile(rb"\r(?!\n)")


def line_blocks(source: Source) -> Iterator[pa.LargeBinaryArray]:
    """The lines of ``source``'s text, a block of about :data:`BLOCK_BYTES` at a time, each line
    with its terminator (``\\n``, ``\\r\\n``; a lone ``\\r`` ends a line too), as raw bytes."""
    with source.open() as fh:
        while True:
            block = fh.read(BLOCK_BYTES)
            if not block:
                return
            if not block.endswith(b"\n"):
                block += fh.readline()
            if b"\r" in block:
                block = _LONE_CR.sub(b"\n", block)
            buf = np.frombuffer(block, dtype=np.uint8)
            ends = np.flatnonzero(buf == 10) + 1
            if not ends.size or ends[-1] != len(block):
                ends = np.append(ends, len(block))
            offsets = np.concatenate(([0], ends)).astype(np.int64)
            yield pa.Array.from_buffers(pa.large_binary(), len(ends), [None, pa.py_buffer(offsets), pa.py_buffer(block)])


def content_lengths(lines: pa.LargeBinaryArray) -> np.ndarray:
    """Bytes of each line without its ``\\n`` or ``\\r\\n``."""
    n = pc.binary_length(lines).to_numpy(zero_copy_only=False).astype(np.int64)
    n -= pc.ends_with(lines, "\n").to_numpy(zero_copy_only=False)
    n -= pc.ends_with(lines, "\r\n").to_numpy(zero_copy_only=False)
    return n


def decode_lines(lines: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """``lines`` (binary) as text, and the indices of the lines that are not valid UTF-8 (those are
    decoded with U+FFFD in place of the bad bytes, for display only). One vectorized check per
    block; only a block with bad bytes is decoded value by value."""
    try:
        return lines.cast(pa.large_string()), np.empty(0, dtype=np.int64)
    except pa.ArrowInvalid:
        pass
    out, bad = [], []
    for i, raw in enumerate(lines.to_pylist()):
        try:
            out.append(None if raw is None else raw.decode("utf-8"))
        except UnicodeDecodeError:
            bad.append(i)
            out.append(raw.decode("utf-8", "replace"))
    return pa.array(out, pa.large_string()), np.asarray(bad, dtype=np.int64)


def nothing_read(source: Source) -> InputError:
    """The error for a text input without a single line."""
    if source.broke is not None:
        return InputError(f"{source.path}: {source.broke.describe()}; nothing stored")
    return InputError(f"{source.path}: the file is empty")


def finish_text(con: duckdb.DuckDBPyConnection, source: Source, names: list[str] | None, *, created: bool, malformed: Malformed, records: int) -> Staged:
    """What a text reader staged, once the whole text is read: an empty stage when no row was
    staged, the break of truncated data as a malformed row (:func:`record_break`)."""
    if names is None:
        raise nothing_read(source)
    if not created:
        empty_stage(con, names)
    records, incomplete = record_break(malformed, source, records)
    return Staged(columns=names, rows_read=records, malformed=malformed, incomplete=incomplete)


def record_break(malformed: Malformed, source: Source, records: int) -> tuple[int, str | None]:
    """Record where ``source``'s compressed data ended early as the malformed row after the last
    one read; the records read (one more) and the reason the input is incomplete. Damaged data
    refuses the input (:class:`~patron.data.ingest.sources.Break`)."""
    if source.broke is None:
        return records, None
    b = source.broke
    if not b.truncated:
        raise InputError(f"{source.path}: {b.describe()}; nothing stored")
    malformed.add(records + 1, shown(b.tail, 200), f"the input ends here: {b.describe()}")
    return records + 1, b.describe()


# --- whitespace-separated text -----------------------------------------------------------------

def text_lines(source: Source) -> Iterator[tuple[pa.Array, np.ndarray, list[bytes]]]:
    """The non-empty lines of ``source`` (trimmed of surrounding whitespace) per block, with the
    indices of those that are not valid text and their raw bytes."""
    for raw in line_blocks(source):
        text, bad = decode_lines(raw)
        text = pc.utf8_trim_whitespace(text)
        nonempty = pc.greater(pc.utf8_length(text), 0).to_numpy(zero_copy_only=False)
        mask = np.zeros(len(raw), dtype=bool)
        mask[bad] = True
        bad_raw = [raw[int(i)].as_py() for i in bad if nonempty[i]]
        yield text.filter(pa.array(nonempty)), np.flatnonzero(mask[nonempty]), bad_raw


def stage_whitespace(con: duckdb.DuckDBPyConnection, source: Source, *, columns: list[str] | None, progress: Any = None) -> Staged:
    """Stage a file whose fields are separated by runs of whitespace (no quoting), such as
    ``CDNOW_master.txt``."""
    malformed = Malformed()
    names: list[str] | None = list(columns) if columns else None
    records = 0
    created = False
    for arr, bad, bad_raw in text_lines(source):
        if names is None:
            if len(arr) == 0:
                continue
            names = str(arr[0]).split()
            arr, bad = arr[1:], bad[bad > 0] - 1
            bad_raw = bad_raw[len(bad_raw) - len(bad):]
        parts = pc.split_pattern_regex(arr, r"\s+")
        counts = pc.list_value_length(parts).to_numpy(zero_copy_only=False)
        rows = np.arange(records + 1, records + 1 + len(arr), dtype=np.int64)
        ok = counts == len(names)
        ok[bad] = False
        for i, raw in list(zip(bad.tolist(), bad_raw, strict=True))[: max(0, MALFORMED_LIMIT - len(malformed.rows))]:
            malformed.add(int(rows[i]), shown(raw.strip(), 200), decode_error(raw, source.encoding, "the line"))
        wrong = np.flatnonzero(~ok & ~np.isin(np.arange(len(arr)), bad))
        for i in wrong[: max(0, MALFORMED_LIMIT - len(malformed.rows))]:
            malformed.add(int(rows[i]), str(arr[int(i)]), f"expected {len(names)} fields, found {int(counts[i])}")
        good = pc.filter(parts, pa.array(ok))
        table = pa.table({stage_ident(j): pc.list_element(good, j) if len(good) else pa.array([], pa.string()) for j in range(len(names))})
        table = table.append_column("_row", pa.array(rows[ok]))
        append_stage(con, table, created)
        created = True
        records += len(arr)
        if progress is not None:
            progress(records)
    return finish_text(con, source, names, created=created, malformed=malformed, records=records)


def stage_table(con: duckdb.DuckDBPyConnection, table: Any) -> Staged:
    """Stage an in-memory table: pandas or polars DataFrame, or pyarrow Table."""
    arrow = to_arrow(table)
    names = [str(n) for n in arrow.column_names]
    con.register("_stage_src", positional(with_rows(arrow, 1)))
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
