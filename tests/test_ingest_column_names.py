"""Any column name is legal and round-trips (issue 18): quotes, apostrophes, semicolons, ``--``,
SQL keywords, Unicode, ``_row``, very long names. Ingest maps a contract column to the odd name
(``--map amount=<name>``) in CSV, JSON Lines and Parquet; the rows are stored exactly, no SQL
runs (no file appears, no table is added or dropped), and for customers the odd name is kept as
an ``attributes`` key."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import patron
from patron.cli import main

SENTINEL = Path(tempfile.gettempdir()) / "patron-issue18-sentinel"
"""A file the payload names try to write; it must never appear."""

_S = str(SENTINEL)
PAYLOADS = [
    f"x\"') IS NULL THEN NULL END AS z, _row FROM _lines; COPY (SELECT 42) TO '{_S}'; --",
    f"x\", NULL::BIGINT AS _row LIMIT 0; COPY (SELECT 42) TO '{_S}'; --",
    "x\"') IS NULL THEN NULL END AS z, _row FROM _lines; DROP TABLE main.transactions; --",
    "a'b", 'a"b', "a`b", "a\\b", "'; DROP TABLE transactions; --", "--", ";", "$.a", '$."a', "a/b", "~0",
    "_row", "_c0", "_c1", "file_row_number", "SELECT", "order", " padded ", "ünïcødé ✓ 😀", "a" * 3000,
]
"""Names that broke or could break SQL built from names."""

CONTRACT = {"customer_id", "order_id", "occurred_at", "amount", "currency", "channel", "category", "discount", "margin", "first_seen"}

NAMES = st.one_of(
    st.sampled_from(PAYLOADS),
    st.text(alphabet=st.sampled_from(list("\"'`;-$.[]()\\/ ~*?%_:=,|{}é😀aZ09")), min_size=1, max_size=40),
    st.text(min_size=1, max_size=60),
)

ROWS = [("a", "o1", "2024-01-02", "10.5"), ("b", "o2", "2024-01-03", "2"), ("a", "o3", "2024-02-04", "-1.25")]
"""(customer_id, order_id, occurred_at, amount under the odd name)."""

EXAMPLES = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _csv(path: Path, header: list[str], rows: list[tuple]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")


def _write(fmt: str, path: Path, name: str) -> None:
    header = ["customer_id", "order_id", "occurred_at", name]
    if fmt == "csv":
        _csv(path, header, ROWS)
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(dict(zip(header, r, strict=True))) + "\n" for r in ROWS), encoding="utf-8")
    else:
        cols = list(zip(*ROWS, strict=True))
        pq.write_table(pa.table([pa.array(c) for c in cols[:3]] + [pa.array([float(x) for x in cols[3]])], names=header), path)


def _state(db: str) -> tuple[set[str], set[tuple]]:
    with duckdb.connect(db, read_only=True) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        orders = set(con.execute("SELECT customer_id, order_id, CAST(occurred_at AS DATE)::VARCHAR, amount FROM transactions").fetchall())
    return tables, orders


def _check_round_trip(tmp: Path, fmt: str, name: str) -> None:
    SENTINEL.unlink(missing_ok=True)
    db = str(tmp / f"{fmt}.duckdb")
    seed = tmp / "seed.csv"
    seed.write_text("customer_id,order_id,occurred_at,amount\nz,s1,2023-12-01,7\n")
    patron.ingest(seed, db=db)
    tables_before, _ = _state(db)
    path = tmp / f"odd.{fmt}"
    _write(fmt, path, name)
    before = set(tmp.iterdir())
    res = patron.ingest(path, db=db, mapping={"amount": name})
    assert (res.accepted, res.rejected) == (3, 0)
    tables, orders = _state(db)
    assert tables == tables_before
    assert orders == {("z", "s1", "2023-12-01", 7.0)} | {(c, o, d, float(a)) for c, o, d, a in ROWS}
    assert set(tmp.iterdir()) == before
    assert not SENTINEL.exists()


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
@EXAMPLES
@given(name=NAMES)
def test_any_column_name_round_trips(tmp_path_factory, fmt, name):
    assume(name.lower() not in CONTRACT)
    if fmt == "csv":
        assume("\n" not in name and "\r" not in name)  # a CSV record is one line (no quoted line breaks)
    _check_round_trip(tmp_path_factory.mktemp(fmt), fmt, name)


@pytest.mark.parametrize("name", PAYLOADS)
def test_every_payload_round_trips_through_the_cli(tmp_path, name):
    """The same through ``patron ingest --map`` (the option's text is the name after the first ``=``)."""
    SENTINEL.unlink(missing_ok=True)
    db = str(tmp_path / "t.duckdb")
    path = tmp_path / "odd.jsonl"
    _write("jsonl", path, name)
    assert main(["ingest", str(path), "--db", db, "--map", f"amount={name}"]) == 0
    assert _state(db)[1] == {(c, o, d, float(a)) for c, o, d, a in ROWS}
    assert not SENTINEL.exists()


@EXAMPLES
@given(name=NAMES)
def test_any_extra_column_name_is_kept_as_an_attribute_key(tmp_path_factory, name):
    assume(name.lower() not in CONTRACT)
    tmp = tmp_path_factory.mktemp("customers")
    path = tmp / "customers.parquet"
    pq.write_table(pa.table({"customer_id": ["c1", "c2"], name: ["v'1;\"", None]}), path)
    db = str(tmp / "t.duckdb")
    res = patron.ingest(path, kind="customers", db=db)
    assert (res.accepted, res.rejected) == (2, 0)
    with duckdb.connect(db, read_only=True) as con:
        attrs = {c: json.loads(a) for c, a in con.execute("SELECT customer_id, attributes FROM customers").fetchall()}
    assert attrs == {"c1": {name: "v'1;\""}, "c2": {name: None}}


@pytest.mark.parametrize("name", ["amount\"x", "a'b", f"x\" AS DOUBLE) AS amount FROM _frame; COPY (SELECT 42) TO '{_S}'; --"])
def test_summary_of_a_dataframe_with_an_odd_column_name(name):
    """``patron.summary`` of a DataFrame maps its columns by name into SQL, quoted the same way."""
    SENTINEL.unlink(missing_ok=True)
    frame = pd.DataFrame({"customer_id": ["a", "a", "b"], "occurred_at": pd.to_datetime(["2024-01-01", "2024-01-09", "2024-01-02"]), name: [10.0, 5.0, 2.0]})
    out = patron.summary(frame, mapping={"amount": name}, end="2024-01-31")
    assert not SENTINEL.exists()
    assert dict(zip(out["customer_id"], out["frequency"], strict=True)) == {"a": 1, "b": 0}


def _refused(tmp_path: Path, capsys, path: Path, *args: str) -> str:
    db = str(tmp_path / "t.duckdb")
    code = main(["ingest", str(path), "--db", db, *args])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("customer_id,occurred_at,amount,amount", "column 3 'amount', column 4 'amount'"),
        ("customer_id,occurred_at,Amount,AMOUNT", "column 3 'Amount', column 4 'AMOUNT'"),
        ("customer_id,occurred_at,total,total", "column 3 'total', column 4 'total'"),
    ],
)
def test_a_repeated_header_name_that_feeds_a_column_is_refused(tmp_path, capsys, header, message):
    """Before issue 18 the first of the repeated columns was read silently."""
    path = tmp_path / "orders.csv"
    path.write_text(f"{header}\na,2024-01-01,1,100\n")
    args = ["--map", "amount=total"] if "total" in header else []
    err = _refused(tmp_path, capsys, path, *args)
    assert message in err and "rename all but one" in err


