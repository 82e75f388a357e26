"""Benchmark: patron ingest + summary against lifetimes' summary_data_from_transaction_data.

Default run (about 1M customers, 6.4M transactions)::

    scripts/peer-venv.sh                       # once: lifetimes in .venv-lifetimes
    .venv/bin/python benchmarks/bench_summary.py

1. Simulates ``--customers`` customers with :func:`patron.value.simulate.write_simulated` (BENCH_PARAMS:
   the CDNOW BG/NBD + Gamma-Gamma estimates with r raised from 0.2426 to 1.0, so a customer makes
   6.4 purchases on average, E[X(T)] from Fader, Hardie & Lee 2005 eq. 9) into a Parquet file under
   ``benchmarks/out/`` (reused when present).
2. Times, each in a fresh child process so that its peak RSS is its own: ``patron.ingest`` of that
   file into a new DuckDB file (repeated), ``patron.summary(db, period="W", end=...)`` (repeated),
   and lifetimes' ``summary_data_from_transaction_data(freq="D")`` on the same Parquet file in
   ``.venv-lifetimes`` (``peer_lifetimes_summary.py``, timing only the call).
3. Checks that the two summaries agree: frequency exactly, recency, T and monetary_value to
   ``RELATIVE_TOLERANCE`` after dividing lifetimes' day-based times by 7.
4. Prints medians, ratios and peak memory, and writes them to ``benchmarks/out/*.json``. The
   summary's first call in its process is printed apart: it starts the process's reading engine
   (:func:`patron.data.store.reader`) cold, later calls reuse the memory the engine keeps. A one-shot
   ``patron summary`` on the command line pays what the first call does.

``--transactions-100m`` instead simulates about 100M transactions, ingests them once and times
``patron.summary`` alone with DuckDB's ``memory_limit`` (default 2.5GB, so that the whole process,
result included, stays within 4 GB), printing time and peak RSS.

Timings are printed, never asserted: the machine is shared, so read medians and ratios.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from scipy.special import hyp2f1

from _measure import cpu_seconds, minor_page_faults, peak_rss_mb

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
PEER_PYTHON = ROOT / ".venv-lifetimes" / "bin" / "python"

BENCH_PARAMS = {
    "r": 1.0,
    "alpha": 4.4136,
    "a": 0.7929,
    "b": 2.4259,
    "p": 6.25,
    "q": 3.74,
    "v": 15.44,
}
"""Simulation parameters: CDNOW estimates (FHL 2005; Fader & Hardie 2013) with r = 1.0 instead of
0.2426, so that 1M customers make about 6.4M transactions."""

START = "2024-01-01"
COHORT_DAYS = 84
OBSERVATION_DAYS = 546
SEED = 2024
DAYS_PER_WEEK = 7.0
"""ru_maxrss is in KiB on Linux."""

RELATIVE_TOLERANCE = 1e-9
"""Agreement required between patron's and lifetimes' recency, T and monetary_value."""

HUNDRED_MILLION = 100_000_000


def end_date() -> str:
    """Observation end: start + OBSERVATION_DAYS (no purchase falls on it; T as simulated)."""
    return str(np.datetime64(START) + np.timedelta64(OBSERVATION_DAYS, "D"))


def expected_orders_per_customer(params: dict[str, float]) -> float:
    """1 + E[X(T)] averaged over the cohort's T values, Fader, Hardie & Lee (2005) eq. 9."""
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    T = (OBSERVATION_DAYS - np.arange(COHORT_DAYS)) / DAYS_PER_WEEK
    z = T / (alpha + T)
    ex = (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + T)) ** r * hyp2f1(r, b, a + b - 1, z))
    return 1.0 + float(ex.mean())


def ensure_data(path: Path, n_customers: int, seed: int) -> dict:
    """Write the simulated Parquet file unless a file with the same recipe exists."""
    from patron.value.simulate import BLOCK_CUSTOMERS, write_simulated

    recipe = {
        "customers": n_customers,
        "seed": seed,
        "params": BENCH_PARAMS,
        "start": START,
        "cohort_days": COHORT_DAYS,
        "observation_days": OBSERVATION_DAYS,
        "block_customers": BLOCK_CUSTOMERS,
    }
    stamp = path.with_suffix(".json")
    if path.exists() and stamp.exists() and json.loads(stamp.read_text())["recipe"] == recipe:
        return json.loads(stamp.read_text())
    began = time.perf_counter()
    written = write_simulated(
        path,
        n_customers,
        seed=seed,
        start=START,
        cohort_days=COHORT_DAYS,
        observation_days=OBSERVATION_DAYS,
        **BENCH_PARAMS,
    )
    info = {
        "recipe": recipe,
        "transactions": written.n_transactions,
        "simulate_seconds": time.perf_counter() - began,
    }
    stamp.write_text(json.dumps(info))
    return info


