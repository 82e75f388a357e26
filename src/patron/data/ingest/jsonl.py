"""JSON Lines reader: one JSON object per line; the keys become columns, the values text.

Keys are data: each value is extracted with a JSON Pointer (:func:`json_pointer`) bound as a
parameter, so no key is ever part of the SQL text, and the staged columns are named by position
(:func:`~patron.data.ingest.readers.stage_ident`).
"""

from __future__ import annotations

import json
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from patron.data.ingest.readers import (
    MALFORMED_LIMIT,
    Malformed,
    Staged,
    nothing_read,
    record_break,
    stage_ident,
    text_lines,
)
from patron.data.ingest.sources import Source, decode_error, shown

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


def stage_jsonl(con: duckdb.DuckDBPyConnection, source: Source, *, progress: Any = None) -> Staged:
    """Stage a JSON Lines file.

    The keys are those of the first :data:`JSON_KEYS_SAMPLE` objects. Values are extracted in
    one pass per line with ``json_extract_string(_line, $pointers)``; a JSON ``null`` and an absent
    key are both NULL; a nested object or array is its JSON text. A line that is not valid text,
    not a JSON object, or whose object repeats a key, is a malformed row."""
    malformed = Malformed()
    total = 0
    created = False
    for arr, bad, bad_raw in text_lines(source):
        rows = np.arange(total + 1, total + 1 + len(arr), dtype=np.int64)
        for i, raw in list(zip(bad.tolist(), bad_raw, strict=True))[: max(0, MALFORMED_LIMIT - len(malformed.rows))]:
            malformed.add(int(rows[i]), shown(raw.strip(), 200), decode_error(raw, source.encoding, "the line"))
        table = pa.table({"_line": arr.cast(pa.string()), "_row": pa.array(rows)})
        if bad.size:
            keep = np.ones(len(arr), dtype=bool)
            keep[bad] = False
            table = table.filter(pa.array(keep))
        con.register("_batch", table)
        select = f"SELECT _line, _row, {_LINE_PROBLEM} AS _problem FROM _batch"
        con.execute(f"INSERT INTO _lines {select}" if created else f"CREATE OR REPLACE TEMP TABLE _lines AS {select}")
        con.unregister("_batch")
        created = True
        total += len(arr)
        if progress is not None:
            progress(total)
    if not created or (total == 0 and not malformed.rows):
        con.execute("DROP TABLE IF EXISTS _lines")
        raise nothing_read(source)
    keys = [
        r[0]
        for r in con.execute(
            f"SELECT DISTINCT unnest(json_keys(_line)) FROM (SELECT _line FROM _lines WHERE _problem IS NULL LIMIT {JSON_KEYS_SAMPLE:d})"
        ).fetchall()
    ]
    keys.sort()
    limit = max(0, MALFORMED_LIMIT - len(malformed.rows))
    bad_lines = con.execute(f"SELECT _row, _line, _problem FROM _lines WHERE _problem IS NOT NULL ORDER BY _row LIMIT {limit:d}").fetchall()
    for row, text, problem in bad_lines:
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
    total, incomplete = record_break(malformed, source, total)
    return Staged(columns=keys, rows_read=total, malformed=malformed, incomplete=incomplete)
