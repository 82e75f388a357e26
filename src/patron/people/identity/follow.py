"""Rows follow the person: rewrite ``customer_id`` in other tables after a resolution.

One ``UPDATE`` per table, joined to the remap (set-based, whatever the size of the base); the
``customers`` table (one row per person) is merged so that exactly one row per person remains.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from patron.data.dialect import DUCKDB
from patron.people.identity.normalize import is_known
from patron.people.identity.outcome import Resolution

FOLLOW_TABLES: tuple[str, ...] = (
    "transactions", "contacts", "consents", "preferences", "feedback", "customers", "events",
    "dead_letters",
)
"""Tables whose ``customer_id`` follows merges by default (those that exist and have the column)."""

SOURCE_COLUMNS: tuple[str, ...] = ("message_id", "ingest_id")
"""Columns naming the event a row came from, tried in this order, for :attr:`Resolution.moved`:
rows fed by an event must carry its ``messageId`` in a ``message_id`` column or, for tables of
the data contract, in ``ingest_id``."""

TRAIT_TIME_COLUMNS: tuple[str, ...] = ("updated_at", "traits_at", "last_seen_at")
"""Columns of ``customers`` that say when a row's traits were written; the first present decides
which of two known profiles' traits win on a merge (the later)."""


def _remap_dict(remapped: Any) -> dict[str, str]:
    if isinstance(remapped, Mapping):
        return {str(k): str(v) for k, v in remapped.items()}
    frame = remapped.to_pandas() if isinstance(remapped, pa.Table) else pd.DataFrame(remapped)
    if frame.empty:
        return {}
    return dict(zip(frame["old_customer_id"].astype(str), frame["customer_id"].astype(str), strict=True))


def _moves_list(moved: Any) -> list[tuple[str, str, str]]:
    if moved is None:
        return []
    if isinstance(moved, list):
        return [(str(m), str(o), str(n)) for m, o, n in moved]
    frame = moved.to_pandas() if isinstance(moved, pa.Table) else pd.DataFrame(moved)
    if frame.empty:
        return []
    cols = [frame[c].astype(str) for c in ("message_id", "old_customer_id", "customer_id")]
    return list(zip(*cols, strict=True))


def table_columns(con: duckdb.DuckDBPyConnection, tables: Iterable[str]) -> dict[str, list[str]]:
    """Column names of the main-schema ``tables`` that exist, in order (of the connection's own
    database: another attached to the same instance, such as the snapshot the service writes,
    is not looked at)."""
    names = list(dict.fromkeys(tables))
    if not names:
        return {}
    rows = con.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'main' "
        "AND table_catalog = current_database() "
        f"AND table_name IN ({', '.join('?' * len(names))}) ORDER BY table_name, ordinal_position",
        names,
    ).fetchall()
    out: dict[str, list[str]] = {}
    for table, column in rows:
        out.setdefault(table, []).append(column)
    return out


def follow_merges(
    con: duckdb.DuckDBPyConnection,
    remapped: Resolution | Mapping[str, str] | pd.DataFrame | pa.Table,
    tables: Sequence[str] = FOLLOW_TABLES,
    *,
    moved: list[tuple[str, str, str]] | pd.DataFrame | None = None,
    columns: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, int]:
    """Rewrite ``customer_id`` in ``tables`` so that rows follow their person; returns the number of
    rows changed per table.

    ``remapped`` is a :class:`Resolution` (its ``remapped`` and ``moved`` are used) or the old →
    new person id mapping (a dict, or a frame with ``old_customer_id, customer_id``); ``moved``
    lists ``(message_id, old_customer_id, customer_id)`` (or a frame with those columns). Tables that
    do not exist or lack ``customer_id`` are skipped. Order:

    1. ``moved`` (messages of split persons): rows whose :data:`SOURCE_COLUMNS` column names the
       message and whose ``customer_id`` is the old person get the new one;
    2. ``customers``: the rows of persons mapped to the same new id become one row (see
       :func:`merge_customers`);
    3. every other table: one ``UPDATE ... FROM remap`` (simultaneous, so swaps and chains given
       as old → final are safe).

    ``columns`` (table → column names, e.g. from :func:`table_columns`) saves a catalogue query per
    call; the :class:`~patron.people.identity.Resolver` caches it in :meth:`Resolver.follow`.

    Call it inside the writer's transaction right after :func:`~patron.people.identity.resolve_events`
    and *before* inserting the batch's own rows (those already carry final person ids).
    """
    if isinstance(remapped, Resolution):
        moves = _moves_list(remapped.moved if moved is None else moved)
        mapping = _remap_dict(remapped.remapped)
    else:
        moves = _moves_list(moved)
        mapping = _remap_dict(remapped)
    counts: dict[str, int] = {}
    if not mapping and not moves:
        return counts
    cols = dict(columns) if columns is not None else table_columns(con, tables)
    targets = [t for t in dict.fromkeys(tables) if "customer_id" in cols.get(t, [])]
    if moves:
        con.register("_patron_follow_moved", pa.table({
            "message_id": [m[0] for m in moves], "old_customer_id": [m[1] for m in moves],
            "customer_id": [m[2] for m in moves]}))
        try:
            for table in targets:
                source = next((c for c in SOURCE_COLUMNS if c in cols[table]), None)
                if source is None or table == "customers":
                    continue
                t = DUCKDB.ident(table)
                n = con.execute(
                    f"UPDATE {t} SET customer_id = m.customer_id FROM _patron_follow_moved m "
                    f"WHERE {t}.{DUCKDB.ident(source)} = m.message_id AND {t}.customer_id = m.old_customer_id"
                ).fetchall()[0][0]
                counts[table] = counts.get(table, 0) + int(n)
        finally:
            con.unregister("_patron_follow_moved")
    if not mapping:
        return counts
    if "customers" in targets:
        counts["customers"] = counts.get("customers", 0) + merge_customers(con, mapping, cols["customers"])
    con.register("_patron_follow_remap", pa.table({"old": list(mapping), "new": list(mapping.values())}))
    try:
        for table in targets:
            if table == "customers":
                continue
            t = DUCKDB.ident(table)
            n = con.execute(
                f"UPDATE {t} SET customer_id = m.new FROM _patron_follow_remap m WHERE {t}.customer_id = m.old"
            ).fetchall()[0][0]
            counts[table] = counts.get(table, 0) + int(n)
    finally:
        con.unregister("_patron_follow_remap")
    return counts


