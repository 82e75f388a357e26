"""Where a person's data lives: the database's tables found from its catalogue, and the SQL that
selects a person's rows. Builders return SQL text and parameters; :func:`tables` runs the
catalogue query. Who the person is, and when a value names them, is :mod:`patron.people.rights.person`;
the builders here say the same in SQL (:func:`column_match` for a whole value, :func:`contains`
inside text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import duckdb

from patron.data.dialect import DUCKDB
from patron.people.rights.person import MIN_PHONE_DIGITS, Person
from patron.people.rights.rules import REJECTS_TABLE, RightsRules

TEXT_TYPES: tuple[str, ...] = ("VARCHAR", "TEXT", "STRING", "JSON")
"""Column types scanned as text by the residue check."""




@dataclass(frozen=True)
class Table:
    """A table or view of the database: where it is, what kind it is, its columns in order."""

    catalog: str
    schema: str
    name: str
    is_view: bool
    columns: tuple[str, ...]
    types: tuple[str, ...]
    person_columns: tuple[str, ...] = field(default=())

    @property
    def label(self) -> str:
        """``name`` in the main schema, else ``schema.name`` (keys of export and audit)."""
        return self.name if self.schema == "main" else f"{self.schema}.{self.name}"

    def ref(self, catalog: str | None = None) -> str:
        """Fully qualified reference, optionally in another attached database ``catalog``."""
        return ".".join(DUCKDB.ident(p) for p in (catalog or self.catalog, self.schema, self.name))

    @property
    def is_rejects(self) -> bool:
        """Whether this is the ingest rejects table (matched by value and reason)."""
        return self.schema == "main" and self.name == REJECTS_TABLE and {"value", "reason"} <= set(self.columns)

    @property
    def about_people(self) -> bool:
        """Whether rows of this table can be about a person."""
        return bool(self.person_columns) or self.is_rejects


def catalog_sql() -> str:
    """Every column of every table and view of catalog ``?``, in order."""
    return """SELECT c.table_schema, c.table_name, t.table_type, c.column_name, c.data_type
FROM information_schema.columns AS c
JOIN information_schema.tables AS t
  ON t.table_catalog = c.table_catalog AND t.table_schema = c.table_schema AND t.table_name = c.table_name
