"""Resolution of the identifiers events carry into persons, incrementally, batch by batch.

:class:`Resolver` keeps the identity graph in memory (rebuilt from the tables on first use) and
applies a batch of observations: the common case (identifiers already linked) costs dictionary
look-ups and three set-based SQL statements; only *conflicted clusters* (where a unique kind has two
values) are replayed, from their stored links. See :mod:`patron.identity` for the definition.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from patron.identity.graph import LinkKey, Rank, Refusal, conflict, link_key, replay
from patron.identity.normalize import (
    ANON_PREFIX,
    ANONYMOUS_ID,
    DEFAULT_UNIQUE,
    USER_ID,
    Ident,
    ident_order,
    normalize_identifier,
    normalize_kind,
    person_id,
    primary,
)
from patron.identity.tables import ensure_tables

MERGE_COLUMNS: tuple[str, ...] = (
    "merged_at", "customer_id", "merged_id", "cause_message_id", "cause_occurred_at", "cause_kind",
    "cause_value", "reason",
)
"""Columns of ``identity_merges`` and of :attr:`Resolution.merges`."""

NORMALIZED_CACHE: int = 20_000
"""Normalized identifier values a :class:`Resolver` keeps between batches (an e-mail is hashed
once; about 200 bytes an entry); the cache is emptied when it grows past this many entries."""


def _frame(columns: Iterable[str], rows: list[tuple[Any, ...]] | None = None) -> pd.DataFrame:
    return pd.DataFrame(rows or [], columns=list(columns))


@dataclass
class Resolution:
    """What one batch of observations did (plain Python containers: cheap to build per batch).

    * ``customer_of``: ``{message_id: customer_id}``, the person of each message of the batch (the
      person of its first identifier in canonical order, i.e. its ``user_id`` when it has one);
    * ``merges``: the rows added to ``identity_merges`` (merges, refused merges, splits), as dicts
      with keys :data:`MERGE_COLUMNS`;
    * ``remapped``: ``{old_customer_id: customer_id}`` for every person id that existed before the
      batch and now names another person (absorbed, renamed): where its rows go;
    * ``moved``: ``[(message_id, old_customer_id, customer_id)]``, earlier messages whose person
      changed otherwise than by ``remapped`` (a person split because a late event, earlier in time,
      changed which links were refused). Rare; empty in the common case.
    """

    customer_of: dict[str, str]
    merges: list[dict[str, Any]] = field(default_factory=list)
    remapped: dict[str, str] = field(default_factory=dict)
    moved: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether rows stored under earlier person ids must be rewritten (:func:`follow_merges`)."""
        return bool(self.remapped or self.moved)

    def frames(self) -> dict[str, pd.DataFrame]:
        """The four parts as DataFrames (``customer_of``: message_id, customer_id; ``remapped``:
        old_customer_id, customer_id; ``moved``: message_id, old_customer_id, customer_id)."""
        return {
            "customer_of": _frame(("message_id", "customer_id"), list(self.customer_of.items())),
            "merges": pd.DataFrame(self.merges, columns=list(MERGE_COLUMNS)),
            "remapped": _frame(("old_customer_id", "customer_id"), list(self.remapped.items())),
            "moved": _frame(("message_id", "old_customer_id", "customer_id"), list(self.moved)),
        }


def unique_kinds(rules: Any = None) -> frozenset[str]:
    """The unique identifier kinds of ``rules`` (a ``ServiceRules``, a list of kinds, or None for
    the default ``["user_id"]``)."""
    if rules is None:
        kinds: Iterable[str] = DEFAULT_UNIQUE
    elif hasattr(rules, "unique_identifiers"):
        kinds = rules.unique_identifiers
    else:
        kinds = rules
    return frozenset(normalize_kind(k) for k in kinds)


def _link_hash(key: LinkKey) -> str:
    text = "\x1f".join(f"{k}\x1e{v}" for k, v in key)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _as_arrow(observations: Any) -> pa.Table:
    if isinstance(observations, pa.Table):
        return observations
    if isinstance(observations, pd.DataFrame):
        return pa.Table.from_pandas(observations, preserve_index=False)
    return pa.Table.from_pandas(pd.DataFrame(observations), preserve_index=False)


def _timestamps(column: pa.ChunkedArray) -> list[datetime]:
    if not pa.types.is_timestamp(column.type):
        parsed = pd.to_datetime(column.to_pandas(), utc=True, format="mixed")
        column = pa.chunked_array([pa.array(parsed, type=pa.timestamp("us", tz="UTC"))])
    if column.type.tz is not None:
        column = column.cast(pa.timestamp("us", tz="UTC")).cast(pa.timestamp("us"))
    return column.to_pylist()


