"""One group commit: a group of events stored in one transaction, every table with one statement.

:func:`store` is called by the writer thread (:mod:`patron.service.writer`) with the group's items
(checked events and dead letters). In one transaction it

1. resolves the identities of the group's new events (:class:`Identity`: the graph is held in
   memory, its tables get one ``INSERT`` each for new identifiers, links and observations) and
   makes rows stored earlier follow merged persons,
2. inserts the events (``events``), the rows they map to (``transactions``, ``contacts``,
   ``consents``, ``preferences``), customers' traits (one ``MERGE`` into ``customers``) and the dead letters: one
   Arrow-backed statement per table that has rows,
3. commits. Then it records what was stored in the writer's memory (:class:`Known`).

Statement count matters more than row count: on DuckDB 2.0 a small ``INSERT`` costs about 1 ms
whatever its size, and the commit's ``fdatasync`` 1-3 ms, so a group of 400 events costs less than
three times a group of 16 (about 45 and 17 ms on the bench machine).

Dedup without scans. A retried event is recognised by :class:`~patron.service.known.RecentIds`
(messageIds of the latest 200,000 stored events); an older retry is caught by ``events``' primary
key: the insert (or the commit) fails, the transaction is rolled back and redone with only the
events ``events`` does not hold. An order is stored once per ``order_id`` (the first event of an
order wins): :class:`~patron.service.known.KeyIndex` says which order ids are certainly new; only
the others are looked up, so no statement scans ``transactions`` in the common case (the former
``NOT EXISTS`` took 42 ms per commit at 2M transactions). ``customers`` has no index either: a
group with identify events reads its persons' rows and ``MERGE``s them, two scans of the table
(about 40 ms at 1M customers).

One bad event never fails the others. Events are checked in full before they reach the writer,
and the request bodies they come from are made storable (:func:`patron.service.json_body.parse_json`),
so no known content fails at commit time. Should an event still fail the group's transaction
(an error of its content: a value the database or Arrow refuses, a bug in a mapping), the group
is stored in parts (:func:`_isolate`): a part that fails is halved until the single events that
fail are found; those become dead letters naming the error, the others are stored, and the
writer's memory (recent ids, order index) follows each part that committed. A failure of the
database itself (:data:`ENVIRONMENT_ERRORS`: I/O, out of memory, ...) is not the events' fault:
the group fails as a whole and the writer answers 503 (SDKs retry).

A rolled-back transaction leaves the in-memory identity graph holding links the tables lack, so
it is reset (read again from the tables on the next group). That happens only on this fallback
path: checked content never makes a transaction fail.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa

from patron.data.dialect import DUCKDB
from patron.people.rights.suppress import Suppression
from patron.people.rights.suppress import record as record_suppressed
from patron.service.event_tables import EVENT_COLUMNS
from patron.service.items import (
    Accepted,
    Item,
    Outcome,
    Rejected,
    dead_letter,
    fallback_customer,
    is_known,
)
from patron.service.journal import save_position
from patron.service.known import KeyIndex, RecentIds
from patron.service.ledger_rows import insert_records
from patron.service.mapping import merge_traits
from patron.service.refunds import check_refunds
from patron.service.resolving import Identity
from patron.service.screen import screen
from patron.service.segment_spec import dumps

log = logging.getLogger("patron.service.commit")

ENVIRONMENT_ERRORS: tuple[type[BaseException], ...] = (
    duckdb.IOException, duckdb.FatalException, duckdb.InternalException, duckdb.OutOfMemoryException,
    duckdb.InterruptException, duckdb.ConnectionException, duckdb.TransactionException,
    duckdb.PermissionException, duckdb.CatalogException, duckdb.BinderException, duckdb.ParserException,
    duckdb.ResourceInUseException, MemoryError, OSError,
)
"""Failures of the database, the schema or the machine: no event is to blame, so the group fails
as a whole (503, retried) instead of being stored in parts. Any other exception while storing a
group is taken as a fault of some event's content (:func:`_isolate`)."""

# --- what the writer remembers -----------------------------------------------------------------


