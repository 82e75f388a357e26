"""Webhook delivery of the outbox: signed POSTs, at least once, with backoff, rate limits and a
dead-letter state.

A :class:`Deliverer` runs on its own thread. Each round it reads the firings in state ``pending``
whose next attempt is due (committed rows only: a firing is posted after the transaction that
decided it committed), posts each on a small pool of threads, and records the outcomes in one
transaction. It never touches the event path: the writer only wakes it (:meth:`Deliverer.kick`).

The request. ``POST`` of the firing's JSON body to the destination's ``url`` with headers

* ``Content-Type: application/json``;
* ``Idempotency-Key``: the firing id (the same on every attempt: a receiver that saw it already
  answers 2xx and does nothing);
* ``X-Patron-Timestamp``: seconds since the epoch (UTC) when the attempt was signed;
* ``X-Patron-Signature``: ``v1=`` and the hex HMAC-SHA256, keyed by the destination's secret, of
  ``f"{timestamp}.{body}"`` (when the destination names a secret).

A receiver verifies (Python)::

    import hashlib, hmac, time
    def verify(secret: bytes, headers, body: bytes, tolerance_s: int = 300) -> bool:
        ts = headers["X-Patron-Timestamp"]
        want = hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        got = headers["X-Patron-Signature"].removeprefix("v1=")
        return hmac.compare_digest(want, got) and abs(time.time() - int(ts)) <= tolerance_s

Outcomes. A 2xx is ``delivered``. A 408, 425, 429, 5xx, a timeout or a network error is retried
after an exponential backoff with jitter (:func:`backoff_seconds`); any other answer (400, 401, 404,
...) cannot heal by retrying and dead-letters the firing at once. After the destination's
``max_attempts`` the firing is ``dead`` with the last reason in ``last_error``.

At least once. The outcome is recorded after the answer: a process killed between the two posts
the firing again after a restart, with the same idempotency key. Undelivered firings are in the
database, so a restart resumes them (nothing is held only in memory).

Rate limit. At most ``rate_per_second`` requests start per second per destination (requests are
spaced ``1 / rate`` seconds apart; a firing not yet allowed waits for a later round).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import logging
import random
import threading
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa

from patron._version import __version__
from patron.contact.dialogue.outbox import PENDING_SQL, body_of
from patron.contact.dialogue.rules import Destination

log = logging.getLogger("patron.dialogue.delivery")

BASE_BACKOFF_S = 0.5
"""Backoff before the second attempt, in seconds (doubling after each failure)."""
MAX_BACKOFF_S = 300.0
"""Longest backoff, in seconds."""
POLL_S = 0.25
"""Longest sleep between two rounds when nothing wakes the deliverer, in seconds."""
SCHEDULE_S = 0.5
"""Longest time between two runs of ``on_round`` (the scheduler of delayed firings), in seconds."""
RECORD_S = 1.0
"""Shortest time between two transactions recording successful deliveries, in seconds (they wait
in memory meanwhile: a kill -9 then posts those firings again, with the same idempotency key); a
failure is recorded at the next round, so that its retry is scheduled on time."""
ROUND_GAP_S = 0.02
"""Shortest time between two rounds, in seconds: wake-ups that come closer together (a commit of
events, a failed post) are served by one round, so that the deliverer's reads stay off the writer's
interpreter time at high firing rates."""
WORKERS = 8
"""Requests in flight at once (over all destinations)."""
BATCH = 200
"""Most firings read per round."""
RETRY_STATUSES = frozenset({408, 425, 429})
"""Non-5xx answers that are retried."""


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The ``X-Patron-Signature`` value: ``v1=`` + hex HMAC-SHA256 of ``timestamp.body``."""
    return "v1=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(secret: bytes, timestamp: str, body: bytes, signature: str, *, now: float | None = None,
           tolerance_s: float = 300.0) -> bool:
    """Whether ``signature`` signs ``body`` at ``timestamp`` with ``secret`` and the timestamp is
    within ``tolerance_s`` seconds of ``now`` (what a receiver checks; see the module docstring)."""
    want = sign(secret, timestamp, body)
    try:
        fresh = abs((time.time() if now is None else now) - int(timestamp)) <= tolerance_s
    except ValueError:
        return False
    return hmac.compare_digest(want, signature) and fresh


def backoff_seconds(attempts: int, rng: random.Random | None = None) -> float:
    """Seconds to wait after the ``attempts``-th failure: ``BASE * 2**(attempts-1)`` capped at
    :data:`MAX_BACKOFF_S`, times a uniform jitter in [0.5, 1)."""
    base = min(MAX_BACKOFF_S, BASE_BACKOFF_S * 2 ** max(0, attempts - 1))
    return base * (0.5 + 0.5 * (rng or random).random())


