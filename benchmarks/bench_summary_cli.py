"""Benchmark: a one-shot ``patron summary`` against a one-shot lifetimes summary, whole process
(interpreter start, imports, reading the data, the summary, exit), issue 21.

    scripts/peer-venv.sh                                  # once: lifetimes in .venv-lifetimes
    .venv/bin/python benchmarks/bench_summary_cli.py [--customers 1000000] [--repeat 3]

The data are :mod:`bench_summary`'s (simulated with its recipe into ``benchmarks/out/``, reused
when present): about 6.4 transactions per customer. Each tool reads them the way its users do:

* patron: ``patron summary --db bench.duckdb --period W --end END`` on a database filled once by
  ``patron.ingest`` (not timed), printing its overview table;
* lifetimes: ``peer_lifetimes_summary.py PARQUET --end END --repeat 1`` in ``.venv-lifetimes``:
  imports pandas and lifetimes, reads the Parquet file, ``summary_data_from_transaction_data(freq="D")``.

The runs alternate (patron, lifetimes, patron, ...) so that both see the same load on this shared
machine. Prints the median, min and max wall-clock seconds of each, their ratio, and beside them
the median of ``patron version`` (the start-up every patron command pays). Writes
``benchmarks/out/summary_cli_<customers>.json``. Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_summary import OUT, PEER_PYTHON, end_date, ensure_data

HERE = Path(__file__).resolve().parent
PATRON = Path(sys.executable).parent / "patron"


def children_cpu() -> float:
    """User + system CPU seconds of the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str]) -> tuple[float, float]:
    """Wall-clock and CPU (user + system, all threads) seconds of ``command`` in a fresh process
    (it must succeed). CPU time is what the process used; on a loaded machine the wall clock
    also holds the time it waited for a core."""
    cpu, began = children_cpu(), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=HERE)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-4000:]}")
    return seconds, children_cpu() - cpu


def ensure_database(parquet: Path, db: Path) -> None:
    """Ingest ``parquet`` into ``db`` once (kept beside it; not timed)."""
    if db.exists():
        return
    import patron

    began = time.perf_counter()
    result = patron.ingest(parquet, kind="transactions", db=db)
    print(f"  ingested {result.accepted:,} transactions into {db} in {time.perf_counter() - began:.1f} s")


def stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not PEER_PYTHON.exists():
        raise SystemExit(f"{PEER_PYTHON} missing: run scripts/peer-venv.sh first")
    OUT.mkdir(exist_ok=True)
    parquet = OUT / f"tx_{args.customers}_{args.seed}.parquet"
    db = OUT / f"summary_cli_{args.customers}_{args.seed}.duckdb"
    end = end_date()
    data = ensure_data(parquet, args.customers, args.seed)
    print(f"{args.customers:,} customers, {data['transactions']:,} transactions ({parquet.name})")
    ensure_database(parquet, db)
    commands = {
        "patron summary": [str(PATRON), "summary", "--db", str(db), "--period", "W", "--end", end],
        "lifetimes summary": [str(PEER_PYTHON), str(HERE / "peer_lifetimes_summary.py"), str(parquet),
                              "--end", end, "--repeat", "1"],
        "patron version": [str(PATRON), "version"],
    }
    runs: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.repeat):
        for name, command in commands.items():
            wall, used = timed(command)
            runs[name].append(wall)
            cpu[name].append(used)
    figures = {name: stats(values) for name, values in runs.items()}
    cpu_figures = {name: stats(values) for name, values in cpu.items()}
    ratio = figures["lifetimes summary"]["median"] / figures["patron summary"]["median"]
    cpu_ratio = cpu_figures["lifetimes summary"]["median"] / cpu_figures["patron summary"]["median"]
    print(f"\nwhole process, {args.repeat} runs each, alternated (seconds)")
    print(f"{'command':20s} {'median':>8s} {'min':>8s} {'max':>8s} {'CPU median':>11s}")
    for name, f in figures.items():
        print(f"{name:20s} {f['median']:8.2f} {f['min']:8.2f} {f['max']:8.2f} {cpu_figures[name]['median']:11.2f}")
    print(f"ratio lifetimes / patron (medians): wall clock {ratio:.1f}x, CPU {cpu_ratio:.1f}x")
    result = {"customers": args.customers, "transactions": data["transactions"], "end": end,
              "repeat": args.repeat, "commands": {k: " ".join(v) for k, v in commands.items()},
              "seconds": runs, "cpu_seconds": cpu, "figures": figures, "cpu_figures": cpu_figures,
              "ratio_lifetimes_over_patron": ratio, "cpu_ratio_lifetimes_over_patron": cpu_ratio}
    (OUT / f"summary_cli_{args.customers}.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
