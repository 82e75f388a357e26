"""Erasure that leaves nothing (issue 16, item 2): after erasure through the API and the CLI, no
identifier, e-mail (any case), e-mail hash, phone (any format) or trait of the person occurs in any
byte of the database file or its write-ahead log, dead letters and other persons' rows included;
a replay after a restart does not bring them back; a kill -9 during an erasure leaves no copy. The
snapshot a running service keeps for the CLI (``shop.duckdb.snapshot``) is scanned the same way.

The person, ``c-zqxj-17``, is everywhere the issue found traces: a customers file (e-mail, phone,
name, city) and a malformed line of it holding the e-mail, orders in a file whose *name* holds the
e-mail, referrals naming the e-mail in upper case and the phone in another format, web events under
another userId and the e-mail in another case (merged into the file customer), a shared device on
which another user was refused, dead letters under their anonymousId and with their userId sent as
a list (holding e-mail and name), another user's identify carrying their e-mail. Every text of
theirs holds ``zqxj`` (:data:`CORE`), so "not in any byte" is checked for that core in every case
and in UTF-8 and UTF-16, plus the e-mail's SHA-256 and the phone's digits in four formats; the
same scans find them before the erasure (a control: the scans can fail).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import httpx
import pandas as pd
import pytest

import patron
from patron.data.served import snapshot_file, snapshot_tmp
from patron.data.store import erasure_copies, erasure_lock_path
from patron.people.rights import erase_customer
from tests.service_support import Service, create_keys, free_port
from tests.test_rights_data import needles

PERSON = "c-zqxj-17"
WEB_ID = "web-zqxj-7"
ANON_ID = "anon-zqxj-7"
EMAIL = "Zqxj.Person@Example.ORG"
PHONE = "+1 (555) 010-7788"
CORE = "zqxj"
"""Held by every id, address, name, city, order id and file name of the person."""
EMAIL_HASH = hashlib.sha256(EMAIL.lower().encode()).hexdigest()
PHONE_FORMS = ("+15550107788", "15550107788", "5550107788", "555-010-7788", "(555) 010-7788", "555.010.7788")
OTHER = "web-other-3"
"""A user who logs in on the person's device (refused: user ids are unique) and sends their e-mail."""


def _cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "patron", *args], capture_output=True, text=True, timeout=300)
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def traces(db: Path) -> list[str]:
    """Every form of the person found in the bytes of the database file and its write-ahead log."""
    data = db.read_bytes()
    wal = Path(str(db) + ".wal")
    if wal.exists():
        data += wal.read_bytes()
    found = [n.decode("latin-1") for n in needles(CORE, EMAIL_HASH) if n in data]
    return found + [f for f in PHONE_FORMS if f.encode() in data]


def leftovers(db: Path) -> list[str]:
    """Files an erasure may leave beside the database: copies, their logs, the lock."""
    return [p.name for p in [*erasure_copies(db), erasure_lock_path(db)] if p.exists()]


def snapshots(db: Path) -> list[Path]:
    """The service's snapshot of the database beside it, and snapshots being (or left half) written."""
    snap = snapshot_file(db)
    return sorted(p for p in db.parent.glob(f"*{snap.name}*") if p.is_file())


def wait_for_snapshot(db: Path, timeout: float = 60.0) -> Path:
    """The service's snapshot once it is written (at start-up, on its thread)."""
    snap, deadline = snapshot_file(db), time.monotonic() + timeout
    while not snap.exists():
        assert time.monotonic() < deadline, "the service wrote no snapshot"
        time.sleep(0.05)
    return snap


# -- the world -----------------------------------------------------------------------------------