def test_an_exact_name_wins_over_a_case_variant(tmp_path, db):
    path = tmp_path / "orders.csv"
    path.write_text("customer_id,occurred_at,Amount,amount\na,2024-01-01,1,100\n")
    patron.ingest(path, db=db)
    assert _amounts(db) == [100.0]


def _amounts(db: str) -> list[float]:
    with duckdb.connect(db, read_only=True) as con:
        return [r[0] for r in con.execute("SELECT amount FROM transactions").fetchall()]


def test_repeated_names_nothing_reads_are_ignored(tmp_path, db):
    path = tmp_path / "orders.csv"
    path.write_text("customer_id,occurred_at,amount,note,note,,\na,2024-01-01,3,x,y,,\n")
    res = patron.ingest(path, db=db)
    assert (res.accepted, res.rejected) == (1, 0) and _amounts(db) == [3.0]


def test_a_repeated_parquet_column_name_is_refused(tmp_path, capsys):
    path = tmp_path / "orders.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array(["a"]), pa.array(["2024-01-01"]), pa.array([1.0]), pa.array([9.0])],
                                        names=["customer_id", "occurred_at", "amount", "amount"]), path)
    assert "column 3 'amount', column 4 'amount'" in _refused(tmp_path, capsys, path)


def test_a_repeated_attribute_name_is_refused(tmp_path, capsys):
    path = tmp_path / "customers.csv"
    path.write_text("customer_id,tier,tier\nc1,gold,silver\n")
    assert "the attribute 'tier'" in _refused(tmp_path, capsys, path, "--kind", "customers")


def test_a_json_object_with_a_repeated_key_is_rejected_and_the_others_stored(tmp_path, db):
    path = tmp_path / "orders.jsonl"
    path.write_text('{"customer_id": "a", "occurred_at": "2024-01-01", "amount": 1}\n'
                    '{"customer_id": "b", "occurred_at": "2024-01-01", "amount": 1, "amount": 2}\n')
    res = patron.ingest(path, db=db)
    assert (res.accepted, res.rejected) == (1, 1) and _amounts(db) == [1.0]
    with duckdb.connect(db, read_only=True) as con:
        assert con.execute("SELECT row, reason FROM rejects").fetchall() == [(2, "the key 'amount' appears more than once in the object")]
