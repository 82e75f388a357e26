"""Hostile input against the event API of a real ``patron serve``: never a 5xx, never a traceback,
every rejected event kept as a dead letter with its reason, good events beside bad ones stored.

The fuzz is a seeded generator (:func:`hostile_requests`): valid Segment events with one field
replaced by a hostile value (lone surrogates, nesting past the cap, integers past Python's digit
limit, 400-digit revenues, years 1 and 9999 with an offset, NUL bytes, huge strings, wrong types),
non-object batch items, and bodies that are not JSON at all (invalid UTF-8, encoded surrogates,
truncated JSON, gzip and deflate garbage), sent to every event endpoint from several threads at
once, so that bad and good events share group commits. Expected answers come from the Segment HTTP
API's contract as docs/service.md states it (2xx stored, 4xx rejected with a dead letter), not
from the code under test.
"""

from __future__ import annotations

import gzip
import json
import random
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.service_support import running_service

pytestmark = pytest.mark.slow

SEED = 18
"""Seed of the fuzz generator (a failure names the request, so it can be replayed)."""

FUZZ_REQUESTS = 400
"""Hostile requests sent by the fuzz test (a few seconds on an idle 2-core machine)."""

T0 = "2024-03-01T10:00:00Z"

ENDPOINTS = ("track", "identify", "alias", "page", "screen", "group", "batch")

DEEP_OK = 40
"""Nesting under the service's cap (64 levels, docs/service.md)."""

HOSTILE_VALUES: list[Any] = [
    None, True, False, 0, -1, 1.5, 1e308, -1e308, 10 ** 400, -(10 ** 400), "", " ", "\x00", "a\x00b",
    "\ud800", "x\udfffy", "\ud83d", "\u202eevil", "\u200b", "\ufeff", "😀" * 3, "x" * 40_000, "NaN", "Infinity",
    "-Infinity", "1_000", "1,000", "1e999", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
    "0001-01-01T00:00:00-14:00", "9999-12-31T23:59:59.999999+14:00", "-2024-01-01", "2024-13-45", "+25:00",
    "2024-03-31T14:05:00 Europe/Paris", [], [None], [[[]]], {}, {"a": {"b": {"c": None}}},
    {"$where": "1"}, ["\ud800"], {"\ud800": "\udc00"},
]
"""Values put in place of one field of a valid event. Lone surrogates are written as Python text
and reach the wire as ``\\ud800`` escapes (``json.dumps`` with ``ensure_ascii``)."""

FIELDS = ("type", "userId", "anonymousId", "messageId", "previousId", "groupId", "event", "name", "timestamp",
          "originalTimestamp", "sentAt", "properties", "traits", "context", "integrations", "properties.revenue",
          "properties.total", "properties.order_id", "properties.currency", "properties.discount",
          "properties.products", "properties.products.0.price", "properties.products.0.quantity",
          "properties.purpose", "properties.status", "properties.channel", "properties.expires_at",
          "properties.campaign_id", "properties.in_holdout", "traits.email", "traits.phone", "context.traits",
          "context.consent.categoryPreferences", "context.campaign")
"""Fields (dotted paths) a mutation may replace."""


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


def valid_event(rng: random.Random, n: int, kind: str | None = None) -> dict[str, Any]:
    """A valid event of a random kind (or ``kind``), with messageId ``fz-<n>``."""
    kind = kind or rng.choice(("track", "identify", "alias", "page", "screen", "group"))
    ev: dict[str, Any] = {"type": kind, "messageId": f"fz-{n}", "userId": f"user-{n % 37}", "timestamp": T0}
    if kind == "track":
        ev["event"] = rng.choice(("Order Completed", "Order Refunded", "Email Opened", "Consent Updated",
                                  "Segment Consent Preference Updated", "Product Viewed"))
        ev["properties"] = {"order_id": f"o-{n}", "revenue": 12.5, "currency": "EUR", "discount": 1,
                            "products": [{"price": 3, "quantity": 2}], "purpose": "marketing",
                            "status": "granted", "channel": "email", "campaign_id": "spring",
                            "expires_at": "2030-01-01T00:00:00Z", "in_holdout": False}
        ev["context"] = {"consent": {"categoryPreferences": {"Advertising": True}}, "campaign": {"name": "c"}}
    elif kind == "identify":
        ev["traits"] = {"email": f"p{n % 37}@example.com", "phone": "+1 555 0100", "plan": "gold"}
    elif kind == "alias":
        ev["previousId"] = f"device-{n}"
    elif kind in ("page", "screen"):
        ev["name"] = "Home"
        ev["anonymousId"] = f"device-{n}"
    else:
        ev["groupId"] = "acme"
    return ev


