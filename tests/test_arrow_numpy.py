"""Arrow <-> NumPy through the buffers (patron.data.arrow_numpy): the same values as PyArrow's own
conversions, and a summary that imports no pandas (issue 22, item 2: a cold call costs what a warm
one does)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from patron.data.arrow_numpy import from_numpy, to_numpy


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint16, np.float32, np.float64])
def test_numbers_round_trip_as_pyarrow_converts_them(dtype):
    values = (np.arange(-3, 40) * 3).astype(dtype)
    arrow = from_numpy(values)
    assert arrow.equals(pa.array(values))
    chunked = pa.chunked_array([arrow.slice(5, 10), arrow.slice(0, 3), arrow.slice(20)])
    np.testing.assert_array_equal(to_numpy(chunked), chunked.to_numpy())
    np.testing.assert_array_equal(to_numpy(arrow.slice(7, 4)), values[7:11])  # an offset into the buffer
    assert to_numpy(arrow.slice(7, 4)).dtype == values.dtype


def test_booleans_timestamps_empty_and_nulls():
    keep = np.array([True, False, False, True, True, False, True, True, False, True, True])
    assert from_numpy(keep).to_pylist() == keep.tolist()
    micros = np.array([0, 86_400_000_000, 1_700_000_000_123_456], dtype=np.int64)
    stamps = from_numpy(micros, pa.timestamp("us"))
    assert stamps.equals(pa.array(micros.astype("datetime64[us]")))
    np.testing.assert_array_equal(to_numpy(pa.chunked_array([stamps, stamps])), np.concatenate([micros, micros]))
    assert to_numpy(pa.chunked_array([], type=pa.float64())).shape == (0,)
    assert to_numpy(pa.array([], type=pa.int64())).shape == (0,)
    with_nulls = pa.chunked_array([pa.array([1.5, None]), pa.array([2.5])])
    np.testing.assert_array_equal(to_numpy(with_nulls), [1.5, np.nan, 2.5])
    assert to_numpy(pa.array(["a", "b"])).tolist() == ["a", "b"]  # not a number: PyArrow's conversion
    with pytest.raises(ValueError, match="one-dimensional"):
        from_numpy(np.zeros((2, 2)))


SUMMARY_WITHOUT_PANDAS = """
import json, sys
from patron.value.summary import summary
from patron.value.overview import overview
table = summary(sys.argv[1], period="W", end="2025-06-30", holdout_end="2025-09-30", output="arrow", buckets=2)
figures = overview(table)
print(json.dumps({"pandas": "pandas" in sys.modules, "customers": table.num_rows, "orders": figures.orders}))
"""


def test_a_summary_and_its_overview_import_no_pandas(db):
    """A fresh process summarises the database and computes the overview without importing pandas
    (PyArrow's own conversions import it: 0.2 s of CPU that only a first call paid)."""
    import patron

    tx = pa.table({"customer_id": ["a", "a", "b", "c", "c", "c"], "order_id": ["1", "2", "3", "4", "5", "6"],
                   "occurred_at": pa.array(["2025-01-01", "2025-01-08", "2025-01-03", "2025-02-01", "2025-02-01",
                                            "2025-07-01"]).cast(pa.timestamp("us")),
                   "amount": [10.0, 20.0, 5.0, 1.0, 2.0, 3.0]})
    patron.ingest(tx, db=db)
    patron.data.store.release_reader()
    done = subprocess.run([sys.executable, "-c", SUMMARY_WITHOUT_PANDAS, str(db)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"pandas": False, "customers": 3, "orders": 5}  # c's two orders on 2025-02-01 are two orders
