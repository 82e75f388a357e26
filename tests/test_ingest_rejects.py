"""Every kind of unusable row is rejected with its row, column and reason; every good row lands."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

import patron
from patron.data.ingest import readers

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

# (line content, expected column, expected reason fragment) -- None for good rows.
ROWS = [
    ("c1,o1,2025-01-05,10.50", None, None),
    (",o2,2025-01-06,3.00", "customer_id", "missing customer_id"),
    ("c2,o3,not-a-date,4.00", "occurred_at", "unparseable timestamp"),
    ("c3,o4,2025-01-07,ten", "amount", "non-numeric amount"),
    ("c4,o5,2099-01-01,5.00", "occurred_at", "in the future"),
    ("c5,o1,2025-01-08,6.00", "order_id", 'duplicate order_id "o1" (first at row 1)'),
    ("c6,o6,2025-01-09,-7.25", None, None),  # a refund, not an error
    ("c7,o7,2025-01-10", None, "expected 4 fields, found 3"),
    ("c8,o8,2025-01-11T08:30:00+02:00,8.00", None, None),
    ("c9,o9,2025-01-12,", "amount", "missing amount"),
    ("c10,,2025-01-12,1.00", "order_id", "missing order_id"),
    ("c11,o11,20250113,11.00", None, None),
    ("c12,o12,2025-01-14,inf", "amount", "not a finite number"),
]


def write(path: Path, header: str, lines: list[str]) -> Path:
    path.write_text(header + "\n" + "\n".join(lines) + "\n")
    return path


def test_each_bad_row_is_rejected_with_its_reason_and_good_rows_land(tmp_path, db):
    src = write(tmp_path / "orders.csv", "customer_id,order_id,occurred_at,amount", [r[0] for r in ROWS])
    res = patron.ingest(src, db=db, now=NOW)
    good = [i + 1 for i, r in enumerate(ROWS) if r[2] is None]
    bad = [i + 1 for i, r in enumerate(ROWS) if r[2] is not None]
    assert (res.accepted, res.rejected) == (len(good), len(bad))
    with duckdb.connect(db, read_only=True) as con:
        stored = {r[0] for r in con.execute("SELECT order_id FROM transactions").fetchall()}
        rejects = con.execute('SELECT "row", "column", reason FROM rejects ORDER BY "row"').fetchall()
        refund = con.execute("SELECT amount FROM transactions WHERE order_id = 'o6'").fetchall()[0][0]
        offset = con.execute("SELECT CAST(occurred_at AS VARCHAR) FROM transactions WHERE order_id = 'o8'").fetchall()[0][0]
    assert stored == {"o1", "o6", "o8", "o11"}
    assert refund == -7.25
    assert offset == "2025-01-11 06:30:00"  # +02:00 converted to UTC
    by_row = {r[0]: (r[1], r[2]) for r in rejects}
    assert sorted(by_row) == bad
    for row in bad:
        _, column, reason = ROWS[row - 1]
        got_col, got_reason = by_row[row]
        assert reason in got_reason, (row, got_reason)
        assert got_col == column, (row, got_col)
    # The rejects CSV holds the same rows, with row numbers and reasons.
    with open(res.rejects_file, newline="") as fh:
        file_rows = list(csv.DictReader(fh))
    assert sorted({int(r["row"]) for r in file_rows}) == bad
    assert all(r["reason"] for r in file_rows)


def test_reingesting_the_same_file_adds_nothing(tmp_path, db):
    src = write(tmp_path / "orders.csv", "customer_id,occurred_at,amount", ["a,2025-01-01,1", "a,2025-01-01,1", "b,2025-01-02,2"])
    first = patron.ingest(src, db=db, now=NOW)
    again = patron.ingest(src, db=db, now=NOW)
    assert (first.accepted, first.rejected) == (3, 0)  # two identical rows without order id are two orders
    assert (again.accepted, again.already_present, again.rejected) == (0, 3, 0)
    grown = write(tmp_path / "orders2.csv", "customer_id,occurred_at,amount", ["a,2025-01-01,1", "a,2025-01-01,1", "b,2025-01-02,2", "a,2025-01-01,1"])
    more = patron.ingest(grown, db=db, now=NOW)
    assert (more.accepted, more.already_present) == (1, 3)


def test_stored_order_id_with_other_values_is_rejected(tmp_path, db):
    patron.ingest(write(tmp_path / "a.csv", "customer_id,order_id,occurred_at,amount", ["a,o1,2025-01-01,1"]), db=db, now=NOW)
    res = patron.ingest(write(tmp_path / "b.csv", "customer_id,order_id,occurred_at,amount", ["a,o1,2025-01-01,2", "a,o2,2025-01-01,2"]), db=db, now=NOW)
    assert (res.accepted, res.rejected) == (1, 1)


def test_row_numbers_stay_right_across_blocks_and_malformed_lines(tmp_path, db, monkeypatch):
    monkeypatch.setattr(readers, "BLOCK_BYTES", 256)
    lines = [f"c{i},2025-01-01,{i}" if i % 37 else f"c{i},2025-01-01" for i in range(1, 400)]
    lines[199] = "c200,2025-01-01,x"
    src = write(tmp_path / "many.csv", "customer_id,occurred_at,amount", lines)
    res = patron.ingest(src, db=db, now=NOW)
    malformed = [i for i in range(1, 400) if i % 37 == 0]
    assert res.rejected == len(malformed) + 1
    assert res.accepted == 399 - res.rejected
    with duckdb.connect(db, read_only=True) as con:
        rows = [r[0] for r in con.execute('SELECT "row" FROM rejects ORDER BY "row"').fetchall()]
        amounts = con.execute("SELECT customer_id, amount FROM transactions").fetchall()
    assert rows == sorted([*malformed, 200])
    assert all(cid == f"c{int(amount)}" for cid, amount in amounts)


@pytest.mark.parametrize("kind", ["customers", "contacts"])
def test_other_kinds_validate_their_columns(tmp_path, db, kind):
    if kind == "customers":
        src = write(tmp_path / "people.csv", "customer_id,first_seen,segment", ["a,2025-01-01,gold", ",2025-01-01,x", "b,yesterday,silver", "a,2025-01-02,dup"])
        expect = (1, 3)
    else:
        src = write(tmp_path / "contacts.csv", "customer_id,occurred_at,channel,campaign_id,kind,in_holdout",
                    ["a,2025-01-01,email,c1,sent,false", "a,2025-01-01,email,c1,shouted,false", "b,2025-01-01,sms,c1,opened,maybe", "b,2025-01-02,,c1,clicked,true"])
        expect = (1, 3)
    res = patron.ingest(src, kind=kind, db=db, now=NOW)
    assert (res.accepted, res.rejected) == expect


def test_customers_reingest_merges_attributes(tmp_path, db):
    patron.ingest(write(tmp_path / "p1.csv", "customer_id,tier", ["a,gold"]), kind="customers", db=db, now=NOW)
    res = patron.ingest(write(tmp_path / "p2.csv", "customer_id,city", ["a,Paris"]), kind="customers", db=db, now=NOW)
    assert res.updated == 1
    with duckdb.connect(db, read_only=True) as con:
        attrs = con.execute("SELECT attributes FROM customers").fetchall()[0][0]
    assert '"tier":"gold"' in attrs.replace(" ", "") and '"city":"Paris"' in attrs.replace(" ", "")