def build_files(root: Path, db: Path) -> None:
    """The file side: orders (in a file named after the e-mail), customers (with a malformed line),
    consents, referrals; ingested as a user would."""
    others = [f"c-{i:03d}" for i in range(1, 31)]
    orders = [{"customer_id": PERSON, "order_id": f"zqxj-o{i}", "occurred_at": f"2024-0{i}-05", "amount": 10.0 * i}
              for i in range(1, 4)]
    orders += [{"customer_id": c, "order_id": f"{c}-o1", "occurred_at": "2024-02-01", "amount": 7.0} for c in others]
    named = root / f"orders-{EMAIL.lower()}.csv"
    pd.DataFrame(orders).to_csv(named, index=False)
    patron.ingest(str(named), kind="transactions", db=str(db))
    lines = ["customer_id,first_seen,email,phone,name,city",
             f"{PERSON},2024-01-01,{EMAIL.lower()},{PHONE},Zqxjname Qwvk,Zqxjville",
             *[f"{c},2024-01-01,{c}@example.com,,Someone,Lyon" for c in others],
             f"c-999,2024-01-01,{EMAIL.lower()},x,Zqxjname,Zqxjville,extra"]  # a malformed line holding the e-mail
    (root / "customers.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    patron.ingest(str(root / "customers.csv"), kind="customers", db=str(db))
    pd.DataFrame([{"customer_id": PERSON, "purpose": "marketing", "channel": "email", "status": "granted",
                   "occurred_at": "2024-01-02"}]).to_csv(root / "consents.csv", index=False)
    patron.ingest(str(root / "consents.csv"), kind="consents", db=str(db))
    pd.DataFrame([{"referrer_id": "c-001", "referred_id": EMAIL.upper(), "occurred_at": "2024-01-03", "kind": "invited"},
                  {"referrer_id": "c-002", "referred_id": "555.010.7788", "occurred_at": "2024-01-04", "kind": "invited"},
                  {"referrer_id": "c-003", "referred_id": "c-004", "occurred_at": "2024-01-04", "kind": "invited"}]
                 ).to_csv(root / "referrals.csv", index=False)
    patron.ingest(str(root / "referrals.csv"), kind="referrals", db=str(db))


PERSON_EVENTS = [
    {"type": "page", "messageId": "zqxj-m0", "anonymousId": ANON_ID, "name": "Home", "timestamp": "2024-03-01T09:55:00Z"},
    {"type": "identify", "messageId": "zqxj-m1", "anonymousId": ANON_ID, "userId": WEB_ID,
     "traits": {"email": EMAIL, "name": "Zqxjname Qwvk", "phone": PHONE}, "timestamp": "2024-03-01T10:00:00Z"},
    {"type": "track", "messageId": "zqxj-m2", "userId": WEB_ID, "event": "Order Completed",
     "properties": {"order_id": "zqxj-w1", "revenue": 12.5}, "timestamp": "2024-03-01T10:05:00Z"},
]
"""The person's web events (their e-mail in another case than the file's)."""

OTHER_EVENTS = [
    {"type": "identify", "messageId": "oth-m1", "anonymousId": ANON_ID, "userId": OTHER,
     "traits": {"email": "other3@example.com"}, "timestamp": "2024-03-02T10:00:00Z"},  # shared device: refused
    {"type": "identify", "messageId": "oth-m2", "userId": OTHER, "traits": {"email": EMAIL.upper()},
     "timestamp": "2024-03-02T10:01:00Z"},  # the person's e-mail in another's identify: refused
    {"type": "track", "messageId": "oth-m3", "userId": OTHER, "event": "Order Completed",
     "properties": {"order_id": "oth-o1", "revenue": 5}, "timestamp": "2024-03-02T10:02:00Z"},
]

DEAD = [
    {"type": "track", "messageId": "zqxj-d1", "anonymousId": ANON_ID, "properties": {"x": 1},
     "timestamp": "2024-03-01T11:00:00Z"},  # no event name: a dead letter under their anonymousId
    {"type": "identify", "messageId": "zqxj-d2", "userId": [WEB_ID], "traits": {"email": EMAIL, "name": "Zqxjname Qwvk"},
     "timestamp": "2024-03-01T11:01:00Z"},  # userId sent as a list
    {"type": "track", "messageId": "oth-d1", "userId": OTHER, "anonymousId": ANON_ID, "properties": {},
     "timestamp": "2024-03-02T11:00:00Z"},  # another user's dead letter on the shared device
]


def send(svc: Service, events: list[dict]) -> list[httpx.Response]:
    out = []
    with svc.client("write") as c:
        for ev in events:
            out.append(c.post(f"/v1/{ev['type']}", json=ev))
    return out


def build_world(root: Path) -> tuple[Path, dict[str, str]]:
    """The database with the person everywhere (module docstring); returns it and its keys."""
    db = root / "shop.duckdb"
    keys = create_keys(db)
    build_files(root, db)
    svc = Service(db=db, port=free_port(), keys=keys, log=root / "serve.log")
    svc.start(timeout=90)
    try:
        assert all(r.status_code == 200 for r in send(svc, PERSON_EVENTS + OTHER_EVENTS))
        assert [r.status_code for r in send(svc, DEAD)] == [400, 400, 400]
        with svc.client("read") as c:
            assert c.get(f"/v1/customers/{WEB_ID}").json()["customer_id"] == PERSON
            assert c.get(f"/v1/customers/{OTHER}").json()["customer_id"] == OTHER
    finally:
        svc.stop()
    return db, keys


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    return build_world(tmp_path_factory.mktemp("template"))


def copy_world(template: tuple[Path, dict[str, str]], root: Path) -> tuple[Path, dict[str, str]]:
    src, keys = template
    db = root / "shop.duckdb"
    db.write_bytes(src.read_bytes())
    return db, keys


def _state(db: Path) -> dict[str, int]:
    """Rows of the person's id, and of the bystanders, as independent SQL counts them."""
    with duckdb.connect(str(db), read_only=True) as con:
        return {
            "person_customers": con.execute("SELECT count(*) FROM customers WHERE customer_id = ?", [PERSON]).fetchall()[0][0],
            "other_orders": con.execute("SELECT count(*) FROM transactions WHERE customer_id = ?", [OTHER]).fetchall()[0][0],
            "customers": con.execute("SELECT count(*) FROM customers").fetchall()[0][0],
            "erasures": con.execute("SELECT count(*) FROM erasures").fetchall()[0][0] if con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'erasures'").fetchall()[0][0] else 0,
        }


# -- tests ---------------------------------------------------------------------------------------


def test_the_scans_see_the_person_before_the_erasure(template):
    """Control: the byte scan finds every form (core in several cases, hash, phone) before."""
    db, _ = template
    found = traces(db)
    assert CORE.encode() in db.read_bytes() and EMAIL_HASH in found and "+15550107788" in found
    with duckdb.connect(str(db), read_only=True) as con:  # the places the issue names hold them now
        assert con.execute("SELECT count(*) FROM dead_letters WHERE contains(lower(payload), ?)", [CORE]).fetchall()[0][0] == 3
        assert con.execute("SELECT count(*) FROM ingests WHERE contains(source, ?)", [EMAIL.lower()]).fetchall()[0][0] == 1
        assert con.execute("SELECT count(*) FROM rejects WHERE contains(value, ?)", [EMAIL.lower()]).fetchall()[0][0] == 1
        assert con.execute("SELECT count(*) FROM events WHERE customer_id = ? AND anonymous_id = ?", [OTHER, ANON_ID]).fetchall()[0][0] == 1


def _replay_after_restart(db: Path, keys: dict[str, str], root: Path) -> dict:
    """Restart the service, resend every event and dead letter of the person (same messageIds) and
    new ones under their identifiers, and another user's events on the shared device."""
    svc = Service(db=db, port=free_port(), keys=keys, log=root / "serve-replay.log")
    svc.start(timeout=90)
    fresh = [{**ev, "messageId": "new-" + ev["messageId"], "timestamp": "2030-01-01T00:00:00Z"} for ev in PERSON_EVENTS]
    fresh = [{**ev, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())} for ev in fresh]
    try:
        replayed = send(svc, PERSON_EVENTS + DEAD + fresh)
        other = send(svc, [{"type": "track", "messageId": "oth-m9", "userId": OTHER, "anonymousId": ANON_ID,
                            "event": "Order Completed", "properties": {"order_id": "oth-o9", "revenue": 3},
                            "timestamp": "2024-04-01T10:00:00Z"}])
        with svc.client("read") as c:
            lookups = {i: c.get(f"/v1/customers/{i}").status_code for i in (PERSON, WEB_ID, ANON_ID, EMAIL, "555-010-7788")}
            other_view = c.get(f"/v1/customers/{OTHER}").json()
    finally:
        svc.stop()
    with duckdb.connect(str(db), read_only=True) as con:
        dropped = con.execute("SELECT sum(events) FROM suppressed_events").fetchall()[0][0]
    return {"replayed": [r.status_code for r in replayed], "other": other[0].status_code, "lookups": lookups,
            "other_view": other_view, "dropped": dropped, "sent": len(PERSON_EVENTS + DEAD + fresh)}


