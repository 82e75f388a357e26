"""Preferences and consent by API and events (issue 16, item 3): ``Preferences Updated`` and
``Consent Updated`` events and ``POST /v1/customers/{identifier}/consents`` / ``.../preferences``
append to the ledgers with the all-or-nothing rule of ledger files, and the contact check and the
planner honour what they appended.

Expected decisions come from the ledger rules of docs/consent.md applied by hand to the records this
file sends (the rule is named beside each case); the planner is :func:`patron.contact.consent.plan` (``patron plan``'s
code) on the served database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from patron.contact.consent import plan
from patron.data.store import connect
from patron.service import create_app
from tests.service_support import create_keys

AT = "2025-03-12T12:00:00Z"
"""When the contact checks ask (a Wednesday, noon UTC); every record below is older."""

CAMPAIGN = {"name": "spring", "purpose": "marketing", "channel": "email", "target_ids": ["ann", "bob"],
            "send_at": "2025-03-12T12:00:00Z"}
"""A campaign to both people at the time of the checks."""


def _ev(mid: str, user: str, event: str, **props: Any) -> dict[str, Any]:
    return {"type": "track", "messageId": mid, "userId": user, "event": event, "timestamp": "2025-01-10T09:00:00Z",
            "properties": props}


@pytest.fixture
def service(tmp_path: Path):
    db = tmp_path / "l.duckdb"
    keys = create_keys(db)
    with TestClient(create_app(db), raise_server_exceptions=False) as client:
        client.keys = keys  # type: ignore[attr-defined]
        client.db = db  # type: ignore[attr-defined]
        w = (keys["write"], "")
        r = client.post("/v1/batch", auth=w, json={"batch": [
            {"type": "identify", "messageId": "i-ann", "userId": "ann", "traits": {"email": "Ann@Example.com"},
             "timestamp": "2025-01-01T00:00:00Z"},
            {"type": "identify", "messageId": "i-bob", "userId": "bob", "timestamp": "2025-01-01T00:00:00Z"},
            _ev("k-ann", "ann", "Consent Updated", purpose="marketing", status="granted"),
            _ev("k-bob", "bob", "Consent Updated", purpose="marketing", status="granted"),
        ]})
        assert r.status_code == 200 and r.json() == {"success": True}, r.text
        yield client


def _check(client: TestClient, customer: str, channel: str = "email", **extra: Any) -> dict[str, Any]:
    r = client.post("/v1/contacts/check", auth=(client.keys["read"], ""),  # type: ignore[attr-defined]
                    json={"customer": customer, "channel": channel, "at": AT, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def _count(db: Path, table: str) -> int:
    """Rows of ``table``, read through patron.data.store (in this process: a cursor of the served file)."""
    with connect(db) as con:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_a_preferences_event_is_appended_and_honoured(service) -> None:
    assert _check(service, "ann")["reason"] == "allowed"  # granted, no preference: allowed
    r = service.post("/v1/track", auth=(service.keys["write"], ""),
                     json=_ev("p-1", "ann", "Preferences Updated", channel="email", paused_until="2025-06-01T00:00:00Z",
                              utm_source="newsletter"))  # other properties are ignored
    assert r.status_code == 200, r.text
    assert _check(service, "ann")["reason"] == "paused"  # paused_until after AT
    assert _check(service, "ann", channel="sms")["reason"] == "allowed"  # an email record speaks for email only
    view = service.get("/v1/customers/ann/preferences", auth=(service.keys["read"], "")).json()
    [record] = view["history"]
    assert (record["preference_id"], record["source"], record["channel"]) == ("p-1", "event", "email")


def test_a_bad_ledger_event_is_a_dead_letter_and_stores_nothing(service) -> None:
    before = _count(service.db, "preferences")
    r = service.post("/v1/track", auth=(service.keys["write"], ""),
                     json=_ev("p-bad", "ann", "Preferences Updated", max_per_week=2, max_per_month=-1))
    assert r.status_code == 400
    assert "properties.max_per_month \"-1\" is negative" in r.json()["rejected"][0]["error"]
    assert _count(service.db, "preferences") == before
    r = service.post("/v1/track", auth=(service.keys["write"], ""),
                     json=_ev("k-bad", "ann", "Consent Updated", purpose="marketing", status="granted", channel="fax"))
    assert r.status_code == 400 and 'properties.channel "fax" is not one of' in r.json()["rejected"][0]["error"]


def test_rest_records_are_all_or_nothing(service) -> None:
    admin = (service.keys["admin"], "")
    before = _count(service.db, "consents")
    r = service.post("/v1/customers/ann@example.com/consents", auth=admin, json={"records": [
        {"purpose": "marketing", "channel": "email", "status": "revoked"},
        {"purpose": "marketing", "channel": "sms", "status": "withdrawn"},
    ]})
    assert r.status_code == 400
    assert 'record 1: status "withdrawn" is not one of granted, denied, revoked' in r.json()["error"]
    assert _count(service.db, "consents") == before
    assert _check(service, "ann")["reason"] == "allowed"  # the good record of the refused request is not stored


def test_rest_consents_and_preferences_change_the_check_and_the_plan(service) -> None:
    admin = (service.keys["admin"], "")
    r = service.post("/v1/customers/ann@example.com/consents", auth=admin,  # any identifier: the email, any case
                     json={"records": [{"purpose": "marketing", "channel": "email", "status": "revoked",
                                        "occurred_at": "2025-02-01T00:00:00Z"}]})
    assert r.status_code == 201, r.text
    assert r.json()["customer_id"] == "ann" and r.json()["stored"] == 1
    r = service.post("/v1/customers/bob/preferences", auth=admin,
                     json={"records": [{"channel": "any", "topics": ["news"], "occurred_at": "2025-02-01T00:00:00Z",
                                        "preference_id": "bob-topics"}]})
    assert r.status_code == 201, r.text
    assert _check(service, "ann")["reason"] == "revoked"  # the latest record (revoked, Feb) decides
    assert _check(service, "bob", topic="offers")["reason"] == "topic"  # bob wants news only
    assert _check(service, "bob", topic="news")["reason"] == "allowed"
    # a retry of the same request stores nothing twice; the same key with other values is refused
    again = service.post("/v1/customers/bob/preferences", auth=admin,
                         json={"records": [{"channel": "any", "topics": ["news"], "occurred_at": "2025-02-01T00:00:00Z",
                                            "preference_id": "bob-topics"}]})
    assert again.status_code == 201 and again.json()["already_stored"] == 1, again.text
    other = service.post("/v1/customers/bob/preferences", auth=admin,
                         json={"records": [{"channel": "any", "topics": ["offers"], "preference_id": "bob-topics"}]})
    assert other.status_code == 409
    history = service.get("/v1/customers/bob/preferences", auth=admin).json()["history"]
    assert [(h["preference_id"], h["source"]) for h in history] == [("bob-topics", "api")]
    # the planner (patron plan's code; in this process it reads the served database)
    result = plan(str(service.db), {**CAMPAIGN, "topic": "offers"}, store=False).table.set_index("customer_id")
    assert result.loc["ann", "reason"] == "revoked" and result.loc["bob", "reason"] == "topic"


def test_the_ledger_endpoints_need_their_roles(service) -> None:
    body = {"records": [{"purpose": "marketing", "status": "granted"}]}
    assert service.post("/v1/customers/ann/consents", json=body).status_code == 401
    assert service.post("/v1/customers/ann/consents", json=body, auth=(service.keys["read"], "")).status_code == 403
    assert service.post("/v1/customers/ann/consents", json=body, auth=(service.keys["write"], "")).status_code == 403
    assert service.get("/v1/customers/ann/consents", auth=(service.keys["read"], "")).status_code == 200
    assert service.post("/v1/customers/nobody/consents", json=body, auth=(service.keys["admin"], "")).status_code == 404
    bad = service.post("/v1/customers/ann/consents", json={"record": []}, auth=(service.keys["admin"], ""))
    assert bad.status_code == 400 and "records" in bad.json()["error"]


def test_two_services_in_one_process_see_their_own_tables(tmp_path: Path) -> None:
    """What one served database holds says nothing of another served by the same process: the
    first has planned campaigns (a ``contact_plans`` table), the second never had one, and its
    contact check still answers (a process-wide memory of tables once answered 500 here)."""
    answers = []
    for name, planned in (("first", True), ("second", False)):
        db = tmp_path / f"{name}.duckdb"
        keys = create_keys(db)
        with TestClient(create_app(db), raise_server_exceptions=False) as client:
            client.keys = keys  # type: ignore[attr-defined]
            r = client.post("/v1/batch", auth=(keys["write"], ""), json={"batch": [
                {"type": "identify", "messageId": "i-ann", "userId": "ann", "timestamp": "2025-01-01T00:00:00Z"},
                _ev("k-ann", "ann", "Consent Updated", purpose="marketing", status="granted"),
            ]})
            assert r.status_code == 200, r.text
            if planned:
                plan(str(db), {**CAMPAIGN, "target_ids": ["ann"]}, store=True)
            answers.append(_check(client, "ann")["reason"])
    assert answers == ["allowed", "allowed"]
