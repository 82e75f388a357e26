"""What an erasure changes in rows it keeps: the person's identifiers in other people's rows.

A person's identifiers reach rows that are not theirs: a shared device's identify by someone else
carries their anonymousId (in ``events.anonymous_id``, the payload, a refused link); a merge or a
refusal recorded for another person names their identifiers in its reason; a link of another
person's event held one of their identifiers (its ``link_key`` is a hash of all of them); a dead
letter of someone else, a file name in ``ingests.source``, a malformed line, a note in a table of
yours may mention their e-mail or phone. The erasure deletes the person's rows and, in the rows it
keeps, replaces what names them (:class:`Plan`, built from the original before the copy, applied
*while* copying, so the new file never holds the old values):

* ``events`` of others that carried one of their identifiers: ``user_id``, ``anonymous_id``,
  ``previous_id`` naming them become NULL, the payload is scrubbed (JSON strings naming them become
  ``<erased>``);
* ``identity_links``: a link of others that held one of their identifiers is keyed again on what
  remains of it (or dropped when fewer than two identifiers remain);
* ``identity_merges`` of others: ``cause_value`` naming them becomes NULL, the reason is scrubbed;
* their messageIds in the identity tables of others become opaque tokens (``erased:`` + a keyed
  digest);
* legacy cluster labels (``c:kind=value``, named after an identifier) are renamed;
* any text column of any table: a value that *contains* (in any case) their e-mail, phone (any
  format) or an id of at least :data:`~patron.people.rights.person.MIN_CONTAINED` characters is scrubbed
  (JSON-aware). A value *equal* to one of their identifiers in a column patron does not know is left
  for the residue check, which stops the erasure naming the column (the row may be about them).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from patron.data.dialect import DUCKDB
from patron.people.identity.batch_sql import link_hash
from patron.people.identity.graph import link_key
from patron.people.identity.keyed import keyed_digest
from patron.people.identity.tables import LEGACY_LABEL
from patron.people.rights.catalog import TEXT_TYPES, Table, column_match, contains, match_sql
from patron.people.rights.person import ERASED, Person

TOKEN_PREFIX = "erased:"
"""Start of the opaque token that replaces an erased messageId in rows kept."""

SCAN_CHUNK: int = 10_000
"""Rows read at a time by the scans of :func:`build_plan`."""


@dataclass
class Plan:
    """Changes to rows kept: ``changes[table][rowid][column] = new value`` and rows left out
    besides the person's (``drops[table]``)."""

    changes: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)
    drops: dict[str, set[int]] = field(default_factory=dict)

    def change(self, table: str, rowid: int, column: str, value: Any) -> None:
        self.changes.setdefault(table, {}).setdefault(rowid, {})[column] = value

    def current(self, table: str, rowid: int, column: str, value: Any) -> Any:
        """The value as the plan leaves it so far."""
        return self.changes.get(table, {}).get(rowid, {}).get(column, value)

    def drop(self, table: str, rowid: int) -> None:
        self.drops.setdefault(table, set()).add(rowid)

    def mentions(self) -> dict[str, int]:
        """Values changed per ``table.column`` and rows left out per table (no personal data)."""
        out: dict[str, int] = {}
        for table, rows in self.changes.items():
            for cols in rows.values():
                for col in cols:
                    out[f"{table}.{col}"] = out.get(f"{table}.{col}", 0) + 1
        for table, rows in self.drops.items():
            out[table] = out.get(table, 0) + len(rows)
        return out


def token(key: bytes, message_id: str) -> str:
    """The opaque stand-in of an erased messageId: one per messageId, unrelated to it without the
    database's key."""
    return TOKEN_PREFIX + keyed_digest(key, "erased_message", message_id)[:24]


def _by_label(found: Sequence[Table]) -> dict[str, Table]:
    return {t.label: t for t in found}


def _not_theirs(table: Table, person: Person) -> tuple[str, list[Any]]:
    where, params = match_sql(table, person)
    return f"NOT {where}", params