def _check_erased_then_replayed(db: Path, keys: dict[str, str], root: Path) -> None:
    assert traces(db) == []
    assert leftovers(db) == []
    state = _state(db)
    assert state["person_customers"] == 0 and state["erasures"] == 1 and state["other_orders"] == 1
    out = _replay_after_restart(db, keys, root)
    # events answered as stored (200), dead letters as before (400); none kept, all counted
    assert out["replayed"] == [200] * len(PERSON_EVENTS) + [400] * len(DEAD) + [200] * len(PERSON_EVENTS)
    assert out["dropped"] == out["sent"] - 1  # all but the other user's dead letter on the device (stripped, kept)
    assert set(out["lookups"].values()) == {404}, out["lookups"]
    assert out["other"] == 200 and {o["order_id"] for o in out["other_view"]["recent_orders"]} == {"oth-o1", "oth-o9"}
    assert traces(db) == [], "a replay brought the person back"


def test_erasure_through_the_api_leaves_no_byte_and_replays_do_not_recreate(template, tmp_path):
    db, keys = copy_world(template, tmp_path)
    svc = Service(db=db, port=free_port(), keys=keys, log=tmp_path / "serve.log")
    svc.start(timeout=90)
    try:
        assert traces(wait_for_snapshot(db)), "control: the snapshot for the CLI holds the person"
        with svc.client("admin") as c:
            r = c.delete(f"/v1/customers/{EMAIL.upper()}")
            assert r.status_code == 200, r.text
            # the snapshot is written again before the erasure is answered, without the person
            assert [p.name for p in snapshots(db)] == [snapshot_file(db).name]
            assert traces(snapshot_file(db)) == []
            receipt = r.json()
            assert CORE not in r.text.lower() and receipt["suppressed"] > 0
            assert receipt["tables"]["dead_letters"] == {"deleted": 2, "pseudonymized": 0}
            assert receipt["tables"]["referrals"] == {"deleted": 2, "pseudonymized": 0}
            assert receipt["tables"]["rejects"] == {"deleted": 1, "pseudonymized": 0}
            for ident in (PERSON, WEB_ID, ANON_ID, EMAIL.lower()):
                assert c.get(f"/v1/customers/{ident}").status_code == 404, ident
            assert c.get(f"/v1/customers/{OTHER}").status_code == 200
    finally:
        svc.stop()
    _check_erased_then_replayed(db, keys, tmp_path)


