"""Time of one erasure (``patron erase-customer``) on a database with files and events, side by
side with a peer build of patron (not a test).

The database: the bundled CDNOW sample's orders (2,357 customers), a customers file giving each an
e-mail and a phone, and ``--events`` Segment events through the service's writer code (identifies
with the file customers' e-mails in other case under web userIds, page views, orders), a few dead
letters. Each run erases one customer who has file rows, events and dead letters, on a fresh copy,
in a fresh process; the two builds alternate; medians are printed.

    git archive main src | tar -x -C /tmp/peer     # the peer: main's source
    .venv/bin/python benchmarks/bench_erasure.py --events 50000 --runs 3 --peer-src /tmp/peer/src
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

ERASE = ("import sys, time; from patron.people.rights import erase_customer; t = time.perf_counter(); "
         "erase_customer(sys.argv[1], sys.argv[2]); print(time.perf_counter() - t)")


def build(root: Path, n_events: int, seed: int = 7) -> tuple[Path, str]:
    """The database (module docstring) and the id of the customer to erase."""
    import patron
    from patron.cli.demo import CDNOW_SAMPLE_COLUMNS
    from patron.data.datasets import data_path
    from patron.data.store import connect
    from patron.service.commit import Identity, Known, store
    from patron.service.event_tables import create_event_tables
    from patron.service.events_api import prepare
    from patron.service.settings import ServiceRules
    from patron.service.state import ServiceState

    db = root / "bench.duckdb"
    patron.ingest(data_path("CDNOW_sample.txt"), kind="transactions", db=str(db), columns=CDNOW_SAMPLE_COLUMNS,
                  mapping={"occurred_at": "date"}, date_format="%Y%m%d")
    with connect(db, read_only=True) as con:
        ids = [r[0] for r in con.execute("SELECT DISTINCT customer_id FROM transactions ORDER BY 1").fetchall()]
    pd.DataFrame({"customer_id": ids, "first_seen": "1997-01-01", "email": [f"cust.{c}@example.com" for c in ids],
                  "phone": [f"+1 555 {int(c) % 1000:03d} {int(c) % 10000:04d}" for c in ids]}
                 ).to_csv(root / "customers.csv", index=False)
    patron.ingest(str(root / "customers.csv"), kind="customers", db=str(db))
    rng = random.Random(seed)
    rules = ServiceRules()
    state = ServiceState(db=str(db), rules=rules)
    t0 = datetime(1998, 7, 1)
    now = datetime.now(UTC).replace(tzinfo=None)
    limit = now + timedelta(days=1)
    raws = []
    for j in range(n_events):
        c = ids[rng.randrange(len(ids))]
        ts = (t0 + timedelta(minutes=j)).isoformat() + "Z"
        r = rng.random()
        if r < 0.2:
            raws.append({"type": "identify", "messageId": f"b{j}", "userId": f"web-{c}", "anonymousId": f"a-{c}",
                         "traits": {"email": f"CUST.{c}@Example.com", "name": f"Name {c}"}, "timestamp": ts})
        elif r < 0.9:
            raws.append({"type": "page", "messageId": f"b{j}", "anonymousId": f"a-{c}", "name": "Home", "timestamp": ts})
        elif r < 0.99:
            raws.append({"type": "track", "messageId": f"b{j}", "userId": f"web-{c}", "event": "Order Completed",
                         "properties": {"order_id": f"w{j}", "revenue": 10}, "timestamp": ts})
        else:
            raws.append({"type": "track", "messageId": f"b{j}", "anonymousId": f"a-{c}", "timestamp": ts})  # dead letter
    target = ids[0]
    raws.append({"type": "track", "messageId": "bench-dead", "userId": [f"web-{target}"], "event": "X", "timestamp": t0.isoformat() + "Z"})
    raws.append({"type": "identify", "messageId": "bench-id", "userId": f"web-{target}", "anonymousId": f"a-{target}",
                 "traits": {"email": f"cust.{target}@example.com"}, "timestamp": t0.isoformat() + "Z"})
    identity, known = Identity(rules), Known()
    with connect(db) as con:
        create_event_tables(con)
        identity.ensure(con)
        for start in range(0, len(raws), 2000):
            items = [prepare(r, call=None, state=state, received_at=now, limit=limit) for r in raws[start:start + 2000]]
            store(con, items, rules, identity, known)
        con.execute("CHECKPOINT")
    return db, target


def run(src: Path | None, db: Path, who: str, copy: Path) -> float:
    shutil.copyfile(db, copy)
    env = {**os.environ}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    out = subprocess.run([sys.executable, "-c", ERASE, str(copy), who], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--peer-src", type=Path, default=None, help="src folder of the peer build (e.g. main's)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        db, who = build(root, args.events)
        print(f"built {db.stat().st_size / 1e6:.1f} MB with {args.events:,} events in {time.perf_counter() - t:.0f} s")
        here: list[float] = []
        peer: list[float] = []
        for _ in range(args.runs):
            here.append(run(None, db, who, root / "copy.duckdb"))
            if args.peer_src is not None:
                peer.append(run(args.peer_src, db, who, root / "copy.duckdb"))
        out = {"this_build_s": here, "this_median_s": statistics.median(here)}
        if peer:
            out |= {"peer_s": peer, "peer_median_s": statistics.median(peer),
                    "ratio": statistics.median(here) / statistics.median(peer)}
        print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
