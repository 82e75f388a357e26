"""CPU per event of the service's event path, by thread, without sockets: ``/v1/track`` (or
``/v1/batch``) requests sent straight into the ASGI application (:func:`patron.service.create_app`,
its lifespan running: writer, journal) ``--concurrency`` at a time, on uvloop.

What it isolates: the event loop's own work per request (middlewares, key check, body, checks,
mapping, the hand-off to the journal) apart from uvicorn's HTTP parsing and the load generator,
and the writer's and the journal's CPU per event (their threads are named). Each repeat uses a
fresh database; ``--apply-interval-ms`` sets ``[service] apply_interval_ms``. Figures are CPU
milliseconds per event (thread user + system time from the first measured request until every
measured event is applied; the first ``--warmup`` requests excluded) and events/s (up to the last
answer); medians over ``--repeat``. Prints figures, never
asserts.

    .venv/bin/python benchmarks/bench_event_path.py                         # track, 6,000 requests x 3
    .venv/bin/python benchmarks/bench_event_path.py --apply-interval-ms 100 # the former default
    .venv/bin/python benchmarks/bench_event_path.py --endpoint batch --requests 300
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent


def scope_of(path: str, body: bytes, auth: bytes, app: Any) -> dict[str, Any]:
    """The ASGI scope uvicorn would build for ``POST path`` with ``body``."""
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"),
                        (b"authorization", auth), (b"content-length", str(len(body)).encode())],
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "app": app}


async def send_all(app: Any, requests: list[Any], auth: bytes, concurrency: int) -> None:
    """Send ``requests`` (:class:`loadgen.Request`) through ``app``, ``concurrency`` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(r: Any) -> None:
        async with gate:
            delivered = False

            async def receive() -> dict[str, Any]:
                nonlocal delivered
                if delivered:  # nobody waits for a disconnect on this path
                    await asyncio.sleep(3600)
                delivered = True
                return {"type": "http.request", "body": r.body, "more_body": False}

            status: list[int] = []

            async def send(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    status.append(message["status"])

            await app(scope_of(r.path, r.body, auth, app), receive, send)
            if status != [200]:
                raise RuntimeError(f"{r.path} answered {status}")

    await asyncio.gather(*(one(r) for r in requests))


def run_once(args: argparse.Namespace, seed: int) -> dict[str, float]:
    """One fresh database and application; CPU ms per event by thread and events/s."""
    import uvloop

    from loadgen import EventMaker, make_request  # type: ignore[import-not-found]
    from patron.service import create_app
    from patron.service.auth import create_key

    work = Path(tempfile.mkdtemp(prefix="bench_event_path-"))
    db = work / "events.duckdb"
    key = create_key(db, "write", name="bench")
    app = create_app(db, config={"service": {"apply_interval_ms": args.apply_interval_ms}})
    auth = b"Basic " + base64.b64encode(key.encode() + b":")
    maker = EventMaker(seed=seed)
    requests = [make_request(maker, args.endpoint, args.batch_size, False) for _ in range(args.warmup + args.requests)]
    per_request = args.batch_size if args.endpoint == "batch" else 1
    out: dict[str, float] = {}

    async def main() -> None:
        async with app.router.lifespan_context(app):
            await send_all(app, requests[:args.warmup], auth, args.concurrency)
            me = psutil.Process()
            before = {t.id: t.user_time + t.system_time for t in me.threads()}
            t0 = time.perf_counter()
            await send_all(app, requests[args.warmup:], auth, args.concurrency)
            seconds = time.perf_counter() - t0  # events/s: up to the last answer
            await asyncio.to_thread(app.state.patron.writer.wait_applied, 120.0)  # CPU: applied too
            after = {t.id: t.user_time + t.system_time for t in me.threads()}
            names = {t.native_id: t.name for t in threading.enumerate()}
            events = args.requests * per_request
            out["events_per_s"] = events / seconds
            other = 0.0
            for tid, cpu in after.items():
                used = 1000 * (cpu - before.get(tid, 0.0)) / events
                name = names.get(tid)
                if name in ("MainThread", "patron-writer", "patron-journal"):
                    out[name] = used
                else:
                    other += used
            out["other threads"] = other
            out["process"] = sum(v for k, v in out.items() if k not in ("events_per_s", "process"))

    try:
        uvloop.run(main())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--endpoint", choices=("track", "batch"), default="track")
    p.add_argument("--requests", type=int, default=6000, help="Measured requests per repeat")
    p.add_argument("--warmup", type=int, default=200, help="Requests sent first, not measured")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--apply-interval-ms", type=float, default=250.0)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start; {args.endpoint}, "
          f"{args.repeat} x {args.requests:,} requests, {args.concurrency} at a time, "
          f"apply_interval_ms {args.apply_interval_ms:g}", flush=True)
    runs = []
    for i in range(args.repeat):
        r = run_once(args, seed=100 + i)
        runs.append(r)
        print(f"  run {i + 1}: {r['events_per_s']:,.0f} events/s; CPU ms per event: event loop {r['MainThread']:.4f}, "
              f"writer {r.get('patron-writer', 0.0):.4f}, journal {r.get('patron-journal', 0.0):.4f}, "
              f"other threads {r['other threads']:.4f}, process {r['process']:.4f}", flush=True)
    keys = ("events_per_s", "MainThread", "patron-writer", "patron-journal", "process")
    med = {k: statistics.median(r.get(k, 0.0) for r in runs) for k in keys}
    print(f"median: {med['events_per_s']:,.0f} events/s; CPU ms per event: event loop {med['MainThread']:.4f}, "
          f"writer {med['patron-writer']:.4f}, journal {med['patron-journal']:.4f}, process {med['process']:.4f}")
    print(f"load average {os.getloadavg()[0]:.2f} at end")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main())
