"""Peer side of holdout_cdnow.py: fit lifetimes' BG/NBD, Pareto/NBD and MBG/NBD on a calibration
summary and print, as JSON, each model's per-customer holdout MAE and RMSE (run in .venv-lifetimes).

Usage: .venv-lifetimes/bin/python benchmarks/peer_lifetimes_holdout.py SUMMARY.parquet
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, ModifiedBetaGeoFitter, ParetoNBDFitter

FITTERS = {"bgnbd": BetaGeoFitter, "pareto": ParetoNBDFitter, "mbgnbd": ModifiedBetaGeoFitter}


def main() -> None:
    s = pd.read_parquet(sys.argv[1])
    x, tx, T = s["frequency"], s["recency"], s["T"]
    actual = s["frequency_holdout"].to_numpy(dtype=float)
    out = {}
    for name, fitter in FITTERS.items():
        model = fitter().fit(x, tx, T)
        predicted = np.asarray(model.conditional_expected_number_of_purchases_up_to_time(s["duration_holdout"], x, tx, T), dtype=float)
        err = predicted - actual
        out[name] = {
            "params": {k: float(v) for k, v in model.params_.items()},
            "mae": float(np.mean(np.abs(err))),
            "rmse": float(np.sqrt(np.mean(err**2))),
            "non_finite": int((~np.isfinite(predicted)).sum()),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
