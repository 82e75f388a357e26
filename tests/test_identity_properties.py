"""Identity resolution does not depend on the order or the batching in which events arrive.

The expected result comes from a reference written here from the documented definition (module
docstring of :mod:`patron.people.identity`): links applied in (occurred_at, message_id) order, a join
refused when a person would hold two values of a unique kind (``customer_id`` always is), person id
= smallest customer_id (a customers file's id), else smallest user_id, else "anon:" + smallest
anonymous_id; a customer_id and a user_id of the same text are linked before anything else. It
shares no code with the package except the e-mail normalization, which the test re-derives with
hashlib.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patron.data.store import connect
from patron.people.identity import Resolver, follow_merges, resolve_events

BASE = datetime(2024, 3, 1)
USERS = ["u1", "u2", "u3"]
ANONS = ["a1", "a2", "a3", "a4"]
EMAILS = [["ann@x.io", " Ann@X.io", "ANN@x.io "], ["bob@x.io", "Bob@X.IO"]]
"""Raw spellings of two addresses: every spelling of one address must match the same person."""

ORDER = {"customer_id": -1, "user_id": 0, "email": 1, "phone": 2, "anonymous_id": 9}
CUSTOMERS = ["u1", "c7", "c8"]
"""Customer ids of rows of a customers file; ``u1`` is also a userId of the events."""


def _email_key(raw: str) -> str:
    return hashlib.sha256(raw.strip().lower().encode()).hexdigest()


def _canon(ident: tuple[str, str]) -> tuple[int, str, str]:
    return (ORDER[ident[0]], ident[0], ident[1])


def reference(events: list[tuple[str, datetime, list[tuple[str, str]]]], unique: set[str]) -> tuple[dict, dict]:
    """(identifier → person id, message_id → person id) by the definition, all events at once."""
    norm: dict[str, tuple[datetime, frozenset]] = {}
    for mid, ts, raw in events:
        ids = frozenset((k, _email_key(v) if k == "email" else v) for k, v in raw)
        norm[mid] = (ts, ids)  # replays carry the same content
    links: dict[frozenset, tuple[datetime, str]] = {}
    for mid, (ts, ids) in norm.items():
        if len(ids) > 1 and (ids not in links or (ts, mid) < links[ids]):
            links[ids] = (ts, mid)
    parent = {i: i for _, ids in norm.values() for i in ids}
    unique = set(unique) | {"customer_id"}
    for kind, value in list(parent):  # the same text as a file's customer id and as a userId: first
        if kind == "customer_id" and ("user_id", value) in parent:
            links[frozenset({(kind, value), ("user_id", value)})] = (datetime.min, "")

    def root(i):
        while parent[i] != i:
            i = parent[i]
        return i

    for ids, _rank in sorted(links.items(), key=lambda kv: kv[1]):
        first, *rest = sorted(ids, key=_canon)
        for other in rest:
            a, b = root(first), root(other)
            if a == b:
                continue
            members_a = [i for i in parent if root(i) == a]
            members_b = [i for i in parent if root(i) == b]
            clash = any(
                x[0] == y[0] and x[0] in unique and x[1] != y[1] for x in members_a for y in members_b
            )
            if not clash:
                parent[b] = a
    groups: dict = {}
    for i in parent:
        groups.setdefault(root(i), []).append(i)
    person = {}
    for members in groups.values():
        users = (sorted(v for k, v in members if k == "customer_id")
                 or sorted(v for k, v in members if k == "user_id"))
        anons = sorted(v for k, v in members if k == "anonymous_id")
        pid = users[0] if users else ("anon:" + anons[0] if anons else "anon:" + "=".join(min(members, key=_canon)))
        for i in members:
            person[i] = pid
    of_message = {mid: person[min(ids, key=_canon)] for mid, (ts, ids) in norm.items()}
    return person, of_message


@st.composite
def event_sets(draw):
    n = draw(st.integers(1, 12))
    events = []
    for j in range(n):
        ids = []
        if draw(st.booleans()):
            ids.append(("user_id", draw(st.sampled_from(USERS))))
        if draw(st.integers(0, 3)) > 0 or not ids:
            ids.append(("anonymous_id", draw(st.sampled_from(ANONS))))
        if draw(st.integers(0, 3)) == 0:
            spellings = draw(st.sampled_from(EMAILS))
            ids.append(("email", draw(st.sampled_from(spellings))))
        ts = BASE + timedelta(minutes=draw(st.integers(0, 5)))  # few distinct times: ties on message_id
        events.append((f"m{j:02d}", ts, ids))
    return events


@st.composite
def file_and_event_sets(draw):
    """Events as above, plus rows of a customers file (a customer id with an e-mail or not) that
    arrive among them; one customer id is also a userId of the events."""
    events = draw(event_sets())
    for j in range(draw(st.integers(1, 4))):
        ids = [("customer_id", draw(st.sampled_from(CUSTOMERS)))]
        if draw(st.integers(0, 3)) > 0:
            ids.append(("email", draw(st.sampled_from(draw(st.sampled_from(EMAILS))))))
        events.append((f"f{j:02d}", BASE + timedelta(minutes=draw(st.integers(0, 5))), ids))
    return events


def _frame(events) -> pd.DataFrame:
    rows = [(mid, ts, k, v) for mid, ts, ids in events for k, v in ids]
    return pd.DataFrame(rows, columns=["message_id", "occurred_at", "kind", "value"])


def _run(arrivals: list[list], unique: list[str], *, keep_resolver: bool) -> tuple[dict, dict, dict]:
    """Feed batches into a fresh database as the writer would; return (identifier → person,
    message → person from the events table, order → person from transactions)."""
    with connect(":memory:") as con:
        con.execute("CREATE TABLE events (message_id VARCHAR, customer_id VARCHAR)")
        resolver = Resolver(unique)
        stored: set[str] = set()
        for arrived in arrivals:
            batch, fresh = [], set()
            for ev in arrived:  # the writer drops messageIds it already stored
                if ev[0] not in stored and ev[0] not in fresh:
                    batch.append(ev)
                    fresh.add(ev[0])
            con.execute("BEGIN")
            res = (resolver.resolve(con, _frame(batch)) if keep_resolver
                   else resolve_events(con, _frame(batch), unique))
            follow_merges(con, res)
            for mid, cid in res.customer_of.items():
                stored.add(mid)
                con.execute("INSERT INTO events VALUES (?, ?)", [mid, cid])
                con.execute(
                    "INSERT INTO transactions (customer_id, order_id, occurred_at, amount, ingest_id) "
                    "VALUES (?, ?, ?, 1.0, ?)", [cid, "o-" + mid, BASE, mid])
            con.execute("COMMIT")
        person = {(k, v): c for k, v, c in con.execute("SELECT kind, value, customer_id FROM identities").fetchall()}
        events = dict(con.execute("SELECT message_id, customer_id FROM events").fetchall())
        orders = {o[2:]: c for o, c in con.execute("SELECT order_id, customer_id FROM transactions").fetchall()}
        n_obs = con.execute("SELECT count(*) FROM identity_observations").fetchone()[0]
        n_distinct = con.execute(
            "SELECT count(*) FROM (SELECT DISTINCT message_id, kind, value FROM identity_observations)").fetchone()[0]
        assert n_obs == n_distinct
    return person, events, orders


def _split(items: list, cuts: list[int]) -> list[list]:
    out, start = [], 0
    for c in sorted(set(cuts)):
        if 0 < c < len(items):
            out.append(items[start:c])
            start = c
    out.append(items[start:])
    return [b for b in out if b]


UNIQUE = st.sampled_from([["user_id"], ["user_id", "email"], []])
PROFILE = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROFILE
@given(events=event_sets(), unique=UNIQUE, data=st.data())
def test_same_result_for_any_order_and_batching(events, unique, data):
    expected_person, expected_events = reference(events, set(unique))
    order = data.draw(st.permutations(events), label="arrival order")
    replays = data.draw(st.lists(st.sampled_from(events), max_size=3), label="replayed events")
    arrivals = list(order)
    for ev in replays:
        arrivals.insert(data.draw(st.integers(0, len(arrivals))), ev)
    cuts = data.draw(st.lists(st.integers(0, len(arrivals)), max_size=5), label="batch cuts")
    person, by_event, by_order = _run(_split(arrivals, cuts), unique, keep_resolver=True)
    assert person == expected_person
    assert by_event == expected_events
    assert by_order == expected_events


@PROFILE
@given(events=file_and_event_sets(), unique=UNIQUE, data=st.data())
def test_customers_of_files_and_events_give_the_same_result_for_any_order(events, unique, data):
    """Rows of customers files (their customer id and e-mail) among the events: one graph, the
    same result whatever arrives first."""
    expected_person, expected_events = reference(events, set(unique))
    order = data.draw(st.permutations(events), label="arrival order")
    cuts = data.draw(st.lists(st.integers(0, len(order)), max_size=5), label="batch cuts")
    person, by_event, _ = _run(_split(list(order), cuts), unique, keep_resolver=True)
    assert person == expected_person
    assert by_event == expected_events


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=event_sets(), unique=UNIQUE, data=st.data())
def test_reloading_the_graph_every_batch_gives_the_same_result(events, unique, data):
    """The free function reads the graph from the tables each call: state lives in the store."""
    order = data.draw(st.permutations(events))
    cuts = data.draw(st.lists(st.integers(0, len(order)), max_size=4))
    batches = _split(list(order), cuts)
    assert _run(batches, unique, keep_resolver=False) == _run(batches, unique, keep_resolver=True)
    expected_person, _ = reference(events, set(unique))
    assert _run(batches, unique, keep_resolver=False)[0] == expected_person


def test_reference_shared_device_example():
    """A hand check of the reference itself: device d seen with u1 at 10:00 and u2 at 10:05."""
    t = BASE.replace(hour=10)
    events = [("m2", t + timedelta(minutes=5), [("user_id", "u2"), ("anonymous_id", "d")]),
              ("m1", t, [("user_id", "u1"), ("anonymous_id", "d")])]
    person, of_message = reference(events, {"user_id"})
    assert person == {("user_id", "u1"): "u1", ("anonymous_id", "d"): "u1", ("user_id", "u2"): "u2"}
    assert of_message == {"m1": "u1", "m2": "u2"}


@pytest.mark.parametrize("first", ["early", "late"])
def test_late_event_moves_rows_of_split_person(first):
    """d+u2 at 09:00 arrives after d+u1 at 10:00 (or before): d and its track end with u2 either way."""
    t = BASE.replace(hour=9)
    early = [("m0", t, [("user_id", "u2"), ("anonymous_id", "d")])]
    late = [("m1", t + timedelta(hours=1), [("user_id", "u1"), ("anonymous_id", "d")]),
            ("m2", t + timedelta(hours=2), [("anonymous_id", "d")])]
    batches = [early, late] if first == "early" else [late, early]
    person, by_event, by_order = _run(batches, ["user_id"], keep_resolver=True)
    assert person[("anonymous_id", "d")] == "u2"
    assert by_event == {"m0": "u2", "m1": "u1", "m2": "u2"}
    assert by_order == by_event
