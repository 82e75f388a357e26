"""Acceptor processes: several processes take the HTTP requests, one process owns the database.

Why. One interpreter runs the event loop (HTTP, routing, key check, JSON, validation, mapping)
and the writer; on 2 cores its HTTP path alone tops out below the issue's 3,000 single events/s.
``patron serve --workers N`` starts ``N`` acceptor processes (:mod:`patron.service.acceptor`)
that share the public listening socket (the kernel spreads connections over them). Each runs the
event endpoints itself -- the same FastAPI routes, key check, browser-safety rules, body limits,
validation and mapping as the single process -- and sends the checked items to the **owner**
process, which alone opens the DuckDB file; every other request (profiles, dashboard, keys,
segments, ...) is passed through unchanged to the owner's own HTTP server on a Unix socket.

The owner (this module) listens on a second Unix socket for the acceptors' submissions: frames of
``u32`` length, ``u64`` request id and a pickled tuple (both ends are this service, in a
directory only its user can open). A submission is ``("submit", key_id, pickled items)``: the key is
checked again against the owner's live keys (a key revoked a moment ago is refused even if the
acceptor has not heard of it yet: answered ``("revoked",)``, the acceptor answers 401), then the
items go through :meth:`patron.service.writer.Writer.submit` like a request of the owner's own
loop: into the journal, answered once durable. ``("keys",)`` returns the live keys (hashes); every
answer carries the owner's key-set version, so an acceptor reads the keys again after a change.

Exactness is the single process's: every event passes through the owner's one journal, in the
order the owner received it (the order between requests of different connections is no promise
of the API anyway), and the one writer applies that journal, so dedup by messageId and identity
resolution see exactly what they would see in one process; a read, whichever acceptor takes it,
is answered by the owner after every acknowledged event is applied (read-your-writes).

Lifetime. The acceptors are started once the owner is ready and stopped (SIGTERM, then waiting)
before it stops; an acceptor asks the kernel to kill it when the owner dies (``PR_SET_PDEATHSIG``),
so a SIGKILL of ``patron serve`` leaves no acceptor behind; the owner starts a new acceptor when
one exits while the service runs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from patron.service.writer import WriteFailed

if TYPE_CHECKING:  # pragma: no cover
    from patron.service.state import ServiceState

log = logging.getLogger("patron.service.acceptors")

FRAME = struct.Struct("<IQ")
"""Frame header: payload length (bytes), request id."""


def frame(request_id: int, message: Any) -> bytes:
    """One frame holding ``message`` (pickled)."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return FRAME.pack(len(data), request_id) + data


@dataclass
class AcceptorPlan:
    """How ``patron serve --workers N`` runs: ``workers`` acceptor processes on the listening
    socket ``listen_fd``, the owner's HTTP server on ``http_socket``, submissions on
    ``submit_socket`` (both Unix sockets in a private directory)."""

    workers: int
    listen_fd: int
    config: str | None = None
    log_level: str = "warning"
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="patron-serve-")))

    @property
    def http_socket(self) -> Path:
        return self.directory / "http.sock"

    @property
    def submit_socket(self) -> Path:
        return self.directory / "submit.sock"


class Acceptors:
    """The owner's side: the submission server and the acceptor processes (module docstring)."""

    def __init__(self, state: ServiceState, plan: AcceptorPlan) -> None:
        self.state = state
        self.plan = plan
        self._server: asyncio.AbstractServer | None = None
        self._procs: list[subprocess.Popen[bytes]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._watcher: threading.Thread | None = None
        self._live: tuple[int, frozenset[str]] = (-1, frozenset())

    def _live_ids(self) -> frozenset[str]:
        keys = self.state.keys
        if keys is None:
            return frozenset()
        if self._live[0] != keys.version:
            self._live = (keys.version, frozenset(c.key_id for c in keys.callers().values()))
        return self._live[1]

    async def start(self) -> None:
        """Listen for submissions, then start the acceptor processes."""
        self.plan.directory.mkdir(mode=0o700, exist_ok=True)
        self._server = await asyncio.start_unix_server(self._client, path=str(self.plan.submit_socket))
        os.chmod(self.plan.submit_socket, 0o600)
        self._procs = [self._spawn(i) for i in range(self.plan.workers)]
        self._watcher = threading.Thread(target=self._watch, name="patron-acceptors", daemon=True)
        self._watcher.start()

    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "patron.service.acceptor", "--fd", str(self.plan.listen_fd),
               "--db", self.state.db, "--http-socket", str(self.plan.http_socket),
               "--submit-socket", str(self.plan.submit_socket), "--owner", str(os.getpid()),
               "--log-level", self.plan.log_level, "--index", str(index)]
        if self.plan.config is not None:
            cmd += ["--config", self.plan.config]
        return subprocess.Popen(cmd, pass_fds=(self.plan.listen_fd,))

    def _watch(self) -> None:
        """Start a new acceptor when one exits while the service runs."""
        import time

        while not self._stopping:
            for i, proc in enumerate(self._procs):
                if proc.poll() is not None and not self._stopping:
                    log.warning("acceptor %d (pid %d) exited with %s: starting another", i, proc.pid, proc.returncode)
                    self._procs[i] = self._spawn(i)
            time.sleep(0.5)

    async def stop(self) -> None:
        """Stop the acceptors (they finish their requests: submissions are still served), then
        the submission server."""
        self._stopping = True
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self._procs:
            try:
                await asyncio.to_thread(proc.wait, 15)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for path in (self.plan.submit_socket, self.plan.http_socket):
            try:
                path.unlink()
            except OSError:
                pass
        try:
            self.plan.directory.rmdir()
        except OSError:
            pass

    # -- submissions --
    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readexactly(FRAME.size)
                length, request_id = FRAME.unpack(head)
                payload = await reader.readexactly(length)
                task = asyncio.ensure_future(self._handle(request_id, payload, writer))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _handle(self, request_id: int, payload: bytes, writer: asyncio.StreamWriter) -> None:
        keys = self.state.keys
        version = keys.version if keys is not None else 0
        try:
            message = pickle.loads(payload)
            kind = message[0]
            if kind == "keys":
                answer: tuple[Any, ...] = ("keys", version, dict(keys.callers()) if keys is not None else {})
            elif kind == "submit":
                _, key_id, payload = message
                if key_id not in self._live_ids():
                    answer = ("revoked", version)
                else:
                    assert self.state.writer is not None
                    try:
                        items = pickle.loads(payload)  # journaled as received: not pickled again
                        answer = ("ok", version, await self.state.writer.submit(items, payload=payload))
                    except WriteFailed as exc:
                        answer = ("failed", version, str(exc))
            else:  # pragma: no cover - both ends are this module's
                answer = ("failed", version, f"unknown request {kind!r}")
        except Exception as exc:  # never leave an acceptor waiting
            log.exception("submission from an acceptor failed")
            answer = ("failed", version, f"could not store the events ({type(exc).__name__}): retry later")
        if not writer.is_closing():
            writer.write(frame(request_id, answer))
