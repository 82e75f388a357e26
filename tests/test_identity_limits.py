"""Identity work stays proportional to what changed (issue 18): one person's cluster growing large
does not make every later batch slower.

Work is counted, not timed: the Python lines executed inside :mod:`patron.people.identity` per batch
(``sys.settrace``), a deterministic measure of the in-memory work (a loop over a cluster's
identifiers is one line event per identifier).
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import patron.people.identity
from patron.data.store import connect
from patron.people.identity import Resolver, follow_merges
from tests.test_identity_properties import BASE, _canon, _email_key, _frame, _split, reference

IDENTITY_DIR = str(Path(patron.people.identity.__file__).parent)
T0 = datetime(2024, 5, 1, 9, 0)


def _lines_executed(fn) -> int:
    """Line events inside patron.people.identity while ``fn()`` runs."""
    count = 0

    def local(frame, event, arg):
        nonlocal count
        if event == "line":
            count += 1
        return local

    def global_(frame, event, arg):
        return local if frame.f_code.co_filename.startswith(IDENTITY_DIR) else None

    sys.settrace(global_)
    try:
        fn()
    finally:
        sys.settrace(None)
    return count


def _hub_batch(b: int, n: int) -> list[tuple[str, datetime, str, str]]:
    """``n`` identify events each linking a new anonymousId to userId ``hub``."""
    rows = []
    for i in range(n):
        mid, ts = f"b{b}-m{i}", T0 + timedelta(seconds=b * n + i)
        rows += [(mid, ts, "user_id", "hub"), (mid, ts, "anonymous_id", f"b{b}-a{i}")]
    return rows


def test_linking_new_identifiers_to_a_large_person_costs_the_same_per_batch():
    """Six batches of 200 links to one userId: the person grows from 200 to 1,200 identifiers, and
    the work of a batch must not grow with it (on the code before issue 18 the last batch executed
    about 3.5 times the lines of the second: every link walked the whole person)."""
    with connect(":memory:") as con:
        resolver = Resolver(["user_id"], max_linked_identifiers=None)
        work = []
        for b in range(6):
            rows = _hub_batch(b, 200)
            con.execute("BEGIN")
            work.append(_lines_executed(lambda rows=rows: resolver.resolve(con, rows)))
            con.execute("COMMIT")
        n = con.execute("SELECT count(*) FROM identities WHERE customer_id = 'hub'").fetchone()[0]
    assert n == 1 + 6 * 200
    assert max(work[1:]) <= 1.2 * work[1], work


# --- placeholders and shared identifiers: still a function of the set of events ----------------

USERS = ["u1", "u2", "u3", "Guest"]
ANONS = ["a1", "a2", "a3", "a4", "undefined"]
EMAILS = ["ann@x.io", "bob@x.io", "NULL"]
PLACEHOLDERS = {"guest", "undefined", "null"}
"""Placeholders of the default list used in these events (the reference matches them itself)."""


def limited_reference(events, unique: set[str], cap: int | None) -> tuple[dict, dict]:
    """(identifier → person, message → person) by the definition with the issue-18 limits, built on
    the plain reference: placeholder values are dropped from every event; an identifier seen with
    more than ``cap`` distinct others (over all events' identifier sets) is taken out of every
    set and stays a person of its own; an event whose identifiers are all taken out belongs to its
    first shared identifier, or, when it carried only placeholders, to ``anon:<messageId>``."""
    kept = [(mid, ts, [(k, v) for k, v in ids if v.strip().casefold() not in PLACEHOLDERS]) for mid, ts, ids in events]
    norm = {mid: {(k, _email_key(v) if k == "email" else v) for k, v in ids} for mid, _, ids in kept}
    seen_with: dict = {}
    for ids in norm.values():
        if len(ids) > 1:
            for i in ids:
                seen_with.setdefault(i, set()).update(ids - {i})
    shared = {i for i, others in seen_with.items() if cap is not None and len(others) > cap}
    raw_of = {(k, _email_key(v) if k == "email" else v): v for _, _, ids in kept for k, v in ids}
    stripped = [(mid, ts, [(k, v) for k, v in ids if (k, _email_key(v) if k == "email" else v) not in shared])
                for mid, ts, ids in kept]
    person, of_message = reference([e for e in stripped if e[2]], unique)
    for kind, value in shared:
        person[(kind, value)] = value if kind == "user_id" else ("anon:" + value if kind == "anonymous_id"
                                                                  else f"anon:{kind}={value}")
    for mid, _, _ids in events:
        if mid in of_message:
            continue
        blocked = sorted(norm[mid] & shared, key=_canon)
        of_message[mid] = person[blocked[0]] if blocked else "anon:" + mid
    assert set(raw_of) >= set(person)
    return person, of_message


@st.composite
def limited_event_sets(draw):
    events = []
    for j in range(draw(st.integers(1, 14))):
        ids = []
        if draw(st.booleans()):
            ids.append(("user_id", draw(st.sampled_from(USERS))))
        if draw(st.integers(0, 3)) > 0 or not ids:
            ids.append(("anonymous_id", draw(st.sampled_from(ANONS))))
        if draw(st.integers(0, 3)) == 0:
            ids.append(("email", draw(st.sampled_from(EMAILS))))
        events.append((f"m{j:02d}", BASE + timedelta(minutes=draw(st.integers(0, 5))), ids))
    return events


def _run_limited(arrivals, unique, cap):
    """:func:`tests.test_identity_properties._run` with a cap (the default placeholder list)."""
    with connect(":memory:") as con:
        con.execute("CREATE TABLE events (message_id VARCHAR, customer_id VARCHAR)")
        resolver = Resolver(unique, max_linked_identifiers=cap)
        stored: set[str] = set()
        for arrived in arrivals:
            batch = [ev for ev in dict.fromkeys(arrived) if ev[0] not in stored]
            batch = list({ev[0]: ev for ev in batch}.values())
            con.execute("BEGIN")
            res = resolver.resolve(con, _frame(batch))
            follow_merges(con, res)
            for ev in batch:
                mid = ev[0]
                cid = res.customer_of[mid]
                stored.add(mid)
                con.execute("INSERT INTO events VALUES (?, ?)", [mid, cid])
                con.execute("INSERT INTO transactions (customer_id, order_id, occurred_at, amount, ingest_id) "
                            "VALUES (?, ?, ?, 1.0, ?)", [cid, "o-" + mid, BASE, mid])
            con.execute("COMMIT")
        person = {(k, v): c for k, v, c in con.execute("SELECT kind, value, customer_id FROM identities").fetchall()}
        events = dict(con.execute("SELECT message_id, customer_id FROM events").fetchall())
        orders = {o[2:]: c for o, c in con.execute("SELECT order_id, customer_id FROM transactions").fetchall()}
    return person, events, orders


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=limited_event_sets(), unique=st.sampled_from([["user_id"], []]),
       cap=st.sampled_from([1, 2, 3, None]), data=st.data())
def test_placeholders_and_shared_identifiers_keep_the_result_a_function_of_the_event_set(events, unique, cap, data):
    expected_person, expected_events = limited_reference(events, set(unique), cap)
    arrivals = [tuple_event(ev) for ev in data.draw(st.permutations(events), label="arrival order")]
    cuts = data.draw(st.lists(st.integers(0, len(arrivals)), max_size=5), label="batch cuts")
    person, by_event, by_order = _run_limited(_split(arrivals, cuts), unique, cap)
    assert person == expected_person
    assert by_event == expected_events
    assert by_order == expected_events


def tuple_event(ev):
    """An event as a hashable tuple (its identifiers as a tuple)."""
    mid, ts, ids = ev
    return (mid, ts, tuple(ids))


# --- scenarios ---------------------------------------------------------------------------------


class Feed:
    """What the events writer does per batch, with an ``events`` table whose rows follow persons."""

    def __init__(self, con, **rules) -> None:
        self.con = con
        self.rules = rules
        self.resolver = Resolver(["user_id"], **rules)
        con.execute("CREATE TABLE IF NOT EXISTS events (message_id VARCHAR, customer_id VARCHAR)")

    def send(self, *events: tuple[str, int, list[tuple[str, str]]]):
        rows = [(mid, T0 + timedelta(minutes=m), k, v) for mid, m, ids in events for k, v in ids]
        self.con.execute("BEGIN")
        res = self.resolver.resolve(self.con, rows)
        follow_merges(self.con, res)
        for mid, _, _ in events:
            self.con.execute("INSERT INTO events VALUES (?, ?)", [mid, res.customer_of[mid]])
        self.con.execute("COMMIT")
        return res

    def person(self, kind: str, value: str) -> str:
        return self.con.execute("SELECT customer_id FROM identities WHERE kind = ? AND value = ?", [kind, value]).fetchone()[0]

    def events(self) -> dict[str, str]:
        return dict(self.con.execute("SELECT message_id, customer_id FROM events").fetchall())

    def reasons(self, start: str) -> list[str]:
        return [r for (r,) in self.con.execute(
            "SELECT reason FROM identity_merges WHERE starts_with(reason, ?) ORDER BY reason", [start]).fetchall()]


def test_an_identifier_seen_with_more_than_the_cap_links_nobody_and_it_is_recorded():
    """Cap 3: userId "hub" gathers devices a0..a2 (one person), then a3 makes it shared: the four
    devices are four anonymous persons again, their events follow, and one refusal is recorded."""
    with connect(":memory:") as con:
        feed = Feed(con, max_linked_identifiers=3)
        feed.send(*[(f"m{i}", i, [("user_id", "hub"), ("anonymous_id", f"a{i}")]) for i in range(3)],
                  ("t0", 5, [("anonymous_id", "a0")]))
        assert {feed.person("anonymous_id", f"a{i}") for i in range(3)} == {"hub"}
        assert feed.events()["t0"] == "hub"
        res = feed.send(("m3", 10, [("user_id", "hub"), ("anonymous_id", "a3")]))
        assert [feed.person("anonymous_id", f"a{i}") for i in range(4)] == [f"anon:a{i}" for i in range(4)]
        assert feed.person("user_id", "hub") == "hub"
        assert feed.events() == {"m0": "anon:a0", "m1": "anon:a1", "m2": "anon:a2", "m3": "anon:a3", "t0": "anon:a0"}
        assert any(m["reason"].startswith("refused: shared user_id=hub") for m in res.merges)
        assert len(feed.reasons("refused: shared")) == 1 and len(feed.reasons("split: identifiers of hub")) == 1
        feed.send(("m4", 20, [("user_id", "hub"), ("anonymous_id", "a4")]))
        assert feed.person("anonymous_id", "a4") == "anon:a4"
        assert len(feed.reasons("refused: shared")) == 1  # recorded once, not per event
        feed.resolver.reset()
        assert feed.resolver.load(con).pending_ == []  # the stored graph agrees with the rules


def test_a_placeholder_user_id_never_merges_people_and_is_recorded_once():
    """userId "guest" (any case, padded) on three devices: three persons; an event carrying only the
    placeholder belongs to a person of its own; "guest" never enters the graph."""
    with connect(":memory:") as con:
        feed = Feed(con)
        feed.send(("m1", 1, [("user_id", "guest"), ("anonymous_id", "a1")]),
                  ("m2", 2, [("user_id", " Guest "), ("anonymous_id", "a2")]))
        feed.send(("m3", 3, [("user_id", "GUEST"), ("anonymous_id", "a3")]), ("m4", 4, [("user_id", "guest")]),
                  ("m5", 5, [("user_id", "u1"), ("anonymous_id", "undefined")]),
                  ("m6", 6, [("user_id", "u2"), ("anonymous_id", "undefined")]))
        assert feed.events() == {"m1": "anon:a1", "m2": "anon:a2", "m3": "anon:a3", "m4": "anon:m4",
                                 "m5": "u1", "m6": "u2"}
        assert con.execute("SELECT count(*) FROM identities WHERE lower(trim(value)) IN ('guest', 'undefined')"
                           ).fetchone()[0] == 0
        reasons = feed.reasons("refused: placeholder")
        assert len(reasons) == 4  # guest, " Guest ", GUEST are three values as given; and undefined
        assert all("placeholder_identifiers" in r for r in reasons)


def test_rules_changed_between_runs_are_applied_to_the_stored_graph():
    """A graph built without a cap is split when the service restarts with one, joined again when
    the cap is lifted, and a value added to the placeholder list is taken out of the links."""
    with connect(":memory:") as con:
        feed = Feed(con, max_linked_identifiers=None)
        feed.send(*[(f"m{i}", i, [("user_id", "hub"), ("anonymous_id", f"a{i}")]) for i in range(5)],
                  ("k1", 6, [("user_id", "ann"), ("anonymous_id", "kiosk")]),
                  ("k2", 7, [("anonymous_id", "kiosk"), ("email", "ann@x.io")]))
        assert feed.person("anonymous_id", "a4") == "hub" and feed.person("email", _email_key("ann@x.io")) == "ann"
        capped = Feed(con, max_linked_identifiers=3)
        capped.send(("x", 10, [("anonymous_id", "other")]))
        assert [feed.person("anonymous_id", f"a{i}") for i in range(5)] == [f"anon:a{i}" for i in range(5)]
        assert feed.events()["m4"] == "anon:a4"
        free = Feed(con, max_linked_identifiers=None, placeholders=["kiosk"])
        free.send(("y", 11, [("anonymous_id", "other")]))
        assert {feed.person("anonymous_id", f"a{i}") for i in range(5)} == {"hub"}
        assert feed.events()["m4"] == "hub"
        assert feed.person("anonymous_id", "kiosk") == "anon:kiosk"
        assert feed.person("email", _email_key("ann@x.io")) == "anon:email=" + _email_key("ann@x.io")
        assert feed.events()["k2"] == "anon:email=" + _email_key("ann@x.io")


def test_the_writer_takes_journal_records_in_order_and_never_overtakes_a_job():
    """Structure, not timing: groups follow the journal's order (its applied position is the last
    record of a group, so no record may overtake another), and a job is never overtaken. A small
    request no longer waits behind large batches for its answer: it is acknowledged once durable
    in the journal (issue 18 then issue 22; patron.service.journal)."""
    import concurrent.futures
    from types import SimpleNamespace

    from patron.service.settings import ServiceRules
    from patron.service.writer import MAX_GROUP_EVENTS, Writer, _Job, _Submission

    writer = Writer(SimpleNamespace(rules=ServiceRules(commit_interval_ms=0)))
    big = [_Submission([object()] * MAX_GROUP_EVENTS, None, None, seq=n + 1) for n in range(3)]
    track = _Submission([object()], None, None, seq=4)
    job = _Job(lambda con: None, concurrent.futures.Future())
    late = _Submission([object()], None, None, seq=5)
    for entry in (*big, track, job, late):
        writer._queue.append(entry)
        writer._queued_events += len(getattr(entry, "items", ()))
    groups = [writer._take() for _ in range(6)]
    assert groups[:4] == [[big[0]], [big[1]], [big[2]], [track]]  # at most MAX_GROUP_EVENTS a group
    assert groups[4:] == [job, [late]]
    assert writer._queued_events == 0


@st.composite
def arriving_event_sets(draw):
    """Events in time order on shared devices ("d1", "d2"), mostly with new identifiers: what
    grows conflicted clusters in real traffic."""
    events = []
    for j in range(draw(st.integers(2, 16))):
        ids = [("user_id", draw(st.sampled_from(["u1", "u2", "u3", f"u{j}x"])))] if draw(st.booleans()) else []
        ids.append(("anonymous_id", draw(st.sampled_from(["d1", "d2", f"a{j}", f"a{j}"]))))
        if draw(st.integers(0, 3)) == 0:
            ids.append(("email", draw(st.sampled_from(["ann@x.io", f"n{j}@x.io"]))))
        events.append((f"m{j:02d}", BASE + timedelta(minutes=j), ids))
    return events


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=arriving_event_sets(), unique=st.sampled_from([["user_id"], ["user_id", "email"]]),
       cap=st.sampled_from([2, 3, None]), data=st.data())
def test_links_arriving_in_time_order_into_conflicted_clusters_give_the_replayed_result(events, unique, cap, data):
    """Events in time order (how they arrive), so that links are appended to conflicted clusters
    without a replay; a few swapped pairs arrive late and force one."""
    timed = events
    expected_person, expected_events = limited_reference(timed, set(unique), cap)
    arrivals = [tuple_event(ev) for ev in timed]
    for i in data.draw(st.lists(st.integers(0, max(0, len(arrivals) - 2)), max_size=2), label="late pairs"):
        if i + 1 < len(arrivals):
            arrivals[i], arrivals[i + 1] = arrivals[i + 1], arrivals[i]
    cuts = data.draw(st.lists(st.integers(0, len(arrivals)), min_size=3, max_size=10), label="batch cuts")
    person, by_event, by_order = _run_limited(_split(arrivals, cuts), unique, cap)
    assert person == expected_person
    assert by_event == expected_events
    assert by_order == expected_events
