"""Erasure (``erase_customer``, ``patron erase-customer``): the person's identifiers are gone from
the database file's bytes, from every text column of every table, and from a regenerated report;
aggregates stay honest; the audit row holds no personal data; failures leave the file untouched.

Expected values come from the hand-built data in :mod:`tests.test_rights_data` (revenue 54.75 over
4 orders, the row counts in ``PERSON_ROWS``) and from independent SQL run before the erasure.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

import patron.people.rights.erase as erase_module
from patron.cli import main
from patron.data.store import connect
from patron.errors import InputError, NoDataError
from patron.people.rights import erase_customer
from tests.test_rights_data import (
    BYSTANDER,
    EMAIL,
    MARKERS,
    PERSON,
    PERSON_ORDERS,
    PERSON_REVENUE,
    PERSON_ROWS,
    build_database,
    bytes_hits,
    file_bytes,
    text_hits,
)

MONEY_TOL = 1e-9
"""Tolerance on sums of money (floating-point addition order)."""

PSEUDONYM = re.compile(r"^erased-[0-9a-f]{32}$")


def _counts(db: str) -> dict[str, int]:
    with connect(db, read_only=True) as con:
        names = con.execute("SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'").fetchall()
        return {
            (n if s == "main" else f"{s}.{n}"): con.execute(f'SELECT count(*) FROM "{s}"."{n}"').fetchall()[0][0]
            for s, n in names
        }


def _totals(db: str) -> tuple[float, int]:
    with connect(db, read_only=True) as con:
        rev, n = con.execute("SELECT sum(amount), count(*) FROM transactions").fetchall()[0]
    return rev, n


def _sha(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_database(tmp_path_factory.mktemp("template"))


@pytest.fixture
def shop(template: str, tmp_path: Path) -> str:
    """A fresh copy of the template database (built once per module: ingest is the slow part)."""
    db = tmp_path / "shop.duckdb"
    shutil.copyfile(template, db)
    return str(db)


def test_the_scans_can_see_the_person_before_erasure(shop: str) -> None:
    """Control: in the original file the id and email bytes are visible, and every table scan
    finds them, so the absence checks below can fail."""
    assert PERSON.encode() in file_bytes(shop) and EMAIL.encode() in file_bytes(shop)
    tables = {t for t, _, _ in text_hits(shop, "zqxj")}
    assert {"main.customers", "main.transactions", "main.referrals", "main.rejects", "analytics.notes"} <= tables


def test_pseudonymize_removes_every_identifier_and_keeps_aggregates(shop: str) -> None:
    before_counts = _counts(shop)
    before_rev, before_n = _totals(shop)
    result = erase_customer(shop, PERSON, transactions="pseudonymize")

    assert bytes_hits(shop, *MARKERS) == []
    assert text_hits(shop, *MARKERS) == []
    assert [p.name for p in Path(shop).parent.iterdir() if p.name != "in"] == ["shop.duckdb"]  # no copy, no WAL left

    after_rev, after_n = _totals(shop)
    assert after_n == before_n and after_rev == pytest.approx(before_rev, abs=MONEY_TOL)
    with connect(shop, read_only=True) as con:
        kept = con.execute("SELECT customer_id, count(*), sum(amount) FROM transactions WHERE customer_id LIKE 'erased-%' GROUP BY 1").fetchall()
        order_ids = [r[0] for r in con.execute("SELECT order_id FROM transactions WHERE customer_id LIKE 'erased-%'").fetchall()]
    assert len(kept) == 1
    pseudonym, n, revenue = kept[0]
    assert PSEUDONYM.match(pseudonym) and n == len(PERSON_ORDERS) and revenue == pytest.approx(PERSON_REVENUE, abs=MONEY_TOL)
    digests = {h(v.encode()).hexdigest() for v in (PERSON, EMAIL) for h in (hashlib.md5, hashlib.sha1, hashlib.sha256)}
    assert not any(d[:12] in pseudonym for d in digests) and PERSON.lower() not in pseudonym
    assert not set(order_ids) & set(PERSON_ORDERS["order_id"])  # keys replaced too

    after_counts = _counts(shop)
    for table, n_before in before_counts.items():
        erased = 0 if table == "transactions" else PERSON_ROWS.get(table, 0)
        assert after_counts[table] == n_before - erased, table
    assert after_counts["erasures"] == 1
    assert result.rows_pseudonymized == 4 and result.rows_deleted == sum(PERSON_ROWS.values()) - 4
    assert result.rejects_files and result.rejects_files[0].endswith("customers.rejects.csv")


def test_delete_removes_exactly_the_persons_revenue(shop: str) -> None:
    before_rev, before_n = _totals(shop)
    result = erase_customer(shop, PERSON, transactions="delete")
    after_rev, after_n = _totals(shop)
    assert after_n == before_n - len(PERSON_ORDERS)
    assert after_rev == pytest.approx(before_rev - PERSON_REVENUE, abs=MONEY_TOL)
    assert result.mode == "delete" and result.rows_pseudonymized == 0
    assert bytes_hits(shop, *MARKERS) == [] and text_hits(shop, *MARKERS) == []
    with connect(shop, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM transactions WHERE customer_id LIKE 'erased-%'").fetchall()[0][0] == 0


def test_the_audit_row_holds_no_personal_data(shop: str) -> None:
    erase_customer(shop, PERSON)
    with connect(shop, read_only=True) as con:
        cur = con.execute("SELECT * FROM erasures")
        rows = cur.fetchall()
        names = [d[0] for d in cur.description]
        pseudonym = con.execute("SELECT DISTINCT customer_id FROM transactions WHERE customer_id LIKE 'erased-%'").fetchall()[0][0]
    assert len(rows) == 1
    text = json.dumps(dict(zip(names, rows[0], strict=True)), default=str).lower()
    forbidden = [PERSON, EMAIL, "zqxj", pseudonym, pseudonym.removeprefix("erased-")]
    forbidden += [h(v.encode()).hexdigest() for v in (PERSON, EMAIL, PERSON.lower()) for h in (hashlib.md5, hashlib.sha1, hashlib.sha256)]
    assert [f for f in forbidden if f.lower() in text] == []
    audit = dict(zip(names, rows[0], strict=True))
    assert audit["mode"] == "pseudonymize"
    assert json.loads(audit["tables"])["referrals"] == {"deleted": 3, "pseudonymized": 0}
    assert audit["rows_pseudonymized"] == 4


def test_views_schemas_and_other_customers_survive(shop: str) -> None:
    with connect(shop, read_only=True) as con:
        bystander = con.execute("SELECT * FROM revenue_by_customer WHERE customer_id = ?", [BYSTANDER]).fetchall()
        notes = con.execute("SELECT count(*) FROM analytics.notes").fetchall()[0][0]
    erase_customer(shop, PERSON)
    with connect(shop, read_only=True) as con:
        assert con.execute("SELECT * FROM revenue_by_customer WHERE customer_id = ?", [BYSTANDER]).fetchall() == bystander
        assert con.execute("SELECT count(*) FROM revenue_by_customer WHERE customer_id = ?", [PERSON]).fetchall()[0][0] == 0
        assert con.execute("SELECT count(*) FROM analytics.notes").fetchall()[0][0] == notes - 1
        assert con.execute("SELECT count(*) FROM referrals WHERE referrer_id = 'c002'").fetchall()[0][0] == 0  # referred the person
        assert con.execute("SELECT count(*) FROM referrals WHERE referrer_id = ?", [BYSTANDER]).fetchall()[0][0] == 1


def test_unknown_customer_is_a_clear_error_and_changes_nothing(shop: str, capsys: pytest.CaptureFixture[str]) -> None:
    digest = _sha(shop)
    with pytest.raises(NoDataError, match="no data about customer 'nobody'"):
        erase_customer(shop, "nobody")
    assert main(["erase-customer", "nobody", "--db", shop, "--yes"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert _sha(shop) == digest


def test_residue_in_an_unknown_column_aborts_without_change(shop: str) -> None:
    with connect(shop) as con:
        con.execute("CREATE TABLE tickets (ticket VARCHAR, requester VARCHAR)").fetchall()
        con.execute(f"INSERT INTO tickets VALUES ('t1', '{PERSON}'), ('t2', 'c001')").fetchall()
    digest = _sha(shop)
    with pytest.raises(InputError, match=r"tickets\.requester"):
        erase_customer(shop, PERSON)
    assert _sha(shop) == digest
    assert [p.name for p in Path(shop).parent.iterdir() if p.name != "in"] == ["shop.duckdb"]
    erase_customer(shop, PERSON, config={"rights": {"extra_person_columns": ["requester"]}})
    assert _counts(shop)["tickets"] == 1 and bytes_hits(shop, PERSON) == []


@pytest.mark.parametrize("fail_at", ["_verify", "replace"])
def test_a_failure_mid_way_leaves_the_original_untouched(shop: str, fail_at: str, monkeypatch: pytest.MonkeyPatch) -> None:
    digest = _sha(shop)

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("injected failure")

    if fail_at == "replace":
        monkeypatch.setattr(erase_module.os, "replace", boom)
    else:
        monkeypatch.setattr(erase_module, fail_at, boom)
    with pytest.raises(RuntimeError, match="injected"):
        erase_customer(shop, PERSON)
    assert _sha(shop) == digest
    assert [p.name for p in Path(shop).parent.iterdir() if p.name != "in"] == ["shop.duckdb"]


def test_rules_choose_the_default_mode(shop: str, tmp_path: Path) -> None:
    rules = tmp_path / "patron.toml"
    rules.write_text('[rights]\ntransactions = "delete"\n', encoding="utf-8")
    _, before_n = _totals(shop)
    assert erase_customer(shop, PERSON, config=rules).mode == "delete"
    assert _totals(shop)[1] == before_n - len(PERSON_ORDERS)
    with pytest.raises(InputError, match="customers cannot be pseudonymized"):
        erase_customer(shop, BYSTANDER, config={"rights": {"pseudonymize_tables": ["customers"]}})


def test_cli_asks_before_erasing(shop: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import io

    digest = _sha(shop)
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    assert main(["erase-customer", PERSON, "--db", shop]) == 1
    assert _sha(shop) == digest
    capsys.readouterr()
    assert main(["erase-customer", PERSON, "--db", shop, "--yes", "--json", "--mode", "delete"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["mode"] == "delete" and printed["rows_deleted"] == sum(PERSON_ROWS.values())
    assert "zqxj" not in json.dumps(printed["tables"]).lower()
    assert bytes_hits(shop, PERSON, EMAIL) == []


def test_a_short_id_only_takes_rejects_that_quote_it(tmp_path: Path) -> None:
    """Customer "1": rejects whose value is "1" or whose reason quotes "1" go; a reason that merely
    contains the digit 1 (row 1, 10 fields) stays."""
    db = str(tmp_path / "short.duckdb")
    with connect(db) as con:
        con.execute("INSERT INTO transactions (customer_id, order_id, occurred_at, amount) VALUES ('1', 'o1', TIMESTAMP '2024-01-01', 10), ('2', 'o2', TIMESTAMP '2024-01-01', 5)").fetchall()
        con.execute(
            "INSERT INTO rejects (ingest_id, source, kind, \"row\", \"column\", value, reason) VALUES "
            "('i', 'f.csv', 'transactions', 1, 'customer_id', '1', 'duplicate order_id \"o1\" (first at row 1)'), "
            "('i', 'f.csv', 'customers', 3, 'customer_id', 'x', 'customer_id \"1\" is already stored with different values'), "
            "('i', 'f.csv', 'transactions', 11, NULL, NULL, 'expected 10 fields, found 11')"
        ).fetchall()
    result = erase_customer(db, "1", transactions="delete")
    assert result.tables["rejects"] == {"deleted": 2, "pseudonymized": 0}
    with connect(db, read_only=True) as con:
        assert con.execute("SELECT reason FROM rejects").fetchall() == [("expected 10 fields, found 11",)]
        assert con.execute("SELECT customer_id FROM transactions").fetchall() == [("2",)]


def test_rows_only_in_the_write_ahead_log_are_erased_too(tmp_path: Path) -> None:
    """A database left with a .wal (a process that ended without checkpointing): the person's rows
    exist only in the log, and neither file keeps them after the erasure."""
    import duckdb

    live = tmp_path / "live.duckdb"
    con = duckdb.connect(str(live))
    try:
        con.execute("CREATE TABLE transactions (customer_id VARCHAR, order_id VARCHAR, amount DOUBLE)").fetchall()
        con.execute("CHECKPOINT").fetchall()
        con.execute("SET wal_autocheckpoint = '1GB'").fetchall()
        con.execute(f"INSERT INTO transactions VALUES ('{PERSON}', 'w1', 5.0), ('c001', 'w2', 3.0)").fetchall()
        db = tmp_path / "crashed.duckdb"  # a copy taken while the log is not yet checkpointed
        shutil.copyfile(live, db)
        shutil.copyfile(str(live) + ".wal", str(db) + ".wal")
    finally:
        con.close()
    assert PERSON.encode() not in db.read_bytes() and PERSON.encode() in Path(str(db) + ".wal").read_bytes()
    result = erase_customer(str(db), PERSON, transactions="delete")
    assert result.tables["transactions"] == {"deleted": 1, "pseudonymized": 0}
    assert not Path(str(db) + ".wal").exists() and bytes_hits(str(db), PERSON) == []
    with connect(db, read_only=True) as c:
        assert c.execute("SELECT customer_id, amount FROM transactions").fetchall() == [("c001", 3.0)]
