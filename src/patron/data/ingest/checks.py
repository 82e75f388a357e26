"""SQL builders for validated ingest: parse each staged column by its contract type and list every
problem as ``(_row, column, value, reason)``.

Builders return SQL text only; :mod:`patron.data.ingest.load` runs it on DuckDB and
:mod:`patron.data.ingest.spark` on Spark. Each builder takes a ``dialect`` (default
:data:`~patron.data.dialect.DUCKDB`); the few spellings that differ (casts that may fail, regular
expressions, strptime, quoting) come from :class:`~patron.data.dialect.Dialect`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from patron.constants import DEFAULT_DATE_FLOOR
from patron.data.dialect import DUCKDB, Dialect
from patron.data.ingest.plausible import (
    MAX_MONEY,
    TIMESTAMP_HELP,
    TIMESTAMP_MAX,
    id_problem_sql,
    number_sql,
    timestamp_sql,
)
from patron.data.schema import Column, TableContract

TEXT_TYPES = {"VARCHAR"}
_NUMBER_TYPES = ("DOUBLE", "FLOAT", "REAL", "DECIMAL", "INT", "BIGINT", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER")
"""DuckDB types (prefixes) of a typed number source, cast to DOUBLE as they are."""
_TRUE = ("true", "t", "1", "yes", "y")
_FALSE = ("false", "f", "0", "no", "n")


@dataclass(frozen=True)
class SourceColumn:
    """A staged input column that feeds a contract column: its staged name (an identifier the
    reader chose, :func:`patron.data.ingest.readers.stage_ident`), its DuckDB type, and the input's own
    name for it (``label``: the key under ``attributes``; data, only ever written as a literal)."""

    name: str
    sql_type: str
    label: str = ""

    @property
    def is_text(self) -> bool:
        return self.sql_type.upper() in TEXT_TYPES

    @property
    def is_nested(self) -> bool:
        """A struct, list, array or map (Parquet, a DataFrame; in DuckDB or Spark spelling)."""
        t = self.sql_type.upper()
        return t.startswith(("STRUCT", "MAP", "UNION", "ARRAY", "LIST")) or t.endswith("]")


def raw_expr(src: SourceColumn, dialect: Dialect = DUCKDB) -> str:
    """The source value as text, NULL when empty (for reporting and emptiness tests). A nested
    value is its JSON text, as a JSON Lines reader gives it (an id rule then rejects it)."""
    ident = dialect.ident(src.name)
    if src.is_text:
        if dialect.name == "duckdb":  # trim (spaces only) copies every value: only those with a space at an end
            return f"NULLIF(CASE WHEN {ident} LIKE ' %' OR {ident} LIKE '% ' THEN trim({ident}) ELSE {ident} END, '')"
        return f"NULLIF(trim({ident}), '')"
    if src.is_nested:
        return dialect.to_json_text(ident)
    return dialect.to_text(ident)


def parse_expr(col: Column, src: SourceColumn, *, date_format: str | None, dialect: Dialect = DUCKDB) -> str:
    """SQL that turns the staged value into the contract type, NULL when it cannot.

    ``src.sql_type`` is a DuckDB type name (an engine maps its own types to these first)."""
    raw = raw_expr(src, dialect)
    ident = dialect.ident(src.name)
    t = src.sql_type.upper()
    if col.type in ("text", "choice"):
        return f"lower({raw})" if col.type == "choice" else raw
    if col.type == "currency":
        return f"CASE WHEN {dialect.full_match(raw, '[A-Za-z]{3}')} THEN upper({raw}) END"
    if col.type == "number":
        if t.startswith(_NUMBER_TYPES):
            return f"CAST({ident} AS DOUBLE)"
        return number_sql(raw, dialect)
    if col.type == "boolean":
        if t == "BOOLEAN":
            return ident
        trues = ", ".join(dialect.literal(v) for v in _TRUE)
        falses = ", ".join(dialect.literal(v) for v in _FALSE)
        return f"CASE WHEN lower({raw}) IN ({trues}) THEN TRUE WHEN lower({raw}) IN ({falses}) THEN FALSE END"
    if col.type == "timestamp":
        if t == "TIMESTAMP" or t.startswith("TIMESTAMP_") or t == "TIMESTAMP_NS":
            return f"CAST({ident} AS TIMESTAMP)"
        if t in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"):
            return f"CAST(timezone('UTC', {ident}) AS TIMESTAMP)"
        if t == "DATE":
            return f"CAST({ident} AS TIMESTAMP)"
        if date_format:
            return dialect.strptime(raw, date_format)
        return timestamp_sql(raw, dialect)
    raise ValueError(f"unknown column type {col.type}")  # pragma: no cover


def raw_column(col: Column) -> str:
    """Name of the column of ``_parsed`` holding the input text of ``col`` (NULL when empty).
    Plain text columns are stored once: their parsed value is the trimmed text."""
    return col.name if col.type == "text" else f"raw_{col.name}"


def timestamp_literal(t: datetime | date) -> str:
    """A TIMESTAMP literal, the same in DuckDB and Spark."""
    if not isinstance(t, datetime):
        t = datetime(t.year, t.month, t.day)
    return f"TIMESTAMP '{t.isoformat(sep=' ')}'"


def parses_exactly(col: Column, src: SourceColumn) -> bool:
    """Whether :func:`parse_expr` turns ``src`` into ``col`` by a cast that cannot fail (a typed
    number, boolean or timestamp source): then the parsed value is NULL exactly when the input is,
    and no row is unparseable."""
    t = src.sql_type.upper()
    if col.type == "number":
        return t.startswith(_NUMBER_TYPES) and not t.startswith("INTERVAL")
    if col.type == "boolean":
        return t == "BOOLEAN"
    if col.type == "timestamp":
        return t == "TIMESTAMP" or t.startswith("TIMESTAMP_") or t in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ", "DATE")
    return False


def problem_checks(col: Column, *, date_format: str | None, future_limit_sql: str, dialect: Dialect = DUCKDB,
                   date_floor: date = DEFAULT_DATE_FLOOR, exact: bool = False) -> list[tuple[str, str]]:
    """``(condition, reason)`` SQL pairs over ``_parsed``, one per rule of one column: a row for
    which ``condition`` is true has the problem ``reason`` (a text expression); the value shown
    is the column's input text (:func:`raw_column`).

    ``_parsed`` holds the input text (:func:`raw_column`) and the parsed ``<name>`` of every column.
    The plausibility rules (:mod:`patron.data.ingest.plausible`): timestamps from ``date_floor`` to
    ``future_limit_sql`` (to :data:`~patron.data.ingest.plausible.TIMESTAMP_MAX` for a column that may
    lie in the future), money at most :data:`~patron.data.ingest.plausible.MAX_MONEY`, identifiers
    without control, zero-width or bidi characters.

    ``exact``: the column :func:`parses_exactly`, so its emptiness is tested on the parsed value
    (no text is made of every row) and the rule for unparseable input, which never applies, is left
    out.
    """
    name, raw = col.name, raw_column(col)
    lit = dialect.literal
    out: list[tuple[str, str]] = []

    def sel(cond: str, reason_sql: str) -> None:
        out.append((cond, reason_sql))

    if col.required:
        sel(f"{name if exact else raw} IS NULL", lit(f"missing {name}"))
    shown = f"'\"' || left({raw}, 60) || '\"'"
    if col.type == "timestamp":
        expect = f" (expected --date-format {date_format})" if date_format else f" (expected {TIMESTAMP_HELP}; set --date-format otherwise)"
        if not exact:
            sel(f"{raw} IS NOT NULL AND {name} IS NULL", f"'unparseable timestamp ' || {shown} || {lit(expect)}")
        sel(f"{name} < {timestamp_literal(date_floor)}",
            f"'timestamp ' || {shown} || {lit(f' is before {date_floor.isoformat()} (the date floor, PATRON_DATE_FLOOR)')}")
        if col.future_ok:
            sel(f"{name} > {timestamp_literal(TIMESTAMP_MAX)}", f"'timestamp ' || {shown} || ' is after year 9999'")
        else:
            sel(f"{name} > {future_limit_sql}", f"'timestamp ' || {shown} || ' is in the future (later than now plus the allowed clock skew)'")
    elif col.type == "number":
        if not exact:
            sel(f"{raw} IS NOT NULL AND {name} IS NULL", f"'non-numeric {name} ' || {shown}")
        sel(f"{name} IS NOT NULL AND {dialect.non_finite(name)}", f"'{name} ' || {shown} || ' is not a finite number'")
        if col.money:
            sel(f"abs({name}) > {MAX_MONEY:.1f} AND NOT {dialect.non_finite(name)}",
                f"'{name} ' || {shown} || {lit(f' is over the largest plausible amount ({MAX_MONEY:.0e})')}")
        if col.non_negative:
            sel(f"{name} < 0", f"'{name} ' || {shown} || ' is negative'")
    elif col.type == "choice":
        allowed = ", ".join(lit(c) for c in col.choices)
        sel(f"{raw} IS NOT NULL AND {name} NOT IN ({allowed})", f"'{name} ' || {shown} || ' is not one of {', '.join(col.choices)}'")
    elif col.type == "boolean" and not exact:
        sel(f"{raw} IS NOT NULL AND {name} IS NULL", f"'{name} ' || {shown} || ' is not true/false'")
    elif col.type == "currency":
        sel(f"{raw} IS NOT NULL AND {name} IS NULL", f"'currency ' || {shown} || ' is not a three-letter ISO 4217 code'")
    elif col.identifier:
        problem = id_problem_sql(raw, dialect)
        sel(f"{raw} IS NOT NULL AND ({problem}) IS NOT NULL", f"'{name} ' || {shown} || ' ' || ({problem})")
    return out


def problem_selects(col: Column, *, date_format: str | None, future_limit_sql: str, dialect: Dialect = DUCKDB,
                    date_floor: date = DEFAULT_DATE_FLOOR) -> list[str]:
    """SELECTs over ``_parsed`` yielding ``(_row, column, value, reason)`` for one column, one per
    rule of :func:`problem_checks` (to be joined by ``UNION ALL``)."""
    label, raw = dialect.literal(col.name), raw_column(col)
    return [f"SELECT _row, {label} AS {dialect.ident('column')}, {raw} AS value, {reason} AS reason FROM _parsed WHERE {cond}"
            for cond, reason in problem_checks(col, date_format=date_format, future_limit_sql=future_limit_sql,
                                               dialect=dialect, date_floor=date_floor)]


def problems_one_pass_sql(checks: list[tuple[Column, str, str]]) -> str:
    """One SELECT over ``_parsed`` yielding ``(_row, column, value, reason)`` for every
    ``(column, condition, reason)`` of :func:`problem_checks` (DuckDB): a single scan, which keeps
    only the rows with some problem and then lists each of their problems (a list of structs,
    unnested). The rows and reasons are those of the ``UNION ALL`` of :func:`problem_selects`."""
    lit = DUCKDB.literal
    items = [f"CASE WHEN {cond} THEN {{'column': {lit(col.name)}, 'value': CAST({raw_column(col)} AS VARCHAR), "
             f"'reason': CAST({reason} AS VARCHAR)}} END" for col, cond, reason in checks]
    anywhere = " OR ".join(f"({cond})" for _, cond, _ in checks)
    return (f"SELECT _row, struct_extract(p, 'column') AS \"column\", struct_extract(p, 'value') AS value, "
            f"struct_extract(p, 'reason') AS reason\n"
            f"FROM (SELECT _row, unnest([{', '.join(items)}]) AS p FROM _parsed WHERE {anywhere})\nWHERE p IS NOT NULL")


def parsed_select_sql(contract: TableContract, sources: dict[str, SourceColumn], extras: list[SourceColumn], *, date_format: str | None, content_hash: bool = False, dialect: Dialect = DUCKDB, stage: str = "_stage") -> str:
    """The SELECT over ``stage`` (which has ``_row`` and the input columns) that gives ``_row``,
    ``raw_<c>`` and parsed ``<c>`` for every contract column (NULL for columns absent from the
    input); when the contract keeps extra columns, ``attributes`` as a JSON object of their text
    values; with ``content_hash``, ``_hash``, the md5 of the parsed content
    (:func:`content_hash_sql`)."""
    parts = ["_row"]
    for col in contract.columns:
        src = sources.get(col.name)
        raw = raw_column(col)
        if src is None:
            parts += [f"{dialect.typed_null(col.sql_type)} AS {col.name}"] + ([f"{dialect.typed_null('VARCHAR')} AS {raw}"] if raw != col.name else [])
        else:
            parts += [f"{parse_expr(col, src, date_format=date_format, dialect=dialect)} AS {col.name}"] + ([f"{raw_expr(src, dialect)} AS {raw}"] if raw != col.name else [])
    if contract.keep_extra_as_attributes:
        if extras:
            parts.append(f"{dialect.json_object([(e.label or e.name, raw_expr(e, dialect)) for e in extras])} AS attributes")
        else:
            parts.append(f"{dialect.typed_null('VARCHAR')} AS attributes")
    select = "SELECT " + ",\n  ".join(parts) + f"\nFROM {stage}"
    if content_hash:
        select = f"SELECT *, {content_hash_sql(contract, dialect=dialect)} AS _hash FROM ({select}) s"
    return select


def parsed_table_sql(contract: TableContract, sources: dict[str, SourceColumn], extras: list[SourceColumn], *, date_format: str | None, content_hash: bool = False) -> str:
    """``CREATE TEMP TABLE _parsed AS`` :func:`parsed_select_sql` (DuckDB)."""
    return "CREATE OR REPLACE TEMP TABLE _parsed AS " + parsed_select_sql(contract, sources, extras, date_format=date_format, content_hash=content_hash)


def content_columns(contract: TableContract) -> list[str]:
    """Columns whose values make up a row's content (everything but the key)."""
    cols = [c.name for c in contract.columns if c.name != contract.key]
    if contract.keep_extra_as_attributes:
        cols.append("attributes")
    return cols


