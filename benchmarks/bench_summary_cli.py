"""Benchmark: one-shot ``patron summary`` and ``patron fit bgnbd`` against lifetimes' one-shot
summary and BG/NBD fit, whole processes (interpreter start, imports, reading the data, the work,
exit), issues 21 and 22.

    scripts/peer-venv.sh                                  # once: lifetimes in .venv-lifetimes
    .venv/bin/python benchmarks/bench_summary_cli.py [--customers 1000000] [--repeat 3]
        [--page-cache-cold] [--in-process] [--baseline-src ../main/src]
    .venv/bin/python benchmarks/bench_summary_cli.py --in-process-only [--baseline-src ../main/src]

The data are :mod:`bench_summary`'s (simulated with its recipe into ``benchmarks/out/``, reused
when present): about 6.4 transactions per customer. Each tool reads them the way its users do:

* ``patron summary --db bench.duckdb --period W --end END`` on a database filled once by
  ``patron.ingest`` (not timed), printing its overview table;
* lifetimes summary: ``peer_lifetimes_summary.py PARQUET --end END --repeat 1`` in
  ``.venv-lifetimes``: imports pandas and lifetimes, reads the Parquet file,
  ``summary_data_from_transaction_data(freq="D")``;
* ``patron fit bgnbd --db bench.duckdb --period W --end END``, printing its parameter table;
* lifetimes fit: ``peer_lifetimes_fit_cli.py PARQUET --end END``: reads the Parquet file,
  the same summary, recency and T in weeks, ``BetaGeoFitter().fit``.

The runs alternate (patron summary, lifetimes summary, patron fit, lifetimes fit, patron version,
...) so that all see the same load on this shared machine. Prints the median, min and max
wall-clock seconds of each, its median CPU seconds (user + system, all threads) and peak RSS, the
ratios lifetimes / patron, and the fitted BG/NBD parameters of both (from one more, untimed
``--json`` run of patron). Writes ``benchmarks/out/summary_cli_<customers>.json``.

``--page-cache-cold`` drops the data files (the database for patron, the Parquet file for
lifetimes) from the operating system's page cache before every timed run
(``posix_fadvise(POSIX_FADV_DONTNEED)``, which needs no privileges and leaves other files alone;
the interpreters' and libraries' own files stay cached), so that each run reads its data from the
disk. ``--in-process`` also times, in one fresh process, a first and a second
``patron.summary(db)`` call (after ``import patron`` and the imports the call needs), the first
with the database dropped from the page cache as above: the cost of a cold first call.
``--baseline-src DIR`` also runs ``patron summary`` and ``patron fit bgnbd`` with another checkout's
``src`` first on ``PYTHONPATH`` (e.g. main's), in the same alternation: before and after a change,
under the same load. ``--in-process-only`` times only the in-process calls (no lifetimes needed),
with ``--baseline-src`` alternated with the same calls from the other ``src``. Timings are printed,
never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_summary import OUT, PEER_PYTHON, end_date, ensure_data

HERE = Path(__file__).resolve().parent
PATRON = Path(sys.executable).parent / "patron"


def drop_from_page_cache(path: Path) -> None:
    """Ask the kernel to drop ``path``'s pages from the page cache (clean pages of a file only
    read here are dropped; the next read goes to the disk)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def timed(command: list[str], *, cold: Path | None = None, src: str | None = None) -> tuple[float, float, float, str]:
    """Wall-clock seconds, CPU seconds (user + system, all threads), peak RSS (MiB) and stdout of
    ``command`` in a fresh process (it must succeed); ``cold``: a file dropped from the page cache
    first; ``src``: put first on ``PYTHONPATH``. On a loaded machine the wall clock also holds the
    time the process waited for a core."""
    if cold is not None:
        drop_from_page_cache(cold)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        began = time.perf_counter()
        env = dict(os.environ, PYTHONPATH=src) if src else None
        proc = subprocess.Popen(command, stdout=out, stderr=err, cwd=HERE, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - began
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{err.read().decode()[-4000:]}")
        return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out.read().decode()


IN_PROCESS = """
import json, resource, sys, time
import patron
from patron.value.summary import summary
db, end = sys.argv[1], sys.argv[2]
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
calls = []
for _ in range(2):
    w, c = time.perf_counter(), cpu()
    summary(db, period="W", end=end, output="arrow")
    calls.append({"seconds": time.perf_counter() - w, "cpu_seconds": cpu() - c})
print(json.dumps(calls))
"""
"""A fresh process that calls ``patron.summary`` twice on the database and prints each call's
wall-clock and CPU seconds (imports before the first call are not in either)."""


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
    parser.add_argument("--page-cache-cold", action="store_true", help="drop the data files from the page cache before each run")
    parser.add_argument("--in-process", action="store_true", help="also time a first and a second summary call in one process")
    parser.add_argument("--baseline-src", help="also run patron's commands with this src folder first on PYTHONPATH")
    parser.add_argument("--in-process-only", action="store_true", help="only the in-process first and second calls")
    args = parser.parse_args()
    if args.in_process_only:
        in_process_only(args)
        return
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
        "patron fit bgnbd": [str(PATRON), "fit", "bgnbd", "--db", str(db), "--period", "W", "--end", end],
        "lifetimes fit bgnbd": [str(PEER_PYTHON), str(HERE / "peer_lifetimes_fit_cli.py"), str(parquet), "--end", end],
        "patron version": [str(PATRON), "version"],
    }
    baseline = {}
    if args.baseline_src:
        baseline = {"baseline summary": commands["patron summary"], "baseline fit bgnbd": commands["patron fit bgnbd"]}
        commands = {**commands, **baseline}
    reads = {"baseline summary": db, "baseline fit bgnbd": db, "patron summary": db, "lifetimes summary": parquet, "patron fit bgnbd": db, "lifetimes fit bgnbd": parquet}
    runs: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    rss: dict[str, list[float]] = {name: [] for name in commands}
    outputs: dict[str, str] = {}
    for _ in range(args.repeat):
        for name, command in commands.items():
            wall, used, peak, printed = timed(command, cold=reads.get(name) if args.page_cache_cold else None,
                                              src=args.baseline_src if name in baseline else None)
            runs[name].append(wall)
            cpu[name].append(used)
            rss[name].append(peak)
            outputs[name] = printed
    figures = {name: stats(values) for name, values in runs.items()}
    cpu_figures = {name: stats(values) for name, values in cpu.items()}
    cache = "page cache dropped before each run" if args.page_cache_cold else "data files in the page cache"
    print(f"\nwhole process, {args.repeat} runs each, alternated, {cache} (seconds; peak RSS MiB)")
    print(f"{'command':22s} {'median':>8s} {'min':>8s} {'max':>8s} {'CPU median':>11s} {'peak RSS':>9s}")
    for name, f in figures.items():
        print(f"{name:22s} {f['median']:8.2f} {f['min']:8.2f} {f['max']:8.2f} {cpu_figures[name]['median']:11.2f} "
              f"{statistics.median(rss[name]):9.0f}")
    ratios = {}
    for step in ("summary", "fit bgnbd"):
        wall = figures[f"lifetimes {step}"]["median"] / figures[f"patron {step}"]["median"]
        used = cpu_figures[f"lifetimes {step}"]["median"] / cpu_figures[f"patron {step}"]["median"]
        ratios[step] = {"wall": wall, "cpu": used}
        print(f"ratio lifetimes / patron, {step} (medians): wall clock {wall:.1f}x, CPU {used:.1f}x")
        if baseline:
            wall = figures[f"lifetimes {step}"]["median"] / figures[f"baseline {step}"]["median"]
            used = cpu_figures[f"lifetimes {step}"]["median"] / cpu_figures[f"baseline {step}"]["median"]
            ratios[f"baseline {step}"] = {"wall": wall, "cpu": used}
            print(f"ratio lifetimes / baseline ({args.baseline_src}), {step} (medians): wall clock {wall:.1f}x, CPU {used:.1f}x")
    fitted = json.loads(timed([*commands["patron fit bgnbd"], "--json"])[3])
    peer = json.loads(outputs["lifetimes fit bgnbd"])
    print("BG/NBD parameters (per week): patron " + ", ".join(f"{k} {v:.4f}" for k, v in fitted["params"].items())
          + "; lifetimes " + ", ".join(f"{k} {v:.4f}" for k, v in peer["params"].items()))
    print("lifetimes' steps (last run, seconds): " + ", ".join(f"{k} {v:.2f}" for k, v in peer["seconds"].items()))
    result = {"customers": args.customers, "transactions": data["transactions"], "end": end,
              "repeat": args.repeat, "page_cache_cold": args.page_cache_cold, "baseline_src": args.baseline_src,
              "commands": {k: " ".join(v) for k, v in commands.items()},
              "seconds": runs, "cpu_seconds": cpu, "peak_rss_mib": rss, "figures": figures, "cpu_figures": cpu_figures,
              "ratios_lifetimes_over_patron": ratios, "params": {"patron": fitted["params"], "lifetimes": peer["params"]}}
    if args.in_process:
        calls = []
        for _ in range(args.repeat):
            drop_from_page_cache(db)
            calls.append(json.loads(timed([sys.executable, "-c", IN_PROCESS, str(db), end])[3]))
        first = statistics.median(c[0]["seconds"] for c in calls)
        second = statistics.median(c[1]["seconds"] for c in calls)
        first_cpu = statistics.median(c[0]["cpu_seconds"] for c in calls)
        second_cpu = statistics.median(c[1]["cpu_seconds"] for c in calls)
        print(f"\npatron.summary in one process, {args.repeat} processes (medians): first call (database dropped from the "
              f"page cache) {first:.2f} s ({first_cpu:.2f} s CPU), second call {second:.2f} s ({second_cpu:.2f} s CPU)")
        result["in_process"] = calls
    (OUT / f"summary_cli_{args.customers}.json").write_text(json.dumps(result, indent=2))


