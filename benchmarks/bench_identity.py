"""Throughput of identity resolution as the events writer uses it (not a test).

Feeds N events in batches into one :class:`patron.people.identity.Resolver` on a fresh DuckDB file, each
batch in its own transaction followed by ``follow_merges``, and prints events/s. Events: 80% tracks
with a (userId, anonymousId) pair or an anonymous id seen before; 20% carry a new identifier (a new
device of a known user, a new anonymous visitor, or an identify with an e-mail), and an anonymous
visitor seen before sometimes signs up (a merge of an existing anonymous profile).

    .venv/bin/python benchmarks/bench_identity.py --events 100000 --batch 100
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa

from patron.data.store import connect
from patron.people.identity import Resolver


def make_batches(n_events: int, batch: int, new_share: float, seed: int = 7) -> list[pa.Table]:
    rng = random.Random(seed)
    t0 = datetime(2024, 1, 1)
    known: list[tuple[str | None, str]] = [(f"u{i}", f"a{i}") for i in range(1000)]
    n_users, n_anons = 1000, 1000
    batches = []
    for start in range(0, n_events, batch):
        mids, times, kinds, values = [], [], [], []
        for j in range(start, min(start + batch, n_events)):
            mid = f"m{j}"
            ts = t0 + timedelta(seconds=j // 10 + rng.randint(-30, 0))  # slightly out of order
            r = rng.random()
            if r < new_share:
                user, _ = rng.choice(known)
                n_anons += 1
                anon = f"a{n_anons}"
                kind = rng.random()
                if kind < 0.4 and user:  # a known user on a new device
                    ids = [("user_id", user), ("anonymous_id", anon)]
                elif kind < 0.7:  # a new anonymous visitor
                    ids = [("anonymous_id", anon)]
                    user = None
                else:  # a new user identifies with an e-mail
                    n_users += 1
                    user = f"u{n_users}"
                    ids = [("user_id", user), ("anonymous_id", anon), ("email", f"{user}@example.com")]
                known.append((user, anon))
            else:
                k = rng.randrange(len(known))
                user, anon = known[k]
                if user is None and rng.random() < 0.1:  # an anonymous visitor signs up: a merge
                    n_users += 1
                    user = f"u{n_users}"
                    known[k] = (user, anon)
                ids = [("anonymous_id", anon)] + ([("user_id", user)] if user else [])
            for k, v in ids:
                mids.append(mid)
                times.append(ts)
                kinds.append(k)
                values.append(v)
        batches.append(pa.table({"message_id": mids, "occurred_at": pa.array(times, pa.timestamp("us")),
                                 "kind": kinds, "value": values}))
    return batches


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--new-share", type=float, default=0.2)
    args = ap.parse_args()
    batches = make_batches(args.events, args.batch, args.new_share)
    with tempfile.TemporaryDirectory() as tmp, connect(Path(tmp) / "bench.duckdb") as con:
        resolver = Resolver(["user_id"])
        started = time.perf_counter()
        lat = []
        for table in batches:
            t = time.perf_counter()
            con.execute("BEGIN")
            res = resolver.resolve(con, table)
            resolver.follow(con, res)
            con.execute("COMMIT")
            lat.append(time.perf_counter() - t)
        elapsed = time.perf_counter() - started
        n_ids = con.execute("SELECT count(*) FROM identities").fetchone()[0]
        n_merges = con.execute("SELECT count(*) FROM identity_merges").fetchone()[0]
    lat.sort()
    print(f"{args.events} events in {len(batches)} batches of {args.batch}: {elapsed:.2f} s, "
          f"{args.events / elapsed:,.0f} events/s; per batch p50 {lat[len(lat) // 2] * 1000:.1f} ms, "
          f"p99 {lat[int(len(lat) * 0.99)] * 1000:.1f} ms; {n_ids} identifiers, {n_merges} merges recorded")


if __name__ == "__main__":
    main()
