"""Benchmark: fitting the covariate models at 1M customers with 3 covariates.

    .venv/bin/python benchmarks/bench_covariates.py                 # 1M customers, 5 repeats
    .venv/bin/python benchmarks/bench_covariates.py --customers 200000 --repeats 3
    .venv/bin/python benchmarks/bench_covariates.py --repeats 3 --base-file /tmp/base.npz   # then the peer:
    PYTHONPATH=/tmp/peer/src .venv/bin/python benchmarks/bench_covariates.py --repeats 3 --base-file /tmp/base.npz

Simulates a base with :mod:`patron.value.models.sampling_covariates` (weekly time unit, cohorts over 52
weeks observed to week 104, purchase days on a daily grid: ``time_step = 1/7``) and three
covariates: a channel with three levels (two one-hot columns) and a binary flag, acting on both
processes with planted effects. For each model the fit runs ``--repeats`` times, each in this
process after a warm-up fit on 20k customers; it prints the median and the spread of the wall
time, the distinct rows fitted after compression and the estimates beside the truth. The peer is
the same model without covariates on the same summary (BetaGeo, ParetoNBD): the ratio says what
the covariates cost. ``--base-file`` saves the simulated bases on the first run and reads them on
the next, so another version of patron (e.g. ``git archive COMMIT src | tar -x -C /tmp/peer`` and
``PYTHONPATH=/tmp/peer/src``) fits the same customers side by side. Timings are printed, never
asserted; the machine is shared, so quote medians and ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

import patron
from patron.value.models import BetaGeo, ParetoNBD
from patron.value.models.beta_geo_covariates import BetaGeoCovariates
from patron.value.models.pareto_nbd_covariates import ParetoNBDCovariates
from patron.value.models.sampling_covariates import (
    sample_beta_geo_covariates,
    sample_pareto_nbd_covariates,
)

GAMMA_PURCHASE = {"app": 0.5, "store": -0.3, "vip": 0.7}
GAMMA_DROPOUT = {"app": -0.4, "store": 0.3, "vip": -0.5}


def base(kind: str, n: int, seed: int):
    rng = np.random.default_rng(seed)
    channel = rng.choice(3, n, p=[0.5, 0.3, 0.2])
    cov = {"app": (channel == 1).astype(float), "store": (channel == 2).astype(float),
           "vip": (rng.random(n) < 0.15).astype(float)}
    T = 104.0 - np.floor(rng.random(n) * 364) / 7.0
    if kind == "bgnbd":
        d = sample_beta_geo_covariates(cov, r=0.8, alpha=5.0, a=0.8, b=2.5, T=T, gamma_purchase=GAMMA_PURCHASE,
                                       gamma_dropout=GAMMA_DROPOUT, random_state=seed)
        d["recency"] = np.floor(d["recency"] * 7.0) / 7.0  # daily purchase grid, as a summary from dated orders
    else:
        d = sample_pareto_nbd_covariates(cov, r=0.8, alpha=5.0, s=0.6, beta=12.0, T=T, gamma_purchase=GAMMA_PURCHASE,
                                         gamma_dropout=GAMMA_DROPOUT, time_step=1 / 7, random_state=seed)
    return cov, d


def bases(kind: str, n: int, path: str | None):
    """(warm-up base of 20k, timed base of ``n``) for ``kind``, read from ``path`` when it exists
    (written there otherwise): each base is (covariates, {frequency, recency, T})."""
    if path is None:
        return base(kind, 20_000, 99), base(kind, n, 1)
    file = Path(path)
    saved = dict(np.load(file)) if file.exists() else {}
    out = []
    for tag, size, seed in (("warm", 20_000, 99), ("timed", n, 1)):
        key = f"{kind}:{tag}:{size}:"
        if not any(k.startswith(key) for k in saved):
            cov, d = base(kind, size, seed)
            saved.update({key + "cov:" + k: v for k, v in cov.items()})
            saved.update({key + k: d[k] for k in ("frequency", "recency", "T")})
            np.savez(file, **saved)
        cov = {k[len(key) + 4:]: v for k, v in saved.items() if k.startswith(key + "cov:")}
        out.append((cov, {k: saved[key + k] for k in ("frequency", "recency", "T")}))
    return out[0], out[1]


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--models", default="bgnbd,pareto")
    ap.add_argument("--base-file", help="NPZ file of the simulated bases: written if missing, else read")
    args = ap.parse_args()
    classes = {"bgnbd": (BetaGeoCovariates, BetaGeo), "pareto": (ParetoNBDCovariates, ParetoNBD)}
    for kind in args.models.split(","):
        cls, plain_cls = classes[kind]
        (wcov, wd), (cov, d) = bases(kind, args.customers, args.base_file)
        cls().fit(wd["frequency"], wd["recency"], wd["T"], wcov)  # warm-up (imports, caches)
        times, plain_times, model = [], [], None
        for _ in range(args.repeats):
            dt_, model = timed(lambda c=cls, d=d, cov=cov: c().fit(d["frequency"], d["recency"], d["T"], cov))
            times.append(dt_)
            plain_times.append(timed(lambda c=plain_cls, d=d: c().fit(d["frequency"], d["recency"], d["T"]))[0])
        med, pmed = statistics.median(times), statistics.median(plain_times)
        print(f"{kind} with 3 covariates (patron at {Path(patron.__file__).parents[1]}), {args.customers:,} customers: median {med:.2f} s "
              f"(min {min(times):.2f}, max {max(times):.2f}; {args.repeats} runs), {model.n_rows_:,} distinct rows; "
              f"without covariates {pmed:.2f} s (ratio {med / pmed:.1f}); converged={model.converged_}")
        for proc, truth in (("purchase", GAMMA_PURCHASE), ("dropout", GAMMA_DROPOUT)):
            print("  " + proc + ": " + ", ".join(
                f"{k} {model.coefficients_[proc][k]:+.3f} (se {model.coefficient_std_errors_[proc][k]:.3f}, truth {v:+.1f})"
                for k, v in truth.items()))


if __name__ == "__main__":
    main()
