"""Benchmark: the whole `patron report` process on the CDNOW master file and a simulated 100k base.

    .venv/bin/python benchmarks/bench_report.py                      # both bases, 3 runs each
    .venv/bin/python benchmarks/bench_report.py --repeats 5 --customers 100000
    .venv/bin/python benchmarks/bench_report.py --only cdnow

Prepares each database once (not timed): the raw CDNOW master file (23,570 customers, 69,659
orders, ingested as its publisher ships it; ``--cdnow`` names the file, default
``../shared/data/cdnow/CDNOW_master.txt`` from the project root) and a base simulated with
`patron simulate --customers N --seed 1` (BG/NBD + Gamma-Gamma at the CDNOW parameters, 84 days of
acquisition, 546 days observed). Then it runs ``patron report --db DB --out FILE`` as a new process
``--repeats`` times (start-up, imports, every section, writing the file: what a user waits for)
and prints, per base, the median and range of the wall time and the size of the HTML file. The
target of issue 24 is under 15 s each, offline (the file inlines plotly.js and loads nothing).
Timings are printed, never asserted: the machine is shared, quote medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATRON = [sys.executable, "-m", "patron"]
CDNOW_CANDIDATES = (ROOT.parent / "shared" / "data" / "cdnow" / "CDNOW_master.txt",
                    ROOT.parents[1] / "shared" / "data" / "cdnow" / "CDNOW_master.txt")
"""Where the CDNOW master file is looked for (beside the project, or beside a worktree's parent)."""


def run(args: list[str], **kw: object) -> subprocess.CompletedProcess:
    proc = subprocess.run(PATRON + args, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    if proc.returncode != 0:
        raise SystemExit(f"patron {' '.join(args)} failed: {proc.stderr.strip()[-400:]}")
    return proc


def prepare_cdnow(folder: Path, master: Path) -> Path:
    db = folder / "cdnow_master.duckdb"
    run(["ingest", str(master), "--kind", "transactions", "--db", str(db), "--map", "occurred_at=date",
         "--map", "amount=dollar_value"])
    return db


def prepare_simulated(folder: Path, customers: int) -> Path:
    base = folder / "simulated.parquet"
    db = folder / f"simulated_{customers}.duckdb"
    run(["simulate", "--customers", str(customers), "--seed", "1", "--out", str(base)])
    run(["ingest", str(base), "--kind", "transactions", "--db", str(db)])
    return db


def time_report(db: Path, out: Path, repeats: int, currency: str | None) -> tuple[list[float], int]:
    seconds = []
    for _ in range(repeats):
        if out.exists():
            out.unlink()
        started = time.perf_counter()
        run(["report", "--db", str(db), "--out", str(out)] + (["--currency", currency] if currency else []))
        seconds.append(time.perf_counter() - started)
    return seconds, out.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--cdnow", type=Path, default=None, help="the CDNOW_master.txt file")
    parser.add_argument("--only", choices=("cdnow", "simulated"), default=None)
    parser.add_argument("--keep", type=Path, default=None, help="folder to keep the databases and reports in")
    a = parser.parse_args()
    master = a.cdnow or next((p for p in CDNOW_CANDIDATES if p.exists()), None)
    folder = a.keep or Path(tempfile.mkdtemp(prefix="bench_report_"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"bench_report: {a.repeats} runs of the whole `patron report` process per base; cpus {os.cpu_count()}, "
          f"load {os.getloadavg()[0]:.1f}; files in {folder}")
    bases = []
    if a.only in (None, "cdnow"):
        if master is None:
            raise SystemExit("CDNOW_master.txt not found: pass --cdnow PATH")
        bases.append((f"CDNOW master ({master.name})", prepare_cdnow(folder, master), "USD"))
    if a.only in (None, "simulated"):
        bases.append((f"simulated {a.customers:,} customers", prepare_simulated(folder, a.customers), "USD"))
    for label, db, currency in bases:
        seconds, size = time_report(db, folder / f"{db.stem}_report.html", a.repeats, currency)
        print(f"{label}: median {statistics.median(seconds):.1f} s (min {min(seconds):.1f}, max {max(seconds):.1f}) "
              f"over {len(seconds)} runs; file {size / 1e6:.2f} MB ({size:,} bytes); load now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
