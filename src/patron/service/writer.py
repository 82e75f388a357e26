"""The single writer: group commit of events, dedup by ``messageId``, dead letters.

One thread owns one DuckDB cursor and makes every change to event-fed tables. Request handlers
``await writer.submit(items)``; the thread drains its queue (waiting at most
``ServiceRules.commit_interval_ms`` for more work, up to :data:`MAX_GROUP_EVENTS` events), and
for the whole group opens **one** transaction under ``state.lock.shared()``:

1. resolves identities of the group's new events (:func:`resolve`; ``patron.identity`` when
   installed) and records merges,
2. inserts the events (Arrow, one ``INSERT``), the rows they map to (transactions, refunds,
   contacts, consents) and customers' traits, and the dead letters,
3. ``COMMIT``, then resolves each waiter's future on its event loop.

Dedup. ``events.message_id`` is the primary key. The group is inserted assuming every event is
new (the key check is an index probe); if a retried event is already stored the insert fails, the
transaction is rolled back and redone with only the events not stored yet (found by a scan of
``events``; retries are rare, so the fast path is the common one). Only newly stored events are
mapped, so a replayed batch changes no table.

Durability. A 2xx is sent only after ``COMMIT`` returned: DuckDB appends the transaction to its
write-ahead log and calls ``fdatasync`` on it before returning (checked with ``strace`` on DuckDB
2.0: one ``write`` and one ``fdatasync`` per commit), so an acknowledged event survives a crash
of the process or of the machine. A failed commit rolls back and every waiter of the group gets
:class:`WriteFailed` (the API answers 503, which SDKs retry).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import itertools
import json
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import duckdb
import pyarrow as pa

from patron.ingest.checks import quote_literal
from patron.service.event_tables import EVENT_COLUMNS, MAX_DEAD_PAYLOAD, create_event_tables
from patron.service.mapping import Mapped, merge_traits
from patron.service.segment import Event, dumps

if TYPE_CHECKING:  # pragma: no cover
    from patron.service.state import ServiceState

log = logging.getLogger("patron.service.writer")
T = TypeVar("T")

MAX_GROUP_EVENTS: int = 5000
"""Most events committed in one transaction (a larger backlog is split into several groups)."""

RECENT_IDS: int = 200_000
"""messageIds of the latest stored events kept in memory to recognise retries (about 20 MB)."""


class WriteFailed(Exception):
    """The group holding this request's events could not be committed (nothing of it is stored)."""


@dataclass(slots=True)
class Accepted:
    """A checked event and the rows it maps to, ready to be stored."""

    event: Event
    mapped: Mapped


@dataclass(slots=True)
class Rejected:
    """A dead letter: an event that cannot be stored, and why."""

    dead_letter_id: str
    received_at: datetime
    message_id: str | None
    customer_id: str | None
    type: str | None
    event: str | None
    reason: str
    payload: str | None


@dataclass(slots=True)
class Outcome:
    """What became of one submitted item: ``stored`` (new), ``duplicate`` (its messageId was
    already stored: nothing changed) or ``rejected`` (kept as a dead letter with ``error``)."""

    message_id: str | None
    status: Literal["stored", "duplicate", "rejected"]
    error: str | None = None


Item = Accepted | Rejected


@dataclass(slots=True)
class _Submission:
    items: list[Item]
    done: Callable[[list[Outcome] | BaseException], None]


@dataclass(slots=True)
class _Job:
    fn: Callable[[duckdb.DuckDBPyConnection], Any]
    done: Callable[[Any, BaseException | None], None]


# --- identity ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Resolved:
    """Person of each new event (``message_id -> customer_id``) and the identity resolution's
    result (``None`` without :mod:`patron.identity`)."""

    customer_of: dict[str, str]
    resolution: Any = None


def _fallback_customer(ev: Event) -> str:
    """``userId``, else ``'anon:' + anonymousId``: the person id identity resolution gives an event
    in the common case, and the best effort for a dead letter."""
    return ev.user_id if ev.user_id is not None else "anon:" + (ev.anonymous_id or ev.message_id)


def is_known(customer_id: str) -> bool:
    """Whether a person id names a person known by a ``userId`` (not an ``anon:`` profile)."""
    return not customer_id.startswith("anon:")


