"""A local webhook receiver for the dialogue tests and benchmark: ``http.server`` on a free port in
a thread, recording every request, answering from a script of status codes per path.

>>> with Receiver() as rx:                          # doctest: +SKIP
...     rx.script["/flaky"] = [500, 500, 500]      # three failures, then 200
...     url = rx.url + "/flaky"
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    """One request as the receiver saw it (``at``: ``time.time()`` on arrival)."""

    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A webhook receiver. ``script[path]`` lists the status codes of the next requests to
    ``path`` (then 200); ``always[path]`` answers every request to ``path`` with that code;
    ``accepted`` keeps the idempotency keys answered 2xx once (a repeated key is answered 200 and
    not accepted again)."""

    script: dict[str, list[int]] = field(default_factory=dict)
    always: dict[str, int] = field(default_factory=dict)
    requests: list[Received] = field(default_factory=list)
    accepted: dict[str, Received] = field(default_factory=dict)
    http10: bool = False
    """Answer as HTTP/1.0 (a new connection per request) instead of keeping connections alive."""
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Receiver:
        rx = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0" if rx.http10 else "HTTP/1.1"  # keep-alive, as a real receiver

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with rx._lock:
                    queued = rx.script.get(self.path)
                    code = queued.pop(0) if queued else rx.always.get(self.path, 200)
                    got = Received(self.path, dict(self.headers.items()), body, code, time.time())
                    rx.requests.append(got)
                    key = self.headers.get("Idempotency-Key")
                    if code < 300 and key and key not in rx.accepted:
                        rx.accepted[key] = got
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def to(self, path: str) -> list[Received]:
        """Requests received on ``path``."""
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def wait(self, predicate: Any, timeout: float = 20.0) -> bool:
        """Wait until ``predicate(self)`` is true (polling every 20 ms); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.02)
        return bool(predicate(self))