def _set(ev: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node: Any = ev
    for key in parents:
        nxt = node[int(key)] if isinstance(node, list) else node.get(key)
        if not isinstance(nxt, dict | list):
            nxt = {} if not key.isdigit() else []
            node[key] = nxt
        node = nxt
    if isinstance(node, list):
        node.append(value)
    else:
        node[last] = value


def hostile_event(rng: random.Random, n: int) -> Any:
    """A valid event with one to three fields replaced by hostile values, or a non-object."""
    roll = rng.random()
    if roll < 0.05:
        return rng.choice([None, 1, "event", [], [{"type": "track"}], 10 ** 300, "\ud800"])
    ev = valid_event(rng, n)
    for _ in range(rng.randint(1, 3)):
        value = rng.choice([*HOSTILE_VALUES, _nested(DEEP_OK), _nested(80)])
        _set(ev, rng.choice(FIELDS), value)
    return ev


def _garbage_body(rng: random.Random, n: int) -> tuple[bytes, dict[str, str]]:
    """A body that is not a valid JSON event: bytes-level damage of a valid one."""
    good = json.dumps(valid_event(rng, n)).encode()
    kind = rng.randrange(9)
    if kind == 0:
        return good[: rng.randrange(1, len(good))], {}  # truncated
    if kind == 1:
        return good.replace(b'"user-', b'"\xff\xfe-'), {}  # invalid UTF-8
    if kind == 2:
        return good.replace(b'"user-', b'"\xed\xa0\x80-'), {}  # a surrogate encoded in UTF-8
    if kind == 3:
        return rng.randbytes(rng.randrange(1, 300)), {}
    if kind == 4:
        return b"\x1f\x8b" + rng.randbytes(50), {"Content-Encoding": "gzip"}
    if kind == 5:
        return gzip.compress(good)[:-8], {"Content-Encoding": "gzip"}  # truncated gzip
    if kind == 6:
        return rng.randbytes(40), {"Content-Encoding": "deflate"}
    if kind == 7:
        return b"[" * 100_000 + b"]" * 100_000, {}  # far past the recursion limit
    return zlib.compress(b'{"userId": ' + b"9" * 5000 + b"}"), {"Content-Encoding": "deflate"}


def hostile_requests(seed: int, count: int) -> list[tuple[str, bytes, dict[str, str]]]:
    """``count`` requests ``(endpoint, body, headers)``: events with hostile fields (alone or in a
    batch beside good ones) and bodies that are not JSON."""
    rng = random.Random(seed)
    out: list[tuple[str, bytes, dict[str, str]]] = []
    for n in range(count):
        endpoint = rng.choice(ENDPOINTS)
        headers = {"Content-Type": "application/json"}
        if rng.random() < 0.12:
            body, extra = _garbage_body(rng, n)
            out.append((endpoint, body, {**headers, **extra}))
            continue
        if endpoint == "batch":
            events = [hostile_event(rng, n * 100 + i) if rng.random() < 0.5 else valid_event(rng, n * 100 + i)
                      for i in range(rng.randint(1, 6))]
            body_value: Any = {"batch": events}
            if rng.random() < 0.1:
                body_value = rng.choice([{"batch": "x"}, {"batch": None}, [events], {"batch": {"0": 1}},
                                         {"batch": events, "context": "\ud800", "sentAt": "0001-01-01T00:00:00+01:00"}])
        else:
            body_value = hostile_event(rng, n)
        body = json.dumps(body_value).encode()
        if rng.random() < 0.2:
            body, headers = gzip.compress(body), {**headers, "Content-Encoding": "gzip"}
        out.append((endpoint, body, headers))
    return out


def _depth(value: Any) -> int:
    """Nesting of arrays and objects, by its definition (recursive; the reference for the
    vectorised check of the service)."""
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


_TRICKY_TEXT = st.text(alphabet=st.sampled_from(list('[]{}"\\ aé\ud800😀\x00')), max_size=8)
_JSON = st.recursive(st.none() | st.integers() | st.floats(allow_nan=False) | _TRICKY_TEXT,
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TRICKY_TEXT, inner, max_size=3),
                     max_leaves=40)


