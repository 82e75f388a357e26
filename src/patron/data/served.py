"""A database file held by a running ``patron serve``: its marker file, the one-line messages that
name the holder, and the read-only snapshot that other processes read while it runs.

DuckDB lets one process open a file for writing and then refuses every other process, readers
included. So while ``patron serve`` holds ``shop.duckdb`` it keeps a **snapshot** beside it,
``shop.duckdb.snapshot``: a complete copy (``COPY FROM DATABASE``, one transaction, so a
consistent state of every table) written at start-up, after every score refresh, after every
erasure (before the erasure is answered) and, when anything was committed since the last one, every
``[service] snapshot_every_minutes`` (default 5). The file's modification time is the moment the
snapshot was last known to be current: the start of its copy, or a later check that found nothing
committed since. :mod:`patron.data.store` opens the snapshot, read-only, when a read-only open of the
database meets the service's lock (:func:`served_snapshot`), and says so in one line
(:func:`announce`); a write still stops with one line naming the service.

The marker, ``shop.duckdb.serve.json``, holds the service's ``pid``, ``url`` and
``snapshot_every_minutes``; a process that is gone leaves a stale marker, which is ignored.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger("patron.data.served")

MARKER_SUFFIX = ".serve.json"
"""Suffix of the marker file a running ``patron serve`` writes beside its database."""

SNAPSHOT_SUFFIX = ".snapshot"
"""Suffix of the read-only snapshot a running ``patron serve`` keeps beside its database."""


def service_file(db: str | os.PathLike[str]) -> Path:
    """The file beside ``db`` in which a running ``patron serve`` records its pid and address."""
    p = Path(db)
    return p.with_name(p.name + MARKER_SUFFIX)


def snapshot_file(db: str | os.PathLike[str]) -> Path:
    """The read-only snapshot a running ``patron serve`` keeps of ``db`` (module docstring)."""
    p = Path(db)
    return p.with_name(p.name + SNAPSHOT_SUFFIX)


@dataclass(frozen=True)
class Server:
    """A running ``patron serve`` per its marker: process id, address, and the longest time
    between a change and the snapshot that holds it (minutes; 0: no snapshot is kept)."""

    pid: int
    url: str
    snapshot_every_minutes: float | None = None

    def describe(self) -> str:
        """``process 4242 at http://127.0.0.1:8000``."""
        return f"process {self.pid} at {self.url}"


def running_server(db: str | os.PathLike[str]) -> Server | None:
    """The running ``patron serve`` of ``db`` per its marker file, or ``None`` (no marker, an
    unreadable one, or its process is gone)."""
    try:
        info = json.loads(service_file(db).read_text(encoding="utf-8"))
        pid = int(info["pid"])
        os.kill(pid, 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    minutes = info.get("snapshot_every_minutes")
    return Server(pid, str(info.get("url", "?")),
                  float(minutes) if isinstance(minutes, int | float) and not isinstance(minutes, bool) else None)


def write_marker(db: str | os.PathLike[str], server: Server) -> None:
    """Write the marker of ``server`` beside ``db`` (atomically: a reader never sees half of it)."""
    marker = service_file(db)
    tmp = marker.with_name(f".{marker.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"pid": server.pid, "url": server.url,
                               "snapshot_every_minutes": server.snapshot_every_minutes}), encoding="utf-8")
    os.replace(tmp, marker)


def remove_marker(db: str | os.PathLike[str], pid: int) -> None:
    """Remove the marker of ``db`` if it is the one process ``pid`` wrote (never another's)."""
    marker = service_file(db)
    try:
        if json.loads(marker.read_text(encoding="utf-8")).get("pid") == pid:
            marker.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def snapshot_tmp(db: str | os.PathLike[str], pid: int) -> Path:
    """The file into which process ``pid`` writes the next snapshot of ``db`` before it replaces
    the snapshot (``.shop.duckdb.snapshot.<pid>.tmp``)."""
    snap = snapshot_file(db)
    return snap.with_name(f".{snap.name}.{pid}.tmp")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # pragma: no cover - another user's process: alive
        return True
    return True