@dataclass(slots=True)
class Attempt:
    """One POST's outcome: ``ok``, whether it may be retried, the reason of a failure."""

    firing_id: str
    ok: bool
    retry: bool
    reason: str | None
    attempts: int
    destination: str


_local = threading.local()


def _connection(url: urllib.parse.SplitResult, timeout: float, *, fresh: bool = False) -> http.client.HTTPConnection:
    """This thread's keep-alive connection to ``url``'s host (a new one when ``fresh``)."""
    pool: dict[tuple[str, str, int | None], http.client.HTTPConnection] = _local.__dict__.setdefault("pool", {})
    key = (url.scheme, url.hostname or "", url.port)
    conn = pool.get(key)
    if conn is None or fresh:
        if conn is not None:
            conn.close()
        cls = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        conn = cls(url.hostname or "", url.port, timeout=timeout)
        pool[key] = conn
    conn.timeout = timeout
    return conn


def post(dest: Destination, firing_id: str, body: str, *, secret: bytes | None) -> tuple[bool, bool, str | None]:
    """POST ``body`` to ``dest`` on a kept-alive connection (one per delivery thread and host; a
    connection the server closed is opened again once); returns ``(ok, retryable, reason)``."""
    data = body.encode()
    ts = str(int(time.time()))
    headers = {"Content-Type": "application/json", "Idempotency-Key": firing_id, "X-Patron-Timestamp": ts,
               "User-Agent": f"patron/{__version__}"}
    if secret is not None:
        headers["X-Patron-Signature"] = sign(secret, ts, data)
    url = urllib.parse.urlsplit(dest.url)
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    for attempt in (0, 1):
        conn = _connection(url, dest.timeout_seconds, fresh=attempt > 0)
        try:
            conn.request("POST", path, body=data, headers=headers)
            resp = conn.getresponse()
            resp.read(64 * 1024)
            if resp.will_close:
                conn.close()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
            conn.close()
            if attempt == 0:
                continue  # a kept-alive connection the receiver had closed: once more on a new one
            return False, True, f"{type(exc).__name__}: {exc}"[:300]
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            conn.close()
            return False, True, f"{type(exc).__name__}: {exc}"[:300]
        code = resp.status
        if 200 <= code < 300:
            return True, False, None
        return False, code >= 500 or code in RETRY_STATUSES, f"HTTP {code}"
    return False, True, "connection closed"  # pragma: no cover - the loop returns


Outbox = Any
"""What the deliverer reads and writes through: an object with ``reading()`` (a context manager
giving a cursor on committed data) and ``write(fn)`` (runs ``fn(cursor)`` in one transaction)."""


def _post_at(slot: float, dest: Destination, firing_id: str, body: str, *,
             secret: bytes | None) -> tuple[bool, bool, str | None]:
    """:func:`post` at the monotonic time ``slot`` (the destination's rate limit): one round
    schedules every post due before the next round, each in its own slot."""
    wait = slot - time.monotonic()
    if wait > 0:
        time.sleep(wait)
    return post(dest, firing_id, body, secret=secret)


