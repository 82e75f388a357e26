"""Customer attributes as typed profile columns: every other column of the customers file (and
every trait of a Segment ``identify``), usable by name in segment rules, ``equity --by``, status and
loyalty breakdowns, campaign targets and the report.

Where they come from: the JSON ``attributes`` of the ``customers`` table (the customers file's
columns beyond the contract, :data:`patron.data.schema.CUSTOMERS`, and the traits the service
stores from ``identify`` calls). Each key becomes one column of ``customer_profiles`` with the
same name, typed:

* **declared** in the ``[attributes]`` section of the rules file, ``name = "type"`` with type one
  of ``number`` (DOUBLE), ``date`` (TIMESTAMP: a day or a day and time), ``text`` (VARCHAR),
  ``boolean`` (BOOLEAN); a value that cannot be read as the declared type is missing (NULL) and
  :func:`attribute_schema` counts it;
* else **inferred** from the values (all non-empty values of the key, in SQL): ``boolean`` when
  every value is ``true``/``false`` (any case), ``number`` when every value is a finite number,
  ``date`` when every value is a date (``YYYY-MM-DD``, with an optional time), else ``text``. A
  key with mixed values (some numbers, some words) stays ``text`` and its note says so.

Keys whose name is a column of the profiles already (``status``, ``clv``, ...), or a column of
:mod:`patron.relationship.place` (``lat``, ``lon``, ``region``, ...: those attributes feed the
place columns instead), and a second key equal to another but for case (SQL names ignore case) are
not made columns; :func:`attribute_schema` says why. Names are written into SQL only through
:class:`patron.data.dialect.Dialect` quoting (identifiers) and JSON paths as quoted literals, so
any name (spaces, quotes, SQL words, unicode) is safe; a rule names an unusual one in backticks,
e.g. ``\u0060favourite colour\u0060 = 'red'``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import RootModel

from patron.config import section
from patron.data.dialect import DUCKDB
from patron.data.store import table_exists

AttributeType = Literal["number", "date", "text", "boolean"]
"""The types an attribute can have (the kinds of the rule language)."""

SQL_TYPES: dict[str, str] = {"number": "DOUBLE", "date": "TIMESTAMP", "text": "VARCHAR", "boolean": "BOOLEAN"}
"""SQL type of each attribute type."""

MAX_ATTRIBUTES = 200
"""At most this many attribute columns (the most common keys first); the rest are left in the JSON."""

ConfigArg = str | os.PathLike[str] | dict[str, Any] | None


class AttributeRules(RootModel[dict[str, AttributeType]]):
    """The ``[attributes]`` section: ``name = "number" | "date" | "text" | "boolean"``."""


@dataclass(frozen=True)
class Attribute:
    """One attribute column: its name (the JSON key and the column), type, whether it was
    declared (else inferred), how many customers have a value, and a note (mixed values, values
    not read as the declared type)."""

    name: str
    type: AttributeType
    declared: bool
    customers: int
    note: str = ""

    @property
    def sql_type(self) -> str:
        """The column's SQL type."""
        return SQL_TYPES[self.type]


@dataclass(frozen=True)
class AttributeSchema:
    """The attribute columns of the profiles, and the keys left out with the reason."""

    columns: tuple[Attribute, ...] = ()
    skipped: dict[str, str] = field(default_factory=dict)

    def describe(self) -> list[str]:
        """One line per attribute and per skipped key, for people."""
        lines = [f"{a.name}: {a.type} ({'declared' if a.declared else 'inferred'}; {a.customers:,} customers with a value)"
                 + (f"; {a.note}" if a.note else "") for a in self.columns]
        lines += [f"{k}: not a column ({why})" for k, why in self.skipped.items()]
        return lines


def json_path(name: str) -> str:
    """The DuckDB JSON path of key ``name`` (a quoted member name, so any key works), as text to be
    bound or quoted as a literal."""
    return "$." + json.dumps(name, ensure_ascii=False)


def _paths(names: list[str]) -> str:
    """A SQL list literal of the JSON paths of ``names``: one ``json_extract_string`` of it parses
    each customer's JSON once for every attribute."""
    return "[" + ", ".join(DUCKDB.literal(json_path(n)) for n in names) + "]"


