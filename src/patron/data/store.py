"""The store: one embedded DuckDB database file holding every table of the data contract.

All SQL runs through a :class:`Store`; builders elsewhere only return SQL text. Timestamps are
stored and compared in UTC (the session time zone is set to UTC on connect).
"""

from __future__ import annotations

import atexit
import fcntl
import glob
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from patron.data.dialect import DUCKDB
from patron.data.schema import CONTRACTS, INGESTS_DDL, REJECTS_DDL, ddl
from patron.data.served import (
    Server,
    announce,
    lock_conflict,
    no_snapshot,
    running_server,
    served_snapshot,
)
from patron.errors import InputError
from patron.scope import note_file
from patron.settings import get_settings


def _session(con: duckdb.DuckDBPyConnection) -> None:
    """Settings every patron connection runs with (limits apart)."""
    con.execute("SET TimeZone = 'UTC'").fetchall()
    con.execute("SET preserve_insertion_order = false").fetchall()
    con.execute("SET enable_progress_bar = false").fetchall()  # the CLI draws its own


def _configure(con: duckdb.DuckDBPyConnection, *, memory_limit: str | None, threads: int | None) -> None:
    settings = get_settings()
    _session(con)
    limit = memory_limit or settings.memory_limit
    if limit:
        con.execute(f"SET memory_limit = {DUCKDB.literal(str(limit))}").fetchall()
    n = threads or settings.threads
    if n:
        con.execute(f"SET threads = {int(n)}").fetchall()


_SERVED: dict[str, duckdb.DuckDBPyConnection] = {}
"""Database files this process serves (``patron serve``), by resolved path, with their root connection."""


_BEFORE_READ: dict[str, Callable[[], object]] = {}
"""Per served file, what :func:`connect` calls before it hands out a cursor: the service's
journal applies acknowledged events behind the answers, and this waits for them
(read-your-writes; :mod:`patron.service.journal`)."""


def before_served_read(db: str | os.PathLike[str], wait: Callable[[], object] | None) -> None:
    """Register (or, with None, remove) ``wait``, called by every :func:`connect` to the served
    file ``db`` in this process before its cursor is handed out."""
    if wait is None:
        _BEFORE_READ.pop(_key(db), None)
    else:
        _BEFORE_READ[_key(db)] = wait