class Identity:
    """The writer's identity resolution: :class:`patron.identity.Resolver` (graph held in memory,
    reset after a rollback or a reopen) inside the writer's transaction."""

    def __init__(self, rules: Any) -> None:
        from patron.identity import Resolver

        self.rules = rules
        self.resolver = Resolver(rules)

    def reset(self) -> None:
        """Forget the in-memory graph (the tables changed behind it: rollback, reopen)."""
        self.resolver.reset()

    def ensure(self, con: duckdb.DuckDBPyConnection) -> None:
        """Create the identity tables."""
        from patron.identity import ensure_tables

        ensure_tables(con)

    def resolve(self, con: duckdb.DuckDBPyConnection, accepted: list[Accepted]) -> Resolved:
        """Resolve the events' identifiers, record links and merges, and make earlier rows follow
        merged persons (``follow_merges``, before the batch's own rows are inserted)."""
        from patron.identity import follow_merges

        mids: list[str] = []
        times: list[datetime] = []
        kinds: list[str] = []
        values: list[str] = []
        for a in accepted:
            e = a.event
            for kind, value in a.mapped.identifiers:
                mids.append(e.message_id)
                times.append(e.occurred_at)
                kinds.append(kind)
                values.append(value)
        obs = pa.table({
            "message_id": pa.array(mids, pa.string()), "occurred_at": pa.array(times, pa.timestamp("us")),
            "kind": pa.array(kinds, pa.string()), "value": pa.array(values, pa.string()),
        })
        res = self.resolver.resolve(con, obs)
        if res.changed:
            follow_merges(con, res)
        found = res.customer_of
        if not isinstance(found, dict):  # a frame with message_id, customer_id
            found = dict(zip(found["message_id"], found["customer_id"], strict=True))
        customer_of = {a.event.message_id: found.get(a.event.message_id) or _fallback_customer(a.event)
                       for a in accepted}
        return Resolved(customer_of, res)


# --- the writer --------------------------------------------------------------------------------


