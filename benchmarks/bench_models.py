"""Benchmark: patron's BG/NBD, Pareto/NBD and Gamma-Gamma fits and predictions against lifetimes.

    scripts/peer-venv.sh                                  # once: lifetimes in .venv-lifetimes
    .venv/bin/python benchmarks/bench_models.py           # 100k and 1M customers

For each ``--customers`` size: simulates a customer base with :mod:`patron.value.simulate` (the CDNOW
BG/NBD + Gamma-Gamma estimates, its defaults), builds the weekly summary with ``patron.summary``
(end = start + observation days) and writes it to ``benchmarks/out/``; then, each step in its own
child process (so peak RSS is the step's own and a slow peer step can be cut off by
``--peer-timeout``), times on that same summary:

* fit: ``BetaGeo``, ``ParetoNBD`` and ``GammaGamma`` (repeat buyers) vs lifetimes'
  ``BetaGeoFitter``, ``ParetoNBDFitter`` and ``GammaGammaFitter`` (``fit`` as users call it, on one
  row per customer; patron compresses identical rows itself);
* predict for all customers: conditional expected purchases over 52 weeks, P(alive) and CLV over
  12 steps of 4.345 weeks at 1% per step (lifetimes' ``customer_lifetime_value(time=12,
  discount_rate=0.01, freq="W")``; patron ``customer_lifetime_value(horizon=12*4.345,
  step=4.345, discount_rate_per_step=0.01)``, the same definition).

Prints medians, ratios (lifetimes / patron), peak RSS, and the agreement: relative difference of
the maximised log-likelihoods and of the predictions. Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from _measure import peak_rss_mb

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
PEER_PYTHON = ROOT / ".venv-lifetimes" / "bin" / "python"

START = "2024-01-01"
OBSERVATION_DAYS = 546
SEED = 7
HORIZON_WEEKS = 52.0
"""Horizon of the expected-purchases prediction, in weeks."""
WEEKS_PER_MONTH_LIFETIMES = 4.345
"""lifetimes' CLV step for freq="W" (one "month" of weeks); used so both CLVs mean the same."""
CLV_STEPS = 12
DISCOUNT_PER_STEP = 0.01

STEPS = ("bgnbd", "pareto", "gg", "predict")


def ensure_summary(n_customers: int, seed: int) -> Path:
    """Simulate ``n_customers`` and write their weekly summary (reused when present)."""
    import pyarrow.parquet as pq

    import patron
    from patron.value.simulate import simulate_transactions

    path = OUT / f"summary_models_{n_customers}_{seed}.parquet"
    if path.exists():
        return path
    transactions = simulate_transactions(
        n_customers, seed=seed, start=START, observation_days=OBSERVATION_DAYS
    )
    end = str(np.datetime64(START) + np.timedelta64(OBSERVATION_DAYS, "D"))
    summary = patron.summary(transactions, period="W", end=end, output="arrow")
    pq.write_table(
        summary.select(["customer_id", "frequency", "recency", "T", "monetary_value"]), path
    )
    return path


# ---------------------------------------------------------------- patron worker (child process)


def worker(args) -> dict:
    import pyarrow.parquet as pq

    from patron.value.models import BetaGeo, GammaGamma, ParetoNBD
    from patron.value.models.clv import customer_lifetime_value

    data = pq.read_table(args.parquet)
    f, r, T, m = (
        data[c].to_numpy().astype(float) for c in ("frequency", "recency", "T", "monetary_value")
    )
    seconds, report = [], {"tool": "patron", "step": args.step, "customers": len(f)}
    if args.step == "predict":
        bg = BetaGeo().fit(f, r, T)
        gg = GammaGamma().fit(f, m)
        for _ in range(args.repeat):
            began = time.perf_counter()
            expected = bg.conditional_expected_purchases(HORIZON_WEEKS, f, r, T)
            alive = bg.probability_alive(f, r, T)
            clv = customer_lifetime_value(
                bg,
                gg,
                f,
                r,
                T,
                m,
                horizon=CLV_STEPS * WEEKS_PER_MONTH_LIFETIMES,
                discount_rate_per_step=DISCOUNT_PER_STEP,
                step=WEEKS_PER_MONTH_LIFETIMES,
            )
            seconds.append(time.perf_counter() - began)
        report["bgnbd_params"], report["gg_params"] = bg.params_, gg.params_
        if args.out:
            import pyarrow as pa

            pq.write_table(
                pa.table(
                    {
                        "customer_id": data["customer_id"],
                        "expected": expected,
                        "alive": alive,
                        "clv": clv,
                    }
                ),
                args.out,
            )
    else:
        model = None
        for _ in range(args.repeat):
            began = time.perf_counter()
            if args.step == "gg":
                model = GammaGamma().fit(f, m)
            else:
                model = (BetaGeo if args.step == "bgnbd" else ParetoNBD)().fit(f, r, T)
            seconds.append(time.perf_counter() - began)
        report.update(
            params=model.params_, log_likelihood=model.log_likelihood_, converged=model.converged_
        )
    report.update(
        seconds=seconds, median_seconds=statistics.median(seconds), peak_rss_mb=peak_rss_mb()
    )
    return report


