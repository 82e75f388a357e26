"""Benchmark: how long the ``patron`` command and ``import patron`` take to start (issue 21).

    .venv/bin/python benchmarks/bench_startup.py [--repeat 10] [--importtime]

Runs each command ``--repeat`` times in a fresh process, alternating the commands so that all see
the same load on this shared machine, and prints the median, min and max wall-clock seconds of
the whole process (interpreter start, imports, the command, exit) and its median CPU seconds:

* ``patron version``
* ``patron --help``
* ``python -c "import patron"``
* ``python -c "import patron.cli"``

``--importtime`` also runs ``python -X importtime -c "import patron.cli"`` once and prints the
modules with the largest cumulative import time (microseconds, as CPython reports them), so that
a regression names the import that caused it. Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
COMMANDS: dict[str, list[str]] = {
    "patron version": [str(BIN / "patron"), "version"],
    "patron --help": [str(BIN / "patron"), "--help"],
    "python -c 'import patron'": [sys.executable, "-c", "import patron"],
    "python -c 'import patron.cli'": [sys.executable, "-c", "import patron.cli"],
}


def children_cpu() -> float:
    """User + system CPU seconds of the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_once(cmd: list[str]) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of one run of ``cmd`` in a fresh process
    (output discarded). On a loaded machine the CPU time is the steadier of the two."""
    cpu, began = children_cpu(), time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - began, children_cpu() - cpu


def import_times(top: int) -> list[tuple[int, str]]:
    """The ``top`` modules by cumulative import time (µs) of ``import patron.cli``."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import patron.cli"],
                          check=True, capture_output=True, text=True)
    rows = []
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10, help="runs of each command")
    parser.add_argument("--importtime", action="store_true", help="also print the slowest imports")
    args = parser.parse_args()
    for cmd in COMMANDS.values():  # warm the file cache once, untimed
        time_once(cmd)
    runs: dict[str, list[float]] = {name: [] for name in COMMANDS}
    cpu: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.repeat):
        for name, cmd in COMMANDS.items():
            wall, used = time_once(cmd)
            runs[name].append(wall)
            cpu[name].append(used)
    print(f"whole process, {args.repeat} runs each (seconds; CPU = user + system)")
    print(f"{'command':32s} {'median':>7s} {'min':>7s} {'max':>7s} {'CPU med':>8s}")
    for name, values in runs.items():
        print(f"{name:32s} {statistics.median(values):7.3f} {min(values):7.3f} {max(values):7.3f} "
              f"{statistics.median(cpu[name]):8.3f}")
    if args.importtime:
        print("\nslowest imports of `import patron.cli` (cumulative µs, -X importtime)")
        for micros, module in import_times(15):
            print(f"{micros:9d}  {module}")


if __name__ == "__main__":
    main()