def test_erasure_through_the_cli_leaves_no_byte_and_replays_do_not_recreate(template, tmp_path):
    db, keys = copy_world(template, tmp_path)
    done = _cli("erase-customer", "555 010 7788", "--db", str(db), "--yes", "--json")  # the phone in another format
    result = json.loads(done.stdout)
    assert CORE not in done.stdout.lower() and result["rows_deleted"] > 0
    assert any(f.endswith("customers.customers.rejects.csv") for f in result["rejects_files"])
    _check_erased_then_replayed(db, keys, tmp_path)


def test_a_person_who_comes_back_of_their_own_will_is_a_new_person(template, tmp_path):
    """The documented rule: a consent grant after the erasure lifts the suppression of the
    identifiers it carries; old messageIds stay suppressed; nothing old comes back."""
    db, keys = copy_world(template, tmp_path)
    erase_customer(db, PERSON)
    svc = Service(db=db, port=free_port(), keys=keys, log=tmp_path / "serve.log")
    svc.start(timeout=90)
    now = datetime.now(UTC).isoformat()  # after the erasure (to the microsecond), not in the future
    try:
        plain = send(svc, [{"type": "identify", "messageId": "back-0", "userId": WEB_ID, "traits": {"plan": "x"},
                            "timestamp": now}])
        with svc.client("read") as c:
            assert c.get(f"/v1/customers/{WEB_ID}").status_code == 404  # no consent: still suppressed
        back = send(svc, [{"type": "track", "messageId": "back-1", "userId": WEB_ID, "event": "Consent Updated",
                           "properties": {"purpose": "marketing", "channel": "email", "status": "granted"}, "timestamp": now},
                          *PERSON_EVENTS])
        with svc.client("read") as c:
            view = c.get(f"/v1/customers/{WEB_ID}").json()
    finally:
        svc.stop()
    assert plain[0].status_code == 200 and [r.status_code for r in back] == [200] * 4
    assert view["customer_id"] == WEB_ID and view["recent_orders"] == [] and view["traits"] == {}
    assert [c["reason"] for c in view["consents"]] == ["granted"]
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT sum(returned) FROM suppressed_events").fetchall()[0][0] == 1
        stored = {r[0] for r in con.execute("SELECT message_id FROM events WHERE customer_id = ?", [WEB_ID]).fetchall()}
    assert stored == {"back-1"}  # the old events (their messageIds) never come back