def build_plan(con: duckdb.DuckDBPyConnection, found: Sequence[Table], person: Person, key: bytes) -> Plan:
    """The changes the erasure of ``person`` makes to rows it keeps (module docstring), read from
    the original database on ``con``."""
    plan = Plan()
    tables = _by_label(found)
    if "identity_links" in tables:
        _links(con, tables["identity_links"], person, plan, key)
    for name, column in (("identity_observations", "message_id"), ("identity_merges", "cause_message_id")):
        if name in tables and column in tables[name].columns:
            _tokens(con, tables[name], column, person, plan, key)
    if "identity_merges" in tables:
        _merges(con, tables["identity_merges"], person, plan)
    if "identities" in tables and "cluster_id" in tables["identities"].columns:
        _legacy_labels(con, tables["identities"], plan)
    if "events" in tables and "identity_observations" in tables:
        _events(con, tables["events"], person, plan)
    for t in found:
        _text_pass(con, t, person, plan, person.mentions.get(t.label, []))
    return plan


def _links(con: duckdb.DuckDBPyConnection, t: Table, person: Person, plan: Plan, key: bytes) -> None:
    """Links of others that held one of the person's identifiers: keyed again on what remains."""
    where, params = match_sql(t, person)
    rest = con.execute(
        f"SELECT rowid, link_key, kind, value, message_id FROM {t.ref()} WHERE link_key IN "
        f"(SELECT link_key FROM {t.ref()} WHERE {where}) AND NOT {where}", params + params).fetchall()
    groups: dict[str, list[tuple[int, str, str, str]]] = {}
    for rowid, lk, kind, value, mid in rest:
        groups.setdefault(lk, []).append((rowid, kind, value, mid))
    for members in groups.values():
        if len(members) < 2:
            for rowid, *_ in members:
                plan.drop(t.label, rowid)
            continue
        new_key = link_hash(link_key((kind, value) for _, kind, value, _ in members))
        for rowid, _, _, mid in members:
            plan.change(t.label, rowid, "link_key", new_key)
            if mid in person.messages:
                plan.change(t.label, rowid, "message_id", token(key, mid))


def _tokens(con: duckdb.DuckDBPyConnection, t: Table, column: str, person: Person, plan: Plan, key: bytes) -> None:
    if not person.messages:
        return
    not_theirs, params = _not_theirs(t, person)
    for rowid, mid in con.execute(
            f"SELECT rowid, {DUCKDB.ident(column)} FROM {t.ref()} WHERE list_contains(?::VARCHAR[], {DUCKDB.ident(column)}) AND {not_theirs}",
            [sorted(person.messages), *params]).fetchall():
        plan.change(t.label, rowid, column, token(key, mid))


def _merges(con: duckdb.DuckDBPyConnection, t: Table, person: Person, plan: Plan) -> None:
    """Merge records of others: ``cause_value`` naming the person becomes NULL, the reason is
    scrubbed (``kind=value`` of their identifiers, their ids as words, and the text needles)."""
    not_theirs, params = _not_theirs(t, person)
    values = sorted({v for _, v in person.graph} | person.ids)
    words = sorted(person.ids | {v for _, v in person.graph}, key=lambda s: (-len(s), s))
    pattern = re.compile("|".join(rf"(?<![^\s,(=]){re.escape(w)}(?=[\s,)]|$)" for w in words)) if words else None
    cur = con.execute(f"SELECT rowid, cause_value, reason FROM {t.ref()} WHERE {not_theirs}", params)
    while chunk := cur.fetchmany(SCAN_CHUNK):
        for rowid, cause_value, reason in chunk:
            if cause_value is not None and (cause_value in values or person.names(cause_value)):
                plan.change(t.label, rowid, "cause_value", None)
            if reason:
                scrubbed = pattern.sub(ERASED, reason) if pattern is not None else reason
                scrubbed = person.scrub_text(scrubbed)
                if scrubbed != reason:
                    plan.change(t.label, rowid, "reason", scrubbed)


def _legacy_labels(con: duckdb.DuckDBPyConnection, t: Table, plan: Plan) -> None:
    """Cluster labels named after an identifier (``c:kind=value``) get opaque names."""
    renamed: dict[str, str] = {}
    for rowid, label in con.execute(f"SELECT rowid, cluster_id FROM {t.ref()} WHERE cluster_id LIKE ?",
                                    [LEGACY_LABEL]).fetchall():
        new = renamed.setdefault(label, "c:" + secrets.token_hex(8))
        plan.change(t.label, rowid, "cluster_id", new)


