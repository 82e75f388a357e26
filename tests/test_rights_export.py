"""Export of everything held about a person (``export_customer``, ``patron export-customer``).

Expected rows come from independent SQL queries written here per table (and from the hand-counted
:data:`PERSON_ROWS`), never from the export code.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from pathlib import Path
from typing import Any

import pytest

from patron.cli import main
from patron.data.store import connect
from patron.errors import NoDataError
from patron.people.rights import PERSON_COLUMNS, export_customer
from tests.test_rights_data import (
    BYSTANDER,
    EMAIL,
    PERSON,
    PERSON_ROWS,
    PERSON_TABLES,
    build_database,
)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_database(tmp_path_factory.mktemp("export"))


@pytest.fixture(scope="module")
def doc(shop: str) -> dict[str, Any]:
    return export_customer(shop, PERSON)


def _as_json(value: Any) -> Any:
    """What the export should hold for a value SQL returned: timestamps as ISO 8601 UTC with ``Z``
    (patron stores naive UTC), decimals as numbers (written here, independently of the export)."""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S") + "Z" if not value.microsecond else value.isoformat() + "Z"
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


def _independent_rows(db: str, table: str, columns: tuple[str, ...], values: tuple[str, ...]) -> tuple[list[str], list[tuple]]:
    where = " OR ".join(f"{c} IN ({', '.join(repr(v) for v in values)})" for c in columns)
    with connect(db, read_only=True) as con:
        cur = con.execute(f"SELECT * FROM {table} WHERE {where}")
        rows = cur.fetchall()
        return [d[0] for d in cur.description], rows


def _as_key(rec: dict[str, Any]) -> str:
    return json.dumps(rec, sort_keys=True)


@pytest.mark.parametrize("table", sorted(PERSON_TABLES))
def test_every_row_about_the_person_is_exported_with_equal_values(shop: str, doc: dict[str, Any], table: str) -> None:
    names, expected = _independent_rows(shop, table, PERSON_TABLES[table], (PERSON, EMAIL))
    assert len(expected) == PERSON_ROWS[table]  # the fixture holds what we think it holds
    want = []
    for row in expected:
        rec = {n: _as_json(v) for n, v in zip(names, row, strict=True)}
        if table == "customers":
            rec["attributes"] = json.loads(rec["attributes"])
        want.append(rec)
    got = doc["tables"][table]
    assert all(list(rec) == names for rec in got)  # every column, in table order
    assert sorted(map(_as_key, got)) == sorted(map(_as_key, want))


def test_rejects_naming_the_person_are_exported(shop: str, doc: dict[str, Any]) -> None:
    _, expected = _independent_rows(shop, "rejects", ("value",), (PERSON,))
    assert len(expected) == PERSON_ROWS["rejects"] == len(doc["tables"]["rejects"])
    assert doc["tables"]["rejects"][0]["value"] == PERSON
    assert doc["tables"]["rejects"][0]["reason"] == expected[0][6]


def test_export_covers_every_table_with_a_person_column(shop: str, doc: dict[str, Any]) -> None:
    with connect(shop, read_only=True) as con:
        found = {
            n if s == "main" else f"{s}.{n}"
            for s, n in con.execute(
                "SELECT DISTINCT c.table_schema, c.table_name FROM information_schema.columns c JOIN information_schema.tables t "
                "USING (table_catalog, table_schema, table_name) WHERE t.table_type = 'BASE TABLE' AND lower(c.column_name) IN "
                f"({', '.join(repr(p) for p in PERSON_COLUMNS)})"
            ).fetchall()
        }
    assert set(PERSON_TABLES) <= found  # discovery found the hand-made derived tables too
    assert found | {"rejects"} == set(doc["tables"])
    assert "revenue_by_customer" in doc["views"] and doc["views"]["revenue_by_customer"][0]["revenue"] == pytest.approx(54.75)


def test_document_shape_and_attributes(doc: dict[str, Any]) -> None:
    assert doc["customer_id"] == PERSON
    assert dt.datetime.fromisoformat(doc["exported_at"].replace("Z", "+00:00")).tzinfo is not None
    assert doc["identifiers"] == [PERSON, EMAIL]
    assert doc["tables"]["customers"][0]["attributes"] == {"email": EMAIL, "city": "Zqxjville"}
    json.dumps(doc, allow_nan=False)  # strict JSON


def test_other_customers_rows_never_appear(doc: dict[str, Any]) -> None:
    for table, rows in doc["tables"].items():
        cols = PERSON_TABLES.get(table, ("value",))
        for row in rows:
            assert any(row[c] in (PERSON, EMAIL) for c in cols), (table, row)
    text = json.dumps(doc)
    assert BYSTANDER not in text and "c007@example.com" not in text


def test_referral_by_email_is_found_through_the_identity_attribute(doc: dict[str, Any]) -> None:
    referred = sorted(r["referred_id"] for r in doc["tables"]["referrals"])
    assert referred == sorted(["c001", PERSON, EMAIL])


def test_unknown_customer_is_a_one_line_error(shop: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(NoDataError, match="no data about customer 'nobody'"):
        export_customer(shop, "nobody")
    assert main(["export-customer", "nobody", "--db", shop]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nobody" in err


def test_cli_writes_the_document(shop: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "person.json"
    assert main(["export-customer", PERSON, "--db", shop, "--out", str(out)]) == 0
    written = json.loads(out.read_text(encoding="utf-8"))
    assert written["customer_id"] == PERSON and len(written["tables"]["transactions"]) == 4
    capsys.readouterr()
    assert main(["export-customer", PERSON, "--db", shop]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["tables"] == written["tables"]


def test_extra_person_columns_from_the_rules(shop: str, tmp_path: Path) -> None:
    db = str(tmp_path / "extra.duckdb")
    with connect(db) as con:
        con.execute("CREATE TABLE loyalty_cards (member VARCHAR, card VARCHAR)").fetchall()
        con.execute(f"INSERT INTO loyalty_cards VALUES ('{PERSON}', 'gold'), ('x', 'silver')").fetchall()
        con.execute(f"INSERT INTO transactions (customer_id, order_id, occurred_at, amount) VALUES ('{PERSON}', 'o', TIMESTAMP '2024-01-01', 1)").fetchall()
    assert "loyalty_cards" not in export_customer(db, PERSON)["tables"]
    got = export_customer(db, PERSON, config={"rights": {"extra_person_columns": ["member"]}})
    assert got["tables"]["loyalty_cards"] == [{"member": PERSON, "card": "gold"}]


def test_rows_are_matched_by_any_spelling_of_the_persons_identifiers() -> None:
    """The predicate on hand-made rows: an id as text, an e-mail in any case and with spaces, a
    phone in any format (with or without the country code); another customer, a longer id that
    contains the person's, and NULL never match. Rejects: a quoted id in a reason, a malformed
    line holding the e-mail or the id as a field; an unquoted short id in a reason does not."""
    import duckdb

    from patron.people.rights.catalog import Table, match_sql
    from patron.people.rights.person import Person

    person = Person("c-17", ids={"c-17"})
    person.add_email("Ann.Zqxj@Example.org")
    person.add_phone("+1 (555) 010-7788")
    con = duckdb.connect()
    con.execute("CREATE TABLE referrals (referral_id VARCHAR, referrer_id VARCHAR, referred_id VARCHAR)")
    con.execute("""INSERT INTO referrals VALUES ('r1', 'c-17', 'x'), ('r2', 'x', ' ANN.ZQXJ@example.ORG '),
        ('r3', 'x', '555.010.7788'), ('r4', 'x', '+15550107788'), ('r5', 'x', 'c-170'), ('r6', NULL, NULL),
        ('r7', 'x', 'ann@example.org'), ('r8', 'x', '010-7788')""")
    table = Table("memory", "main", "referrals", False, ("referral_id", "referrer_id", "referred_id"),
                  ("VARCHAR",) * 3, person_columns=("referrer_id", "referred_id"))
    where, params = match_sql(table, person)
    assert [r[0] for r in con.execute(f"SELECT referral_id FROM referrals WHERE {where} ORDER BY 1", params).fetchall()] \
        == ["r1", "r2", "r3", "r4"]
    con.execute('CREATE TABLE rejects ("row" BIGINT, value VARCHAR, reason VARCHAR)')
    con.execute("""INSERT INTO rejects VALUES (1, 'c-17', 'duplicate customer_id'), (2, NULL, 'customer_id "c-17" twice'),
        (3, 'c-99,1997-01-01,ann.zqxj@example.org', 'expected 3 fields'), (4, 'c-17;x;y', 'expected 4 fields'),
        (5, 'c-99', 'row 17 of c-17 file'), (6, 'c-99', 'duplicate customer_id "c-99"')""")
    rejects = Table("memory", "main", "rejects", False, ("row", "value", "reason"), ("BIGINT", "VARCHAR", "VARCHAR"))
    where, params = match_sql(rejects, person)
    assert [r[0] for r in con.execute(f'SELECT "row" FROM rejects WHERE {where} ORDER BY 1', params).fetchall()] == [1, 2, 3, 4]


def test_the_streamed_export_is_the_same_document(shop: str, doc: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """export_chunks (what the service streams) writes the document export_customer returns, also
    when rows come in several reads (chunks of 2 rows here)."""
    import patron.people.rights.export as export

    monkeypatch.setattr(export, "EXPORT_CHUNK_ROWS", 2)
    pieces = list(export.export_chunks(shop, PERSON))
    assert len(pieces) > len(doc["tables"]) + 4
    streamed = json.loads("".join(pieces))
    assert streamed.keys() == doc.keys()
    assert {k: v for k, v in streamed.items() if k != "exported_at"} == {k: v for k, v in doc.items() if k != "exported_at"}
    with pytest.raises(NoDataError, match="no data about customer 'nobody'"):
        next(export.export_chunks(shop, "nobody"))
