"""Time lifetimes' model fits and predictions on a Parquet customer summary.

Runs inside ``.venv-lifetimes`` (``scripts/peer-venv.sh``), called by ``bench_models.py``; imports
nothing from patron. ``--step`` chooses what to time (each in its own process so that a slow step
can be cut off by the caller's timeout):

* ``bgnbd``   BetaGeoFitter().fit(frequency, recency, T)
* ``pareto``  ParetoNBDFitter().fit(frequency, recency, T)
* ``gg``      GammaGammaFitter().fit(frequency, monetary_value) on repeat buyers
* ``predict`` fits BG/NBD and Gamma-Gamma once (untimed), then times, for all customers,
  conditional_expected_number_of_purchases_up_to_time(HORIZON_WEEKS), conditional_probability_alive
  and customer_lifetime_value(time=CLV_MONTHS, discount_rate=MONTHLY_DISCOUNT, freq="W").

Prints one JSON object: seconds per repeat, median, peak RSS, fitted parameters and the total
log-likelihood at them (lifetimes' own likelihood functions on the unscaled data), and with
``--out`` writes the predictions for the comparison.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from lifetimes import BetaGeoFitter, GammaGammaFitter, ParetoNBDFitter

from _measure import peak_rss_mb

HORIZON_WEEKS = 52.0
"""Horizon of the expected-purchases prediction, in weeks (the summary's unit)."""
CLV_MONTHS = 12
MONTHLY_DISCOUNT = 0.01
"""lifetimes' CLV: 12 steps of 4.345 weeks, discounted 1% per step (its defaults, freq="W")."""


def total_log_likelihood(step: str, params: pd.Series, data: pd.DataFrame) -> float:
    """Sum of per-customer log-likelihoods at ``params`` with lifetimes' own functions."""
    f, r, T = (
        data["frequency"].to_numpy(float),
        data["recency"].to_numpy(float),
        data["T"].to_numpy(float),
    )
    if step == "bgnbd":
        logp = np.log(params[["r", "alpha", "a", "b"]].to_numpy())
        return float(
            -BetaGeoFitter._negative_log_likelihood(logp, f, r, T, np.ones_like(f), 0.0) * len(f)
        )
    if step == "pareto":
        values = params[["r", "alpha", "s", "beta"]].to_numpy()
        return float(np.sum(ParetoNBDFitter._conditional_log_likelihood(values, f, r, T)))
    m = data["monetary_value"].to_numpy(float)
    logp = np.log(params[["p", "q", "v"]].to_numpy())
    return float(
        -GammaGammaFitter._negative_log_likelihood(logp, f, m, np.ones_like(f), 0.0) * len(f)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "parquet", help="summary: customer_id, frequency, recency, T, monetary_value"
    )
    parser.add_argument("--step", choices=["bgnbd", "pareto", "gg", "predict"], required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", help="predict: write the predictions here (Parquet)")
    args = parser.parse_args()

    data = pq.read_table(args.parquet).to_pandas()
    repeat_buyers = data[data["frequency"] > 0]
    f, r, T, m = data["frequency"], data["recency"], data["T"], data["monetary_value"]
    seconds, report = [], {"tool": "lifetimes", "step": args.step, "customers": len(data)}
    if args.step == "predict":
        bgf = BetaGeoFitter().fit(f, r, T)
        ggf = GammaGammaFitter().fit(repeat_buyers["frequency"], repeat_buyers["monetary_value"])
        for _ in range(args.repeat):
            began = time.perf_counter()
            expected = bgf.conditional_expected_number_of_purchases_up_to_time(
                HORIZON_WEEKS, f, r, T
            )
            alive = bgf.conditional_probability_alive(f, r, T)
            clv = ggf.customer_lifetime_value(
                bgf, f, r, T, m, time=CLV_MONTHS, discount_rate=MONTHLY_DISCOUNT, freq="W"
            )
            seconds.append(time.perf_counter() - began)
        report["bgnbd_params"] = bgf.params_.to_dict()
        report["gg_params"] = ggf.params_.to_dict()
        if args.out:
            pd.DataFrame(
                {
                    "customer_id": data["customer_id"],
                    "expected": np.asarray(expected),
                    "alive": np.asarray(alive),
                    "clv": np.asarray(clv),
                }
            ).to_parquet(args.out)
    else:
        fitter, frame = {
            "bgnbd": (BetaGeoFitter, data),
            "pareto": (ParetoNBDFitter, data),
            "gg": (GammaGammaFitter, repeat_buyers),
        }[args.step]
        for _ in range(args.repeat):
            began = time.perf_counter()
            if args.step == "gg":
                model = fitter().fit(frame["frequency"], frame["monetary_value"])
            else:
                model = fitter().fit(frame["frequency"], frame["recency"], frame["T"])
            seconds.append(time.perf_counter() - began)
        report["params"] = model.params_.to_dict()
        report["log_likelihood"] = total_log_likelihood(args.step, model.params_, frame)
    report.update(
        seconds=seconds, median_seconds=statistics.median(seconds), peak_rss_mb=peak_rss_mb()
    )
    json.dump(report, sys.stdout)
    print()


if __name__ == "__main__":
    main()
