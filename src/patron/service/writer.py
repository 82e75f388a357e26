"""The single writer: one thread makes every change to event-fed tables, in group commits.

Request handlers ``await writer.submit(items)``; the thread takes everything queued (up to
:data:`MAX_GROUP_EVENTS` events) and stores it in **one** transaction under
``state.lock.shared()`` (:func:`patron.service.commit.store`: identity resolution, one statement
per table, ``COMMIT``), then answers every waiter of the group at once.

Group commit adapts to the load. When the writer is idle (no commit in the last
:data:`IDLE_AFTER_S`), a request is committed at once. While a commit is in flight, requests queue
up and the next commit takes them all. Under load the writer also waits up to ``[service]
commit_interval_ms`` (default 2) for more events when the queue holds fewer than the previous
group did: closed-loop clients answered by one commit send their next requests within a few ms,
and without the wait the first of them would go alone (measured with 16 single-event senders:
~520 events/s and p99 ~45 ms without the wait, ~840 events/s and p99 ~33 ms with it, medians
of three alternated runs).

Durability. A 2xx is sent only after ``COMMIT`` returned: DuckDB appends the transaction to its
write-ahead log and calls ``fdatasync`` on it before returning (checked with ``strace`` on DuckDB
2.0: one ``write`` and one ``fdatasync`` per commit), so an acknowledged event survives a crash
of the process or of the machine. A failed commit rolls back and every waiter of the group gets
:class:`WriteFailed` (the API answers 503, which SDKs retry).

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

from patron.service.commit import Identity, Known, store
from patron.service.event_tables import create_event_tables
from patron.service.items import Item, Outcome
from patron.service.known import RecentIds

if TYPE_CHECKING:  # pragma: no cover
    from patron.service.state import ServiceState

log = logging.getLogger("patron.service.writer")
T = TypeVar("T")

MAX_GROUP_EVENTS: int = 5000
"""Most events committed in one transaction (a larger backlog is split into several groups)."""

SMALL_SUBMISSION_EVENTS: int = 100
"""A submission of at most this many events (a single event, an SDK's usual flush) joins the next
group even when larger ones are queued before it, up to :data:`SMALL_EXTRA_EVENTS` such events per
group: a bystander's ``track`` waits for at most the group being committed, never for a backlog
of large batches (issue 18). Order between requests is not a promise of the API (identity
resolution does not depend on it); jobs are never overtaken."""

SMALL_EXTRA_EVENTS: int = 500
"""Most events of small submissions a group takes from behind its last one."""

IDLE_AFTER_S: float = 0.05
"""A writer that finished its last commit longer ago than this is idle: it commits at once."""

FREEZE_EVERY_S: float = 60.0
"""Seconds between two ``gc.freeze()`` of the writer (module docstring)."""



class WriteFailed(Exception):
    """The group holding this request's events could not be committed (nothing of it is stored)."""


@dataclass(slots=True)
class _Submission:
    """Items waiting for the next group commit, and where to send their outcomes: an asyncio
    future on ``loop``, or a ``concurrent.futures`` future when ``loop`` is None."""

    items: list[Item]
    future: asyncio.Future[list[Outcome]] | concurrent.futures.Future[list[Outcome]]
    loop: asyncio.AbstractEventLoop | None


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

    @property
    def recent(self) -> RecentIds:
        """The messageIds of the latest stored events."""
        return self.known.recent

    # -- life cycle --
    def start(self) -> None:
        """Create the event tables, read what the writer remembers, start the writer thread."""
        with self.state.lock.shared():
            cur = self._cursor()
            create_event_tables(cur)
            self.identity.ensure(cur)
            self.identity.enter_file_customers(cur)
            self.identity.resolver.load(cur)
            self.known.load(cur)
        self._freeze()
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
            self._cond.notify()

    async def submit(self, items: list[Item]) -> list[Outcome]:
        """Store ``items`` (accepted events and dead letters) in the next group commit; returns one
        :class:`Outcome` per item, in order, once the group is committed. Raises
        :class:`WriteFailed` when the commit failed."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[list[Outcome]] = loop.create_future()
        self._put(_Submission(items, fut, loop), len(items))
        return await fut

    def submit_sync(self, items: list[Item], timeout: float | None = None) -> list[Outcome]:
        """:meth:`submit` for a thread without an event loop (blocks until committed)."""
        cf: concurrent.futures.Future[list[Outcome]] = concurrent.futures.Future()
        self._put(_Submission(items, cf, None), len(items))
        return cf.result(timeout)

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
            n += self._take_small(taken)
            self._queued_events -= n
            self._last_group = n
            return taken

    def _take_small(self, taken: list[_Submission]) -> int:
        """Move small submissions queued before the first job into ``taken`` (see
        :data:`SMALL_SUBMISSION_EVENTS`); returns their events. Called with the condition held."""
        extra = 0
        rest: deque[_Submission | _Job] = deque()
        while self._queue:
            entry = self._queue.popleft()
            if isinstance(entry, _Job):
                rest.append(entry)
                break
            size = len(entry.items)
            if size <= SMALL_SUBMISSION_EVENTS and extra + size <= SMALL_EXTRA_EVENTS:
                taken.append(entry)
                extra += size
            else:
                rest.append(entry)
        rest.extend(self._queue)
        self._queue = rest
        return extra

    def _loop(self) -> None:
        while True:
            work = self._take()
            if work is None:
                return
            if isinstance(work, _Job):
                self._run_job(work)
            else:
                self._commit_group(work)
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

    def _commit_group(self, subs: list[_Submission]) -> None:
        items = [it for s in subs for it in s.items]
        t0 = time.perf_counter()
        try:
            with self.state.lock.shared(), self.state.changing():
                outcomes = store(self._cursor(), items, self.state.rules, self.identity, self.known)
            self.commits += 1
            log.debug("committed %d items from %d requests in %.1f ms", len(items), len(subs),
                      1e3 * (time.perf_counter() - t0))
        except Exception as exc:
            log.exception("group commit of %d items failed", len(items))
            err = WriteFailed(f"could not store the events ({type(exc).__name__}): retry later")
            _answer([(s, err) for s in subs])
            return
        results: list[tuple[_Submission, list[Outcome] | BaseException]] = []
        i = 0
        for s in subs:
            results.append((s, outcomes[i:i + len(s.items)]))
            i += len(s.items)
        _answer(results)


def _answer(results: list[tuple[_Submission, list[Outcome] | BaseException]]) -> None:
    """Settle every submission's future: one ``call_soon_threadsafe`` per event loop (one wake-up
    of the loop for the whole group, not one per request)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, Any]]] = {}
    for s, result in results:
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
