"""The journal: an append-only log of accepted submissions, fsynced before they are acknowledged.

Why. A group commit into DuckDB costs ~11 ms whatever its size (8 statements of ~1 ms, one
``fdatasync``), and the event loop shares the interpreter with the writer: answering each request
after its DuckDB ``COMMIT`` bounded single events to ~600-900 events/s (benchmarks/README.md,
"bench_service.py"). An append to a file and one ``fdatasync`` cost ~1-2 ms for any number of
requests, so requests are acknowledged once their items are *durable in the journal*, and the
writer applies the journal to DuckDB behind them, in larger groups.

Record format (little-endian): ``u32`` payload length, ``u32`` CRC-32 of the payload, ``u64``
sequence number, then the payload (the submission's items, pickled: the file is written and read
only by this service; an event is pickled without its decoded ``dict``, which is its ``payload``
text decoded again when read: :class:`patron.service.segment_spec.Event`). Sequence numbers start at 1 and grow by one per record across segments.
A segment is a file ``<journal id>-<first seq, 20 digits>.log`` in the journal directory (beside
the database: ``<db>.journal/``); a new one starts when the current one passes
:data:`SEGMENT_BYTES`. A torn or corrupt tail (a crash during a write that was never
acknowledged) ends the reading of a segment: what follows it was never acknowledged either.

Exactness. The journal thread writes a group of records with one ``write`` and one
``fdatasync``, then hands them to the writer *in sequence order* and only then acknowledges them
(so a job or a read that comes after an acknowledgement is queued after its events). The writer
applies them in that order and stores the position applied (the last sequence number of the
group) in ``service_journal`` **in the same transaction** as the group's rows
(:func:`patron.service.commit.store`). After a crash the records after the stored position are
applied again, in order; anything applied twice is recognised by its messageId (``events``'
primary key, the writer's recent ids), dead letters by their id, so nothing acknowledged is lost
and nothing is stored twice. Segments whose records are all applied are deleted.

The journal id (``service_journal.journal_id``) ties the segments to their database: segments of
another id (a database replaced under an old journal directory) are left alone and logged.
"""

from __future__ import annotations

import logging
import os
import pickle
import struct
import threading
import uuid
import zlib
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

log = logging.getLogger("patron.service.journal")

SEGMENT_BYTES: int = 64 * 1024 * 1024
"""A segment that passes this size (bytes) is closed and a new one started."""

_HEADER = struct.Struct("<IIQ")

JOURNAL_DDL = """CREATE TABLE IF NOT EXISTS service_journal (
  journal_id VARCHAR NOT NULL,
  position BIGINT NOT NULL
)"""
"""One row: the journal this database follows and the last sequence number applied to it."""


def journal_dir(db: str | os.PathLike[str]) -> Path:
    """The journal directory of the database file ``db``: ``<db>.journal`` beside it."""
    return Path(str(db) + ".journal")


def read_position(con: duckdb.DuckDBPyConnection) -> tuple[str, int]:
    """(journal id, position applied) of the database, creating the row on first use."""
    con.execute(JOURNAL_DDL)
    row = con.execute("SELECT journal_id, position FROM service_journal LIMIT 1").fetchone()
    if row is None:
        jid = uuid.uuid4().hex
        con.execute("INSERT INTO service_journal VALUES (?, 0)", [jid])
        return jid, 0
    return str(row[0]), int(row[1])


def save_position(con: duckdb.DuckDBPyConnection, position: int) -> None:
    """Store the position applied (inside the caller's transaction)."""
    con.execute("UPDATE service_journal SET position = ?", [position])


def encode(seq: int, items: Any, payload: bytes | None = None) -> bytes:
    """One record: header and pickled ``items`` (``payload``: ``items`` pickled already)."""
    if payload is None:
        payload = pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(payload), zlib.crc32(payload), seq) + payload


def read_segment(path: Path) -> tuple[list[tuple[int, Any]], int]:
    """The records of one segment, in order, and the length of its valid prefix (bytes)."""
    data = path.read_bytes()
    out: list[tuple[int, Any]] = []
    pos = 0
    while pos + _HEADER.size <= len(data):
        length, crc, seq = _HEADER.unpack_from(data, pos)
        start = pos + _HEADER.size
        payload = data[start:start + length]
        if len(payload) < length or zlib.crc32(payload) != crc:
            break
        try:
            items = pickle.loads(payload)
        except Exception:  # pragma: no cover - a CRC-valid record always unpickles
            break
        out.append((seq, items))
        pos = start + length
    return out, pos


Record = tuple[int, Any, Any]
"""(sequence number, items, tag): a record as the journal hands it on; ``tag`` is what the
appender passed with it (not written)."""


