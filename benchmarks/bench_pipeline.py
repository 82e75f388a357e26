"""Benchmark: the whole pipeline as a user runs it, ``patron ingest`` then ``patron score``, against
lifetimes' whole pipeline on the same Parquet file (issue 22, item 1).

    scripts/peer-venv.sh                                   # once: lifetimes in .venv-lifetimes
    .venv/bin/python benchmarks/bench_pipeline.py --customers 10000000             # ~6 min of lifetimes
    .venv/bin/python benchmarks/bench_pipeline.py --customers 1000000 --skip-peer --repeat 3

1. Simulates ``--customers`` customers with :func:`patron.value.simulate.write_simulated` and the
   CDNOW estimates themselves (BG/NBD r = 0.2426, alpha = 4.4136, a = 0.7929, b = 2.4259;
   Gamma-Gamma p = 6.25, q = 3.74, v = 15.44): about 2.86 transactions per customer, 28.6M for
   10M customers, first purchases over 84 days from 2024-01-01, observed for 546 days. The file
   is written once under ``--cache`` (default ``/work/cache/h22-pipeline``) and reused.
2. Runs, each as a whole process (interpreter start to exit), ``--repeat`` times, alternated:
   ``patron ingest FILE --db DB --json`` into a fresh database, then ``patron score --db DB
   --end END --out scores.parquet --json`` (summary, BG/NBD and Gamma-Gamma fits, predictions,
   CLV with delta-method intervals for every customer, customer equity).
3. Unless ``--skip-peer``: lifetimes' whole pipeline once (``peer_lifetimes_pipeline.py`` in
   ``.venv-lifetimes``: read the Parquet file, summary, BG/NBD fit, Gamma-Gamma fit, predictions
   and CLV, written to Parquet), and the agreement of both outputs: largest relative difference
   of expected purchases over 52 weeks and of P(alive) over all customers.

Figures per run: wall-clock seconds, CPU seconds (user + system of the process and its waited
children, from ``wait4``), peak RSS of the process (``ru_maxrss``: the largest resident set
reached) and the peak of the process tree's summed RSS sampled every 50 ms (psutil). Medians
over the repeats and the ratio lifetimes / patron (ingest + score). Never asserts on timings:
the machine is shared, read the load average printed beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from _measure import run_measured

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PATRON = Path(sys.executable).parent / "patron"
PEER_PYTHON = ROOT / ".venv-lifetimes" / "bin" / "python"
CACHE = Path("/work/cache/h22-pipeline")

START = "2024-01-01"
COHORT_DAYS = 84
OBSERVATION_DAYS = 546
SEED = 22


def end_date() -> str:
    """The last day observed, start + OBSERVATION_DAYS (as ``bench_summary.py``)."""
    return str(np.datetime64(START) + np.timedelta64(OBSERVATION_DAYS, "D"))


def ensure_data(path: Path, n_customers: int) -> dict:
    """Write the simulated Parquet file unless one with the same recipe exists."""
    from patron.value.simulate import (
        BLOCK_CUSTOMERS,
        CDNOW_BGNBD,
        CDNOW_GAMMA_GAMMA,
        write_simulated,
    )

    recipe = {"customers": n_customers, "seed": SEED, "params": {**CDNOW_BGNBD, **CDNOW_GAMMA_GAMMA}, "start": START,
              "cohort_days": COHORT_DAYS, "observation_days": OBSERVATION_DAYS, "block_customers": BLOCK_CUSTOMERS}
    stamp = path.with_suffix(".json")
    if path.exists() and stamp.exists() and json.loads(stamp.read_text())["recipe"] == recipe:
        return json.loads(stamp.read_text())
    began = time.perf_counter()
    written = write_simulated(path, n_customers, seed=SEED, start=START, cohort_days=COHORT_DAYS,
                              observation_days=OBSERVATION_DAYS)
    info = {"recipe": recipe, "transactions": written.n_transactions, "simulate_seconds": time.perf_counter() - began}
    stamp.write_text(json.dumps(info))
    return info


def patron_ingest(parquet: Path, db: Path) -> dict:
    for stale in (db, Path(f"{db}.wal")):
        stale.unlink(missing_ok=True)
    res = run_measured([str(PATRON), "ingest", str(parquet), "--db", str(db), "--json"])
    res["result"] = json.loads(res.pop("stdout").strip().splitlines()[-1])
    return res


def patron_score(db: Path, out: Path) -> dict:
    out.unlink(missing_ok=True)
    res = run_measured([str(PATRON), "score", "--db", str(db), "--end", end_date(), "--out", str(out), "--json"])
    res["result"] = json.loads(res.pop("stdout").strip().splitlines()[-1])
    return res


def peer_pipeline(parquet: Path, out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    res = run_measured([str(PEER_PYTHON), str(HERE / "peer_lifetimes_pipeline.py"), str(parquet), "--end", end_date(),
                        "--out", str(out)], env=env)
    res["result"] = json.loads(res.pop("stdout").strip().splitlines()[-1])
    return res


def agreement(patron_out: Path, peer_out: Path) -> dict:
    """Largest relative differences of patron's and lifetimes' predictions over all customers."""
    import duckdb

    lit = "'" + "', '".join(str(p).replace("'", "''") for p in (patron_out, peer_out)) + "'"
    a, b = lit.split(", ")
    row = duckdb.sql(
        f"""SELECT count(*), max(abs(p.expected_purchases - l.expected_purchases) / greatest(abs(l.expected_purchases), 1e-12)),
        max(abs(p.probability_alive - l.probability_alive) / greatest(abs(l.probability_alive), 1e-12)),
        sum(p.expected_purchases), sum(l.expected_purchases)
        FROM read_parquet({a}) p JOIN read_parquet({b}) l USING (customer_id)"""
    ).fetchall()[0]
    return {"customers_joined": row[0], "expected_purchases_max_rel": row[1], "probability_alive_max_rel": row[2],
            "expected_purchases_total": [row[3], row[4]]}


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def line(name: str, runs: list[dict]) -> str:
    med = {k: statistics.median(r[k] for r in runs) for k in ("wall", "cpu", "peak_mb", "tree_peak_mb")}
    spread = f" (min {min(r['wall'] for r in runs):.1f}, max {max(r['wall'] for r in runs):.1f})" if len(runs) > 1 else ""
    return (f"{name:22s} {med['wall']:7.1f} s wall{spread}  {med['cpu']:7.1f} s cpu  peak RSS {med['peak_mb']:7.0f} MiB"
            f"  (tree sampled {med['tree_peak_mb']:6.0f} MiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=1, help="runs of patron ingest + score (alternated)")
    parser.add_argument("--skip-peer", action="store_true", help="do not run lifetimes (about 6 minutes at 10M)")
    parser.add_argument("--cache", type=Path, default=CACHE, help="where the data, database and outputs go")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)

    parquet = args.cache / f"tx_{args.customers}_{SEED}.parquet"
    began = time.perf_counter()
    data = ensure_data(parquet, args.customers)
    print(f"{data['transactions']:,} transactions of {args.customers:,} customers in {parquet} "
          f"({data['transactions'] / args.customers:.2f} per customer; ready in {time.perf_counter() - began:.1f} s)", flush=True)
    db = args.cache / f"pipeline_{args.customers}.duckdb"
    scores = args.cache / f"scores_{args.customers}.parquet"

    ingests, scored = [], []
    for k in range(args.repeat):
        print(f"run {k + 1}/{args.repeat}, {load()}", flush=True)
        ingests.append(patron_ingest(parquet, db))
        r = ingests[-1]
        print(f"  patron ingest  {r['wall']:6.1f} s, cpu {r['cpu']:6.1f} s, peak {r['peak_mb']:6.0f} MiB "
              f"(tree {r['tree_peak_mb']:6.0f}); accepted {r['result']['accepted']:,}, rejected {r['result']['rejected']:,}", flush=True)
        scored.append(patron_score(db, scores))
        r = scored[-1]
        print(f"  patron score   {r['wall']:6.1f} s, cpu {r['cpu']:6.1f} s, peak {r['peak_mb']:6.0f} MiB "
              f"(tree {r['tree_peak_mb']:6.0f}); {r['result']['customers']:,} customers, equity "
              f"{r['result']['customer_equity']:,.0f}", flush=True)
    pipeline = [{k: i[k] + s[k] for k in ("wall", "cpu")} | {k: max(i[k], s[k]) for k in ("peak_mb", "tree_peak_mb")}
                for i, s in zip(ingests, scored, strict=True)]
    print(f"\n{args.customers:,} customers, {data['transactions']:,} transactions; medians of {args.repeat} run(s); {load()}")
    print(line("patron ingest", ingests))
    print(line("patron score", scored))
    print(line("patron ingest + score", pipeline))
    report = {"customers": args.customers, "transactions": data["transactions"], "ingest": ingests, "score": scored}
    if not args.skip_peer:
        if not PEER_PYTHON.exists():
            raise SystemExit(f"{PEER_PYTHON} is missing: run scripts/peer-venv.sh first, or pass --skip-peer")
        peer_out = args.cache / f"lifetimes_{args.customers}.parquet"
        print(f"lifetimes whole pipeline (once), {load()}", flush=True)
        peer = peer_pipeline(parquet, peer_out)
        print(line("lifetimes pipeline", [peer]))
        steps = peer["result"]["steps"]
        print("  lifetimes steps: " + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items()))
        wall = statistics.median(p["wall"] for p in pipeline)
        cpu = statistics.median(p["cpu"] for p in pipeline)
        print(f"lifetimes / patron: {peer['wall'] / wall:.1f}x wall clock, {peer['cpu'] / cpu:.1f}x CPU; "
              f"peak RSS lifetimes {peer['peak_mb']:.0f} MiB, patron's largest {max(p['peak_mb'] for p in pipeline):.0f} MiB")
        agree = agreement(scores, peer_out)
        print(f"agreement over {agree['customers_joined']:,} customers: expected purchases (52 weeks) max relative "
              f"difference {agree['expected_purchases_max_rel']:.2e}, P(alive) {agree['probability_alive_max_rel']:.2e}; "
              f"totals {agree['expected_purchases_total'][0]:,.1f} vs {agree['expected_purchases_total'][1]:,.1f}")
        report |= {"lifetimes": peer, "agreement": agree}
    (args.cache / f"pipeline_{args.customers}.json").write_text(json.dumps(report, default=str, indent=1))


if __name__ == "__main__":
    main()
