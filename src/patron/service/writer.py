"""The single writer: one thread makes every change to event-fed tables, in group commits.

Request handlers ``await writer.submit(items)``: the items go to the journal
(:mod:`patron.service.journal`), an append-only log that one thread writes with one ``write``
and one ``fdatasync`` per group of requests; once durable there they are queued for the writer,
in journal order, and the requests are answered. The writer thread takes everything queued (up to
:data:`MAX_GROUP_EVENTS` events) and stores it in **one** transaction under
``state.lock.shared()`` (:func:`patron.service.commit.store`: identity resolution, one statement
per table, the journal position applied, ``COMMIT``).

Group commit adapts to the load. When the writer is idle (no commit in the last
:data:`IDLE_AFTER_S`), a group is committed at once. While a commit is in flight, records queue
up and the next commit takes them all. Under load the writer also waits up to ``[service]
commit_interval_ms`` (default 2) for more events when the queue holds fewer than the previous
group did.

Durability. A 2xx is sent only after the journal's ``fdatasync`` returned, so an acknowledged
event survives a crash of the process or of the machine: on the next start the records after the
position stored in the database are applied again, in order (the position is saved in the same
transaction as the rows, and a record applied twice is recognised by its messageIds). A group
whose commit fails (I/O, memory) is kept and tried again every :data:`RETRY_S`: it was
acknowledged. A journal write that fails answers :class:`WriteFailed` (503, which SDKs retry).
Items whose outcome the database decides (a refund needs its stored order) are answered after
their commit, with that outcome; :meth:`Writer.submit_sync` always waits for the commit.

Reads see their writes. :meth:`Writer.wait_applied` waits until every event acknowledged before
the call is applied; :meth:`patron.service.state.ServiceState.reading` and
:func:`patron.data.store.connect` (in the service's process) call it, so an answer is never
followed by a read that misses its events. The wait is at most a group commit under steady load
(benchmarks/README.md, "bench_service.py").

Jobs. :meth:`Writer.run` runs any function on the writer thread in its own transaction (key
changes); afterwards the in-memory identity graph and order index are read again, since the job
may have changed the tables.

Garbage collector. The writer holds large long-lived structures (the identity graph, recent
messageIds), and under load every request promotes short-lived objects to the oldest generation,
so CPython ran a full collection about once a second, each a pause of ~90 ms for the whole
process (measured on the 2-core bench machine: the main cause of p99 spikes). After start-up and
then every :data:`FREEZE_EVERY_S` the writer collects once and moves every surviving object to
the permanent generation (``gc.freeze()``): later collections only look at newer objects (a full
collection then takes 8-18 ms). Objects frozen are still freed when their last reference goes;
only a reference cycle that was alive at the freeze and dies later is never reclaimed.

Between two freezes the objects that live longest are the journaled items waiting to be applied
(up to :data:`MAX_BACKLOG_EVENTS` events: an ``Accepted``, its ``Event``, ``Mapped`` and six
lists each; 263,000 objects in the oldest generation at the end of a
``bench_event_path.py --endpoint batch`` run), and CPython's default (a full collection every
10 collections of the middle generation) traversed them 7 times in 30,000 batch events: 0.7 s
of 4 s of the process's CPU. While it runs, the writer raises that 10 to
:data:`FULL_COLLECTION_EVERY` (one full collection in the same run, 0.14 s); the freeze every
:data:`FREEZE_EVERY_S` still collects everything, so a cycle waits at most that long. The
previous thresholds come back when the writer stops.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import duckdb

from patron.data.store import before_served_read
from patron.service.commit import Identity, Known, store
from patron.service.event_tables import create_event_tables
from patron.service.items import Accepted, Item, Outcome
from patron.service.journal import Journal, Record, journal_dir, read_position
from patron.service.known import RecentIds

if TYPE_CHECKING:  # pragma: no cover
    from patron.service.state import ServiceState

log = logging.getLogger("patron.service.writer")
T = TypeVar("T")

MAX_GROUP_EVENTS: int = 5000
"""Most events committed in one transaction (a larger backlog is split into several groups)."""

MAX_BACKLOG_EVENTS: int = 50_000
"""Most journaled events waiting to be applied: beyond it the journal thread waits before it
acknowledges more (clients slow down instead of the backlog growing without bound)."""

WAIT_APPLIED_S: float = 10.0
"""Longest a read waits for the events acknowledged before it to be applied (then it reads what
is applied: a writer that cannot commit must not stop every read)."""

RETRY_S: float = 1.0
"""Pause before a journaled group whose commit failed (the database, not the events) is tried
again: it is acknowledged, so it is never dropped."""

IDLE_AFTER_S: float = 0.05
"""A writer that finished its last commit longer ago than this is idle: it commits at once."""

FREEZE_EVERY_S: float = 60.0
"""Seconds between two ``gc.freeze()`` of the writer (module docstring)."""

FULL_COLLECTION_EVERY: int = 100
"""Collections of the middle generation between two full collections while the writer runs
(``gc.set_threshold``'s third value; CPython's default is 10): module docstring."""



class WriteFailed(Exception):
    """The group holding this request's events could not be committed (nothing of it is stored)."""