def run_child(command: list[str], timeout: float | None) -> dict:
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"timed_out_after_seconds": timeout}
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def relative(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), np.finfo(float).tiny)


def compare_predictions(ours: Path, theirs: Path) -> dict:
    import pandas as pd

    mine = pd.read_parquet(ours).set_index("customer_id")
    peer = pd.read_parquet(theirs).set_index("customer_id").loc[mine.index]
    out = {}
    for column in ("expected", "alive", "clv"):
        a, b = mine[column].to_numpy(float), peer[column].to_numpy(float)
        out[f"{column}_max_relative_difference"] = float(
            np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300))
        )
        out[f"{column}_nonfinite_patron"] = int((~np.isfinite(a)).sum())
        out[f"{column}_nonfinite_lifetimes"] = int((~np.isfinite(b)).sum())
    return out


def bench_size(n_customers: int, args) -> dict:
    print(f"\n== {n_customers:,} customers (CDNOW parameters), medians of {args.repeat} runs")
    began = time.perf_counter()
    summary = ensure_summary(n_customers, args.seed)
    print(f"  summary ready in {time.perf_counter() - began:.1f} s: {summary}")
    results = {}
    for step in args.steps:
        out_ours = OUT / f"predict_patron_{n_customers}.parquet"
        out_peer = OUT / f"predict_lifetimes_{n_customers}.parquet"
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            step,
            "--parquet",
            str(summary),
            "--repeat",
            str(args.repeat),
        ]
        ours = run_child(command + (["--out", str(out_ours)] if step == "predict" else []), None)
        peer_command = [
            str(PEER_PYTHON),
            str(HERE / "peer_lifetimes_models.py"),
            str(summary),
            "--step",
            step,
            "--repeat",
            str(args.peer_repeat),
        ]
        peer = run_child(
            peer_command + (["--out", str(out_peer)] if step == "predict" else []),
            args.peer_timeout,
        )
        row = {"patron": ours, "lifetimes": peer}
        if "median_seconds" in ours and "median_seconds" in peer:
            row["ratio"] = peer["median_seconds"] / ours["median_seconds"]
        if "log_likelihood" in ours and "log_likelihood" in peer:
            row["log_likelihood_relative_difference"] = relative(
                ours["log_likelihood"], peer["log_likelihood"]
            )
        if step == "predict" and "median_seconds" in ours and "median_seconds" in peer:
            row["agreement"] = compare_predictions(out_ours, out_peer)
        results[step] = row
        describe(step, row)
    return results


def describe(step: str, row: dict) -> None:
    def cell(side: dict) -> str:
        if "median_seconds" not in side:
            return json.dumps(side)[:60]
        return f"{side['median_seconds']:9.3f} s  {side['peak_rss_mb']:6.0f} MiB"

    label = {
        "bgnbd": "BG/NBD fit",
        "pareto": "Pareto/NBD fit",
        "gg": "Gamma-Gamma fit",
        "predict": "predict E[X], P(alive), CLV",
    }[step]
    ratio = f"{row['ratio']:8.1f} x" if "ratio" in row else "      - "
    print(
        f"  {label:<30} patron {cell(row['patron'])} | lifetimes {cell(row['lifetimes'])} | {ratio}"
    )
    if "log_likelihood_relative_difference" in row:
        print(
            f"  {'':<30} log-likelihood patron {row['patron']['log_likelihood']:.6f}, lifetimes "
            f"{row['lifetimes']['log_likelihood']:.6f}, relative difference "
            f"{row['log_likelihood_relative_difference']:.2e}"
        )
    if "agreement" in row:
        print(f"  {'':<30} {json.dumps(row['agreement'])}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS))
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each patron step")
    parser.add_argument(
        "--peer-repeat", type=int, default=3, help="timed runs of each lifetimes step"
    )
    parser.add_argument(
        "--peer-timeout",
        type=float,
        default=1800.0,
        help="seconds after which a lifetimes step is abandoned (reported as such)",
    )
    parser.add_argument("--worker", choices=STEPS, help=argparse.SUPPRESS)
    parser.add_argument("--parquet", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.step = args.worker
        print(json.dumps(worker(args)))
        return
    if not PEER_PYTHON.exists():
        raise SystemExit(f"{PEER_PYTHON} missing: run scripts/peer-venv.sh first")
    OUT.mkdir(exist_ok=True)
    results = {str(n): bench_size(n, args) for n in args.customers}
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = OUT / f"bench_models_{stamp}.json"
    path.write_text(
        json.dumps(
            {
                "command": " ".join(sys.argv),
                "date": dt.date.today().isoformat(),
                "results": results,
            },
            indent=2,
        )
    )
    print(f"\nresults: {path}")


if __name__ == "__main__":
    main()
