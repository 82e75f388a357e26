"""The CDNOW calibration summary rebuilt from raw transactions matches the published one.

Reference: ``cdnow_customers_summary_with_transactions.csv`` (the summary used by Fader, Hardie &
Lee 2005 and Fader & Hardie 2013, as shipped with lifetimes 0.11.3); its values are rounded to 2
decimals, hence the 0.01 tolerance (plus float slack).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import patron
from patron.data.datasets import (
    CDNOW_CALIBRATION_END,
    CDNOW_HOLDOUT_END,
    data_path,
    load_cdnow,
    load_cdnow_summary_with_transactions,
)
from patron.errors import InputError

ROUNDING_TOLERANCE = 0.0101
"""The reference file rounds t_x, T and zbar to 2 decimals."""

SAMPLE_COLUMNS = ["master_customer_id", "customer_id", "date", "number_of_cds", "amount"]


def _by_id(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out.index = out["customer_id"].astype(int)
    return out.sort_index()


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return _by_id(load_cdnow_summary_with_transactions())


def _assert_matches(got: pd.DataFrame, ref: pd.DataFrame) -> None:
    assert len(got) == len(ref) == 2357
    assert (got.index == ref.index).all()
    assert (got["frequency"].to_numpy() == ref["frequency"].to_numpy()).all()
    for col in ("recency", "T", "monetary_value"):
        diff = np.abs(got[col].to_numpy() - ref[col].to_numpy())
        assert diff.max() <= ROUNDING_TOLERANCE, (col, diff.max())


def test_summary_from_raw_sample_file_matches_published(db, reference):
    result = patron.ingest(data_path("CDNOW_sample.txt"), db=db, columns=SAMPLE_COLUMNS, mapping={"occurred_at": "date"})
    assert (result.accepted, result.rejected) == (6919, 0)
    got = _by_id(patron.summary(db, period="W", end=CDNOW_CALIBRATION_END))
    _assert_matches(got, reference)
    assert (got[got["frequency"] > 0].shape[0]) == 946  # repeat buyers, Fader & Hardie 2013


def test_summary_from_dataframe_matches_published(reference):
    got = _by_id(patron.summary(load_cdnow(), period="W", end=CDNOW_CALIBRATION_END))
    _assert_matches(got, reference)


def test_holdout_counts_match_the_dataset_readme(db):
    """The shared data README (checked independently with pandas): 1,882 repeat transactions in
    the 39-week holdout once same-day rows are merged."""
    patron.ingest(load_cdnow(), db=db)
    got = patron.summary(db, period="W", end=CDNOW_CALIBRATION_END, holdout_end=CDNOW_HOLDOUT_END)
    assert int(got["frequency_holdout"].sum()) == 1882
    assert np.allclose(got["duration_holdout"], 39.0)


def test_published_summary_file_is_the_bundled_one():
    shared = pd.read_csv(data_path("cdnow_customers_summary.csv"))
    assert list(shared.columns) == ["ID", "frequency", "recency", "T"]
    assert len(shared) == 2357


def test_compressed_sufficient_statistics_equal_the_grouped_summary(db):
    patron.ingest(load_cdnow(), db=db)
    full = patron.summary(db, period="W", end=CDNOW_CALIBRATION_END)
    cols = ["frequency", "recency", "T"]
    packed = patron.summary(db, period="W", end=CDNOW_CALIBRATION_END, compressed=tuple(cols))
    grouped = full.groupby(cols).size().rename("weight").reset_index()
    merged = grouped.merge(packed, on=cols, how="outer", suffixes=("_pandas", "_sql"), indicator=True)
    assert (merged["_merge"] == "both").all()
    assert (merged["weight_pandas"] == merged["weight_sql"]).all()
    assert int(packed["weight"].sum()) == 2357
    with pytest.raises(InputError, match="unknown summary column 'zbar'"):
        patron.summary(db, period="W", end=CDNOW_CALIBRATION_END, compressed=("frequency", "zbar"))


def test_bucketed_summary_equals_the_single_query(db):
    """Large bases are summarised in hash buckets of customers; the result must not change."""
    patron.ingest(load_cdnow(), db=db)
    one = _by_id(patron.summary(db, period="W", end=CDNOW_CALIBRATION_END, holdout_end=CDNOW_HOLDOUT_END, buckets=1))
    many = _by_id(patron.summary(db, period="W", end=CDNOW_CALIBRATION_END, holdout_end=CDNOW_HOLDOUT_END, buckets=7))
    assert list(one.columns) == list(many.columns) and len(one) == len(many) == 2357
    for col in one.columns:
        if one[col].dtype.kind == "f":
            np.testing.assert_allclose(many[col], one[col], rtol=1e-12, err_msg=col)
        else:
            assert (many[col].to_numpy() == one[col].to_numpy()).all(), col
