"""Identity resolution scenarios, on a real DuckDB store with the contract's tables.

Expected person ids follow the documented rule (patron.people.identity docstring): a person's user_id,
else "anon:" + smallest anonymousId; expected hashes are computed here with hashlib.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import datetime, timedelta

import duckdb
import pandas as pd
import pytest

from patron.data.store import connect
from patron.people.identity import (
    Resolver,
    find_customer,
    follow_merges,
    identities_of,
    list_merges,
    normalize_identifier,
    resolve_events,
)
from patron.people.identity.tables import IDENTITY_TABLES

T0 = datetime(2024, 5, 1, 9, 0)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    with connect(":memory:") as c:
        c.execute("CREATE TABLE events (message_id VARCHAR, customer_id VARCHAR, type VARCHAR)")
        yield c


class Writer:
    """What the events writer does per batch: resolve, follow merges, then insert its rows."""

    def __init__(self, con: duckdb.DuckDBPyConnection, unique=("user_id",)) -> None:
        self.con = con
        self.resolver = Resolver(list(unique))

    def send(self, *events: tuple[str, int, dict[str, str], dict | None]):
        rows = [(mid, T0 + timedelta(minutes=m), k, v) for mid, m, ids, _ in events for k, v in ids.items()]
        frame = pd.DataFrame(rows, columns=["message_id", "occurred_at", "kind", "value"])
        self.con.execute("BEGIN")
        res = self.resolver.resolve(self.con, frame)
        follow_merges(self.con, res)
        person = res.customer_of
        for mid, m, _, row in events:
            cid = person[mid]
            self.con.execute("INSERT INTO events VALUES (?, ?, ?)", [mid, cid, (row or {}).get("type", "track")])
            if row and row.get("type") == "order":
                self.con.execute(
                    "INSERT INTO transactions (customer_id, order_id, occurred_at, amount, ingest_id) VALUES (?, ?, ?, ?, ?)",
                    [cid, row["order_id"], T0 + timedelta(minutes=m), row["amount"], mid])
            if row and row.get("type") == "consent":
                self.con.execute(
                    "INSERT INTO consents (consent_id, customer_id, purpose, channel, status, occurred_at, ingest_id) "
                    "VALUES (?, ?, 'marketing', 'email', 'granted', ?, ?)", [mid, cid, T0 + timedelta(minutes=m), mid])
            if row and row.get("type") == "contact":
                self.con.execute(
                    "INSERT INTO contacts (contact_id, customer_id, occurred_at, channel, kind, ingest_id) "
                    "VALUES (?, ?, ?, 'email', 'delivered', ?)", [mid, cid, T0 + timedelta(minutes=m), mid])
        self.con.execute("COMMIT")
        return res


def test_anonymous_browse_then_identify_moves_orders_contacts_consents_to_the_user(con):
    w = Writer(con)
    w.send(("m1", 0, {"anonymous_id": "a1"}, {"type": "page"}))
    w.send(("m2", 1, {"anonymous_id": "a1"}, {"type": "order", "order_id": "o1", "amount": 30.0}),
           ("m3", 2, {"anonymous_id": "a1"}, {"type": "consent"}),
           ("m4", 3, {"anonymous_id": "a1"}, {"type": "contact"}))
    assert con.execute("SELECT customer_id FROM transactions").fetchall() == [("anon:a1",)]
    res = w.send(("m5", 4, {"anonymous_id": "a1", "user_id": "u-42", "email": "Kim@Example.com"}, {"type": "identify"}))
    assert res.remapped == {"anon:a1": "u-42"}
    for table in ("transactions", "consents", "contacts", "events"):
        assert con.execute(f"SELECT DISTINCT customer_id FROM {table}").fetchall() == [("u-42",)], table
    w.send(("m6", 5, {"anonymous_id": "a1"}, {"type": "order", "order_id": "o2", "amount": 12.5}))
    assert con.execute("SELECT order_id, customer_id FROM transactions ORDER BY 1").fetchall() == [
        ("o1", "u-42"), ("o2", "u-42")]


def test_shared_device_with_two_users_stays_two_people_and_the_refusal_is_recorded(con):
    w = Writer(con)
    w.send(("m1", 0, {"anonymous_id": "tablet", "user_id": "alice"}, None))
    res = w.send(("m2", 10, {"anonymous_id": "tablet", "user_id": "bob"}, None))
    assert res.customer_of == {"m2": "bob"}
    assert find_customer(con, "alice") == "alice"
    assert find_customer(con, "bob") == "bob"
    assert find_customer(con, "tablet") == "alice"  # the earlier link (by event time) holds
    refused = [m for m in list_merges(con) if m["reason"].startswith("refused")]
    assert len(refused) == 1
    assert refused[0]["cause_message_id"] == "m2"
    assert {refused[0]["customer_id"], refused[0]["merged_id"]} == {"alice", "bob"}
    assert "user_id" in refused[0]["reason"]
    assert [i["value"] for i in identities_of(con, "bob")] == ["bob"]


def test_email_seen_in_two_anonymous_sessions_links_them_and_is_never_stored_in_clear(con):
    w = Writer(con)
    w.send(("m1", 0, {"anonymous_id": "s2", "email": "  Lee@Mail.org"}, None))
    w.send(("m2", 5, {"anonymous_id": "s1"}, {"type": "order", "order_id": "o1", "amount": 5.0}))
    w.send(("m3", 9, {"anonymous_id": "s1", "email": "lee@mail.ORG "}, None))
    assert find_customer(con, "s1") == find_customer(con, "s2") == "anon:s1"
    assert con.execute("SELECT customer_id FROM transactions").fetchall() == [("anon:s1",)]
    ids = {(i["kind"], i["value"]) for i in identities_of(con, "anon:s1")}
    assert ids == {("anonymous_id", "s1"), ("anonymous_id", "s2"), ("email", sha("lee@mail.org"))}
    for table in IDENTITY_TABLES:
        text = con.execute(f"SELECT string_agg(CAST(COLUMNS(*) AS VARCHAR), '|') FROM {table}").fetchall()
        assert "mail.org" not in json.dumps(text, default=str).lower(), table


def test_alias_previous_id_joins_the_user(con):
    """An alias event: the writer passes previousId as anonymous_id and userId as user_id."""
    w = Writer(con)
    w.send(("m1", 0, {"anonymous_id": "old-device"}, {"type": "contact"}))
    res = w.send(("m2", 1, {"user_id": "u7", "anonymous_id": "old-device"}, {"type": "alias"}))
    assert res.customer_of == {"m2": "u7"}
    assert con.execute("SELECT customer_id FROM contacts").fetchall() == [("u7",)]
    merges = list_merges(con, "u7")
    assert [(m["customer_id"], m["merged_id"], m["cause_message_id"]) for m in merges] == [("u7", "anon:old-device", "m2")]
    assert merges[0]["reason"].startswith("merged")


def test_merges_list_their_causes(con):
    w = Writer(con)
    w.send(("m1", 0, {"anonymous_id": "a"}, None), ("m2", 0, {"anonymous_id": "b"}, None))
    w.send(("m3", 1, {"anonymous_id": "a", "email": "x@y.z"}, None))
    w.send(("m4", 2, {"anonymous_id": "b", "email": "x@y.z"}, None))
    w.send(("m5", 3, {"anonymous_id": "b", "user_id": "U"}, None))
    rows = [(m["customer_id"], m["merged_id"], m["cause_message_id"], m["cause_kind"]) for m in list_merges(con)]
    # customer_id of a merge record follows the surviving person (data-rights tools find it by U)
    assert sorted(rows) == sorted([("U", "anon:b", "m4", "anonymous_id"), ("U", "anon:a", "m5", "anonymous_id")])
    assert "anonymous_id=b seen with email=" + sha("x@y.z") in list_merges(con)[1]["reason"]
    assert [m["merged_id"] for m in list_merges(con, "U")] == ["anon:a", "anon:b"]
    assert list_merges(con, limit=1)[0]["cause_message_id"] == "m5"


def test_find_customer_by_each_kind_of_identifier(con):
    w = Writer(con, unique=("user_id", "email"))
    w.send(("m1", 0, {"anonymous_id": "anon-9", "user_id": "c-1", "email": "Ana@Shop.io", "phone": "+33 6 12 34 56 78",
                      "loyalty_card": " LC-77 "}, None))
    assert find_customer(con, "c-1") == "c-1"
    assert find_customer(con, "anon-9") == "c-1"
    assert find_customer(con, " ana@shop.IO") == "c-1"
    assert find_customer(con, sha("ana@shop.io")) == "c-1"
    assert find_customer(con, "+33612345678") == "c-1"
    assert find_customer(con, "+33 (6) 12-34-56-78", kind="phone") == "c-1"
    assert find_customer(con, "LC-77") == "c-1"
    assert find_customer(con, "ANA@shop.io", kind="email") == "c-1"
    assert find_customer(con, "nobody") is None
    assert find_customer(con, "anon-9", kind="user_id") is None


def test_find_customer_knows_persons_of_the_customers_table(con):
    con.execute("INSERT INTO customers (customer_id) VALUES ('csv-1')")
    assert find_customer(con, "csv-1") == "csv-1"


def test_unique_email_keeps_two_users_sharing_an_address_apart_only_when_configured(con):
    w = Writer(con, unique=("email",))  # user_id not unique: an e-mail joins two user ids
    w.send(("m1", 0, {"user_id": "u1", "email": "fam@x.io"}, None))
    w.send(("m2", 1, {"user_id": "u2", "email": "fam@x.io"}, None))
    assert find_customer(con, "u2") == find_customer(con, "u1") == "u1"


def test_known_traits_win_over_anonymous_profile_when_customers_merge(con):
    con.execute("""INSERT INTO customers (customer_id, first_seen, attributes) VALUES
        ('anon:a1', TIMESTAMP '2024-01-01', '{"plan": "free", "color": "red"}'),
        ('u1', TIMESTAMP '2024-03-01', '{"plan": "pro"}')""")
    w = Writer(con)
    w.send(("m1", 0, {"anonymous_id": "a1"}, None), ("m0", 0, {"user_id": "u1"}, None))
    w.send(("m2", 1, {"anonymous_id": "a1", "user_id": "u1"}, None))
    rows = con.execute("SELECT customer_id, first_seen, attributes FROM customers").fetchall()
    assert len(rows) == 1
    cid, first_seen, attrs = rows[0]
    assert (cid, first_seen) == ("u1", datetime(2024, 1, 1))
    assert json.loads(attrs) == {"plan": "pro", "color": "red"}


def test_replaying_a_batch_changes_no_identity(con):
    batch = pd.DataFrame([("m1", T0, "anonymous_id", "a"), ("m1", T0, "user_id", "u"),
                          ("m2", T0, "anonymous_id", "b"), ("m2", T0, "email", "e@x.io")],
                         columns=["message_id", "occurred_at", "kind", "value"])
    resolve_events(con, batch)
    before = sorted(con.execute("SELECT kind, value, customer_id FROM identities").fetchall())
    res = resolve_events(con, batch)
    assert res.remapped == {} and res.merges == []
    assert sorted(con.execute("SELECT kind, value, customer_id FROM identities").fetchall()) == before


def test_rolled_back_batch_is_forgotten_after_reset(con):
    w = Writer(con)
    w.send(("m1", 0, {"anonymous_id": "a"}, None))
    con.execute("BEGIN")
    w.resolver.resolve(con, pd.DataFrame([("m2", T0, "anonymous_id", "a"), ("m2", T0, "user_id", "u")],
                                         columns=["message_id", "occurred_at", "kind", "value"]))
    con.execute("ROLLBACK")
    w.resolver.reset()
    assert find_customer(con, "a") == "anon:a"
    w.send(("m3", 1, {"anonymous_id": "a", "user_id": "v"}, None))
    assert find_customer(con, "a") == "v"
    assert find_customer(con, "u") is None


def test_normalize_identifier():
    assert normalize_identifier("email", " A@B.c ") == sha("a@b.c")
    assert normalize_identifier("phone", "+1 (555) 010-2030") == "+15550102030"
    assert normalize_identifier("phone", "0612 34") == "061234"
    assert normalize_identifier("user_id", 42) == "42"
    assert normalize_identifier("user_id", "  ") is None
    assert normalize_identifier("Loyalty_Card", " X1 ") == "X1"
    assert normalize_identifier("email", None) is None


def test_observations_as_rows_are_read_like_a_frame_and_stored_with_their_times(con):
    """The writer's fast path (a list of tuples, no frame) gives the rows and the stored
    observations written out here by hand; an e-mail is stored as its SHA-256 only."""
    from patron.people.identity import read_observations

    rows = [("m1", T0, "user_id", "u1"), ("m1", T0, "Email", " U1@X.io "), ("m2", T0 + timedelta(hours=1), "anonymous_id", "a9"),
            ("m2", T0 + timedelta(hours=1), "phone", "  ")]
    expected = [("m1", T0, "user_id", "u1"), ("m1", T0, "email", sha("u1@x.io")),
                ("m2", T0 + timedelta(hours=1), "anonymous_id", "a9")]
    assert read_observations(rows) == expected
    assert read_observations(pd.DataFrame(rows, columns=["message_id", "occurred_at", "kind", "value"])) == expected
    res = Resolver().resolve(con, rows)
    assert res.customer_of == {"m1": "u1", "m2": "anon:a9"}
    stored = con.execute("SELECT message_id, occurred_at, kind, value, is_primary, customer_id "
                         "FROM identity_observations ORDER BY message_id, kind").fetchall()
    assert stored == [("m1", T0, "email", sha("u1@x.io"), False, "u1"), ("m1", T0, "user_id", "u1", True, "u1"),
                      ("m2", T0 + timedelta(hours=1), "anonymous_id", "a9", True, "anon:a9")]
    links = con.execute("SELECT kind, value, message_id, occurred_at FROM identity_links ORDER BY kind").fetchall()
    assert links == [("email", sha("u1@x.io"), "m1", T0), ("user_id", "u1", "m1", T0)]


def test_replay_keeps_unique_values_when_the_lower_ranked_root_survives():
    """u1 joins a1, then a1 brings e-mail A (the person's root stays u1, the earlier identifier):
    the person now holds e-mail A, so a later link of a1 with e-mail B must be refused. (A merge
    that kept the surviving root's unique values stale once let B in.)"""
    from patron.people.identity import replay

    t = datetime(2024, 3, 1)
    u1, a1, ea, eb = ("user_id", "u1"), ("anonymous_id", "a1"), ("email", "A"), ("email", "B")
    links = [((t, "m1"), (u1, a1)), ((t, "m2"), (ea, a1)), ((t, "m3"), (eb, a1))]
    persons, refusals = replay(links, [u1, a1, ea, eb], {"user_id", "email"})
    assert {u1, a1, ea} in persons and {eb} in persons
    assert [(f.rank, f.kind, f.values) for f in refusals] == [((t, "m3"), "email", ("A", "B"))]


def test_cluster_labels_never_name_an_identifier_and_old_ones_are_renamed(con):
    """A shared device seen with two users is a conflicted cluster; its label is opaque, and a
    label of an older database (named after the cluster's first identifier) is renamed on load."""
    w = Writer(con)
    w.send(("m1", 0, {"user_id": "u-first", "anonymous_id": "dev"}, None),
           ("m2", 1, {"user_id": "u-second", "anonymous_id": "dev"}, None))
    labels = {r[0] for r in con.execute("SELECT DISTINCT cluster_id FROM identities WHERE cluster_id IS NOT NULL").fetchall()}
    assert len(labels) == 1 and not any(v in label for label in labels for v in ("u-first", "u-second", "dev", "="))
    con.execute("UPDATE identities SET cluster_id = 'c:user_id=u-first' WHERE cluster_id IS NOT NULL")
    Resolver().load(con)
    renamed = {r[0] for r in con.execute("SELECT DISTINCT cluster_id FROM identities WHERE cluster_id IS NOT NULL").fetchall()}
    assert len(renamed) == 1 and "u-first" not in next(iter(renamed))
