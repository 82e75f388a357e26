"""The CLI beside a running service (issue 16, item 5): read-only commands answer from the snapshot
the service keeps (``<db>.snapshot``), within its documented staleness; writes stop with one line
naming the service; a second server on the same database stops with one line naming the running
one and leaves its marker alone.

Expected values come from the data this file writes (orders of known customers) and from the
same commands run on the database after the service stopped (the CLI reading the file itself).
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import httpx
import pytest

from patron.data.served import service_file, snapshot_file
from tests.service_support import running_service
from tests.test_cli import one_line_error, run

SNAPSHOT_MINUTES = 0.02
"""[service] snapshot_every_minutes of the served database here (1.2 s), so a test sees the
periodic copy without waiting the default 5 minutes."""

LIVENESS_SECONDS = 120.0
"""How long a test waits for the service to take a change into its snapshot before calling the
mechanism broken (the bound is SNAPSHOT_MINUTES plus one copy; the margin is for a loaded machine,
not a performance claim)."""

NOTE = re.compile(r"note: (?P<db>\S+) is held by patron serve \(process (?P<pid>\d+) at (?P<url>\S+)\); reading its "
                  r"snapshot, current as of (?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC")

ERASED = "cust-zqxj-4471"
"""A customer whose id occurs nowhere else, so a scan of the snapshot's bytes can look for it."""

ORDERS = f"""customer_id,occurred_at,amount
cust-alpha,2024-01-01,10
cust-alpha,2024-02-01,20
{ERASED},2024-01-05,30
cust-gamma,2024-01-07,5
cust-gamma,2024-03-07,15
"""


def _serve(tmp_path: Path):
    (tmp_path / "o.csv").write_text(ORDERS)
    assert run("ingest", "o.csv", "--db", "served.duckdb", cwd=tmp_path).returncode == 0
    config = tmp_path / "patron.toml"
    config.write_text(f"[service]\nsnapshot_every_minutes = {SNAPSHOT_MINUTES}\n")
    return running_service(tmp_path / "served.duckdb", config=config)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """A service the tests only read from (or fail to write to)."""
    with _serve(tmp_path_factory.mktemp("beside")) as svc:
        yield svc


@pytest.fixture
def changing(tmp_path: Path):
    """A service of one test that changes its data."""
    with _serve(tmp_path) as svc:
        yield svc


def _note(proc) -> re.Match[str]:
    notes = [m for m in (NOTE.search(line) for line in proc.stderr.splitlines()) if m]
    assert notes, proc.stderr
    return notes[0]


