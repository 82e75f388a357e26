"""Customer attributes as typed profile columns: inferred and declared types, hostile names (quoted,
never spliced), rules, ``equity --by``, member export."""

from __future__ import annotations

import json
import time

import pandas as pd
import pytest

from patron.data.ingest import ingest
from patron.data.store import connect, reader
from patron.errors import InputError
from patron.relationship.attributes import attribute_schema
from patron.relationship.profiles import build_profiles
from patron.relationship.segments import equity_by, members, write_members

HOSTILE = ['fav "colour"', "it's", "drop table; --", "SELECT", "ville été", "a`b", "Order By"]
"""Attribute names with double and single quotes, a statement separator and comment, SQL words,
spaces, accents and a backtick."""

TX = "customer_id,occurred_at,amount\na,2024-01-01,10\na,2024-02-01,20\nb,2024-01-05,50\nc,2024-01-07,5\nc,2024-03-07,15\n"


def _db(db: str, tmp_path, customers: pd.DataFrame) -> str:
    (tmp_path / "tx.csv").write_text(TX)
    ingest(tmp_path / "tx.csv", kind="transactions", db=db)
    customers.to_csv(tmp_path / "customers.csv", index=False)
    ingest(tmp_path / "customers.csv", kind="customers", db=db)
    return db


@pytest.fixture
def attr_db(db, tmp_path) -> str:
    frame = pd.DataFrame({
        "customer_id": ["a", "b", "c", "d"],
        "city": ["Lyon", "Paris", "Lyon", None],
        "vip": ["true", "FALSE", "true", None],
        "joined": ["2023-01-02", "2023-02-03", "2020-01-01 08:30", None],
        "score": ["1.5", "2", None, "-3"],
        "mixed": ["12", "abc", "3", None],
        "channel": ["web", "store", None, "web"],
    })
    return _db(db, tmp_path, frame)


def test_types_are_inferred_from_all_values(attr_db):
    with reader(attr_db) as con:
        schema = {a.name: a for a in attribute_schema(con).columns}
    assert {k: a.type for k, a in schema.items()} == {
        "city": "text", "vip": "boolean", "joined": "date", "score": "number", "mixed": "text", "channel": "text"}
    assert schema["mixed"].note == "mixed values (2 numbers among 3): kept as text"
    assert schema["score"].customers == 3 and not schema["score"].declared
    p = build_profiles(attr_db).set_index("customer_id")
    assert p.loc["a", "vip"] is True or p.loc["a", "vip"] == True  # noqa: E712 (pandas boolean)
    assert p.loc["b", "vip"] == False  # noqa: E712
    assert p.loc["d", "score"] == -3.0 and p.loc["c", "joined"] == pd.Timestamp("2020-01-01 08:30")
    assert p.loc["b", "mixed"] == "abc"


def test_declared_types_win_and_unreadable_values_are_counted(attr_db):
    config = {"attributes": {"mixed": "number", "score": "text"}}
    with reader(attr_db) as con:
        schema = {a.name: a for a in attribute_schema(con, config).columns}
    assert schema["mixed"].type == "number" and schema["mixed"].declared
    assert schema["mixed"].note == "1 values are not numbers and are missing"
    p = build_profiles(attr_db, config=config).set_index("customer_id")
    assert p.loc["a", "mixed"] == 12.0 and pd.isna(p.loc["b", "mixed"])
    assert p.loc["a", "score"] == "1.5"
    with pytest.raises(InputError, match=r"\[attributes\] mixed"):
        build_profiles(attr_db, config={"attributes": {"mixed": "integer"}})