@dataclass
class Known:
    """The writer's memory between groups: recent messageIds, the index of stored order ids and
    the suppression list of erased persons (with what a group drops and lifts, until it commits)."""

    recent: RecentIds = field(default_factory=RecentIds)
    orders: KeyIndex = field(default_factory=lambda: KeyIndex("transactions", "order_id"))
    suppressed: Suppression = field(default_factory=Suppression)
    dropped: int = 0
    lifted: list[str] = field(default_factory=list)
    position: int | None = None
    """The journal position of the group being stored (:mod:`patron.service.journal`): saved in
    the group's transaction, or None."""
    triggers: Any = None
    """The service's triggers (:class:`patron.service.dialogue.ServiceDialogue`) or None: called
    with each transaction's stored events (``fire``), then told of its commit or rollback."""

    def load(self, con: duckdb.DuckDBPyConnection) -> None:
        """Read the recent messageIds, the order ids and the suppression list (on start)."""
        self.recent.load(con)
        self.orders.load(con)
        self.suppressed.load(con)

    def tables_changed(self) -> None:
        """Tables may have changed behind the writer (a job, a reopened file): the order index and
        the suppression list are read again on next use. Recent messageIds are kept (see
        :class:`RecentIds`)."""
        self.orders.reset()
        self.suppressed.reset()


# --- the group ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Written:
    """What one transaction stored: new messageIds, events rejected at write time, new order ids."""

    stored: set[str] = field(default_factory=set)
    late_dead: list[Rejected] = field(default_factory=list)
    order_keys: list[str] = field(default_factory=list)


def store(cur: duckdb.DuckDBPyConnection, items: list[Item], rules: Any, identity: Identity,
          known: Known) -> list[Outcome]:
    """Store a group of items in one transaction on ``cur`` and return their outcomes, in order
    (module docstring). Raises the database's error when the group cannot be committed (nothing of
    it is stored; the identity graph is reset)."""
    items, outcomes, dropped, lifted = screen(cur, items, rules, known.suppressed)
    known.dropped += dropped
    known.lifted += lifted
    first: dict[str, int] = {}
    candidates: list[Accepted] = []
    dead: list[Rejected] = []
    for i, it in enumerate(items):
        if outcomes[i] is not None:
            continue  # dropped: it names an erased person (patron.people.rights.suppress)
        if isinstance(it, Rejected):
            dead.append(it)
            outcomes[i] = Outcome(it.message_id, "rejected", it.reason)
            continue
        mid = it.event.message_id
        if mid in first or mid in known.recent:
            continue  # a retry, or the same messageId twice in one group: a duplicate
        first[mid] = i
        candidates.append(it)
    written = Written()
    if candidates or dead or known.dropped or known.lifted:
        try:
            written = _commit(cur, candidates, dead, rules, identity, known)
        except ENVIRONMENT_ERRORS:
            raise
        except Exception as exc:  # some event's content: store the others (module docstring)
            log.warning("group commit of %d events and %d dead letters failed (%s: %s); storing it in parts",
                        len(candidates), len(dead), type(exc).__name__, _first_line(exc))
            position, known.position = known.position, None  # saved once every part is stored
            try:
                written = _isolate(cur, [*candidates, *dead], rules, identity, known)
            finally:
                known.position = position
            if position is not None:
                cur.execute("BEGIN TRANSACTION")
                save_position(cur, position)
                cur.execute("COMMIT")
        else:
            _remember(known, written)
    late = {d.message_id: d.reason for d in written.late_dead}
    for i, it in enumerate(items):
        if outcomes[i] is not None:
            continue
        assert isinstance(it, Accepted)
        mid = it.event.message_id
        if first.get(mid) == i and mid in written.stored:
            outcomes[i] = Outcome(mid, "stored")
        elif first.get(mid) == i and mid in late:
            outcomes[i] = Outcome(mid, "rejected", late[mid])
        else:
            outcomes[i] = Outcome(mid, "duplicate")
    return outcomes  # type: ignore[return-value]


