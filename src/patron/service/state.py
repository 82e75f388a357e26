"""What a running service holds: the served database, its writer, its keys, its rules.

Concurrency model. DuckDB allows one writing *process* per file and, inside it, many cursors. The
service opens the file once (:func:`patron.data.store.open_served`); the writer thread
(:class:`~patron.service.writer.Writer`) makes every change to event-fed tables; request handlers
read through :meth:`ServiceState.reading` (a cursor and a shared lock). Operations that rewrite the
file (erasure) run under :meth:`ServiceState.exclusive`, which waits for readers and the writer,
closes the database, runs, and reopens it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import duckdb

from patron.data.store import close_served, open_served, served_connection
from patron.service.settings import PreferenceCenterRules, ServiceRules

if TYPE_CHECKING:  # pragma: no cover
    from patron.service.auth import KeyRing
    from patron.service.snapshot import Snapshots
    from patron.service.writer import Writer

T = TypeVar("T")


class SharedLock:
    """A readers-writer lock: many holders of :meth:`shared`, or one of :meth:`exclusive`."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._writer:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            while self._writer:
                self._cond.wait()
            self._writer = True
            while self._readers:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


@dataclass
class ServiceState:
    """The service's handles. Built by :func:`patron.service.app.create_app` on start-up."""

    db: str
    rules: ServiceRules
    config: str | os.PathLike[str] | dict[str, Any] | None = None
    root: duckdb.DuckDBPyConnection | None = None
    writer: Writer | None = None
    keys: KeyRing | None = None
    refresher: Any = None  # patron.service.refresh's scheduler, when one runs
    snapshots: Snapshots | None = None  # the read-only copy for the CLI (patron.service.snapshot)
    lock: SharedLock = field(default_factory=SharedLock)
    center: PreferenceCenterRules = field(default_factory=PreferenceCenterRules)  # [preference_center]
    link_secret: bytes | None = None  # signs the customers' page links (patron.service.links)
    dialogue: Any = None  # triggers, outbox and webhook delivery (patron.service.dialogue)
    _changes: list[int] = field(default_factory=lambda: [0, 0])  # transactions begun, ended
    _changes_guard: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def changing(self) -> Iterator[None]:
        """Mark a transaction that may change the database (a writer group or job, a score
        refresh) for the length of the block, ended or failed: the snapshot
        (:mod:`patron.service.snapshot`) is known current only while none runs and none ended
        since its copy."""
        with self._changes_guard:
            self._changes[0] += 1
        try:
            yield
        finally:
            with self._changes_guard:
                self._changes[1] += 1

    def changes(self) -> tuple[int, int]:
        """(transactions begun, transactions ended) so far, read together."""
        with self._changes_guard:
            return self._changes[0], self._changes[1]

    def open(self) -> None:
        """Open (or reopen) the served database (``patron serve`` opens it before the app starts,
        to hold the file before it writes its marker: that connection is used)."""
        self.root = served_connection(self.db) or open_served(self.db)

    def close(self) -> None:
        """Close the served database."""
        if self.root is not None:
            close_served(self.db)
            self.root = None

    @contextmanager
    def reading(self, *, wait: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """A fresh cursor on the served database, held under the shared lock (closed on exit),
        once the events acknowledged before the call are applied (read-your-writes:
        :meth:`patron.service.writer.Writer.wait_applied`). ``wait=False`` for a read of what no
        event changes (key nonces, trigger definitions) made on the event loop, which must not
        block behind the writer."""
        if wait and self.writer is not None:
            self.writer.wait_applied()
        with self.lock.shared():
            assert self.root is not None, "service database is not open"
            cursor = self.root.cursor()
            try:
                yield cursor
            finally:
                cursor.close()

    def exclusive(self, job: Callable[[Path], T]) -> T:
        """Run ``job(path)`` with the database closed and nobody reading or writing (the writer
        pauses: it takes the shared lock around each commit); reopen afterwards, even on error.

        Such a job rewrites the file (an erasure): the snapshot of the old file is deleted before
        the job begins (a kill -9 during the job leaves no copy of what it removes) and a new one
        written before this returns (:mod:`patron.service.snapshot`)."""
        with self.lock.exclusive():
            if self.writer is not None:
                self.writer.detach()
            self.close()
            try:
                if self.snapshots is not None:
                    self.snapshots.discard()
                return job(Path(self.db))
            finally:
                self.open()
                if self.writer is not None:
                    self.writer.attach()
                if self.snapshots is not None:
                    self.snapshots.write_or_log(locked=True)