@settings(max_examples=400, deadline=None)
@given(value=_JSON, ascii_only=st.booleans(), limit=st.integers(0, 12))
def test_the_nesting_check_agrees_with_the_definition(value: Any, ascii_only: bool, limit: int) -> None:
    """The service's depth check reads bytes without a parser (brackets in strings, escaped quotes
    and backslashes, UTF-8); it must agree with the recursive definition on any JSON."""
    from patron.service.json_body import nesting_over

    try:
        body = json.dumps(value, ensure_ascii=ascii_only).encode()
    except UnicodeEncodeError:  # a lone surrogate travels as an escape only
        body = json.dumps(value).encode()
    assert nesting_over(body, limit) == (_depth(value) > limit)


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=300) | _JSON.map(lambda v: json.dumps({"batch": [v, {"x": v}]}).encode()))
def test_the_decoder_answers_any_bytes_with_a_value_or_a_400(body: bytes) -> None:
    from fastapi import HTTPException

    from patron.service.json_body import Unreadable, parse_events

    try:
        value = parse_events(body)
    except HTTPException as exc:
        assert exc.status_code == 400 and str(exc.detail)
        return
    decoded = value.value if isinstance(value, Unreadable) else value
    json.dumps(decoded, ensure_ascii=False).encode()  # no lone surrogate left: storable as UTF-8


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def _reasons(answer: httpx.Response) -> list[str]:
    """The reasons a 400 (or a partial 200) names: the rejected events', or the request's."""
    body = answer.json()
    if "rejected" in body:
        return [r["error"] for r in body["rejected"]]
    return [body["error"]]


def _good(n: int) -> dict[str, Any]:
    return {"type": "track", "messageId": f"good-{n}", "userId": f"good-user-{n % 7}", "event": "Order Completed",
            "timestamp": T0, "properties": {"order_id": f"g-{n}", "revenue": n + 1, "currency": "EUR"}}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory):
    db = tmp_path_factory.mktemp("fuzz") / "fuzz.duckdb"
    with running_service(db) as svc:
        yield svc


def test_hostile_events_get_4xx_and_dead_letters_never_5xx(service) -> None:
    requests = hostile_requests(SEED, FUZZ_REQUESTS)

    def send(req: tuple[str, bytes, dict[str, str]]) -> httpx.Response:
        endpoint, body, headers = req
        return httpx.post(f"{service.url}/v1/{endpoint}", content=body, headers=headers,
                          auth=service.auth("write"), timeout=60)

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(send, requests))
    server_errors = [(i, requests[i][0], a.status_code, a.text[:200]) for i, a in enumerate(answers)
                     if a.status_code >= 500]
    assert not server_errors, f"5xx answers (request index, endpoint, status, body): {server_errors[:5]}"
    assert {a.status_code for a in answers} <= {200, 400, 413}, sorted({a.status_code for a in answers})
    assert sum(a.status_code == 400 for a in answers) > FUZZ_REQUESTS // 4  # the fuzz is hostile enough

    with httpx.Client(base_url=service.url, auth=service.auth("admin"), timeout=60) as admin:
        assert admin.get("/health").status_code == 200
        dead = admin.get("/v1/dead-letters", params={"limit": 10_000}).json()
        # the service still stores a good event and answers it 200
        assert admin.post("/v1/track", json={"userId": "after", "messageId": "after-fuzz", "event": "Viewed"}).status_code == 200
    reasons = {d["reason"] for d in dead}
    for i, a in enumerate(answers):
        if a.status_code == 400 or (a.status_code == 200 and a.json().get("rejected")):
            missing = [r for r in _reasons(a) if r not in reasons]
            assert not missing, f"request {i} ({requests[i][0]}) was rejected without a dead letter: {missing}"
    log = service.log.read_text()
    assert "Traceback" not in log, log[-3000:]
    assert "Exception in ASGI application" not in log
    # every hostile event was caught before the writer: its fallback (storing a failed group in
    # parts, which reloads the identity graph) never ran
    assert "storing it in parts" not in log