def _duplicate_key(exc: duckdb.Error) -> bool:
    """Whether ``exc`` is a primary-key violation, raised by the ``INSERT`` (``ConstraintException``)
    or, when DuckDB defers the check, by the ``COMMIT`` (``TransactionException``)."""
    text = str(exc).lower()
    return isinstance(exc, duckdb.ConstraintException | duckdb.TransactionException) and (
        "duplicate key" in text or "primary key" in text or "unique constraint" in text)


def _commit(cur: duckdb.DuckDBPyConnection, candidates: list[Accepted], dead: list[Rejected], rules: Any,
            identity: Identity, known: Known) -> Written:
    """Store ``candidates`` and ``dead`` in one transaction; an event already in ``events`` but no
    longer among the recent ids (an old retry) makes the transaction fail on the primary key: it
    is redone without the stored events."""
    try:
        return _transaction(cur, candidates, dead, rules, identity, known)
    except duckdb.Error as exc:
        if not _duplicate_key(exc):
            raise
    present = _present(cur, [a.event.message_id for a in candidates])
    candidates = [a for a in candidates if a.event.message_id not in present]
    return _transaction(cur, candidates, dead, rules, identity, known)


def _remember(known: Known, written: Written) -> None:
    """Record what a committed transaction stored in the writer's memory."""
    known.recent.add_all(written.stored)
    known.orders.add(written.order_keys)


def _first_line(exc: BaseException, width: int = 200) -> str:
    text = str(exc).strip()
    text = text.splitlines()[0] if text else ""
    return text if len(text) <= width else text[:width - 3] + "..."


def _isolate(cur: duckdb.DuckDBPyConnection, items: list[Accepted | Rejected], rules: Any, identity: Identity,
             known: Known) -> Written:
    """Store ``items`` (a group whose transaction failed on some item's content) part by part: a
    part that fails is halved, in order, until single items remain. An event that fails alone
    becomes a dead letter naming the error (listed in ``late_dead``, so its outcome is
    ``rejected``); a dead letter that fails alone is stored again without its payload, and
    dropped (logged) if even that fails. Each committed part is remembered at once (a later part
    must see its orders). Raises :data:`ENVIRONMENT_ERRORS` (what was committed stays committed).

    A group of ``n`` items with ``k`` culprits takes about ``2 k log2 n`` transactions."""
    out = Written()
    parts: deque[list[Accepted | Rejected]] = deque([items])
    while parts:
        part = parts.popleft()
        accepted = [it for it in part if isinstance(it, Accepted)]
        dead = [it for it in part if isinstance(it, Rejected)]
        try:
            written = _commit(cur, accepted, dead, rules, identity, known)
        except ENVIRONMENT_ERRORS:
            raise
        except Exception as exc:
            if len(part) > 1:
                half = len(part) // 2
                parts.extendleft([part[half:], part[:half]])
            elif accepted:
                culprit = _unstorable(accepted[0], exc)
                out.late_dead.append(culprit)
                parts.appendleft([culprit])
            elif dead[0].payload is not None:
                parts.appendleft([replace(dead[0], payload=None)])
            else:
                log.error("dead letter %s could not be stored (%s: %s); dropped", dead[0].dead_letter_id,
                          type(exc).__name__, _first_line(exc))
            continue
        _remember(known, written)
        out.stored |= written.stored
        out.late_dead += written.late_dead
        out.order_keys += written.order_keys
    return out


def _unstorable(item: Accepted, exc: BaseException) -> Rejected:
    """The dead letter of an event that could not be stored alone, naming the error."""
    e = item.event
    reason = f"event could not be stored ({type(exc).__name__}: {_first_line(exc, 160)})"
    log.warning("event %s could not be stored, kept as a dead letter: %s", e.message_id, reason)
    return dead_letter(e.received_at, e.message_id, fallback_customer(e), e.type, e.event, reason, e.payload)


