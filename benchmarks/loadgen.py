"""A light load generator for ``patron serve``: Segment events over raw keep-alive HTTP/1.1.

Runs as its own process (on loopback the server and this generator share the machine's cores, so
it is kept cheap: asyncio on uvloop when installed, hand-written HTTP/1.1 on keep-alive sockets,
event bodies built from templates with ``json.dumps``; no HTTP client library).

Two ways to run:

* **timed** (``--duration S``, the benchmark): ``--connections N`` loops each send a request,
  wait for the response and send the next (closed loop; ``--rate R`` instead paces requests at R
  per second in all, latency counted from the intended send time). Requests completing during
  ``--warmup`` seconds are not counted in the figures.
* **fixed set** (``--events K``, the durability test): K events generated up front (from
  ``--seed``) are sent once each; a request that fails (connection refused or reset, timeout, 5xx,
  429) is sent again with the same messageIds until acknowledged, as the Segment SDKs retry, until
  ``--give-up`` seconds have passed.

Either way, the messageIds of every event of a 2xx response are appended to ``--acked FILE`` as the
responses arrive (one per line, flushed after each response), and a JSON summary is printed as the
last line of stdout (and written to ``--json-out``): events/s over the measured window, latency
percentiles in ms, responses by status.

Events (a realistic mix, by weight): ``track "Order Completed"`` (order_id, revenue, currency,
products), ``identify`` (traits.email), ``page``, ``track "Email Delivered"/"Email Opened"``
(email events), ``track "Product Viewed"``, each stamped (``timestamp``, ``sentAt``) with the time
its request is made, as an SDK does. Persons come from a pool of ``--users`` user ids, each
with one anonymousId and an email, all three carrying the seed (runs with different seeds share no
identifier, so they never link two persons). ``--endpoint batch`` sends ``--batch-size`` events per
``/v1/batch``; ``track`` sends track events one per ``/v1/track``; ``single`` sends every kind one
per request to its own endpoint (``/v1/track``, ``/v1/identify``, ``/v1/page``).

MessageIds are ``lg-<run>-<letter><n>`` (letter: :data:`KIND_CODES`; ``o`` for an order, whose
``properties.order_id`` is ``o-<messageId>``), unique across runs with different seeds.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gzip
import json
import random
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httptools

MIX: tuple[tuple[str, float], ...] = (
    ("order", 0.20),
    ("identify", 0.15),
    ("page", 0.30),
    ("email_delivered", 0.10),
    ("email_opened", 0.05),
    ("product_viewed", 0.20),
)
"""Kinds of events and their share of the generated stream (weights sum to 1)."""

KIND_CODES: dict[str, str] = {"order": "o", "identify": "i", "page": "p", "email_delivered": "e",
                               "email_opened": "e", "product_viewed": "v"}
"""Letter of each kind in the messageId (``lg-<run>-<letter><n>``), so a checker knows which
acknowledged events were orders (order_id ``o-<messageId>``) without trusting the server."""

TRACK_KINDS: frozenset[str] = frozenset({"order", "email_delivered", "email_opened", "product_viewed"})
"""The kinds sent as ``track`` events (the only ones used by ``--endpoint track``)."""

RETRY_STATUSES: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504})
"""Statuses after which a fixed-set run sends the same request again (as the SDKs do)."""

PRODUCTS: tuple[tuple[str, str, float], ...] = (
    ("sku-1001", "Espresso beans 1 kg", 24.90),
    ("sku-1002", "Moka pot", 39.00),
    ("sku-1003", "Milk frother", 59.50),
    ("sku-1004", "Paper filters x100", 4.20),
    ("sku-1005", "Grinder", 129.00),
)
"""Catalogue the order events draw their products from: (product_id, name, unit price)."""


# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------


MID = "@@MID@@"
"""Placeholder of the messageId in an event template."""

WHO = "@@WHO@@"
"""Placeholder of the person's index in an event template."""

NOW = "@@NOW@@"
"""Placeholder of the event's ``timestamp`` and ``sentAt`` (the time the event is made, as an SDK
stamps it; a time fixed at start-up would make every later event of a person look older than
the first, which real traffic does not do)."""

