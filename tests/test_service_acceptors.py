"""``patron serve --workers 2``: acceptor processes answer the event endpoints, the owner process
everything else (patron.service.acceptors, patron.service.acceptor). What a client sees must be
what one process gives: the same answers, read-your-writes, keys revoked at once, no duplicate."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import httpx
import psutil
import pytest

from tests.service_support import Service, create_keys, free_port

T0 = "2024-03-01T10:00:00Z"


def _order(n: int, user: str = "ann") -> dict[str, Any]:
    return {"userId": user, "event": "Order Completed", "messageId": f"ord-{n}", "timestamp": T0,
            "properties": {"order_id": f"o{n}", "revenue": 10 + n, "currency": "USD"}}


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("acceptors")
    db = tmp / "a.duckdb"
    service = Service(db=db, port=free_port(), keys=create_keys(db), log=tmp / "serve.log",
                      command=(sys.executable, "-m", "patron", "serve", "--workers", "2"))
    service.start(timeout=90)
    try:
        yield service
    finally:
        service.stop()


def _acceptors(svc: Service) -> list[psutil.Process]:
    """The live acceptor processes of ``svc`` (a dead one not reaped yet is left out)."""
    assert svc.process is not None
    out = []
    for p in psutil.Process(svc.process.pid).children(recursive=True):
        try:
            if "patron.service.acceptor" in " ".join(p.cmdline()):
                out.append(p)
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            continue
    return out


def test_two_acceptor_processes_answer_the_port(svc: Service) -> None:
    assert len(_acceptors(svc)) == 2
    with svc.client() as c:
        assert c.get("/health").json()["status"] == "ok"  # passed through to the owner


def test_each_event_is_readable_once_acknowledged_whichever_process_answers(svc: Service) -> None:
    """Read-your-writes across processes: each order, right after its 200 (sent on a new
    connection, so the kernel may give it to either acceptor), is in the person's profile."""
    for n in range(12):
        with svc.client("write") as w:
            assert w.post("/v1/track", json=_order(n, "bob")).status_code == 200
        with svc.client("read") as r:
            orders = r.get("/v1/customers/bob").json()["recent_orders"]
        assert f"o{n}" in {o["order_id"] for o in orders}


def test_a_retry_is_stored_once_and_a_bad_event_is_a_400_with_a_dead_letter(svc: Service) -> None:
    with svc.client("write") as w:
        for _ in range(3):
            assert w.post("/v1/track", json=_order(100, "cy")).json() == {"success": True}
        bad = w.post("/v1/track", json={"userId": "cy", "messageId": "bad-1", "timestamp": T0})
        assert bad.status_code == 400 and "track: event is required" in bad.json()["error"]
        batch = w.post("/v1/batch", json={"batch": [{**_order(101, "cy"), "type": "track"},
                                                    {"type": "track", "userId": "cy", "messageId": "bad-2"}]})
        assert batch.status_code == 200 and batch.json()["accepted"] == 1
    with svc.client("admin") as a:
        dead = {d["message_id"] for d in a.get("/v1/dead-letters").json()}
        orders = [o["order_id"] for o in a.get("/v1/customers/cy").json()["recent_orders"]]
    assert {"bad-1", "bad-2"} <= dead
    assert sorted(orders) == ["o100", "o101"]


def test_keys_are_checked_by_the_acceptors_and_a_revoked_key_is_refused_at_once(svc: Service) -> None:
    with httpx.Client(base_url=svc.url, timeout=30) as c:
        assert c.post("/v1/track", json=_order(200), auth=("pk_write_nope", "")).status_code == 401
        assert c.post("/v1/track", json=_order(200)).status_code == 401  # no key at all
        assert c.post("/v1/track", content=b"x=1", auth=svc.auth("write"),
                      headers={"content-type": "application/x-www-form-urlencoded"}).status_code == 415
    with svc.client("admin") as a:
        made = a.post("/v1/keys", json={"role": "write", "name": "temp"})
        assert made.status_code in (200, 201), made.text
        key, key_id = made.json()["key"], made.json()["key_id"]
    deadline = time.monotonic() + 10  # a new key reaches the acceptors within a second or so
    with httpx.Client(base_url=svc.url, timeout=30, auth=(key, "")) as w:
        while w.post("/v1/track", json=_order(201)).status_code != 200:
            assert time.monotonic() < deadline, "the new key never reached the acceptors"
            time.sleep(0.1)
        with svc.client("admin") as a:
            assert a.delete(f"/v1/keys/{key_id}").status_code in (200, 204)
        for n in range(6):  # every acceptor refuses it at once: the owner checks each submission
            assert w.post("/v1/track", json=_order(300 + n)).status_code == 401
    with svc.client("admin") as a:
        orders = {o["order_id"] for o in a.get("/v1/customers/ann").json()["recent_orders"]}
    assert "o201" in orders and not orders & {f"o{300 + n}" for n in range(6)}


def test_other_requests_pass_through_unchanged(svc: Service) -> None:
    with httpx.Client(base_url=svc.url, timeout=30) as c:
        assert c.get("/v1/track", auth=svc.auth("write")).status_code == 405
        page = c.get("/", auth=svc.auth("admin"))
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert page.headers["x-frame-options"] == "DENY"  # once, not once per process
        assert c.get("/v1/customers/nobody-at-all", auth=svc.auth("read")).status_code == 404


def test_an_acceptor_that_dies_is_replaced(svc: Service) -> None:
    first = _acceptors(svc)[0]
    os.kill(first.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:
        now = _acceptors(svc)
        if len(now) == 2 and first.pid not in {p.pid for p in now}:
            break
        assert time.monotonic() < deadline, "no acceptor replaced the dead one"
        time.sleep(0.2)
    with svc.client("write") as w:
        for n in range(4):
            assert w.post("/v1/track", json=_order(400 + n, "dee")).status_code == 200


def test_a_stopped_service_leaves_no_acceptor_and_every_event_applied(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    service = Service(db=db, port=free_port(), keys=create_keys(db), log=tmp_path / "serve.log",
                      command=(sys.executable, "-m", "patron", "serve", "--workers", "2"))
    service.start(timeout=90)
    children = _acceptors(service)
    with service.client("write") as w:
        for n in range(30):
            assert w.post("/v1/track", json=_order(n, f"p{n % 3}")).status_code == 200
    service.stop()
    psutil.wait_procs(children, timeout=10)
    assert not [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*), count(DISTINCT order_id) FROM transactions").fetchone() == (30, 30)
