"""Arrow columns to NumPy arrays and back through their buffers, without PyArrow's pandas shim.

PyArrow's own conversions (``Array.to_numpy``, ``ChunkedArray.to_numpy``, ``pa.array`` of a NumPy
array, ``pa.table`` of a dict of them) import pandas on their first use in a process, about 0.2 s
of CPU that a first ``patron summary`` call paid and later ones did not (issue 22, item 2). For
fixed-width columns without nulls, which is what the summary's engine returns and NumPy computes,
the buffers say everything: these helpers read and wrap them directly, and fall back to PyArrow's
conversion otherwise (nulls, other types).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["from_numpy", "to_numpy"]

_NUMPY_OF = {pa.int8(): np.int8, pa.int16(): np.int16, pa.int32(): np.int32, pa.int64(): np.int64,
             pa.uint8(): np.uint8, pa.uint16(): np.uint16, pa.uint32(): np.uint32, pa.uint64(): np.uint64,
             pa.float32(): np.float32, pa.float64(): np.float64}


def _numpy_type(arrow: pa.DataType) -> np.dtype | None:
    """The NumPy type of an Arrow fixed-width number (timestamps: their int64 count), or None."""
    if pa.types.is_timestamp(arrow) or pa.types.is_date64(arrow) or pa.types.is_duration(arrow):
        return np.dtype(np.int64)
    found = _NUMPY_OF.get(arrow)
    return None if found is None else np.dtype(found)


def to_numpy(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The values of an Arrow column as a NumPy array: a read-only view of its buffer (one chunk)
    or a copy (several); timestamps, dates and durations as their int64 counts. With nulls or a
    type that is not a fixed-width number, PyArrow's own ``to_numpy`` (which may import pandas)."""
    if isinstance(values, pa.ChunkedArray):
        if values.num_chunks == 1:
            values = values.chunk(0)
        elif values.num_chunks == 0:
            dtype = _numpy_type(values.type)
            if dtype is not None:
                return np.empty(0, dtype=dtype)
            return values.to_numpy()
        else:
            dtype = _numpy_type(values.type)
            if dtype is None or values.null_count:
                return values.to_numpy()
            return np.concatenate([to_numpy(chunk) for chunk in values.chunks])
    dtype = _numpy_type(values.type)
    if dtype is None or values.null_count:
        return values.to_numpy(zero_copy_only=False)
    data = values.buffers()[1]
    if data is None:  # an empty array may have no buffer
        return np.empty(0, dtype=dtype)
    return np.frombuffer(data, dtype=dtype, count=len(values), offset=values.offset * dtype.itemsize)


def from_numpy(values: np.ndarray, type: pa.DataType | None = None) -> pa.Array:
    """A one-dimensional NumPy array of numbers or booleans as an Arrow array without nulls,
    sharing the array's memory (booleans are packed into bits); ``type`` to read int64 counts as
    timestamps, for instance (same width as the array's items)."""
    values = np.ascontiguousarray(values)
    if values.ndim != 1:
        raise ValueError("from_numpy takes a one-dimensional array")
    if values.dtype == np.bool_:
        bits = np.packbits(values, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])
    arrow = type or pa.from_numpy_dtype(values.dtype)
    return pa.Array.from_buffers(arrow, len(values), [None, pa.py_buffer(values)])
