"""One person's identity cluster growing large, through the service (not a test).

Issue 18: batches of ``identify`` events that each link a new anonymousId to one userId (a
placeholder such as "guest" sent by a broken client, or one shared account) made every batch slower
than the last, and a small ``track`` of somebody else sent meanwhile waited for them.

Starts ``patron serve`` on a fresh database, then ``--batches`` times: sends ``--events`` identify
events (userId ``--user``, a new anonymousId each) as ``/v1/batch`` requests of ``--request-size``
events from ``--connections`` concurrent connections, and, ``--track-after`` seconds into the
batch, one ``/v1/track`` of an unrelated person. Prints, per batch, the wall time from the first
request sent to the last answer, and the latency of that track. Afterwards it prints the size of
the person's single view (``GET /v1/customers/{user}``) and of its export
(``GET /v1/customers/{user}/export``), in bytes.

    .venv/bin/python benchmarks/bench_identity_cluster.py                    # userId "user-hub"
    .venv/bin/python benchmarks/bench_identity_cluster.py --cap 0            # no cap: one person of 25,001
    .venv/bin/python benchmarks/bench_identity_cluster.py --user guest       # a listed placeholder
    .venv/bin/python benchmarks/bench_identity_cluster.py --spread           # baseline: a new userId each
    .venv/bin/python benchmarks/bench_identity_cluster.py --resolver-only    # patron.people.identity alone

``--cap N`` starts the server with ``[service] max_linked_identifiers = N`` (default: the
default, 1,000). ``--resolver-only`` feeds the same links to one :class:`patron.people.identity.Resolver`
on a fresh DuckDB file (each batch in its own transaction, as the writer does) and prints the time
of each batch: the identity work alone, without HTTP, validation and the other tables.

Prints figures; never asserts on timings.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import shutil
import statistics
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out" / "identity_cluster"


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def identify_batch(user: str, n: int, tag: str, *, spread: bool = False) -> list[dict]:
    """``n`` identify events of ``user`` (``spread``: of ``user-<tag>-<i>``, all different), each
    from a new anonymousId."""
    now = _now()
    return [{"type": "identify", "userId": f"{user}-{tag}-{i}" if spread else user,
             "anonymousId": f"{tag}-{i}-{uuid.uuid4().hex[:12]}",
             "messageId": f"{tag}-{i}", "timestamp": now, "traits": {"plan": "free"}} for i in range(n)]


def resolver_only(args: argparse.Namespace) -> int:
    """The same links through :class:`patron.people.identity.Resolver` alone; prints per-batch times."""
    import tempfile

    from patron.data.store import connect
    from patron.people.identity import Resolver

    times = []
    with tempfile.TemporaryDirectory() as tmp, connect(Path(tmp) / "resolver.duckdb") as con:
        try:
            resolver = Resolver(["user_id"], max_linked_identifiers=args.cap)
        except TypeError:  # patron before issue 18 (PYTHONPATH of an older checkout): no cap to set
            print("Resolver takes no cap: patron before issue 18", flush=True)
            resolver = Resolver(["user_id"])
        for b in range(1, args.batches + 1):
            ts = datetime.now(UTC).replace(tzinfo=None)
            rows = [r for e in identify_batch(args.user, args.events, f"b{b}", spread=args.spread)
                    for r in ((e["messageId"], ts, "user_id", e["userId"]),
                              (e["messageId"], ts, "anonymous_id", e["anonymousId"]))]
            t = time.perf_counter()
            con.execute("BEGIN")
            resolver.follow(con, resolver.resolve(con, rows))
            con.execute("COMMIT")
            times.append(time.perf_counter() - t)
            print(f"batch {b}: {args.events} links to userId {args.user!r} resolved in {times[-1]:.3f} s", flush=True)
        size = con.execute("SELECT count(*) FROM identities WHERE customer_id = ?", [args.user]).fetchone()[0]
    print(f"median batch {statistics.median(times):.3f} s; the person {args.user!r} holds {size:,} identifiers")
    return 0


def send_batch(client: httpx.Client, events: list[dict]) -> int:
    r = client.post("/v1/batch", json={"batch": events})
    if r.status_code >= 300:
        raise RuntimeError(f"/v1/batch answered {r.status_code}: {r.text[:300]}")
    return len(events)


def one_batch(svc, key: str, args: argparse.Namespace, b: int) -> tuple[float, float]:
    """Send batch ``b``; returns (seconds for the whole batch, seconds the concurrent track took)."""
    events = identify_batch(args.user, args.events, f"b{b}", spread=args.spread)
    chunks = [events[i:i + args.request_size] for i in range(0, len(events), args.request_size)]
    clients = [httpx.Client(base_url=svc.url, auth=(key, ""), timeout=600) for _ in range(args.connections)]
    track_latency: list[float] = []

    def track() -> None:
        time.sleep(args.track_after)
        with httpx.Client(base_url=svc.url, auth=(key, ""), timeout=600) as c:
            t = time.perf_counter()
            r = c.post("/v1/track", json={"userId": f"bystander-{b}", "event": "Product Viewed",
                                          "messageId": f"bystander-{b}", "timestamp": _now()})
            track_latency.append(time.perf_counter() - t)
            if r.status_code >= 300:
                raise RuntimeError(f"/v1/track answered {r.status_code}")

    t0 = time.perf_counter()
    tracker = threading.Thread(target=track)
    tracker.start()
    with concurrent.futures.ThreadPoolExecutor(args.connections) as pool:
        list(pool.map(lambda ic: send_batch(clients[ic[0] % len(clients)], ic[1]), enumerate(chunks)))
    elapsed = time.perf_counter() - t0
    tracker.join()
    for c in clients:
        c.close()
    return elapsed, track_latency[0]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--user", default="user-hub", help="userId every identify carries")
    p.add_argument("--batches", type=int, default=5)
    p.add_argument("--events", type=int, default=5000, help="identify events per batch")
    p.add_argument("--request-size", type=int, default=500, help="events per /v1/batch request")
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--track-after", type=float, default=0.05,
                   help="seconds into each batch at which the bystander's track is sent")
    p.add_argument("--cap", type=int, default=None,
                   help="[service] max_linked_identifiers for the server (0: no cap; default: the default)")
    p.add_argument("--spread", action="store_true", help="a new userId per event (baseline: no shared person)")
    p.add_argument("--resolver-only", action="store_true", help="time patron.people.identity.Resolver alone")
    p.add_argument("--profile", action="store_true", help="run the server under _profile_serve and print by stage")
    args = p.parse_args(argv)
    if args.resolver_only:
        if args.cap is None:
            from patron.people.identity.outcome import DEFAULT_MAX_LINKED
            args.cap = DEFAULT_MAX_LINKED
        return resolver_only(args)

    sys.path.insert(0, str(ROOT))
    from tests.service_support import Service, create_keys, free_port

    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    db = OUT / "cluster.duckdb"
    keys = create_keys(db)
    config = None
    if args.cap is not None:
        config = OUT / "rules.toml"
        config.write_text(f"[service]\nmax_linked_identifiers = {args.cap}\n")
    profile = OUT / "server.pstats" if args.profile else None
    command = ((sys.executable, str(HERE / "_profile_serve.py"), "--out", str(profile)) if profile
               else (sys.executable, "-m", "patron", "serve"))
    svc = Service(db=db, port=free_port(), keys=keys, log=OUT / "serve.log", config=config, command=command)
    svc.start(timeout=60)
    rows = []
    try:
        for b in range(1, args.batches + 1):
            elapsed, track_s = one_batch(svc, keys["write"], args, b)
            rows.append((elapsed, track_s))
            print(f"batch {b}: {args.events} identify events of userId {args.user!r} in {elapsed:.2f} s; "
                  f"concurrent track answered in {track_s * 1000:.0f} ms", flush=True)
        with httpx.Client(base_url=svc.url, timeout=600) as c:
            who = f"{args.user}-b1-0" if args.spread else args.user
            view = c.get(f"/v1/customers/{who}", auth=(keys["read"], ""))
            t = time.perf_counter()
            export = c.get(f"/v1/customers/{who}/export", auth=(keys["admin"], ""))
            export_s = time.perf_counter() - t
        print(f"single view of {who!r}: HTTP {view.status_code}, {len(view.content):,} bytes; "
              f"export: HTTP {export.status_code}, {len(export.content):,} bytes in {export_s:.2f} s")
    finally:
        svc.stop(timeout=120)
    if profile is not None:
        sys.path.insert(0, str(HERE))
        from _profile_serve import report

        report(profile)
    print(f"median batch {statistics.median(r[0] for r in rows):.2f} s, last batch {rows[-1][0]:.2f} s; "
          f"median track {statistics.median(r[1] for r in rows) * 1000:.0f} ms, "
          f"worst track {max(r[1] for r in rows) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
