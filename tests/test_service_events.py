"""The Segment event API over real HTTP (``patron serve`` on loopback), checked in the database file
after the server stopped.

One server for the module: the fixture sends every scenario, stops the server (SIGTERM: queued work
is committed), snapshots row counts, restarts it, replays the batches and stops it again. Expected
values are written out by hand from the events sent (Segment e-commerce, email and consent specs).
"""

from __future__ import annotations

import gzip
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from tests.service_support import running_service

TABLES = ("events", "dead_letters", "transactions", "contacts", "consents", "customers")

T0 = "2024-03-01T10:00:00Z"


def _ev(kind: str, mid: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "messageId": mid, "timestamp": T0, **fields}


ORDERS = [
    # revenue as text, lower-case currency: stored 12.5 EUR (ingest accepts numeric text, upper-cases currency)
    _ev("track", "o-1", userId="alice", event="Order Completed",
        properties={"order_id": "A1", "revenue": "12.50", "currency": "eur", "discount": 2,
                    "products": [{"price": 7, "quantity": 2, "category": "books"}]}),
    # no revenue/total: amount = 3 * 4 + 1 * 5.5 = 17.5 from products
    _ev("track", "o-2", userId="bob", event="Order Completed",
        properties={"order_id": "B1", "currency": "USD",
                    "products": [{"price": 4, "quantity": 3, "category": "toys"}, {"price": 5.5}]}),
    # partial refund of A1 (total 5) and full refund of B1 (no amount: minus the stored 17.5)
    _ev("track", "r-1", userId="alice", event="Order Refunded", properties={"order_id": "A1", "total": 5}),
    _ev("track", "r-2", userId="bob", event="Order Refunded", properties={"order_id": "B1"}),
]

CONTACTS = [
    _ev("track", f"c-{name}", userId="alice", event=name, properties={"campaign_id": "spring"})
    for name in ("Email Sent", "Email Delivered", "Email Opened", "Email Link Clicked", "Email Bounced",
                 "Email Marked as Spam", "Unsubscribed", "SMS Delivered")
]
CONTACT_KINDS = {  # Segment email spec name -> (channel, kind) of the contacts contract
    "c-Email Sent": ("email", "sent"), "c-Email Delivered": ("email", "delivered"),
    "c-Email Opened": ("email", "opened"), "c-Email Link Clicked": ("email", "clicked"),
    "c-Email Bounced": ("email", "bounced"), "c-Email Marked as Spam": ("email", "complained"),
    "c-Unsubscribed": ("email", "unsubscribed"), "c-SMS Delivered": ("sms", "delivered"),
}

CONSENT = [
    _ev("track", "k-1", userId="alice", event="Consent Updated",
        properties={"purpose": "marketing", "channel": "email", "status": "granted",
                    "lawful_basis": "consent", "policy_version": "v3"}),
    {"type": "track", "messageId": "k-2", "userId": "bob", "event": "Segment Consent Preference Updated",
     "timestamp": T0, "context": {"consent": {"categoryPreferences": {"Advertising": False, "Analytics": True}}}},
]

REPLAYED = [
    _ev("track", f"rp-{i}", userId="hal", event="Order Completed", properties={"order_id": f"H{i}", "revenue": i})
    for i in (1, 2, 3)
]
"""Order events sent several times each (the same messageId): each is stored once, its order once."""

MIXED = {
    "context": {"library": {"name": "analytics-python", "version": "2.3.2"}},
    "batch": [
        _ev("identify", "m-0", userId="carol", traits={"email": " Carol@Example.com ", "plan": "gold"}),
        _ev("track", "m-1", userId="carol", event="Order Completed", properties={"revenue": 10}),  # no order_id
        _ev("track", "m-2", userId="carol"),  # no event name
        _ev("track", "m-3", userId="carol", event="Order Completed",
            properties={"order_id": "C1", "revenue": "lots"}),  # non-numeric revenue
        _ev("track", "m-4", userId="carol", event="Consent Updated",
            properties={"purpose": "marketing", "status": "maybe"}),  # unknown status
        _ev("page", "m-5", anonymousId="dev-9", name="Home"),
        _ev("track", "m-6", userId="carol", event="Product Viewed", timestamp="yesterday"),
        _ev("track", "m-7", userId="carol", event="Big", properties={"blob": "x" * 40_000}),  # over 32 KB
    ],
}
MIXED_BAD = {1: "order_id is required", 2: "track: event is required", 3: 'non-numeric properties.revenue "lots"',
             4: 'status "maybe" is not one of granted, denied, revoked', 6: "timestamp: not an ISO-8601 time",
             7: "over the 32 KB limit"}