def test_attributes_in_rules_and_equity_by(attr_db):
    build_profiles(attr_db)
    assert members(attr_db, "city = 'Lyon' and vip").tolist() == ["a", "c"]
    assert members(attr_db, "score >= 2 or joined < '2021-01-01'").tolist() == ["b", "c"]
    assert members(attr_db, "channel = 'web' and city is null").tolist() == ["d"]
    table = equity_by(attr_db, "city").set_index("city")
    assert table.loc["Lyon", "customers"] == 2 and table.loc["Paris", "customers"] == 1
    with pytest.raises(InputError, match=r"^by: unknown profile column 'cty' \(did you mean city\?\)$"):
        equity_by(attr_db, "cty")
    with pytest.raises(InputError, match=r'unknown column "citi" at character 1 \(did you mean city\?\)'):
        members(attr_db, "citi = 'Lyon'")
    with pytest.raises(InputError, match=r'cannot compare number column "score" with a text value'):
        members(attr_db, "score = 'high'")


def test_hostile_attribute_names_are_quoted_everywhere(db, tmp_path):
    frame = pd.DataFrame({"customer_id": ["a", "b", "c"], **{n: [f"v{i}", f"w{i}", None] for i, n in enumerate(HOSTILE)}})
    frame["n°"] = ["1", "2", "3"]
    _db(db, tmp_path, frame)
    p = build_profiles(db)
    for n in [*HOSTILE, "n°"]:
        assert n in p.columns, n
    with connect(db) as con:  # no statement ran from a name: every table is still there
        assert con.execute("SELECT count(*) FROM customers").fetchone()[0] == 3
    for i, n in enumerate(HOSTILE):
        quoted = "`" + n.replace("`", "``") + "`"
        assert members(db, f"{quoted} = 'w{i}'").tolist() == ["b"], n
        assert members(db, f"{quoted} is null").tolist() == ["c"], n
        table = equity_by(db, n)
        assert sorted(table[n].dropna()) == [f"v{i}", f"w{i}"], n
    assert members(db, "`n°` > 1").tolist() == ["b", "c"]
    rules = tmp_path / "r.toml"
    rules.write_text("[segments]\nodd = " + json.dumps('`fav "colour"` = \'v0\'') + "\n")
    out = tmp_path / "m.csv"
    assert write_members(db, "odd", out, rules=rules) == 1
    got = pd.read_csv(out, dtype=str)
    assert got["customer_id"].tolist() == ["a"]
    for i, n in enumerate(HOSTILE):
        assert got.loc[0, n] == f"v{i}"


def test_names_that_are_profile_columns_or_differ_only_in_case_are_left_out(db, tmp_path):
    frame = pd.DataFrame({"customer_id": ["a", "b"], "clv": ["1", "2"], "City": ["x", "y"], "city": ["p", "q"]})
    _db(db, tmp_path, frame)
    with reader(db) as con:
        schema = attribute_schema(con, reserved=frozenset({"clv"}))
    assert [a.name for a in schema.columns] == ["City"]
    assert schema.skipped == {"city": "another key differs only in case", "clv": "a profile column has this name"}
    p = build_profiles(db)
    assert "City" in p.columns and p["clv"].dtype.kind == "f"


def test_members_export_and_formula_guard_of_text_attributes(attr_db, tmp_path):
    rules = tmp_path / "r.toml"
    rules.write_text('[segments]\nlyon = "city = \'Lyon\'"\n')
    with connect(attr_db) as con:
        con.execute("""UPDATE customers SET attributes = json_merge_patch(attributes, '{"note": "=HYPERLINK(1)"}') WHERE customer_id = 'a'""")
    out = tmp_path / "m.csv"
    assert write_members(attr_db, "lyon", out, rules=rules) == 2
    got = pd.read_csv(out, dtype=str).set_index("customer_id")
    assert got.loc["a", "city"] == "Lyon" and got.loc["a", "vip"] == "true" and float(got.loc["a", "score"]) == 1.5
    assert got.loc["a", "note"] == "'=HYPERLINK(1)"  # text attributes guarded like the other text cells
    pq = tmp_path / "m.parquet"
    write_members(attr_db, "lyon", pq, rules=rules)
    assert pd.read_parquet(pq).set_index("customer_id").loc["c", "joined"] == pd.Timestamp("2020-01-01 08:30")


