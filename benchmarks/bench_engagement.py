"""50M interaction events: ingest, then the per-customer-week summary and the per-customer score.

    .venv/bin/python benchmarks/bench_engagement.py                       # 50M events, 1M customers
    .venv/bin/python benchmarks/bench_engagement.py --events 5000000 --customers 100000   # quick

The events are generated once into ``--cache`` (default /work/cache/h20-engagement, else
benchmarks/out) as Parquet parts and reused: per customer an activity rate ``Gamma(shape 1,
mean events / customers)``, the customer's events ``Poisson(rate)``, each on a uniform day of the
364 days from 2024-01-01 at a uniform second, a channel from
:data:`patron.relationship.engagement.SIMULATED_CHANNEL_MIX` and a kind of that channel.

Timed separately, each in its own child process (so that peak RSS is the step's own):

1. **ingest**: ``patron.ingest(parts, kind="interactions")`` into a fresh DuckDB file (the full
   validated ingest: checks, derived keys, rejects), or ``--load direct``: one ``INSERT ... FROM
   read_parquet`` (what a bulk load of checked data costs);
2. **summary**: :func:`patron.relationship.engagement.write_engagement` with ``memory_limit``
   (default 3GB, so that the whole process stays within 4 GB) and ``threads`` (default 2): the per-customer-week table and the per-customer
   score, trend, band and recency, written as Parquet by the engine.

Prints wall-clock seconds (median of ``--repeat`` runs of the summary), CPU seconds, peak RSS
(MiB) and rows; never asserts on time. Quote the load average with the figures (printed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
DEFAULT_CACHE = Path("/work/cache/h20-engagement")
START = np.datetime64("2024-01-01T00:00:00", "s")
DAYS = 364
PART_EVENTS = 5_000_000
"""Events per Parquet part (about; parts follow customer blocks)."""


def generate(events: int, customers: int, folder: Path, seed: int = 7) -> list[Path]:
    """Write the events as Parquet parts under ``folder`` (kept when present with a marker)."""
    from patron.relationship.engagement import SIMULATED_CHANNEL_MIX, SIMULATED_KINDS

    marker = folder / "DONE.json"
    recipe = {"events": events, "customers": customers, "seed": seed, "days": DAYS}
    if marker.exists() and json.loads(marker.read_text()) == recipe:
        return sorted(folder.glob("part-*.parquet"))
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("part-*.parquet"):
        old.unlink()
    rng = np.random.default_rng(seed)
    rate = rng.gamma(1.0, events / customers, size=customers)
    counts = rng.poisson(rate)
    channels = np.array(list(SIMULATED_CHANNEL_MIX))
    mix = np.array(list(SIMULATED_CHANNEL_MIX.values()))
    kinds_of = [np.array(SIMULATED_KINDS[c]) for c in channels]
    per_part = max(1, int(customers * PART_EVENTS / max(events, 1)))
    paths = []
    for part, first in enumerate(range(0, customers, per_part)):
        ids = np.arange(first, min(first + per_part, customers))
        n = counts[ids]
        who = np.repeat(ids, n)
        m = len(who)
        at = START + (rng.integers(0, DAYS, m) * 86_400 + rng.integers(0, 86_400, m)).astype("timedelta64[s]")
        ch = rng.choice(len(channels), size=m, p=mix)
        kind = np.empty(m, dtype=object)
        for i, options in enumerate(kinds_of):
            rows = np.flatnonzero(ch == i)
            kind[rows] = options[rng.integers(0, len(options), len(rows))]
        cid = pc.binary_join_element_wise("c", pc.utf8_lpad(pc.cast(pa.array(who), pa.string()), width=7, padding="0"), "")
        table = pa.table({"customer_id": cid, "occurred_at": pa.array(at.astype("datetime64[us]")),
                          "channel": pa.array(channels[ch]), "kind": pa.array(kind, type=pa.string())})
        path = folder / f"part-{part:03d}.parquet"
        pq.write_table(table, path)
        paths.append(path)
    marker.write_text(json.dumps(recipe))
    return paths


def _child(step: str, args: dict) -> dict:
    """Run one step in a child interpreter; returns its JSON result."""
    code = f"import sys, json; sys.path.insert(0, {str(HERE)!r}); import bench_engagement as b; print(json.dumps(b.{step}(**json.loads(sys.argv[1]))))"
    done = subprocess.run([sys.executable, "-c", code, json.dumps(args)], check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def step_ingest(parts: list[str], db: str, load: str) -> dict:
    import duckdb

    import patron
    from _measure import cpu_seconds, peak_rss_mb
    from patron.data.dialect import DUCKDB

    t0, c0 = time.perf_counter(), cpu_seconds()
    if load == "direct":
        from patron.data.store import connect

        with connect(db) as con:
            files = ", ".join(DUCKDB.literal(p) for p in parts)
            con.execute(f"""INSERT INTO interactions (interaction_id, customer_id, occurred_at, channel, kind)
                SELECT 'i' || CAST(row_number() OVER () AS VARCHAR), customer_id, occurred_at, channel, kind FROM read_parquet([{files}])""")
        rows = None
    else:
        rows = 0
        for p in parts:
            rows += patron.ingest(p, kind="interactions", db=db).accepted
    wall = time.perf_counter() - t0
    with duckdb.connect(db, read_only=True) as con:
        stored = con.execute("SELECT count(*) FROM interactions").fetchone()[0]
    return {"wall_s": wall, "cpu_s": cpu_seconds() - c0, "peak_rss_mb": peak_rss_mb(), "rows": stored, "accepted": rows}


def step_summary(db: str, out: str, memory_limit: str, threads: int) -> dict:
    from _measure import cpu_seconds, peak_rss_mb
    from patron.relationship.engagement import write_engagement

    t0, c0 = time.perf_counter(), cpu_seconds()
    res = write_engagement(db, out=out + "/weekly.parquet", customers_out=out + "/customers.parquet", as_of="2024-12-29",
                           memory_limit=memory_limit, threads=threads)
    return {"wall_s": time.perf_counter() - t0, "cpu_s": cpu_seconds() - c0, "peak_rss_mb": peak_rss_mb(),
            "weekly_rows": res["weekly_rows"], "customers": res["customers"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=50_000_000)
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE if DEFAULT_CACHE.parent.exists() else HERE / "out" / "engagement")
    ap.add_argument("--load", choices=("ingest", "direct"), default="ingest")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--memory-limit", default="3GB", help="DuckDB memory limit of the summary (the process stays within about 1 GB more).")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-ingest", action="store_true", help="Reuse the database of an earlier run.")
    a = ap.parse_args()

    data = a.cache / f"events_{a.events}_{a.customers}"
    t0 = time.perf_counter()
    parts = generate(a.events, a.customers, data)
    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in parts)
    print(f"data: {rows:,} events of {a.customers:,} customers in {len(parts)} Parquet parts ({time.perf_counter() - t0:.1f} s to generate or find)")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    db = a.cache / f"engagement_{a.events}_{a.customers}_{a.load}.duckdb"
    if not a.skip_ingest or not db.exists():
        for f in (db, Path(str(db) + ".wal")):
            f.unlink(missing_ok=True)
        r = _child("step_ingest", {"parts": [str(p) for p in parts], "db": str(db), "load": a.load})
        print(f"ingest ({a.load}): {r['rows']:,} rows stored in {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU, "
              f"peak RSS {r['peak_rss_mb']:.0f} MiB ({r['rows'] / r['wall_s']:,.0f} rows/s)")
    out = a.cache / "out"
    out.mkdir(exist_ok=True)
    runs = []
    for i in range(a.repeat):
        r = _child("step_summary", {"db": str(db), "out": str(out), "memory_limit": a.memory_limit, "threads": a.threads})
        runs.append(r)
        print(f"summary run {i + 1}: {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU, peak RSS {r['peak_rss_mb']:.0f} MiB; "
              f"{r['weekly_rows']:,} customer-weeks, {r['customers']:,} customers")
    med = statistics.median(r["wall_s"] for r in runs)
    print(f"summary per customer-week + per-customer score of {rows:,} events: median {med:.1f} s wall "
          f"(memory_limit {a.memory_limit}, threads {a.threads}), max peak RSS {max(r['peak_rss_mb'] for r in runs):.0f} MiB; "
          f"{rows / med:,.0f} events/s")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
