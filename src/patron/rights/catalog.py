"""Where a person's data lives: the database's tables found from its catalogue, and the SQL that
selects a person's rows. Builders return SQL text and parameters; :func:`tables` and
:func:`identifiers` run the two catalogue queries.

The SQL is plain (``information_schema``, ``CAST``, ``IN``, ``coalesce``, ``instr``,
``row_number()``), so it reads the same on DuckDB and Spark.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb

from patron.rights.rules import REJECTS_TABLE, RightsRules
from patron.sql.dialect import DUCKDB

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


def in_list(n: int) -> str:
    """``(?, ?, ...)`` with ``n`` placeholders."""
    return "(" + ", ".join("?" * n) + ")"


def match_sql(table: Table, ids: Sequence[str]) -> tuple[str, list[str]]:
    """A predicate true for the rows of ``table`` about the person with identifiers ``ids``, and
    its parameters. Person columns match by text equality; the rejects table by ``value`` equality
    or ``reason`` containing an identifier in double quotes (as ingest writes values into reasons,
    so that a short id such as ``1`` does not match every reason with a digit 1). Never NULL."""
    parts: list[str] = []
    params: list[str] = []
    for col in table.person_columns:
        parts.append(f"coalesce(CAST({DUCKDB.ident(col)} AS VARCHAR) IN {in_list(len(ids))}, FALSE)")
        params += list(ids)
    if table.is_rejects:
        parts.append(f'coalesce(CAST("value" AS VARCHAR) IN {in_list(len(ids))}, FALSE)')
        params += list(ids)
        for ident in ids:  # ingest quotes values in reasons: duplicate customer_id "c1" (first at row 1)
            parts.append('coalesce(instr(CAST("reason" AS VARCHAR), ?) > 0, FALSE)')
            params.append(f'"{ident}"')
    if not parts:
        return "FALSE", []
    return "(" + " OR ".join(parts) + ")", params


def select_person_rows_sql(table: Table, ids: Sequence[str]) -> tuple[str, list[str]]:
    """The rows of ``table`` about the person, ordered by every column (deterministic output)."""
    where, params = match_sql(table, ids)
    order = ", ".join(str(i + 1) for i in range(len(table.columns)))
    cols = ", ".join(DUCKDB.ident(c) for c in table.columns)
    return f"SELECT {cols} FROM {table.ref()} WHERE {where} ORDER BY {order}", params


def identity_attributes_sql(customers: Table) -> str:
    """The ``attributes`` JSON text of the customer ``?``."""
    return f"SELECT attributes FROM {customers.ref()} WHERE CAST(customer_id AS VARCHAR) = ?"


def identifiers(
    con: duckdb.DuckDBPyConnection, found: Sequence[Table], customer_id: str, rules: RightsRules
) -> list[str]:
    """The person's identifiers: ``customer_id`` first, then the values of the identity
    attributes (``[rights] identity_attributes``) in the person's ``customers.attributes``."""
    ids = [customer_id]
    customers = next((t for t in found if t.label == "customers" and not t.is_view), None)
    if customers is None or "attributes" not in customers.columns or "customer_id" not in customers.columns:
        return ids
    wanted = {k.lower() for k in rules.identity_attributes}
    for (text,) in con.execute(identity_attributes_sql(customers), [customer_id]).fetchall():
        try:
            attrs = json.loads(text) if text else {}
        except (TypeError, ValueError):
            continue
        if not isinstance(attrs, dict):
            continue
        for key, value in attrs.items():
            if key.lower() in wanted and isinstance(value, str | int) and str(value).strip():
                ids.append(str(value).strip())
    return list(dict.fromkeys(ids))


def count_sql(table: Table, catalog: str | None = None, where: str | None = None) -> str:
    """``SELECT count(*)`` of ``table`` (in ``catalog``), optionally filtered by ``where``."""
    return f"SELECT count(*) FROM {table.ref(catalog)}" + (f" WHERE {where}" if where else "")


def copy_sql(table: Table, target: str, *, where: str | None = None, select: str | None = None) -> str:
    """``INSERT INTO`` ``table`` in the attached database ``target`` the rows of ``table`` (in its
    own database) that satisfy ``where``, selecting ``select`` (default: every column, by name)."""
    cols = ", ".join(DUCKDB.ident(c) for c in table.columns)
    return (f"INSERT INTO {table.ref(target)} ({cols}) SELECT {select or cols} FROM {table.ref()}"
            + (f" WHERE {where}" if where else ""))


def residue_sql(table: Table, ids: Sequence[str], catalog: str) -> tuple[str, list[str], list[str]] | None:
    """Per text column of ``table`` in ``catalog``: how many values equal one of ``ids``. Returns
    SQL, parameters and the column names, or ``None`` when the table has no text column."""
    cols = [c for c, t in zip(table.columns, table.types, strict=True) if t in TEXT_TYPES]
    if not cols:
        return None
    sums = ", ".join(f"sum(CASE WHEN {DUCKDB.ident(c)} IN {in_list(len(ids))} THEN 1 ELSE 0 END)" for c in cols)
    return f"SELECT {sums} FROM {table.ref(catalog)}", [i for _ in cols for i in ids], cols