def _events(con: duckdb.DuckDBPyConnection, t: Table, person: Person, plan: Plan) -> None:
    """Events of others that carried one of the person's identifiers (known from the observations
    of those identifiers): id columns naming them become NULL; payloads are left to the text pass."""
    not_theirs, params = _not_theirs(t, person)
    cols = [c for c in ("user_id", "anonymous_id", "previous_id") if c in t.columns]
    if not cols:
        return
    rows = con.execute(
        f"SELECT rowid, {', '.join(DUCKDB.ident(c) for c in cols)} FROM {t.ref()} WHERE message_id IN "
        "(SELECT message_id FROM identity_observations WHERE customer_id = ?) AND " + not_theirs,
        [person.customer_id, *params]).fetchall()
    for rowid, *values in rows:
        for col, value in zip(cols, values, strict=True):
            if value is not None and person.names(value):
                plan.change(t.label, rowid, col, None)


def _text_pass(con: duckdb.DuckDBPyConnection, t: Table, person: Person, plan: Plan, force: Sequence[int]) -> None:
    """Every text column of ``t``: values of rows kept that contain the person (module docstring),
    and every value of the rows ``force`` (dead letters that mention them), are scrubbed; a value
    the plan changed already is scrubbed in its changed form."""
    cols = [c for c, typ in zip(t.columns, t.types, strict=True) if typ in TEXT_TYPES]
    if not cols:
        return
    not_theirs, params = _not_theirs(t, person)
    conds, hit_params = [], []
    for c in cols:
        found, p1 = contains(DUCKDB.ident(c), person)
        named, p2 = column_match(DUCKDB.ident(c), person)
        conds.append(f"({found} AND NOT {named})")
        hit_params += p1 + p2
    hits = " OR ".join(conds)
    cur = con.execute(
        f"SELECT rowid, {', '.join(DUCKDB.ident(c) for c in cols)} FROM {t.ref()} WHERE {not_theirs} AND "
        f"(({hits}) OR list_contains(?::BIGINT[], rowid))",
        [*params, *hit_params, sorted(force)])
    while chunk := cur.fetchmany(SCAN_CHUNK):
        for rowid, *values in chunk:
            for col, value in zip(cols, values, strict=True):
                before = plan.current(t.label, rowid, col, value)
                if isinstance(before, str):
                    after = person.scrub(before)
                    if after != value:
                        plan.change(t.label, rowid, col, after)


def plan_tables(plan: Plan, found: Sequence[Table]) -> dict[str, tuple[pa.Table, pa.Table, list[str]]]:
    """The plan as Arrow tables, per table label: the changes (``rid`` and, per changed column
    ``i``, its new value ``c<i>`` and whether it is set ``s<i>``), the rows left out (``rid``),
    and the changed columns in order. The copy reads them by DuckDB's replacement scan (the
    original is open read-only: nothing can be created in it)."""
    out: dict[str, tuple[pa.Table, pa.Table, list[str]]] = {}
    tables = _by_label(found)
    for label in sorted(set(plan.changes) | set(plan.drops)):
        rows = plan.changes.get(label, {})
        cols = [c for c in tables[label].columns if any(c in ch for ch in rows.values())]
        data: dict[str, pa.Array] = {"rid": pa.array(list(rows), pa.int64())}
        for i, col in enumerate(cols):
            data[f"c{i}"] = pa.array([ch.get(col) for ch in rows.values()], pa.string())
            data[f"s{i}"] = pa.array([col in ch for ch in rows.values()], pa.bool_())
        drops = pa.table({"rid": pa.array(sorted(plan.drops.get(label, set())), pa.int64())})
        out[label] = (pa.table(data), drops, cols)
    return out


def planned_copy_sql(t: Table, target: str, cols: list[str], where: str) -> str:
    """``INSERT INTO`` ``t`` of ``target`` the rows of ``t`` satisfying ``where`` (on alias ``o``)
    and not in ``_patron_drops``, with the values of ``cols`` planned in ``_patron_changes``
    (:func:`plan_tables`, read by replacement scan)."""
    changed = {c: i for i, c in enumerate(cols)}
    exprs = []
    for c, typ in zip(t.columns, t.types, strict=True):
        if c in changed:
            i = changed[c]
            exprs.append(f"CASE WHEN coalesce(p.s{i}, FALSE) THEN CAST(p.c{i} AS {typ}) ELSE o.{DUCKDB.ident(c)} END")
        else:
            exprs.append(f"o.{DUCKDB.ident(c)}")
    names = ", ".join(DUCKDB.ident(c) for c in t.columns)
    return (f"INSERT INTO {t.ref(target)} ({names}) SELECT {', '.join(exprs)} FROM {t.ref()} AS o "
            f"LEFT JOIN _patron_changes AS p ON p.rid = o.rowid "
            f"WHERE ({where}) AND o.rowid NOT IN (SELECT rid FROM _patron_drops)")
