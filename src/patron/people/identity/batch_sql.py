"""The SQL that stores one batch's identity resolution: set-based statements whose size is the
batch's (new identifiers, observations, links, merges) or what it changed (identifiers whose person
or cluster changed), never a whole person or cluster.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa

from patron.people.identity.graph import LinkKey, link_key
from patron.people.identity.normalize import SAME_ID_RANK, Ident, event_primary
from patron.people.identity.outcome import MERGE_COLUMNS

BatchState = Any
"""A :class:`patron.people.identity.batch.Batch`, the in-memory update these statements store
(not imported here: the batch imports this module, and the import would run in a circle)."""


def now_utc() -> datetime:
    """Now, as naive UTC (how the identity tables store times)."""
    return datetime.now(UTC).replace(tzinfo=None)


def link_hash(key: LinkKey) -> str:
    """``identity_links.link_key`` of a link: 32 hex digits of the SHA-256 of its identifiers."""
    text = "\x1f".join(f"{k}\x1e{v}" for k, v in key)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _text(values: list[Any]) -> pa.Array:
    return pa.array(values, pa.string())


def _times(values: list[Any]) -> pa.Array:
    return pa.array(values, pa.timestamp("us"))


def _run_with(con: duckdb.DuckDBPyConnection, sql: str, columns: dict[str, Any]) -> None:
    """Run ``sql``, in which ``_patron_rows`` is an Arrow table of ``columns``. DuckDB reads the table
    through its replacement scan of this frame's local (no view to register and drop); Arrow
    arrays are built in C, several times faster than passing Python lists as ``LIST`` parameters."""
    _patron_rows = pa.table(columns)  # read by DuckDB's replacement scan
    con.execute(sql)


def store_batch(
    batch: BatchState,
    events: dict[str, list[Any]],
    remapped: dict[str, str],
    split: set[str],
    merges: list[tuple[Any, ...]],
) -> list[tuple[str, str, str]]:
    """Write what ``batch`` changed: identifiers whose person or cluster changed, new identifiers,
    the batch's observations, new (or earlier) links, and ``identity_merges`` rows. Returns the
    messages of split persons that move (:attr:`~patron.people.identity.Resolution.moved`)."""
    con, r = batch.con, batch.r
    moved: list[tuple[str, str, str]] = []
    changes = [i for i, old in batch.old_person.items() if old is not None]
    changes += [i for i in batch.relabelled if i not in batch.old_person]
    if split or batch.reprimary:
        moved = _moves(batch, remapped, split)
    if changes:
        con.register("_patron_identity_changes", pa.table({
            "kind": [k for k, _ in changes],
            "value": [v for _, v in changes],
            "customer_id": [r.person_[i] for i in changes],
            "cluster_id": pa.array([r.cluster_.get(i) for i in changes], pa.string()),
        }))
        try:
            con.execute(
                "UPDATE identities SET customer_id = c.customer_id, cluster_id = c.cluster_id "
                "FROM _patron_identity_changes c WHERE identities.kind = c.kind AND identities.value = c.value")
            for table in ("identity_observations", "identity_links"):
                con.execute(
                    f"UPDATE {table} SET customer_id = c.customer_id FROM _patron_identity_changes c "
                    f"WHERE {table}.kind = c.kind AND {table}.value = c.value "
                    f"AND {table}.customer_id IS DISTINCT FROM c.customer_id")
        finally:
            con.unregister("_patron_identity_changes")
    if remapped:
        _run_with(con, "UPDATE identity_merges SET customer_id = m.new FROM _patron_rows m "
                  "WHERE identity_merges.customer_id = m.old",
                  {"old": _text(list(remapped)), "new": _text(list(remapped.values()))})
    fresh = [i for i, old in batch.old_person.items() if old is None]
    if fresh:
        _run_with(con, "INSERT INTO identities (kind, value, customer_id, cluster_id) "
                  "SELECT kind, value, customer_id, cluster_id FROM _patron_rows", {
                      "kind": _text([k for k, _ in fresh]), "value": _text([v for _, v in fresh]),
                      "customer_id": _text([r.person_[i] for i in fresh]),
                      "cluster_id": _text([r.cluster_.get(i) for i in fresh])})
    if events:
        _insert_observations(batch, events)
    if batch.changed:
        _write_links(batch)
    if merges:
        c = [list(col) for col in zip(*merges, strict=True)]
        _run_with(con, f"INSERT INTO identity_merges ({', '.join(MERGE_COLUMNS)}) SELECT "
                  f"{', '.join(MERGE_COLUMNS)} FROM _patron_rows", {
                      "merged_at": _times(c[0]), "customer_id": _text(c[1]), "merged_id": _text(c[2]),
                      "cause_message_id": _text(c[3]), "cause_occurred_at": _times(c[4]),
                      "cause_kind": _text(c[5]), "cause_value": _text(c[6]), "reason": _text(c[7])})
    return moved


def _insert_observations(batch: BatchState, events: dict[str, list[Any]]) -> None:
    """One ``identity_observations`` row per identifier of each event; ``events`` maps a messageId
    to ``[occurred_at, identifiers, primary]`` (the primary as :meth:`Batch.run` chose it, once
    every identifier blocked by the batch is known)."""
    r = batch.r
    cols: list[list[Any]] = [[], [], [], [], [], []]
    for mid, (ts, idset, prim) in events.items():  # prim: event_primary of Batch.run, computed once
        for ident in idset:
            cols[0].append(mid)
            cols[1].append(ts)
            cols[2].append(ident[0])
            cols[3].append(ident[1])
            cols[4].append(ident == prim)
            cols[5].append(r.person_[ident])
    _run_with(batch.con, "INSERT INTO identity_observations SELECT message_id, occurred_at, kind, value, "
              "is_primary, customer_id FROM _patron_rows", {
                  "message_id": _text(cols[0]), "occurred_at": _times(cols[1]), "kind": _text(cols[2]),
                  "value": _text(cols[3]), "is_primary": pa.array(cols[4], pa.bool_()),
                  "customer_id": _text(cols[5])})


def _write_links(batch: BatchState) -> None:
    r = batch.r
    new: list[list[Any]] = [[], [], [], [], [], []]
    earlier: list[list[Any]] = [[], [], []]
    for key, (ts, mid) in batch.changed.items():
        h = link_hash(key)
        if key in batch.known_links:
            earlier[0].append(h)
            earlier[1].append(mid)
            earlier[2].append(ts)
            continue
        for kind, value in key:
            for col, x in zip(new, (h, kind, value, mid, ts, r.person_[(kind, value)]), strict=True):
                col.append(x)
    if new[0]:
        _run_with(batch.con, "INSERT INTO identity_links SELECT link_key, kind, value, message_id, occurred_at, "
                  "customer_id FROM _patron_rows", {
                      "link_key": _text(new[0]), "kind": _text(new[1]), "value": _text(new[2]),
                      "message_id": _text(new[3]), "occurred_at": _times(new[4]),
                      "customer_id": _text(new[5])})
    if earlier[0]:
        _run_with(batch.con, "UPDATE identity_links SET message_id = e.message_id, occurred_at = e.occurred_at "
                  "FROM _patron_rows e WHERE identity_links.link_key = e.link_key", {
                      "link_key": _text(earlier[0]), "message_id": _text(earlier[1]),
                      "occurred_at": _times(earlier[2])})


def _moves(batch: BatchState, remapped: dict[str, str], split: set[str]) -> list[tuple[str, str, str]]:
    """Earlier messages whose person is not where ``remapped`` sends the rest: messages of split
    persons, and messages carrying an identifier that became blocked or unblocked (the identifier
    that decides whose a message is may then be another one; ``is_primary`` moves with it).

    Read before the observations are rewritten: a message's person was that of its primary
    observation; it now is that of :func:`~patron.people.identity.normalize.event_primary`."""

    con, r = batch.con, batch.r
    olds = sorted(split)
    _patron_blocked = pa.table({"kind": _text([k for k, _ in batch.reprimary]),  # read by the replacement scan
                                "value": _text([v for _, v in batch.reprimary])})
    by_person = (f"SELECT message_id FROM identity_observations WHERE is_primary AND customer_id IN "
                 f"({', '.join('?' * len(olds))}) UNION " if olds else "")
    rows = con.execute(
        "SELECT o.message_id, o.kind, o.value, o.is_primary, o.customer_id FROM identity_observations o "
        f"WHERE o.message_id IN ({by_person}SELECT b.message_id FROM identity_observations b "
        "SEMI JOIN _patron_blocked k ON b.kind = k.kind AND b.value = k.value) ORDER BY o.message_id",
        olds,
    ).fetchall()
    messages: dict[str, list[Any]] = {}
    for mid, kind, value, is_primary, cid in rows:
        m = messages.setdefault(mid, [set(), None, None])
        m[0].add((kind, value))
        if is_primary:
            m[1], m[2] = (kind, value), cid
    moved: list[tuple[str, str, str]] = []
    flips: list[tuple[str, str, str]] = []
    for mid, (idents, was_primary, old) in messages.items():
        prim = event_primary(idents, r.blocked_)
        new = r.person_[prim]
        if old is not None and new != remapped.get(old, old):
            moved.append((mid, old, new))
        if prim != was_primary:
            flips.append((mid, prim[0], prim[1]))
    if flips:
        _run_with(con, "UPDATE identity_observations SET is_primary = (identity_observations.kind = f.kind AND "
                  "identity_observations.value = f.value) FROM _patron_rows f "
                  "WHERE identity_observations.message_id = f.message_id", {
                      "message_id": _text([f[0] for f in flips]), "kind": _text([f[1] for f in flips]),
                      "value": _text([f[2] for f in flips])})
    return moved


def merge_rows(batch: BatchState, remapped: dict[str, str], split: set[str], customer_of: dict[str, str]) -> list[tuple[Any, ...]]:
    """The ``identity_merges`` rows of a batch: merges (with the link that caused each), splits,
    refused links and blocked identifiers, as tuples of :data:`~patron.people.identity.outcome.MERGE_COLUMNS`."""
    now = now_utc()
    rows: list[tuple[Any, ...]] = []
    for old, new in sorted(remapped.items()):
        cause = batch.cause.get(old)
        if cause is None:
            rows.append((now, new, old, None, None, None, None, f"merged: {old} became {new}"))
            continue
        (ts, mid), key, linker = cause
        others = ", ".join(f"{k}={v}" for k, v in key if (k, v) != linker)
        if (ts, mid) == SAME_ID_RANK:  # no event: the same text under both naming kinds
            reason = f"merged: {linker[0]}={linker[1]} and {others} name the same person"
            rows.append((now, new, old, None, None, linker[0], linker[1], reason))
            continue
        reason = f"merged: {linker[0]}={linker[1]} seen with {others} in message {mid}"
        rows.append((now, new, old, mid, ts, linker[0], linker[1], reason))
    for old in sorted(split):
        cause = batch.cause.get(old)
        mid = ts = kind = value = None
        why = "a late event, earlier in time, changed which links were refused"
        if cause is not None:
            (ts, mid), _, (kind, value) = cause
            why = f"message {mid}, earlier in time, changed which links were refused"
        if old in batch.opened:
            kind, value = batch.opened[old]
            why = f"{kind}={value} links nobody"
        rows.append((now, remapped.get(old, old), old, mid, ts, kind, value,
                     f"split: identifiers of {old} now belong to several persons ({why})"))
    for f in batch.refusals:
        (ts, mid) = f.rank
        left, right = batch.r.person_[f.left], batch.r.person_[f.right]
        reason = (f"refused: linking {f.left[0]}={f.left[1]} with {f.right[0]}={f.right[1]} would give "
                  f"one person two values of unique {f.kind} ({', '.join(f.values)})")
        rows.append((now, left, right, mid, ts, f.right[0], f.right[1], reason))
    for rank, ident, reason in batch.notes:
        ts, mid = rank if rank is not None else (None, None)
        owner = batch.r.person_.get(ident) or (customer_of.get(mid) if mid is not None else None)
        rows.append((now, owner, None, mid, ts, ident[0], ident[1], reason))
    return rows


def stored_links(con: duckdb.DuckDBPyConnection, idents: set[Ident]) -> set[LinkKey]:
    """Every stored link that holds one of ``idents`` (a join of ``identity_links`` on them)."""
    table = pa.table({"kind": [k for k, _ in idents], "value": [v for _, v in idents]})
    con.register("_patron_identity_cluster", table)
    try:
        rows = con.execute(
            "SELECT l.link_key, l.kind, l.value FROM identity_links l WHERE l.link_key IN ("
            "SELECT m.link_key FROM identity_links m JOIN _patron_identity_cluster c "
            "ON m.kind = c.kind AND m.value = c.value)"
        ).fetchall()
    finally:
        con.unregister("_patron_identity_cluster")
    groups: dict[str, list[Ident]] = {}
    for key, kind, value in rows:
        groups.setdefault(key, []).append((kind, value))
    return {link_key(ids) for ids in groups.values()}
