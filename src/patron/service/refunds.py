"""Which ``Order Refunded`` events of a group commit may be stored: the refund rules of the service.

A refund is a row of ``transactions`` with a negative amount, keyed ``<order_id>/refund/<id>``
(:data:`~patron.service.mapping.REFUND_KEY`) and booked on the *order's* person. :func:`check_refunds`
runs in the writer's transaction before identity resolution, so a refused refund leaves nothing
behind (no identifier, no link):

* the refunded order must exist: stored as an order (amount >= 0), or completed by an event of the
  same group. A refund of an unknown order is refused, with or without an amount (an amount alone
  would make a refund of nothing);
* the refund must come from the order's person: the person of the refund event's primary
  identifier (its ``userId`` when it has one; identity resolution's rule for whose an event is), as
  the identity graph stood before the group, is the order's ``customer_id`` (or the person of the
  in-group order event, by the same rule). Otherwise it is refused, unless the event says
  ``properties.refund_override: true`` (:data:`~patron.service.mapping.REFUND_OVERRIDE`): a back
  office refunding on a customer's behalf. The override is not a privilege: a write key already
  lets its holder send events as any ``userId``; the rule catches refunds sent with the wrong
  person's id, which would otherwise lower the wrong customer's value.

Cost: groups without refunds pay nothing. A group with refunds runs one look-up of the refunded
orders (only ids the order index may hold) and one of the senders' primary identifiers in
``identities`` (a scan of that table, a few ms per million identifiers).
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from patron.data.dialect import DUCKDB
from patron.people.identity.normalize import (
    normalize_identifier,
    normalize_kind,
    person_id,
    primary,
)
from patron.service.items import Accepted, Rejected, dead_letter, fallback_customer
from patron.service.known import KeyIndex
from patron.service.mapping import REFUND_OVERRIDE


def order_owners(cur: duckdb.DuckDBPyConnection, index: KeyIndex, order_ids: list[str]) -> dict[str, str]:
    """``{order_id: customer_id}`` of the stored *orders* (amount >= 0) among ``order_ids``."""
    if not order_ids:
        return {}
    suspects = sorted({o for o, maybe in zip(order_ids, index.might_hold(cur, order_ids), strict=True) if maybe})
    if not suspects:
        return {}
    lst = ", ".join(DUCKDB.literal(o) for o in suspects)
    return dict(cur.execute(f"SELECT order_id, any_value(customer_id) FROM transactions "
                            f"WHERE order_id IN ({lst}) AND amount >= 0 GROUP BY order_id").fetchall())


def senders(cur: duckdb.DuckDBPyConnection, events: list[Accepted]) -> dict[str, str]:
    """``{message_id: person id}`` of each event as the identity graph stood before this group: the
    person of the event's primary identifier (its ``user_id`` when it has one, as identity
    resolution decides whose an event is), or the person that identifier would make alone."""
    primaries: dict[str, tuple[str, str]] = {}
    for a in events:
        idents = []
        for kind, raw in a.mapped.identifiers:
            k = normalize_kind(kind)
            v = normalize_identifier(k, raw)
            if v is not None:
                idents.append((k, v))
        if idents:
            primaries[a.event.message_id] = primary(idents)
    _probe = pa.table({"kind": pa.array([p[0] for p in primaries.values()], pa.string()),  # replacement scan
                       "value": pa.array([p[1] for p in primaries.values()], pa.string())})
    found = {(k, v): c for k, v, c in cur.execute(
        "SELECT i.kind, i.value, any_value(i.customer_id) FROM identities i "
        "SEMI JOIN _probe p ON p.kind = i.kind AND p.value = i.value GROUP BY i.kind, i.value").fetchall()}
    out: dict[str, str] = {}
    for a in events:
        ident = primaries.get(a.event.message_id)
        out[a.event.message_id] = fallback_customer(a.event) if ident is None else found.get(ident) or person_id([ident])
    return out


def check_refunds(cur: duckdb.DuckDBPyConnection, accepted: list[Accepted], index: KeyIndex,
                  ) -> tuple[list[Accepted], list[Rejected]]:
    """Refunds that may be stored: every refund needs its order, stored as an order (amount >= 0)
    or completed in this group, and must come from the order's person -- the person of the refund
    event's primary identifier before this group is the order's ``customer_id`` (or the person of
    the in-group order event) -- unless it says ``properties.refund_override: true``. The others
    become dead letters, before identity resolution sees their identifiers."""
    if not any(a.mapped.refunds for a in accepted):
        return accepted, []
    in_group: dict[str, Accepted] = {}
    for a in accepted:
        for t in a.mapped.transactions:
            in_group.setdefault(t[1], a)
    owners = order_owners(cur, index, sorted({r[2] for a in accepted for r in a.mapped.refunds}))
    checked = [a for a in accepted if any(not r[6] for r in a.mapped.refunds)]
    checked += [in_group[r[2]] for a in checked for r in a.mapped.refunds if r[2] in in_group]
    person = senders(cur, checked) if checked else {}
    keep: list[Accepted] = []
    dead: list[Rejected] = []
    for a in accepted:
        reason = None
        for r in a.mapped.refunds:
            oid = r[2]
            if oid not in owners and oid not in in_group:
                reason = (f"Order Refunded: order {oid} is not stored (a refund needs its order: "
                          f"send its Order Completed first)")
            elif not r[6]:
                owner = owners[oid] if oid in owners else person[in_group[oid].event.message_id]
                sender = person[a.event.message_id]
                if owner != sender:  # the reason goes back to the sender: it names nobody
                    reason = (f"Order Refunded: order {oid} belongs to another person; send the refund with that "
                              f"person's userId, or with properties.{REFUND_OVERRIDE}: true to book it on them")
            if reason:
                break
        if reason is None:
            keep.append(a)
        else:
            e = a.event
            dead.append(dead_letter(e.received_at, e.message_id, fallback_customer(e), e.type, e.event, reason, e.payload))
    return keep, dead