class Writer:
    """Owns every write to event-fed tables, on one thread (module docstring)."""

    def __init__(self, state: ServiceState) -> None:
        self.state = state
        self._cond = threading.Condition()
        self._queue: deque[_Submission | _Job] = deque()
        self._queued_events = 0
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._cur: duckdb.DuckDBPyConnection | None = None
        self.identity = Identity(state.rules)
        self.recent = RecentIds()
        self.commits = 0
        """Transactions committed (groups and jobs), for tests and benchmarks."""

    # -- life cycle --
    def start(self) -> None:
        """Create the event tables and start the writer thread."""
        with self.state.lock.shared():
            cur = self._cursor()
            create_event_tables(cur)
            self.identity.ensure(cur)
            self.recent.load(cur)
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="patron-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Commit what is queued, then stop the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.detach()

    def detach(self) -> None:
        """Close the writer's cursor (the database is about to be closed). Called with the
        state's lock held exclusively, so the writer is between transactions."""
        if self._cur is not None:
            try:
                self._cur.close()
            except duckdb.Error:  # pragma: no cover - already closed with its database
                pass
            self._cur = None

    def attach(self) -> None:
        """Use the (re)opened database: a new cursor is opened on the next transaction, and the
        identity graph is read again (the job may have rewritten it)."""
        self._cur = None
        self.identity.reset()

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        if self._cur is None:
            assert self.state.root is not None, "service database is not open"
            self._cur = self.state.root.cursor()
        return self._cur

    # -- submitting --
    def _put(self, entry: _Submission | _Job, n_events: int = 0) -> None:
        with self._cond:
            if self._stopping or self._thread is None:
                raise WriteFailed("the service is shutting down: retry later")
            self._queue.append(entry)
            self._queued_events += n_events
            self._cond.notify_all()

    async def submit(self, items: list[Item]) -> list[Outcome]:
        """Store ``items`` (accepted events and dead letters) in the next group commit; returns one
        :class:`Outcome` per item, in order, once the group is committed. Raises
        :class:`WriteFailed` when the commit failed."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[list[Outcome]] = loop.create_future()

        def done(result: list[Outcome] | BaseException) -> None:
            loop.call_soon_threadsafe(_settle, fut, result)

        self._put(_Submission(items, done), len(items))
        return await fut

    def submit_sync(self, items: list[Item], timeout: float | None = None) -> list[Outcome]:
        """:meth:`submit` for a thread without an event loop (blocks until committed)."""
        cf: concurrent.futures.Future[list[Outcome]] = concurrent.futures.Future()

        def done(result: list[Outcome] | BaseException) -> None:
            if isinstance(result, BaseException):
                cf.set_exception(result)
            else:
                cf.set_result(result)

        self._put(_Submission(items, done), len(items))
        return cf.result(timeout)

    def _job_future(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> concurrent.futures.Future[T]:
        cf: concurrent.futures.Future[T] = concurrent.futures.Future()

        def done(result: Any, exc: BaseException | None) -> None:
            if exc is not None:
                cf.set_exception(exc)
            else:
                cf.set_result(result)

        self._put(_Job(fn, done))
        return cf

    def run(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run ``fn(con)`` on the writer thread inside its own transaction (committed when ``fn``
        returns, rolled back when it raises) and return its result (or raise its exception)."""
        if threading.current_thread() is self._thread:
            return fn(self._cursor())  # already inside the writer's transaction
        return self._job_future(fn).result()

    async def arun(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """:meth:`run` for coroutines."""
        return await asyncio.wrap_future(self._job_future(fn))

    # -- the thread --
    def _take(self) -> list[_Submission | _Job] | None:
        """Wait for work; gather a group (waiting up to commit_interval_ms for more events)."""
        interval = self.state.rules.commit_interval_ms / 1000.0
        with self._cond:
            while not self._queue and not self._stopping:
                self._cond.wait()
            if not self._queue:
                return None
            if interval > 0 and not self._stopping and isinstance(self._queue[0], _Submission):
                deadline = time.monotonic() + interval
                while self._queued_events < MAX_GROUP_EVENTS and not self._stopping:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
            if isinstance(self._queue[0], _Job):
                return [self._queue.popleft()]
            taken: list[_Submission | _Job] = []
            n = 0
            while self._queue and isinstance(self._queue[0], _Submission) and (not taken or n < MAX_GROUP_EVENTS):
                sub = self._queue.popleft()
                assert isinstance(sub, _Submission)
                n += len(sub.items)
                taken.append(sub)
            self._queued_events -= n
            return taken

    def _loop(self) -> None:
        while True:
            group = self._take()
            if group is None:
                return
            if isinstance(group[0], _Job):
                self._run_job(group[0])  # type: ignore[arg-type]
            else:
                self._commit_group(group)  # type: ignore[arg-type]

    def _run_job(self, job: _Job) -> None:
        try:
            with self.state.lock.shared():
                cur = self._cursor()
                cur.execute("BEGIN TRANSACTION")
                try:
                    result = job.fn(cur)
                    cur.execute("COMMIT")
                except BaseException:
                    _rollback(cur)
                    raise
                finally:
                    self.identity.reset()  # a job may have changed persons (erasure, merges)
            self.commits += 1
        except BaseException as exc:
            job.done(None, exc)
            return
        job.done(result, None)

    def _commit_group(self, subs: list[_Submission]) -> None:
        items = [it for s in subs for it in s.items]
        t0 = time.perf_counter()
        try:
            with self.state.lock.shared():
                outcomes = store(self._cursor(), items, self.state.rules, self.identity, self.recent)
            self.commits += 1
            log.debug("committed %d items from %d requests in %.1f ms", len(items), len(subs),
                      1e3 * (time.perf_counter() - t0))
        except Exception as exc:
            log.exception("group commit of %d items failed", len(items))
            err = WriteFailed(f"could not store the events ({type(exc).__name__}): retry later")
            for s in subs:
                s.done(err)
            return
        i = 0
        for s in subs:
            s.done(outcomes[i:i + len(s.items)])
            i += len(s.items)


def _settle(fut: asyncio.Future[Any], result: Any) -> None:
    if fut.done():
        return
    if isinstance(result, BaseException):
        fut.set_exception(result)
    else:
        fut.set_result(result)


def _rollback(cur: duckdb.DuckDBPyConnection) -> None:
    try:
        cur.execute("ROLLBACK")
    except duckdb.Error:  # no transaction left to roll back
        pass


# --- storing a group ---------------------------------------------------------------------------


def store(cur: duckdb.DuckDBPyConnection, items: list[Item], rules: Any, identity: Identity,
          recent: RecentIds) -> list[Outcome]:
    """Store a group of items in one transaction on ``cur`` and return their outcomes.

    Events whose messageId is in ``recent`` (committed lately) are duplicates; the others are
    inserted assuming they are new; if one is stored already (an old retry), the transaction is
    redone with only the events ``events`` does not hold (module docstring)."""
    outcomes: list[Outcome | None] = [None] * len(items)
    first: dict[str, int] = {}
    candidates: list[Accepted] = []
    dead: list[Rejected] = []
    for i, it in enumerate(items):
        if isinstance(it, Rejected):
            dead.append(it)
            outcomes[i] = Outcome(it.message_id, "rejected", it.reason)
            continue
        mid = it.event.message_id
        if mid in first or mid in recent:
            continue  # a retry, or the same messageId twice in one group: a duplicate
        first[mid] = i
        candidates.append(it)
    cur.execute("BEGIN TRANSACTION")
    try:
        try:
            stored, late_dead = _write(cur, candidates, rules, identity)
        except duckdb.ConstraintException:
            # Some events are already stored (an old retry): redo with only the new ones.
            _rollback(cur)
            identity.reset()
            cur.execute("BEGIN TRANSACTION")
            present = _present(cur, [a.event.message_id for a in candidates])
            stored, late_dead = _write(cur, [a for a in candidates if a.event.message_id not in present],
                                       rules, identity)
        dead_ids = {d.message_id: d.reason for d in late_dead}
        _insert_dead(cur, dead + late_dead)
        cur.execute("COMMIT")
    except BaseException:
        _rollback(cur)
        identity.reset()
        raise
    recent.add_all(stored)
    for i, it in enumerate(items):
        if outcomes[i] is not None:
            continue
        assert isinstance(it, Accepted)
        mid = it.event.message_id
        if first.get(mid) == i and mid in stored:
            outcomes[i] = Outcome(mid, "stored")
        elif first.get(mid) == i and mid in dead_ids:
            outcomes[i] = Outcome(mid, "rejected", dead_ids[mid])
        else:
            outcomes[i] = Outcome(mid, "duplicate")
    return outcomes  # type: ignore[return-value]


class RecentIds:
    """The messageIds of the last ``capacity`` stored events (insertion order), so that retries
    (which come soon after the original) are recognised without touching the table. Loaded from
    ``events`` on start; kept across an erasure, so an SDK retry of an erased person's recent
    event is answered as a duplicate rather than stored again."""

    def __init__(self, capacity: int = RECENT_IDS) -> None:
        self.capacity = capacity
        self._ids: dict[str, None] = {}

    def __contains__(self, mid: object) -> bool:
        return mid in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add_all(self, ids: Iterable[str]) -> None:
        """Remember ``ids``, forgetting the oldest beyond the capacity."""
        d = self._ids
        for mid in ids:
            d[mid] = None
        extra = len(d) - self.capacity
        if extra > 0:
            for mid in list(itertools.islice(d, extra)):
                del d[mid]

    def load(self, con: duckdb.DuckDBPyConnection) -> None:
        """Fill from the latest stored events (by ``received_at``)."""
        rows = con.execute("SELECT message_id FROM events ORDER BY received_at DESC LIMIT ?",
                           [self.capacity]).fetchall()
        self._ids = {}
        self.add_all(r[0] for r in reversed(rows))


def _present(cur: duckdb.DuckDBPyConnection, ids: list[str]) -> set[str]:
    """Which of ``ids`` ``events`` already holds."""
    if not ids:
        return set()
    tbl = pa.table({"message_id": pa.array(ids, pa.string())})
    cur.register("_probe", tbl)
    try:
        return {r[0] for r in cur.execute(
            "SELECT e.message_id FROM events e JOIN _probe p ON p.message_id = e.message_id").fetchall()}
    finally:
        _unregister(cur, "_probe")


def _unregister(cur: duckdb.DuckDBPyConnection, name: str) -> None:
    try:
        cur.unregister(name)
    except duckdb.Error:  # the transaction is aborted: the view goes with the rollback's cleanup
        pass


def _insert_arrow(cur: duckdb.DuckDBPyConnection, name: str, table: pa.Table, sql: str) -> None:
    """Run ``sql``, in which ``name`` stands for the Arrow ``table``. DuckDB reads the table through
    its replacement scan of the caller's local ``_arrow`` (no view registered and dropped: about
    2 ms less per statement than ``register``/``unregister``)."""
    _arrow = table  # read by DuckDB's replacement scan
    cur.execute(re.sub(rf"\b{name}\b", "_arrow", sql))


def _write(cur: duckdb.DuckDBPyConnection, accepted: list[Accepted], rules: Any,
           identity: Identity) -> tuple[set[str], list[Rejected]]:
    """Insert ``accepted`` (all assumed new) and what they map to. Returns the stored messageIds
    and the events rejected at write time (a full refund of an order that is not stored)."""
    if not accepted:
        return set(), []
    accepted, late_dead = _check_refunds(cur, accepted)
    resolved = identity.resolve(cur, accepted)
    cust = resolved.customer_of
    evs = [a.event for a in accepted]
    events = pa.table({
        "message_id": pa.array([e.message_id for e in evs], pa.string()),
        "type": pa.array([e.type for e in evs], pa.string()),
        "event": pa.array([e.event for e in evs], pa.string()),
        "customer_id": pa.array([cust.get(e.message_id) for e in evs], pa.string()),
        "user_id": pa.array([e.user_id for e in evs], pa.string()),
        "anonymous_id": pa.array([e.anonymous_id for e in evs], pa.string()),
        "previous_id": pa.array([e.previous_id for e in evs], pa.string()),
        "group_id": pa.array([e.group_id for e in evs], pa.string()),
        "occurred_at": pa.array([e.occurred_at for e in evs], pa.timestamp("us")),
        "sent_at": pa.array([e.sent_at for e in evs], pa.timestamp("us")),
        "received_at": pa.array([e.received_at for e in evs], pa.timestamp("us")),
        "payload": pa.array([e.payload for e in evs], pa.string()),
    })
    cols = ", ".join(EVENT_COLUMNS)
    _insert_arrow(cur, "_ev", events, f"INSERT INTO events ({cols}) SELECT {cols} FROM _ev")
    _write_transactions(cur, accepted, cust)
    _write_contacts(cur, accepted, cust)
    _write_consents(cur, accepted, cust)
    _write_customers(cur, accepted, resolved)
    return {e.message_id for e in evs}, late_dead


def _check_refunds(cur: duckdb.DuckDBPyConnection, accepted: list[Accepted]) -> tuple[list[Accepted], list[Rejected]]:
    """Full refunds (no amount) need the refunded order: those whose order is neither stored nor in
    this group are rejected."""
    wanted = {r[2] for a in accepted for r in a.mapped.refunds if r[4] is None}
    if not wanted:
        return accepted, []
    in_group = {t[1] for a in accepted for t in a.mapped.transactions}
    lookup = sorted(wanted - in_group)
    found: set[str] = set()
    if lookup:
        lst = ", ".join(quote_literal(o) for o in lookup)
        found = {r[0] for r in cur.execute(
            f"SELECT DISTINCT order_id FROM transactions WHERE order_id IN ({lst}) AND amount >= 0").fetchall()}
    keep: list[Accepted] = []
    dead: list[Rejected] = []
    for a in accepted:
        missing = [r[2] for r in a.mapped.refunds if r[4] is None and r[2] not in found and r[2] not in in_group]
        if missing:
            e = a.event
            reason = f"Order Refunded: properties.total is required (order {missing[0]} is not stored, so its amount is unknown)"
            dead.append(dead_letter(e.received_at, e.message_id, _fallback_customer(e), e.type, e.event, reason, e.payload))
        else:
            keep.append(a)
    return keep, dead


_TX_SQL = """INSERT INTO transactions (customer_id, order_id, occurred_at, amount, currency, channel, category,
  discount, margin, ingest_id)
SELECT customer_id, order_id, occurred_at, amount, currency, channel, category, discount, margin, ingest_id
FROM _tx t WHERE NOT EXISTS (SELECT 1 FROM transactions x WHERE x.order_id = t.order_id)"""

_REFUND_SQL = """INSERT INTO transactions (customer_id, order_id, occurred_at, amount, currency, channel, category,
  discount, margin, ingest_id)
SELECT r.customer_id, r.refund_key, r.occurred_at, coalesce(r.amount, -abs(o.amount)),
  coalesce(r.currency, o.currency), o.channel, o.category, NULL, NULL, r.ingest_id
FROM _rf r
LEFT JOIN (SELECT order_id, any_value(amount) AS amount, any_value(currency) AS currency,
           any_value(channel) AS channel, any_value(category) AS category
           FROM transactions WHERE amount >= 0 AND order_id IN (SELECT order_id FROM _rf) GROUP BY order_id) o
  ON o.order_id = r.order_id
WHERE NOT EXISTS (SELECT 1 FROM transactions x WHERE x.order_id = r.refund_key)"""


def _write_transactions(cur: duckdb.DuckDBPyConnection, accepted: list[Accepted], cust: dict[str, str]) -> None:
    orders: dict[str, tuple[Any, ...]] = {}
    for a in accepted:
        for t in a.mapped.transactions:
            orders.setdefault(t[1], t)  # the first event of an order_id wins
    if orders:
        rows = list(orders.values())
        _insert_arrow(cur, "_tx", pa.table({
            "customer_id": pa.array([cust[r[0]] for r in rows], pa.string()),
            "order_id": pa.array([r[1] for r in rows], pa.string()),
            "occurred_at": pa.array([r[2] for r in rows], pa.timestamp("us")),
            "amount": pa.array([r[3] for r in rows], pa.float64()),
            "currency": pa.array([r[4] for r in rows], pa.string()),
            "channel": pa.array([r[5] for r in rows], pa.string()),
            "category": pa.array([r[6] for r in rows], pa.string()),
            "discount": pa.array([r[7] for r in rows], pa.float64()),
            "margin": pa.array([r[8] for r in rows], pa.float64()),
            "ingest_id": pa.array([r[0] for r in rows], pa.string()),
        }), _TX_SQL)
    refunds: dict[str, tuple[Any, ...]] = {}
    for a in accepted:
        for r in a.mapped.refunds:
            refunds.setdefault(r[1], r)
    if refunds:
        rows = list(refunds.values())
        _insert_arrow(cur, "_rf", pa.table({
            "customer_id": pa.array([cust[r[0]] for r in rows], pa.string()),
            "refund_key": pa.array([r[1] for r in rows], pa.string()),
            "order_id": pa.array([r[2] for r in rows], pa.string()),
            "occurred_at": pa.array([r[3] for r in rows], pa.timestamp("us")),
            "amount": pa.array([r[4] for r in rows], pa.float64()),
            "currency": pa.array([r[5] for r in rows], pa.string()),
            "ingest_id": pa.array([r[0] for r in rows], pa.string()),
        }), _REFUND_SQL)


def _write_contacts(cur: duckdb.DuckDBPyConnection, accepted: list[Accepted], cust: dict[str, str]) -> None:
    rows = [c for a in accepted for c in a.mapped.contacts]
    if not rows:
        return
    _insert_arrow(cur, "_ct", pa.table({
        "contact_id": pa.array([r[1] for r in rows], pa.string()),
        "customer_id": pa.array([cust[r[0]] for r in rows], pa.string()),
        "occurred_at": pa.array([r[2] for r in rows], pa.timestamp("us")),
        "channel": pa.array([r[3] for r in rows], pa.string()),
        "campaign_id": pa.array([r[4] for r in rows], pa.string()),
        "kind": pa.array([r[5] for r in rows], pa.string()),
        "in_holdout": pa.array([r[6] for r in rows], pa.bool_()),
        "ingest_id": pa.array([r[0] for r in rows], pa.string()),
    }), "INSERT INTO contacts (contact_id, customer_id, occurred_at, channel, campaign_id, kind, in_holdout, "
        "ingest_id) SELECT contact_id, customer_id, occurred_at, channel, campaign_id, kind, in_holdout, "
        "ingest_id FROM _ct")


def _write_consents(cur: duckdb.DuckDBPyConnection, accepted: list[Accepted], cust: dict[str, str]) -> None:
    rows = [c for a in accepted for c in a.mapped.consents]
    if not rows:
        return
    _insert_arrow(cur, "_cs", pa.table({
        "consent_id": pa.array([r[1] for r in rows], pa.string()),
        "customer_id": pa.array([cust[r[0]] for r in rows], pa.string()),
        "purpose": pa.array([r[2] for r in rows], pa.string()),
        "channel": pa.array([r[3] for r in rows], pa.string()),
        "status": pa.array([r[4] for r in rows], pa.string()),
        "occurred_at": pa.array([r[5] for r in rows], pa.timestamp("us")),
        "source": pa.array([r[6] for r in rows], pa.string()),
        "lawful_basis": pa.array([r[7] for r in rows], pa.string()),
        "policy_version": pa.array([r[8] for r in rows], pa.string()),
        "expires_at": pa.array([r[9] for r in rows], pa.timestamp("us")),
        "ingest_id": pa.array([r[0] for r in rows], pa.string()),
    }), "INSERT INTO consents (consent_id, customer_id, purpose, channel, status, occurred_at, source, "
        "lawful_basis, policy_version, expires_at, ingest_id) SELECT consent_id, customer_id, purpose, channel, "
        "status, occurred_at, source, lawful_basis, policy_version, expires_at, ingest_id FROM _cs")


def _write_customers(cur: duckdb.DuckDBPyConnection, accepted: list[Accepted], resolved: Resolved) -> None:
    """Upsert ``customers`` from identify traits: ``first_seen`` the earliest identify, traits merged
    in event time order (:func:`~patron.service.mapping.merge_traits`)."""
    ids = [a for a in accepted if a.mapped.traits is not None]
    if not ids:
        return
    cust = resolved.customer_of
    people = sorted({cust[a.event.message_id] for a in ids})
    lst = ", ".join(quote_literal(p) for p in people)
    stored = {r[0]: (r[1], r[2]) for r in cur.execute(
        f"SELECT customer_id, first_seen, attributes FROM customers WHERE customer_id IN ({lst})").fetchall()}
    state: dict[str, list[Any]] = {}
    for cid, (first_seen, attributes) in stored.items():
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
    table = pa.table({
        "customer_id": pa.array(list(state), pa.string()),
        "first_seen": pa.array([v[0] for v in state.values()], pa.timestamp("us")),
        "attributes": pa.array([dumps(v[1]) for v in state.values()], pa.string()),
        "ingest_id": pa.array([v[2] for v in state.values()], pa.string()),
        "known": pa.array([k in stored for k in state], pa.bool_()),
    })
    cur.register("_cu", table)
    try:
        cur.execute("""UPDATE customers SET first_seen = u.first_seen, attributes = u.attributes,
                       ingest_id = coalesce(u.ingest_id, customers.ingest_id)
                       FROM _cu u WHERE u.known AND customers.customer_id = u.customer_id""")
        cur.execute("""INSERT INTO customers (customer_id, first_seen, attributes, ingest_id)
                       SELECT customer_id, first_seen, attributes, ingest_id FROM _cu WHERE NOT known""")
    finally:
        _unregister(cur, "_cu")


def dead_letter(received_at: datetime, message_id: str | None, customer_id: str | None, type_: str | None,
                event: str | None, reason: str, payload: str | None) -> Rejected:
    """A :class:`Rejected` with its ``dead_letter_id`` (hash of messageId or payload, and reason)."""
    basis = message_id if message_id is not None else "payload:" + (payload or "")
    did = hashlib.sha256((basis + "\x1f" + reason).encode()).hexdigest()[:32]
    if payload is not None and len(payload) > MAX_DEAD_PAYLOAD:
        payload = payload[:MAX_DEAD_PAYLOAD]
    return Rejected(did, received_at, message_id, customer_id, type_, event, reason, payload)


def _insert_dead(cur: duckdb.DuckDBPyConnection, dead: list[Rejected]) -> None:
    if not dead:
        return
    uniq = {d.dead_letter_id: d for d in dead}
    rows = list(uniq.values())
    _insert_arrow(cur, "_dl", pa.table({
        "dead_letter_id": pa.array([d.dead_letter_id for d in rows], pa.string()),
        "received_at": pa.array([d.received_at for d in rows], pa.timestamp("us")),
        "message_id": pa.array([d.message_id for d in rows], pa.string()),
        "customer_id": pa.array([d.customer_id for d in rows], pa.string()),
        "type": pa.array([d.type for d in rows], pa.string()),
        "event": pa.array([d.event for d in rows], pa.string()),
        "reason": pa.array([d.reason for d in rows], pa.string()),
        "payload": pa.array([d.payload for d in rows], pa.string()),
    }), "INSERT INTO dead_letters SELECT dead_letter_id, received_at, message_id, customer_id, type, event, "
        "reason, payload FROM _dl ON CONFLICT DO NOTHING")
