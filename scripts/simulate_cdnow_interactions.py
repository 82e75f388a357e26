"""Write the bundled simulated interactions of the CDNOW sample's customers
(src/patron/data/datasets/data/cdnow_interactions.parquet; documented in that folder's README.md).

    .venv/bin/python scripts/simulate_cdnow_interactions.py

The recipe (seed 2357; patron.relationship.engagement.planted_activity and simulate_interactions):

* each customer's purchase rate: distinct purchase days from the first purchase to 1998-06-30,
  per week of that span;
* the daily probability of an active day is ``0.01 + 0.14 * u``, ``u`` the customer's rank of that
  rate scaled to (0, 1] (Spearman correlation 1 with the purchase rate);
* a customer interacts from the first purchase to 60 days after the last one (then stops, as a
  customer who left does);
* an active day holds ``1 + Poisson(0.5)`` interactions at uniform times, channel web 45%, app 25%,
  email 15%, device 10%, store 5%, and a kind of that channel.

Engagement is planted to go with purchases, so that the demo shows what a real relation looks like
(engagement_lift: high bands buy more than BG/NBD predicts). CDNOW itself has no interactions.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from patron.data.datasets import data_path
from patron.relationship.engagement import planted_activity, simulate_interactions

SEED = 2357
START = date(1997, 1, 1)
END = date(1998, 6, 30)
STOP_AFTER_DAYS = 60


def main() -> None:
    names = ["master_customer_id", "customer_id", "date", "number_of_cds", "amount"]
    raw = pd.read_csv(data_path("CDNOW_sample.txt"), sep=r"\s+", header=None, names=names, dtype={"customer_id": str, "date": str})
    raw["day"] = pd.to_datetime(raw["date"], format="%Y%m%d")
    per = raw.groupby("customer_id")["day"].agg(first="min", last="max", days="nunique")
    weeks = ((pd.Timestamp(END) - per["first"]).dt.days + 1) / 7.0
    rate = per["days"] / weeks
    activity = planted_activity(rate.to_numpy(), correlated=True, seed=SEED, low=0.01, high=0.15)
    days = (END - START).days + 1
    frame = simulate_interactions(per.index.to_numpy(), activity, start=START, days=days, seed=SEED,
                                  last_day=(per["last"] + pd.Timedelta(days=STOP_AFTER_DAYS)).to_numpy())
    first = per["first"].reindex(frame["customer_id"]).to_numpy()
    frame = frame[frame["occurred_at"].to_numpy() >= first].drop(columns=["object"]).reset_index(drop=True)
    out = Path(data_path("cdnow_interactions.parquet"))
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.cast(pa.schema([("customer_id", pa.string()), ("occurred_at", pa.timestamp("s")),
                                  ("channel", pa.string()), ("kind", pa.string())]))
    pq.write_table(table, out, compression="zstd", use_dictionary=True)
    print(f"{len(frame):,} interactions of {frame['customer_id'].nunique():,} customers -> {out} ({out.stat().st_size / 1e6:.2f} MB)")
    print("Spearman(purchase rate, active days):",
          round(float(pd.Series(rate).rank().corr(frame.groupby("customer_id").size().reindex(rate.index, fill_value=0).rank())), 3))


if __name__ == "__main__":
    main()