def _transaction(cur: duckdb.DuckDBPyConnection, accepted: list[Accepted], dead: list[Rejected], rules: Any,
                 identity: Identity, known: Known) -> Written:
    cur.execute("BEGIN TRANSACTION")
    try:
        written = _write(cur, accepted, rules, identity, known)
        _insert_dead(cur, dead + written.late_dead, rules, identity)
        if known.dropped or known.lifted:
            record_suppressed(cur, known.dropped, known.lifted, datetime.now(UTC).date())
        if known.position is not None:
            save_position(cur, known.position)
        cur.execute("COMMIT")
    except BaseException:
        if known.triggers is not None:
            known.triggers.rolled_back()
        _rollback(cur)
        identity.reset()  # the in-memory graph holds the rolled-back links
        known.suppressed.reset()  # and the suppression list the group's lifts (recorded by the retry)
        raise
    known.dropped, known.lifted = 0, []
    if known.triggers is not None:
        known.triggers.committed()
    return written


def _rollback(cur: duckdb.DuckDBPyConnection) -> None:
    try:
        cur.execute("ROLLBACK")
    except duckdb.Error:  # no transaction left to roll back (a failed COMMIT ends it)
        pass


def _present(cur: duckdb.DuckDBPyConnection, ids: list[str]) -> set[str]:
    """Which of ``ids`` ``events`` already holds (a scan: the rare path of an old retry)."""
    if not ids:
        return set()
    _probe = pa.table({"message_id": pa.array(ids, pa.string())})  # read by the replacement scan
    return {r[0] for r in cur.execute(
        "SELECT e.message_id FROM events e SEMI JOIN _probe p ON p.message_id = e.message_id").fetchall()}


def _insert(cur: duckdb.DuckDBPyConnection, sql: str, columns: dict[str, pa.Array]) -> None:
    """Run ``sql``, in which ``_rows`` is an Arrow table of ``columns``. DuckDB reads the table
    through its replacement scan of this frame's local (no view registered and dropped: about
    1 ms less per statement than ``register``/``unregister``)."""
    _rows = pa.table(columns)  # read by DuckDB's replacement scan
    cur.execute(sql)


def _text(values: list[Any]) -> pa.Array:
    return pa.array(values, pa.string())


def _times(values: list[Any]) -> pa.Array:
    return pa.array(values, pa.timestamp("us"))


def _floats(values: list[Any]) -> pa.Array:
    return pa.array(values, pa.float64())


def _write(cur: duckdb.DuckDBPyConnection, accepted: list[Accepted], rules: Any, identity: Identity,
           known: Known) -> Written:
    """Insert ``accepted`` (all assumed new) and what they map to."""
    if not accepted:
        return Written()
    accepted, late_dead = check_refunds(cur, accepted, known.orders)
    if not accepted:
        return Written(late_dead=late_dead)
    resolved = identity.resolve(cur, accepted)
    cust = resolved.customer_of
    evs = [a.event for a in accepted]
    _insert(cur, f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) SELECT * FROM _rows", {
        "message_id": _text([e.message_id for e in evs]),
        "type": _text([e.type for e in evs]),
        "event": _text([e.event for e in evs]),
        "customer_id": _text([cust[e.message_id] for e in evs]),
        "user_id": _text([e.user_id for e in evs]),
        "anonymous_id": _text([e.anonymous_id for e in evs]),
        "previous_id": _text([e.previous_id for e in evs]),
        "group_id": _text([e.group_id for e in evs]),
        "occurred_at": _times([e.occurred_at for e in evs]),
        "sent_at": _times([e.sent_at for e in evs]),
        "received_at": _times([e.received_at for e in evs]),
        "payload": _text([e.payload for e in evs]),
    })
    keys = _write_transactions(cur, accepted, cust, known.orders)
    _write_contacts(cur, accepted, cust)
    _write_ledgers(cur, accepted, cust)
    _write_customers(cur, accepted, cust)
    if known.triggers is not None:  # trigger firings, in the transaction of the events that cause them
        known.triggers.fire(cur, accepted, cust, keys)
    return Written({e.message_id for e in evs}, late_dead, keys)


# --- transactions ------------------------------------------------------------------------------


