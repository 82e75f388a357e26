"""lifetimes' one-shot BG/NBD fit, as a whole process: read the Parquet transactions, summarise
them, fit ``BetaGeoFitter``; the peer of ``patron fit bgnbd --db DB --period W --end END``.

Runs inside ``.venv-lifetimes`` (``scripts/peer-venv.sh``), called by ``bench_summary_cli.py``;
it imports nothing from patron. ``summary_data_from_transaction_data(freq="D")`` as patron's day
grain, then recency and T divided by 7 (weeks, as ``--period W``), then
``BetaGeoFitter().fit(frequency, recency, T)``. Prints one JSON object: the fitted parameters
(rates per week), the number of customers, the seconds of each step (reading, summary, fit) and
the peak RSS.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import pandas as pd
import pyarrow.parquet as pq
from lifetimes import BetaGeoFitter
from lifetimes.utils import summary_data_from_transaction_data

from _measure import peak_rss_mb

DAYS_PER_WEEK = 7.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parquet", help="transactions: customer_id, occurred_at, amount")
    parser.add_argument("--end", required=True, help="observation_period_end, e.g. 2025-06-30")
    args = parser.parse_args()

    began = time.perf_counter()
    frame = pq.read_table(args.parquet, columns=["customer_id", "occurred_at", "amount"]).to_pandas()
    read = time.perf_counter()
    summary = summary_data_from_transaction_data(frame, "customer_id", "occurred_at", monetary_value_col="amount",
                                                 observation_period_end=pd.Timestamp(args.end), freq="D")
    summarised = time.perf_counter()
    fitter = BetaGeoFitter().fit(summary["frequency"], summary["recency"] / DAYS_PER_WEEK, summary["T"] / DAYS_PER_WEEK)
    fitted = time.perf_counter()
    json.dump({
        "tool": "lifetimes",
        "call": "read Parquet; summary_data_from_transaction_data(freq='D'); BetaGeoFitter().fit (weeks)",
        "customers": len(summary),
        "params": {k: float(v) for k, v in fitter.params_.items()},
        "seconds": {"read": read - began, "summary": summarised - read, "fit": fitted - summarised},
        "peak_rss_mb": peak_rss_mb(),
    }, sys.stdout)
    print()


if __name__ == "__main__":
    main()