# ---------------------------------------------------------------- workers (child processes)


def worker_ingest(args) -> dict:
    import patron

    seconds, cpu, result = [], [], None
    for _ in range(args.repeat):
        db = Path(args.db)
        for stale in (db, Path(f"{db}.wal")):
            stale.unlink(missing_ok=True)
        began, began_cpu = time.perf_counter(), cpu_seconds()
        result = patron.ingest(args.parquet, kind="transactions", db=str(db))
        seconds.append(time.perf_counter() - began)
        cpu.append(cpu_seconds() - began_cpu)
    return {
        "tool": "patron.ingest",
        "seconds": seconds,
        "median_seconds": statistics.median(seconds),
        "median_cpu_seconds": statistics.median(cpu),
        "accepted": result.accepted,
        "rejected": result.rejected,
        "peak_rss_mb": peak_rss_mb(),
    }


def worker_summary(args) -> dict:
    import patron

    seconds, cpu, faults, result = [], [], [], None
    for _ in range(args.repeat):
        result = None
        began, began_cpu, began_faults = time.perf_counter(), cpu_seconds(), minor_page_faults()
        result = patron.summary(
            args.db, period="W", end=args.end, output=args.output, memory_limit=args.memory_limit
        )
        seconds.append(time.perf_counter() - began)
        cpu.append(cpu_seconds() - began_cpu)
        faults.append(minor_page_faults() - began_faults)
    if args.summary_out:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = result if args.output == "arrow" else pa.Table.from_pandas(result)
        pq.write_table(table, args.summary_out)
    return {
        "tool": "patron.summary",
        "output": args.output,
        "memory_limit": args.memory_limit,
        "customers": len(result),
        "seconds": seconds,
        "median_seconds": statistics.median(seconds),
        "median_cpu_seconds": statistics.median(cpu),
        "minor_page_faults": faults,
        "peak_rss_mb": peak_rss_mb(),
    }


def load_directly(parquet: Path, db: Path) -> dict:
    """Fill the contract's ``transactions`` table straight from Parquet with one DuckDB INSERT,
    bypassing patron.ingest's row checks (100M mode: the summary is what is timed)."""
    from patron.data.store import connect

    began = time.perf_counter()
    with connect(db) as con:
        con.execute(
            "INSERT INTO transactions (customer_id, order_id, occurred_at, amount) "
            "SELECT customer_id, order_id, occurred_at, amount FROM read_parquet(?)",
            [str(parquet)],
        )
    return {
        "tool": "duckdb INSERT ... FROM read_parquet",
        "median_seconds": time.perf_counter() - began,
        "peak_rss_mb": peak_rss_mb(),
    }


def run_child(command: list[str]) -> dict:
    """Run a worker and parse the JSON object it prints last."""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def patron_child(kind: str, args, **extra) -> dict:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        kind,
        "--parquet",
        str(args.parquet),
        "--db",
        str(args.db),
        "--end",
        args.end,
        "--repeat",
        str(args.repeat),
        "--output",
        args.output,
    ]
    if args.memory_limit:
        command += ["--memory-limit", args.memory_limit]
    for key, value in extra.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    return run_child(command)


# ---------------------------------------------------------------- equality check


