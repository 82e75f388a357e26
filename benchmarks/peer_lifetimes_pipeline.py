"""lifetimes' whole pipeline on a Parquet transaction log, as one process: read, summary, BG/NBD
fit, Gamma-Gamma fit, predictions and CLV for every customer, written to Parquet.

Runs inside ``.venv-lifetimes`` (``scripts/peer-venv.sh``), called by ``bench_pipeline.py``; imports
nothing from patron. The steps, as a lifetimes user writes them:

* read: ``pyarrow.parquet.read_table(columns=[customer_id, occurred_at, amount]).to_pandas()``;
* summary: ``summary_data_from_transaction_data(freq="D")``, recency and T then divided by 7 so
  that the models work in weeks like ``patron score`` (same definitions as patron's W summary
  with day grain);
* ``BetaGeoFitter().fit(frequency, recency, T)``;
* ``GammaGammaFitter().fit`` on repeat buyers (frequency > 0 and monetary_value > 0);
* predictions: ``conditional_expected_number_of_purchases_up_to_time(HORIZON_WEEKS)``,
  ``conditional_probability_alive``, ``conditional_expected_average_profit`` and
  ``customer_lifetime_value(time=CLV_MONTHS, discount_rate=MONTHLY_DISCOUNT, freq="W")``;
* write: those columns with ``customer_id`` to ``--out`` (Parquet).

Prints one JSON object: seconds per step, peak RSS (MiB) and the fitted parameters.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import pandas as pd
import pyarrow.parquet as pq
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.utils import summary_data_from_transaction_data

from _measure import peak_rss_mb

DAYS_PER_WEEK = 7.0
HORIZON_WEEKS = 52.0
"""Horizon of expected purchases, in weeks (patron score's default horizon)."""
CLV_MONTHS = 12
MONTHLY_DISCOUNT = 0.01
"""lifetimes' CLV: 12 steps of 4.345 weeks, discounted 1% per step (its defaults, freq="W")."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parquet", help="transactions: customer_id, occurred_at, amount")
    parser.add_argument("--end", required=True, help="observation_period_end, e.g. 2025-06-30")
    parser.add_argument("--out", required=True, help="Parquet file for the per-customer predictions")
    args = parser.parse_args()

    steps: dict[str, float] = {}
    began = time.perf_counter()
    frame = pq.read_table(args.parquet, columns=["customer_id", "occurred_at", "amount"]).to_pandas()
    steps["read"] = time.perf_counter() - began

    began = time.perf_counter()
    data = summary_data_from_transaction_data(frame, "customer_id", "occurred_at", monetary_value_col="amount",
                                              observation_period_end=pd.Timestamp(args.end), freq="D")
    del frame
    data["recency"] /= DAYS_PER_WEEK
    data["T"] /= DAYS_PER_WEEK
    steps["summary"] = time.perf_counter() - began

    f, r, T, m = data["frequency"], data["recency"], data["T"], data["monetary_value"]
    began = time.perf_counter()
    bgf = BetaGeoFitter().fit(f, r, T)
    steps["bgnbd_fit"] = time.perf_counter() - began

    began = time.perf_counter()
    repeat = data[(data["frequency"] > 0) & (data["monetary_value"] > 0)]
    ggf = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
    del repeat
    steps["gamma_gamma_fit"] = time.perf_counter() - began

    began = time.perf_counter()
    out = pd.DataFrame(index=data.index)
    out["expected_purchases"] = bgf.conditional_expected_number_of_purchases_up_to_time(HORIZON_WEEKS, f, r, T)
    out["probability_alive"] = bgf.conditional_probability_alive(f, r, T)
    out["expected_spend"] = ggf.conditional_expected_average_profit(f, m)
    out["clv"] = ggf.customer_lifetime_value(bgf, f, r, T, m, time=CLV_MONTHS, discount_rate=MONTHLY_DISCOUNT, freq="W")
    steps["predictions_clv"] = time.perf_counter() - began

    began = time.perf_counter()
    out.reset_index().to_parquet(args.out, index=False)
    steps["write"] = time.perf_counter() - began

    json.dump({"tool": "lifetimes", "customers": len(data), "steps": steps, "peak_rss_mb": peak_rss_mb(),
               "bgnbd_params": bgf.params_.to_dict(), "gg_params": ggf.params_.to_dict()}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
