"""Benchmark: the value pipeline on a Spark standalone cluster beside Spark local mode, same cores.

    .venv/bin/python benchmarks/bench_spark_cluster.py                            # 50M transactions
    .venv/bin/python benchmarks/bench_spark_cluster.py --transactions 2000000 --repeat 3

The simulated transactions of ``bench_summary`` (``BENCH_PARAMS``, about 6.4 orders per customer; the
Parquet file under ``benchmarks/out/`` is shared with bench_spark.py and reused). Two ways of running
the same pipeline on two cores, each in its own child process:

* **local**: ``spark_session("local[2]")``, driver and executors in one JVM with ``--local-memory``
  (default 3g, as bench_spark.py);
* **cluster**: a standalone master and two workers started from pyspark's distribution by
  ``scripts/spark_cluster.py`` (1 core and ``--executor-memory`` each, default 1536m, so the executors
  have the local JVM's heap between them), and a driver with ``--driver-memory`` (default 1g: it only
  receives the compressed statistics). Executors are separate JVMs launched by the workers; they start
  the driver's Python for scoring.

The pipeline, as bench_spark.py's Spark side: the weekly summary persisted (memory and disk), BG/NBD
and Gamma-Gamma fitted on its compressed statistics (``fit_spark_summary``), every customer scored on
the executors and written as Parquet (``score_spark`` + ``write_scores``), customer equity and its
interval (``equity_interval_spark``). Both sessions use the same shuffle partitions
(``--shuffle-partitions``, default 4 as local sessions) and the JVM's default compilers.

Figures: seconds per step (the session start and the cluster start apart), the pipeline's total and the
cluster / local ratio (medians over ``--repeat`` runs), and peak memory sampled every 0.1 s: the Python
driver, the driver JVM (in local mode it is the executors too), the executor JVMs, the Python workers
and the cluster's daemons. Equity and the fitted parameters of both modes are printed to show they
agree. Timings are printed, never asserted: the machine is shared, so read medians and ratios. The
cluster is stopped (every process group killed) even when a run fails, and the script checks that no
process of it is left.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from _measure import TreeRSS
from bench_summary import BENCH_PARAMS, SEED, end_date, ensure_data, expected_orders_per_customer

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
CORES = 2
"""Cores of both modes: ``local[2]``, and two workers of one core each."""

SAMPLE_SECONDS = 0.1
KIND_ORDER = ("python_driver", "driver_jvm", "executor_jvms", "python_workers", "cluster_daemons")


def load_cluster_module():
    spec = importlib.util.spec_from_file_location("spark_cluster", HERE.parent / "scripts" / "spark_cluster.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _kind(proc: psutil.Process) -> str:
    cmd = " ".join(proc.cmdline())
    if "java" not in proc.name():
        return "python_workers"
    if "CoarseGrainedExecutorBackend" in cmd:
        return "executor_jvms"
    if "deploy.master.Master" in cmd or "deploy.worker.Worker" in cmd:
        return "cluster_daemons"
    return "driver_jvm"


def TreeMemory(daemons: set[int]) -> TreeRSS:
    """Peak summed RSS (MiB) per kind of process: this process, its descendants, and the cluster's
    daemons (``daemons``) with their descendants (executors, and the executors' Python daemons and
    workers, which PySpark puts in process groups of their own), sampled every :data:`SAMPLE_SECONDS`."""
    return TreeRSS(root_kind="python_driver", classify=_kind, kinds=KIND_ORDER[1:], extra=daemons, every=SAMPLE_SECONDS)


def _timed(steps: dict[str, float], name: str, fn):
    began = time.perf_counter()
    value = fn()
    steps[name] = time.perf_counter() - began
    return value


def worker(args) -> dict:
    """One run of the pipeline in this (child) process, on ``args.master``."""
    from pyspark import StorageLevel

    from patron.data.engines.spark import spark_session
    from patron.value.spark_fit import fit_spark_summary
    from patron.value.spark_score import equity_interval_spark, score_spark, write_scores
    from patron.value.spark_summary import summary_spark

    local = args.master.startswith("local")
    conf = {"spark.sql.shuffle.partitions": str(args.shuffle_partitions),
            "spark.driver.memory": args.local_memory if local else args.driver_memory}
    if not local:
        conf |= {"spark.executor.memory": args.executor_memory, "spark.scheduler.minRegisteredResourcesRatio": "1.0"}
    steps: dict[str, float] = {}
    kw = dict(horizon=52.0, period="W", discount_rate=0.1, margin=1.0)
    daemons = {int(p) for p in args.daemons.split(",")} if args.daemons else set()
    with TreeMemory(daemons) as memory:
        spark = _timed(steps, "start session", lambda: spark_session(args.master, **conf))
        summary = summary_spark(spark, args.parquet, end=args.end).persist(StorageLevel.MEMORY_AND_DISK)
        _timed(steps, "summary (persisted)", summary.count)
        # block managers registered: the driver's, plus one per executor JVM on a cluster
        executors = "in the driver" if local else spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size() - 1
        tm = _timed(steps, "fit BG/NBD", lambda: fit_spark_summary("bgnbd", summary))
        sm = _timed(steps, "fit Gamma-Gamma", lambda: fit_spark_summary("gammagamma", summary))
        _timed(steps, "score + write", lambda: write_scores(score_spark(summary, tm, sm, **kw), args.scores))
        equity = _timed(steps, "equity + interval", lambda: equity_interval_spark(summary, tm, sm, **kw))
        spark.stop()
    return {"steps": steps, "equity": equity, "params": tm.params_, "memory_mb": memory.peak, "executors": executors}


def run_child(mode: str, args, master: str, daemons: set[int], scores: Path) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--master", master,
               "--daemons", ",".join(map(str, sorted(daemons))), "--parquet", str(args.parquet), "--scores", str(scores),
               "--end", args.end, "--local-memory", args.local_memory, "--driver-memory", args.driver_memory,
               "--executor-memory", args.executor_memory, "--shuffle-partitions", str(args.shuffle_partitions)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{mode} run failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def pipeline_seconds(result: dict) -> float:
    """Seconds of the pipeline proper (not the session start)."""
    return sum(v for k, v in result["steps"].items() if k != "start session")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transactions", type=int, default=50_000_000, help="About this many transactions [50M].")
    parser.add_argument("--repeat", type=int, default=1, help="Runs of each mode (alternating) [1].")
    parser.add_argument("--local-memory", default="3g", help="spark.driver.memory of local[2] [3g].")
    parser.add_argument("--driver-memory", default="1g", help="spark.driver.memory of the cluster's driver [1g].")
    parser.add_argument("--executor-memory", default="1536m",
                        help="Memory each worker offers and each executor uses [1536m].")
    parser.add_argument("--shuffle-partitions", type=int, default=4, help="spark.sql.shuffle.partitions of both [4].")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--master", help=argparse.SUPPRESS)
    parser.add_argument("--daemons", default="", help=argparse.SUPPRESS)
    parser.add_argument("--parquet", help=argparse.SUPPRESS)
    parser.add_argument("--scores", help=argparse.SUPPRESS)
    parser.add_argument("--end", default=end_date(), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args), default=float))
        return

    OUT.mkdir(exist_ok=True)
    customers = round(args.transactions / expected_orders_per_customer(BENCH_PARAMS))
    args.parquet = OUT / f"tx_{customers}_{SEED}.parquet"
    began = time.perf_counter()
    data = ensure_data(args.parquet, customers, SEED)
    print(f"{data['transactions']:,} transactions of {customers:,} customers in {args.parquet.name} "
          f"(simulated in {data['simulate_seconds']:.1f} s; ready in {time.perf_counter() - began:.1f} s); "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")

    spark_cluster = load_cluster_module()
    results: dict[str, list[dict]] = {"local": [], "cluster": []}
    with tempfile.TemporaryDirectory(prefix="bench-spark-cluster-", dir=OUT) as tmp:
        root = Path(tmp)
        cluster = spark_cluster.StandaloneCluster(root / "cluster", workers=CORES, cores=1, memory=args.executor_memory)
        try:
            started = time.perf_counter()
            cluster.start()
            print(f"cluster {cluster.master_url}: master + {CORES} workers (1 core, {args.executor_memory} each) "
                  f"registered in {time.perf_counter() - started:.1f} s")
            daemons = {p.pid for p in cluster.processes.values()}
            for run in range(args.repeat):
                for mode in ("local", "cluster"):
                    scores = root / f"scores-{mode}-{run}"
                    master = f"local[{CORES}]" if mode == "local" else cluster.master_url
                    res = run_child(mode, args, master, daemons if mode == "cluster" else set(), scores)
                    results[mode].append(res)
                    mem = res["memory_mb"]
                    print(f"  {mode:7s} run {run + 1}: pipeline {pipeline_seconds(res):6.1f} s "
                          f"(session start {res['steps']['start session']:.1f} s, executors {res['executors']}); "
                          + ", ".join(f"{k} {v:.1f} s" for k, v in res["steps"].items() if k != "start session"))
                    print("           peak MiB: " + ", ".join(f"{k} {mem[k]:,.0f}" for k in KIND_ORDER))
        finally:
            seen = cluster.process_pids()  # daemons, executors, executors' Python daemons and workers
            cluster.stop()
        left = spark_cluster.process_tree(set(seen))
        print(f"cluster stopped; processes of it left: {len(left)}")

    print("\nmedians over", args.repeat, "run(s) of each mode:")
    med = {}
    for mode, runs in results.items():
        med[mode] = statistics.median(pipeline_seconds(r) for r in runs)
        steps = {k: statistics.median(r["steps"][k] for r in runs) for k in runs[0]["steps"]}
        peaks = {k: max(r["memory_mb"][k] for r in runs) for k in KIND_ORDER}
        total = sum(peaks.values())
        print(f"  {mode:7s} pipeline {med[mode]:6.1f} s = {data['transactions'] / med[mode] / CORES:,.0f} tx/s/core; "
              + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items()))
        print("          peak MiB (max over runs): " + ", ".join(f"{k} {peaks[k]:,.0f}" for k in KIND_ORDER)
              + f"; sum of these peaks {total:,.0f}")
    print(f"  cluster / local pipeline time: {med['cluster'] / med['local']:.2f}")
    for mode, runs in results.items():
        eq = runs[-1]["equity"]
        params = ", ".join(f"{k} {v:.6g}" for k, v in runs[-1]["params"].items())
        print(f"  {mode:7s} equity {eq[0]:,.2f} [{eq[1]:,.2f}, {eq[2]:,.2f}]; BG/NBD {params}")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = OUT / f"bench_spark_cluster_{stamp}.json"
    path.write_text(json.dumps({"transactions": data["transactions"], "customers": customers, "results": results},
                               default=float, indent=1))
    print(f"results: {path}")


if __name__ == "__main__":
    main()