def _stored_orders(cur: duckdb.DuckDBPyConnection, index: KeyIndex, order_ids: list[str]) -> set[str]:
    """Which of ``order_ids`` ``transactions`` holds. Only ids the index may hold are looked up."""
    if not order_ids:
        return set()
    suspects = [o for o, maybe in zip(order_ids, index.might_hold(cur, order_ids), strict=True) if maybe]
    if not suspects:
        return set()
    lst = ", ".join(DUCKDB.literal(o) for o in sorted(set(suspects)))
    return {r[0] for r in cur.execute(
        f"SELECT DISTINCT order_id FROM transactions WHERE order_id IN ({lst})").fetchall()}


_TX_SQL = """INSERT INTO transactions (customer_id, order_id, occurred_at, amount, currency, channel, category,
  discount, margin, ingest_id) SELECT * FROM _rows"""

_REFUND_SQL = """INSERT INTO transactions (customer_id, order_id, occurred_at, amount, currency, channel, category,
  discount, margin, ingest_id)
SELECT coalesce(o.customer_id, r.customer_id), r.refund_key, r.occurred_at, coalesce(r.amount, -abs(o.amount)),
  coalesce(r.currency, o.currency), o.channel, o.category, NULL, NULL, r.ingest_id
FROM _rows r
LEFT JOIN (SELECT order_id, any_value(customer_id) AS customer_id, any_value(amount) AS amount,
           any_value(currency) AS currency, any_value(channel) AS channel, any_value(category) AS category
           FROM transactions WHERE amount >= 0 AND order_id IN ({orders}) GROUP BY order_id) o
  ON o.order_id = r.order_id"""


def _write_transactions(cur: duckdb.DuckDBPyConnection, accepted: list[Accepted], cust: dict[str, str],
                        index: KeyIndex) -> list[str]:
    """Insert the group's orders whose ``order_id`` is not stored yet (the first event of an order
    wins), then its refunds (one row per refund key, beside the order). Returns the keys inserted."""
    orders: dict[str, tuple[Any, ...]] = {}
    for a in accepted:
        for t in a.mapped.transactions:
            orders.setdefault(t[1], t)
    refunds: dict[str, tuple[Any, ...]] = {}
    for a in accepted:
        for r in a.mapped.refunds:
            refunds.setdefault(r[1], r)
    if not orders and not refunds:
        return []
    keys = list(orders) + [k for k in refunds if k not in orders]
    stored = _stored_orders(cur, index, keys)
    rows = [t for k, t in orders.items() if k not in stored]
    if rows:
        _insert(cur, _TX_SQL, {
            "customer_id": _text([cust[r[0]] for r in rows]),
            "order_id": _text([r[1] for r in rows]),
            "occurred_at": _times([r[2] for r in rows]),
            "amount": _floats([r[3] for r in rows]),
            "currency": _text([r[4] for r in rows]),
            "channel": _text([r[5] for r in rows]),
            "category": _text([r[6] for r in rows]),
            "discount": _floats([r[7] for r in rows]),
            "margin": _floats([r[8] for r in rows]),
            "ingest_id": _text([r[0] for r in rows]),
        })
    refund_rows = [r for k, r in refunds.items() if k not in stored and k not in orders]
    if refund_rows:
        originals = ", ".join(DUCKDB.literal(o) for o in sorted({r[2] for r in refund_rows}))
        _insert(cur, _REFUND_SQL.format(orders=originals), {
            "customer_id": _text([cust[r[0]] for r in refund_rows]),
            "refund_key": _text([r[1] for r in refund_rows]),
            "order_id": _text([r[2] for r in refund_rows]),
            "occurred_at": _times([r[3] for r in refund_rows]),
            "amount": _floats([r[4] for r in refund_rows]),
            "currency": _text([r[5] for r in refund_rows]),
            "ingest_id": _text([r[0] for r in refund_rows]),
        })
    return [r[1] for r in rows] + [r[1] for r in refund_rows]


# --- contacts, ledgers, customers -------------------------------------------------------------