def test_identify_traits_become_typed_profile_columns_in_the_service(tmp_path):
    """Traits of identify calls (stored as customers.attributes by the service) are columns of the
    refreshed profiles: in the single view, in segment rules and in the member list."""
    from fastapi.testclient import TestClient

    from patron.service import create_app
    from tests.service_support import create_keys

    db = str(tmp_path / "s.duckdb")
    keys = create_keys(db)
    events = []
    for i, (user, city, plan) in enumerate([("u1", "Lyon", "gold"), ("u2", "Paris", "silver"), ("u3", "Lyon", "silver")]):
        events.append({"type": "identify", "userId": user, "messageId": f"i{i}", "timestamp": "2024-01-01T00:00:00Z",
                       "traits": {"city": city, "plan": plan, "fav colour": "red", "vip": i == 0}})
        events += [{"type": "track", "event": "Order Completed", "userId": user, "messageId": f"o{i}{j}", "timestamp": f"{day}T10:00:00Z",
                    "properties": {"order_id": f"{user}-{j}", "total": 10.0 * (i + j + 1), "currency": "EUR"}}
                   for j, day in enumerate(("2024-01-02", "2024-02-02", "2024-03-02"))]
    rules = {"segments": {"gold_lyon": "plan = 'gold' and city = 'Lyon' and vip", "red": "`fav colour` = 'red'"}}
    with TestClient(create_app(db, config=rules), raise_server_exceptions=False) as c:
        assert c.post("/v1/batch", auth=(keys["write"], ""), json={"batch": events}).status_code == 200
        c.get("/v1/customers/u3", auth=(keys["read"], ""))  # a read waits for the journaled events to be applied
        deadline, state = time.monotonic() + 120, None
        while state != "succeeded" and time.monotonic() < deadline:  # the purchases may still be applying
            state = c.post("/v1/refresh", params={"wait": "true"}, auth=(keys["admin"], "")).json().get("state")
            time.sleep(0.2 if state != "succeeded" else 0)
        assert state == "succeeded"
        scores = c.get("/v1/customers/u1", auth=(keys["read"], "")).json()["scores"]
        assert (scores["city"], scores["plan"], scores["vip"], scores["region"]) == ("Lyon", "gold", True, "France")
        assert (scores["lat"], scores["lon"], scores["location_source"]) == (45.74906, 4.84789, "city")
        members = c.get("/v1/segments/gold_lyon/members", auth=(keys["read"], "")).json()["members"]
        assert [(m["customer_id"], m["plan"], m["vip"]) for m in members] == [("u1", "gold", True)]
        assert c.get("/v1/segments/red/members", auth=(keys["read"], "")).json()["total"] == 3


def test_status_and_loyalty_by_an_attribute(attr_db, capsys):
    from patron.cli import main
    from patron.relationship.segments.breakdown import breakdown_by

    # a and c (Lyon) bought on two days, b (Paris) on one; d (no city) never bought: a prospect
    table = breakdown_by(attr_db, "city").set_index("city", drop=False)
    lyon, paris = table.loc["Lyon"], table.loc["Paris"]
    assert (lyon["customers"], lyon["return_rate"], lyon["prospect"]) == (2, 1.0, 0)
    assert (paris["customers"], paris["return_rate"]) == (1, 0.0)
    none = table[table["city"].isna()].iloc[0]
    assert (none["customers"], none["prospect"]) == (1, 1)
    assert table["customers"].sum() == 4 and abs(table["equity_share"].sum() - 1) < 1e-9
    assert main(["status", "--db", attr_db, "--by", "city", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["by"] == "city" and {r["city"]: r["customers"] for r in got["rows"] if r["city"]} == {"Lyon": 2, "Paris": 1}
    assert main(["loyalty", "--db", attr_db, "--by", "vip", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert {str(r["vip"]): r["customers"] for r in rows} == {"True": 2, "False": 1, "None": 1}
    assert main(["status", "--db", attr_db, "--by", "cty"]) == 2
    assert "unknown profile column 'cty' (did you mean city?)" in capsys.readouterr().err
