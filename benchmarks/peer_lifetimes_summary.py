"""Time lifetimes' summary_data_from_transaction_data on a Parquet transaction log.

Runs inside the peer environment (``scripts/peer-venv.sh`` creates ``.venv-lifetimes``), called by
``bench_summary.py``; it imports nothing from patron. Prints one JSON object on stdout:
``{"seconds": [...], "median_seconds": s, "peak_rss_mb": m, "rss_after_load_mb": m, ...}``.
``seconds`` times only the summary call (freq="D", as patron's default day grain); reading the
Parquet file is outside the timing. With ``--out`` the last summary is written to Parquet (times
in days, as lifetimes returns them) for the equality check.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import pandas as pd
import pyarrow.parquet as pq
from lifetimes.utils import summary_data_from_transaction_data

from _measure import cpu_seconds, peak_rss_mb

"""ru_maxrss is in KiB on Linux."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("parquet", help="transactions: customer_id, occurred_at, amount")
    parser.add_argument("--end", required=True, help="observation_period_end, e.g. 2025-06-30")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", help="write the summary (customer_id + day-based columns) here")
    args = parser.parse_args()

    frame = pq.read_table(
        args.parquet, columns=["customer_id", "occurred_at", "amount"]
    ).to_pandas()
    rss_after_load = peak_rss_mb()
    seconds, cpu = [], []
    result = None
    for _ in range(args.repeat):
        result = None
        began, began_cpu = time.perf_counter(), cpu_seconds()
        result = summary_data_from_transaction_data(
            frame,
            "customer_id",
            "occurred_at",
            monetary_value_col="amount",
            observation_period_end=pd.Timestamp(args.end),
            freq="D",
        )
        seconds.append(time.perf_counter() - began)
        cpu.append(cpu_seconds() - began_cpu)
    if args.out:
        result.reset_index().to_parquet(args.out, index=False)
    json.dump(
        {
            "tool": "lifetimes",
            "call": "summary_data_from_transaction_data(freq='D')",
            "rows": len(frame),
            "customers": len(result),
            "seconds": seconds,
            "median_seconds": statistics.median(seconds),
            "median_cpu_seconds": statistics.median(cpu),
            "rss_after_load_mb": rss_after_load,
            "peak_rss_mb": peak_rss_mb(),
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
