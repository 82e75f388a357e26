"""Benchmark: the whole `patron profiles` and `patron report` processes on a large simulated base (issue 22).

    .venv/bin/python benchmarks/bench_profiles_report.py --cache /work/cache/h22-profiles            # 10M, 3 runs each
    .venv/bin/python benchmarks/bench_profiles_report.py --customers 1000000 --repeat 3 --only profiles

1. Simulates ``--customers`` customers once with `patron simulate --seed 1` (BG/NBD + Gamma-Gamma at
   the CDNOW parameters, 84 days of acquisition, 546 days observed: about 2.8 transactions per
   customer, 27.7M at 10M) into ``CACHE/sim_N.parquet`` and ingests it once into
   ``CACHE/sim_N.duckdb`` (both reused when present; neither is timed).
2. For each run, copies that database (not timed: each run starts from the ingested base, as a
   user's first run does) and times, as new processes (everything a user waits for, start-up and
   imports included):
   * the workflow ``ingest -> profiles -> report``: `patron profiles --db DB --json`, then on the
     same copy `patron report --db DB --out FILE --json` ("report after profiles": the stored
     profiles are current, the report reuses them);
   * the cold report: `patron report` on a fresh copy, without stored profiles (it builds them).
   The peak resident memory of the process tree is sampled every 0.2 s (psutil).
3. Prints, per command, the median wall time with its range, the CPU seconds, the peak memory,
   and the report's HTML size, with the load average before and after (the machine is shared: read
   medians, quote the load). Nothing is asserted.

``--only workflow`` runs the workflow only (profiles, then the report on that copy), ``--only
report`` the cold report only, ``--only profiles`` the profiles only. The same script measures
older code with ``PYTHONPATH=OLD/src`` (the processes inherit it).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
PATRON = [sys.executable, "-m", "patron"]
SAMPLE_SECONDS = 0.2
"""How often the memory of the process tree is sampled."""

REUSED_NOTE = "this report reuses them"
"""Words of the report's "about" section when it reused the stored profiles (older code never says so)."""

LAST_CPU = 0.0
"""CPU seconds (user + system) of the last process :func:`run` waited for."""


def run(args: list[str], *, timeout: float | None = None) -> tuple[float, float, str]:
    """Wall seconds, peak RSS of the process tree (MiB) and stdout of ``patron ARGS``; the CPU
    seconds (user + system) of the process are kept in :data:`LAST_CPU`."""
    global LAST_CPU
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(PATRON + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0.0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        parent = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                rss = sum(p.memory_info().rss for p in [parent, *parent.children(recursive=True)])
                peak = max(peak, rss / 2**20)
            except psutil.Error:
                pass
            done.wait(SAMPLE_SECONDS)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise SystemExit(f"patron {' '.join(args)} ran over {timeout} s") from None
    finally:
        done.set()
        watcher.join()
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    LAST_CPU = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"patron {' '.join(args)} failed: {err.strip()[-600:]}")
    return seconds, peak, out


def prepare(cache: Path, customers: int) -> Path:
    """The ingested base of ``customers`` simulated customers (made once)."""
    cache.mkdir(parents=True, exist_ok=True)
    parquet, db = cache / f"sim_{customers}.parquet", cache / f"sim_{customers}.duckdb"
    if not parquet.exists():
        run(["simulate", "--customers", str(customers), "--seed", "1", "--out", str(parquet)])
    if not db.exists():
        run(["ingest", str(parquet), "--kind", "transactions", "--db", str(db)])
    return db


def report(label: str, seconds: list[float], peaks: list[float], extra: str = "") -> None:
    print(f"{label}: median {statistics.median(seconds):.1f} s (min {min(seconds):.1f}, max {max(seconds):.1f}) over "
          f"{len(seconds)} runs; peak RSS of the process tree {max(peaks):,.0f} MiB (median {statistics.median(peaks):,.0f}){extra}; "
          f"load now {os.getloadavg()[0]:.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=ROOT / "benchmarks" / "out" / "profiles_report",
                        help="folder for the simulated file, the ingested base and the working copies")
    parser.add_argument("--only", choices=("profiles", "workflow", "report"), default=None,
                        help="profiles: the profiles only; workflow: profiles then the report on that copy; report: the cold report")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds before a run is abandoned")
    a = parser.parse_args()
    print(f"bench_profiles_report: {a.customers:,} customers, {a.repeat} runs per command; cpus {os.cpu_count()}, "
          f"load {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} {os.getloadavg()[2]:.1f}; files in {a.cache}", flush=True)
    base = prepare(a.cache, a.customers)
    work, html = a.cache / "work.duckdb", a.cache / "report.html"
    labels = {"profiles": "patron profiles", "warm": "patron report after patron profiles (profiles current)",
              "cold": "patron report on a fresh copy (builds the profiles)"}
    times: dict[str, list[float]] = {k: [] for k in labels}
    cpus: dict[str, list[float]] = {k: [] for k in labels}
    peaks: dict[str, list[float]] = {k: [] for k in labels}
    sizes: dict[str, int] = {}
    plan = {None: ("profiles", "warm", "cold"), "profiles": ("profiles",), "workflow": ("profiles", "warm"), "report": ("cold",)}[a.only]
    try:
        for i in range(a.repeat):
            for step in plan:
                if step != "warm":  # the warm report runs on the copy the profiles were just built on
                    shutil.copyfile(base, work)
                    Path(str(work) + ".wal").unlink(missing_ok=True)
                html.unlink(missing_ok=True)
                args = (["profiles", "--db", str(work), "--json"] if step == "profiles"
                        else ["report", "--db", str(work), "--out", str(html), "--json"])
                seconds, peak, _ = run(args, timeout=a.timeout)
                times[step].append(seconds)
                cpus[step].append(LAST_CPU)
                peaks[step].append(peak)
                reused = ""
                if step != "profiles":
                    sizes[step] = html.stat().st_size
                    reused = "; profiles " + ("reused" if REUSED_NOTE in html.read_text(encoding="utf-8") else "built")
                print(f"  run {i + 1} {labels[step]}: {seconds:.1f} s, CPU {LAST_CPU:.1f} s (user+sys), peak {peak:,.0f} MiB, "
                      f"load {os.getloadavg()[0]:.1f}{reused}", flush=True)
        for step in plan:
            extra = f"; CPU median {statistics.median(cpus[step]):.1f} s"
            if step in sizes:
                extra += f"; HTML {sizes[step] / 1e6:.2f} MB ({sizes[step]:,} bytes)"
            report(f"{labels[step]} ({a.customers:,} customers)", times[step], peaks[step], extra)
        if "warm" in plan:
            total = [p + w for p, w in zip(times["profiles"], times["warm"], strict=True)]
            print(f"workflow profiles + report ({a.customers:,} customers): median {statistics.median(total):.1f} s", flush=True)
    finally:
        work.unlink(missing_ok=True)
        Path(str(work) + ".wal").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
