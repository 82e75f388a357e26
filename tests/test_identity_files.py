"""One person across files and events (issue 16, item 1): a customer ingested from files and the
same person arriving as web events under another userId, with the same e-mail in another case.

Both orders of arrival, through a real ``patron serve`` (the single view, the scores of a refresh,
the contact check; then preferences by the REST ledger, an event and a page link, each under
another identifier), the CLI (``patron customer``, ``patron contact-check``, ``patron consent``,
``patron export-customer``) and the Python API (:func:`patron.people.identity.resolve_identifier`,
:func:`patron.people.rights.export_customer`).

Expected values are written by hand from the rows below: the file customer ``c-zq17`` has two file
orders (30.00 and 20.00) and a consent to e-mail marketing; the web user ``web-zq7`` identifies
with ``ANN.ZQXJ@Example.ORG`` (the file says ``ann.zqxj@example.org``) and buys once (12.50). One
person, named ``c-zq17`` (a file customer keeps the id the files know), with 3 orders worth 62.50,
allowed to be e-mailed, whichever identifier is used; then paused from e-mail (until 2024-04-01)
by a record sent under the web e-mail.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import duckdb
import httpx
import pandas as pd
import pytest

import patron
from patron.people.identity import resolve_identifier
from patron.people.rights import export_customer
from patron.service.contact_check import contact_decision
from patron.service.profile_view import customer_view
from tests.service_support import Service, create_keys, free_port

FILE_ID = "c-zq17"
WEB_ID = "web-zq7"
ANON_ID = "anon-zq7"
FILE_EMAIL = "ann.zqxj@example.org"
WEB_EMAIL = "ANN.ZQXJ@Example.ORG"
"""The same address in another case, as the web shop's form sent it."""
PHONE = "+33 6 12 34 56 78"
ORDERS = {"f-zq1": 30.0, "f-zq2": 20.0, "w-zq1": 12.5}
"""Every order of the person: two from the files, one from the web (amounts by hand)."""
AT = "2024-03-06T12:00:00Z"
"""When the contact checks ask (a Wednesday noon, after every row below; no quiet hours by default)."""

IDENTIFIERS = (FILE_ID, WEB_ID, ANON_ID, FILE_EMAIL, WEB_EMAIL, f"  {WEB_EMAIL.lower()} ", "+33612345678")
"""Every way to name the person: ids, the e-mail in three spellings, the phone in another format."""