def dead_snapshot_copies(db: str | os.PathLike[str]) -> list[Path]:
    """Half-written snapshots of ``db`` (and their logs) whose writer is gone: a service killed
    while it copied the database (a whole copy of it, people erased since included)."""
    snap = snapshot_file(db)
    found = []
    for p in snap.parent.glob(f".{glob.escape(snap.name)}.*.tmp*"):
        pid = p.name[len(snap.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            found.append(p)
    return sorted(found)


def discard_stale_snapshot(db: str | os.PathLike[str]) -> bool:
    """Delete the snapshot beside ``db`` when no live service keeps it (one killed before it could
    delete it: it may hold people erased since), and half-written snapshots of dead writers
    (:func:`dead_snapshot_copies`) in any case. Returns whether a file was deleted."""
    files = dead_snapshot_copies(db)
    if running_server(db) is None:
        files += [snapshot_file(db), Path(str(snapshot_file(db)) + ".wal")]
    found = False
    for p in files:
        try:
            p.unlink()
            found = True
        except FileNotFoundError:
            pass
    return found


# -- who holds the lock -------------------------------------------------------------------------

LOCK_CONFLICT = re.compile(r'Could not set lock on file "(?P<file>[^"]*)": Conflicting lock is held in (?P<program>.*?) \(PID (?P<pid>\d+)\)')
"""DuckDB's text when another process holds the file (it names the program and its PID)."""

COMMAND_LINE_CHARS = 160
"""At most this many characters of the holder's command line are quoted."""


def command_line(pid: int) -> str | None:
    """The command line of process ``pid`` (``/proc/<pid>/cmdline``), shortened; ``None`` when
    it cannot be read (another system, the process gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    text = " ".join(part.decode("utf-8", "replace") for part in raw.split(b"\0") if part)
    text = " ".join(text.split())
    return text[: COMMAND_LINE_CHARS - 3] + "..." if len(text) > COMMAND_LINE_CHARS else (text or None)


def _holder(exc: BaseException, path: str | None) -> tuple[str, int, Server | None, str] | None:
    """(database, holder pid, the running service when it is the holder, holder's command line)
    when ``exc`` is DuckDB's lock conflict."""
    found = LOCK_CONFLICT.search(str(exc))
    if found is None:
        return None
    db = path or found["file"]
    pid = int(found["pid"])
    server = running_server(db)
    return db, pid, server if server is not None and server.pid == pid else None, command_line(pid) or found["program"]


def lock_conflict(exc: BaseException, path: str | None = None) -> str | None:
    """One line naming who holds the database when ``exc`` is DuckDB's lock conflict, else
    ``None``: ``database shop.duckdb is in use by process 4242 (python -m patron ingest ...):
    ...``; when the holder is a running ``patron serve`` of the file, the line says so and that
    changes go through the service."""
    holder = _holder(exc, path)
    if holder is None:
        return None
    db, pid, server, cmd = holder
    if server is not None:
        return (f"database {db} is held by patron serve ({server.describe()}: {cmd}): this command changes it; send "
                f"changes through the service's HTTP API ({server.url}/docs) or stop the service first")
    return f"cannot open database {db}: it is in use by process {pid} ({cmd}); wait for it to finish or stop it, then try again"


def no_snapshot(exc: BaseException, path: str) -> str | None:
    """The one line for a *read* that met the service's lock when no snapshot is there to read
    (the service is starting, or keeps none), else ``None``."""
    holder = _holder(exc, path)
    if holder is None or holder[2] is None:
        return None
    server = holder[2]
    why = ("it keeps no snapshot ([service] snapshot_every_minutes = 0)" if server.snapshot_every_minutes == 0
           else "its snapshot is not written yet (it is being written: try again in a moment)")
    return f"database {path} is held by patron serve ({server.describe()}) and {why}; read through its HTTP API ({server.url}/docs) or stop it"


# -- the snapshot -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """The snapshot a running service keeps of a database: its file, the service, and the time
    (UTC) at which it was last known to hold every committed change."""

    path: Path
    server: Server
    current_at: datetime

    def note(self, db: str) -> str:
        """One line for a command that reads the snapshot instead of the database."""
        age = max(0.0, (datetime.now(UTC).replace(tzinfo=None) - self.current_at).total_seconds())
        minutes = self.server.snapshot_every_minutes
        bound = (f"; it is rewritten after every score refresh and erasure and at most {minutes:g} minutes after "
                 "any other change" if minutes else "")
        return (f"note: {db} is held by patron serve ({self.server.describe()}); reading its snapshot, current as of "
                f"{self.current_at:%Y-%m-%d %H:%M:%S} UTC ({_age(age)} ago){bound}")


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def served_snapshot(db: str | os.PathLike[str], exc: BaseException) -> Snapshot | None:
    """The snapshot to read instead of ``db`` when ``exc`` (from opening ``db``) is DuckDB's lock
    conflict with the running ``patron serve`` of ``db`` and that service has written one; else
    ``None``."""
    holder = _holder(exc, str(db))
    if holder is None or holder[2] is None:
        return None
    path = snapshot_file(db)
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return None
    return Snapshot(path, holder[2], datetime.fromtimestamp(mtime, UTC).replace(tzinfo=None))


snapshot_listeners: list[Callable[[str], None]] = []
"""Callables given the one-line note each time a process first reads a snapshot (per database
and snapshot version); the CLI prints it on stderr. Without listeners the note is logged as a
warning of the ``patron.data.served`` logger."""

_announced: set[tuple[str, float]] = set()
_announce_lock = threading.Lock()


def announce(snapshot: Snapshot, db: str) -> None:
    """Tell the listeners (once per database and snapshot version) that ``db`` is read from ``snapshot``."""
    key = (str(Path(db).resolve()), snapshot.current_at.timestamp())
    with _announce_lock:
        if key in _announced:
            return
        _announced.add(key)
    text = snapshot.note(db)
    if not snapshot_listeners:
        log.warning(text)
    for fn in list(snapshot_listeners):
        fn(text)
