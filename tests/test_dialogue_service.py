"""Triggers end to end: events into the service, firings through the contact gate into the outbox,
signed webhooks to a local receiver (``tests/dialogue_support.py``: ``http.server`` in a thread).

Expectations come from the test's own knowledge: which persons it opted out, capped, put in quiet
hours, and which fall in the holdout by the planner's documented md5 draw (computed here with
``hashlib``, not with the code under test).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import duckdb
import pytest
from fastapi.testclient import TestClient

from patron.service import create_app
from tests.dialogue_support import Receiver
from tests.service_support import create_keys

SECRET = "s3cret-for-tests"
SECRET_ENV = "PATRON_TEST_HOOK_SECRET"


def real_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def draw(trigger: str, person: str) -> float:
    """The planner's holdout draw, as documented: md5 of ``0:trigger:person``, 13 hex digits."""
    return int(hashlib.md5(f"0:{trigger}:{person}".encode()).hexdigest()[:13], 16) / 16**13


def persons(trigger: str, share: float, *, held: bool, n: int, prefix: str) -> list[str]:
    """``n`` person ids that the draw puts inside (``held``) or outside the holdout ``share``."""
    out, i = [], 0
    while len(out) < n:
        pid = f"{prefix}{i}"
        if (draw(trigger, pid) < share) == held:
            out.append(pid)
        i += 1
    return out


class Clock:
    """An injectable clock: real time plus ``offset`` (tests move it forward)."""

    def __init__(self, at: datetime | None = None) -> None:
        self.offset = (at - real_now()) if at is not None else timedelta(0)

    def __call__(self) -> datetime:
        return real_now() + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


def track(mid: str, user: str, event: str, when: datetime | None = None, **props: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {"type": "track", "messageId": mid, "userId": user, "event": event, "properties": props}
    if when is not None:
        ev["timestamp"] = when.isoformat() + "Z"
    return ev


def order(mid: str, user: str, when: datetime | None = None, total: float = 30.0) -> dict[str, Any]:
    return track(mid, user, "Order Completed", when, order_id=f"o-{mid}", total=total)


Start = Callable[..., TestClient]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as rx:
        yield rx


@pytest.fixture
def start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Start]:
    """``start(config, clock=None)``: a service on a new database with ``config`` (a dict)."""
    monkeypatch.setenv(SECRET_ENV, SECRET)
    stack: list[Any] = []

    def _start(config: dict[str, Any], clock: Clock | None = None) -> TestClient:
        db = tmp_path / f"d{len(stack)}.duckdb"
        keys = create_keys(db)
        client = TestClient(create_app(db, config=config), raise_server_exceptions=False)
        client.__enter__()
        stack.append(client)
        client.keys = keys  # type: ignore[attr-defined]
        client.db = db  # type: ignore[attr-defined]
        if clock is not None:
            client.app.state.patron.dialogue.clock = clock
        return client

    yield _start
    for c in reversed(stack):
        c.__exit__(None, None, None)


def send(client: TestClient, *events: dict[str, Any]) -> None:
    r = client.post("/v1/batch", auth=(client.keys["write"], ""), json={"batch": list(events)})  # type: ignore[attr-defined]
    assert r.status_code == 200 and r.json() == {"success": True}, r.text