def test_one_unreadable_event_costs_only_itself_in_a_batch(service) -> None:
    """An event nested past the cap, or whose revenue is an integer of 4,300+ digits (read as a
    float too large to be money), is that event's dead letter; the batch's other events are
    stored (before: 500 and the whole batch lost)."""
    good = [_good(n) | {"messageId": f"nb-{n}", "properties": {"order_id": f"nb-{n}", "revenue": 3}}
            for n in range(3)]
    deep = {"type": "track", "userId": "nb", "messageId": "nb-deep", "event": "E", "properties": {"x": _nested(70)}}
    body = json.dumps({"batch": [good[0], deep, good[1], "HUGE", good[2]]}).encode()
    body = body.replace(b'"HUGE"', b'{"type": "track", "userId": "nb", "messageId": "nb-huge", "event": '
                        b'"Order Completed", "properties": {"order_id": "nb-h", "revenue": ' + b"9" * 5000 + b"}}")
    with service.client("write") as w:
        answer = w.post("/v1/batch", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["accepted"] == 3
    assert [(r["index"], r["messageId"]) for r in result["rejected"]] == [(1, "nb-deep"), (3, "nb-huge")]
    assert "nested deeper than 64 levels" in result["rejected"][0]["error"]
    assert "properties.revenue" in result["rejected"][1]["error"]
    with service.client("admin") as admin:
        dead = {d["message_id"] for d in admin.get("/v1/dead-letters", params={"limit": 10_000}).json()}
        stored = admin.get("/v1/customers/good-user-0").json()
    assert {"nb-deep", "nb-huge"} <= dead
    assert {"nb-0"} <= {o["order_id"] for o in stored["recent_orders"]}


def test_stored_text_never_holds_a_lone_surrogate(service) -> None:
    """A lone surrogate (``"\\ud800"``: JavaScript that cut an emoji in two) is replaced by U+FFFD
    and the event stored, with or without a messageId (before: 500 without, 503 with one)."""
    events = [{"userId": "sur", "event": "Product Viewed", "timestamp": T0, "properties": {"title": "Caf\ud83d"}},
              {"userId": "sur", "messageId": "sur-1", "event": "Product Viewed\udc00", "timestamp": T0}]
    with service.client("write") as w:
        answers = [w.post("/v1/track", content=json.dumps(e).encode(), headers={"Content-Type": "application/json"})
                   for e in events]
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    with service.client("admin") as admin:
        view = admin.get("/v1/customers/sur")
    assert view.status_code == 200


def test_good_events_beside_hostile_ones_in_the_same_group_commits_are_all_stored(service) -> None:
    """60 good events sent at once beside hostile ones (the cases of issue 18, sent repeatedly):
    every good event answered 200 and stored; every hostile one 400 and in dead_letters; events
    with lone surrogates (which used to fail their whole group) stored with U+FFFD."""
    hostile = [
        {"userId": "h", "messageId": "h-overflow-1", "event": "E", "timestamp": "0001-01-01T00:00:00+01:00"},
        {"userId": "h", "messageId": "h-overflow-2", "event": "E", "timestamp": "9999-12-31T23:59:59-01:00"},
        {"userId": "h", "messageId": "h-revenue", "event": "Order Completed",
         "properties": {"order_id": "h1", "revenue": 10 ** 400}},
        {"userId": "h", "messageId": "h-deep", "event": "E", "properties": {"x": _nested(80)}},
        {"userId": "h", "messageId": "h-digits", "event": "Order Completed",
         "properties": {"order_id": "h2", "revenue": 10 ** 5000}},
        {"userId": {"nested": "id"}, "messageId": "h-object-id", "event": "E"},
        {"userId": "h", "messageId": "h-no-name"},
    ]
    # Lone surrogates with a messageId: before, they failed their whole group commit (503 for
    # every request in it); now they are stored with U+FFFD.
    odd = [{"userId": "h", "messageId": f"odd-{i}", "event": "Viewed", "properties": {"t": "x\ud800"}}
           for i in range(6)]
    bodies = [json.dumps(_good(n)).encode() for n in range(1, 61)]
    for i, h in enumerate(odd):
        bodies.insert(i * 10 + 5, json.dumps(h).encode())
    for i, h in enumerate(hostile * 3):
        try:
            bodies.insert(i * 3, json.dumps(h).encode())
        except ValueError:  # 10 ** 5000 cannot even be written by json.dumps: send its digits
            bodies.insert(i * 3, b'{"userId": "h", "messageId": "h-digits", "event": "Order Completed", '
                          b'"properties": {"order_id": "h2", "revenue": '
                          + b"9" * 5000 + b"}}")

    def send(body: bytes) -> httpx.Response:
        return httpx.post(service.url + "/v1/track", content=body, headers={"Content-Type": "application/json"},
                          auth=service.auth("write"), timeout=60)

    with ThreadPoolExecutor(24) as pool:
        answers = list(pool.map(send, bodies))
    good = [a for b, a in zip(bodies, answers, strict=True) if b'"good-' in b or b'"odd-' in b]
    bad = [a for b, a in zip(bodies, answers, strict=True) if b'"good-' not in b and b'"odd-' not in b]
    assert [a.status_code for a in good] == [200] * 66, [a.text for a in good if a.status_code != 200]
    assert {a.status_code for a in bad} == {400}, [a.text for a in bad if a.status_code != 400]
    service.stop()
    try:
        stored = _rows(service.db, "SELECT count(*) FROM events WHERE message_id LIKE 'good-%'")[0][0]
        orders = _rows(service.db, "SELECT count(*) FROM transactions WHERE order_id LIKE 'g-%'")[0][0]
        dead = {r[0] for r in _rows(service.db, "SELECT message_id FROM dead_letters WHERE message_id LIKE 'h-%'")}
        not_stored = _rows(service.db, "SELECT count(*) FROM events WHERE message_id LIKE 'h-%'")[0][0]
        replaced = _rows(service.db, "SELECT count(*) FROM events WHERE message_id LIKE 'odd-%' "
                                     "AND payload LIKE '%x\ufffd%'")[0][0]
    finally:
        service.start()
    assert (stored, orders) == (60, 60)
    assert dead == {"h-overflow-1", "h-overflow-2", "h-revenue", "h-deep", "h-digits", "h-object-id", "h-no-name"}
    assert not_stored == 0
    assert replaced == 6


def test_a_storage_failure_of_one_event_spares_the_rest_of_its_group(tmp_path: Path) -> None:
    """The writer's own net (commit.py): an event that passed every check but fails while the
    group is stored (here a mapped row holding a lone surrogate, which Arrow refuses) becomes a
    dead letter; the other events of the group, submitted concurrently, are stored, each order
    once, and the identity graph still joins the device to its user afterwards."""
    from patron.service.app import create_app
    from patron.service.items import Accepted
    from patron.service.mapping import map_event
    from patron.service.segment_spec import check_event

    app = create_app(tmp_path / "w.duckdb")
    state = app.state.patron
    now = datetime(2024, 3, 2)

    def item(ev: dict[str, Any], *, poison: bool = False) -> Accepted:
        checked = check_event(ev, call=None, received_at=now, future_limit=now + timedelta(days=1), max_bytes=32768)
        mapped = map_event(checked, state.rules)
        if poison:  # what no check anticipated: text the tables cannot hold
            mapped.contacts = [(c[0], c[1], c[2], c[3], "camp\ud800", *c[5:]) for c in mapped.contacts]
        return Accepted(checked, mapped)

    async def run() -> list[list[Any]]:
        async with app.router.lifespan_context(app):
            writer = state.writer
            subs = [[item(_good(n))] for n in range(60)]
            bad = item({"type": "track", "messageId": "bad-1", "userId": "good-user-1", "timestamp": T0,
                        "event": "Email Opened", "properties": {"campaign_id": "x"}}, poison=True)
            subs.append([item(_good(60)), bad, item(_good(61))])  # one submission: one group
            subs.append([item(_good(5) | {"messageId": "good-5-again"}),  # order g-5 again: stored once
                         item({"type": "alias", "messageId": "al-1", "userId": "good-user-2",
                               "previousId": "dev-9", "timestamp": T0})])
            with ThreadPoolExecutor(16) as pool:
                futures = [pool.submit(writer.submit_sync, s, 60) for s in subs]
                results = [f.result() for f in futures]
            later = writer.submit_sync([item({"type": "page", "messageId": "pg-1", "anonymousId": "dev-9",
                                              "timestamp": T0, "name": "Home"}), item(_good(0))], 60)
            return [*results, later]

    import asyncio

    results = asyncio.run(run())
    statuses = [[o.status for o in r] for r in results]
    assert statuses[:60] == [["stored"]] * 60
    assert statuses[60] == ["stored", "rejected", "stored"]
    assert "could not be stored (UnicodeEncodeError" in (results[60][1].error or ""), results[60][1].error
    assert statuses[61] == ["stored", "stored"]
    assert statuses[62] == ["stored", "duplicate"]  # good-0 again: the writer still knows it
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM events WHERE message_id LIKE 'good-%'").fetchone()[0] == 63
        assert con.execute("SELECT count(*), count(DISTINCT order_id) FROM transactions").fetchone() == (62, 62)
        assert con.execute("SELECT message_id FROM dead_letters").fetchall() == [("bad-1",)]
        assert con.execute("SELECT count(*) FROM events WHERE message_id = 'bad-1'").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM contacts").fetchone()[0] == 0
        # the device seen after the failure still belongs to the user it was aliased to
        assert con.execute("SELECT customer_id FROM events WHERE message_id = 'pg-1'").fetchone()[0] == "good-user-2"