WHERE c.table_catalog = ? AND c.table_schema NOT IN ('information_schema', 'pg_catalog')
ORDER BY c.table_schema, c.table_name, c.ordinal_position"""


def tables(con: duckdb.DuckDBPyConnection, rules: RightsRules, catalog: str | None = None) -> list[Table]:
    """The tables and views of ``catalog`` (default: the connection's database), with the person
    columns each one has."""
    catalog = catalog or con.execute("SELECT current_database()").fetchall()[0][0]
    rows = con.execute(catalog_sql(), [catalog]).fetchall()
    person = set(rules.person_columns())
    grouped: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    for schema, name, kind, column, dtype in rows:
        grouped.setdefault((schema, name), []).append((kind, column, dtype))
    found = []
    for (schema, name), cols in grouped.items():
        names = tuple(c for _, c, _ in cols)
        found.append(Table(
            catalog=catalog, schema=schema, name=name, is_view=cols[0][0] == "VIEW",
            columns=names, types=tuple(t.upper() for _, _, t in cols),
            person_columns=tuple(c for c in names if c.lower() in person),
        ))
    return found


# -- whether a value names the person ---------------------------------------------------------

PHONE_SEPARATORS = r"[\s().\-/]*"
"""What may stand between two digits of a phone number written by hand."""

MAX_PREFIX_DIGITS: int = 3
"""Leading digits of a stored phone number that another spelling may leave out (a country code)."""

LIST_LIMIT: int = 64
"""Above this many exact texts, a whole-value match is a semi-join, not a list search per row."""


def _phone_alternatives(person: Person) -> str | None:
    """A regular expression of the person's phone numbers as written in any format: each number's
    digits (leading zeros dropped) with separators allowed between them, with up to
    :data:`MAX_PREFIX_DIGITS` leading digits left out (never below :data:`MIN_PHONE_DIGITS`)."""
    alts = set()
    for d in person.phones:
        for k in range(min(MAX_PREFIX_DIGITS, len(d) - MIN_PHONE_DIGITS) + 1):
            alts.add(PHONE_SEPARATORS.join(d[k:]))
    return "|".join(sorted(alts)) if alts else None


def column_match(col: str, person: Person, *, in_lambda: bool = False) -> tuple[str, list[Any]]:
    """SQL true when the whole value of text column ``col`` (a quoted name or an expression) names
    the person (:meth:`Person.names`), and its parameters. ``in_lambda``: for use inside a lambda
    (no subquery)."""
    text = f"CAST({col} AS VARCHAR)"
    exact = person.exact()
    if len(exact) > LIST_LIMIT and not in_lambda:
        parts, params = [f"{text} IN (SELECT unnest(?::VARCHAR[]))"], [exact]
    else:
        parts, params = [f"list_contains(?::VARCHAR[], {text})"], [exact]
    if person.emails:
        parts.append(f"list_contains(?::VARCHAR[], lower(trim({text})))")
        params.append(sorted(person.emails))
    phones = _phone_alternatives(person)
    if phones is not None:  # another country code or trunk zero before it: the digits end with theirs
        parts.append(f"regexp_full_match({text}, ?)")
        params.append(rf"\s*\+?[\d\s().\-/]*?(?:{phones}){PHONE_SEPARATORS}")
    return f"coalesce({' OR '.join(parts)}, FALSE)", params


def contains(col: str, person: Person) -> tuple[str, list[Any]]:
    """SQL true when text column ``col`` holds, in any case, one of the person's needles
    (:meth:`Person.contained`) or one of their phone numbers in any format; one regular expression
    (RE2 runs an alternation of literals in one pass)."""
    alts = [re.escape(n) for n in person.contained()]
    phones = _phone_alternatives(person)
    if phones is not None:
        alts.append(rf"(?:^|[^0-9])(?:{phones})(?:[^0-9]|$)")
    if not alts:
        return "FALSE", []
    return f"coalesce(regexp_matches(lower(CAST({col} AS VARCHAR)), ?), FALSE)", ["|".join(alts)]


def fields_match(col: str, person: Person) -> tuple[str, list[Any]]:
    """SQL true when one of the fields of text ``col`` split at ``, ; | tab`` (a malformed CSV line)
    names the person."""
    inner, params = column_match("trim(x, chr(32) || chr(34) || chr(39))", person, in_lambda=True)
    return (f"coalesce(list_bool_or(list_transform(string_split_regex(CAST({col} AS VARCHAR), '[,;|\\t]'), "
            f"lambda x: {inner})), FALSE)", params)


def quoted(col: str, person: Person) -> tuple[str, list[Any]]:
    """SQL true when ``col`` holds one of the exact texts in double quotes (as ingest writes values
    into reasons: ``duplicate customer_id "c1" (first at row 1)``)."""
    return (f"coalesce(list_bool_or(list_transform(?::VARCHAR[], lambda i: contains(CAST({col} AS VARCHAR), "
            f"'\"' || i || '\"'))), FALSE)", [person.exact()])


# -- the person's rows ------------------------------------------------------------------------

def in_list(n: int) -> str:
    """``(?, ?, ...)`` with ``n`` placeholders."""
    return "(" + ", ".join("?" * n) + ")"


def match_sql(table: Table, person: Person, alias: str | None = None) -> tuple[str, list[Any]]:
    """A predicate true for the rows of ``table`` about ``person``, and its parameters (columns
    qualified by ``alias`` when given). Never NULL.

    * a person column (:data:`~patron.people.rights.rules.PERSON_COLUMNS` and ``[rights]
      extra_person_columns``) that names them (:meth:`~patron.people.rights.person.Person.names`: an id,
      an e-mail in any case, a phone in any format);
    * the rejects table: a ``value`` that names them, or one of its fields does (a malformed line),
      or that contains one of their e-mails, phones or long ids; a ``reason`` that quotes an id in
      double quotes (as ingest writes values into reasons, so that a short id such as ``1`` does not
      match every reason with a digit 1) or contains an e-mail, phone or long id;
    * rows found by the person's identifiers outside any column (``person.rows``: dead letters
      whose identifiers resolve to them)."""
    pre = f"{DUCKDB.ident(alias)}." if alias else ""
    parts: list[str] = []
    params: list[Any] = []
    built = [column_match(pre + DUCKDB.ident(col), person) for col in table.person_columns]
    if table.is_rejects:
        value, reason = pre + '"value"', pre + '"reason"'
        built += [column_match(value, person), fields_match(value, person), contains(value, person),
                  quoted(reason, person), contains(reason, person)]
    for sql, p in built:
        parts.append(sql)
        params += p
    rows = person.rows.get(table.label)
    if rows:
        parts.append(f"list_contains(?::BIGINT[], {pre}rowid)")
        params.append(sorted(rows))
    if not parts:
        return "FALSE", []
    return "(" + " OR ".join(parts) + ")", params


def select_person_rows_sql(table: Table, person: Person) -> tuple[str, list[Any]]:
    """The rows of ``table`` about the person, ordered by every column (deterministic output)."""
    where, params = match_sql(table, person)
    order = ", ".join(str(i + 1) for i in range(len(table.columns)))
    cols = ", ".join(DUCKDB.ident(c) for c in table.columns)
    return f"SELECT {cols} FROM {table.ref()} WHERE {where} ORDER BY {order}", params


def count_sql(table: Table, catalog: str | None = None, where: str | None = None) -> str:
    """``SELECT count(*)`` of ``table`` (in ``catalog``), optionally filtered by ``where``."""
    return f"SELECT count(*) FROM {table.ref(catalog)}" + (f" WHERE {where}" if where else "")


def copy_sql(table: Table, target: str, *, where: str | None = None, select: str | None = None) -> str:
    """``INSERT INTO`` ``table`` in the attached database ``target`` the rows of ``table`` (in its
    own database) that satisfy ``where``, selecting ``select`` (default: every column, by name)."""
    cols = ", ".join(DUCKDB.ident(c) for c in table.columns)
    return (f"INSERT INTO {table.ref(target)} ({cols}) SELECT {select or cols} FROM {table.ref()}"
            + (f" WHERE {where}" if where else ""))


RESIDUE_SKIPPED: tuple[str, ...] = ("erasures", "suppressed_identifiers", "patron_secret")
"""Tables the residue check skips: they hold random receipt numbers, keyed digests and the key,
where a short id could occur among hex digits by chance."""


def residue_sql(table: Table, person: Person, catalog: str, *, contained: bool) -> tuple[str, list[Any], list[str]] | None:
    """Per text column of ``table`` in ``catalog``: how many values name the person (and, with
    ``contained``, contain one of their e-mails, phones or long ids). Returns SQL, parameters and
    the column names, or ``None`` when the table has no text column (or is skipped)."""
    cols = [c for c, t in zip(table.columns, table.types, strict=True) if t in TEXT_TYPES]
    if not cols or table.label in RESIDUE_SKIPPED:
        return None
    sums, params = [], []
    for c in cols:
        cond, p = column_match(DUCKDB.ident(c), person)
        params += p
        if contained:
            more, p = contains(DUCKDB.ident(c), person)
            cond = f"({cond} OR {more})"
            params += p
        sums.append(f"count_if({cond})")
    return f"SELECT {', '.join(sums)} FROM {table.ref(catalog)}", params, cols
