"""Delimited text (CSV, TSV, semicolons, pipes, ...): one record per line, quoted fields allowed
on the line, split by Arrow's CSV parser a block of lines at a time.

Before the parser sees a block, the lines it would mishandle are taken out as malformed rows:
lines that are not valid text (Arrow's handler for bad rows fails on them) and lines whose quoted
field is not closed (Arrow would read every line after it, to the end of the block, as part of
that field: a block of good rows lost as one malformed row).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from patron.data.ingest.readers import (
    MALFORMED_LIMIT,
    WHITESPACE,
    Malformed,
    Staged,
    append_stage,
    content_lengths,
    decode_lines,
    finish_text,
    line_blocks,
    stage_ident,
)
from patron.data.ingest.sources import Source, decode_error, shown
from patron.errors import InputError

_DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|", "space": WHITESPACE, WHITESPACE: WHITESPACE}


def resolve_delimiter(source: Source, delimiter: str | None) -> str:
    """The delimiter to use: the one given (a character, or tab/comma/semicolon/pipe/whitespace),
    else sniffed from the first lines of the file."""
    if delimiter:
        d = _DELIMITER_NAMES.get(delimiter.lower(), delimiter)
        if d != WHITESPACE and (len(d) != 1 or d in "\"\r\n"):
            raise InputError(f"delimiter must be one character (not a quote or line break) or one of {', '.join(_DELIMITER_NAMES)}; got {delimiter!r}",
                             parameters=("delimiter",))
        return d
    with source.open() as fh:
        head = fh.read(64 << 10).decode("utf-8", "replace")
    lines = [ln for ln in head.splitlines() if ln.strip()][:20]
    if not lines:
        return ","
    # The candidate that splits the first line as it splits most of the others (a few odd lines
    # do not change the answer), the one splitting it most on a tie; else Python's sniffer.
    scores = []
    for d in ",;\t|":
        first = lines[0].count(d)
        agree = sum(ln.count(d) == first for ln in lines[1:])
        if first and 2 * agree >= len(lines) - 1:
            scores.append((agree, first, d))
    if scores:
        return max(scores)[2]
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|").delimiter
    except csv.Error:
        pass
    return WHITESPACE if any(ch in lines[0].strip() for ch in " \t") else ","


def _field_pattern(delimiter: str) -> str:
    """RE2 pattern of a line whose quoted fields all close on the line (a field that opens a quote
    and does not close it would swallow the lines after it)."""
    d = re.escape(delimiter)
    f = f'(?:"(?:[^"]|"")*"[^{d}\r\n]*|[^"{d}\r\n][^{d}\r\n]*|)'
    return f"^{f}(?:{d}{f})*\r?\n?$"


def _joined(lines: pa.LargeBinaryArray) -> pa.Buffer:
    """The bytes of ``lines`` one after the other (zero-copy)."""
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)[lines.offset: lines.offset + len(lines) + 1]
    return lines.buffers()[2].slice(int(offsets[0]), int(offsets[-1] - offsets[0]))


def _parse(lines: pa.LargeBinaryArray, delimiter: str, ncols: int) -> tuple[pa.Table, list[tuple[int, str]]]:
    """Split ``lines`` (valid UTF-8, one record each) into ``ncols`` text fields with Arrow's CSV
    parser; the 0-based indices and reasons of the lines that cannot be split so (another number
    of fields, or anything else the parser refuses: those are found by halving)."""
    bad: list[tuple[int, str]] = []

    def on_invalid(row: Any) -> str:
        bad.append(((row.number or 0) - 1, f"expected {row.expected_columns} fields, found {row.actual_columns}"))
        return "skip"

    names = [f"f{i}" for i in range(ncols)]
    buf = _joined(lines)
    try:
        table = pacsv.read_csv(
            pa.BufferReader(buf),
            read_options=pacsv.ReadOptions(column_names=names, use_threads=False, block_size=max(buf.size + 1, 1 << 16)),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=False, invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False),
        )
    except pa.ArrowInvalid as exc:
        if len(lines) == 1:
            empty = pa.table({n: pa.array([], pa.string()) for n in names})
            return empty, [(0, f"cannot be split into fields: {str(exc).strip().splitlines()[0]}")]
        mid = len(lines) // 2
        first, bad1 = _parse(lines.slice(0, mid), delimiter, ncols)
        second, bad2 = _parse(lines.slice(mid), delimiter, ncols)
        return pa.concat_tables([first, second]), bad1 + [(i + mid, r) for i, r in bad2]
    return table, bad


def _header(line: bytes, delimiter: str, path: Path) -> list[str]:
    """The column names of a header line (bytes that are not valid text shown as U+FFFD)."""
    text = line.decode("utf-8", "replace").encode()
    try:
        ncols = pacsv.read_csv(pa.BufferReader(text), read_options=pacsv.ReadOptions(autogenerate_column_names=True),
                               parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=False)).num_columns
    except pa.ArrowInvalid as exc:
        raise InputError(f"{path}: cannot read the header line: {str(exc).strip().splitlines()[0]}") from None
    table, _ = _parse(pa.array([text], pa.large_binary()), delimiter, ncols)
    if table.num_rows != 1:
        raise InputError(f"{path}: cannot read the header line")
    return [table.column(i)[0].as_py() for i in range(ncols)]


def _undecodable_field(raw: bytes, delimiter: str, names: list[str], encoding: str) -> tuple[str, str]:
    """The bad field of a line that is not valid text, shown, and the reason (naming the column)."""
    text = raw.rstrip(b"\r\n").decode("utf-8", "surrogateescape")
    try:
        fields = next(csv.reader([text], delimiter=delimiter), [])
    except csv.Error:
        fields = []
    for j, f in enumerate(fields):
        if any("\udc80" <= ch <= "\udcff" for ch in f):
            value = f.encode("utf-8", "surrogateescape")
            where = f"column {j + 1} {names[j]!r}" if j < len(names) else f"field {j + 1}"
            return shown(value), decode_error(value, encoding, where)
    return shown(raw.rstrip(b"\r\n")), decode_error(raw, encoding, "the line")


def _split_block(lines: pa.LargeBinaryArray, numbers: np.ndarray, *, delimiter: str, names: list[str], encoding: str,
                 pattern: str, malformed: Malformed) -> pa.Table | None:
    """The records of a block of non-empty lines as a staged table (text fields and ``_row``);
    lines that are not valid text, leave a quote open, or have another number of fields are added
    to ``malformed`` instead (Arrow's parser would read every line after an open quote as part of
    its field, and its handler for bad rows fails on bytes that are not UTF-8)."""
    room = MALFORMED_LIMIT - len(malformed.rows)
    _, undecodable = decode_lines(lines)
    keep = np.ones(len(lines), dtype=bool)
    keep[undecodable] = False
    for i in undecodable[:room].tolist():
        malformed.add(int(numbers[i]), *_undecodable_field(lines[i].as_py(), delimiter, names, encoding))
    if (np.frombuffer(_joined(lines), dtype=np.uint8) == ord('"')).any():
        closed = pc.match_substring_regex(lines, pattern).to_numpy(zero_copy_only=False)
    else:  # no quote in the block: every line is closed
        closed = np.ones(len(lines), dtype=bool)
    for i in np.flatnonzero(keep & ~closed)[: max(0, MALFORMED_LIMIT - len(malformed.rows))]:
        malformed.add(int(numbers[i]), shown(lines[int(i)].as_py().rstrip(b"\r\n"), 200), "a quoted field is not closed on its line (a record is one line)")
    keep &= closed
    if not keep.all():
        lines, numbers = lines.filter(pa.array(keep)), numbers[keep]
    if not len(lines):
        return None
    table, wrong = _parse(lines, delimiter, len(names))
    keep = np.ones(len(lines), dtype=bool)
    for i, reason in wrong:
        if 0 <= i < len(lines):
            keep[i] = False
            if len(malformed.rows) < MALFORMED_LIMIT:
                malformed.add(int(numbers[i]), shown(lines[i].as_py().rstrip(b"\r\n"), 200), reason)
    return table.rename_columns([stage_ident(j) for j in range(len(names))]).append_column("_row", pa.array(numbers[keep]))


def stage_delimited(con: duckdb.DuckDBPyConnection, source: Source, *, delimiter: str, columns: list[str] | None, progress: Any = None) -> Staged:
    """Stage a CSV-like file with a one-character delimiter (quoted fields allowed, on one line)."""
    malformed = Malformed()
    names = list(columns) if columns else None
    pattern = _field_pattern(delimiter)
    records = 0
    created = False
    for lines in line_blocks(source):
        nonempty = content_lengths(lines) > 0
        if not nonempty.all():
            lines = lines.filter(pa.array(nonempty))
        if names is None:
            if not len(lines):
                continue
            names = _header(lines[0].as_py(), delimiter, source.path)
            lines = lines.slice(1)
        numbers = np.arange(records + 1, records + 1 + len(lines), dtype=np.int64)
        records += len(lines)
        table = _split_block(lines, numbers, delimiter=delimiter, names=names, encoding=source.encoding, pattern=pattern, malformed=malformed)
        if table is not None:
            append_stage(con, table, created)
            created = True
        if progress is not None:
            progress(records)
    return finish_text(con, source, names, created=created, malformed=malformed, records=records)
