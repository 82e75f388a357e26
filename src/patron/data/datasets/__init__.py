"""Bundled data: the CDNOW sample used throughout the buy-till-you-die literature.

Provenance (see ``data/README.md``): byte-for-byte copies of the files shipped in ``lifetimes``
0.11.3's ``datasets`` folder (MIT-licensed package; the data themselves were made public by Peter
Fader and Bruce Hardie with their papers; no formal open-data licence: treat as research and
benchmark data and cite Fader & Hardie when publishing results).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pandas as pd

CDNOW_CALIBRATION_END = "1997-09-30"
"""Last day of the 39-week calibration period of the published CDNOW analyses."""

CDNOW_HOLDOUT_END = "1998-06-30"
"""Last day of the 39-week holdout period (end of the CDNOW data)."""


def data_path(name: str) -> Path:
    """Path of a bundled data file, e.g. ``data_path("CDNOW_sample.txt")``."""
    return Path(str(files("patron.data.datasets") / "data" / name))


def load_cdnow(*, full: bool = False) -> pd.DataFrame:
    """CDNOW transactions: ``customer_id`` (str), ``occurred_at`` (datetime, day resolution),
    ``amount`` (USD), ``number_of_cds``.

    ``full=False`` (default): the 1/10 sample, 2,357 customers and 6,919 transactions, with the
    sample's customer ids ``1`` to ``2357`` (the ``ID`` of the reference summaries).
    ``full=True``: the whole cohort, 23,570 customers and 69,659 transactions.
    """
    if full:
        raw = pd.read_csv(data_path("CDNOW_master.txt"), sep=r"\s+", dtype={"customer_id": str, "date": str})
        ids = raw["customer_id"].astype(int).astype(str)
        cds, amount = raw["number_of_cds"], raw["dollar_value"]
    else:
        names = ["master_customer_id", "sample_customer_id", "date", "number_of_cds", "dollar_value"]
        raw = pd.read_csv(data_path("CDNOW_sample.txt"), sep=r"\s+", header=None, names=names, dtype={"date": str})
        ids = raw["sample_customer_id"].astype(int).astype(str)
        cds, amount = raw["number_of_cds"], raw["dollar_value"]
    return pd.DataFrame(
        {
            "customer_id": ids,
            "occurred_at": pd.to_datetime(raw["date"], format="%Y%m%d"),
            "amount": amount.astype(float),
            "number_of_cds": cds.astype(int),
        }
    )


def load_cdnow_summary() -> pd.DataFrame:
    """The published CDNOW calibration summary (39 weeks to 1997-09-30, in weeks):
    ``customer_id, frequency, recency, T`` for 2,357 customers (rounded to 2 decimals)."""
    df = pd.read_csv(data_path("cdnow_customers_summary.csv"))
    return df.rename(columns={"ID": "customer_id"})


def load_cdnow_summary_with_transactions() -> pd.DataFrame:
    """The same summary with ``monetary_value`` (zbar: mean value in USD of the repeat purchases
    in the calibration period; 0 when there are none): ``customer_id, frequency, recency, T,
    monetary_value``."""
    df = pd.read_csv(data_path("cdnow_customers_summary_with_transactions.csv"))
    df.columns = [c.strip() for c in df.columns]
    return df.rename(columns={"ID": "customer_id", "x": "frequency", "t_x": "recency", "zbar": "monetary_value"})