def _value(i: int) -> str:
    """SQL of the trimmed, non-empty text of the ``i``-th (0-based) extracted key (NULL when absent)."""
    return f"NULLIF(trim(v[{i + 1}]), '')"


def typed_value_sql(value: str, kind: AttributeType) -> str:
    """SQL reading the text expression ``value`` as ``kind`` (NULL when absent or not of that
    kind; non-finite numbers are missing)."""
    v = value
    if kind == "number":
        return f"CASE WHEN isfinite(try_cast({v} AS DOUBLE)) THEN try_cast({v} AS DOUBLE) END"
    if kind == "boolean":
        return f"CASE lower({v}) WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE ELSE try_cast({v} AS BOOLEAN) END"
    if kind == "date":
        return f"try_cast({v} AS TIMESTAMP)"
    return v


def attribute_keys(con: Any) -> list[tuple[str, int]]:
    """The keys of ``customers.attributes`` with how many customers carry each (most first, then
    by name); empty when there is no ``customers`` table."""
    if not table_exists(con, "customers"):
        return []
    rows = con.execute(
        """SELECT k, count(*) AS n FROM (SELECT unnest(json_keys(attributes)) AS k FROM customers
        WHERE attributes IS NOT NULL AND json_valid(attributes) AND json_type(attributes) = 'OBJECT')
        GROUP BY k ORDER BY n DESC, k""").fetchall()
    return [(str(k), int(n)) for k, n in rows]


def attribute_schema(con: Any, config: ConfigArg = None, *, reserved: frozenset[str] = frozenset()) -> AttributeSchema:
    """The typed attribute columns of the database open on ``con``: declared types from the
    ``[attributes]`` section of ``config``, the others inferred from all their values (one SQL
    pass). ``reserved``: names (any case) that are columns already and so cannot be attributes."""
    declared = section("attributes", AttributeRules, config).root
    keys = attribute_keys(con)
    reserved_low = {r.lower() for r in reserved}
    taken = set(reserved_low)
    skipped: dict[str, str] = {}
    chosen: list[tuple[str, int]] = []
    for key, n in keys:
        low = key.lower()
        if not key.strip():
            skipped[key] = "empty name"
        elif low in taken:
            skipped[key] = "a profile column has this name" if low in reserved_low else "another key differs only in case"
        elif len(chosen) >= MAX_ATTRIBUTES:
            skipped[key] = f"more than {MAX_ATTRIBUTES} attributes"
        else:
            chosen.append((key, n))
            taken.add(low)
    if not chosen:
        return AttributeSchema((), skipped)
    aggs, exprs = [], []
    for i, (key, _) in enumerate(chosen):
        # each value read once (t), cast once (d, ts: a date is tried only on text shaped like one)
        exprs.append(f"{_value(i)} AS t{i}")
        aggs.append(f"count(t{i}) AS n{i}, count(CASE WHEN isfinite(d{i}) THEN 1 END) AS num{i}, "
                    f"count(CASE WHEN lower(t{i}) IN ('true', 'false') THEN 1 END) AS bool{i}, count(ts{i}) AS date{i}")
        if key in declared:
            aggs.append(f"count({typed_value_sql(f't{i}', declared[key])}) AS ok{i}")
    casts = ", ".join(f"t{i}, try_cast(t{i} AS DOUBLE) AS d{i}, CASE WHEN try_cast(t{i} AS DOUBLE) IS NULL AND substr(t{i}, 5, 1) = '-' "
                      f"THEN try_cast(t{i} AS TIMESTAMP) END AS ts{i}" for i in range(len(chosen)))
    row = con.execute(f"""SELECT {', '.join(aggs)} FROM (SELECT {casts} FROM (SELECT {', '.join(exprs)} FROM (
        SELECT json_extract_string(attributes, {_paths([k for k, _ in chosen])}) AS v FROM customers
        WHERE attributes IS NOT NULL AND json_valid(attributes) AND json_type(attributes) = 'OBJECT')))""").fetchone()
    names = [d[0] for d in con.description]
    got = dict(zip(names, row, strict=True))
    columns = []
    for i, (key, _) in enumerate(chosen):
        n, num, boo, day = (int(got[f"{p}{i}"]) for p in ("n", "num", "bool", "date"))
        if key in declared:
            kind = declared[key]
            bad = n - int(got[f"ok{i}"])
            note = f"{bad:,} values are not {_a(kind)} and are missing" if bad else ""
            columns.append(Attribute(key, kind, True, n, note))
            continue
        note = ""
        if n and boo == n:
            kind: AttributeType = "boolean"
        elif n and num == n:
            kind = "number"
        elif n and day == n:
            kind = "date"
        else:
            kind = "text"
            mixed = [f"{c:,} {label}" for c, label in ((num, "numbers"), (day, "dates"), (boo, "true/false")) if c]
            if mixed:
                note = f"mixed values ({', '.join(mixed)} among {n:,}): kept as text"
        columns.append(Attribute(key, kind, False, n, note))
    unknown = sorted(set(declared) - {k for k, _ in chosen})
    for key in unknown:
        skipped.setdefault(key, "declared in [attributes] but no customer has it")
    return AttributeSchema(tuple(columns), skipped)