def _attributes(text: Any) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def merge_customers(
    con: duckdb.DuckDBPyConnection, mapping: Mapping[str, str], columns: Sequence[str] | None = None
) -> int:
    """Make ``customers`` hold one row per person after ``mapping`` (old → new id); returns the
    number of rows removed or rewritten.

    The rows of every person mapped to one new id (and that id's own row) become one row.
    Precedence, lowest to highest: anonymous profiles (``anon:`` ids), then known persons; among
    rows of the same kind, the one written later (by the first of :data:`TRAIT_TIME_COLUMNS`
    present; without one, the surviving id's row last). ``attributes`` (JSON objects) are merged
    key by key, higher precedence winning; other columns take the highest-precedence non-null
    value; ``first_seen`` is the earliest. A Python loop over the few affected rows only.
    """
    if not mapping:
        return 0
    if columns is None:
        columns = table_columns(con, ["customers"]).get("customers", [])
    if "customer_id" not in columns:
        return 0
    ids = sorted(set(mapping) | set(mapping.values()))
    quoted = ", ".join(DUCKDB.ident(c) for c in columns)
    rows = con.execute(
        f"SELECT {quoted} FROM customers WHERE customer_id IN ({', '.join('?' * len(ids))})", ids
    ).fetchall()
    if not rows:
        return 0
    idx = {c: i for i, c in enumerate(columns)}
    time_col = next((c for c in TRAIT_TIME_COLUMNS if c in idx), None)
    groups: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        cid = row[idx["customer_id"]]
        groups.setdefault(mapping.get(cid, cid), []).append(row)

    def precedence(target: str, row: tuple[Any, ...]) -> tuple[Any, ...]:
        cid = row[idx["customer_id"]]
        stamp = row[idx[time_col]] if time_col else None
        return (is_known(cid), stamp is not None, stamp or 0, cid == target)

    merged_rows: list[tuple[Any, ...]] = []
    for target, group in groups.items():
        group.sort(key=lambda row, t=target: precedence(t, row))
        values: dict[str, Any] = {c: None for c in columns}
        attrs: dict[str, Any] = {}
        for row in group:
            for c in columns:
                if row[idx[c]] is not None:
                    values[c] = row[idx[c]]
            if "attributes" in idx:
                attrs.update(_attributes(row[idx["attributes"]]))
        if "first_seen" in idx:
            seen = [row[idx["first_seen"]] for row in group if row[idx["first_seen"]] is not None]
            values["first_seen"] = min(seen) if seen else None
        if "attributes" in idx:
            values["attributes"] = json.dumps(attrs, sort_keys=True) if attrs else None
        values["customer_id"] = target
        merged_rows.append(tuple(values[c] for c in columns))
    present = sorted({row[idx["customer_id"]] for row in rows})
    con.execute(f"DELETE FROM customers WHERE customer_id IN ({', '.join('?' * len(present))})", present)
    con.executemany(f"INSERT INTO customers ({quoted}) VALUES ({', '.join('?' * len(columns))})", merged_rows)
    return len(rows)
