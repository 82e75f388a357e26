"""One call of :meth:`patron.people.identity.Resolver.resolve`: the in-memory update of the graph.

Work is proportional to what the batch changes, never to the size of a person it touches:

* a new link between unconflicted persons merges them by moving the identifiers of all but the
  largest (only identifiers whose person id changes are visited), checks unique kinds on each
  person's values of those kinds (``values_``) and derives the new person id from each person's
  defining identifier (:func:`~patron.people.identity.normalize.person_id` of a union is that of its
  parts' defining identifiers);
* a new link into one conflicted cluster that ranks after all of its links (new devices of its
  users, arriving in time order) is applied to its persons as the replay would apply it, last;
* any other link touching a conflicted cluster joins the parts into one cluster (the largest
  keeps its label, only the others are relabelled), replayed once at the end of the batch; so is
  the cluster of an identifier that became shared (once in its life);
* a link through a blocked identifier (shared or placeholder) joins only its other identifiers.

The SQL that stores the result (and the ``identity_merges`` rows it records) is in
:mod:`patron.people.identity.batch_sql`.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import duckdb

from patron.people.identity.graph import (
    LinkKey,
    Rank,
    Refusal,
    components,
    link_key,
    prune,
    pruned_links,
    replay,
)
from patron.people.identity.normalize import (
    ANON_PREFIX,
    NAMING_KINDS,
    SAME_ID_RANK,
    Ident,
    defining_ident,
    event_primary,
    ident_order,
    implicit_value,
    person_id,
    same_id_twin,
)
from patron.people.identity.outcome import (
    MERGE_COLUMNS,
    PLACEHOLDER_REASON,
    SHARED_REASON,
    Resolution,
)


def _label() -> str:
    """A new cluster label: ``c:`` and 16 random hex digits. Opaque: a label never names an
    identifier (it would outlive the erasure of its person in the rows of others)."""
    return "c:" + secrets.token_hex(8)


class Batch:
    """The in-memory update of one batch, then :func:`~patron.people.identity.batch_sql.store_batch`."""

    def __init__(self, resolver: Any, con: duckdb.DuckDBPyConnection) -> None:
        """``resolver``: the :class:`~patron.people.identity.resolve.Resolver` whose graph this
        batch updates (not imported here: the resolver imports this module)."""
        self.r = resolver
        self.con = con
        self.old_person: dict[Ident, str | None] = {}
        self.relabelled: set[Ident] = set()
        self.cause: dict[str, tuple[Rank, LinkKey, Ident]] = {}
        self.refusals: list[Refusal] = []
        self.changed: dict[LinkKey, Rank] = {}
        self.known_links: set[LinkKey] = set()
        self.notes: list[tuple[Rank | None, Ident, str]] = []
        """Blocked identifiers to record in ``identity_merges``: (cause rank, identifier, reason)."""
        self.reprimary: set[Ident] = set()
        """Identifiers blocked or unblocked in this batch: messages carrying them are re-examined."""
        self.opened: dict[str, Ident] = {}
        """Persons replayed because one of their identifiers is now blocked: person id → identifier."""

    def note(self, ident: Ident, rank: Rank | None) -> None:
        """Record (once) that ``ident`` is blocked: a placeholder, or shared."""
        r = self.r
        if ident in r.noted_ or any(n[1] == ident for n in self.notes):
            return
        if r.placeholders.matches(ident):
            reason = (f"{PLACEHOLDER_REASON} {ident[0]}={ident[1]} (listed in [service] placeholder_identifiers) "
                      "links nobody; its events belong to the person of their other identifiers")
        else:
            reason = (f"{SHARED_REASON} {ident[0]}={ident[1]} was seen with more than {r.max_linked} other "
                      "identifiers ([service] max_linked_identifiers) and links nobody from now on")
        self.notes.append((rank, ident, reason))

    # -- bookkeeping --
    def assign(self, ident: Ident, pid: str) -> None:
        old = self.r.person_.get(ident)
        if old == pid:
            return
        if ident not in self.old_person:
            self.old_person[ident] = old
        self.r.person_[ident] = pid

    def relabel(self, parts: list[set[Ident]], labels: set[str], dirty: set[str]) -> None:
        """Make ``parts`` (from :meth:`gather`) one conflicted cluster, to replay at the end of the
        batch. When the largest part is a conflicted cluster it keeps its label and only the other
        parts are relabelled (labels are random: :func:`_label`)."""
        r = self.r
        base = max(parts, key=len)
        label = r.cluster_.get(next(iter(base))) if base else None
        keep = label is not None and label in labels
        if not keep:
            label = _label()
            base = set(base)  # it may be a person's set of identifiers: never grown in place
        assert label is not None
        for part in parts:
            if part is base and keep:
                continue
            for ident in part:
                if r.cluster_.get(ident) != label:
                    r.cluster_[ident] = label
                    self.relabelled.add(ident)
            if part is not base:
                base |= part
        r.cluster_members_[label] = base
        dirty -= labels
        dirty.add(label)

    def gather(self, idents: Iterable[Ident]) -> tuple[list[set[Ident]], set[str]]:
        """The parts to join for ``idents``: the conflicted clusters holding some (taken out of
        ``cluster_members_``), the persons holding the others, and the new ones; and the labels
        taken."""
        r = self.r
        fresh: set[Ident] = set()
        parts: list[set[Ident]] = []
        labels: set[str] = set()
        persons: set[str] = set()
        for i in idents:
            label = r.cluster_.get(i)
            if label is not None:
                if label not in labels:
                    labels.add(label)
                    parts.append(r.cluster_members_.pop(label))
                    r.cluster_hi_.pop(label, None)
            elif i in r.person_:
                persons.add(r.person_[i])
            else:
                fresh.add(i)
        parts += [r.members_[p] for p in persons]
        if fresh:
            parts.append(fresh)
        return parts, labels

    def defining(self, pid: str) -> Ident:
        """The identifier person ``pid`` is named after (looked up, never a scan)."""
        found = defining_ident(pid, self.r.members_[pid])
        return found if found is not None else min(self.r.members_[pid], key=ident_order)

    def values(self, pid: str) -> list[tuple[str, str]]:
        """Person ``pid``'s values of unique kinds. A known person's ``customer_id`` or ``user_id``
        equal to its id is kept nowhere else (most persons have one); other values of unique kinds
        are kept in ``values_``."""
        r = self.r
        out = list(r.values_.get(pid, {}).items())
        members = r.members_[pid]
        for kind in NAMING_KINDS:
            if kind in r.unique and (kind, pid) in members:
                out.append((kind, pid))
        return out

    def keep_values(self, pid: str, values: dict[str, str]) -> None:
        """Store person ``pid``'s values of unique kinds, but those its id already is."""
        kept = {k: v for k, v in values.items() if not implicit_value(pid, k, v)}
        if kept:
            self.r.values_[pid] = kept
        else:
            self.r.values_.pop(pid, None)

    def clash(self, persons: set[str], fresh: list[Ident]) -> bool:
        """Whether joining ``persons`` and ``fresh`` would give one person two values of a unique kind."""
        seen: dict[str, str] = {}
        unique = self.r.unique
        for p in persons:
            for kind, value in self.values(p):
                if seen.setdefault(kind, value) != value:
                    return True
        for kind, value in fresh:
            if kind in unique and seen.setdefault(kind, value) != value:
                return True
        return False

    # -- in memory --
    def run(self, rows: list[tuple[str, datetime, str, str]], held: list[tuple[str, datetime, str, str]]) -> Resolution:
        from patron.people.identity.batch_sql import merge_rows, store_batch

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
        for ident in seen:  # a customer id of the files that events send as their userId, and back
            twin = same_id_twin(ident)
            if twin is not None and ident not in r.person_ and (twin in r.person_ or twin in seen):
                key = link_key((ident, twin))
                if key not in r.links_:
                    self.changed[key] = SAME_ID_RANK
        ordered = sorted(self.changed.items(), key=lambda kv: kv[1])

        # Identifiers this batch makes shared, then clusters to replay (theirs, and what load found).
        reopen: list[set[Ident]] = r.pending_
        r.pending_ = []
        for key, rank in ordered:
            if key in r.links_:
                continue  # a known link: no new neighbour
            for ident in r.neighbours_.add(key):
                r.blocked_.add(ident)
                reopen.append({ident})
                self.note(ident, rank)
        dirty: set[str] = set()
        for group in reopen:
            self.reprimary |= group
            for ident in group:
                if ident in r.blocked_ and ident in r.person_:
                    self.opened.setdefault(r.person_[ident], ident)
                    self.note(ident, None)
            parts, labels = self.gather(i for i in group if i in r.person_ or i in r.cluster_)
            if labels or sum(len(p) for p in parts) > 1:
                self.relabel(parts, labels, dirty)

        blocked = r.blocked_
        for key, rank in ordered:
            known = key in r.links_
            if known:
                self.known_links.add(key)
            r.links_[key] = rank
            k = prune(key, blocked)
            if len(k) < 2:
                continue
            if known:
                dirty |= {r.cluster_[i] for i in k if i in r.cluster_}
                continue
            fresh = [i for i in k if i not in r.person_]
            if k == key and self.append(k, rank, dirty):
                continue
            if not any(i in r.cluster_ for i in k):
                persons = {r.person_[i] for i in k if i in r.person_}
                if len(persons) <= 1 and not fresh:
                    continue
                if not self.clash(persons, fresh):
                    self.merge(persons, fresh, rank, k)
                    continue
            parts, labels = self.gather(k)
            self.relabel(parts, labels, dirty)

        for label in sorted(dirty):
            if label in r.cluster_members_:
                self.recompute(label)

        for ident in seen:
            if ident not in r.person_:
                pid = person_id([ident])
                self.assign(ident, pid)
                r.members_.setdefault(pid, set()).add(ident)
                if ident[0] in r.unique and not implicit_value(pid, *ident):
                    r.values_.setdefault(pid, {})[ident[0]] = ident[1]

        customer_of: dict[str, str] = {}
        for mid, ev in events.items():  # the primary is kept for the observations (batch_sql)
            prim = event_primary(ev[1], blocked)
            ev.append(prim)
            customer_of[mid] = r.person_[prim]
        first_held: dict[Ident, Rank] = {}
        for mid, ts, kind, value in held:
            customer_of.setdefault(mid, ANON_PREFIX + mid)  # only placeholders: a person of its own
            ident = (kind, value)
            if ident not in first_held or (ts, mid) < first_held[ident]:
                first_held[ident] = (ts, mid)
        for ident, rank in sorted(first_held.items(), key=lambda kv: kv[1]):
            self.note(ident, rank)
        remapped, split = self.remaps()
        merges = merge_rows(self, remapped, split, customer_of)
        moved = store_batch(self, events, remapped, split, merges)
        r.noted_ |= {ident for _, ident, _ in self.notes}
        return Resolution(
            customer_of=customer_of,
            merges=[dict(zip(MERGE_COLUMNS, row, strict=True)) for row in merges],
            remapped=dict(sorted(remapped.items())),
            moved=moved,
        )

    def append(self, key: LinkKey, rank: Rank, dirty: set[str]) -> bool:
        """Apply a new link to the one conflicted cluster it touches without replaying it, when it
        ranks after every link of that cluster: the replay would apply it last, on the persons the
        cluster has now. Returns False (nothing done) when that does not hold."""
        r = self.r
        labels = {r.cluster_.get(i) for i in key if i in r.person_ or i in r.cluster_}
        if len(labels) != 1:
            return False
        label = labels.pop()
        if label is None or label in dirty or not rank > r.cluster_hi_.get(label, rank):
            return False
        members = r.cluster_members_[label]
        for ident in key:
            if ident not in r.person_:
                pid = person_id([ident])
                self.assign(ident, pid)
                r.members_[pid] = {ident}
                if ident[0] in r.unique and not implicit_value(pid, *ident):
                    r.values_[pid] = {ident[0]: ident[1]}
                r.cluster_[ident] = label
                members.add(ident)
                self.relabelled.add(ident)
        first = key[0]
        for other in key[1:]:
            a, b = r.person_[first], r.person_[other]
            if a == b:
                continue
            va, vb = dict(self.values(a)), dict(self.values(b))
            clash = sorted(kind for kind in va.keys() & vb.keys() if va[kind] != vb[kind])
            if clash:
                kind = clash[0]
                self.refusals.append(Refusal(rank, key, first, other, kind, tuple(sorted((va[kind], vb[kind])))))
                continue
            self.merge({a, b}, [], rank, key)
        r.cluster_hi_[label] = rank
        return True

    def merge(self, persons: set[str], fresh: list[Ident], rank: Rank, key: LinkKey) -> None:
        """Join ``persons`` and the new identifiers ``fresh`` into one person (no conflict). The
        largest person's set of identifiers is kept and grown; only identifiers whose person id
        changes are visited."""
        r = self.r
        pid = person_id([self.defining(p) for p in persons] + fresh)
        ordered = sorted(persons, key=lambda p: (-len(r.members_[p]), p))
        values: dict[str, str] = {}
        for p in ordered:
            values.update(self.values(p))
            r.values_.pop(p, None)
        base_p = ordered[0] if ordered else None
        base = r.members_.pop(base_p) if base_p is not None else set()
        if base_p is not None and base_p != pid:
            for ident in base:
                self.assign(ident, pid)
            self.cause.setdefault(base_p, (rank, key, next((i for i in key if i in base), key[0])))
        for p in ordered[1:]:
            moved_ids = r.members_.pop(p)
            if p != pid:
                for ident in moved_ids:
                    self.assign(ident, pid)
                self.cause.setdefault(p, (rank, key, next((i for i in key if i in moved_ids), key[0])))
            base |= moved_ids
        for ident in fresh:
            self.assign(ident, pid)
            base.add(ident)
            if ident[0] in r.unique:
                values[ident[0]] = ident[1]
        r.members_[pid] = base
        self.keep_values(pid, values)

    def recompute(self, label: str) -> None:
        """Replay the links of a conflicted cluster (blocked identifiers taken out), install its
        persons, and split it into its clusters: those holding one person are no longer conflicted."""
        r = self.r
        idents = r.cluster_members_.pop(label)
        from patron.people.identity.batch_sql import stored_links

        keys = stored_links(self.con, idents)
        keys |= {k for k in self.changed if not idents.isdisjoint(k)}
        links = {k: rank for k, rank in pruned_links(((r.links_[k], k) for k in keys), r.blocked_).items()
                 if not idents.isdisjoint(k)}  # a link through a blocked identifier may join nothing here
        persons, refusals = replay([(rank, k) for k, rank in links.items()], idents, r.unique)
        for p in {r.person_[i] for i in idents if i in r.person_}:
            r.members_.pop(p, None)
            r.values_.pop(p, None)
        changed_ranks = sorted((self.changed[k], k) for k in keys if k in self.changed)
        for group in persons:
            pid = person_id(group)
            why: tuple[Rank, LinkKey] | None = None  # this batch's first link into the group
            for ident in group:
                before = r.person_.get(ident)
                self.assign(ident, pid)
                if before is not None and before != pid and changed_ranks and before not in self.cause:
                    if why is None:
                        why = next(((rk, k) for rk, k in changed_ranks if not group.isdisjoint(k)), changed_ranks[0])
                    self.cause[before] = (why[0], why[1], ident)
            r.members_[pid] = set(group)
            values = {k: v for k, v in group if k in r.unique and not implicit_value(pid, k, v)}
            if values:
                r.values_[pid] = values
        new_links = pruned_links(((rank, k) for k, rank in self.changed.items()), r.blocked_)
        self.refusals.extend(f for f in refusals if new_links.get(f.link) == f.rank)
        r.cluster_hi_.pop(label, None)
        reuse: str | None = label  # the largest conflicted part keeps the label: fewer rows rewritten
        for comp in sorted(components(links, idents), key=len, reverse=True):
            if len({r.person_[i] for i in comp}) > 1:
                lab, reuse = reuse or _label(), None
                r.cluster_members_[lab] = comp
                for ident in comp:
                    if r.cluster_.get(ident) != lab:
                        r.cluster_[ident] = lab
                        self.relabelled.add(ident)
            else:
                for ident in comp:
                    if r.cluster_.pop(ident, None) is not None:
                        self.relabelled.add(ident)
        latest: dict[str, Rank] = {}
        for k, rank in links.items():
            lab = r.cluster_.get(k[0])
            if lab is not None and (lab not in latest or rank > latest[lab]):
                latest[lab] = rank
        r.cluster_hi_.update(latest)

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
            current = r.members_.get(old, set())
            if any(i not in self.old_person for i in current):
                finals.add(old)
            target = _defining_target(old, set(moved_ids), current, r.person_)
            if target is not None and target != old:
                remapped[old] = target
            if len(finals) > 1:
                split.add(old)
        return remapped, split


def _defining_target(old: str, moved: set[Ident], current: set[Ident], person: dict[Ident, str]) -> str | None:
    """Where the rows of person ``old`` go: the person now holding the identifier ``old`` was
    made from (its ``user_id``, or the anonymous id after ``anon:``), among the identifiers that
    moved or stayed."""
    found = defining_ident(old, moved) or defining_ident(old, current)
    return person[found] if found is not None else None