def compare(patron_file: Path, lifetimes_file: Path) -> dict:
    """Agreement of patron's weekly summary with lifetimes' daily one divided by 7."""
    import pandas as pd

    ours = pd.read_parquet(patron_file).set_index("customer_id").sort_index()
    theirs = pd.read_parquet(lifetimes_file).set_index("customer_id").sort_index()
    same_customers = ours.index.equals(theirs.index)
    report = {
        "customers_patron": len(ours),
        "customers_lifetimes": len(theirs),
        "same_customers": bool(same_customers),
    }
    if not same_customers:
        return {**report, "agree": False}
    report["frequency_mismatches"] = int((ours["frequency"] != theirs["frequency"]).sum())
    for column, scale in (
        ("recency", DAYS_PER_WEEK),
        ("T", DAYS_PER_WEEK),
        ("monetary_value", 1.0),
    ):
        mine = ours[column].to_numpy(float)
        expected = theirs[column].to_numpy(float) / scale
        scale_ = np.maximum(np.abs(expected), np.finfo(float).tiny)
        report[f"{column}_max_relative_error"] = float(np.max(np.abs(mine - expected) / scale_))
    report["agree"] = report["frequency_mismatches"] == 0 and all(
        report[f"{c}_max_relative_error"] <= RELATIVE_TOLERANCE
        for c in ("recency", "T", "monetary_value")
    )
    return report


# ---------------------------------------------------------------- modes


