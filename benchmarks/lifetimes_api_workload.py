"""One run of a lifetimes-API workload, timed step by step; runs unchanged with ``lifetimes``
(in ``.venv-lifetimes``) or ``patron.compat.lifetimes`` (in ``.venv``): the module is chosen by
``--module`` and nothing else differs. Called by ``bench_lifetimes_compat.py``; prints one JSON
object: ``{"module", "steps": {name: seconds}, "total", "import_seconds", "peak_rss_mb", "check"}``.

Workloads:

* ``quickstart``: the steps of lifetimes' Quickstart on its bundled data (CDNOW summary: BG/NBD
  fit, ranking, P(alive) matrix; the example transactions: summary, calibration/holdout split,
  refit; Gamma-Gamma on CDNOW and 12-month CLV).
* ``scale``: a simulated transaction log (``--parquet``): summary with monetary value (days),
  BG/NBD fit, 30-day predictions and P(alive) for every customer, Gamma-Gamma on the repeat
  customers, 12-month CLV for every customer.
"""

from __future__ import annotations

import argparse
import importlib
import json
import time

from _measure import peak_rss_mb


def _timer(steps: dict):
    def step(name, fn):
        began = time.perf_counter()
        out = fn()
        steps[name] = time.perf_counter() - began
        return out

    return step


def quickstart(lt, step) -> dict:
    datasets, utils = lt.datasets, lt.utils
    data = step("load CDNOW summary", lambda: datasets.load_cdnow_summary(index_col=[0]))
    bgf = step("BG/NBD fit (CDNOW)", lambda: lt.BetaGeoFitter(penalizer_coef=0.0).fit(
        data["frequency"], data["recency"], data["T"]))
    ranked = step("rank by next-week purchases", lambda: bgf.conditional_expected_number_of_purchases_up_to_time(
        1, data["frequency"], data["recency"], data["T"]).sort_values().tail(5))
    step("P(alive) matrix", bgf.conditional_probability_alive_matrix)
    tx = step("load example transactions", datasets.load_transaction_data)
    summary = step("summary from transactions", lambda: utils.summary_data_from_transaction_data(
        tx, "id", "date", observation_period_end="2014-12-31"))
    step("BG/NBD fit (transactions)", lambda: bgf.fit(summary["frequency"], summary["recency"], summary["T"]))
    cal = step("calibration and holdout", lambda: utils.calibration_and_holdout_data(
        tx, "id", "date", calibration_period_end="2014-09-01", observation_period_end="2014-12-31"))
    step("BG/NBD fit (calibration)", lambda: bgf.fit(cal["frequency_cal"], cal["recency_cal"], cal["T_cal"]))
    money = datasets.load_cdnow_summary_data_with_monetary_value()
    returning = money[money["frequency"] > 0]
    ggf = step("Gamma-Gamma fit", lambda: lt.GammaGammaFitter(penalizer_coef=0).fit(
        returning["frequency"], returning["monetary_value"]))
    step("BG/NBD refit (CDNOW)", lambda: bgf.fit(money["frequency"], money["recency"], money["T"]))
    clv = step("12-month CLV", lambda: ggf.customer_lifetime_value(
        bgf, money["frequency"], money["recency"], money["T"], money["monetary_value"], time=12, discount_rate=0.01))
    return {"top5": [str(i) for i in ranked.index], "gg": [round(float(v), 4) for v in ggf.params_],
            "clv_head": [round(float(v), 4) for v in clv.head(5)]}


def scale(lt, step, parquet: str, end: str) -> dict:
    import pandas as pd
    import pyarrow.parquet as pq

    frame = pq.read_table(parquet, columns=["customer_id", "occurred_at", "amount"]).to_pandas()
    summary = step("summary_data_from_transaction_data", lambda: lt.utils.summary_data_from_transaction_data(
        frame, "customer_id", "occurred_at", monetary_value_col="amount", observation_period_end=pd.Timestamp(end),
        freq="D"))
    f, r, T, m = (summary[c] for c in ("frequency", "recency", "T", "monetary_value"))
    bgf = step("BetaGeoFitter.fit", lambda: lt.BetaGeoFitter().fit(f, r, T))
    step("predict 30 days (all)", lambda: bgf.predict(30, f, r, T))
    step("P(alive) (all)", lambda: bgf.conditional_probability_alive(f, r, T))
    repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    ggf = step("GammaGammaFitter.fit", lambda: lt.GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"]))
    clv = step("customer_lifetime_value 12 months (all)", lambda: ggf.customer_lifetime_value(
        bgf, f, r, T, m, time=12, discount_rate=0.01, freq="D"))
    return {"customers": len(summary), "bg": [float(v) for v in bgf.params_], "gg": [float(v) for v in ggf.params_],
            "clv_sum": float(clv.sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--module", required=True, choices=["lifetimes", "patron.compat.lifetimes"])
    parser.add_argument("--workload", choices=["quickstart", "scale"], default="quickstart")
    parser.add_argument("--parquet")
    parser.add_argument("--end")
    args = parser.parse_args()
    began = time.perf_counter()
    lt = importlib.import_module(args.module)
    for sub in ("datasets", "utils"):
        importlib.import_module(f"{args.module}.{sub}")
    import_seconds = time.perf_counter() - began
    steps: dict = {}
    step = _timer(steps)
    check = quickstart(lt, step) if args.workload == "quickstart" else scale(lt, step, args.parquet, args.end)
    print(json.dumps({"module": args.module, "workload": args.workload, "steps": steps, "total": sum(steps.values()),
                      "import_seconds": import_seconds, "peak_rss_mb": peak_rss_mb(), "check": check}))


if __name__ == "__main__":
    main()