def _counts(db: Path) -> dict[str, int]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in TABLES}


def _post(c: httpx.Client, path: str, body: Any) -> httpx.Response:
    return c.post(path, json=body)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Send every scenario, stop, snapshot, restart, replay, stop: what each step returned."""
    db = tmp_path_factory.mktemp("events") / "events.duckdb"
    out: dict[str, Any] = {"db": db}
    with running_service(db) as svc:
        w = svc.client("write")
        out["singles"] = {
            kind: _post(w, f"/v1/{kind}", body) for kind, body in {
                "identify": {"userId": "alice", "messageId": "s-identify", "traits": {"email": "ALICE@x.org", "name": "Alice"}},
                "track": {"userId": "alice", "messageId": "s-track", "event": "Product Viewed"},
                "page": {"anonymousId": "dev-1", "messageId": "s-page", "name": "Home"},
                "screen": {"anonymousId": "dev-1", "messageId": "s-screen", "name": "Cart"},
                "group": {"userId": "alice", "messageId": "s-group", "groupId": "acme"},
                "alias": {"userId": "alice", "previousId": "dev-1", "messageId": "s-alias"},
            }.items()
        }
        out["orders"] = _post(w, "/v1/batch", {"batch": ORDERS})
        out["contacts"] = _post(w, "/v1/batch", {"batch": CONTACTS})
        out["consent"] = _post(w, "/v1/batch", {"batch": CONSENT})
        out["mixed"] = _post(w, "/v1/batch", MIXED)
        # clock skew: the client's clock is 2 h ahead; the event happened 5 min before it was sent
        client_now = datetime.now(UTC) + timedelta(hours=2)
        out["skew_window"] = (datetime.now(UTC).replace(tzinfo=None), None)
        out["skew"] = _post(w, "/v1/track", {
            "userId": "dave", "messageId": "skew-1", "event": "Product Viewed",
            "originalTimestamp": (client_now - timedelta(minutes=5)).isoformat(),
            "sentAt": client_now.isoformat()})
        out["skew_window"] = (out["skew_window"][0], datetime.now(UTC).replace(tzinfo=None))
        # SDK retries: the same event again and again, one request after another and all at once
        out["replay_seq"] = [_post(w, "/v1/track", REPLAYED[0]) for _ in range(3)]
        out["replay_seq"] += [_post(w, "/v1/batch", {"batch": [REPLAYED[1], REPLAYED[1]]}) for _ in range(2)]
        with ThreadPoolExecutor(8) as pool:
            out["replay_conc"] = list(pool.map(
                lambda _: httpx.post(svc.url + "/v1/track", json=REPLAYED[2], auth=svc.auth("write"), timeout=30),
                range(16)))
        out["same_order"] = _post(w, "/v1/track", {**REPLAYED[0], "messageId": "rp-4"})  # order H1 again
        out["no_id"] = [_post(w, "/v1/track", {"userId": "erin", "event": "Product Viewed", "timestamp": T0})
                        for _ in range(2)]
        out["single_bad"] = _post(w, "/v1/track", {"userId": "erin", "messageId": "bad-1"})
        out["single_big"] = _post(w, "/v1/track", {"userId": "erin", "messageId": "big-1", "event": "Big",
                                                   "properties": {"blob": "y" * 40_000}})
        out["batch_big"] = w.post("/v1/batch", content=json.dumps({"batch": [
            _ev("track", f"huge-{i}", userId="erin", event="E", properties={"blob": "z" * 20_000})
            for i in range(30)]}), headers={"Content-Type": "application/json"})
        gz = gzip.compress(json.dumps({"batch": [_ev("track", "gz-1", userId="frank", event="Product Viewed")]}).encode())
        out["gzip"] = w.post("/v1/batch", content=gz,
                             headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
        out["dead_admin"] = svc.client("admin").get("/v1/dead-letters", params={"limit": 50})
        out["dead_write"] = w.get("/v1/dead-letters")
        out["no_key"] = httpx.post(svc.url + "/v1/track", json={"userId": "x", "event": "E"})
        svc.stop()
        out["before"] = _counts(db)
        svc.start()
        w = svc.client("write")
        out["replay"] = [_post(w, "/v1/batch", {"batch": b}) for b in (ORDERS, CONTACTS, CONSENT)]
        out["replay"].append(_post(w, "/v1/batch", MIXED))
        out["replay"] += [_post(w, "/v1/track", r) for r in REPLAYED]
        # a new event (messageId rp-5) for an order stored before the restart: stored, no second order row
        out["same_order_later"] = _post(w, "/v1/track", {**REPLAYED[0], "messageId": "rp-5"})
        svc.stop()
        out["after"] = _counts(db)
    return out


def _rows(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def test_each_event_type_is_stored(run: dict[str, Any]) -> None:
    for kind, r in run["singles"].items():
        assert r.status_code == 200, (kind, r.text)
        assert r.json() == {"success": True}
    got = dict(_rows(run["db"], "SELECT message_id, type FROM events WHERE message_id LIKE 's-%'"))
    assert got == {f"s-{k}": k for k in ("identify", "track", "page", "screen", "group", "alias")}


def test_order_completed_becomes_a_transaction(run: dict[str, Any]) -> None:
    assert run["orders"].status_code == 200 and run["orders"].json() == {"success": True}
    rows = _rows(run["db"], "SELECT order_id, customer_id, occurred_at, amount, currency, category, discount "
                             "FROM transactions WHERE order_id IN ('A1', 'B1') ORDER BY order_id")
    t0 = datetime(2024, 3, 1, 10, 0)
    assert rows == [("A1", "alice", t0, 12.5, "EUR", "books", 2.0),
                    ("B1", "bob", t0, 17.5, "USD", "toys", None)]


def test_refunds_are_negative_rows_beside_the_order(run: dict[str, Any]) -> None:
    rows = _rows(run["db"], "SELECT order_id, customer_id, amount, currency FROM transactions "
                             "WHERE amount < 0 ORDER BY order_id")
    assert rows == [("A1/refund/r-1", "alice", -5.0, "EUR"), ("B1/refund/r-2", "bob", -17.5, "USD")]


def test_email_and_sms_events_become_contacts(run: dict[str, Any]) -> None:
    assert run["contacts"].status_code == 200
    rows = _rows(run["db"], "SELECT contact_id, customer_id, channel, kind, campaign_id FROM contacts")
    assert {r[0]: (r[2], r[3]) for r in rows} == CONTACT_KINDS
    assert {(r[1], r[4]) for r in rows} == {("alice", "spring")}


def test_consent_events_reach_the_ledger(run: dict[str, Any]) -> None:
    from patron.contact.consent import consent_state

    assert run["consent"].status_code == 200
    rows = _rows(run["db"], "SELECT consent_id, customer_id, purpose, channel, status, lawful_basis, policy_version "
                             "FROM consents ORDER BY consent_id")
    assert rows == [("k-1", "alice", "marketing", "email", "granted", "consent", "v3"),
                    ("k-2/advertising", "bob", "advertising", "any", "denied", None, None),
                    ("k-2/analytics", "bob", "analytics", "any", "granted", None, None)]
    state = consent_state(run["db"], customer_ids=["alice"], purpose="marketing", channel="email")
    assert state[["customer_id", "granted", "reason"]].values.tolist() == [["alice", True, "granted"]]


def test_mixed_batch_stores_the_good_and_reports_the_bad(run: dict[str, Any]) -> None:
    r = run["mixed"]
    assert r.status_code == 200
    body = r.json()
    assert body["success"] is False and body["accepted"] == 2
    reported = {x["index"]: x for x in body["rejected"]}
    assert set(reported) == set(MIXED_BAD)
    for i, fragment in MIXED_BAD.items():
        assert fragment in reported[i]["error"], (i, reported[i])
        assert reported[i]["messageId"] == f"m-{i}"
    stored = {r[0] for r in _rows(run["db"], "SELECT message_id FROM events WHERE message_id LIKE 'm-%'")}
    assert stored == {"m-0", "m-5"}
    dead = dict(_rows(run["db"], "SELECT message_id, reason FROM dead_letters WHERE message_id LIKE 'm-%'"))
    assert set(dead) == {f"m-{i}" for i in MIXED_BAD}
    assert "event is 40," in dead["m-7"]
    # batch-level context is merged into each stored event's payload
    payload = json.loads(_rows(run["db"], "SELECT payload FROM events WHERE message_id = 'm-0'")[0][0])
    assert payload["context"]["library"]["name"] == "analytics-python"


def test_identify_traits_reach_customers(run: dict[str, Any]) -> None:
    rows = dict(_rows(run["db"], "SELECT customer_id, attributes FROM customers WHERE customer_id IN ('alice', 'carol')"))
    assert json.loads(rows["alice"]) == {"email": "ALICE@x.org", "name": "Alice"}
    assert json.loads(rows["carol"])["plan"] == "gold"


def test_alias_links_the_anonymous_device(run: dict[str, Any]) -> None:
    # page/screen sent by dev-1 before the alias dev-1 -> alice belong to alice afterwards
    rows = dict(_rows(run["db"], "SELECT message_id, customer_id FROM events WHERE message_id IN ('s-page', 's-screen')"))
    assert rows == {"s-page": "alice", "s-screen": "alice"}


def test_clock_skew_is_corrected(run: dict[str, Any]) -> None:
    assert run["skew"].status_code == 200
    (at,) = _rows(run["db"], "SELECT occurred_at FROM events WHERE message_id = 'skew-1'")[0]
    lo, hi = run["skew_window"]
    assert lo - timedelta(minutes=5, seconds=1) <= at <= hi - timedelta(minutes=5) + timedelta(seconds=1)


def test_missing_message_id_is_derived_and_deduplicated(run: dict[str, Any]) -> None:
    assert [r.status_code for r in run["no_id"]] == [200, 200]
    rows = _rows(run["db"], "SELECT message_id FROM events WHERE customer_id = 'erin'")
    assert len(rows) == 1 and rows[0][0].startswith("patron-")


def test_single_bad_and_oversize_events_are_400_and_dead_letters(run: dict[str, Any]) -> None:
    bad, big = run["single_bad"], run["single_big"]
    assert bad.status_code == 400 and bad.json()["error"] == "track: event is required"
    assert big.status_code == 400 and "over the 32 KB limit" in big.json()["error"]
    dead = dict(_rows(run["db"], "SELECT message_id, reason FROM dead_letters WHERE message_id IN ('bad-1', 'big-1')"))
    assert dead["bad-1"] == "track: event is required" and "over the 32 KB limit" in dead["big-1"]


def test_oversize_batch_is_413(run: dict[str, Any]) -> None:
    assert run["batch_big"].status_code == 413
    assert not _rows(run["db"], "SELECT 1 FROM events WHERE message_id LIKE 'huge-%'")


def test_gzip_body(run: dict[str, Any]) -> None:
    assert run["gzip"].status_code == 200
    assert _rows(run["db"], "SELECT customer_id FROM events WHERE message_id = 'gz-1'") == [("frank",)]


def test_dead_letters_endpoint(run: dict[str, Any]) -> None:
    assert run["dead_write"].status_code == 403
    assert run["no_key"].status_code == 401
    r = run["dead_admin"]
    assert r.status_code == 200
    reasons = {d["message_id"]: d["reason"] for d in r.json()}
    assert reasons["m-2"] == "track: event is required"


def test_replayed_batches_change_nothing(run: dict[str, Any]) -> None:
    assert [r.status_code for r in run["replay"]] == [200] * 7
    # after the restart only rp-5 is new: one event, and no transaction (its order H1 was stored)
    assert run["same_order_later"].status_code == 200
    assert run["after"] == {**run["before"], "events": run["before"]["events"] + 1}
    orders = _rows(run["db"], "SELECT order_id FROM transactions WHERE order_id SIMILAR TO '(A1|B1).*' ORDER BY 1")
    assert orders == [("A1",), ("A1/refund/r-1",), ("B1",), ("B1/refund/r-2",)]  # none twice


def test_a_replayed_event_is_a_200_duplicate_that_changes_nothing(run: dict[str, Any]) -> None:
    """Identical requests in a row and at once: every answer 200, each event and order stored once."""
    answers = run["replay_seq"] + run["replay_conc"]
    assert [(r.status_code, r.json()) for r in answers] == [(200, {"success": True})] * (5 + 16)
    stored = dict(_rows(run["db"], "SELECT message_id, count(*) FROM events WHERE message_id LIKE 'rp-%' GROUP BY 1"))
    assert stored == {"rp-1": 1, "rp-2": 1, "rp-3": 1, "rp-4": 1, "rp-5": 1}
    orders = _rows(run["db"], "SELECT order_id, amount, ingest_id FROM transactions WHERE customer_id = 'hal' ORDER BY 1")
    # rp-4 and rp-5 repeat order H1 under new messageIds: the first event of an order wins
    assert orders == [("H1", 1.0, "rp-1"), ("H2", 2.0, "rp-2"), ("H3", 3.0, "rp-3")]
    assert run["same_order"].status_code == 200



def test_writer_redoes_a_group_holding_an_old_retry(tmp_path: Path) -> None:
    """An event no longer in the recent-id cache but stored: the group is redone without it."""
    from patron.service.commit import Identity, Known, store
    from patron.service.event_tables import create_event_tables
    from patron.service.items import Accepted
    from patron.service.mapping import map_event
    from patron.service.segment_spec import check_event
    from patron.service.settings import ServiceRules

    rules = ServiceRules()
    now = datetime(2024, 3, 2)

    def item(mid: str, order: str) -> Accepted:
        ev = check_event(_ev("track", mid, userId="gina", event="Order Completed",
                             properties={"order_id": order, "revenue": 3}),
                         call=None, received_at=now, future_limit=now + timedelta(days=1), max_bytes=32768)
        return Accepted(ev, map_event(ev, rules))

    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        for ddl in (
            "CREATE TABLE transactions (customer_id VARCHAR, order_id VARCHAR, occurred_at TIMESTAMP, amount DOUBLE, "
            "currency VARCHAR, channel VARCHAR, category VARCHAR, discount DOUBLE, margin DOUBLE, ingest_id VARCHAR)",
        ):
            con.execute(ddl)
        create_event_tables(con)
        identity = Identity(rules)
        identity.ensure(con)
        first = store(con, [item("w-1", "G1")], rules, identity, Known())
        assert [o.status for o in first] == ["stored"]
        again = store(con, [item("w-1", "G1"), item("w-2", "G2")], rules, identity, Known())
        assert [o.status for o in again] == ["duplicate", "stored"]
        assert con.execute("SELECT order_id FROM transactions ORDER BY 1").fetchall() == [("G1",), ("G2",)]
        assert con.execute("SELECT count(*) FROM events").fetchall() == [(2,)]


def test_writer_redoes_a_group_whose_commit_finds_the_event_stored(tmp_path: Path) -> None:
    """The primary key check deferred to COMMIT (another transaction stored the same messageId
    while the group's was open: DuckDB raises TransactionException there, not at the INSERT):
    the group is redone, the event is a duplicate, its order is not stored twice."""
    from patron.service.commit import Identity, Known, store
    from patron.service.event_tables import create_event_tables
    from patron.service.items import Accepted
    from patron.service.known import KeyIndex
    from patron.service.mapping import map_event
    from patron.service.segment_spec import check_event
    from patron.service.settings import ServiceRules

    rules = ServiceRules()
    now = datetime(2024, 3, 2)
    ev = check_event(_ev("track", "w-3", userId="gina", event="Order Completed",
                         properties={"order_id": "G3", "revenue": 3}),
                     call=None, received_at=now, future_limit=now + timedelta(days=1), max_bytes=32768)

    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        con.execute("CREATE TABLE transactions (customer_id VARCHAR, order_id VARCHAR, occurred_at TIMESTAMP, "
                    "amount DOUBLE, currency VARCHAR, channel VARCHAR, category VARCHAR, discount DOUBLE, "
                    "margin DOUBLE, ingest_id VARCHAR)")
        create_event_tables(con)
        identity = Identity(rules)
        identity.ensure(con)
        other = con.cursor()
        other.execute("BEGIN TRANSACTION")
        other.execute("INSERT INTO events (message_id, type, occurred_at, received_at, payload) "
                      "VALUES ('w-3', 'track', TIMESTAMP '2024-03-01', TIMESTAMP '2024-03-01', '{}')")

        class OtherCommitsFirst(KeyIndex):
            """Commits ``other`` after the group's INSERT INTO events, before its COMMIT."""

            def might_hold(self, cur: duckdb.DuckDBPyConnection, values: list[str]) -> list[bool]:
                if other.execute("SELECT count(*) FROM events").fetchall() == [(1,)]:
                    other.execute("COMMIT")
                return super().might_hold(cur, values)

        known = Known(orders=OtherCommitsFirst("transactions", "order_id"))
        outcomes = store(con, [Accepted(ev, map_event(ev, rules))], rules, identity, known)
        assert [o.status for o in outcomes] == ["duplicate"]
        assert con.execute("SELECT message_id, payload FROM events").fetchall() == [("w-3", "{}")]
        assert con.execute("SELECT count(*) FROM transactions").fetchall() == [(0,)]
