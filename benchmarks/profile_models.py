"""Profile patron's BG/NBD + Gamma-Gamma fits, predictions and CLV at 1M and 10M customers.

    .venv/bin/python benchmarks/profile_models.py                # 1M and 10M, 5 runs each
    .venv/bin/python benchmarks/profile_models.py --repeat 3 --skip-10m

Data (cached as Parquet under ``--cache-dir``, default ``/tmp/patron_profile``):

* 1M: ``patron.value.simulate.simulate_transactions(1_000_000, seed=1)`` summarised with
  ``patron.summary(table, period="W")`` — a realistic whole-day base (recency and T are whole days
  divided by 7, so they take few distinct values).
* 10M: 10,000,000 rows drawn with replacement from the 1M summary (seed 10), not a fresh
  simulation: the distinct (x, t_x, T) rows are those of the 1M base, as in a real base of 10M
  customers observed over the same window (the day grid bounds recency and T), though a real 10M
  base would show somewhat more distinct rows.

Timed steps at each size (medians of ``--repeat`` runs, wall clock and this process's CPU time;
on a shared machine the CPU time is the better guide to an idle machine's wall time, as NumPy runs
these steps on one thread):

* ``fit_bgnbd``: ``BetaGeo().fit(frequency, recency, T)`` (validation and compression included);
* ``fit_gg``: ``GammaGamma().fit(frequency, monetary_value)``;
* ``predict``: conditional expected purchases over 52 weeks + P(alive) + CLV over 12 steps of
  4.345 weeks at 1% per step (the same definition as ``benchmarks/bench_models.py``);
* ``score``: what ``patron score`` computes per customer once the models are fitted — expected
  purchases (52 weeks), P(alive), expected spend, and CLV over 52 weekly steps (0.2% a week) with
  its delta-method interval and the customer-equity interval (``clv_intervals``).

Prints one line per step and writes a JSON record to ``--out`` (default
``benchmarks/out/profile_models.json``). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

HORIZON_WEEKS = 52.0
"""Horizon of the expected-purchases prediction and of the scored CLV, in weeks."""
WEEKS_PER_MONTH_LIFETIMES = 4.345
"""lifetimes' CLV step for freq="W"; the predict step uses 12 of them (as bench_models.py)."""
CLV_STEPS = 12
DISCOUNT_PER_STEP = 0.01
WEEKLY_DISCOUNT = 0.002
"""Per-week discount rate of the scored CLV (about 11% a year)."""
SEED_1M = 1
SEED_10M = 10
TEN_MILLION = 10_000_000
COLUMNS = ("frequency", "recency", "T", "monetary_value")


def summary_1m(cache: Path) -> pd.DataFrame:
    """The 1M whole-day summary, simulated once and cached."""
    path = cache / f"summary_1m_seed{SEED_1M}.parquet"
    if not path.exists():
        import patron
        from patron.value.simulate import simulate_transactions

        table = simulate_transactions(1_000_000, seed=SEED_1M)
        patron.summary(table, period="W")[["customer_id", *COLUMNS]].to_parquet(path)
    return pd.read_parquet(path)


def summary_10m(cache: Path, base: pd.DataFrame) -> pd.DataFrame:
    """10M rows resampled with replacement from the 1M summary, cached."""
    path = cache / f"summary_10m_resampled_seed{SEED_10M}.parquet"
    if not path.exists():
        rows = np.random.default_rng(SEED_10M).integers(0, len(base), TEN_MILLION)
        base[list(COLUMNS)].iloc[rows].reset_index(drop=True).to_parquet(path)
    return pd.read_parquet(path)


def arrays(df: pd.DataFrame) -> list[np.ndarray]:
    return [df[c].to_numpy(dtype=np.float64) for c in COLUMNS]


def timed(fn, repeat: int) -> tuple[float, list[float], list[float], object]:
    """Median wall time, wall times, CPU times (this process) and the last result."""
    seconds, cpu, result = [], [], None
    for _ in range(repeat):
        began, began_cpu = time.perf_counter(), time.process_time()
        result = fn()
        seconds.append(time.perf_counter() - began)
        cpu.append(time.process_time() - began_cpu)
    return statistics.median(seconds), seconds, cpu, result


def profile(x, tx, T, m, repeat: int, label: str) -> dict:
    from patron.value.models import BetaGeo, GammaGamma
    from patron.value.models.clv import clv_intervals, customer_lifetime_value

    out: dict = {"customers": int(x.size)}

    def report(step: str, med: float, runs: list[float], cpu: list[float], extra: str = "") -> None:
        out[step] = {"median_seconds": med, "seconds": runs,
                     "median_cpu_seconds": statistics.median(cpu), "cpu_seconds": cpu}
        print(f"{label:>4} {step:10s} median {med:7.3f} s wall, {statistics.median(cpu):7.3f} s "
              f"CPU; wall runs {[round(s, 3) for s in runs]} {extra}", flush=True)

    med, runs, cpu, bg = timed(lambda: BetaGeo().fit(x, tx, T), repeat)
    out["bgnbd"] = {"params": bg.params_, "log_likelihood": bg.log_likelihood_,
                    "n_rows": bg.n_rows_, "message": bg.convergence_message_}
    report("fit_bgnbd", med, runs, cpu, f"LL {bg.log_likelihood_:.6f}, {bg.n_rows_} distinct rows")
    med, runs, cpu, gg = timed(lambda: GammaGamma().fit(x, m), repeat)
    out["gg"] = {"params": gg.params_, "log_likelihood": gg.log_likelihood_, "n_rows": gg.n_rows_}
    report("fit_gg", med, runs, cpu, f"LL {gg.log_likelihood_:.6f}")

    def predict():
        expected = bg.conditional_expected_purchases(HORIZON_WEEKS, x, tx, T)
        alive = bg.probability_alive(x, tx, T)
        clv = customer_lifetime_value(bg, gg, x, tx, T, m,
                                      horizon=CLV_STEPS * WEEKS_PER_MONTH_LIFETIMES,
                                      step=WEEKS_PER_MONTH_LIFETIMES,
                                      discount_rate_per_step=DISCOUNT_PER_STEP)
        return expected, alive, clv

    report("predict", *timed(predict, repeat)[:3])

    def score():
        expected = bg.conditional_expected_purchases(HORIZON_WEEKS, x, tx, T)
        alive = bg.probability_alive(x, tx, T)
        spend = gg.conditional_expected_average_spend(x, m)
        res = clv_intervals(bg, gg, x, tx, T, m, horizon=HORIZON_WEEKS,
                            discount_rate_per_step=WEEKLY_DISCOUNT)
        return expected, alive, spend, res

    med, runs, cpu, (_, _, _, res) = timed(score, repeat)
    out["equity"] = [res.equity, res.equity_lower, res.equity_upper]
    report("score", med, runs, cpu, f"equity {res.equity:,.0f} [{res.equity_lower:,.0f}, "
                                f"{res.equity_upper:,.0f}]")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/patron_profile"))
    parser.add_argument("--skip-10m", action="store_true")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parent / "out" / "profile_models.json")
    args = parser.parse_args()
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    base = summary_1m(args.cache_dir)
    record = {"machine": platform.platform(), "repeat": args.repeat,
              "1m": profile(*arrays(base), args.repeat, "1M")}
    if not args.skip_10m:
        big = summary_10m(args.cache_dir, base)
        record["10m"] = profile(*arrays(big), args.repeat, "10M")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