def _key(path: str | os.PathLike[str]) -> str:
    return str(Path(path).resolve())


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the contract's tables (and ``rejects``, ``ingests``) that are missing, and add the
    columns a newer contract has to tables an older patron created (one catalogue query; an
    ``ALTER TABLE ... ADD COLUMN`` only when one is missing)."""
    for contract in CONTRACTS.values():
        con.execute(ddl(contract))
    con.execute(REJECTS_DDL)
    con.execute(INGESTS_DDL)
    present = set(con.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'main' "
        "AND table_catalog = current_database()").fetchall())
    for contract in CONTRACTS.values():
        for col in contract.columns:
            if (contract.name, col.name) not in present:
                con.execute(f"ALTER TABLE {contract.name} ADD COLUMN {DUCKDB.ident(col.name)} {col.sql_type}")


ERASING_INFIX = ".erasing-"
"""Middle of the name of the copy an erasure writes beside the database (``.<db>.erasing-<hex>``,
and its ``.wal``): see :mod:`patron.people.rights.erase`."""


def erasure_lock_path(db: str | os.PathLike[str]) -> Path:
    """The lock file an erasure of ``db`` holds (``.<db>.erasure.lock``, empty): one erasure at a
    time, and leftovers are only removed when no erasure holds it."""
    p = Path(db)
    return p.with_name(f".{p.name}.erasure.lock")


def erasure_copies(db: str | os.PathLike[str]) -> list[Path]:
    """Copies (and their write-ahead logs) that erasures of ``db`` wrote beside it."""
    p = Path(db)
    return sorted(p.parent.glob(f".{glob.escape(p.name)}{ERASING_INFIX}*"))


@contextmanager
def erasure_lock(db: str | os.PathLike[str], *, wait: bool = True) -> Iterator[bool]:
    """Hold the erasure lock of ``db`` for the block: an exclusive ``flock`` on
    ``.<db>.erasure.lock`` (released by the kernel when the process dies, ``kill -9`` included),
    the file removed when the block ends. Yields whether it was taken (always, when ``wait``;
    without ``wait``, False when another process or thread holds it). A lock taken on a file that
    its holder removed meanwhile is taken again on the new file, so two holders never overlap."""
    path = erasure_lock_path(db)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            yield False
            return
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the previous holder removed the file after we opened it: take the new one
    try:
        yield True
    finally:
        try:
            path.unlink()
        except FileNotFoundError:  # pragma: no cover - removed by hand
            pass
        os.close(fd)  # releases the lock


def remove_files(*paths: str | os.PathLike[str]) -> None:
    """Delete each of ``paths``; one that does not exist is skipped."""
    for p in paths:
        Path(p).unlink(missing_ok=True)


def remove_interrupted_erasures(db: str | os.PathLike[str]) -> list[Path]:
    """Remove the copies an interrupted erasure (a process killed while it copied) left beside
    ``db``, unless an erasure runs now; returns the files removed. An erasure replaces the database
    with its copy in one atomic rename, so a copy left behind was never put in place: the database
    is the one from before the erasure, which was not done (run it again); a lock file left by a
    process killed after the rename goes too. Called whenever a database file is opened
    (:func:`connect`, :func:`open_served`, :func:`reader`)."""
    if str(db) == ":memory:" or not Path(db).parent.is_dir():
        return []
    if not erasure_copies(db) and not erasure_lock_path(db).exists():
        return []
    removed: list[Path] = []
    with erasure_lock(db, wait=False) as free:
        if not free:
            return []
        for leftover in erasure_copies(db):
            try:
                leftover.unlink()
                removed.append(leftover)
            except FileNotFoundError:
                pass
    return removed


def open_served(db: str | os.PathLike[str], *, memory_limit: str | None = None, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """Open ``db`` read-write for a service in this process and register it, so that every
    :func:`connect` to the same file in this process gets a cursor of it (DuckDB allows one
    writing process per file; inside it, any number of cursors)."""
    path = str(db)
    note_file(path, "the database")
    remove_interrupted_erasures(path)
    try:
        con = duckdb.connect(path)
    except duckdb.IOException as exc:
        raise InputError(_lock_message(path, exc)) from None
    _configure(con, memory_limit=memory_limit, threads=threads)
    create_tables(con)
    _SERVED[_key(path)] = con
    return con


def served_connection(db: str | os.PathLike[str]) -> duckdb.DuckDBPyConnection | None:
    """The root connection of ``db`` when this process serves it (:func:`open_served`), else None."""
    return _SERVED.get(_key(db))


def served_elsewhere(db: str | os.PathLike[str] | None) -> Server | None:
    """The running ``patron serve`` of ``db`` when it is another process (so this one reads its
    snapshot and cannot write), else None."""
    path = str(db if db is not None else get_settings().db)
    if path == ":memory:" or _key(path) in _SERVED:
        return None
    server = running_server(path)
    return server if server is not None and server.pid != os.getpid() else None


def close_served(db: str | os.PathLike[str]) -> None:
    """Unregister and close the served database ``db`` (no-op when not served)."""
    con = _SERVED.pop(_key(db), None)
    if con is not None:
        con.close()


def _lock_message(path: str, exc: Exception, *, read: bool = False) -> str:
    """One line for a failed open of ``path`` (``read``: a read-only open, which a running
    service's snapshot would have answered had there been one)."""
    conflict = (no_snapshot(exc, path) if read else None) or lock_conflict(exc, path)
    if conflict is not None:
        return conflict
    first = str(exc).splitlines()[0]
    return f"cannot open database {path}: {first}"


def _snapshot_instead(path: str, exc: Exception) -> str | None:
    """The snapshot file to read instead of ``path`` when ``exc`` is the lock of the running
    ``patron serve`` of ``path`` and it keeps a snapshot (announced once), else ``None``
    (:mod:`patron.data.served`)."""
    snap = served_snapshot(path, exc)
    if snap is None:
        return None
    announce(snap, path)
    return str(snap.path)


@contextmanager
def connect(
    db: str | os.PathLike[str] | None = None,
    *,
    read_only: bool = False,
    memory_limit: str | None = None,
    threads: int | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the database file ``db`` (``:memory:`` for a throw-away one), create the contract's
    tables if needed, and close it on exit.

    A read-only open of a file that does not exist is an :class:`InputError`.
    """
    path = str(db if db is not None else get_settings().db)
    served = _SERVED.get(_key(path)) if path != ":memory:" else None
    if served is not None:  # inside patron serve: a cursor of the served database, never a second open
        wait = _BEFORE_READ.get(_key(path))
        if wait is not None:
            wait()
        cursor = served.cursor()
        try:
            _configure(cursor, memory_limit=memory_limit, threads=threads)
            yield cursor
        finally:
            cursor.close()
        return
    if read_only and path != ":memory:" and not Path(path).exists():
        raise InputError(f"database {path} does not exist: ingest transactions first (patron ingest FILE --db {path})")
    note_file(path, "the database")  # an output of the command may not overwrite it
    if path != ":memory:":
        remove_interrupted_erasures(path)
    try:
        con = duckdb.connect(path, read_only=read_only)
    except duckdb.IOException as exc:
        snapshot = _snapshot_instead(path, exc) if read_only else None
        if snapshot is None:
            raise InputError(_lock_message(path, exc, read=read_only)) from None
        con = _open_snapshot(snapshot, path)
    key = _key(path) if path != ":memory:" else None
    try:
        _configure(con, memory_limit=memory_limit, threads=threads)
        if not read_only:
            create_tables(con)
        if key is not None:
            _OPEN.setdefault(key, []).append(con)
        yield con
    finally:
        if key is not None and con in _OPEN.get(key, []):
            _OPEN[key].remove(con)
            if not _OPEN[key]:
                del _OPEN[key]
        con.close()


_OPEN: dict[str, list[duckdb.DuckDBPyConnection]] = {}
"""The database files this process holds open through :func:`connect`, by path: a :func:`reader`
block inside such a block (e.g. the covariates the scores read while the profiles are built on one
connection) reads through a cursor of the open connection, because DuckDB refuses to attach a file
a second time in one process."""


def _snapshot_error(path: str, snapshot: str, exc: Exception) -> InputError:
    """The snapshot was replaced and removed between the look and the open (rare): say so."""
    return InputError(f"cannot open the snapshot of {path} that patron serve keeps ({snapshot}): "
                      f"{str(exc).splitlines()[0]}; try again")


def _open_snapshot(snapshot: str, path: str) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(snapshot, read_only=True)
    except duckdb.Error as exc:
        raise _snapshot_error(path, snapshot, exc) from None


class _Reader:
    """The process's reading engine: one in-memory DuckDB instance to which database files are
    attached read-only for the length of a :func:`reader` block (see there), created on first use.

    Forks: a child cannot use (nor even close: that joins threads it does not have) its parent's
    engine. So the parent closes an idle engine before it forks and the child starts its own; an
    engine busy in another thread at the fork is left to the child unused, never closed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.engine: duckdb.DuckDBPyConnection | None = None
        self.attached: dict[str, tuple[str, int]] = {}
        """Resolved path -> (alias, blocks using it)."""
        self.count = 0
        self.limits: tuple[str | None, int | None] = (None, None)
        """The engine's memory limit and threads as last set (None: DuckDB's default)."""
        self.inherited: list[duckdb.DuckDBPyConnection] = []

    def _engine(self) -> duckdb.DuckDBPyConnection:
        if self.engine is None:
            spill = Path(tempfile.gettempdir()) / f"patron-duckdb-{os.getpid()}"
            self.engine = duckdb.connect(":memory:", config={"temp_directory": str(spill)})
            self.limits = (None, None)
        return self.engine

    def _limit(self, cursor: duckdb.DuckDBPyConnection, memory_limit: str | None, threads: int | None) -> None:
        """Set the engine's limits only when they change: setting the memory limit, even to the
        same value, makes DuckDB hand its cached memory back to the system."""
        settings = get_settings()
        limits = (memory_limit or settings.memory_limit or None, threads or settings.threads or None)
        if limits[0] != self.limits[0]:
            cursor.execute(f"SET memory_limit = {DUCKDB.literal(str(limits[0]))}" if limits[0] else "RESET memory_limit").fetchall()
        if limits[1] != self.limits[1]:
            cursor.execute(f"SET threads = {int(limits[1])}" if limits[1] else "RESET threads").fetchall()
        self.limits = limits

    def attach(self, path: str, memory_limit: str | None, threads: int | None) -> duckdb.DuckDBPyConnection:
        """A cursor of the engine using ``path`` (attached if no block is using it yet), the
        engine's limits set."""
        key = _key(path)
        with self.lock:
            engine = self._engine()
            alias, users = self.attached.get(key, ("", 0))
            if not users:
                self.count += 1
                alias = f"patron_read_{self.count}"
                try:
                    engine.execute(f"ATTACH {DUCKDB.literal(key)} AS {DUCKDB.ident(alias)} (READ_ONLY)")
                except duckdb.Error as exc:
                    snapshot = _snapshot_instead(path, exc)
                    if snapshot is None:
                        raise InputError(_lock_message(path, exc, read=True)) from None
                    try:
                        engine.execute(f"ATTACH {DUCKDB.literal(snapshot)} AS {DUCKDB.ident(alias)} (READ_ONLY)")
                    except duckdb.Error as again:
                        raise _snapshot_error(path, snapshot, again) from None
            cursor = engine.cursor()
            try:
                cursor.execute(f"USE {DUCKDB.ident(alias)}")
                _session(cursor)
                self._limit(cursor, memory_limit, threads)
            except BaseException:
                cursor.close()
                if not users:
                    engine.execute(f'DETACH "{alias}"')
                raise
            self.attached[key] = (alias, users + 1)
            return cursor

    def detach(self, path: str) -> None:
        key = _key(path)
        with self.lock:
            alias, users = self.attached[key]
            if users > 1:
                self.attached[key] = (alias, users - 1)
                return
            del self.attached[key]
            if self.engine is not None:
                self.engine.execute(f'DETACH "{alias}"')

    def close(self) -> None:
        with self.lock:
            if self.engine is not None:
                self.engine.close()
            self.engine = None

    def before_fork(self) -> None:
        self.lock.acquire()
        if self.engine is not None and not self.attached:
            self.engine.close()
            self.engine = None

    def after_fork_in_parent(self) -> None:
        self.lock.release()

    def after_fork_in_child(self) -> None:
        if self.engine is not None:
            self.inherited.append(self.engine)  # kept referenced: closing it would hang
        self.engine, self.attached = None, {}
        self.lock = threading.Lock()


_READER = _Reader()
atexit.register(_READER.close)


def release_reader() -> None:
    """Close the process's reading engine (:func:`reader`) unless a block is using it, handing the
    memory it caches back to the system (a summary of 10M customers leaves about 2 GB there). The
    next :func:`reader` block starts a new engine."""
    with _READER.lock:
        if _READER.engine is not None and not _READER.attached:
            _READER.engine.close()
            _READER.engine = None
os.register_at_fork(
    before=_READER.before_fork,
    after_in_parent=_READER.after_fork_in_parent,
    after_in_child=_READER.after_fork_in_child,
)


@contextmanager
def reader(
    db: str | os.PathLike[str] | None = None,
    *,
    memory_limit: str | None = None,
    threads: int | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the database file ``db`` for the length of the block, like
    ``connect(db, read_only=True)``: what every read-only analysis (the summary, profiles,
    status, segments, contact effect, referrals, data export) opens.

    The file is attached read-only to one in-memory DuckDB instance that the process keeps (and
    detached, its lock released, when the last block using it ends); unqualified table names
    resolve in the file. Opening and closing a DuckDB instance per call returns all of its memory
    to the system each time; the next call then pays to fault it in again, which on a 1M-customer
    summary is a good part of the time. The engine keeps what its allocator caches between calls.

    ``memory_limit`` and ``threads`` are settings of the whole engine: blocks that overlap in
    several threads share the last ones given. Inside ``patron serve``, or for ``:memory:``, this
    is :func:`connect`.
    """
    path = str(db if db is not None else get_settings().db)
    if path == ":memory:" or _SERVED.get(_key(path)) is not None:
        with connect(path, read_only=True, memory_limit=memory_limit, threads=threads) as con:
            yield con
        return
    held = _OPEN.get(_key(path))
    if held:  # the file is open in this process already (see _OPEN)
        cursor = held[-1].cursor()
        try:
            yield cursor
        finally:
            cursor.close()
        return
    if not Path(path).exists():
        raise InputError(f"database {path} does not exist: ingest transactions first (patron ingest FILE --db {path})")
    note_file(path, "the database")
    remove_interrupted_erasures(path)
    cursor = _READER.attach(path, memory_limit, threads)
    try:
        yield cursor
    finally:
        cursor.close()
        _READER.detach(path)


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether the main schema holds a table called ``name``."""
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ? AND table_schema = 'main' "
        "AND table_catalog = current_database()",
        [name],
    ).fetchall()
    return bool(row and row[0][0])
