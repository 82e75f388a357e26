"""Pareto/NBD estimates on summaries recorded by day: exact times, truncated times, the sampler's grid rule.

    .venv/bin/python benchmarks/pareto_time_step.py              # 5 seeds x 100k customers
    .venv/bin/python benchmarks/pareto_time_step.py --seeds 3 --customers 50000

Not a timing. For each seed a weekly base without covariates (r 0.8, alpha 5, s 0.6, beta 12; T
from 52 to 104 weeks on a daily grid) is drawn with exact purchase times, then its recency is
recorded on a daily grid (``step = 1/7`` week) in two ways: truncating the exact time of the last
purchase, ``floor(t_x / step) * step`` (the sampler's earlier rule), and the rule of
:func:`patron.value.models.sampling_pareto.sample_pareto_nbd` with ``time_step``: acquisition at a
uniform instant of its day, days counted from the acquisition's, ``floor((u + t_x) / step) *
step``. The same plain Pareto/NBD is fitted to all three; prints each fit's estimates and each
rule's mean shift of beta from the exact-time fit, in units of beta's standard error.
"""

from __future__ import annotations

import argparse

import numpy as np

from patron.value.models import ParetoNBD
from patron.value.models.sampling_pareto import sample_pareto_nbd

TRUTH = dict(r=0.8, alpha=5.0, s=0.6, beta=12.0)
STEP = 1 / 7
"""One day in weeks."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--customers", type=int, default=100_000)
    args = ap.parse_args()
    n = args.customers
    fits: dict[str, list[dict[str, float]]] = {"exact": [], "truncated": [], "grid": []}
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        T = 104.0 - np.floor(rng.random(n) * 364) / 7.0
        d = sample_pareto_nbd(n, **TRUTH, T=T, random_state=seed + 10_000)
        x, tx = d["frequency"], d["recency"]
        u = rng.random(n) * STEP
        recency = {"exact": tx, "truncated": np.minimum(np.floor(tx / STEP) * STEP, T),
                   "grid": np.where(x > 0, np.minimum(np.floor((tx + u) / STEP) * STEP, T), 0.0)}
        for rule, rec in recency.items():
            m = ParetoNBD().fit(x, rec, T)
            fits[rule].append({**m.params_, "se_beta": m.std_errors_["beta"]})
            print(f"seed {seed} {rule:9s} " + "  ".join(f"{k} {v:.4f}" for k, v in fits[rule][-1].items()), flush=True)
    exact = np.array([f["beta"] for f in fits["exact"]])
    se = np.mean([f["se_beta"] for f in fits["exact"]])
    print(f"truth beta {TRUTH['beta']}; exact-time fits: mean beta {exact.mean():.3f}, mean se {se:.3f}")
    for rule in ("truncated", "grid"):
        shift = np.array([f["beta"] for f in fits[rule]]) - exact
        print(f"  {rule:9s} beta - exact: mean {shift.mean():+.4f} ({shift.mean() / se:+.2f} se), "
              f"per seed {np.array2string(shift, precision=3)}")


if __name__ == "__main__":
    main()