class Deliverer:
    """Posts pending firings to their destinations (module docstring). ``destinations`` by name;
    ``clock`` the naive-UTC now; ``on_round`` (optional) runs each round with the cursor-taking
    ``write`` -- the service uses it to decide scheduled firings whose time came."""

    def __init__(self, reading: Callable[[], AbstractContextManager[Any]], write: Callable[[Callable[[Any], Any]], Any],
                 destinations: dict[str, Destination], *, clock: Callable[[], datetime],
                 on_round: Callable[[], None] | None = None, workers: int = WORKERS) -> None:
        self.reading = reading
        self.write = write
        self.destinations = destinations
        self.clock = clock
        self.on_round = on_round
        self._secrets = {n: d.secret() for n, d in destinations.items()}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="patron-delivery")
        self._in_flight: set[str] = set()
        self._done: list[Attempt] = []
        self._done_lock = threading.Lock()
        self._next_start: dict[str, float] = {}
        self._rng = random.Random()
        self.rounds = 0
        self._last_schedule = 0.0
        self._last_record = 0.0

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="patron-deliverer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking work, wait for requests in flight (up to ``timeout``) and record them."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._pool.shutdown(wait=True, cancel_futures=True)
        try:
            self._record()
        except Exception:  # the database may be closing: the firings stay pending and resume
            log.exception("could not record the last delivery outcomes")

    def kick(self) -> None:
        """Wake the deliverer (new firings were committed)."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(POLL_S)
            self._stop.wait(ROUND_GAP_S)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.round()
            except Exception:  # a bad round must not end deliveries; the rows stay in the outbox
                log.exception("delivery round failed")
                self._stop.wait(1.0)

    def round(self) -> int:
        """One round: record finished attempts (each record is a transaction: successes at most
        every :data:`RECORD_S`, failures at once), run ``on_round``, start due posts. Returns the
        posts started."""
        self.rounds += 1
        with self._done_lock:
            failed = any(not a.ok for a in self._done)
        if failed or time.monotonic() - self._last_record >= RECORD_S:  # a failure: its retry time at once
            self._last_record = time.monotonic()
            self._record()
        if self.on_round is not None and time.monotonic() - self._last_schedule >= SCHEDULE_S:
            self._last_schedule = time.monotonic()
            self.on_round()
        now = self.clock()
        with self.reading() as con:
            rows = con.execute(PENDING_SQL, [now, BATCH + len(self._in_flight)]).fetchall()
        started = 0
        mono = time.monotonic()
        for row in rows:
            fid, dest_name, attempts = row[0], row[1], row[2]
            if fid in self._in_flight:
                continue
            dest = self.destinations.get(dest_name)
            if dest is None:
                self._finish(Attempt(fid, False, False, f"destination {dest_name!r} is no longer declared",
                                     attempts + 1, dest_name))
                continue
            slot = max(self._next_start.get(dest_name, 0.0), mono)
            if slot > mono + POLL_S:
                continue  # rate limit: past the next round's time, a later round
            self._next_start[dest_name] = slot + 1.0 / dest.rate_per_second
            self._in_flight.add(fid)
            fut = self._pool.submit(_post_at, slot, dest, fid, body_of(row), secret=self._secrets.get(dest_name))
            fut.add_done_callback(lambda f, fid=fid, n=attempts + 1, d=dest_name: self._posted(f, fid, n, d))
            started += 1
        if any(v > time.monotonic() for v in self._next_start.values()) and rows and started < len(rows):
            threading.Timer(0.05, self._wake.set).start()  # rate-limited rows wait a little, not a whole poll
        return started

    def _posted(self, fut: Future[tuple[bool, bool, str | None]], fid: str, attempts: int, dest: str) -> None:
        try:
            ok, retry, reason = fut.result()
        except Exception as exc:  # pragma: no cover - post catches what urllib raises
            ok, retry, reason = False, True, f"{type(exc).__name__}: {exc}"[:300]
        self._finish(Attempt(fid, ok, retry, reason, attempts, dest))
        if not ok:  # a failure is recorded (and its retry scheduled) at once; successes wait for RECORD_S
            self._wake.set()

    def _finish(self, attempt: Attempt) -> None:
        with self._done_lock:
            self._done.append(attempt)

    def _record(self) -> None:
        """Write the finished attempts in one transaction."""
        with self._done_lock:
            done, self._done = self._done, []
        if not done:
            return
        now = self.clock()
        rows = []
        for a in done:
            dest = self.destinations.get(a.destination)
            max_attempts = dest.max_attempts if dest is not None else 1
            if a.ok:
                rows.append([a.firing_id, "delivered", a.attempts, None, None, now])
            elif a.retry and a.attempts < max_attempts:
                wait = backoff_seconds(a.attempts, self._rng)
                rows.append([a.firing_id, "pending", a.attempts, now + timedelta(seconds=wait), a.reason, None])
            else:
                rows.append([a.firing_id, "dead", a.attempts, None, a.reason, None])

        def apply(con: Any) -> None:
            cols = list(zip(*rows, strict=True))
            _rows = pa.table({
                "firing_id": pa.array(cols[0], pa.string()), "state": pa.array(cols[1], pa.string()),
                "attempts": pa.array(cols[2], pa.int32()), "next_attempt_at": pa.array(cols[3], pa.timestamp("us")),
                "error": pa.array(cols[4], pa.string()), "delivered_at": pa.array(cols[5], pa.timestamp("us"))})
            con.execute(
                "UPDATE trigger_firings SET state = r.state, attempts = r.attempts, next_attempt_at = r.next_attempt_at, "
                "last_error = coalesce(r.error, trigger_firings.last_error), delivered_at = r.delivered_at FROM _rows r "
                "WHERE trigger_firings.firing_id = r.firing_id AND trigger_firings.state = 'pending'")

        try:
            self.write(apply)
        finally:
            for a in done:
                self._in_flight.discard(a.firing_id)
        for fid, s, n, _, err, _ in rows:
            if s == "dead":
                log.warning("firing %s dead after %d attempt(s): %s", fid, n, err)


__all__ = ["Deliverer", "backoff_seconds", "post", "sign", "verify"]
