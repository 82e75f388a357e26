"""The cost of the snapshot a running service keeps for the CLI (patron.service.snapshot).

Builds a database of simulated customers (patron.value.simulate, BG/NBD + Gamma-Gamma with the CDNOW
estimates but r = 1.0: about 6.4 orders per customer), opens it as ``patron serve`` does, and
times the copy (``COPY FROM DATABASE`` in one transaction, ``CHECKPOINT``, atomic replace) several
times; prints the database size, the median and the spread of the copy time, and how long a
read-only CLI open of the snapshot takes. No assertion: read medians on a shared machine.

    .venv/bin/python benchmarks/bench_snapshot.py --customers 100000 --repeat 5
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out" / "snapshot"


def build(customers: int) -> Path:
    from patron.data.ingest import ingest
    from patron.value.simulate import write_simulated

    OUT.mkdir(parents=True, exist_ok=True)
    db = OUT / f"snap-{customers}.duckdb"
    if db.exists():
        return db
    data = OUT / f"tx-{customers}.parquet"
    if not data.exists():
        write_simulated(data, customers, seed=1, r=1.0)
    ingest(str(data), kind="transactions", db=str(db))
    return db


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    from patron.data.served import snapshot_file
    from patron.data.store import reader
    from patron.service.settings import ServiceRules
    from patron.service.snapshot import Snapshots
    from patron.service.state import ServiceState

    db = build(args.customers)
    state = ServiceState(db=str(db), rules=ServiceRules())
    state.open()
    try:
        with state.reading() as con:
            n_tx = con.execute("SELECT count(*) FROM transactions").fetchone()[0]
        snaps = Snapshots(state)
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            snaps.write()
            times.append(time.perf_counter() - t0)
        size = snapshot_file(db).stat().st_size
    finally:
        state.close()
    t0 = time.perf_counter()
    with reader(str(snapshot_file(db))) as con:
        con.execute("SELECT count(*) FROM transactions").fetchone()
    open_s = time.perf_counter() - t0
    snapshot_file(db).unlink()
    print(f"{args.customers:,} customers, {n_tx:,} transactions; database {db.stat().st_size / 1e6:.1f} MB, "
          f"snapshot {size / 1e6:.1f} MB")
    print(f"copy: median {statistics.median(times):.2f} s, min {min(times):.2f} s, max {max(times):.2f} s "
          f"({args.repeat} runs); a read-only open and count of the snapshot: {open_s:.2f} s")


if __name__ == "__main__":
    main()
