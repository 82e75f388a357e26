"""Time ``patron.ingest`` of one set of orders as CSV, gzip CSV, JSON Lines and Parquet, with this
tree's patron and, side by side, a peer tree (another checkout's ``src``, e.g. the commit before a
change to the readers), each ingest in a child process of its own.

    .venv/bin/python benchmarks/bench_ingest.py --rows 1000000 --repeat 3 --peer-src /tmp/old/src

Prints, per format and tree: the wall-clock median, median CPU seconds (user + system, all
threads), median peak RSS of the child, and the ratio peer / this. Never asserts on timings.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"

CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[4])
from _measure import cpu_seconds, peak_rss_mb
import patron
start, cpu = time.perf_counter(), cpu_seconds()
res = patron.ingest(sys.argv[2], db=sys.argv[3])
print(json.dumps({"wall": time.perf_counter() - start, "cpu": cpu_seconds() - cpu, "rss": peak_rss_mb(),
                  "accepted": res.accepted, "rejected": res.rejected}))
"""


def make_files(rows: int, out: Path) -> dict[str, Path]:
    """The same orders in four files (seeded): customer, order id, ISO date, amount, channel."""
    rng = np.random.default_rng(18)
    days = rng.integers(0, 365, rows)
    table = pa.table({
        "customer_id": pa.array(np.char.add("c", rng.integers(0, rows // 6 + 1, rows).astype(str))),
        "order_id": pa.array(np.char.add("o", np.arange(rows).astype(str))),
        "occurred_at": pa.array((np.datetime64("2024-01-01") + days.astype("timedelta64[D]")).astype(str)),
        "amount": pa.array(np.round(rng.gamma(2.0, 20.0, rows), 2)),
        "channel": pa.array(rng.choice(["web", "store", "app"], rows)),
    })
    files = {"csv": out / "orders.csv", "csv.gz": out / "orders.csv.gz", "jsonl": out / "orders.jsonl", "parquet": out / "orders.parquet"}
    if not files["csv"].exists():
        pacsv.write_csv(table, files["csv"], pacsv.WriteOptions(quoting_style="none"))
        files["csv.gz"].write_bytes(gzip.compress(files["csv"].read_bytes(), compresslevel=6))
        with open(files["jsonl"], "w") as fh:
            for batch in table.to_batches(100_000):
                fh.writelines(json.dumps(r) + "\n" for r in batch.to_pylist())
        pq.write_table(table, files["parquet"])
    return files


def run(src: Path, path: Path, db: Path) -> dict[str, float]:
    db.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run([sys.executable, "-c", CHILD, str(src), str(path), str(db), str(HERE)],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--peer-src", type=Path, help="another tree's src directory to time side by side")
    parser.add_argument("--out", type=Path, default=HERE / "out" / "ingest")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    files = make_files(args.rows, args.out)
    trees = {"this": SRC} | ({"peer": args.peer_src} if args.peer_src else {})
    print(f"{args.rows:,} orders; median of {args.repeat} runs per format and tree (runs interleaved)")
    with tempfile.TemporaryDirectory() as tmp:
        for fmt, path in files.items():
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
            for _ in range(args.repeat):
                for name, src in trees.items():
                    runs[name].append(run(src, path, Path(tmp) / f"{name}.duckdb"))
            med = {name: {k: statistics.median(r[k] for r in rs) for k in ("wall", "cpu", "rss")} for name, rs in runs.items()}
            line = f"{fmt:8s} " + "  ".join(
                f"{name}: {m['wall']:6.2f} s wall {m['cpu']:6.2f} s cpu {m['rss']:6.0f} MiB ({runs[name][0]['accepted']:,} stored)"
                for name, m in med.items())
            if "peer" in med:
                line += f"  peer/this wall {med['peer']['wall'] / med['this']['wall']:.2f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