def _write_contacts(cur: duckdb.DuckDBPyConnection, accepted: list[Accepted], cust: dict[str, str]) -> None:
    rows = [c for a in accepted for c in a.mapped.contacts]
    if not rows:
        return
    _insert(cur, "INSERT INTO contacts (contact_id, customer_id, occurred_at, channel, campaign_id, kind, "
            "in_holdout, ingest_id) SELECT * FROM _rows", {
                "contact_id": _text([r[1] for r in rows]),
                "customer_id": _text([cust[r[0]] for r in rows]),
                "occurred_at": _times([r[2] for r in rows]),
                "channel": _text([r[3] for r in rows]),
                "campaign_id": _text([r[4] for r in rows]),
                "kind": _text([r[5] for r in rows]),
                "in_holdout": pa.array([r[6] for r in rows], pa.bool_()),
                "ingest_id": _text([r[0] for r in rows]),
            })


def _write_ledgers(cur: duckdb.DuckDBPyConnection, accepted: list[Accepted], cust: dict[str, str]) -> None:
    """Append the consent and preference records of the group's events (key and ``ingest_id``: the
    messageId), on the person identity resolution gave each event."""
    for kind in ("consents", "preferences"):
        insert_records(cur, kind, [(cust[mid], mid, rec) for a in accepted for mid, rec in getattr(a.mapped, kind)])


_CUSTOMERS_SQL = """MERGE INTO customers USING _rows u ON customers.customer_id = u.customer_id
WHEN MATCHED THEN UPDATE SET first_seen = u.first_seen, attributes = u.attributes,
  ingest_id = coalesce(u.ingest_id, customers.ingest_id)
WHEN NOT MATCHED THEN INSERT (customer_id, first_seen, attributes, ingest_id)
  VALUES (u.customer_id, u.first_seen, u.attributes, u.ingest_id)"""


def _write_customers(cur: duckdb.DuckDBPyConnection, accepted: list[Accepted], cust: dict[str, str]) -> None:
    """Upsert ``customers`` from identify traits: ``first_seen`` the earliest identify, traits merged
    in event time order (:func:`~patron.service.mapping.merge_traits`). One ``SELECT`` of the
    persons' stored rows, one ``MERGE``."""
    ids = [a for a in accepted if a.mapped.traits is not None]
    if not ids:
        return
    people = sorted({cust[a.event.message_id] for a in ids})
    lst = ", ".join(DUCKDB.literal(p) for p in people)
    state: dict[str, list[Any]] = {}
    for cid, first_seen, attributes in cur.execute(
            f"SELECT customer_id, first_seen, attributes FROM customers WHERE customer_id IN ({lst})").fetchall():
        try:
            attrs = json.loads(attributes) if attributes else {}
        except ValueError:
            attrs = {}
        state[cid] = [first_seen, attrs if isinstance(attrs, dict) else {}, None]
    for a in sorted(ids, key=lambda a: a.event.occurred_at):
        e = a.event
        cid = cust[e.message_id]
        st = state.setdefault(cid, [None, {}, None])
        st[0] = e.occurred_at if st[0] is None else min(st[0], e.occurred_at)
        new_wins = e.user_id is not None or not is_known(cid)
        st[1] = merge_traits(st[1], a.mapped.traits or {}, new_wins=new_wins)
        st[2] = e.message_id
    _insert(cur, _CUSTOMERS_SQL, {
        "customer_id": _text(list(state)),
        "first_seen": _times([v[0] for v in state.values()]),
        "attributes": _text([dumps(v[1]) for v in state.values()]),
        "ingest_id": _text([v[2] for v in state.values()]),
    })


def _insert_dead(cur: duckdb.DuckDBPyConnection, dead: list[Rejected], rules: Any, identity: Identity) -> None:
    if not dead:
        return
    rows = [replace(d, customer_id=identity.person_of(cur, d.payload, rules) or d.customer_id)
            for d in {d.dead_letter_id: d for d in dead}.values()]
    _insert(cur, "INSERT INTO dead_letters SELECT * FROM _rows ON CONFLICT DO NOTHING", {
        "dead_letter_id": _text([d.dead_letter_id for d in rows]),
        "received_at": _times([d.received_at for d in rows]),
        "message_id": _text([d.message_id for d in rows]),
        "customer_id": _text([d.customer_id for d in rows]),
        "type": _text([d.type for d in rows]),
        "event": _text([d.event for d in rows]),
        "reason": _text([d.reason for d in rows]),
        "payload": _text([d.payload for d in rows]),
    })