def _is_rows(observations: Any) -> bool:
    return isinstance(observations, list) and (not observations or isinstance(observations[0], tuple))


def read_observations(
    observations: Any, cache: dict[tuple[str, Any], str | None] | None = None
) -> list[tuple[str, datetime, str, str]]:
    """``(message_id, occurred_at, kind, value)`` rows of ``observations``, values normalized with
    :func:`~patron.identity.normalize.normalize_identifier`; empty values are dropped.

    ``observations`` is an Arrow table, a DataFrame, anything ``pandas.DataFrame`` accepts, or a
    list of ``(message_id, occurred_at, kind, raw value)`` tuples (the writer's fast path: no
    frame is built; ``occurred_at`` must then already be a naive UTC ``datetime``). Otherwise
    ``occurred_at`` is converted to naive UTC (aware timestamps and ISO strings). ``cache``
    (``(kind, raw) -> value``) keeps normalized values between calls (an e-mail is hashed once)."""
    if _is_rows(observations):
        if not observations:
            return []
        mids, times, kinds, raws = (list(c) for c in zip(*observations, strict=True))
    else:
        table = _as_arrow(observations)
        if table.num_rows == 0:
            return []
        missing = {"message_id", "occurred_at", "kind", "value"} - set(table.column_names)
        if missing:
            raise ValueError(f"observations lack columns {sorted(missing)}")
        mids = table.column("message_id").to_pylist()
        times = _timestamps(table.column("occurred_at"))
        kinds = table.column("kind").to_pylist()
        raws = table.column("value").to_pylist()
    out: list[tuple[str, datetime, str, str]] = []
    if cache is None:
        cache = {}
    kind_names: dict[Any, str] = {}
    for mid, ts, kind, raw in zip(mids, times, kinds, raws, strict=True):
        if mid is None or kind is None or raw is None:
            continue
        if ts is None:
            raise ValueError(f"observation of message {mid} has no occurred_at")
        k = kind_names.get(kind)
        if k is None:
            k = kind_names[kind] = normalize_kind(kind)
        ck = (k, raw)
        value = cache[ck] if ck in cache else cache.setdefault(ck, normalize_identifier(k, raw))
        if value is not None:
            out.append((str(mid), ts, k, value))
    return out


class Resolver:
    """The identity graph of one database, held in memory by the single writer.

    ``Resolver(rules)`` stores the rules; the graph is read from the tables on the first
    :meth:`resolve` (and after :meth:`reset`). Call :meth:`reset` whenever the tables may have
    changed behind its back: after a rolled-back transaction, after the database was reopened
    (erasure), after another process or resolver wrote to them.

    In memory: ``person_`` (identifier → person id), ``members_`` (person id → identifiers),
    ``links_`` (link → rank of its canonical-first event), ``cluster_`` / ``cluster_members_``
    (identifiers of conflicted clusters). About 200 bytes per identifier.
    """

    def __init__(self, rules: Any = None) -> None:
        self.rules = rules
        self.unique = unique_kinds(rules)
        self.loaded_ = False

    # --- state ------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the in-memory graph; the next :meth:`resolve` reloads it from the tables."""
        self.loaded_ = False
        for name in ("person_", "members_", "links_", "cluster_", "cluster_members_", "columns_", "normalized_"):
            self.__dict__.pop(name, None)

    def load(self, con: duckdb.DuckDBPyConnection) -> Resolver:
        """Create the tables if missing and read the graph from them (a pass over every identifier
        and link: done once, on start)."""
        ensure_tables(con)
        self.person_: dict[Ident, str] = {}
        self.members_: dict[str, set[Ident]] = {}
        self.cluster_: dict[Ident, str] = {}
        self.cluster_members_: dict[str, set[Ident]] = {}
        for kind, value, cid, label in con.execute(
            "SELECT kind, value, customer_id, cluster_id FROM identities"
        ).fetchall():
            ident = (kind, value)
            self.person_[ident] = cid
            self.members_.setdefault(cid, set()).add(ident)
            if label is not None:
                self.cluster_[ident] = label
                self.cluster_members_.setdefault(label, set()).add(ident)
        groups: dict[str, tuple[Rank, list[Ident]]] = {}
        for key, kind, value, mid, ts in con.execute(
            "SELECT link_key, kind, value, message_id, occurred_at FROM identity_links"
        ).fetchall():
            groups.setdefault(key, ((ts, mid), []))[1].append((kind, value))
        self.links_: dict[LinkKey, Rank] = {link_key(ids): rank for rank, ids in groups.values()}
        self.loaded_ = True
        return self

    def follow(self, con: duckdb.DuckDBPyConnection, resolution: Resolution, tables: Any = None) -> dict[str, int]:
        """:func:`~patron.identity.follow_merges` with the tables' columns cached (read on the first
        call after :meth:`reset`; call :meth:`reset` if tables are created or altered later)."""
        from patron.identity.follow import FOLLOW_TABLES, follow_merges, table_columns

        names = tuple(tables) if tables is not None else FOLLOW_TABLES
        if not (resolution.remapped or resolution.moved):
            return {}
        cache = self.__dict__.setdefault("columns_", {})
        if names not in cache:
            cache[names] = table_columns(con, names)
        return follow_merges(con, resolution, names, columns=cache[names])

    # --- resolution -------------------------------------------------------------------------
    def resolve(self, con: duckdb.DuckDBPyConnection, observations: Any) -> Resolution:
        """Apply a batch of observations and store them; see :func:`resolve_events`
        (``observations`` as :func:`read_observations` takes them)."""
        if not self.loaded_:
            self.load(con)
        cache = self.__dict__.setdefault("normalized_", {})
        if len(cache) > NORMALIZED_CACHE:
            cache.clear()
        return _Batch(self, con).run(read_observations(observations, cache))


