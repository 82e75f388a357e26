"""Latency of a trigger, from the event's acknowledgement to the webhook request (issue 23).

A fresh database, a write key, ``patron serve`` with a rules file declaring one destination (a
local receiver: ``http.server`` in threads of this process, answering 200) and one trigger on
``Order Completed`` (a thank-you: a transactional purpose, so every order passes the gate), then
``benchmarks/loadgen.py`` in its own process sending the single-event mix (one event per request;
20% ``Order Completed``) open loop at ``--rate`` events/s for ``--seconds``, writing the time of each
acknowledgement. The latency of a firing is the receiver's arrival time minus the acknowledgement
time of the order that caused it (both wall clock on one machine). Prints p50, p90, p99, max per
run and their medians over ``--repeat`` runs, and checks that each acknowledged order reached the
receiver exactly once (by idempotency key).

    .venv/bin/python benchmarks/bench_triggers.py                       # 500 events/s, 3 x 20 s
    .venv/bin/python benchmarks/bench_triggers.py --rate 1000 --seconds 10 --repeat 1
    .venv/bin/python benchmarks/bench_triggers.py --batch-size 10              # 500 events/s as 50 batches/s

With ``--batch-size N`` the same events go through ``/v1/batch``, N per request (what server-side
senders and SDKs with batching do): the acknowledgement of a batch is the acknowledgement of each of
its events, so the latency is measured the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from tests.dialogue_support import Receiver  # noqa: E402
from tests.service_support import Service, free_port  # noqa: E402

SECRET_ENV = "PATRON_BENCH_HOOK_SECRET"


def one_run(args: argparse.Namespace, out: Path, run: int) -> dict[str, float]:
    from patron.service.auth import create_key

    os.environ[SECRET_ENV] = "bench-secret"
    with Receiver(http10=args.close) as rx:
        cfg = out / f"patron-{run}.toml"
        cfg.write_text(f"""
[[destinations]]
name = "crm"
url = "{rx.url}/hook"
secret_env = "{SECRET_ENV}"
rate_per_second = 10000

""" + ("" if args.no_trigger else """
[[triggers]]
name = "thank_you"
event = "Order Completed"
purpose = "order"
message = "thank-you"
destination = "crm"
"""))
        db = out / f"bench-{run}.duckdb"
        key = create_key(db, "write", name="bench")
        command = ((sys.executable, str(HERE / "_profile_serve.py"), "--out", str(args.profile)) if args.profile
                   else (sys.executable, "-m", "patron", "serve"))
        svc = Service(db=db, port=free_port(), keys={"write": key}, config=cfg, log=db.with_suffix(".serve.log"),
                      command=command)
        svc.start(timeout=90)
        acked = out / f"acked-{run}.tsv"
        endpoint = (("--endpoint", "batch", "--batch-size", str(args.batch_size)) if args.batch_size
                    else ("--endpoint", "single"))
        try:
            gen = subprocess.run(
                [sys.executable, str(HERE / "loadgen.py"), "--url", svc.url, "--key", key, *endpoint,
                 "--rate", str(args.rate / max(args.batch_size, 1)), "--connections", str(args.connections), "--duration", str(args.seconds),
                 "--warmup", "2", "--users", "5000", "--seed", str(run + 1), "--acked", str(acked), "--acked-times",
                 "--quiet"], capture_output=True, text=True, check=True)
            summary = json.loads(gen.stdout.strip().splitlines()[-1])
            acks = {}
            for line in acked.read_text().splitlines():
                mid, t = line.split("\t")
                acks[mid] = float(t)
            orders = {m for m in acks if "-o" in m}
            if not args.no_trigger:
                rx.wait(lambda r: len(r.accepted) >= len(orders), timeout=30)
        finally:
            svc.stop()
        got = {req.json["cause"]: req.at for req in rx.accepted.values()}
        requests = len(rx.to("/hook"))
    lat = np.array([(got[m] - acks[m]) * 1000 for m in orders if m in got])
    missing = len(orders - set(got))
    p = {q: float(np.percentile(lat, q)) for q in (50, 90, 99)} if lat.size else {50: np.nan, 90: np.nan, 99: np.nan}
    res = {"events_per_s": summary["events_per_s"], "ack_p99_ms": summary["p99_ms"],
           "firings": float(len(orders)), "missing": float(missing), "duplicates": float(requests - len(got)),
           "p50_ms": p[50], "p90_ms": p[90], "p99_ms": p[99], "max_ms": float(lat.max()) if lat.size else np.nan}
    print(f"run {run + 1}: {res['events_per_s']:.0f} events/s acknowledged (ack p99 {res['ack_p99_ms']:.1f} ms), "
          f"{len(orders)} orders fired, {missing} not delivered, {requests - len(got)} repeated requests; "
          f"ack -> webhook p50 {p[50]:.1f} ms, p90 {p[90]:.1f} ms, p99 {p[99]:.1f} ms, max {res['max_ms']:.1f} ms",
          flush=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=500.0, help="Events per second sent (open loop)")
    ap.add_argument("--seconds", type=float, default=20.0, help="Measured seconds per run")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=0,
                    help="Send the events through /v1/batch, this many per request (0: one event per request)")
    ap.add_argument("--profile", type=Path, help="Run the server under cProfile, stats written to this file")
    ap.add_argument("--close", action="store_true", help="The receiver closes each connection (HTTP/1.0)")
    ap.add_argument("--no-trigger", action="store_true", help="Declare no trigger (the event API alone, for comparison)")
    args = ap.parse_args()
    out = Path(tempfile.mkdtemp(prefix="bench-triggers-"))
    what = "no trigger declared" if args.no_trigger else "20% Order Completed -> thank-you trigger"
    how = f"/v1/batch requests of {args.batch_size} events" if args.batch_size else "single-event requests"
    print(f"{args.rate:.0f} events/s, {how} ({what}), "
          f"{args.repeat} x {args.seconds:.0f} s; load average {os.getloadavg()[0]:.1f}", flush=True)
    runs = [one_run(args, out, i) for i in range(args.repeat)]
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(f"median of {len(runs)}: {med['events_per_s']:.0f} events/s, ack -> webhook p50 {med['p50_ms']:.1f} ms, "
          f"p90 {med['p90_ms']:.1f} ms, p99 {med['p99_ms']:.1f} ms (target p99 < 1000 ms); "
          f"not delivered {med['missing']:.0f}, repeated {med['duplicates']:.0f}", flush=True)
    time.sleep(0)


if __name__ == "__main__":
    main()