TEMPLATES = 2048
"""Event templates built at start-up (events are templates with a fresh messageId and person)."""


@dataclass
class EventMaker:
    """Builds Segment events with unique messageIds, deterministically from ``seed``.

    Building a dict and serialising it costs ~40 us an event, as much as the server's work per
    event; so :data:`TEMPLATES` events are serialised once with placeholders, and each event is a
    template with its messageId and person substituted (~1 us)."""

    seed: int = 0
    users: int = 10_000
    rng: random.Random = field(init=False)
    _run: str = field(init=False)
    _n: int = field(default=0, init=False)
    _all: list[tuple[str, str, str]] = field(init=False)
    _track: list[tuple[str, str, str]] = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self._run = uuid.UUID(int=self.rng.getrandbits(128)).hex[:12]
        kinds, weights = [k for k, _ in MIX], [w for _, w in MIX]
        self._all, self._track = [], []
        for kind in self.rng.choices(kinds, weights, k=TEMPLATES):
            event = self.template(kind)
            pair = (event["type"], KIND_CODES[kind], json.dumps(event, separators=(",", ":")))
            self._all.append(pair)
            if kind in TRACK_KINDS:
                self._track.append(pair)

    def template(self, kind: str) -> dict[str, Any]:
        """An event of ``kind`` with placeholders for its messageId and person."""
        rng = self.rng
        user_id, anon, email = (f"u{self.seed}-{WHO}", f"anon-{self.seed}-{WHO}",
                                f"User.{self.seed}.{WHO}@Example.com ")
        now = NOW
        base: dict[str, Any] = {
            "messageId": MID,
            "anonymousId": anon,
            "userId": user_id,
            "timestamp": now,
            "sentAt": now,
            "context": {"library": {"name": "patron-loadgen", "version": "1"}, "ip": "127.0.0.1"},
        }
        if kind == "identify":
            base.update(type="identify", traits={"email": email, "name": f"User {WHO}",
                                                 "plan": rng.choice(("free", "plus", "pro"))})
        elif kind == "page":
            base.update(type="page", name=rng.choice(("Home", "Catalogue", "Cart", "Blog")),
                        properties={"path": "/", "url": "https://shop.example.com/",
                                    "title": "Shop", "referrer": ""})
        elif kind == "order":
            items = [rng.choice(PRODUCTS) for _ in range(rng.randint(1, 3))]
            products = [{"product_id": p, "name": n, "price": price, "quantity": 1}
                        for p, n, price in items]
            revenue = round(sum(price for _, _, price in items), 2)
            base.update(type="track", event="Order Completed",
                        properties={"order_id": "o-" + MID, "revenue": revenue,
                                    "currency": "EUR", "products": products})
        elif kind in ("email_delivered", "email_opened"):
            name = "Email Delivered" if kind == "email_delivered" else "Email Opened"
            base.update(type="track", event=name,
                        properties={"email_id": f"em-{rng.randrange(1000)}",
                                    "email_subject": "Our autumn selection",
                                    "campaign_id": "c-42", "campaign_name": "Autumn"})
        else:
            base.update(type="track", event="Product Viewed",
                        properties={"product_id": rng.choice(PRODUCTS)[0], "price": 24.9,
                                    "currency": "EUR"})
        return base

    def event(self, *, track_only: bool = False, now: str | None = None) -> tuple[str, str, str]:
        """The next event: (type, messageId, JSON text), stamped ``now`` (ISO 8601 text; default:
        the current time)."""
        self._n += 1
        pool = self._track if track_only else self._all
        kind, code, text = pool[self._n % len(pool)]
        mid = f"lg-{self._run}-{code}{self._n}"
        who = str(self.rng.randrange(self.users))
        return kind, mid, text.replace(MID, mid).replace(WHO, who).replace(NOW, now or iso_now())