# -- kill -9 ---------------------------------------------------------------------------------------

STAGES = ("copying", "verifying", "replacing", "replaced")
"""Where a killed CLI erasure stops: writing rows into the copy (transaction open), verifying the
committed copy, just before the copy replaces the database, just after."""

_STOPPER = textwrap.dedent('''
    import os, sys, time
    import patron.people.rights.erase as erase
    stage, marker, db, who = sys.argv[1:5]

    def stop(where):
        if where == stage:
            open(marker, "w").close()
            time.sleep(600)

    copy_table, verify, replace = erase._copy_table, erase._verify, erase.os.replace
    def _copy_table(*a, **k):
        stop("copying")
        return copy_table(*a, **k)
    def _verify(*a, **k):
        stop("verifying")
        return verify(*a, **k)
    class _Os:
        def __getattr__(self, name):
            return getattr(os, name)
        def replace(self, a, b):
            stop("replacing")
            replace(a, b)
            stop("replaced")
    erase._copy_table, erase._verify, erase.os = _copy_table, _verify, _Os()
    erase.erase_customer(db, who)
''')


@pytest.mark.parametrize("stage", STAGES)
def test_a_cli_erasure_killed_at_any_stage_leaves_no_copy_and_is_done_or_undone(template, tmp_path, stage):
    db, _ = copy_world(template, tmp_path)
    before = _state(db)
    marker = tmp_path / "marker"
    proc = subprocess.Popen([sys.executable, "-c", _STOPPER, stage, str(marker), str(db), PERSON])
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, f"the erasure ended before reaching {stage}"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert leftovers(db), "the killed erasure was writing a copy (a control: the cleanup has work)"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    _cli("export-customer", OTHER, "--db", str(db), "--out", str(tmp_path / "other.json"))  # any next start
    assert leftovers(db) == []
    after = _state(db)
    if stage == "replaced":  # done
        assert after["person_customers"] == 0 and after["erasures"] == before["erasures"] + 1
        assert traces(db) == []
    else:  # undone: the database as it was; the erasure runs again
        assert after == before
        erase_customer(db, PERSON)
        assert traces(db) == [] and leftovers(db) == []


