"""The customer's own page over HTTP (issue 16, item 4): a signed, expiring link opens one person's
page and nothing else; the statement of data held against value returned; changes recorded in the
ledgers with source ``preference_center``; export and erasure.

Expected values come from the events this file sends (orders, discounts, messages, consents of two
people, Ann and Bob), never from what the page computed. The browser test
(``tests/test_service_preference_center_browser.py``) drives the same page in Chromium.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from patron.contact.consent.times import now_utc
from patron.service import create_app
from patron.service.links import SESSION, mint
from tests.service_support import create_keys

ANN_EMAIL = "ann.zq@example.com"
BOB_EMAIL = "bob.qx@example.com"
BOB_SECRET = "bob-only-7731"
"""A trait only Bob's profile holds: no answer of Ann's page may contain it."""


def _ev(kind: str, mid: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "messageId": mid, **fields}


EVENTS = [
    _ev("identify", "i-ann", userId="ann", traits={"email": ANN_EMAIL, "name": "Ann"}),
    _ev("identify", "i-bob", userId="bob", traits={"email": BOB_EMAIL, "nickname": BOB_SECRET}),
    _ev("track", "o-ann-1", userId="ann", event="Order Completed",
        properties={"order_id": "ann-1", "revenue": 40, "discount": 5, "currency": "EUR"}),
    _ev("track", "o-ann-2", userId="ann", event="Order Completed",
        properties={"order_id": "ann-2", "revenue": 60, "currency": "EUR"}),
    _ev("track", "o-bob-1", userId="bob", event="Order Completed",
        properties={"order_id": "bob-1", "revenue": 999, "discount": 99, "currency": "EUR"}),
    _ev("track", "k-ann", userId="ann", event="Consent Updated", properties={"purpose": "marketing", "channel": "email",
                                                                          "status": "granted"}),
    _ev("track", "m-ann-1", userId="ann", event="Email Sent", properties={"campaign_id": "c1"}),
    _ev("track", "m-ann-2", userId="ann", event="SMS Sent", properties={"campaign_id": "c1"}),
    _ev("track", "m-ann-hold", userId="ann", event="Email Sent", properties={"campaign_id": "c2", "in_holdout": True}),
    _ev("track", "m-bob-1", userId="bob", event="Email Sent", properties={"campaign_id": "c1"}),
    _ev("page", "p-dev", anonymousId="dev-9", name="Home"),  # an anonymous visitor, merged into Bob below
]


@pytest.fixture
def svc(tmp_path: Path):
    db = tmp_path / "pc.duckdb"
    keys = create_keys(db)
    with TestClient(create_app(db), raise_server_exceptions=False) as client:
        client.keys = keys  # type: ignore[attr-defined]
        r = client.post("/v1/batch", auth=(keys["write"], ""), json={"batch": EVENTS})
        assert r.status_code == 200 and r.json() == {"success": True}, r.text
        yield client


def _numbers(value: Any) -> list[float]:
    """Every number in a JSON document."""
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    return [value] if isinstance(value, int | float) and not isinstance(value, bool) else []


def _admin(c: TestClient) -> tuple[str, str]:
    return (c.keys["admin"], "")  # type: ignore[attr-defined]


def _link(c: TestClient, identifier: str, **body: Any) -> str:
    r = c.post(f"/v1/customers/{identifier}/preference-link", auth=_admin(c), json=body or None)
    assert r.status_code == 201, r.text
    url = r.json()["url"]
    assert url.startswith("http://testserver/preferences#pc1.")
    return url.split("#", 1)[1]


def _open(c: TestClient, token: str) -> int:
    c.cookies.clear()
    return c.post("/preferences/session", json={"token": token}).status_code


def _noon_tomorrow() -> str:
    """When the checks ask: noon UTC tomorrow, outside the policy's quiet hours (21-8 UTC) and
    after every record this file writes."""
    return (now_utc() + timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0).isoformat() + "Z"


def _check(c: TestClient, customer: str, channel: str = "email") -> str:
    r = c.post("/v1/contacts/check", auth=_admin(c), json={"customer": customer, "channel": channel,
                                                            "at": _noon_tomorrow()})
    assert r.status_code == 200, r.text
    return r.json()["reason"]


def test_the_page_states_what_is_held_and_what_comes_back(svc) -> None:
    assert _open(svc, _link(svc, ANN_EMAIL.upper())) == 200  # any identifier, any case of the email
    r = svc.get("/preferences/data")
    assert r.status_code == 200, r.text
    d = r.json()
    held, back = d["held"], d["returned"]
    assert d["customer_id"] == "ann"
    assert {"kind": "email", "value": ANN_EMAIL} in held["identifiers"]["shown"]
    assert held["profile"] == {"email": ANN_EMAIL, "name": "Ann"}
    [eur] = held["orders"]["by_currency"]
    assert (eur["orders"], eur["net_spend"], eur["discounts"], eur["discounted_orders"]) == (2, 100.0, 5.0, 1)
    assert held["contacts"]["by_channel"] == {"email": 1, "sms": 1}  # the holdout record was never sent
    assert [(k["purpose"], k["channel"], k["granted"]) for k in held["consents"] if k["channel"] == "email"] == [
        ("marketing", "email", True)]
    assert back["discounts"] == [{"currency": "EUR", "discounts": 5.0, "discounted_orders": 1}]
    marketing = next(p for p in back["personalisation"] if p["purpose"] == "marketing")
    assert marketing["allowed_channels"] == ["email"]
    assert "2 orders" in d["sentences"][0] and "5.00 EUR in discounts on 1 order" in d["sentences"][1]
    text = r.text
    assert BOB_SECRET not in text and BOB_EMAIL not in text and "bob-1" not in text
    assert not {999, 99} & set(_numbers(d))  # Bob's order and discount (as numbers: "999" may be in a timestamp)


def test_changes_are_recorded_with_source_preference_center_and_honoured(svc) -> None:
    assert _check(svc, "ann") == "allowed"
    assert _open(svc, _link(svc, "ann")) == 200
    until = (now_utc() + timedelta(days=30)).date().isoformat()
    r = svc.post("/preferences/preferences", json={"paused_until": until, "caps": {"email": {"max_per_week": 1}}})
    assert r.status_code == 200, r.text
    assert _check(svc, "ann") == "paused"
    assert _check(svc, "bob") == "no_consent"  # Bob's answer did not move (he never consented)
    r = svc.post("/preferences/consents", json={"changes": [{"purpose": "marketing", "channel": "email", "granted": False}]})
    assert r.status_code == 200, r.text
    assert _check(svc, "ann") == "revoked"
    prefs = svc.get("/v1/customers/ann/preferences", auth=_admin(svc)).json()["history"]
    assert {p["source"] for p in prefs} == {"preference_center"}
    assert {p["channel"] for p in prefs} == {"any", "email", "sms", "push"}  # complete settings per channel
    assert [p["max_per_week"] for p in prefs if p["channel"] == "email"] == [1.0]
    consents = svc.get("/v1/customers/ann/consents", auth=_admin(svc)).json()["history"]
    assert [(c["status"], c["source"]) for c in consents][-1] == ("revoked", "preference_center")


def test_bad_changes_store_nothing(svc) -> None:
    assert _open(svc, _link(svc, "ann")) == 200
    before = svc.get("/v1/customers/ann/preferences", auth=_admin(svc)).json()["history"]
    for body, reason in (({"caps": {"email": {"max_per_week": -1}}}, "greater than or equal to 0"),
                         ({"time_zone": "Mars/Olympus"}, "not a known IANA time zone"),
                         ({"quiet_hours_start": 22}, "both a start and an end"),
                         ({"caps": {"fax": {}}}, "caps.fax"),
                         ({"paused_until": "soon"}, "paused_until")):
        r = svc.post("/preferences/preferences", json=body)
        assert r.status_code in (400, 422) and reason in r.text, (body, r.text)
    assert svc.get("/v1/customers/ann/preferences", auth=_admin(svc)).json()["history"] == before


def test_a_link_for_one_person_cannot_read_another(svc) -> None:
    token = _link(svc, "ann")
    head, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "bob"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert _open(svc, f"{head}.{forged}.{sig}") == 401  # the signature covers the person
    assert _open(svc, f"{head}.{payload}.{sig[:-2]}AA") == 401  # a tampered signature
    assert _open(svc, token) == 200
    for path in ("/preferences/data?customer=bob", "/preferences/data?id=bob&customer_id=bob",
                 "/preferences/export?customer_id=bob"):
        r = svc.get(path)
        assert r.status_code == 200 and BOB_SECRET not in r.text and BOB_EMAIL not in r.text, path
        assert "ann" in r.text
    # the session is not an API key: no API endpoint answers it
    for path in ("/v1/customers/bob", "/v1/customers/ann", "/v1/customers/bob/export", "/"):
        assert svc.get(path).status_code == 401, path
    # a link is not a session, and a session is not a link
    svc.cookies.clear()
    svc.cookies.set("patron_preferences", token, path="/preferences")
    assert svc.get("/preferences/data").status_code == 401
    secret = svc.app.state.patron.link_secret
    nonce = claims["non"]
    session_for_bob = mint(secret, "bob", nonce=nonce, expires_at=now_utc() + timedelta(minutes=5), purpose=SESSION)
    svc.cookies.clear()
    svc.cookies.set("patron_preferences", session_for_bob, path="/preferences")
    assert svc.get("/preferences/data").status_code == 401  # Ann's nonce is not Bob's (he has none)
    assert _open(svc, session_for_bob) == 401


def test_expired_and_withdrawn_links_open_nothing(svc) -> None:
    secret = svc.app.state.patron.link_secret
    token = _link(svc, "ann")
    nonce = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "==="))["non"]
    expired = mint(secret, "ann", nonce=nonce, expires_at=now_utc() - timedelta(seconds=1))
    assert _open(svc, expired) == 401
    assert "expired" in svc.post("/preferences/session", json={"token": expired}).json()["error"]
    assert _open(svc, token) == 200
    r = svc.delete("/v1/customers/ann/preference-link", auth=_admin(svc))
    assert r.status_code == 200 and r.json()["revoked"] is True
    assert svc.get("/preferences/data").status_code == 401  # the open session stops too
    assert _open(svc, token) == 401
    assert _open(svc, _link(svc, "ann")) == 200  # a new link works


def test_after_a_merge_the_link_shows_its_own_person_only(svc) -> None:
    token = _link(svc, "anon:dev-9")  # the anonymous visitor's own page
    r = svc.post("/v1/identify", auth=(svc.keys["write"], ""),  # type: ignore[attr-defined]
                 json={"messageId": "i-merge", "userId": "bob", "anonymousId": "dev-9"})
    assert r.status_code == 200, r.text
    assert _open(svc, token) == 200
    r = svc.get("/preferences/data")
    assert r.status_code == 404 and "merged" in r.json()["error"]
    assert BOB_SECRET not in r.text and BOB_EMAIL not in r.text


def test_export_and_erasure_from_the_page(svc) -> None:
    token = _link(svc, "ann")
    assert _open(svc, token) == 200
    r = svc.get("/preferences/export")
    assert r.status_code == 200 and r.headers["content-disposition"].startswith("attachment")
    doc = r.json()
    assert doc["customer_id"] == "ann" and sorted(o["order_id"] for o in doc["tables"]["transactions"]) == ["ann-1", "ann-2"]
    assert BOB_SECRET not in r.text
    assert svc.post("/preferences/erasure", json={"confirm": "yes"}).status_code == 400
    r = svc.post("/preferences/erasure", json={"confirm": "erase"})
    assert r.status_code == 200, r.text
    assert r.json()["erasure_id"]
    assert svc.get("/v1/customers/ann", auth=_admin(svc)).status_code == 404
    assert svc.get("/v1/customers/bob", auth=_admin(svc)).status_code == 200
    assert _open(svc, token) == 401  # the links went with the person


def test_browser_safety_of_the_page(svc) -> None:
    assert _open(svc, _link(svc, "ann")) == 200
    body = {"changes": [{"purpose": "marketing", "channel": "email", "granted": False}]}
    r = svc.post("/preferences/consents", json=body, headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    r = svc.post("/preferences/consents", content="changes=x", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415
    r = svc.post("/preferences/session", json={"token": "x"}, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
    page = svc.get("/preferences")
    assert page.status_code == 200 and "<script>" not in page.text and 'src="/preferences/preferences.js"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert _check(svc, "ann") == "allowed"  # none of the refused requests changed anything


def test_the_page_s_changes_reach_the_planner(svc, tmp_path: Path) -> None:
    from patron.contact.consent import plan

    campaign = {"name": "pc-test", "purpose": "marketing", "channel": "email", "target_ids": ["ann"],
                "send_at": _noon_tomorrow()}
    db = svc.app.state.patron.db
    assert plan(db, campaign, store=False).table.loc[0, "reason"] == "included"
    assert _open(svc, _link(svc, "ann")) == 200
    r = svc.post("/preferences/preferences", json={"paused_until": (now_utc() + timedelta(days=7)).date().isoformat()})
    assert r.status_code == 200, r.text
    assert plan(db, campaign, store=False).table.loc[0, "reason"] == "paused"
