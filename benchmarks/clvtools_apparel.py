"""Pareto/NBD with static covariates on CLVTools' apparel data, against CLVTools' published fits.

    .venv/bin/python benchmarks/clvtools_apparel.py --data DIR

``DIR`` holds ``apparelTrans.csv`` (Id, Date, Price) and ``apparelStaticCov.csv`` (Id, Gender,
Channel), exported from the CLVTools R package (``data(apparelTrans)``; ``write.csv``). The data
are CLVTools' (GPL-3) and are not shipped with patron; nothing is downloaded.

The summary follows CLVTools' ``clvdata(..., time.unit = "week", estimation.split = 104)``:
transactions on the same day are one, x = days with a purchase after the first, t_x and T in
weeks from the first purchase to the last one and to the end of the 104 weeks after the first
date in the data. Published figures: CLVTools vignette "Advanced techniques"
(vignettes/CLVTools_advanced_techniques.pdf, CLVTools 0.12, sections 2 and 4): the unconstrained
model (Gender and Channel on both processes), the model with Gender constrained equal across the
processes, and the one regularised with lambda = 0.1 (purchase) and 0.2 (dropout).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from patron.value.models.pareto_nbd_covariates import ParetoNBDCovariates

PUBLISHED = {
    "unconstrained": ({}, -5821.0627, {"r": 1.8378, "alpha": 92.9123, "s": 0.5920, "beta": 49.6227,
                                       "dropout:Gender": -0.6430, "dropout:Channel": 0.7907,
                                       "purchase:Gender": 0.2859, "purchase:Channel": 0.6241},
                      {"r": 0.3455, "alpha": 16.9670, "s": 0.2609, "beta": 36.2509, "dropout:Gender": 0.2955,
                       "dropout:Channel": 0.3059, "purchase:Gender": 0.1041, "purchase:Channel": 0.1050}),
    "Gender constrained": ({"constrained": ["Gender"]}, -5826.5342,
                           {"r": 1.7939, "alpha": 94.7223, "s": 0.4287, "beta": 59.0743, "dropout:Channel": 1.0228,
                            "purchase:Channel": 0.6384, "purchase:Gender": 0.3283},
                           {"r": 0.3318, "alpha": 17.2216, "s": 0.1418, "beta": 34.5098, "dropout:Channel": 0.3542,
                            "purchase:Channel": 0.1064, "purchase:Gender": 0.1074}),
    "regularised (0.1, 0.2)": ({"regularization": (0.1, 0.2)}, None,
                               {"r": 1.73887, "alpha": 69.85288, "s": 0.53350, "beta": 39.68346,
                                "dropout:Gender": -0.04437, "dropout:Channel": 0.02465,
                                "purchase:Gender": 0.17178, "purchase:Channel": 0.23676}, {}),
}
"""(model options, log-likelihood, estimates, standard errors) as CLVTools prints them."""


def cbs(data: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    tr = pd.read_csv(data / "apparelTrans.csv", dtype={"Id": str})
    tr["Date"] = pd.to_datetime(tr["Date"])
    end = tr["Date"].min() + pd.Timedelta(weeks=104)
    days = tr[tr["Date"] <= end].groupby("Id")["Date"].agg(["min", "max", "nunique"])
    summary = pd.DataFrame({"frequency": days["nunique"] - 1, "recency": (days["max"] - days["min"]).dt.days / 7,
                            "T": (end - days["min"]).dt.days / 7})
    cov = pd.read_csv(data / "apparelStaticCov.csv", dtype={"Id": str}).set_index("Id").loc[days.index]
    return summary, cov[["Gender", "Channel"]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    args = ap.parse_args()
    summary, cov = cbs(args.data)
    print(f"{len(summary)} customers, {int(summary['frequency'].sum())} repeat purchases")
    for label, (options, ll, est, se) in PUBLISHED.items():
        m = ParetoNBDCovariates(**options).fit(summary["frequency"], summary["recency"], summary["T"], cov)
        ours = {**m.params_, **{f"{p}:{c}": v for p in m.coefficients_ for c, v in m.coefficients_[p].items()}}
        ours_se = {**m.std_errors_, **{f"{p}:{c}": v for p in m.coefficient_std_errors_
                                       for c, v in m.coefficient_std_errors_[p].items()}}
        print(f"{label}: log-likelihood patron {m.log_likelihood_:.4f}" + (f", CLVTools {ll:.4f}" if ll else ""))
        for k, v in est.items():
            s = f" | se patron {ours_se[k]:.4f}, CLVTools {se[k]:.4f}" if k in se else ""
            print(f"  {k:18s} patron {ours[k]:10.4f}  CLVTools {v:10.4f}{s}")


if __name__ == "__main__":
    main()