def content_hash_sql(contract: TableContract, alias: str = "", dialect: Dialect = DUCKDB) -> str:
    """An md5 of the row's content, stable across runs (used to derive keys): the text of each
    content column (``\\N`` for NULL) joined by character 31. A column that is not
    ``hashed_when_empty`` is left out when NULL (``concat_ws`` skips NULLs), so rows keep the keys
    they had before the column existed."""
    pre = f"{alias}." if alias else ""
    skip = {c.name for c in contract.columns if not c.hashed_when_empty}
    return dialect.md5_text([dialect.to_text(pre + c) if c in skip
                             else f"coalesce({dialect.to_text(pre + c)}, {dialect.literal(chr(92) + 'N')})"
                             for c in content_columns(contract)])


def occurrence_sql(good: str) -> str:
    """``(_row, k)``: the occurrence number ``k`` (1, 2, ...) of each row of ``good`` among the rows
    with the same content ``_hash``, for the groups of identical rows only (the same in every
    engine). ``good`` is a table name or a parenthesised query over ``_parsed`` rows without problems."""
    return (f"SELECT g._row, row_number() OVER (PARTITION BY g._hash ORDER BY g._row) AS k\n"
            f"FROM {good} g JOIN (SELECT _hash FROM {good} h GROUP BY _hash HAVING count(*) > 1) m ON m._hash = g._hash")


def derived_key_sql(dialect: Dialect = DUCKDB, *, hash_column: str = "p._hash", occurrence: str = "o.k") -> str:
    """The derived key of a row: ``~<content md5>.<occurrence number>`` (1 when the row is unique)."""
    return f"'~' || {hash_column} || '.' || {dialect.to_text(f'coalesce({occurrence}, 1)')}"


def duplicate_key_problems_sql(key: str, good: str, dialect: Dialect = DUCKDB) -> str:
    """``(_row, column, value, reason)`` for every row of ``good`` whose ``key`` an earlier row of
    the same input already has (the first occurrence wins)."""
    reason = f"'duplicate {key} \"' || p.{key} || '\" (first at row ' || {dialect.to_text('d.first_row')} || ')'"
    return (f"SELECT p._row, {dialect.literal(key)} AS {dialect.ident('column')}, p.{key} AS value, {reason} AS reason\n"
            f"FROM {good} p\n"
            f"JOIN (SELECT {key}, min(_row) AS first_row FROM {good} g GROUP BY {key} HAVING count(*) > 1) d ON d.{key} = p.{key}\n"
            f"WHERE p._row <> d.first_row")