def _label(idents: Iterable[Ident]) -> str:
    kind, value = min(idents, key=ident_order)
    return f"c:{kind}={value}"


class _Batch:
    """One call of :meth:`Resolver.resolve`: the in-memory update, then the SQL."""

    def __init__(self, resolver: Resolver, con: duckdb.DuckDBPyConnection) -> None:
        self.r = resolver
        self.con = con
        self.old_person: dict[Ident, str | None] = {}
        self.relabelled: set[Ident] = set()
        self.cause: dict[str, tuple[Rank, LinkKey, Ident]] = {}
        self.refusals: list[Refusal] = []
        self.changed: dict[LinkKey, Rank] = {}
        self.known_links: set[LinkKey] = set()

    def assign(self, ident: Ident, pid: str) -> None:
        old = self.r.person_.get(ident)
        if old == pid:
            return
        if ident not in self.old_person:
            self.old_person[ident] = old
        self.r.person_[ident] = pid

    def relabel(self, idents: set[Ident], label: str) -> None:
        for ident in idents:
            if self.r.cluster_.get(ident) != label:
                self.r.cluster_[ident] = label
                self.relabelled.add(ident)
        self.r.cluster_members_[label] = idents

    # -- in memory --
    def run(self, rows: list[tuple[str, datetime, str, str]]) -> Resolution:
        r = self.r
        events: dict[str, list[Any]] = {}
        seen: set[Ident] = set()
        for mid, ts, kind, value in rows:
            ident = (kind, value)
            seen.add(ident)
            ev = events.get(mid)
            if ev is None:
                events[mid] = [ts, {ident}]
            else:
                ev[1].add(ident)
                if ts < ev[0]:
                    ev[0] = ts
        for mid, (ts, ids) in events.items():
            if len(ids) < 2:
                continue
            key = link_key(ids)
            rank = (ts, mid)
            best = self.changed.get(key) or r.links_.get(key)
            if best is None or rank < best:
                self.changed[key] = rank

        dirty: set[str] = set()
        for key, rank in sorted(self.changed.items(), key=lambda kv: kv[1]):
            known = key in r.links_
            if known:
                self.known_links.add(key)
            r.links_[key] = rank
            labels = {r.cluster_[i] for i in key if i in r.cluster_}
            if known:
                dirty |= labels
                continue
            persons = {r.person_[i] for i in key if i in r.person_}
            fresh = [i for i in key if i not in r.person_]
            if not labels and len(persons) <= 1 and not fresh:
                continue
            union: set[Ident] = set(fresh)
            for label in labels:
                union |= r.cluster_members_.pop(label)
            for p in persons:
                union |= r.members_[p]
            if labels or conflict(union, r.unique) is not None:
                label = _label(union)
                dirty -= labels
                dirty.add(label)
                self.relabel(union, label)
                continue
            self.merge(persons, fresh, rank, key)

        for label in sorted(dirty):
            self.recompute(label)

        for ident in seen:
            if ident not in r.person_:
                pid = person_id([ident])
                self.assign(ident, pid)
                r.members_.setdefault(pid, set()).add(ident)

        customer_of = {mid: r.person_[primary(ids)] for mid, (_, ids) in events.items()}
        remapped, split = self.remaps()
        merges = self.merge_rows(remapped, split)
        moved = self.write(events, remapped, split, merges)
        return Resolution(
            customer_of=customer_of,
            merges=[dict(zip(MERGE_COLUMNS, row, strict=True)) for row in merges],
            remapped=dict(sorted(remapped.items())),
            moved=moved,
        )

    def merge(self, persons: set[str], fresh: list[Ident], rank: Rank, key: LinkKey) -> None:
        """Join ``persons`` and the new identifiers ``fresh`` into one person (no conflict)."""
        r = self.r
        union_ids = list(fresh)
        for p in persons:
            union_ids.extend(r.members_[p])
        pid = person_id(union_ids)
        keep = pid if pid in persons else None
        base = r.members_.pop(keep) if keep is not None else set()
        for p in sorted(persons):
            if p == keep:
                continue
            moved_ids = r.members_.pop(p)
            for ident in moved_ids:
                self.assign(ident, pid)
            base |= moved_ids
            linker = next((i for i in key if i in moved_ids), key[0])
            self.cause.setdefault(p, (rank, key, linker))
        for ident in fresh:
            self.assign(ident, pid)
            base.add(ident)
        r.members_[pid] = base

    def recompute(self, label: str) -> None:
        """Replay the links of a conflicted cluster and install its persons."""
        r = self.r
        idents = r.cluster_members_[label]
        keys = self.stored_links(idents)
        keys |= {k for k in self.changed if not idents.isdisjoint(k)}
        persons, refusals = replay([(r.links_[k], k) for k in keys], idents, r.unique)
        for p in {r.person_[i] for i in idents if i in r.person_}:
            r.members_.pop(p, None)
        changed_ranks = sorted((self.changed[k], k) for k in keys if k in self.changed)
        for group in persons:
            pid = person_id(group)
            for ident in group:
                before = r.person_.get(ident)
                self.assign(ident, pid)
                if before is not None and before != pid and changed_ranks:
                    rank, key = next(((rk, k) for rk, k in changed_ranks if not group.isdisjoint(k)), changed_ranks[0])
                    self.cause.setdefault(before, (rank, key, ident))
            r.members_[pid] = set(group)
        self.refusals.extend(f for f in refusals if f.link in self.changed)
        if len(persons) == 1:  # cannot happen for a conflicted cluster; keep the state honest anyway
            for ident in idents:
                if r.cluster_.pop(ident, None) is not None:
                    self.relabelled.add(ident)
            r.cluster_members_.pop(label, None)

    def stored_links(self, idents: set[Ident]) -> set[LinkKey]:
        table = pa.table({"kind": [k for k, _ in idents], "value": [v for _, v in idents]})
        self.con.register("_patron_identity_cluster", table)
        try:
            rows = self.con.execute(
                "SELECT l.link_key, l.kind, l.value FROM identity_links l WHERE l.link_key IN ("
                "SELECT m.link_key FROM identity_links m JOIN _patron_identity_cluster c "
                "ON m.kind = c.kind AND m.value = c.value)"
            ).fetchall()
        finally:
            self.con.unregister("_patron_identity_cluster")
        groups: dict[str, list[Ident]] = {}
        for key, kind, value in rows:
            groups.setdefault(key, []).append((kind, value))
        return {link_key(ids) for ids in groups.values()}

    def remaps(self) -> tuple[dict[str, str], set[str]]:
        """Old person id → new one, for persons that existed before the batch; and the persons
        whose identifiers went to more than one person (splits)."""
        r = self.r
        before: dict[str, list[Ident]] = {}
        for ident, old in self.old_person.items():
            if old is not None:
                before.setdefault(old, []).append(ident)
        remapped: dict[str, str] = {}
        split: set[str] = set()
        for old, moved_ids in before.items():
            finals = {r.person_[i] for i in moved_ids}
            stayed = [i for i in r.members_.get(old, ()) if i not in self.old_person]
            if stayed:
                finals.add(old)
            target = _defining_target(old, moved_ids, stayed, r.person_)
            if target is not None and target != old:
                remapped[old] = target
            if len(finals) > 1:
                split.add(old)
        return remapped, split

    def merge_rows(self, remapped: dict[str, str], split: set[str]) -> list[tuple[Any, ...]]:
        now = datetime.now(UTC).replace(tzinfo=None)
        rows: list[tuple[Any, ...]] = []
        for old, new in sorted(remapped.items()):
            cause = self.cause.get(old)
            if cause is None:
                rows.append((now, new, old, None, None, None, None, f"merged: {old} became {new}"))
                continue
            (ts, mid), key, linker = cause
            others = ", ".join(f"{k}={v}" for k, v in key if (k, v) != linker)
            reason = f"merged: {linker[0]}={linker[1]} seen with {others} in message {mid}"
            rows.append((now, new, old, mid, ts, linker[0], linker[1], reason))
        for old in sorted(split):
            cause = self.cause.get(old)
            mid = ts = kind = value = None
            why = "a late event, earlier in time, changed which links were refused"
            if cause is not None:
                (ts, mid), _, (kind, value) = cause
                why = f"message {mid}, earlier in time, changed which links were refused"
            rows.append((now, remapped.get(old, old), old, mid, ts, kind, value,
                         f"split: identifiers of {old} now belong to several persons ({why})"))
        for f in self.refusals:
            (ts, mid) = f.rank
            left, right = self.r.person_[f.left], self.r.person_[f.right]
            reason = (f"refused: linking {f.left[0]}={f.left[1]} with {f.right[0]}={f.right[1]} would give "
                      f"one person two values of unique {f.kind} ({', '.join(f.values)})")
            rows.append((now, left, right, mid, ts, f.right[0], f.right[1], reason))
        return rows

    # -- SQL --
    def write(
        self,
        events: dict[str, list[Any]],
        remapped: dict[str, str],
        split: set[str],
        merges: list[tuple[Any, ...]],
    ) -> list[tuple[str, str, str]]:
        con, r = self.con, self.r
        moved: list[tuple[str, str, str]] = []
        changes = [i for i, old in self.old_person.items() if old is not None]
        changes += [i for i in self.relabelled if i not in self.old_person]
        if changes:
            con.register("_patron_identity_changes", pa.table({
                "kind": [k for k, _ in changes],
                "value": [v for _, v in changes],
                "customer_id": [r.person_[i] for i in changes],
                "cluster_id": pa.array([r.cluster_.get(i) for i in changes], pa.string()),
            }))
            try:
                if split:
                    moved = self.moves(remapped, split)
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
        fresh = [i for i, old in self.old_person.items() if old is None]
        if fresh:
            _run_with(con, "INSERT INTO identities SELECT kind, value, customer_id, cluster_id FROM _patron_rows", {
                "kind": _text([k for k, _ in fresh]), "value": _text([v for _, v in fresh]),
                "customer_id": _text([r.person_[i] for i in fresh]),
                "cluster_id": _text([r.cluster_.get(i) for i in fresh])})
        if events:
            cols: list[list[Any]] = [[], [], [], [], [], []]
            for mid, (ts, idset) in events.items():
                prim = primary(idset)
                for ident in idset:
                    cols[0].append(mid)
                    cols[1].append(ts)
                    cols[2].append(ident[0])
                    cols[3].append(ident[1])
                    cols[4].append(ident == prim)
                    cols[5].append(r.person_[ident])
            _run_with(con, "INSERT INTO identity_observations SELECT message_id, occurred_at, kind, value, "
                      "is_primary, customer_id FROM _patron_rows", {
                          "message_id": _text(cols[0]), "occurred_at": _times(cols[1]), "kind": _text(cols[2]),
                          "value": _text(cols[3]), "is_primary": pa.array(cols[4], pa.bool_()),
                          "customer_id": _text(cols[5])})
        if self.changed:
            new: list[list[Any]] = [[], [], [], [], [], []]
            earlier: list[list[Any]] = [[], [], []]
            for key, (ts, mid) in self.changed.items():
                h = _link_hash(key)
                if key in self.known_links:
                    earlier[0].append(h)
                    earlier[1].append(mid)
                    earlier[2].append(ts)
                    continue
                for kind, value in key:
                    for col, x in zip(new, (h, kind, value, mid, ts, r.person_[(kind, value)]), strict=True):
                        col.append(x)
            if new[0]:
                _run_with(con, "INSERT INTO identity_links SELECT link_key, kind, value, message_id, occurred_at, "
                          "customer_id FROM _patron_rows", {
                              "link_key": _text(new[0]), "kind": _text(new[1]), "value": _text(new[2]),
                              "message_id": _text(new[3]), "occurred_at": _times(new[4]),
                              "customer_id": _text(new[5])})
            if earlier[0]:
                _run_with(con, "UPDATE identity_links SET message_id = e.message_id, occurred_at = e.occurred_at "
                          "FROM _patron_rows e WHERE identity_links.link_key = e.link_key", {
                              "link_key": _text(earlier[0]), "message_id": _text(earlier[1]),
                              "occurred_at": _times(earlier[2])})
        if merges:
            c = [list(col) for col in zip(*merges, strict=True)]
            _run_with(con, f"INSERT INTO identity_merges ({', '.join(MERGE_COLUMNS)}) SELECT "
                      f"{', '.join(MERGE_COLUMNS)} FROM _patron_rows", {
                          "merged_at": _times(c[0]), "customer_id": _text(c[1]), "merged_id": _text(c[2]),
                          "cause_message_id": _text(c[3]), "cause_occurred_at": _times(c[4]),
                          "cause_kind": _text(c[5]), "cause_value": _text(c[6]), "reason": _text(c[7])})
        return moved

    def moves(self, remapped: dict[str, str], split: set[str]) -> list[tuple[str, str, str]]:
        """Earlier messages of split persons whose person is not where ``remapped`` sends the rest."""
        olds = sorted(split)
        placeholders = ", ".join("?" * len(olds))
        rows = self.con.execute(
            "SELECT o.message_id, o.customer_id, c.customer_id FROM identity_observations o "
            "JOIN _patron_identity_changes c ON o.kind = c.kind AND o.value = c.value "
            f"WHERE o.is_primary AND o.customer_id IN ({placeholders}) ORDER BY o.message_id",
            olds,
        ).fetchall()
        return [(m, old, new) for m, old, new in rows if new != remapped.get(old, old)]


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