def firings(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    r = client.get("/v1/firings", params={"limit": 1000, **params}, auth=(client.keys["admin"], ""))  # type: ignore[attr-defined]
    assert r.status_code == 200, r.text
    return r.json()


def by_person(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["customer_id"]: r for r in rows}


def dest(rx: Receiver, path: str = "/hook", name: str = "crm", **kw: Any) -> dict[str, Any]:
    return {"name": name, "url": rx.url + path, "secret_env": SECRET_ENV, **kw}


# --- an order fires a thank-you once ------------------------------------------------------------


def test_an_order_fires_a_signed_thank_you_once_and_a_replay_does_not_fire_again(start: Start, receiver: Receiver) -> None:
    config = {"destinations": [dest(receiver)],
              "triggers": [{"name": "thank_you", "event": "Order Completed", "purpose": "order", "message": "thanks",
                            "destination": "crm"}]}
    client = start(config)
    send(client, {"type": "identify", "messageId": "i-ann", "userId": "ann", "traits": {"email": "ann@example.com"}},
         order("m1", "ann"), track("v1", "ann", "Product Viewed"))
    assert receiver.wait(lambda rx: len(rx.to("/hook")) >= 1)
    send(client, order("m1", "ann"))  # the SDK retries the same event
    send(client, order("m1", "ann"), order("m1", "ann"))
    time.sleep(1.0)  # time for a wrong second delivery to arrive
    got = receiver.to("/hook")
    assert len(got) == 1
    req = got[0]
    body = req.json
    assert (body["trigger"], body["customer_id"], body["message"], body["traits"]["email"]) == (
        "thank_you", "ann", "thanks", "ann@example.com")
    # the signature: HMAC-SHA256 over "timestamp.body" with the secret, computed here independently
    ts = req.headers["X-Patron-Timestamp"]
    want = "v1=" + hmac.new(SECRET.encode(), ts.encode() + b"." + req.body, hashlib.sha256).hexdigest()
    assert req.headers["X-Patron-Signature"] == want
    assert abs(time.time() - int(ts)) < 60
    assert req.headers["Idempotency-Key"] == body["firing_id"]
    assert receiver.wait(lambda rx: [r["state"] for r in firings(client)] == ["delivered"])  # recorded (batched)
    rows = firings(client)
    assert [(r["trigger"], r["customer_id"], r["state"], r["attempts"]) for r in rows] == [("thank_you", "ann", "delivered", 1)]
    client.__exit__(None, None, None)  # the database file is free: read it directly
    with duckdb.connect(str(client.db), read_only=True) as con:  # type: ignore[attr-defined]
        sent = con.execute("SELECT customer_id, channel, campaign_id, kind, in_holdout FROM contacts").fetchall()
    assert sent == [("ann", "email", "thank_you", "sent", False)]


def test_where_conditions_select_the_events_that_fire(start: Start, receiver: Receiver) -> None:
    config = {"destinations": [dest(receiver)],
              "triggers": [{"name": "big_order", "event": "Order Completed", "purpose": "order", "destination": "crm",
                            "where": {"properties.total": {">=": 100}, "properties.coupon": {"exists": False}}}]}
    client = start(config)
    send(client, order("a", "small", total=20), order("b", "big", total=150),
         {**order("c", "coupon", total=300), "properties": {"order_id": "o-c", "total": 300, "coupon": "X"}})
    assert receiver.wait(lambda rx: len(rx.to("/hook")) >= 1)
    time.sleep(0.5)
    assert [r.json["customer_id"] for r in receiver.to("/hook")] == ["big"]


# --- the gate: each refusal recorded with its reason --------------------------------------------


def test_opted_out_capped_held_out_and_quiet_hours_persons_are_not_sent_to(start: Start, receiver: Receiver) -> None:
    share = 0.3
    ok, capped, optout, quiet = persons("promo", share, held=False, n=4, prefix="p")
    held = persons("promo", share, held=True, n=1, prefix="h")[0]
    noon = real_now().replace(hour=12, minute=0, second=0, microsecond=0)
    if noon < real_now():
        noon += timedelta(days=1)
    clock = Clock(noon)  # the next 12:00 UTC (after the events): outside the default quiet hours (21-8 UTC)
    config = {"contact_policy": {"channels": {"email": {"max_per_week": 1}}},
              "destinations": [dest(receiver)],
              "triggers": [{"name": "promo", "event": "Product Viewed", "purpose": "marketing", "channel": "email",
                            "destination": "crm", "holdout": share, "topic": "offers"}]}
    client = start(config, clock)
    everyone = [ok, capped, optout, quiet, held]
    send(client, *[{"type": "identify", "messageId": f"i-{p}", "userId": p} for p in everyone],
         *[track(f"k-{p}", p, "Consent Updated", purpose="marketing", status="granted") for p in everyone if p != optout],
         track(f"k-{optout}", optout, "Consent Updated", purpose="marketing", status="denied"),
         # 00:00-01:00 in Auckland at 12:00 UTC: inside the default quiet hours 21-8 local
         track(f"t-{quiet}", quiet, "Preferences Updated", time_zone="Pacific/Auckland"))
    send(client, track("v-capped-1", capped, "Product Viewed"))  # the first is sent: one a week is the cap
    assert receiver.wait(lambda rx: len(rx.to("/hook")) >= 1)
    send(client, *[track(f"v-{p}", p, "Product Viewed") for p in everyone])
    assert receiver.wait(lambda rx: len(rx.to("/hook")) >= 2)
    time.sleep(0.5)
    assert sorted(r.json["customer_id"] for r in receiver.to("/hook")) == sorted([capped, ok])
    assert receiver.wait(lambda rx: sum(r["state"] == "delivered" for r in firings(client)) == 2)  # recorded (batched)
    rows = firings(client, trigger="promo")
    latest = {r["customer_id"]: r for r in sorted(rows, key=lambda r: r["created_at"])}
    assert {p: (latest[p]["state"], latest[p]["reason"]) for p in everyone} == {
        ok: ("delivered", "allowed"),
        capped: ("excluded", "cap_reached"),
        optout: ("excluded", "denied"),
        quiet: ("scheduled", "quiet_hours"),
        held: ("held_out", "holdout"),
    }
    # the quiet firing waits for the end of the quiet hours: 08:00 in Auckland
    due = datetime.fromisoformat(latest[quiet]["due_at"].rstrip("Z")).replace(tzinfo=UTC)
    local = due.astimezone(__import__("zoneinfo").ZoneInfo("Pacific/Auckland"))
    assert (local.hour, local.minute) == (8, 0) and due.replace(tzinfo=None) > noon
    clock.advance(due.replace(tzinfo=None) - noon + timedelta(seconds=1))
    assert receiver.wait(lambda rx: len(rx.to("/hook")) >= 3)
    assert receiver.to("/hook")[-1].json["customer_id"] == quiet
    stats = client.get("/v1/triggers/stats", auth=(client.keys["read"], "")).json()  # type: ignore[attr-defined]
    promo = next(s for s in stats if s["trigger"] == "promo")
    assert (promo["firings"], promo["sends"], promo["held_out"], promo["excluded"]) == (6, 3, 1, 2)
    assert promo["exclusions"] == {"cap_reached": 1, "denied": 1}


# --- delayed triggers ---------------------------------------------------------------------------


def test_a_delayed_trigger_fires_after_its_delay_and_not_when_the_condition_stopped_holding(
        start: Start, receiver: Receiver) -> None:
    clock = Clock()
    config = {"destinations": [dest(receiver)],
              "triggers": [{"name": "second_order", "event": "Order Completed", "once": True, "delay": "3d",
                            "unless": "Order Completed", "purpose": "order", "destination": "crm"}]}
    client = start(config, clock)
    t0 = real_now() - timedelta(minutes=10)
    send(client, order("a1", "alice", t0), order("b1", "bob", t0))
    send(client, order("b2", "bob", t0 + timedelta(minutes=5)))  # bob's second order: his nudge must not go
    state = client.app.state.patron.dialogue
    assert {p: r["state"] for p, r in by_person(firings(client)).items()} == {"alice": "scheduled", "bob": "scheduled"}
    clock.advance(timedelta(days=2))
    state.decide_due()
    assert {p: r["state"] for p, r in by_person(firings(client)).items()} == {"alice": "scheduled", "bob": "scheduled"}
    assert receiver.to("/hook") == []
    clock.advance(timedelta(days=1, seconds=5))
    assert receiver.wait(lambda rx: len(rx.to("/hook")) >= 1)
    rows = by_person(firings(client))
    assert (rows["bob"]["state"], rows["bob"]["reason"]) == ("cancelled", "unless")
    assert receiver.wait(lambda rx: by_person(firings(client))["alice"]["state"] == "delivered")
    time.sleep(0.5)
    assert [r.json["customer_id"] for r in receiver.to("/hook")] == ["alice"]


# --- delivery: retries, idempotency, dead letters -----------------------------------------------


def test_a_receiver_failing_three_times_gets_one_accepted_delivery_and_one_always_failing_ends_dead(
        start: Start, receiver: Receiver) -> None:
    receiver.script["/flaky"] = [500, 503, 500]
    receiver.always["/down"] = 500
    config = {"destinations": [dest(receiver, "/flaky", "flaky", max_attempts=6),
                               dest(receiver, "/down", "down", max_attempts=3),
                               dest(receiver, "/gone", "gone")],
              "triggers": [{"name": "to_flaky", "event": "Order Completed", "purpose": "order", "destination": "flaky"},
                           {"name": "to_down", "event": "Order Completed", "purpose": "order", "destination": "down"}]}
    receiver.always["/gone"] = 404
    client = start(config)
    send(client, order("x1", "xavier"))
    assert receiver.wait(lambda rx: len(rx.to("/flaky")) >= 4 and len(rx.to("/down")) >= 3, timeout=30)
    assert receiver.wait(lambda rx: {r["trigger"]: r["state"] for r in firings(client)}
                         == {"to_flaky": "delivered", "to_down": "dead"}, timeout=10)
    flaky = receiver.to("/flaky")
    assert [r.status for r in flaky] == [500, 503, 500, 200]
    assert len({r.headers["Idempotency-Key"] for r in flaky}) == 1
    assert list(receiver.accepted) == [flaky[0].headers["Idempotency-Key"]]
    gaps = [b.at - a.at for a, b in pairwise(flaky)]
    assert all(g >= 0.2 for g in gaps) and gaps[2] > gaps[0]  # backoff: at least 0.25 s, growing
    rows = {r["trigger"]: r for r in firings(client)}
    assert (rows["to_flaky"]["attempts"], rows["to_down"]["attempts"]) == (4, 3)
    assert rows["to_down"]["last_error"] == "HTTP 500"
    time.sleep(1.0)
    assert len(receiver.to("/down")) == 3  # dead: never tried again


def test_an_answer_that_cannot_heal_dead_letters_at_once(start: Start, receiver: Receiver) -> None:
    receiver.always["/gone"] = 404
    config = {"destinations": [dest(receiver, "/gone", "gone")],
              "triggers": [{"name": "t", "event": "Order Completed", "purpose": "order", "destination": "gone"}]}
    client = start(config)
    send(client, order("g1", "gina"))
    assert receiver.wait(lambda rx: [r["state"] for r in firings(client)] == ["dead"])
    assert len(receiver.to("/gone")) == 1 and firings(client)[0]["last_error"] == "HTTP 404"


# --- rules checked at start; triggers through the API -------------------------------------------


@pytest.mark.parametrize(("config", "message"), [
    ({"triggers": [{"name": "t", "event": "Order Completed", "destination": "nowhere"}]},
     "trigger t: destination 'nowhere' is not declared"),
    ({"destinations": [{"name": "d", "url": "ftp://x"}]}, "destination d: url:"),
    ({"destinations": [{"name": "d", "url": "http://x"}],
      "triggers": [{"name": "t", "event": "E", "delay": "3 fortnights", "destination": "d"}]}, "trigger t: delay:"),
    ({"destinations": [{"name": "d", "url": "http://x"}],
      "triggers": [{"name": "t", "event": "E", "unless": "E", "destination": "d"}]}, "unless needs a delay"),
    ({"destinations": [{"name": "d", "url": "http://x"}],
      "triggers": [{"name": "t", "event": "E", "purpose": "gossip", "destination": "d"}]}, "purpose 'gossip'"),
    ({"destinations": [{"name": "d", "url": "http://x", "secret_env": "PATRON_TEST_UNSET_SECRET"}]},
     "PATRON_TEST_UNSET_SECRET"),
])
def test_a_wrong_declaration_stops_the_start_with_one_line(tmp_path: Path, config: dict[str, Any], message: str) -> None:
    from patron.errors import InputError

    with pytest.raises(InputError) as err:
        create_app(tmp_path / "x.duckdb", config=config)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_triggers_are_created_listed_and_deleted_through_the_api_with_the_admin_key(
        start: Start, receiver: Receiver) -> None:
    config = {"destinations": [dest(receiver)],
              "triggers": [{"name": "from_file", "event": "Order Completed", "purpose": "order", "destination": "crm"}]}
    client = start(config)
    admin, read = (client.keys["admin"], ""), (client.keys["read"], "")  # type: ignore[attr-defined]
    new = {"name": "signup", "event": "Signed Up", "purpose": "account", "destination": "crm", "message": "welcome"}
    assert client.post("/v1/triggers", json=new, auth=read).status_code == 403
    r = client.post("/v1/triggers", json=new, auth=admin)
    assert r.status_code == 201, r.text
    assert client.post("/v1/triggers", json=new, auth=admin).status_code == 409
    bad = client.post("/v1/triggers", json={**new, "name": "b", "destination": "nope"}, auth=admin)
    assert bad.status_code == 422 and "nope" in bad.json()["error"]
    assert client.post("/v1/triggers", json={**new, "name": "c", "channel": "pigeon"}, auth=admin).status_code == 422
    listed = {t["name"]: t["source"] for t in client.get("/v1/triggers", auth=admin).json()}
    assert listed == {"from_file": "file", "signup": "api"}
    send(client, {"type": "identify", "messageId": "i-sam", "userId": "sam"}, track("s1", "sam", "Signed Up"))
    assert receiver.wait(lambda rx: len(rx.to("/hook")) >= 1)
    assert receiver.to("/hook")[0].json["message"] == "welcome"
    assert client.delete("/v1/triggers/from_file", auth=admin).status_code == 409
    assert client.delete("/v1/triggers/signup", auth=admin).status_code == 200
    assert client.delete("/v1/triggers/signup", auth=admin).status_code == 404
    send(client, {"type": "identify", "messageId": "i-sue", "userId": "sue"}, track("s2", "sue", "Signed Up"))
    time.sleep(0.5)
    assert len(receiver.to("/hook")) == 1
    assert [t["name"] for t in client.get("/v1/triggers", auth=admin).json()] == ["from_file"]


# --- status triggers fire after a refresh ---------------------------------------------------------


def test_a_status_trigger_fires_when_a_refresh_moves_a_status(start: Start, receiver: Receiver) -> None:
    from patron.service.refresh import RefreshInfo, notify

    config = {"destinations": [dest(receiver)],
              "triggers": [{"name": "at_risk", "on": "status", "status_to": ["at_risk"], "purpose": "account",
                            "destination": "crm"}]}
    client = start(config)
    send(client, *[{"type": "identify", "messageId": f"i-{p}", "userId": p} for p in ("ann", "bob")])
    state = client.app.state.patron

    def refreshed(statuses: dict[str, str]) -> None:
        """A refresh that gave these statuses: the profile table written, then the refresh listeners."""
        def job(con: Any) -> None:
            con.execute("CREATE OR REPLACE TABLE customer_profiles (customer_id VARCHAR, status VARCHAR)")
            con.executemany("INSERT INTO customer_profiles VALUES (?, ?)", list(statuses.items()))
        state.writer.run(job)
        notify(RefreshInfo(refresh_id="r", trigger="api", state="succeeded", started_at=real_now()))

    refreshed({"ann": "active", "bob": "active"})
    refreshed({"ann": "at_risk", "bob": "active"})
    assert receiver.wait(lambda rx: len(rx.to("/hook")) >= 1)
    refreshed({"ann": "at_risk", "bob": "cooling"})
    time.sleep(0.5)
    assert [r.json["customer_id"] for r in receiver.to("/hook")] == ["ann"]
    assert receiver.to("/hook")[0].json["cause"] == f"status active at_risk {real_now().date().isoformat()}"


def test_a_person_the_database_does_not_know_is_not_sent_even_a_transactional_message(
        start: Start, receiver: Receiver) -> None:
    config = {"destinations": [dest(receiver)],
              "triggers": [{"name": "any_order", "event": "Order Completed", "purpose": "order", "destination": "crm"},
                           {"name": "welcome", "event": "Signed Up", "purpose": "account", "destination": "crm"}]}
    client = start(config)
    # an order stores its buyer (known); a track event alone stores no customer (unknown)
    send(client, order("o1", "olga"), track("s1", "stranger", "Signed Up"))
    assert receiver.wait(lambda rx: len(rx.to("/hook")) >= 1)
    time.sleep(0.5)
    assert [r.json["customer_id"] for r in receiver.to("/hook")] == ["olga"]
    rows = {r["customer_id"]: (r["state"], r["reason"]) for r in firings(client)}
    assert rows["stranger"] == ("excluded", "unknown_customer")


def test_erasing_a_person_removes_their_firings(start: Start, receiver: Receiver) -> None:
    config = {"destinations": [dest(receiver)],
              "triggers": [{"name": "thank_you", "event": "Order Completed", "purpose": "order", "destination": "crm"}]}
    client = start(config)
    send(client, {"type": "identify", "messageId": "i-eve", "userId": "eve", "traits": {"email": "eve@example.com"}},
         order("e1", "eve"), order("b1", "bert"))
    assert receiver.wait(lambda rx: len(rx.accepted) >= 2)
    r = client.delete("/v1/customers/eve", auth=(client.keys["admin"], ""))  # type: ignore[attr-defined]
    assert r.status_code == 200, r.text
    assert [f["customer_id"] for f in firings(client)] == ["bert"]
    client.__exit__(None, None, None)
    with duckdb.connect(str(client.db), read_only=True) as con:  # type: ignore[attr-defined]
        left = con.execute("SELECT count(*) FROM trigger_firings WHERE customer_id = 'eve' "
                           "OR coalesce(cause, '') LIKE '%eve%'").fetchall()[0][0]
    assert left == 0


def test_a_destination_gets_at_most_its_rate_of_requests(start: Start, receiver: Receiver) -> None:
    rate, n = 5.0, 8
    config = {"destinations": [dest(receiver, rate_per_second=rate)],
              "triggers": [{"name": "t", "event": "Order Completed", "purpose": "order", "destination": "crm"}]}
    client = start(config)
    send(client, *[order(f"r{i}", f"p{i}") for i in range(n)])  # one commit: all pending at once
    assert receiver.wait(lambda rx: len(rx.accepted) >= n, timeout=30)
    times = sorted(r.at for r in receiver.to("/hook"))
    gaps = [b - a for a, b in pairwise(times)]
    assert min(gaps) >= 0.5 / rate  # started 1/rate apart; arrivals jitter with thread scheduling
    assert times[-1] - times[0] >= (n - 1) * 0.9 / rate