def in_process_only(args: argparse.Namespace) -> None:
    """``--in-process-only``: the first and second ``patron.summary`` calls of fresh processes, this
    checkout's and (``--baseline-src``) the other's, alternated, the database dropped from the page
    cache before each process."""
    OUT.mkdir(exist_ok=True)
    parquet = OUT / f"tx_{args.customers}_{args.seed}.parquet"
    db = OUT / f"summary_cli_{args.customers}_{args.seed}.duckdb"
    end = end_date()
    data = ensure_data(parquet, args.customers, args.seed)
    ensure_database(parquet, db)
    sources = {"patron": None, **({f"baseline ({args.baseline_src})": args.baseline_src} if args.baseline_src else {})}
    calls: dict[str, list] = {name: [] for name in sources}
    for _ in range(args.repeat):
        for name, src in sources.items():
            drop_from_page_cache(db)
            calls[name].append(json.loads(timed([sys.executable, "-c", IN_PROCESS, str(db), end], src=src)[3]))
    print(f"{args.customers:,} customers, {data['transactions']:,} transactions; patron.summary in one process, "
          f"{args.repeat} processes each, alternated (medians; min-max CPU), load {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    for name, runs in calls.items():
        for k, label in ((0, "first call (database dropped from the page cache)"), (1, "second call")):
            cpu = [c[k]["cpu_seconds"] for c in runs]
            print(f"  {name:30s} {label:52s} {statistics.median(c[k]['seconds'] for c in runs):6.2f} s wall, "
                  f"{statistics.median(cpu):5.2f} s CPU ({min(cpu):.2f}-{max(cpu):.2f})")
    (OUT / f"summary_in_process_{args.customers}.json").write_text(json.dumps(calls, indent=2))


if __name__ == "__main__":
    main()