def _defining_target(
    old: str, moved_ids: list[Ident], stayed: list[Ident], person: dict[Ident, str]
) -> str | None:
    """Where the rows of person ``old`` go: the person now holding the identifier ``old`` was
    made from (its ``user_id``, or the anonymous id after ``anon:``)."""
    candidates: list[Ident] = [(USER_ID, old)]
    if old.startswith(ANON_PREFIX):
        rest = old[len(ANON_PREFIX):]
        candidates.append((ANONYMOUS_ID, rest))
        kind, sep, value = rest.partition("=")
        if sep:
            candidates.append((kind, value))
    pool = set(moved_ids) | set(stayed)
    for ident in candidates:
        if ident in pool:
            return person[ident]
    return None


def resolve_events(
    con: duckdb.DuckDBPyConnection, observations: Any, rules: Any = None, *, resolver: Resolver | None = None
) -> Resolution:
    """Resolve a batch of observations into persons, store them and update the identity tables.

    ``observations`` has columns ``message_id, occurred_at (naive UTC), kind, value``: the raw
    identifiers each event carries together (an identify with userId, anonymousId and email is
    three rows with one message_id). Values are raw: this function normalizes them (emails are
    hashed). ``rules`` gives the unique kinds (``ServiceRules`` or a list; default
    ``["user_id"]``).

    Without ``resolver`` the graph is read from the tables on every call (fine for tests and
    one-off use); the service keeps one :class:`Resolver` and passes it (or calls
    :meth:`Resolver.resolve`). Runs inside the caller's transaction on ``con``. Afterwards call
    :func:`patron.identity.follow_merges` with the result (before inserting the batch's own rows).
    """
    res = resolver if resolver is not None else Resolver(rules)
    return res.resolve(con, observations)


def resolve_all(
    observations: Iterable[tuple[str, datetime, str, str]], unique: Collection[str]
) -> dict[Ident, str]:
    """The identifier → person mapping of a whole set of *normalized* observations at once, by
    the definition (replay of every link in canonical order). A reference for tests; no database."""
    events: dict[str, list[Any]] = {}
    for mid, ts, kind, value in observations:
        ev = events.setdefault(mid, [ts, set()])
        ev[1].add((kind, value))
        ev[0] = min(ev[0], ts)
    links: dict[LinkKey, Rank] = {}
    idents: set[Ident] = set()
    for mid, (ts, ids) in events.items():
        idents |= ids
        if len(ids) >= 2:
            key = link_key(ids)
            links[key] = min(links.get(key, (ts, mid)), (ts, mid))
    persons, _ = replay([(rank, key) for key, rank in links.items()], idents, frozenset(unique))
    return {i: person_id(group) for group in persons for i in group}