def _cli(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "patron", *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _ingest_files(root: Path, db: Path) -> None:
    pd.DataFrame([{"customer_id": FILE_ID, "order_id": "f-zq1", "occurred_at": "2024-01-05", "amount": 30.0},
                  {"customer_id": FILE_ID, "order_id": "f-zq2", "occurred_at": "2024-02-05", "amount": 20.0},
                  {"customer_id": "c-other", "order_id": "f-ot1", "occurred_at": "2024-02-07", "amount": 9.0}]
                 ).to_csv(root / "orders.csv", index=False)
    pd.DataFrame([{"customer_id": FILE_ID, "first_seen": "2024-01-01", "email": FILE_EMAIL, "phone": PHONE, "city": "Zqxjville"},
                  {"customer_id": "c-other", "first_seen": "2024-01-01", "email": "other@example.org", "phone": "", "city": "Lyon"}]
                 ).to_csv(root / "customers.csv", index=False)
    pd.DataFrame([{"customer_id": FILE_ID, "purpose": "marketing", "channel": "email", "status": "granted",
                   "occurred_at": "2024-01-02"}]).to_csv(root / "consents.csv", index=False)
    patron.ingest(str(root / "orders.csv"), kind="transactions", db=str(db))
    out = _cli("ingest", str(root / "customers.csv"), "--kind", "customers", "--db", str(db))  # the CLI path
    assert "customers: 2 accepted" in out
    patron.ingest(str(root / "consents.csv"), kind="consents", db=str(db))


def _send_web_events(svc: Service) -> None:
    batch = {"batch": [
        {"type": "page", "messageId": "zq-m0", "anonymousId": ANON_ID, "name": "Home", "timestamp": "2024-03-01T09:55:00Z"},
        {"type": "identify", "messageId": "zq-m1", "anonymousId": ANON_ID, "userId": WEB_ID,
         "traits": {"email": WEB_EMAIL, "name": "Ann Zqxj"}, "timestamp": "2024-03-01T10:00:00Z"},
        {"type": "track", "messageId": "zq-m2", "userId": WEB_ID, "event": "Order Completed",
         "properties": {"order_id": "w-zq1", "revenue": 12.5, "currency": "EUR"}, "timestamp": "2024-03-01T10:05:00Z"},
    ]}
    r = httpx.post(svc.url + "/v1/batch", json=batch, auth=svc.auth("write"), timeout=30)
    assert r.status_code == 200 and r.json() == {"success": True}, r.text


def _service(db: Path) -> Service:
    return Service(db=db, port=free_port(), keys=json.loads((db.parent / "keys.json").read_text()),
                   log=db.with_suffix(".serve.log"))


@pytest.fixture(scope="module", params=["files first", "events first"])
def world(request, tmp_path_factory):
    """The database after both arrivals, in the order of the parameter, and a refresh."""
    root = tmp_path_factory.mktemp(request.param.replace(" ", "-"))
    db = root / "shop.duckdb"
    (root / "keys.json").write_text(json.dumps(create_keys(db)))
    if request.param == "files first":
        _ingest_files(root, db)
        svc = _service(db)
        svc.start(timeout=90)
        _send_web_events(svc)
    else:
        svc = _service(db)
        svc.start(timeout=90)
        _send_web_events(svc)
        svc.stop()
        _ingest_files(root, db)
        svc = _service(db)
        svc.start(timeout=90)
    try:
        with svc.client("admin") as c:
            done = c.post("/v1/refresh", params={"wait": "true", "as_of": "2024-03-05"})
            assert done.status_code == 200, done.text
            views = {i: c.get(f"/v1/customers/{i}") for i in IDENTIFIERS}
            checks = {i: c.post("/v1/contacts/check", json={"customer": i, "channel": "email", "at": AT}) for i in IDENTIFIERS}
            merges = c.get("/v1/merges", params={"customer": FILE_ID}).json()
            ledgers = _change_preferences(svc, c)
    finally:
        svc.stop()
    return {"db": db, "views": views, "checks": checks, "merges": merges, "order": request.param, **ledgers}


PAUSED_UNTIL = "2024-04-01T00:00:00Z"
"""The pause the person asks for through the REST ledger (after :data:`AT`)."""


def _change_preferences(svc: Service, admin: httpx.Client) -> dict:
    """The ledgers and the customer's own page (issue 16, items 3-4) by other identifiers: a pause
    of e-mail by REST under the web e-mail, a ``Preferences Updated`` event under the web userId,
    a page link asked for by the phone; then the contact check by every identifier."""
    paused = admin.post(f"/v1/customers/{WEB_EMAIL}/preferences", json={"records": [
        {"channel": "email", "paused_until": PAUSED_UNTIL, "occurred_at": "2024-03-05T00:00:00Z", "preference_id": "zq-p1"}]})
    event = httpx.post(svc.url + "/v1/track", auth=svc.auth("write"), timeout=30, json={
        "type": "track", "messageId": "zq-p2", "userId": WEB_ID, "event": "Preferences Updated",
        "properties": {"channel": "sms", "topics": ["news"]}, "timestamp": "2024-03-05T01:00:00Z"})
    assert event.status_code == 200, event.text
    link = admin.post("/v1/customers/+33612345678/preference-link")
    history = admin.get(f"/v1/customers/{ANON_ID}/preferences").json()
    after = {i: admin.post("/v1/contacts/check", json={"customer": i, "channel": "email", "at": AT}).json()
             for i in IDENTIFIERS}
    return {"paused": paused, "link": link, "history": history, "after": after}


def test_every_identifier_answers_one_person_in_the_single_view(world):
    for ident, r in world["views"].items():
        assert r.status_code == 200, (ident, r.text)
        view = r.json()
        assert view["customer_id"] == FILE_ID, ident
        assert {o["order_id"]: o["amount"] for o in view["recent_orders"]} == ORDERS, ident
        assert view["traits"]["email"].lower() == FILE_EMAIL and view["traits"]["city"] == "Zqxjville", ident
        kinds = {(i["kind"], i["value"]) for i in view["identities"] if i["source"] == "graph"}
        assert {("customer_id", FILE_ID), ("user_id", WEB_ID), ("anonymous_id", ANON_ID)} <= kinds, ident
        assert [c["reason"] for c in view["consents"] if c["purpose"] == "marketing"] == ["granted"], ident


def test_every_identifier_answers_the_same_scores(world):
    scores = {i: r.json()["scores"] for i, r in world["views"].items()}
    first = scores[FILE_ID]
    assert first is not None and first["n_orders"] == len(ORDERS)
    assert first["total_spend"] == pytest.approx(sum(ORDERS.values()), abs=1e-9)
    assert all(s == first for s in scores.values())
    with duckdb.connect(str(world["db"]), read_only=True) as con:  # one row per person in the profiles
        rows = con.execute("SELECT customer_id FROM customer_profiles WHERE customer_id IN (?, ?)", [FILE_ID, WEB_ID]).fetchall()
    assert rows == [(FILE_ID,)]


def test_every_identifier_gets_the_same_contact_decision(world):
    decisions = {i: r.json() for i, r in world["checks"].items()}
    for ident, d in decisions.items():
        assert (d["allowed"], d["reason"], d["customer_id"]) == (True, "allowed", FILE_ID), (ident, d)


def test_the_merge_is_recorded_with_its_cause(world):
    """Events first: the web person is absorbed by the file customer, through the e-mail (recorded
    by its hash, never the address). Files first: the events' identifiers join the customer as
    they arrive; nothing is refused either way."""
    merges = world["merges"]
    assert not [m for m in merges if m["reason"].startswith("refused")], merges
    assert all(FILE_EMAIL not in json.dumps(m).lower() for m in merges)
    if world["order"] == "events first":
        assert [(m["customer_id"], m["merged_id"], m["cause_kind"]) for m in merges if m["reason"].startswith("merged")] \
            == [(FILE_ID, WEB_ID, "email")], merges


def test_the_cli_and_the_python_api_answer_the_same_person(world):
    db = str(world["db"])
    with duckdb.connect(db, read_only=True) as con:
        assert {resolve_identifier(con, i) for i in IDENTIFIERS} == {FILE_ID}
    for ident in (WEB_EMAIL, WEB_ID, "+33612345678"):
        view = json.loads(_cli("customer", ident, "--db", db, "--json"))
        assert view["customer_id"] == FILE_ID and view["scores"]["n_orders"] == len(ORDERS)
        decision = json.loads(_cli("contact-check", ident, "--channel", "email", "--at", AT, "--db", db, "--json"))
        assert (decision["allowed"], decision["reason"], decision["customer_id"]) == (False, "paused", FILE_ID)  # the pause
        consent = json.loads(_cli("consent", ident, "--db", db, "--json"))
        assert consent["customer_id"] == FILE_ID and [s["reason"] for s in consent["state"]] == ["granted"]
    assert customer_view(db, WEB_EMAIL)["scores"] == json.loads(_cli("customer", FILE_ID, "--db", db, "--json"))["scores"]
    decided = contact_decision(db, "+33612345678", channel="email", at=datetime(2024, 3, 6, 12))
    assert (decided.customer_id, decided.reason) == (FILE_ID, "paused")
    doc = export_customer(db, WEB_EMAIL)
    assert doc["customer_id"] == FILE_ID
    assert sorted(r["order_id"] for r in doc["tables"]["transactions"]) == sorted(ORDERS)
    assert {e["message_id"] for e in doc["tables"]["events"]} == {"zq-m0", "zq-m1", "zq-m2", "zq-p2"}
    assert sorted(r["preference_id"] for r in doc["tables"]["preferences"]) == ["zq-p1", "zq-p2"]


def test_preferences_by_any_identifier_reach_the_one_person(world):
    """Items 3-4 beside item 1: a REST ledger call by the web e-mail, a preferences event under the
    web userId and a page link asked for by the phone all land on the file customer, and the
    contact check by every identifier honours the pause."""
    assert world["paused"].status_code == 201 and world["paused"].json()["customer_id"] == FILE_ID, world["paused"].text
    assert world["link"].status_code == 201 and world["link"].json()["customer_id"] == FILE_ID, world["link"].text
    history = world["history"]
    assert history["customer_id"] == FILE_ID
    assert sorted((h["preference_id"], h["channel"], h["source"]) for h in history["history"]) == [
        ("zq-p1", "email", "api"), ("zq-p2", "sms", "event")]
    for ident, d in world["after"].items():
        assert (d["allowed"], d["reason"], d["customer_id"]) == (False, "paused", FILE_ID), (ident, d)
