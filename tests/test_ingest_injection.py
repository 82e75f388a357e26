"""Column names read from a file are data: the payloads of issue 18 (a JSON Lines key, a CSV header
cell) run no SQL, write and read no file, drop no table, and every good row is stored."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

import patron
from patron.cli import main

SEED = "customer_id,order_id,occurred_at,amount\nseed,s1,2024-01-01,1\nseed,s2,2024-01-02,2\n"


def _payloads(target: Path) -> dict[str, str]:
    """Issue 18's JSON Lines key payloads, aimed at ``target`` (a file that must not appear)."""
    t = str(target).replace("'", "''")
    close = "x\"') IS NULL THEN NULL END AS z, _row FROM _lines; "
    return {
        "copy_to_file": close + f"COPY (SELECT 42) TO '{t}'; --",
        "read_passwd": close + "CREATE TABLE main.leak AS SELECT * FROM read_text('/etc/passwd'); --",
        "drop_transactions": close + "DROP TABLE main.transactions; CREATE TABLE main.transactions AS SELECT 1 AS x; --",
        "apostrophe": "a'b",
        "quote_in_path": '$."x',
    }


def _tables(db: str) -> dict[str, int]:
    with duckdb.connect(db, read_only=True) as con:
        names = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()]
        return {n: con.execute(f'SELECT count(*) FROM "{n}"').fetchall()[0][0] for n in names}


def _orders(db: str) -> set[tuple]:
    with duckdb.connect(db, read_only=True) as con:
        return set(con.execute("SELECT customer_id, order_id, amount FROM transactions").fetchall())


def _no_passwd(db: str) -> None:
    with duckdb.connect(db, read_only=True) as con:
        for (name,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall():
            text = str(con.execute(f'SELECT * FROM "{name}"').fetchall())
            assert "root:" not in text, f"/etc/passwd read into {name}"


@pytest.mark.parametrize("payload", ["copy_to_file", "read_passwd", "drop_transactions", "apostrophe", "quote_in_path"])
def test_jsonl_key_payload_runs_no_sql_and_keeps_every_row(tmp_path, db, payload, capsys):
    seed = tmp_path / "seed.csv"
    seed.write_text(SEED)
    assert main(["ingest", str(seed), "--db", db]) == 0
    before = _tables(db)
    target = tmp_path / "written-by-the-file"
    key = _payloads(target)[payload]
    rows = [
        {"customer_id": "a", "order_id": "o1", "occurred_at": "2024-02-01", "amount": 10, key: "v1"},
        {"customer_id": "b", "order_id": "o2", "occurred_at": "2024-02-02", "amount": 2.5, key: None},
    ]
    path = tmp_path / "orders.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    capsys.readouterr()
    code = main(["ingest", str(path), "--db", db])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Traceback" not in captured.out + captured.err
    assert not target.exists()
    _no_passwd(db)
    after = _tables(db)
    assert set(after) == set(before)
    assert after["transactions"] == before["transactions"] + 2
    assert _orders(db) == {("seed", "s1", 1.0), ("seed", "s2", 2.0), ("a", "o1", 10.0), ("b", "o2", 2.5)}


@pytest.mark.parametrize("payload", ["copy_to_file", "read_passwd", "apostrophe", "quote_in_path"])
def test_jsonl_key_payload_round_trips_as_an_attribute(tmp_path, db, payload):
    """Customers keep other columns as JSON ``attributes``: the odd key is stored as itself."""
    target = tmp_path / "written-by-the-file"
    key = _payloads(target)[payload]
    path = tmp_path / "customers.jsonl"
    path.write_text(json.dumps({"customer_id": "c1", key: "v'1\""}) + "\n" + json.dumps({"customer_id": "c2"}) + "\n")
    res = patron.ingest(path, kind="customers", db=db)
    assert (res.accepted, res.rejected) == (2, 0)
    assert not target.exists()
    with duckdb.connect(db, read_only=True) as con:
        attrs = dict(con.execute("SELECT customer_id, attributes FROM customers").fetchall())
    assert json.loads(attrs["c1"]) == {key: "v'1\""}
    assert json.loads(attrs["c2"]) == {key: None}


def test_csv_header_payload_without_a_wellformed_row_writes_no_file(tmp_path, db, capsys):
    target = tmp_path / "written-by-the-header"
    cell = f"x\", NULL::BIGINT AS _row LIMIT 0; COPY (SELECT 42) TO '{target}'; --"
    path = tmp_path / "orders.csv"
    path.write_text('customer_id,occurred_at,amount,"' + cell.replace('"', '""') + '"\na,2024-01-01\n')
    code = main(["ingest", str(path), "--db", db])
    err = capsys.readouterr().err
    assert code == 2
    assert not target.exists()
    assert len(err.strip().splitlines()) == 1 and "expected 4 fields, found 2" in err
    assert "Traceback" not in err


def test_csv_header_payload_with_good_rows_stores_them(tmp_path, db):
    target = tmp_path / "written-by-the-header"
    cell = f"x\", NULL::BIGINT AS _row LIMIT 0; COPY (SELECT 42) TO '{target}'; --"
    path = tmp_path / "orders.csv"
    path.write_text('customer_id,occurred_at,amount,"' + cell.replace('"', '""') + '"\na,2024-01-01,3,z\nbroken\n')
    res = patron.ingest(path, db=db)
    assert (res.accepted, res.rejected) == (1, 1)
    assert not target.exists()
