"""Slow and vanishing clients against ``patron serve``: a request body must arrive in time (408
otherwise), a client that disconnects mid-body costs one log line (not two tracebacks, as in
issue 18), and neither stops the service answering others.

Raw sockets, because HTTP clients send whole bodies: each test writes the request head and part of
the body, then stalls, trickles or closes. The time-limit tests run a service with short limits
(``body_idle_seconds = 1``, ``body_timeout_seconds = 3``) so the test takes seconds.
"""

from __future__ import annotations

import base64
import select
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.service_support import running_service

pytestmark = pytest.mark.slow

IDLE_S = 1.0
TOTAL_S = 3.0
CLIENTS = 40
"""Clients that disconnect mid-body at once (issue 18 measured 300: 600 tracebacks)."""


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory):
    """The service with its default rules."""
    with running_service(tmp_path_factory.mktemp("gone") / "g.duckdb") as svc:
        yield svc


@pytest.fixture(scope="module")
def impatient(tmp_path_factory: pytest.TempPathFactory):
    """The service with short body time limits."""
    tmp = tmp_path_factory.mktemp("slow")
    config = tmp / "rules.toml"
    config.write_text(f"[service]\nbody_idle_seconds = {IDLE_S}\nbody_timeout_seconds = {TOTAL_S}\n")
    with running_service(tmp / "s.duckdb", config=config) as svc:
        yield svc


def _start(svc, length: int = 200) -> socket.socket:
    """A connection that sent the head of ``POST /v1/track`` (``Content-Length: length``) and the
    first 10 bytes of the body."""
    key = base64.b64encode((svc.keys["write"] + ":").encode()).decode()
    s = socket.create_connection(("127.0.0.1", svc.port), timeout=30)
    s.sendall(f"POST /v1/track HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {key}\r\n"
              f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n".encode() + b'{"userId":')
    return s


def _answer(s: socket.socket) -> bytes:
    data = b""
    try:
        while chunk := s.recv(4096):
            data += chunk
    except OSError:
        pass
    return data


def test_clients_that_leave_mid_body_cost_one_line_each(service) -> None:
    lines_before = service.log.read_text().count("\n")

    def leave(_: int) -> None:
        s = _start(service)
        time.sleep(0.2)
        s.close()

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(leave, range(CLIENTS)))
    time.sleep(1.0)
    assert httpx.get(service.url + "/health", timeout=10).status_code == 200
    new = service.log.read_text().splitlines()[lines_before:]
    gone = [line for line in new if "client disconnected before the request body was complete (10 of 200 bytes)" in line]
    assert len(gone) == CLIENTS, new[:10]
    assert all(line.startswith("POST /v1/track from 127.0.0.1:") for line in gone)
    assert len(new) == CLIENTS and "Traceback" not in "\n".join(new)


def test_a_stalled_body_gets_408_and_others_are_served_meanwhile(impatient) -> None:
    s = _start(impatient)
    started = time.monotonic()
    with httpx.Client(base_url=impatient.url, auth=impatient.auth("write"), timeout=30) as w:
        served = w.post("/v1/track", json={"userId": "quick", "messageId": "q-1", "event": "Viewed"})
    answer = _answer(s)
    waited = time.monotonic() - started
    s.close()
    assert served.status_code == 200
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"connection: close" in answer.lower()
    assert IDLE_S * 0.8 < waited < TOTAL_S + 5, waited


def test_a_trickling_body_gets_408_after_the_whole_body_limit(impatient) -> None:
    s = _start(impatient)
    started = time.monotonic()
    # one byte every half idle period (never idle too long, never done), until the answer comes
    while time.monotonic() - started < TOTAL_S + 5:
        readable, _, _ = select.select([s], [], [], IDLE_S / 2)
        if readable:
            break
        s.sendall(b" ")
    waited = time.monotonic() - started
    answer = _answer(s)
    s.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert TOTAL_S * 0.8 < waited < TOTAL_S + 5, waited
    log = impatient.log.read_text()
    assert "request body too slow (whole body" in log and "Traceback" not in log
