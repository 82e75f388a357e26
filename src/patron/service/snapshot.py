"""The read-only snapshot of the served database, for CLI commands that read while the service runs.

DuckDB refuses every other process while the service holds the file, so the service copies the
database beside it (``shop.duckdb.snapshot``, :func:`patron.data.served.snapshot_file`) and
:mod:`patron.data.store` opens that copy when a read-only command meets the service's lock (see
:mod:`patron.data.served` for the reading side).

When it is written (:class:`Snapshots`):

* at start-up (a snapshot left by a service that was killed is removed first, and so is one it
  was writing: they may hold people erased since);
* after every successful score refresh (:meth:`Snapshots.kick`, from the refresher);
* after every erasure, *before* the erasure is answered; the old copy is deleted before the
  erasure begins, so a service killed during an erasure leaves none of it
  (:meth:`ServiceState.exclusive <patron.service.state.ServiceState.exclusive>`);
* every ``[service] snapshot_every_minutes`` (default 5) when a transaction that may change the
  database (a writer group or job: events, ledger changes, keys; a score refresh) ended since the
  last copy began, or is running; otherwise the file's modification time is moved to the check
  (taken before the counts, :meth:`ServiceState.changing <patron.service.state.ServiceState.changing>`):
  the copy is known to be current then.

So a CLI answer is at most ``snapshot_every_minutes`` plus one copy's duration behind the
service, and the file's modification time says since when it may be behind. Events are answered once
in the service's journal and applied a little later (:mod:`patron.service.journal`), so before
it copies or moves the time the snapshot waits until every event acknowledged so far is applied:
an event acknowledged before the file's modification time is in it. On shutdown the
snapshot is deleted (the CLI then reads the database itself).

How. In one transaction on a cursor of the served database: ``ATTACH`` a temporary file,
``COPY FROM DATABASE`` (every table, view, macro and sequence; a consistent state, as of the
transaction's start), ``CHECKPOINT`` it, ``DETACH``; then the file gets the database's permissions
and replaces the old snapshot atomically (``os.replace``): a reader sees the old copy or the new
one, never half of one. The copy runs under the service's shared lock: events keep being
committed beside it. A copy takes 0.7 s for an 11.5 MB database (100,000 simulated customers)
and 5.9 s for 107 MB (1M): medians of ``benchmarks/bench_snapshot.py``.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from patron.data.dialect import DUCKDB
from patron.data.served import dead_snapshot_copies, snapshot_file, snapshot_tmp
from patron.data.store import remove_files

if TYPE_CHECKING:  # pragma: no cover
    from patron.service.state import ServiceState

log = logging.getLogger("patron.service.snapshot")

ALIAS = "patron_snapshot"
"""Name under which the snapshot being written is attached to the served database's instance."""


