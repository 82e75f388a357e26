"""Pure, in-memory algorithms of identity resolution (no database).

:func:`replay` is the definition of the result: links applied in canonical order, each one
refused when it would give one person two values of a unique kind.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from patron.people.identity.normalize import Ident, ident_order

Rank = tuple[datetime, str]
"""Canonical position of an event: ``(occurred_at, message_id)``."""

LinkKey = tuple[Ident, ...]
"""A link: the identifiers of one event in canonical order (two or more)."""


@dataclass(frozen=True)
class Refusal:
    """A union :func:`replay` refused: ``link`` (first seen at ``rank``) would have joined the person
    of ``left`` with the person of ``right``, giving one person two values of ``kind``."""

    rank: Rank
    link: LinkKey
    left: Ident
    right: Ident
    kind: str
    values: tuple[str, ...]


def conflict(idents: Iterable[Ident], unique: Collection[str]) -> tuple[str, tuple[str, ...]] | None:
    """The first unique kind (by name) of which ``idents`` hold two or more values, with those values."""
    seen: dict[str, set[str]] = {}
    for kind, value in idents:
        if kind in unique:
            seen.setdefault(kind, set()).add(value)
    for kind in sorted(seen):
        if len(seen[kind]) > 1:
            return kind, tuple(sorted(seen[kind]))
    return None


def link_key(idents: Iterable[Ident]) -> LinkKey:
    """The canonical tuple of a set of identifiers."""
    return tuple(sorted(set(idents), key=ident_order))


def replay(
    links: Iterable[tuple[Rank, LinkKey]], idents: Iterable[Ident], unique: Collection[str]
) -> tuple[list[set[Ident]], list[Refusal]]:
    """Persons of a cluster: apply ``links`` in canonical order (by rank), each as unions of its
    first identifier with each other one, refusing a union whose two persons together hold two
    values of a kind in ``unique``.

    ``idents`` lists every identifier of the cluster (also those in no link). Returns the persons
    (sets of identifiers, in canonical order of their first identifier) and the refusals in the
    order they happened. The result depends only on the set of links, not on the order given.
    """
    parent: dict[Ident, Ident] = {i: i for i in idents}
    values: dict[Ident, dict[str, str]] = {
        i: ({i[0]: i[1]} if i[0] in unique else {}) for i in parent
    }

    def find(i: Ident) -> Ident:
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:
            parent[i], i = root, parent[i]
        return root

    refusals: list[Refusal] = []
    for rank, key in sorted(links):
        for i in key:
            if i not in parent:
                parent[i] = i
                values[i] = {i[0]: i[1]} if i[0] in unique else {}
        first = key[0]
        for other in key[1:]:
            a, b = find(first), find(other)
            if a == b:
                continue
            va, vb = values[a], values[b]
            clash = sorted(k for k in va.keys() & vb.keys() if va[k] != vb[k])
            if clash:
                kind = clash[0]
                refusals.append(Refusal(rank, key, first, other, kind, tuple(sorted((va[kind], vb[kind])))))
                continue
            if ident_order(b) < ident_order(a):
                a, b = b, a
            parent[b] = a
            values[a].update(values.pop(b))  # the surviving root holds the person's unique values
    groups: dict[Ident, set[Ident]] = {}
    for i in parent:
        groups.setdefault(find(i), set()).add(i)
    persons = sorted(groups.values(), key=lambda g: min(ident_order(i) for i in g))
    return persons, refusals


def prune(key: LinkKey, blocked: Collection[Ident]) -> LinkKey:
    """``key`` without its blocked identifiers (placeholders and shared identifiers link nobody)."""
    if not blocked:
        return key
    return tuple(i for i in key if i not in blocked)


def pruned_links(
    links: Iterable[tuple[Rank, LinkKey]], blocked: Collection[Ident]
) -> dict[LinkKey, Rank]:
    """The links that remain once blocked identifiers are taken out, each with the smallest rank of
    the links it came from (applying a link again later changes nothing, so only the first counts).
    Sets of fewer than two identifiers are no links."""
    out: dict[LinkKey, Rank] = {}
    for rank, key in links:
        k = prune(key, blocked)
        if len(k) >= 2 and (k not in out or rank < out[k]):
            out[k] = rank
    return out


def components(links: Iterable[LinkKey], idents: Iterable[Ident]) -> list[set[Ident]]:
    """Connected components of ``idents`` joined by ``links`` (every union accepted: these are the
    *clusters* of :mod:`patron.people.identity`)."""
    parent: dict[Ident, Ident] = {i: i for i in idents}

    def find(i: Ident) -> Ident:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for key in links:
        for i in key:
            parent.setdefault(i, i)
        a = find(key[0])
        for other in key[1:]:
            b = find(other)
            if a != b:
                parent[b] = a
    groups: dict[Ident, set[Ident]] = {}
    for i in parent:
        groups.setdefault(find(i), set()).add(i)
    return list(groups.values())


class Neighbours:
    """How many distinct identifiers each identifier was seen with (in any link), up to a cap.

    An identifier seen with more than ``cap`` others is **shared** (a placeholder nobody listed, a
    shared device, a test account): it stops linking anybody. Below the cap, the neighbours are
    kept (one identifier stored as itself, more as a set: most identifiers have one); beyond it,
    only the fact that it is shared. ``cap=None`` never marks anything shared.
    """

    def __init__(self, cap: int | None) -> None:
        self.cap = cap
        self.shared: set[Ident] = set()
        self._seen: dict[Ident, Ident | set[Ident]] = {}

    def add(self, key: LinkKey) -> list[Ident]:
        """Record link ``key``; returns the identifiers it made shared."""
        if self.cap is None:
            return []
        out: list[Ident] = []
        seen, shared = self._seen, self.shared
        for i in key:
            if i in shared:
                continue
            cur = seen.get(i)
            for j in key:
                if j == i or cur == j:
                    continue
                if cur is None:
                    cur = j
                elif isinstance(cur, set):
                    cur.add(j)
                else:
                    cur = {cur, j}
            if cur is None:
                continue
            if (len(cur) if isinstance(cur, set) else 1) > self.cap:
                shared.add(i)
                seen.pop(i, None)
                out.append(i)
            else:
                seen[i] = cur
        return out

    def of(self, ident: Ident) -> set[Ident]:
        """The identifiers ``ident`` was seen with (empty once it is shared)."""
        cur = self._seen.get(ident)
        if cur is None:
            return set()
        return set(cur) if isinstance(cur, set) else {cur}
