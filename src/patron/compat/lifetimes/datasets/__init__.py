"""lifetimes' ``datasets``: the same example data, read from patron's bundled copies
(:mod:`patron.data.datasets`; provenance in its ``data/README.md``)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from patron.data.datasets import data_path

__all__ = [
    "load_cdnow_summary",
    "load_cdnow_summary_data_with_monetary_value",
    "load_dataset",
    "load_donations",
    "load_transaction_data",
]


def load_dataset(filename: str, **kwargs: Any) -> pd.DataFrame:
    """A bundled file read with :func:`pandas.read_csv` (``kwargs`` passed on), e.g.
    ``load_dataset("CDNOW_sample.txt", header=None, sep=r"\\s+")``."""
    return pd.read_csv(data_path(filename), **kwargs)


def load_donations(**kwargs: Any) -> pd.DataFrame:
    """FHS 2010's donor cohort: ``frequency, recency, periods, weights`` (22 patterns)."""
    return load_dataset("donations.csv", **kwargs)


def load_cdnow_summary(**kwargs: Any) -> pd.DataFrame:
    """The CDNOW calibration summary in weeks: ``ID, frequency, recency, T`` (2,357 customers)."""
    return load_dataset("cdnow_customers_summary.csv", **kwargs)


def load_transaction_data(**kwargs: Any) -> pd.DataFrame:
    """lifetimes' simulated example transactions: ``date, id`` (5,000 customers, 2014)."""
    return load_dataset("example_transactions.csv", **kwargs)


def load_cdnow_summary_data_with_monetary_value(**kwargs: Any) -> pd.DataFrame:
    """The CDNOW calibration summary with the mean repeat spend, indexed by ``customer_id``:
    ``frequency, recency, T, monetary_value``."""
    df = load_dataset("cdnow_customers_summary_with_transactions.csv", **kwargs)
    df.columns = ["customer_id", "frequency", "recency", "T", "monetary_value"]
    return df.set_index("customer_id")