def _a(kind: str) -> str:
    return {"number": "numbers", "date": "dates", "boolean": "true/false"}.get(kind, kind)


def attributes_sql(schema: AttributeSchema) -> str:
    """A SELECT of ``customer_id`` and one typed column per attribute of ``schema`` (one row per
    customer of the ``customers`` table; each JSON parsed once); only quoted names and literals
    reach the SQL."""
    names = [a.name for a in schema.columns]
    cols = ", ".join(f"CAST({typed_value_sql(_value(i), a.type)} AS {a.sql_type}) AS {DUCKDB.ident(a.name)}"
                     for i, a in enumerate(schema.columns))
    inner = f"""SELECT CAST(customer_id AS VARCHAR) AS customer_id, json_extract_string(any_value(attributes), {_paths(names)}) AS v
    FROM customers WHERE attributes IS NOT NULL AND json_valid(attributes) AND json_type(attributes) = 'OBJECT' GROUP BY 1"""
    return f"SELECT customer_id{', ' + cols if cols else ''} FROM ({inner}) AS c"


@dataclass(frozen=True)
class ProfileExtras:
    """The attribute and place columns of ``customer_profiles``: one SELECT keyed by
    ``customer_id`` (:attr:`sql`, over the ``customers`` table and the registered frame
    ``_p_place``), its columns and their SQL types, and the attribute schema it follows."""

    sql: str
    columns: dict[str, str]
    schema: AttributeSchema
    frames: dict[str, Any] = field(default_factory=dict)


def profile_extras(con: Any, config: ConfigArg = None, *, reserved: frozenset[str] = frozenset()) -> ProfileExtras | None:
    """The attribute columns (:func:`attribute_schema`) and place columns
    (:func:`patron.relationship.place.place_frame`) of the database open on ``con``, as one SQL
    piece to LEFT JOIN on ``customer_id``; ``None`` when there are none. ``reserved``: the other
    columns of the profiles (an attribute of such a name is not made a column). The caller
    registers :attr:`ProfileExtras.frames` on ``con`` before running :attr:`ProfileExtras.sql`."""
    from patron.relationship.place import PLACE_COLUMNS, place_sql

    schema = attribute_schema(con, config, reserved=reserved | frozenset(PLACE_COLUMNS) | {"latitude", "longitude"})
    place = place_sql(con)
    if not schema.columns and place is None:
        return None
    columns = {a.name: a.sql_type for a in schema.columns}
    parts, selects = [], []
    if schema.columns:
        parts.append(f"({attributes_sql(schema)}) AS a")
        selects += [f"a.{DUCKDB.ident(a.name)}" for a in schema.columns]
    frames: dict[str, Any] = {}
    if place is not None:
        sql, frames = place
        parts.append(f"({sql}) AS pl")
        selects += [f"pl.{DUCKDB.ident(c)}" for c in PLACE_COLUMNS]
        columns |= PLACE_COLUMNS
    if len(parts) == 2:
        sql = (f"SELECT COALESCE(a.customer_id, pl.customer_id) AS customer_id, {', '.join(selects)} "
               f"FROM {parts[0]} FULL OUTER JOIN {parts[1]} ON pl.customer_id = a.customer_id")
    else:
        alias = "a" if schema.columns else "pl"
        sql = f"SELECT {alias}.customer_id, {', '.join(selects)} FROM {parts[0]}"
    return ProfileExtras(sql, columns, schema, frames)