def _customers(tmp_path: Path) -> tuple[int, datetime]:
    """``patron summary --json``'s customer count and the time its snapshot was current."""
    proc = run("summary", "--db", "served.duckdb", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    at = datetime.strptime(_note(proc)["at"], "%Y-%m-%d %H:%M:%S")
    return json.loads(proc.stdout)["customers"], at


def test_status_answers_while_the_service_runs(served) -> None:
    """``patron status --db served.duckdb`` answers (before: refused) and says it reads the
    service's snapshot, naming the service."""
    proc = run("status", "--db", "served.duckdb", "--json", cwd=served.db.parent)
    assert proc.returncode == 0, proc.stderr
    note = _note(proc)
    assert int(note["pid"]) == served.process.pid and note["url"] == served.url
    statuses = json.loads(proc.stdout)
    assert statuses["customers"] == 3  # the customers of ORDERS
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("command", [
    ["summary", "--json"], ["segments"], ["equity"], ["keys", "list"], ["consent"], ["export-customer", "cust-alpha"],
    ["cohorts"], ["profitability"],
])
def test_read_only_commands_answer_from_the_snapshot(served, command) -> None:
    if command[0] in ("segments", "equity"):
        with served.client("admin") as admin:  # their profiles come from the service's refresh
            assert admin.post("/v1/refresh", params={"wait": "true"}, timeout=300).status_code == 200
        _wait_for_copy_after(served.db, time.time())
    proc = run(*command, "--db", "served.duckdb", cwd=served.db.parent)
    assert proc.returncode == 0, proc.stderr
    _note(proc)
    if command[0] == "export-customer":
        doc = json.loads(proc.stdout)
        assert sorted(r["amount"] for r in doc["tables"]["transactions"]) == [10, 20]  # cust-alpha's orders in ORDERS
    if command[0] == "keys":
        assert len(proc.stdout.splitlines()) == 3  # the write, read and admin keys of running_service


def _wait_for_copy_after(db: Path, t: float) -> float:
    """Wait until the snapshot's modification time (when it was last current) is after ``t``."""
    deadline = time.monotonic() + LIVENESS_SECONDS
    snap = snapshot_file(db)
    while time.monotonic() < deadline:
        try:
            m = snap.stat().st_mtime
        except FileNotFoundError:
            m = 0.0
        if m > t:
            return m
        time.sleep(0.2)
    raise AssertionError(f"the snapshot was not current after {LIVENESS_SECONDS} s")


def test_an_answer_holds_every_change_committed_before_its_snapshot(changing) -> None:
    """Events acknowledged before the snapshot's 'current as of' time are in the CLI's answer;
    the service takes them in within snapshot_every_minutes (plus one copy)."""
    tmp = changing.db.parent
    before, _ = _customers(tmp)
    acked = time.time()
    with changing.client("write") as w:
        for i in range(3):
            r = w.post("/v1/track", json={"userId": f"new-{i}", "event": "Order Completed", "messageId": f"m-{i}",
                                          "timestamp": "2024-04-01T10:00:00Z",
                                          "properties": {"order_id": f"n{i}", "revenue": 12}})
            assert r.status_code == 200, r.text
    acked = time.time()
    _wait_for_copy_after(changing.db, acked)
    after, current_at = _customers(tmp)
    assert current_at.replace(tzinfo=UTC).timestamp() >= int(acked)
    assert (before, after) == (3, 6)


def test_writes_stop_with_one_line_naming_the_service(served) -> None:
    tmp = served.db.parent
    for command in (["ingest", "o.csv"], ["keys", "create", "--role", "read"], ["erase-customer", "cust-alpha", "--yes"]):
        proc = run(*command, "--db", "served.duckdb", cwd=tmp)
        one_line_error(proc, "served.duckdb", "patron serve", f"process {served.process.pid}", served.url)
        assert proc.returncode == 2


def test_a_second_server_stops_with_one_line_and_leaves_the_marker(served) -> None:
    marker = service_file(served.db)
    before = marker.read_text()
    proc = run("serve", "--db", "served.duckdb", "--port", "1", cwd=served.db.parent)
    one_line_error(proc, "served.duckdb", "already served", f"process {served.process.pid}", served.url)
    assert proc.returncode == 2
    assert marker.read_text() == before
    assert httpx.get(served.url + "/health", timeout=10).status_code == 200
    status = run("status", "--db", "served.duckdb", cwd=served.db.parent)  # the CLI still finds the service
    assert status.returncode == 0, status.stderr


def test_an_erasure_leaves_no_copy_of_the_person_in_the_snapshot(changing) -> None:
    """The snapshot is rewritten before the erasure is answered: the erased id is in no byte of it."""
    snap = snapshot_file(changing.db)
    _wait_for_copy_after(changing.db, 0)
    assert ERASED.encode() in snap.read_bytes()  # the scan finds the id before the erasure
    with changing.client("admin") as admin:
        r = admin.delete(f"/v1/customers/{ERASED}", params={"transactions": "delete"})
        assert r.status_code == 200, r.text
    con = duckdb.connect(str(snap), read_only=True)
    assert con.execute("SELECT count(*) FROM transactions").fetchone()[0] == 4  # ORDERS without the erased order
    con.close()
    assert ERASED.encode() not in snap.read_bytes()
    assert not Path(str(snap) + ".wal").exists()


def test_the_snapshot_goes_with_the_service(tmp_path: Path) -> None:
    (tmp_path / "o.csv").write_text(ORDERS)
    assert run("ingest", "o.csv", "--db", "s.duckdb", cwd=tmp_path).returncode == 0
    with running_service(tmp_path / "s.duckdb"):
        _wait_for_copy_after(tmp_path / "s.duckdb", 0)
    assert not snapshot_file(tmp_path / "s.duckdb").exists()
    assert not service_file(tmp_path / "s.duckdb").exists()
    proc = run("status", "--db", "s.duckdb", cwd=tmp_path)  # the file itself again, no note
    assert proc.returncode == 0 and "snapshot" not in proc.stderr, proc.stderr


def test_a_killed_service_s_snapshot_is_never_read_and_goes_with_the_next_erasure(tmp_path: Path) -> None:
    (tmp_path / "o.csv").write_text(ORDERS)
    assert run("ingest", "o.csv", "--db", "s.duckdb", cwd=tmp_path).returncode == 0
    with running_service(tmp_path / "s.duckdb") as svc:
        _wait_for_copy_after(tmp_path / "s.duckdb", 0)
        svc.kill()  # SIGKILL: no chance to delete it
    snap = snapshot_file(tmp_path / "s.duckdb")
    assert snap.exists()
    proc = run("status", "--db", "s.duckdb", cwd=tmp_path)  # the file itself: the marker's process is gone
    assert proc.returncode == 0 and "snapshot" not in proc.stderr, proc.stderr
    proc = run("erase-customer", ERASED, "--db", "s.duckdb", "--yes", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not snap.exists()


def test_an_idle_service_marks_its_snapshot_current_without_copying(tmp_path: Path) -> None:
    """Nothing committed since the copy: the next check moves the file's time (current as of the
    check) and copies nothing; a committed event makes the next check copy."""
    from fastapi.testclient import TestClient

    from patron.service import create_app
    from tests.service_support import create_keys

    db = tmp_path / "idle.duckdb"
    keys = create_keys(db)
    snap = snapshot_file(db)
    with TestClient(create_app(db, config={"service": {"snapshot_every_minutes": SNAPSHOT_MINUTES}})) as client:
        snapshots = client.app.state.patron.snapshots
        deadline = time.monotonic() + LIVENESS_SECONDS
        while snapshots.written < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        copies, first = snapshots.written, snap.stat().st_mtime
        _wait_for_copy_after(db, first + 0.5)  # a later check touched it
        assert snapshots.written == copies  # ... without copying
        r = client.post("/v1/track", auth=(keys["write"], ""), json={
            "userId": "idle-1", "event": "Order Completed", "messageId": "idle-m1",
            "properties": {"order_id": "idle-o1", "revenue": 3}})
        assert r.status_code == 200, r.text
        acked = time.time()
        while snapshots.written == copies and time.monotonic() < deadline:
            time.sleep(0.1)
        assert snapshots.written > copies
        _wait_for_copy_after(db, acked)
        con = duckdb.connect(str(snap), read_only=True)
        assert con.execute("SELECT count(*) FROM transactions WHERE order_id = 'idle-o1'").fetchone()[0] == 1
        con.close()
    assert not snap.exists()
