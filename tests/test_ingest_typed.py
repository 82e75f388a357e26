"""Ingest of typed input (Parquet, Arrow), where the rows are parsed by casts and read again by each
pass instead of held in a temporary table, and duplicate keys are found by sorting 64-bit hashes:
every problem is still rejected with its row, column and reason (hand-made rows, known answer)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import patron
from patron.data.ingest import load

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
T = datetime(2025, 1, 5)

# (customer_id, order_id, occurred_at, amount) -> expected (column, reason fragment), None when good.
ROWS = [
    (("c1", "o1", T, 10.5), None),
    ((None, "o2", T, 3.0), ("customer_id", "missing customer_id")),
    (("  ", "o3", T, 3.0), ("customer_id", "missing customer_id")),
    (("c4", "o4", None, 4.0), ("occurred_at", "missing occurred_at")),
    (("c5", "o5", datetime(2099, 1, 1), 5.0), ("occurred_at", "in the future")),
    (("c6", "o6", datetime(1850, 1, 1), 6.0), ("occurred_at", "before 1900-01-01")),
    (("c7", "o7", T, None), ("amount", "missing amount")),
    (("c8", "o8", T, math.nan), ("amount", "not a finite number")),
    (("c9", "o9", T, math.inf), ("amount", "not a finite number")),
    (("c10", "o10", T, 1e20), ("amount", "largest plausible amount")),
    (("c11", "o1", T, 11.0), ("order_id", 'duplicate order_id "o1" (first at row 1)')),
    (("c12", None, T, 12.0), ("order_id", "missing order_id")),
    (("c1\u200b", "o13", T, 13.0), ("customer_id", "U+200B")),
    (("c14", " o14 ", T, 14.0), None),  # trimmed: o14
    (("c15", "o14", T, 15.0), ("order_id", 'duplicate order_id "o14" (first at row 14)')),
    (("c16", "o16", T, -16.0), None),  # a refund
    (("c17", "o7", T, 17.0), None),  # o7's first row was rejected: this one is the first good one
    (("c18", "o1", T, 18.0), ("order_id", 'duplicate order_id "o1" (first at row 1)')),
]


def table() -> pa.Table:
    cols = list(zip(*[r[0] for r in ROWS], strict=True))
    return pa.table({"customer_id": pa.array(cols[0], pa.string()), "order_id": pa.array(cols[1], pa.string()),
                     "occurred_at": pa.array(cols[2], pa.timestamp("us")), "amount": pa.array(cols[3], pa.float64())})


def rejects(db: str) -> dict[int, list[tuple[str, str]]]:
    with duckdb.connect(db, read_only=True) as con:
        rows = con.execute('SELECT "row", "column", reason FROM rejects').fetchall()
    out: dict[int, list[tuple[str, str]]] = {}
    for row, column, reason in rows:
        out.setdefault(row, []).append((column, reason))
    return out


def check(db: str, res: patron.IngestResult) -> None:
    bad = {i + 1: want for i, (_, want) in enumerate(ROWS) if want is not None}
    assert (res.accepted, res.rejected) == (len(ROWS) - len(bad), len(bad))
    got = rejects(db)
    assert sorted(got) == sorted(bad)
    for row, (column, fragment) in bad.items():
        assert len(got[row]) == 1, (row, got[row])
        assert got[row][0][0] == column, (row, got[row])
        assert fragment in got[row][0][1], (row, got[row])
    with duckdb.connect(db, read_only=True) as con:
        stored = dict(con.execute("SELECT order_id, customer_id FROM transactions").fetchall())
    assert stored == {"o1": "c1", "o14": "c14", "o16": "c16", "o7": "c17"}


@pytest.mark.parametrize("form", ["parquet", "arrow"])
def test_typed_rows_are_rejected_with_their_reasons(tmp_path, db, form):
    source = table()
    if form == "parquet":
        pq.write_table(source, tmp_path / "orders.parquet")
        source = tmp_path / "orders.parquet"
    check(db, patron.ingest(source, db=db, now=NOW))


def test_every_hash_a_candidate_gives_the_same_answer(tmp_path, db, monkeypatch):
    """The exact check behind the hash filter: were every key's hash shared (all candidates), the
    same rows, and only they, are duplicates."""
    monkeypatch.setattr(load, "_repeated", lambda hashes: pa.table({"h": pa.array(np.unique(hashes), pa.uint64())}))
    pq.write_table(table(), tmp_path / "orders.parquet")
    check(db, patron.ingest(tmp_path / "orders.parquet", db=db, now=NOW))


def test_reingesting_typed_rows_adds_nothing_and_a_changed_row_is_rejected(tmp_path, db):
    good = table().filter(pa.array([want is None for _, want in ROWS]))
    pq.write_table(good, tmp_path / "orders.parquet")
    first = patron.ingest(tmp_path / "orders.parquet", db=db, now=NOW)
    again = patron.ingest(tmp_path / "orders.parquet", db=db, now=NOW)
    assert (first.accepted, again.accepted, again.already_present, again.rejected) == (4, 0, 4, 0)
    changed = good.set_column(3, "amount", pa.array([99.0, 14.0, -16.0, 17.0]))
    pq.write_table(changed, tmp_path / "changed.parquet")
    res = patron.ingest(tmp_path / "changed.parquet", db=db, now=NOW)
    assert (res.accepted, res.already_present, res.rejected) == (0, 3, 1)
    assert any('order_id "o1" is already stored with different values' in r for _, r in rejects(db)[1])


def test_repeated_hashes_are_found_by_sorting():
    assert load._repeated(np.array([5, 1, 5, 3, 3, 3, 9], dtype=np.uint64)).column("h").to_pylist() == [3, 5]
    assert load._repeated(np.array([4, 1, 2], dtype=np.uint64)) is None
    assert load._repeated(np.array([], dtype=np.uint64)) is None


def test_a_nan_among_finite_values_is_rejected_and_the_next_row_with_its_key_kept(tmp_path):
    """A Parquet column whose only bad value is NaN: its statistics (min, max) leave the NaN out,
    and DuckDB 2.0 folded ``isnan``/``isinf`` to false from them, so the NaN row was stored and
    the valid row after it rejected as its duplicate."""
    src = tmp_path / "nan.parquet"
    pq.write_table(pa.table({"customer_id": ["a", "b", "c", "d"], "order_id": ["A1", "A2", "A2", "A3"],
                             "occurred_at": [T] * 4, "amount": [1.0, math.nan, 3.0, 4.0]}), src)
    db = str(tmp_path / "nan.duckdb")
    result = patron.ingest(src, kind="transactions", db=db, now=NOW)
    with duckdb.connect(db) as con:
        rejects = con.execute('SELECT "row", "column", reason FROM rejects').fetchall()
        stored = dict(con.execute("SELECT order_id, customer_id FROM transactions").fetchall())
    assert [(r, c) for r, c, _ in rejects] == [(2, "amount")] and "not a finite number" in rejects[0][2]
    assert stored == {"A1": "a", "A2": "c", "A3": "d"}
    assert result.accepted == 3