class Snapshots:
    """Keeps the snapshot of one served database fresh (module docstring)."""

    def __init__(self, state: ServiceState) -> None:
        self.state = state
        self.path = snapshot_file(state.db)
        self.minutes = float(state.rules.snapshot_every_minutes)
        self._kick = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._write_lock = threading.Lock()
        self._copied: int | None = None
        """Changes ended before the last copy began (:meth:`ServiceState.changes`)."""
        self.written = 0
        """Snapshots written (for tests)."""
        self.last_seconds: float | None = None
        """Duration of the last copy, in seconds."""

    @property
    def enabled(self) -> bool:
        return self.minutes > 0

    def _tmp(self) -> Path:
        return snapshot_tmp(self.state.db, os.getpid())

    def discard(self) -> None:
        """Delete the snapshot (and a half-written one)."""
        tmp = self._tmp()
        remove_files(self.path, Path(str(self.path) + ".wal"), tmp, Path(str(tmp) + ".wal"))

    # -- life cycle --
    def start(self) -> None:
        """Remove a snapshot left behind (and half-written ones of killed services), then write one
        and keep it fresh on a thread."""
        self.discard()
        remove_files(*dead_snapshot_copies(self.state.db))
        if not self.enabled:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="patron-snapshot", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and delete the snapshot (the CLI reads the database itself from now on)."""
        self._stop.set()
        self._kick.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None
        with self._write_lock:
            self.discard()

    def kick(self) -> None:
        """Write a new snapshot soon (after a score refresh), on the snapshot thread."""
        if self.enabled:
            self._kick.set()

    def _loop(self) -> None:
        period = self.minutes * 60.0
        self.write_or_log()
        while not self._stop.is_set():
            kicked = self._kick.wait(period)
            self._kick.clear()
            if self._stop.is_set():
                return
            when = time.time()  # before the counts: a change that ended before it has begun before them
            self._settle()  # events acknowledged before `when` are applied: their commit is counted below
            began, ended = self.state.changes()
            if kicked or began != ended or ended != self._copied:
                self.write_or_log()
            else:
                self._touch(when)

    def _touch(self, when: float) -> None:
        """Nothing was committed since the copy: it is current as of ``when``."""
        try:
            os.utime(self.path, (when, when))
        except OSError:  # deleted meanwhile (an erasure): the next change writes it again
            pass

    def _settle(self) -> None:
        """Wait until every event acknowledged so far is applied (the journal answers before the
        writer commits: :mod:`patron.service.journal`), so a copy or a time said current includes
        them. Called without the state's lock (the writer needs it to commit)."""
        writer = self.state.writer
        if writer is not None:
            writer.wait_applied()

    def write_or_log(self, *, locked: bool = False) -> None:
        """:meth:`write`, a failure logged rather than raised (the CLI keeps reading the older copy)."""
        try:
            self.write(locked=locked)
        except Exception:  # a failed copy must not stop the service; the CLI reads the older one
            log.exception("writing the snapshot %s failed", self.path)

    # -- writing --
    def write(self, *, locked: bool = False) -> None:
        """Copy the served database to the snapshot now (``locked``: the caller holds the state's
        lock exclusively, as after an erasure)."""
        if not self.enabled:
            return
        tmp = self._tmp()
        started = time.time()  # the copy's "current as of": what was acknowledged before it is in it
        if not locked:  # (locked: an erasure holds the lock; the writer is between transactions)
            self._settle()
        with (nullcontext() if locked else self.state.lock.shared()), self._write_lock:
            if self.state.root is None:
                return
            remove_files(tmp, Path(str(tmp) + ".wal"))
            ended = self.state.changes()[1]  # before the copy: a change ending later counts as new
            copying = time.time()
            cur = self.state.root.cursor()
            try:
                source = cur.execute("SELECT current_database()").fetchone()[0]
                cur.execute(f"ATTACH {DUCKDB.literal(str(tmp))} AS {DUCKDB.ident(ALIAS)}")
                try:
                    cur.execute("BEGIN TRANSACTION")
                    try:
                        cur.execute(f"COPY FROM DATABASE {DUCKDB.ident(source)} TO {DUCKDB.ident(ALIAS)}")
                        cur.execute("COMMIT")
                    except BaseException:
                        cur.execute("ROLLBACK")
                        raise
                    cur.execute(f"CHECKPOINT {DUCKDB.ident(ALIAS)}")
                finally:
                    cur.execute(f"DETACH {DUCKDB.ident(ALIAS)}")
            except BaseException:
                remove_files(tmp, Path(str(tmp) + ".wal"))
                raise
            finally:
                cur.close()
            try:
                os.chmod(tmp, stat.S_IMODE(os.stat(self.state.db).st_mode))
            except OSError:  # pragma: no cover - keep DuckDB's permissions
                pass
            os.utime(tmp, (started, started))
            os.replace(tmp, self.path)
            remove_files(Path(str(tmp) + ".wal"))
            self._copied = ended
            self.written += 1
            self.last_seconds = time.time() - copying
        log.info("snapshot %s written in %.2f s", self.path, self.last_seconds)
