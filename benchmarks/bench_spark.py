"""Benchmark: the value pipeline on Apache Spark (``local[2]``) beside DuckDB, at three data sizes.

    .venv/bin/python benchmarks/bench_spark.py                          # 5M, 20M, 50M transactions
    .venv/bin/python benchmarks/bench_spark.py --transactions 2000000   # one small size

For each size, simulated transactions (``bench_summary.BENCH_PARAMS``: BG/NBD + Gamma-Gamma, about
6.4 orders per customer) are written once to Parquet under ``benchmarks/out/``. Then, each engine in
its own child process:

* **spark** (``local[2]``, driver memory ``--driver-memory``): the summary, persisted (memory and
  disk), then BG/NBD and Gamma-Gamma fitted on its compressed statistics aggregated by Spark
  (``fit_spark_summary``), score every customer on the executors
  and write the scores as Parquet (``score_spark`` + ``write_scores``), customer equity and its
  interval on the cluster (``equity_interval_spark``);
* **duckdb**: load the Parquet file into a patron database (one ``INSERT ... FROM read_parquet``,
  timed apart), ``patron.summary`` to pandas, ``patron.value.scoring.score`` (the same fits, scores and
  equity interval) and write the scores as Parquet.

Figures: seconds per step, the pipeline's throughput in transactions per second per core (two
cores for both engines), and peak memory sampled every 0.1 s over the process tree: the Python
driver, the JVM (in local mode the Spark driver and executors share it) and Spark's Python workers.
The last lines show how the time grows with data size: the slope of log(time) against
log(transactions) between the smallest and the largest size (1.0 = linear).

Timings are printed, never asserted: the machine is shared, so read medians and ratios.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _measure import TreeRSS
from bench_summary import BENCH_PARAMS, SEED, end_date, ensure_data, expected_orders_per_customer

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
CORES = 2
"""Cores given to each engine: Spark's ``local[2]`` and DuckDB's ``threads``."""

DEFAULT_SIZES = (5_000_000, 20_000_000, 50_000_000)
"""Transactions per size of the default run."""

SAMPLE_SECONDS = 0.1
"""Interval of the memory sampler."""



def _jvm_or_python(proc) -> str:
    return "jvm" if "java" in proc.name() else "python_workers"


def TreeMemory() -> TreeRSS:
    """Peak RSS (MiB) of this process, its JVM children and its other Python children, sampled."""
    return TreeRSS(root_kind="python_driver", classify=_jvm_or_python, kinds=("jvm", "python_workers"), every=SAMPLE_SECONDS)


def _timed(steps: dict[str, float], name: str, fn):
    began = time.perf_counter()
    value = fn()
    steps[name] = time.perf_counter() - began
    return value


def worker_spark(args) -> dict:
    from pyspark import StorageLevel

    from patron.data.engines.spark import spark_session
    from patron.value.spark_fit import fit_spark_summary
    from patron.value.spark_score import equity_interval_spark, score_spark, write_scores
    from patron.value.spark_summary import summary_spark

    steps: dict[str, float] = {}
    kw = dict(horizon=52.0, period="W", discount_rate=0.1, margin=1.0)
    with TreeMemory() as memory:
        spark = _timed(steps, "start session", lambda: spark_session(
            f"local[{CORES}]", **{"spark.driver.memory": args.driver_memory}))
        summary = summary_spark(spark, args.parquet, end=args.end).persist(StorageLevel.MEMORY_AND_DISK)
        _timed(steps, "summary (persisted)", summary.count)
        tm = _timed(steps, "fit BG/NBD", lambda: fit_spark_summary("bgnbd", summary))
        sm = _timed(steps, "fit Gamma-Gamma", lambda: fit_spark_summary("gammagamma", summary))
        _timed(steps, "score + write", lambda: write_scores(score_spark(summary, tm, sm, **kw), args.scores))
        equity = _timed(steps, "equity + interval", lambda: equity_interval_spark(summary, tm, sm, **kw))
        spark.stop()
    return {"steps": steps, "equity": equity, "params": tm.params_, "memory_mb": memory.peak}


def worker_duckdb(args) -> dict:
    import pyarrow as pa

    import patron
    from patron.data.io import write_table
    from patron.data.store import connect
    from patron.value.scoring import score

    steps: dict[str, float] = {}
    db = Path(args.scores).with_suffix(".duckdb")
    db.unlink(missing_ok=True)
    with TreeMemory() as memory:
        def load() -> None:
            with connect(db, threads=CORES) as con:
                con.execute("INSERT INTO transactions (customer_id, order_id, occurred_at, amount) "
                            "SELECT customer_id, order_id, occurred_at, amount FROM read_parquet(?)",
                            [str(args.parquet)]).fetchall()
        _timed(steps, "load (not in the pipeline)", load)
        summary = _timed(steps, "summary", lambda: patron.summary(db, period="W", end=args.end, threads=CORES))
        scores = _timed(steps, "fit + score + equity", lambda: score(
            summary, model="bgnbd", period="W", horizon=52.0, discount_rate=0.1, margin=1.0))
        _timed(steps, "write", lambda: write_table(pa.Table.from_pandas(scores.customers, preserve_index=False),
                                                   args.scores))
    db.unlink(missing_ok=True)
    return {"steps": steps, "equity": (scores.equity, scores.equity_lower, scores.equity_upper),
            "params": scores.transaction_model.params_, "memory_mb": memory.peak}


def run_child(engine: str, parquet: Path, scores: Path, end: str, driver_memory: str) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", engine, "--parquet", str(parquet),
               "--scores", str(scores), "--end", end, "--driver-memory", driver_memory]
    env = {**os.environ, "OMP_NUM_THREADS": str(CORES)}
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{engine} worker failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def pipeline_seconds(result: dict) -> float:
    """Seconds of the pipeline proper (not the session start, not DuckDB's load)."""
    return sum(v for k, v in result["steps"].items() if k not in ("start session", "load (not in the pipeline)"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transactions", type=int, action="append",
                        help="Transactions of one size (repeatable) [default: 5M, 20M, 50M].")
    parser.add_argument("--driver-memory", default="3g", help="spark.driver.memory of the local session.")
    parser.add_argument("--worker", choices=["spark", "duckdb"], help=argparse.SUPPRESS)
    parser.add_argument("--parquet", help=argparse.SUPPRESS)
    parser.add_argument("--scores", help=argparse.SUPPRESS)
    parser.add_argument("--end", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        result = (worker_spark if args.worker == "spark" else worker_duckdb)(args)
        print(json.dumps(result, default=float))
        return

    OUT.mkdir(exist_ok=True)
    per_customer = expected_orders_per_customer(BENCH_PARAMS)
    results = []
    for target in args.transactions or DEFAULT_SIZES:
        customers = round(target / per_customer)
        parquet = OUT / f"tx_{customers}_{SEED}.parquet"
        print(f"simulating {customers:,} customers (about {target:,} transactions) -> {parquet}")
        data = ensure_data(parquet, customers, SEED)
        n_tx = data["transactions"]
        row = {"transactions": n_tx, "customers": customers}
        for engine in ("duckdb", "spark"):
            scores = OUT / (f"scores_{engine}_{customers}" + ("" if engine == "spark" else ".parquet"))
            res = run_child(engine, parquet, scores, end_date(), args.driver_memory)
            if scores.is_dir():
                shutil.rmtree(scores)
            scores.unlink(missing_ok=True)
            seconds = pipeline_seconds(res)
            row[engine] = {**res, "pipeline_seconds": seconds, "tx_per_second_per_core": n_tx / seconds / CORES}
            mem = res["memory_mb"]
            print(f"  {engine:6s} {n_tx:>12,} tx: pipeline {seconds:7.1f} s = {n_tx / seconds / CORES:>10,.0f} tx/s/core; "
                  f"peak MiB python driver {mem['python_driver']:,.0f}, JVM {mem['jvm']:,.0f}, "
                  f"python workers {mem['python_workers']:,.0f}")
            print("         " + ", ".join(f"{k} {v:.1f} s" for k, v in res["steps"].items()))
        eq_s, eq_d = row["spark"]["equity"], row["duckdb"]["equity"]
        print(f"  equity spark {eq_s[0]:,.0f} [{eq_s[1]:,.0f}, {eq_s[2]:,.0f}], duckdb {eq_d[0]:,.0f} "
              f"[{eq_d[1]:,.0f}, {eq_d[2]:,.0f}]; spark/duckdb time {row['spark']['pipeline_seconds'] / row['duckdb']['pipeline_seconds']:.2f}")
        results.append(row)
    if len(results) > 1:
        first, last = results[0], results[-1]
        for engine in ("duckdb", "spark"):
            slope = math.log(last[engine]["pipeline_seconds"] / first[engine]["pipeline_seconds"]) / \
                math.log(last["transactions"] / first["transactions"])
            print(f"growth {engine}: time ~ transactions^{slope:.2f} from {first['transactions']:,} to {last['transactions']:,}")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (OUT / f"bench_spark_{stamp}.json").write_text(json.dumps(results, default=float, indent=1))
    print(f"results: {OUT / f'bench_spark_{stamp}.json'}")


if __name__ == "__main__":
    main()