def iso_now() -> str:
    """The current time as Segment's SDKs write it (``2024-03-31T14:05:00.123Z``)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Request:
    """One HTTP request ready to send and the messageIds it carries."""

    path: str
    body: bytes
    ids: list[str]
    gzipped: bool = False


def make_request(maker: EventMaker, endpoint: str, batch_size: int, use_gzip: bool) -> Request:
    """The next request of a run: a batch of events or one event to its own endpoint."""
    now = iso_now()
    if endpoint == "batch":
        events = [maker.event(now=now) for _ in range(batch_size)]
        path = "/v1/batch"
        body = ('{"batch":[' + ",".join(text for _, _, text in events) + "]}").encode()
        ids = [mid for _, mid, _ in events]
    else:
        kind, mid, text = maker.event(track_only=endpoint == "track", now=now)
        path, body, ids = f"/v1/{kind}", text.encode(), [mid]
    if use_gzip:
        body = gzip.compress(body, compresslevel=1)
    return Request(path, body, ids, use_gzip)


# --------------------------------------------------------------------------------------------
# HTTP/1.1 over one keep-alive connection
# --------------------------------------------------------------------------------------------


class ConnectionLost(Exception):
    """The connection failed or closed before a whole response arrived."""


class _Client(asyncio.Protocol):
    """The transport side of :class:`Http1`: feeds bytes to httptools' response parser."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._fail(exc or ConnectionResetError("closed by the server"))

    def _fail(self, exc: BaseException) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((self.parser.get_status_code(), b"".join(self.body),
                                    self.parser.should_keep_alive()))
        self.body = []


