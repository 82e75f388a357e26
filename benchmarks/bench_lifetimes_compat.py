"""Benchmark: the same lifetimes-API code run by lifetimes 0.11.3 and by patron.compat.lifetimes.

    scripts/peer-venv.sh                                   # once: lifetimes in .venv-lifetimes
    .venv/bin/python benchmarks/bench_lifetimes_compat.py [--customers 100000] [--repeat 3]

Each run is a fresh process of ``lifetimes_api_workload.py`` (identical code, only ``--module``
differs), alternating the two libraries so that both see the same load on this shared machine:

* ``quickstart``: lifetimes' Quickstart steps on its bundled data (whole process timed too,
  imports included);
* ``scale``: ``--customers`` simulated customers (``bench_summary``'s simulation: CDNOW
  parameters with r = 1, about 6.4 transactions each) through summary, BG/NBD fit, predictions,
  P(alive), Gamma-Gamma and CLV.

Prints the median time of every step for both, the ratio lifetimes / patron, and whether both
gave the same answers (parameters to ``AGREEMENT``, CLV totals to ``AGREEMENT``); writes
``benchmarks/out/lifetimes_compat_<customers>.json``. Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_summary import end_date, ensure_data

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
PYTHONS = {"lifetimes": ROOT / ".venv-lifetimes" / "bin" / "python", "patron.compat.lifetimes": Path(sys.executable)}
AGREEMENT = 1e-4
"""Relative agreement required between the two libraries' parameters and CLV totals."""


def run(module: str, workload: str, extra: list[str]) -> dict:
    cmd = [str(PYTHONS[module]), str(HERE / "lifetimes_api_workload.py"), "--module", module, "--workload", workload, *extra]
    began = time.perf_counter()
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=HERE)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["process_seconds"] = time.perf_counter() - began
    return out


def compare(workload: str, runs: dict[str, list[dict]]) -> dict:
    names = list(runs["lifetimes"][0]["steps"])
    rows = []
    for name in [*names, "total", "process_seconds"]:
        def med(module: str, key: str = name) -> float:
            values = [r["steps"][key] if key in r["steps"] else r[key] for r in runs[module]]
            return statistics.median(values)

        a, b = med("lifetimes"), med("patron.compat.lifetimes")
        rows.append({"step": name, "lifetimes_s": a, "patron_s": b, "ratio": a / b if b else float("inf")})
    print(f"\n{workload}: median of {len(runs['lifetimes'])} runs each (seconds)")
    print(f"{'step':42s} {'lifetimes':>10s} {'patron':>10s} {'ratio':>7s}")
    for row in rows:
        print(f"{row['step']:42s} {row['lifetimes_s']:10.3f} {row['patron_s']:10.3f} {row['ratio']:7.1f}")
    return {"rows": rows, "checks": {m: runs[m][-1]["check"] for m in runs}}


def agree(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(agree(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(agree(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return abs(a - b) <= AGREEMENT * max(abs(a), abs(b), 1e-12)
    return a == b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--skip-scale", action="store_true")
    args = parser.parse_args()
    if not PYTHONS["lifetimes"].exists():
        sys.exit("no .venv-lifetimes: run scripts/peer-venv.sh first")
    OUT.mkdir(exist_ok=True)
    report = {"machine_note": "2 shared cores: read medians and ratios"}
    workloads = [("quickstart", [])]
    if not args.skip_scale:
        parquet = OUT / f"compat_{args.customers}.parquet"
        info = ensure_data(parquet, args.customers, args.seed)
        workloads.append(("scale", ["--parquet", str(parquet), "--end", end_date()]))
        report["scale_data"] = {"customers": args.customers, "transactions": info["transactions"]}
    for workload, extra in workloads:
        runs: dict[str, list[dict]] = {"lifetimes": [], "patron.compat.lifetimes": []}
        for _ in range(args.repeat):
            for module in runs:
                runs[module].append(run(module, workload, extra))
        result = compare(workload, runs)
        same = agree(result["checks"]["lifetimes"], result["checks"]["patron.compat.lifetimes"])
        print(f"same answers: {same}  ({json.dumps(result['checks'])})")
        result["same_answers"] = same
        report[workload] = result
    (OUT / f"lifetimes_compat_{args.customers}.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
