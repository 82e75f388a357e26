"""Benchmark: where `patron report`'s time goes on a large simulated base, section by section (issue 22).

    .venv/bin/python benchmarks/bench_report_sections.py --customers 1000000 --cache /work/cache/h22-report10
    flock /work/notes/big.lock .venv/bin/python benchmarks/bench_report_sections.py --customers 10000000 --cache DIR

Uses the simulated, ingested base of ``benchmarks/bench_profiles_report.py`` (``CACHE/sim_N.duckdb``,
made once and reused), copies it (not timed), and builds the report in this process
(:func:`patron.report.build_report`, what `patron report` runs after its start-up). Prints per section
the wall seconds and the CPU seconds of the process (user + system, every thread: DuckDB's and
NumPy's included), and apart, inside the headline, the customer profiles (``build_profiles``) and
the equity movement (``equity_movement``: 13 month ends, models refitted at each); then the total,
the peak resident memory of the process, the HTML size and the load average before and after.
One run: the machine is shared, quote the load and the CPU seconds with the figures. Nothing is
asserted. ``--profiles-first`` builds the profiles before the report (timed apart, as ``patron
profiles`` would): the report then reuses them, as in the workflow ingest -> profiles -> report.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import os
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_profiles_report import prepare


def peak_mib() -> float:
    """Peak resident memory of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu() -> float:
    """CPU seconds of this process so far (user + system, all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(module: Any, name: str, into: dict[str, tuple[float, float, float]]) -> None:
    """Replace ``module.name`` by a wrapper that adds its wall and CPU seconds to ``into[name]``
    (with the peak memory of the process when it last returned)."""
    original = getattr(module, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        wall, used = time.perf_counter(), cpu()
        try:
            return original(*args, **kwargs)
        finally:
            w, c, _ = into.get(name, (0.0, 0.0, 0.0))
            into[name] = (w + time.perf_counter() - wall, c + cpu() - used, peak_mib())

    setattr(module, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--cache", type=Path, default=Path(__file__).resolve().parent / "out" / "profiles_report")
    parser.add_argument("--profiles-first", action="store_true",
                        help="build the profiles (timed apart, as patron profiles does) before the report, which then reuses them")
    a = parser.parse_args()
    print(f"bench_report_sections: {a.customers:,} customers; cpus {os.cpu_count()}, load "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}", flush=True)
    base = prepare(a.cache, a.customers)
    work = a.cache / "sections_work.duckdb"
    shutil.copyfile(base, work)
    try:
        import patron.relationship.profiles as profiles
        import patron.relationship.segments.movement as movement
        from patron.report.build import build_report

        if a.profiles_first:
            wall, used = time.perf_counter(), cpu()
            profiles.build_profiles(str(work), output=None)
            print(f"  profiles built first (patron profiles) {time.perf_counter() - wall:8.1f} s wall {cpu() - used:8.1f} s CPU   "
                  f"peak so far {peak_mib():8,.0f} MiB", flush=True)
        inner: dict[str, tuple[float, float, float]] = {}
        timed(profiles, "build_profiles", inner)
        timed(movement, "equity_movement", inner)
        marks: list[tuple[str, float, float, float]] = []
        started, used = time.perf_counter(), cpu()
        html = build_report(str(work), on_section=lambda title: marks.append((title, time.perf_counter(), cpu(), peak_mib())))
        marks.append(("end", time.perf_counter(), cpu(), peak_mib()))
        for (title, w0, c0, _), (_, w1, c1, m1) in itertools.pairwise(marks):
            if w1 - w0 >= 0.05:
                print(f"  {title:45s} {w1 - w0:8.1f} s wall {c1 - c0:8.1f} s CPU   peak so far {m1:8,.0f} MiB", flush=True)
        for name, (w, c, m) in inner.items():
            print(f"    of which {name:34s} {w:8.1f} s wall {c:8.1f} s CPU   peak so far {m:8,.0f} MiB", flush=True)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"report ({a.customers:,} customers): {marks[-1][1] - started:.1f} s wall, {marks[-1][2] - used:.1f} s CPU "
              f"(user+sys), peak RSS {peak:,.0f} MiB, HTML {len(html.encode()) / 1e6:.2f} MB; load now "
              f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}", flush=True)
    finally:
        work.unlink(missing_ok=True)
        Path(str(work) + ".wal").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