class Http1:
    """One keep-alive HTTP/1.1 connection (reconnects on the next request after a failure)."""

    def __init__(self, host: str, port: int, auth: str, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.head = (f"Host: {host}:{port}\r\nAuthorization: Basic {auth}\r\n"
                     "Content-Type: application/json\r\nUser-Agent: patron-loadgen/1\r\n")
        self.proto: _Client | None = None
        self.sent_at = 0.0

    async def close(self) -> None:
        if self.proto is not None and self.proto.transport is not None:
            self.proto.transport.close()
        self.proto = None

    async def send(self, req: Request) -> tuple[int, bytes]:
        """(status, body) of ``req``; raises :class:`ConnectionLost` on any transport failure
        (a response slower than ``timeout`` is one: :meth:`watchdog` aborts the connection)."""
        loop = asyncio.get_running_loop()
        try:
            if self.proto is None or self.proto.transport is None:
                self.sent_at = time.perf_counter()
                _, self.proto = await asyncio.wait_for(
                    loop.create_connection(_Client, self.host, self.port), self.timeout)
            proto = self.proto
            assert proto.transport is not None
            proto.waiter = loop.create_future()
            enc = "Content-Encoding: gzip\r\n" if req.gzipped else ""
            self.sent_at = time.perf_counter()
            proto.transport.write(f"POST {req.path} HTTP/1.1\r\n{self.head}{enc}Content-Length: "
                                  f"{len(req.body)}\r\n\r\n".encode() + req.body)
            status, body, keep_alive = await proto.waiter
        except (OSError, TimeoutError, httptools.HttpParserError) as exc:
            await self.close()
            raise ConnectionLost(type(exc).__name__) from exc
        finally:
            self.sent_at = 0.0
        if not keep_alive:
            await self.close()
        return status, body

    def watchdog(self, now: float) -> None:
        """Abort the connection when its request has waited more than ``timeout`` seconds (one
        timer for all requests: a timeout per request costs as much as the request)."""
        if self.sent_at and now - self.sent_at > self.timeout and self.proto is not None:
            self.proto._fail(TimeoutError("no response in time"))
            if self.proto.transport is not None:
                self.proto.transport.abort()


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


@dataclass
class Tally:
    """What a run measured."""

    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    events_acked: int = 0
    requests: int = 0
    first_error: dict[str, str] = field(default_factory=dict)


def acked_ids(status: int, body: bytes, ids: list[str]) -> list[str]:
    """The messageIds a 2xx response acknowledges: all of them, minus any the response names as
    rejected (a mixed batch answers 2xx and lists the bad events; the generator sends none)."""
    if not 200 <= status < 300:
        return []
    if b'"messageId"' not in body and b'"index"' not in body:
        return ids
    try:
        doc = json.loads(body) if body else {}
    except ValueError:
        return ids
    rejected: set[str] = set()
    if isinstance(doc, dict):
        for key in ("rejected", "errors", "invalid"):
            for item in doc.get(key) or ():
                if isinstance(item, dict):
                    if item.get("messageId"):
                        rejected.add(str(item["messageId"]))
                    elif isinstance(item.get("index"), int) and 0 <= item["index"] < len(ids):
                        rejected.add(ids[item["index"]])
    return [i for i in ids if i not in rejected] if rejected else ids


def percentile(sorted_values: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) of ascending values, nearest rank; NaN when empty."""
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    url = urlsplit(args.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    auth = base64.b64encode(f"{args.key}:".encode()).decode()
    maker = EventMaker(seed=args.seed, users=args.users)
    tally = Tally()
    acked_file = open(args.acked, "a", encoding="utf-8") if args.acked else None
    clock = time.perf_counter  # uvloop's loop.time() has 1 ms resolution
    cpu0 = time.process_time()
    start = clock()
    measure_from = start + (args.warmup if args.duration else 0.0)
    stop_at = measure_from + args.duration if args.duration else start + args.give_up
    measured_end = [start]

    def record(status: int | str, latency: float, req: Request, body: bytes, t_done: float) -> None:
        counted = t_done >= measure_from
        key = str(status)
        ok = acked_ids(status, body, req.ids) if isinstance(status, int) else []
        if ok and acked_file is not None:
            if args.acked_times:  # wall-clock time of the acknowledgement beside each id
                stamp = f"\t{time.time():.6f}"
                acked_file.write("".join(i + stamp + "\n" for i in ok))
            else:
                acked_file.write("\n".join(ok) + "\n")
            acked_file.flush()
        if not (isinstance(status, int) and 200 <= status < 300) and key not in tally.first_error:
            tally.first_error[key] = body[:300].decode("utf-8", "replace")
        if counted:
            tally.statuses[key] += 1
            tally.requests += 1
            tally.latencies_ms.append(latency * 1000)
            tally.events_acked += len(ok)
            measured_end[0] = t_done

    if args.events:  # the fixed set: generate everything first
        pending: asyncio.Queue[Request] = asyncio.Queue()
        reqs = []
        left = args.events
        while left > 0:
            size = min(args.batch_size, left) if args.endpoint == "batch" else 1
            reqs.append(make_request(maker, args.endpoint, size, False))
            left -= size
        for r in reqs:
            pending.put_nowait(r)
        if args.sent:
            with open(args.sent, "w", encoding="utf-8") as f:
                f.write("\n".join(i for r in reqs for i in r.ids) + "\n")

    conns = [Http1(host, port, auth, args.timeout) for _ in range(args.connections)]

    async def watchdog() -> None:
        while True:
            await asyncio.sleep(0.25)
            now = clock()
            for c in conns:
                c.watchdog(now)

    async def worker(n: int) -> None:
        conn = conns[n]
        interval = args.connections / args.rate if args.rate else 0.0
        next_at = clock() + (n * interval / args.connections if interval else 0.0)
        try:
            while clock() < stop_at:
                if args.events:
                    try:
                        req = pending.get_nowait()
                    except asyncio.QueueEmpty:
                        return
                    backoff = 0.05
                    while True:  # retry the same request until acknowledged (or give-up time)
                        t0 = clock()
                        try:
                            status, body = await conn.send(req)
                        except ConnectionLost as exc:
                            status, body = f"conn:{exc}", b""
                        t1 = clock()
                        record(status, t1 - t0, req, body, t1)
                        retry = not isinstance(status, int) or status in RETRY_STATUSES
                        if not retry or t1 >= stop_at:
                            break
                        await asyncio.sleep(backoff)
                        backoff = min(backoff * 2, 0.5)
                    continue
                req = make_request(maker, args.endpoint, args.batch_size, args.gzip)
                if interval:
                    delay = next_at - clock()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    t0 = next_at
                    next_at += interval
                else:
                    t0 = clock()
                try:
                    status, body = await conn.send(req)
                except ConnectionLost as exc:
                    status, body = f"conn:{exc}", b""
                    await asyncio.sleep(0.05)
                t1 = clock()
                record(status, t1 - t0, req, body, t1)
        finally:
            await conn.close()

    dog = asyncio.ensure_future(watchdog())
    await asyncio.gather(*(worker(i) for i in range(args.connections)))
    dog.cancel()
    end = clock()
    if acked_file is not None:
        acked_file.close()
    window = (end if args.events else max(measured_end[0], measure_from)) - measure_from
    lat = sorted(tally.latencies_ms)
    summary = {
        "endpoint": args.endpoint,
        "connections": args.connections,
        "batch_size": args.batch_size if args.endpoint == "batch" else 1,
        "seconds": round(window, 3),
        "requests": tally.requests,
        "events_acked": tally.events_acked,
        "events_per_s": round(tally.events_acked / window, 1) if window > 0 else 0.0,
        "requests_per_s": round(tally.requests / window, 1) if window > 0 else 0.0,
        "p50_ms": round(percentile(lat, 0.50), 2),
        "p95_ms": round(percentile(lat, 0.95), 2),
        "p99_ms": round(percentile(lat, 0.99), 2),
        "max_ms": round(lat[-1], 2) if lat else float("nan"),
        "statuses": dict(tally.statuses),
        "first_error": tally.first_error,
        "pending": pending.qsize() if args.events else 0,
        "loadgen_cpu_s": round(time.process_time() - cpu0, 2),
    }
    return summary


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True, help="Service base URL, e.g. http://127.0.0.1:8000")
    p.add_argument("--key", required=True, help="Write key (sent as the Basic user name)")
    p.add_argument("--endpoint", choices=("batch", "track", "single"), default="batch")
    p.add_argument("--batch-size", type=int, default=100, help="Events per /v1/batch request")
    p.add_argument("--connections", type=int, default=8, help="Concurrent keep-alive connections")
    p.add_argument("--duration", type=float, default=0.0, help="Measured seconds (timed run)")
    p.add_argument("--warmup", type=float, default=2.0, help="Seconds before measuring (timed run)")
    p.add_argument("--rate", type=float, default=0.0,
                   help="Requests per second in all (open loop); 0: closed loop, as fast as answered")
    p.add_argument("--events", type=int, default=0, help="Send this fixed set of events (retrying)")
    p.add_argument("--give-up", type=float, default=120.0,
                   help="Fixed set: stop retrying after this many seconds")
    p.add_argument("--timeout", type=float, default=10.0, help="Seconds to wait for one response")
    p.add_argument("--users", type=int, default=10_000, help="Size of the pool of persons")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gzip", action="store_true", help="gzip request bodies (timed run)")
    p.add_argument("--acked", help="Append acknowledged messageIds to this file")
    p.add_argument("--acked-times", action="store_true",
                   help="Write 'messageId<TAB>unix time' lines to --acked (the time the 2xx arrived)")
    p.add_argument("--sent", help="Fixed set: write every messageId to this file first")
    p.add_argument("--json-out", help="Also write the summary as JSON to this file")
    p.add_argument("--quiet", action="store_true", help="Print only the JSON summary")
    args = p.parse_args(argv)
    if bool(args.duration) == bool(args.events):
        p.error("give exactly one of --duration and --events")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import uvloop  # type: ignore[import-not-found]

        uvloop.install()
    except ImportError:
        pass
    summary = asyncio.run(run(args))
    if not args.quiet:
        print(f"{summary['endpoint']}: {summary['connections']} connections, "
              f"{summary['events_acked']:,} events acknowledged in {summary['seconds']} s = "
              f"{summary['events_per_s']:,.0f} events/s ({summary['requests_per_s']:,.0f} requests/s); "
              f"latency p50 {summary['p50_ms']} ms, p95 {summary['p95_ms']} ms, "
              f"p99 {summary['p99_ms']} ms; statuses {summary['statuses']}", file=sys.stderr)
    line = json.dumps(summary)
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as f:
            f.write(line + "\n")
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