def machine() -> dict:
    import os

    import duckdb

    return {
        "date": dt.date.today().isoformat(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }


def print_line(label: str, value: str) -> None:
    print(f"  {label:<44} {value}")


def run_default(args) -> dict:
    OUT.mkdir(exist_ok=True)
    args.parquet = OUT / f"tx_{args.customers}_{args.seed}.parquet"
    args.db = OUT / f"bench_{args.customers}.duckdb"
    args.end = end_date()
    print(
        f"simulating {args.customers:,} customers (expected {expected_orders_per_customer(BENCH_PARAMS):.2f} "
        f"orders each) -> {args.parquet}"
    )
    data = ensure_data(args.parquet, args.customers, args.seed)
    print(f"  {data['transactions']:,} transactions")
    ingest = patron_child("ingest", args)
    summary = patron_child("summary", args, summary_out=OUT / "summary_patron.parquet")
    if not PEER_PYTHON.exists():
        raise SystemExit(f"{PEER_PYTHON} missing: run scripts/peer-venv.sh first")
    peer = run_child(
        [
            str(PEER_PYTHON),
            str(HERE / "peer_lifetimes_summary.py"),
            str(args.parquet),
            "--end",
            args.end,
            "--repeat",
            str(args.repeat),
            "--out",
            str(OUT / "summary_lifetimes.parquet"),
        ]
    )
    check = compare(OUT / "summary_patron.parquet", OUT / "summary_lifetimes.parquet")
    results = {
        "mode": "summary",
        "machine": machine(),
        "data": data,
        "ingest": ingest,
        "summary": summary,
        "lifetimes": peer,
        "check": check,
        "ratio_summary": peer["median_seconds"] / summary["median_seconds"],
        "ratio_ingest_plus_summary": peer["median_seconds"]
        / (ingest["median_seconds"] + summary["median_seconds"]),
    }
    print(
        f"\n{args.customers:,} customers, {data['transactions']:,} transactions, "
        f"medians of {args.repeat} runs:"
    )
    print_line(
        "patron.ingest (Parquet -> DuckDB)",
        f"{ingest['median_seconds']:8.2f} s   cpu {ingest['median_cpu_seconds']:7.2f} s   "
        f"peak RSS {ingest['peak_rss_mb']:7.0f} MiB   accepted {ingest['accepted']:,}",
    )
    print_line(
        "patron.summary (DuckDB -> pandas)",
        f"{summary['median_seconds']:8.2f} s   cpu {summary['median_cpu_seconds']:7.2f} s   "
        f"peak RSS {summary['peak_rss_mb']:7.0f} MiB",
    )
    print_line(
        "  its first call (cold reading engine)",
        f"{summary['seconds'][0]:8.2f} s   minor page faults per call: "
        + ", ".join(f"{n:,}" for n in summary["minor_page_faults"]),
    )
    print_line(
        "lifetimes summary_data_from_transaction_data",
        f"{peer['median_seconds']:8.2f} s   cpu {peer['median_cpu_seconds']:7.2f} s   "
        f"peak RSS {peer['peak_rss_mb']:7.0f} MiB (after load {peer['rss_after_load_mb']:.0f})",
    )
    print_line("ratio lifetimes / patron.summary", f"{results['ratio_summary']:8.1f} x")
    print_line(
        "ratio of first calls in the process (cold)",
        f"{peer['seconds'][0] / summary['seconds'][0]:8.1f} x   "
        f"({peer['seconds'][0]:.2f} s / {summary['seconds'][0]:.2f} s)",
    )
    print_line(
        "ratio of CPU seconds, lifetimes / patron.summary",
        f"{peer['median_cpu_seconds'] / summary['median_cpu_seconds']:8.1f} x",
    )
    print_line(
        "ratio lifetimes / (ingest + summary)", f"{results['ratio_ingest_plus_summary']:8.1f} x"
    )
    print(
        f"\nsame summary as lifetimes (frequency exact; recency, T, monetary_value to "
        f"{RELATIVE_TOLERANCE:g} relative): {'YES' if check['agree'] else 'NO'}"
    )
    print("  " + json.dumps(check))
    return results


def run_hundred_million(args) -> dict:
    OUT.mkdir(exist_ok=True)
    per_customer = expected_orders_per_customer(BENCH_PARAMS)
    customers = math.ceil(HUNDRED_MILLION / per_customer)
    args.parquet = OUT / f"tx_{customers}_{args.seed}.parquet"
    args.db = OUT / "bench_100m.duckdb"
    args.end = end_date()
    # DuckDB's memory_limit caps its own buffers only; the Arrow result (15.6M customers) and the
    # interpreter take the rest, so 2.5GB for DuckDB keeps the whole process within 4 GB.
    args.memory_limit = args.memory_limit or "2.5GB"
    print(f"simulating {customers:,} customers ({per_customer:.2f} orders each) -> {args.parquet}")
    data = ensure_data(args.parquet, customers, args.seed)
    print(f"  {data['transactions']:,} transactions in {data['simulate_seconds']:.0f} s")
    if not args.db.exists() and args.load == "direct":
        ingest = load_directly(args.parquet, args.db)
    elif not args.db.exists():
        repeat, args.repeat = args.repeat, 1
        ingest = patron_child("ingest", args)
        args.repeat = repeat
    else:
        ingest = {"skipped": f"{args.db} exists"}
    summary = patron_child("summary", args)
    results = {
        "mode": "100m",
        "machine": machine(),
        "data": data,
        "ingest": ingest,
        "summary": summary,
    }
    print(f"\n{data['transactions']:,} transactions, {customers:,} customers:")
    if "median_seconds" in ingest:
        print_line(
            f"load ({ingest.get('tool', 'patron.ingest')}, once)",
            f"{ingest['median_seconds']:8.1f} s   peak RSS {ingest['peak_rss_mb']:7.0f} MiB",
        )
    print_line(
        f"patron.summary memory_limit={args.memory_limit} output={args.output}",
        f"{summary['median_seconds']:8.1f} s   peak RSS {summary['peak_rss_mb']:7.0f} MiB "
        f"(median of {args.repeat}: {', '.join(f'{s:.1f}' for s in summary['seconds'])})",
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--repeat", type=int, default=3, help="timed runs per tool (median reported)"
    )
    parser.add_argument(
        "--transactions-100m",
        action="store_true",
        help="~100M transactions: time patron.summary alone within --memory-limit",
    )
    parser.add_argument(
        "--load",
        choices=["ingest", "direct"],
        default="ingest",
        help="100M mode: fill the database with patron.ingest or one DuckDB INSERT from Parquet",
    )
    parser.add_argument("--memory-limit", default=None, help="DuckDB memory_limit (100M mode: 2.5GB, so the process stays within 4 GB)")
    parser.add_argument(
        "--output",
        choices=["pandas", "arrow"],
        default=None,
        help="patron.summary output (default pandas; arrow in 100M mode)",
    )
    # Internal: run one timed patron step in this (child) process.
    parser.add_argument("--worker", choices=["ingest", "summary"], help=argparse.SUPPRESS)
    parser.add_argument("--parquet", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--end", help=argparse.SUPPRESS)
    parser.add_argument("--summary-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.output = args.output or ("arrow" if args.transactions_100m else "pandas")

    if args.worker:
        work = worker_ingest if args.worker == "ingest" else worker_summary
        print(json.dumps(work(args)))
        return
    results = run_hundred_million(args) if args.transactions_100m else run_default(args)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = OUT / f"bench_summary_{results['mode']}_{stamp}.json"
    path.write_text(json.dumps({"command": " ".join(sys.argv), **results}, indent=2))
    print(f"\nresults: {path}")


if __name__ == "__main__":
    main()