class Journal:
    """The append-only log and its thread (module docstring).

    For each group written, on the journal thread: ``deliver(records)`` once they are durable (in
    sequence order), then ``acknowledge(records, None)``; or ``acknowledge(records, exc)`` when
    they could not be written (sequence numbers then 0)."""

    def __init__(self, directory: Path, journal_id: str, *, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.directory = directory
        self.journal_id = journal_id
        self.segment_bytes = segment_bytes
        self._cond = threading.Condition()
        self._queue: deque[tuple[Any, Any, bytes | None]] = deque()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._fd: int | None = None
        self._size = 0
        self._seq = 0
        self._segments: deque[tuple[Path, int]] = deque()  # closed segments and their last seq
        self._current: Path | None = None
        self._applied = 0
        self.durable = 0
        """Last sequence number written and fsynced (and handed to the writer)."""
        self.syncs = 0
        """``fdatasync`` calls made (for tests and benchmarks)."""
        self.deliver: Callable[[list[Record]], None] = lambda records: None
        self.acknowledge: Callable[[list[Record], BaseException | None], None] = lambda records, exc: None

    # -- start-up --
    def recover(self, applied: int) -> list[tuple[int, Any]]:
        """Read the segments of this journal; return the records after ``applied`` in order and
        delete the segments they do not need. Continues numbering after the last record read."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._applied = applied
        self._seq = applied
        pending: list[tuple[int, Any]] = []
        for path in sorted(self.directory.glob("*.log")):
            jid, _, _ = path.stem.partition("-")
            if jid != self.journal_id:
                log.warning("journal segment %s belongs to another database (journal %s); left alone", path, jid)
                continue
            records, valid = read_segment(path)
            if valid < path.stat().st_size:
                log.warning("journal segment %s: %d bytes after the last whole record dropped (never acknowledged)",
                            path, path.stat().st_size - valid)
                with path.open("r+b") as f:
                    f.truncate(valid)
            last = records[-1][0] if records else 0
            self._seq = max(self._seq, last)
            pending += [(s, items) for s, items in records if s > applied]
            if last <= applied:
                path.unlink()
            else:
                self._segments.append((path, last))
        self.durable = self._seq
        return pending

    def start(self) -> None:
        """Open a new segment and start the journal thread."""
        self._open_segment()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="patron-journal", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Write what is queued, then stop (later appends fail)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            assert self._current is not None
            self._segments.append((self._current, self._seq))
            self._current = None

    def prune(self) -> None:
        """Delete the closed segments whose records are all applied (after :meth:`stop`, once the
        writer has applied what it was given: a clean stop leaves no segment)."""
        with self._cond:
            self._drop_applied()

    # -- appending --
    def append(self, items: Any, tag: Any = None, payload: bytes | None = None) -> None:
        """Queue a record of ``items`` (handed on with ``tag``; ``payload``: ``items`` pickled
        already, written as is). Raises RuntimeError when stopped."""
        with self._cond:
            if self._stopping or self._thread is None:
                raise RuntimeError("the journal is closed")
            self._queue.append((items, tag, payload))
            self._cond.notify()

    def applied(self, position: int) -> None:
        """The writer applied every record up to ``position``: closed segments wholly before it
        are deleted (by the journal thread)."""
        with self._cond:
            self._applied = max(self._applied, position)

    # -- the thread --
    def _open_segment(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            assert self._current is not None
            self._segments.append((self._current, self._seq))
        path = self.directory / f"{self.journal_id}-{self._seq + 1:020d}.log"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._current = path
        self._size = os.fstat(self._fd).st_size
        dfd = os.open(self.directory, os.O_RDONLY)  # the new file's name is durable too
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def _drop_applied(self) -> None:
        while self._segments and self._segments[0][1] <= self._applied:
            path, _ = self._segments.popleft()
            try:
                path.unlink()
            except OSError:  # pragma: no cover - removed by hand
                pass

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue:
                    return
                entries = list(self._queue)
                self._queue.clear()
            self._write(entries)
            self._drop_applied()

    def _write(self, entries: list[tuple[Any, Any, bytes | None]]) -> None:
        assert self._fd is not None
        first = self._seq + 1
        try:
            data = b"".join([encode(first + i, items, payload) for i, (items, _, payload) in enumerate(entries)])
            view = memoryview(data)
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
            os.fdatasync(self._fd)
        except Exception as exc:  # disk full, I/O error: nothing of the group is acknowledged
            log.exception("journal write of %d records failed", len(entries))
            try:  # a partial write is a torn tail: cut it so later records follow a whole one
                os.ftruncate(self._fd, self._size)
            except OSError:
                pass
            self.acknowledge([(0, items, tag) for items, tag, _ in entries], exc)
            return
        self.syncs += 1
        self._seq = first + len(entries) - 1
        self._size += len(data)
        records = [(first + i, items, tag) for i, (items, tag, _) in enumerate(entries)]
        self.deliver(records)
        self.durable = self._seq
        self.acknowledge(records, None)
        if self._size >= self.segment_bytes:
            self._open_segment()