def test_a_service_killed_during_an_erasure_leaves_no_copy(template, tmp_path):
    """kill -9 of patron serve while DELETE /v1/customers/... rewrites the file: at the next start
    the copy is gone, the database is whole (the erasure done or not done), and erasing again
    leaves nothing."""
    db, keys = copy_world(template, tmp_path)
    svc = Service(db=db, port=free_port(), keys=keys, log=tmp_path / "serve.log")
    svc.start(timeout=90)
    assert traces(wait_for_snapshot(db)), "control: the snapshot for the CLI holds the person"
    seen: list[list[str]] = []

    def erase() -> None:
        try:
            httpx.delete(svc.url + f"/v1/customers/{PERSON}", auth=svc.auth("admin"), timeout=60)
        except httpx.HTTPError:
            pass  # the server died under it

    worker = threading.Thread(target=erase)
    worker.start()
    deadline = time.monotonic() + 60
    while not erasure_copies(db) and time.monotonic() < deadline and worker.is_alive():
        time.sleep(0.001)
    seen.append(leftovers(db))
    svc.kill()
    worker.join()
    assert any(n.startswith(f".{db.name}.erasing-") for n in seen[0]), "the kill came during the copy"
    assert snapshots(db) == [], "the service's snapshot (a copy of the person) outlived the killed erasure"
    svc.start(timeout=90)
    try:
        assert leftovers(db) == []
        with svc.client("admin") as c:
            if c.get(f"/v1/customers/{PERSON}").status_code == 200:  # not done: erase again
                assert c.delete(f"/v1/customers/{PERSON}").status_code == 200
            assert c.get(f"/v1/customers/{OTHER}").status_code == 200
        assert traces(snapshot_file(db)) == []
    finally:
        svc.stop()
    assert leftovers(db) == [] and traces(db) == [] and snapshots(db) == []


def _dead_pid() -> int:
    """The process id of a process that has ended."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("surface", ["cli", "serve"])
def test_snapshots_left_by_a_killed_service_go_with_the_next_erasure_or_start(template, tmp_path, surface):
    """A service killed while it kept (or wrote) its snapshot leaves a whole copy of the database
    beside it: the next erasure (CLI) or the next start of the service deletes them, and a
    snapshot being written by a live process is left alone."""
    db, keys = copy_world(template, tmp_path)
    dead = [snapshot_file(db), snapshot_tmp(db, _dead_pid())]
    live = snapshot_tmp(db, os.getpid())  # this test process is alive: not a dead writer's
    for p in [*dead, live]:
        p.write_bytes(db.read_bytes())
    assert all(traces(p) for p in dead)
    if surface == "cli":
        _cli("erase-customer", PERSON, "--db", str(db), "--yes")
        assert snapshots(db) == [live]
    else:
        svc = Service(db=db, port=free_port(), keys=keys, log=tmp_path / "serve.log")
        svc.start(timeout=90)
        try:
            assert not dead[1].exists() and live.exists()
        finally:
            svc.stop()
        assert snapshots(db) == [live]
    live.unlink()


def test_the_export_holds_every_row_the_erasure_removes(template, tmp_path):
    """Right of access and right to erasure see the same person: per table, the export's rows are
    the rows the erasure deletes or keeps under a pseudonym (dead letters, rejects, referrals by
    another spelling, the identity graph included)."""
    from patron.people.rights import export_customer

    db, _ = copy_world(template, tmp_path)
    doc = export_customer(db, EMAIL.upper())
    result = erase_customer(db, WEB_ID)
    exported = {t: len(rows) for t, rows in doc["tables"].items() if rows}
    erased = {t: c["deleted"] + c["pseudonymized"] for t, c in result.tables.items() if c["deleted"] + c["pseudonymized"]}
    assert exported == erased
    assert {"dead_letters", "rejects", "referrals", "events", "identities", "identity_observations"} <= set(exported)
    assert doc["customer_id"] == PERSON and {WEB_ID, ANON_ID, EMAIL.lower(), PHONE} <= set(doc["identifiers"])


def test_a_file_ingested_again_says_it_names_an_erased_person(template, tmp_path):
    """Files are not filtered (the business's own record), but the ingest counts and reports the
    rows that name an erased person: the person's row of the customers file, once."""
    db, _ = copy_world(template, tmp_path)
    erase_customer(db, PERSON)
    again = tmp_path / "again.csv"
    again.write_text(Path(template[0].parent / "customers.csv").read_text(encoding="utf-8"), encoding="utf-8")
    warned = _cli("ingest", str(again), "--kind", "customers", "--db", str(db))
    assert "warning: 1 row(s) of this file name a person erased before" in " ".join(warned.stderr.split())
    (tmp_path / "second").mkdir()
    db2, _ = copy_world(template, tmp_path / "second")
    erase_customer(db2, PERSON)
    assert patron.ingest(str(again), kind="customers", db=str(db2)).erased_before == 1
