"""An independent pandas implementation of lifetimes' summary definitions, for tests only.

It follows the documented behaviour of ``lifetimes.utils.summary_data_from_transaction_data``
(freq="D", times then divided by the unit's days) and ``calibration_and_holdout_data``, written
row-wise with pandas group-bys, sharing no code with patron's SQL.
"""

from __future__ import annotations

import pandas as pd

UNIT_DAYS = {"D": 1.0, "W": 7.0}


def reference_summary(tx: pd.DataFrame, end: str, unit: str = "W", holdout_end: str | None = None) -> pd.DataFrame:
    """Per-customer frequency, recency, T, monetary_value (+ holdout columns), purchases only."""
    tx = tx.copy()
    tx["day"] = pd.to_datetime(tx["occurred_at"]).dt.normalize()
    purchases = tx[tx["amount"] >= 0]
    end_ts = pd.Timestamp(end)
    cal = purchases[purchases["day"] <= end_ts].groupby(["customer_id", "day"], as_index=False)["amount"].sum()
    rows = []
    for cid, g in cal.groupby("customer_id"):
        g = g.sort_values("day")
        first, last = g["day"].iloc[0], g["day"].iloc[-1]
        x = len(g) - 1
        row = {
            "customer_id": cid,
            "frequency": x,
            "recency": (last - first).days / UNIT_DAYS[unit],
            "T": (end_ts - first).days / UNIT_DAYS[unit],
            "monetary_value": g["amount"].iloc[1:].mean() if x > 0 else 0.0,
        }
        if holdout_end is not None:
            h_end = pd.Timestamp(holdout_end)
            h = purchases[(purchases["customer_id"] == cid) & (purchases["day"] > end_ts) & (purchases["day"] <= h_end)]
            hv = h.groupby("day")["amount"].sum()
            row["frequency_holdout"] = len(hv)
            row["monetary_value_holdout"] = hv.mean() if len(hv) else 0.0
            row["duration_holdout"] = (h_end - end_ts).days / UNIT_DAYS[unit]
        rows.append(row)
    if not rows:
        return pd.DataFrame()
    return pd.DataFrame(rows).sort_values("customer_id").reset_index(drop=True)


def drawn_transactions(rows: list[tuple[str, int, int, float]], start: str) -> pd.DataFrame:
    """Transactions from hypothesis-drawn ``(customer_id, day offset, second of day, amount)``
    tuples, the days counted from ``start``, in the order drawn."""
    origin = pd.Timestamp(start)
    return pd.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "occurred_at": [origin + pd.Timedelta(days=r[1], seconds=r[2]) for r in rows],
            "amount": [r[3] for r in rows],
        }
    )

