"""Ingest reads CSV with any delimiter, whitespace-separated and headerless text, Parquet, JSON
Lines and in-memory tables, with column mapping and date formats."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import patron
from patron.data.datasets import data_path

NOW = datetime(2025, 6, 1, tzinfo=UTC)
EXPECTED = {("a", 10.0), ("b", 2.5)}


def stored(db: str) -> set[tuple[str, float]]:
    import duckdb

    with duckdb.connect(db, read_only=True) as con:
        return set(con.execute("SELECT customer_id, amount FROM transactions").fetchall())


@pytest.mark.parametrize(
    ("name", "text", "kwargs"),
    [
        ("semi.csv", "cust;when;value\na;2025-01-01;10\nb;2025-01-02;2.5\n", {"mapping": ["customer_id=cust", "occurred_at=when", "amount=value"]}),
        ("tabs.tsv", "customer_id\toccurred_at\tamount\na\t2025-01-01\t10\nb\t2025-01-02\t2.5\n", {}),
        ("quoted.csv", 'customer_id,occurred_at,amount,note\n"a",2025-01-01,10,"x, y"\n"b",2025-01-02,2.5,""\n', {}),
        ("spaces.txt", "  a   20250101   10.00\r\n  b   20250102    2.50\r\n", {"columns": ["customer_id", "date", "amount"], "mapping": {"occurred_at": "date"}}),
        ("dmy.csv", "customer_id,date,amount\na,01/01/2025,10\nb,02/01/2025,2.5\n", {"mapping": {"occurred_at": "date"}, "date_format": "%d/%m/%Y"}),
        ("upper.csv", "Customer_ID,Occurred_At,Amount\na,2025-01-01,10\nb,2025-01-02,2.5\n", {}),
    ],
)
def test_text_formats(tmp_path, db, name, text, kwargs):
    path = tmp_path / name
    path.write_text(text)
    res = patron.ingest(path, db=db, now=NOW, **kwargs)
    assert (res.accepted, res.rejected) == (2, 0)
    assert stored(db) == EXPECTED


def test_jsonl_with_numbers_strings_and_a_broken_line(tmp_path, db):
    path = tmp_path / "orders.jsonl"
    lines = [json.dumps({"customer_id": "a", "occurred_at": "2025-01-01T00:00:00Z", "amount": 10}), "{not json", json.dumps({"customer_id": "b", "occurred_at": "2025-01-02", "amount": "2.5"})]
    path.write_text("\n".join(lines) + "\n")
    res = patron.ingest(path, db=db, now=NOW)
    assert (res.accepted, res.rejected) == (2, 1)
    assert stored(db) == EXPECTED


def test_parquet_typed_columns(tmp_path, db):
    path = tmp_path / "orders.parquet"
    pq.write_table(pa.table({"customer_id": ["a", "b"], "ts": pa.array([datetime(2025, 1, 1), datetime(2025, 1, 2)], pa.timestamp("us")), "amount": [10.0, 2.5]}), path)
    res = patron.ingest(path, db=db, mapping={"occurred_at": "ts"}, now=NOW)
    assert (res.accepted, res.rejected) == (2, 0)
    assert stored(db) == EXPECTED


@pytest.mark.parametrize("make", [pd.DataFrame, pl.DataFrame, pa.table])
def test_in_memory_tables(db, make):
    data = {"customer_id": ["a", "b"], "occurred_at": ["2025-01-01", "2025-01-02"], "amount": [10.0, 2.5]}
    res = patron.ingest(make(data), db=db, now=NOW)
    assert (res.accepted, res.rejected) == (2, 0)
    assert stored(db) == EXPECTED


def test_whole_cdnow_master_file_with_header(db):
    res = patron.ingest(data_path("CDNOW_master.txt"), db=db, mapping={"occurred_at": "date", "amount": "dollar_value"})
    assert (res.accepted, res.rejected, res.rows_read) == (69659, 0, 69659)  # row count per the data README