@dataclass(slots=True)
class _Submission:
    """Items waiting for the next group commit, and where to send their outcomes: an asyncio
    future on ``loop``, or a ``concurrent.futures`` future when ``loop`` is None."""

    items: list[Item]
    future: asyncio.Future[list[Outcome]] | concurrent.futures.Future[list[Outcome]] | None
    loop: asyncio.AbstractEventLoop | None
    seq: int = 0
    """The submission's journal record (0: not journaled); no future: acknowledged by the journal."""


@dataclass(slots=True)
class _Job:
    fn: Callable[[duckdb.DuckDBPyConnection], Any]
    future: concurrent.futures.Future[Any]
    people: bool = True
    """Whether the job may change persons or orders (the writer then reads them again)."""


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
        self._last_group = 0
        self._last_end = 0.0
        self._frozen_at = 0.0
        self.identity = Identity(state.rules)
        self.known = Known()
        self.commits = 0
        """Transactions committed (groups and jobs), for tests and benchmarks."""
        self.journal: Journal | None = None
        self.applied = 0
        """Last journal record applied to the database (committed)."""
        self._applied_cond = threading.Condition()
        self._replay: list[Record] = []
        self._urgent = 0  # readers waiting for the writer (wait_applied)
        self._urgent_subs = 0  # queued submissions whose sender waits for their commit
        self._last_start = 0.0
        self._thresholds: tuple[int, int, int] | None = None  # the GC's, while raised (module docstring)

    @property
    def recent(self) -> RecentIds:
        """The messageIds of the latest stored events."""
        return self.known.recent

    # -- life cycle --
    def start(self) -> None:
        """Create the event tables, read what the writer remembers and the journal's records not
        applied yet (:mod:`patron.service.journal`), start the writer and journal threads. The
        records read are applied after :meth:`replay`."""
        with self.state.lock.shared():
            cur = self._cursor()
            create_event_tables(cur)
            journal_id, self.applied = read_position(cur)
            self.identity.ensure(cur)
            self.identity.enter_file_customers(cur)
            self.identity.resolver.load(cur)
            self.known.load(cur)
        self.journal = Journal(journal_dir(self.state.db), journal_id)
        self._replay = [(seq, items, None) for seq, items in self.journal.recover(self.applied)]
        if self._replay:
            log.info("%d journal records after position %d are applied again", len(self._replay), self.applied)
        self.journal.deliver = self._deliver
        self.journal.acknowledge = self._acknowledge
        before_served_read(self.state.db, self.wait_applied)  # patron.data.store.connect in this process
        self._freeze()
        if self._thresholds is None:
            self._thresholds = gc.get_threshold()
            gc.set_threshold(self._thresholds[0], self._thresholds[1], FULL_COLLECTION_EVERY)
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="patron-writer", daemon=True)
        self._thread.start()
        self.journal.start()

    def replay(self) -> None:
        """Queue the journal records that were not applied when the service stopped (a crash), in
        order, ahead of any new one. Called once the triggers are installed, so they fire on
        them."""
        records, self._replay = self._replay, []
        if records:
            self._deliver(records, backlog=False)

    def stop(self) -> None:
        """Write and apply what is queued, then stop the threads."""
        if self.journal is not None:
            self.journal.stop()
            self.replay()  # a service stopped before replay(): its records stay for the next start
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.journal is not None:
            self.journal.prune()
            before_served_read(self.state.db, None)
        if self._thresholds is not None:
            gc.set_threshold(*self._thresholds)
            self._thresholds = None
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
        identity graph and order index are read again (the job may have rewritten them)."""
        self._cur = None
        self.identity.reset()
        self.known.tables_changed()

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
            if isinstance(entry, _Submission) and entry.future is not None:
                self._urgent_subs += 1
            self._cond.notify_all()

    async def submit(self, items: list[Item], *, payload: bytes | None = None) -> list[Outcome]:
        """Store ``items`` (accepted events and dead letters); returns one :class:`Outcome` per
        item, in order, once they are durable in the journal: ``stored`` for an accepted event
        (a retry is recognised when applied, and answered the same), ``rejected`` for a dead
        letter. Items whose outcome only the database can tell (a refund needs its order) are
        answered once applied, with their real outcome. ``payload``: ``items`` pickled already
        (an acceptor's submission), written to the journal as is. Raises :class:`WriteFailed`
        when the journal could not be written or the service is stopping."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[list[Outcome]] = loop.create_future()
        self._append(_Submission(items, fut, loop), wait=_needs_database(items), payload=payload)
        return await fut

    def submit_sync(self, items: list[Item], timeout: float | None = None) -> list[Outcome]:
        """:meth:`submit` for a thread without an event loop; blocks until the items are applied
        and returns their real outcomes (``duplicate``, ``rejected`` at commit time, ...)."""
        cf: concurrent.futures.Future[list[Outcome]] = concurrent.futures.Future()
        self._append(_Submission(items, cf, None), wait=True)
        return cf.result(timeout)

    def _append(self, sub: _Submission, *, wait: bool, payload: bytes | None = None) -> None:
        if self.journal is None:  # not started: straight to the queue (tests of the writer alone)
            self._put(sub, len(sub.items))
            return
        try:
            self.journal.append(sub.items, (sub, wait), payload)
        except RuntimeError as exc:
            raise WriteFailed("the service is shutting down: retry later") from exc

    def _deliver(self, records: list[Record], *, backlog: bool = True) -> None:
        """Journal thread: queue durable records for the writer, in order (waits while the
        backlog is over :data:`MAX_BACKLOG_EVENTS`)."""
        if backlog:
            with self._cond:
                while self._queued_events > MAX_BACKLOG_EVENTS and self._thread is not None:
                    self._cond.wait(0.05)
        with self._cond:
            for seq, items, tag in records:
                if tag is None:
                    sub = _Submission(items, None, None, seq)
                else:
                    sub, wait = tag
                    sub.seq = seq
                    if not wait:
                        sub = _Submission(items, None, None, seq)
                self._queue.append(sub)
                self._queued_events += len(items)
                if sub.future is not None:
                    self._urgent_subs += 1
            self._cond.notify_all()

    def _acknowledge(self, records: list[Record], exc: BaseException | None) -> None:
        """Journal thread: answer the submissions that wait only for the journal."""
        results: list[tuple[_Submission, list[Outcome] | BaseException]] = []
        for _, items, tag in records:
            if tag is None:
                continue
            sub, wait = tag
            if exc is not None:
                results.append((sub, WriteFailed(f"could not store the events ({type(exc).__name__}): retry later")))
            elif not wait:
                results.append((sub, [_journaled(it) for it in items]))
        _answer(results)

    def wait_applied(self, timeout: float = WAIT_APPLIED_S) -> bool:
        """Wait until every event acknowledged so far is applied to the database (read-your-writes
        for the API's readers); False when ``timeout`` passed first. Returns at once on the writer
        thread and before the journal runs."""
        journal = self.journal
        if journal is None or threading.current_thread() is self._thread:
            return True
        target = journal.durable
        if self.applied >= target:
            return True
        with self._cond:  # the writer commits at once while someone waits
            self._urgent += 1
            self._cond.notify_all()
        try:
            with self._applied_cond:
                return self._applied_cond.wait_for(lambda: self.applied >= target or self._thread is None, timeout)
        finally:
            with self._cond:
                self._urgent -= 1

    def _job_future(self, fn: Callable[[duckdb.DuckDBPyConnection], T], people: bool = True,
                    ) -> concurrent.futures.Future[T]:
        cf: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._put(_Job(fn, cf, people))
        return cf

    def run(self, fn: Callable[[duckdb.DuckDBPyConnection], T], *, people: bool = True) -> T:
        """Run ``fn(con)`` on the writer thread inside its own transaction (committed when ``fn``
        returns, rolled back when it raises) and return its result (or raise its exception).
        ``people=False`` promises that ``fn`` changes no person, identifier or order (the outbox
        of :mod:`patron.service.dialogue`): the identity graph and order index are then kept
        instead of being read again (a reload costs tens of ms)."""
        if threading.current_thread() is self._thread:
            return fn(self._cursor())  # already inside the writer's transaction
        return self._job_future(fn, people).result()

    async def arun(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """:meth:`run` for coroutines."""
        return await asyncio.wrap_future(self._job_future(fn))

    # -- the thread --
    def _take(self) -> list[_Submission] | _Job | None:
        """Wait for work; return a job, or the queued submissions (at most MAX_GROUP_EVENTS events
        unless one submission is larger), or None when stopping with nothing queued."""
        interval = self.state.rules.commit_interval_ms / 1000.0
        with self._cond:
            while not self._queue and not self._stopping:
                self._cond.wait()
            if not self._queue:
                return None
            if (interval > 0 and not self._stopping and isinstance(self._queue[0], _Submission)
                    and self._queued_events < self._last_group
                    and time.monotonic() - self._last_end < IDLE_AFTER_S):
                # Busy, and fewer events than last time: wait a little for the rest of the crowd.
                deadline = time.monotonic() + interval
                while self._queued_events < min(self._last_group, MAX_GROUP_EVENTS) and not self._stopping:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
            if (isinstance(self._queue[0], _Submission) and not self._stopping and not self._urgent
                    and not self._urgent_subs):
                # Acknowledged already: gather a bigger group, unless someone waits for it.
                deadline = self._last_start + self.state.rules.apply_interval_ms / 1000.0
                while (not self._stopping and not self._urgent and not self._urgent_subs
                       and self._queued_events < MAX_GROUP_EVENTS and isinstance(self._queue[0], _Submission)):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
            head = self._queue[0]
            if isinstance(head, _Job):
                self._queue.popleft()
                return head
            taken: list[_Submission] = []
            n = 0
            while self._queue and isinstance(self._queue[0], _Submission) and (not taken or n < MAX_GROUP_EVENTS):
                sub = self._queue.popleft()
                assert isinstance(sub, _Submission)
                n += len(sub.items)
                taken.append(sub)
                if sub.future is not None:
                    self._urgent_subs -= 1
            self._queued_events -= n
            self._cond.notify_all()  # the journal may wait for the backlog to shrink
            self._last_group = n
            return taken

    def _loop(self) -> None:
        while True:
            work = self._take()
            if work is None:
                return
            if isinstance(work, _Job):
                self._run_job(work)
            elif not self._commit_group(work):
                with self._cond:  # acknowledged: try again later, first (RETRY_S)
                    self._queue.extendleft(reversed(work))
                    self._queued_events += sum(len(s.items) for s in work)
                    self._urgent_subs += sum(s.future is not None for s in work)
                    if self._stopping:
                        log.error("stopping with %d journaled events not applied: applied on the next start",
                                  self._queued_events)
                        return
                    self._cond.wait(RETRY_S)
            else:
                self._last_end = time.monotonic()
            if time.monotonic() - self._frozen_at > FREEZE_EVERY_S:
                self._freeze()

    def _freeze(self) -> None:
        """Collect, then move the surviving objects out of later collections (module docstring)."""
        gc.collect()
        gc.freeze()
        self._frozen_at = time.monotonic()

    def _run_job(self, job: _Job) -> None:
        try:
            with self.state.lock.shared(), self.state.changing():
                cur = self._cursor()
                cur.execute("BEGIN TRANSACTION")
                try:
                    result = job.fn(cur)
                    cur.execute("COMMIT")
                except BaseException:
                    try:
                        cur.execute("ROLLBACK")
                    except duckdb.Error:
                        pass
                    raise
                finally:  # a job may have changed persons or orders (erasure, merges, ingest)
                    if job.people:
                        self.identity.reset()
                        self.known.tables_changed()
            self.commits += 1
        except BaseException as exc:
            job.future.set_exception(exc)
            return
        job.future.set_result(result)

    def _commit_group(self, subs: list[_Submission]) -> bool:
        """Store a group; False when a journaled group failed (it is to be tried again)."""
        items = [it for s in subs for it in s.items]
        position = max(s.seq for s in subs)
        self._last_start = time.monotonic()
        t0 = time.perf_counter()
        try:
            with self.state.lock.shared(), self.state.changing():
                self.known.position = position or None
                try:
                    outcomes = store(self._cursor(), items, self.state.rules, self.identity, self.known)
                finally:
                    self.known.position = None
            self.commits += 1
            log.debug("committed %d items from %d requests in %.1f ms", len(items), len(subs),
                      1e3 * (time.perf_counter() - t0))
        except Exception as exc:
            log.exception("group commit of %d items failed", len(items))
            if position:
                return False
            err = WriteFailed(f"could not store the events ({type(exc).__name__}): retry later")
            _answer([(s, err) for s in subs])
            return True
        if position:
            with self._applied_cond:
                self.applied = max(self.applied, position)
                self._applied_cond.notify_all()
            if self.journal is not None:
                self.journal.applied(self.applied)
        results: list[tuple[_Submission, list[Outcome] | BaseException]] = []
        i = 0
        for s in subs:
            if s.future is not None:
                results.append((s, outcomes[i:i + len(s.items)]))
            i += len(s.items)
        _answer(results)
        return True


def _needs_database(items: list[Item]) -> bool:
    """Whether some item's outcome can only be told once applied: a refund (its order must be
    stored, and be the sender's: :mod:`patron.service.refunds`)."""
    return any(isinstance(it, Accepted) and it.mapped.refunds for it in items)


def _journaled(item: Item) -> Outcome:
    """The outcome of an item durable in the journal: an event is ``stored`` (a retry of a stored
    one is recognised when applied: answered the same, as ``duplicate`` is), a dead letter
    ``rejected``."""
    if isinstance(item, Accepted):
        return Outcome(item.event.message_id, "stored")
    return Outcome(item.message_id, "rejected", item.reason)


def _answer(results: list[tuple[_Submission, list[Outcome] | BaseException]]) -> None:
    """Settle every submission's future: one ``call_soon_threadsafe`` per event loop (one wake-up
    of the loop for the whole group, not one per request)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, Any]]] = {}
    for s, result in results:
        if s.future is None:
            continue
        if s.loop is None:
            cf = s.future
            assert isinstance(cf, concurrent.futures.Future)
            if isinstance(result, BaseException):
                cf.set_exception(result)
            else:
                cf.set_result(result)
        else:
            by_loop.setdefault(s.loop, []).append((s.future, result))
    for loop, pairs in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle, pairs)
        except RuntimeError:  # pragma: no cover - the loop closed (shutdown): nobody waits
            pass


def _settle(pairs: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for fut, result in pairs:
        if fut.done():
            continue
        if isinstance(result, BaseException):
            fut.set_exception(result)
        else:
            fut.set_result(result)
