"""Resolution of the identifiers events carry into persons, incrementally, batch by batch.

:class:`Resolver` keeps the identity graph in memory (rebuilt from the tables on first use) and
applies a batch of observations (:mod:`patron.people.identity.batch`): the common case (identifiers
already linked) costs dictionary look-ups and three set-based SQL statements; a new link costs
work proportional to the identifiers whose person changes, never to the size of the person it
joins; only *conflicted clusters* (where a unique kind has two values) are replayed, from their
stored links. See :mod:`patron.people.identity` for the definition.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from patron.people.identity.graph import (
    LinkKey,
    Neighbours,
    Rank,
    link_key,
    prune,
    pruned_links,
    replay,
)
from patron.people.identity.normalize import (
    CUSTOMER_ID,
    DEFAULT_PLACEHOLDERS,
    DEFAULT_UNIQUE,
    SAME_ID_RANK,
    Ident,
    Placeholders,
    implicit_value,
    normalize_identifier,
    normalize_kind,
    person_id,
    same_id_twin,
)
from patron.people.identity.outcome import (
    DEFAULT_MAX_LINKED,
    PLACEHOLDER_REASON,
    SHARED_REASON,
    Resolution,
)
from patron.people.identity.tables import ensure_tables, rename_legacy_labels

NORMALIZED_CACHE: int = 20_000
"""Normalized identifier values a :class:`Resolver` keeps between batches (an e-mail is hashed
once; about 200 bytes an entry); the cache is emptied when it grows past this many entries."""

def unique_kinds(rules: Any = None) -> frozenset[str]:
    """The unique identifier kinds of ``rules`` (a ``ServiceRules``, a list of kinds, or None for
    the default ``["customer_id", "user_id"]``). ``customer_id`` is always unique: a row of a
    ``customers`` file is one customer, and two rows are never one person."""
    if rules is None:
        kinds: Iterable[str] = DEFAULT_UNIQUE
    elif hasattr(rules, "unique_identifiers"):
        kinds = rules.unique_identifiers
    else:
        kinds = rules
    return frozenset(normalize_kind(k) for k in kinds) | {CUSTOMER_ID}


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
    observations: Any,
    cache: dict[tuple[str, Any], tuple[str | None, bool]] | None = None,
    *,
    placeholders: Placeholders | None = None,
    held: list[tuple[str, datetime, str, str]] | None = None,
) -> list[tuple[str, datetime, str, str]]:
    """``(message_id, occurred_at, kind, value)`` rows of ``observations``, values normalized with
    :func:`~patron.people.identity.normalize.normalize_identifier`; empty values are dropped, and so are
    values of ``placeholders`` (appended to ``held`` when given).

    ``observations`` is an Arrow table, a DataFrame, anything ``pandas.DataFrame`` accepts, or a
    list of ``(message_id, occurred_at, kind, raw value)`` tuples (the writer's fast path: no
    frame is built; ``occurred_at`` must then already be a naive UTC ``datetime``). Otherwise
    ``occurred_at`` is converted to naive UTC (aware timestamps and ISO strings). ``cache``
    (``(kind, raw) -> (value, is a placeholder)``, for one placeholder list) keeps normalized values
    between calls (an e-mail is hashed once)."""
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
        hit = cache.get(ck)
        if hit is None:
            value = normalize_identifier(k, raw)
            hit = cache[ck] = (value, value is not None and placeholders is not None
                               and placeholders.matches((k, value)))
        value, listed = hit
        if value is None:
            continue
        if listed:
            if held is not None:
                held.append((str(mid), ts, k, value))
            continue
        out.append((str(mid), ts, k, value))
    return out


class Resolver:
    """The identity graph of one database, held in memory by the single writer.

    ``Resolver(rules)`` stores the rules: the unique kinds (a ``ServiceRules``, a list of kinds or
    None, see :func:`unique_kinds`), the placeholder values and the cap on linked identifiers
    (from a ``ServiceRules``' ``placeholder_identifiers`` and ``max_linked_identifiers``, else the
    keyword arguments, else :data:`~patron.people.identity.normalize.DEFAULT_PLACEHOLDERS` and
    :data:`DEFAULT_MAX_LINKED`; ``max_linked_identifiers`` None or 0 sets no cap). The graph is read
    from the tables on the first :meth:`resolve` (and after :meth:`reset`). Call :meth:`reset`
    whenever the tables may have changed behind its back: after a rolled-back transaction, after
    the database was reopened (erasure), after another process or resolver wrote to them.

    In memory: ``person_`` (identifier → person id), ``members_`` (person id → identifiers),
    ``values_`` (person id → its values of unique kinds other than ``user_id``, which a known
    person's id is), ``links_`` (link → rank of its canonical-first event), ``cluster_`` /
    ``cluster_members_`` / ``cluster_hi_`` (identifiers of conflicted clusters, and the rank of
    each one's latest link), ``neighbours_`` (who was seen with whom, up to the cap),
    ``blocked_`` (shared identifiers and stored placeholders: they link nobody). About 900 bytes
    per identifier held after :meth:`load` (measured with ``tracemalloc`` on the 36,267
    identifiers of ``bench_identity.py``'s 100,000 events; 740 before the neighbours were kept).
    """

    def __init__(
        self, rules: Any = None, *, placeholders: Iterable[str] | None = None,
        max_linked_identifiers: int | object | None = ...,
    ) -> None:
        self.rules = rules
        self.unique = unique_kinds(rules)
        if placeholders is None:
            placeholders = getattr(rules, "placeholder_identifiers", DEFAULT_PLACEHOLDERS)
        self.placeholders = Placeholders(placeholders)
        if max_linked_identifiers is ...:
            max_linked_identifiers = getattr(rules, "max_linked_identifiers", DEFAULT_MAX_LINKED)
        self.max_linked: int | None = max_linked_identifiers or None  # type: ignore[assignment]
        self.loaded_ = False

    # --- state ------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the in-memory graph; the next :meth:`resolve` reloads it from the tables."""
        self.loaded_ = False
        for name in ("person_", "members_", "values_", "links_", "cluster_", "cluster_members_", "cluster_hi_", "neighbours_",
                     "blocked_", "noted_", "pending_", "columns_", "normalized_"):
            self.__dict__.pop(name, None)

    def load(self, con: duckdb.DuckDBPyConnection) -> Resolver:
        """Create the tables if missing and read the graph from them (a pass over every identifier
        and link: done once, on start).

        The stored persons are then checked against the rules in force: an identifier that is now
        blocked (shared under this cap, or a listed placeholder) but still joined to others, or a
        link between two persons that nothing refused (after a cap was raised), is queued in
        ``pending_``; the next :meth:`resolve` replays those clusters."""
        ensure_tables(con)
        rename_legacy_labels(con)
        self.person_: dict[Ident, str] = {}
        self.members_: dict[str, set[Ident]] = {}
        self.values_: dict[str, dict[str, str]] = {}
        self.cluster_: dict[Ident, str] = {}
        self.cluster_members_: dict[str, set[Ident]] = {}
        for kind, value, cid, label in con.execute(
            "SELECT kind, value, customer_id, cluster_id FROM identities"
        ).fetchall():
            ident = (kind, value)
            self.person_[ident] = cid
            self.members_.setdefault(cid, set()).add(ident)
            if kind in self.unique and not implicit_value(cid, kind, value):
                self.values_.setdefault(cid, {})[kind] = value
            if label is not None:
                self.cluster_[ident] = label
                self.cluster_members_.setdefault(label, set()).add(ident)
        groups: dict[str, tuple[Rank, list[Ident]]] = {}
        for key, kind, value, mid, ts in con.execute(
            "SELECT link_key, kind, value, message_id, occurred_at FROM identity_links"
        ).fetchall():
            groups.setdefault(key, ((ts, mid), []))[1].append((kind, value))
        self.links_: dict[LinkKey, Rank] = {link_key(ids): rank for rank, ids in groups.values()}
        self.neighbours_ = Neighbours(self.max_linked)
        for key in self.links_:
            self.neighbours_.add(key)
        self.blocked_: set[Ident] = set(self.neighbours_.shared)
        self.blocked_ |= {i for i in self.person_ if self.placeholders.matches(i)}
        self.cluster_hi_: dict[str, Rank] = {}
        for key, rank in self.links_.items():
            k = prune(key, self.blocked_)
            label = self.cluster_.get(k[0]) if len(k) >= 2 else None
            if label is not None and (label not in self.cluster_hi_ or rank > self.cluster_hi_[label]):
                self.cluster_hi_[label] = rank
        self.noted_: set[Ident] = {(k, v) for k, v in con.execute(
            "SELECT DISTINCT cause_kind, cause_value FROM identity_merges WHERE cause_kind IS NOT NULL "
            "AND (starts_with(reason, ?) OR starts_with(reason, ?))", [PLACEHOLDER_REASON, SHARED_REASON]).fetchall()}
        self.pending_: list[set[Ident]] = self._inconsistent()
        self.loaded_ = True
        return self

    def _inconsistent(self) -> list[set[Ident]]:
        """Groups of identifiers whose stored persons disagree with the rules in force (see
        :meth:`load`): a pass over the blocked identifiers and the links."""
        out: list[set[Ident]] = []
        person, cluster = self.person_, self.cluster_
        for b in self.blocked_:
            if b in person and (b in cluster or len(self.members_[person[b]]) > 1):
                out.append({b})
        for key in self.links_:
            k = prune(key, self.blocked_)
            if len(k) < 2 or any(i not in person for i in k):
                continue
            labels = {cluster.get(i) for i in k}
            if len(labels) > 1 or (labels == {None} and len({person[i] for i in k}) > 1):
                out.append(set(k))
        return out

    def follow(self, con: duckdb.DuckDBPyConnection, resolution: Resolution, tables: Any = None) -> dict[str, int]:
        """:func:`~patron.people.identity.follow_merges` with the tables' columns cached (read on the first
        call after :meth:`reset`; call :meth:`reset` if tables are created or altered later)."""
        from patron.people.identity.follow import FOLLOW_TABLES, follow_merges, table_columns

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
        from patron.people.identity.batch import Batch

        if not self.loaded_:
            self.load(con)
        cache = self.__dict__.setdefault("normalized_", {})
        if len(cache) > NORMALIZED_CACHE:
            cache.clear()
        held: list[tuple[str, datetime, str, str]] = []
        rows = read_observations(observations, cache, placeholders=self.placeholders, held=held)
        return Batch(self, con).run(rows, held)


def resolve_events(
    con: duckdb.DuckDBPyConnection, observations: Any, rules: Any = None, *, resolver: Resolver | None = None
) -> Resolution:
    """Resolve a batch of observations into persons, store them and update the identity tables.

    ``observations`` has columns ``message_id, occurred_at (naive UTC), kind, value``: the raw
    identifiers each event carries together (an identify with userId, anonymousId and email is
    three rows with one message_id). Values are raw: this function normalizes them (emails are
    hashed). ``rules`` gives the unique kinds (``ServiceRules`` or a list; default
    ``["customer_id", "user_id"]``).

    Without ``resolver`` the graph is read from the tables on every call (fine for tests and
    one-off use); the service keeps one :class:`Resolver` and passes it (or calls
    :meth:`Resolver.resolve`). Runs inside the caller's transaction on ``con``. Afterwards call
    :func:`patron.people.identity.follow_merges` with the result (before inserting the batch's own rows).
    """
    res = resolver if resolver is not None else Resolver(rules)
    return res.resolve(con, observations)


def resolve_all(
    observations: Iterable[tuple[str, datetime, str, str]], unique: Collection[str], *,
    placeholders: Iterable[str] = (), max_linked_identifiers: int | None = None,
) -> dict[Ident, str]:
    """The identifier → person mapping of a whole set of *normalized* observations at once, by
    the definition (replay of every link in canonical order, placeholder values dropped, shared
    identifiers taken out of every link). A reference for tests; no database."""
    listed = Placeholders(placeholders)
    events: dict[str, list[Any]] = {}
    for mid, ts, kind, value in observations:
        if listed.matches((kind, value)):
            continue
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
    for ident in idents:
        twin = same_id_twin(ident)
        if twin is not None and twin in idents:
            links[link_key((ident, twin))] = SAME_ID_RANK
    neighbours = Neighbours(max_linked_identifiers)
    for key in links:
        neighbours.add(key)
    kept = pruned_links(((rank, key) for key, rank in links.items()), neighbours.shared)
    persons, _ = replay([(rank, key) for key, rank in kept.items()], idents, frozenset(unique) | {CUSTOMER_ID})
    return {i: person_id(group) for group in persons for i in group}
