"""A real patron service for tests: ``patron serve`` in a subprocess on a free loopback port.

>>> with running_service(tmp_path / "s.duckdb") as svc:      # doctest: +SKIP
...     httpx.post(svc.url + "/v1/track", json={...}, auth=(svc.keys["write"], ""))
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROLES = ("write", "read", "admin")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def create_keys(db: str | os.PathLike[str]) -> dict[str, str]:
    """One key per role in ``db`` (the service must not be running), by role."""
    from patron.service.auth import create_key

    return {role: create_key(db, role, name=f"test-{role}") for role in ROLES}


@dataclass
class Service:
    """A running ``patron serve`` process."""

    db: Path
    port: int
    keys: dict[str, str]
    config: Path | None = None
    log: Path | None = None
    command: tuple[str, ...] = (sys.executable, "-m", "patron", "serve")
    """The program and arguments before ``--db`` (a profiling wrapper, in the load benchmark)."""
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def auth(self, role: str) -> tuple[str, str]:
        """HTTP Basic credentials as the Segment SDKs send them: the key as user, empty password."""
        return (self.keys[role], "")

    def client(self, role: str | None = None, **kw: object) -> httpx.Client:
        """An httpx client on the service (authenticated as ``role`` when given)."""
        auth = self.auth(role) if role else None
        return httpx.Client(base_url=self.url, auth=auth, timeout=30, **kw)  # type: ignore[arg-type]

    def start(self, timeout: float = 30.0) -> None:
        """Start the process and wait until /health answers."""
        cmd = [*self.command, "--db", str(self.db), "--port", str(self.port)]
        if self.config is not None:
            cmd += ["--config", str(self.config)]
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        self.process = subprocess.Popen(cmd, stdout=out, stderr=out, cwd=self.db.parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log.read_text()[-2000:] if self.log else ""
                raise RuntimeError(f"patron serve exited with {self.process.returncode}: {tail}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("patron serve did not answer /health in time")

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (graceful: the writer commits what is queued) and wait up to ``timeout`` s."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """SIGKILL: no chance to flush anything."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self.process = None


@contextmanager
def running_service(db: str | os.PathLike[str], *, config: str | os.PathLike[str] | None = None,
                    keys: dict[str, str] | None = None) -> Iterator[Service]:
    """Keys for every role (created unless given), then ``patron serve`` on ``db``; stopped on exit."""
    db = Path(db)
    svc = Service(db=db, port=free_port(), keys=keys or create_keys(db),
                  config=Path(config) if config else None, log=db.with_suffix(".serve.log"))
    svc.start()
    try:
        yield svc
    finally:
        svc.stop()
