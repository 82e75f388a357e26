"""kill -9 between acknowledgement and delivery loses no trigger firing.

A real ``patron serve`` process (``tests/service_support.py``) fires a thank-you trigger on each
order. The webhook receiver answers 503 until the server has been killed with SIGKILL, so every
firing is acknowledged (its event got a 2xx) and none delivered when the kill comes. After a
restart on the same database the receiver accepts: every order the test sent must reach it, once
per idempotency key, and the outbox must hold one delivered firing per order.
"""

from __future__ import annotations

import duckdb
import pytest

from tests.dialogue_support import Receiver
from tests.service_support import Service, create_keys, free_port

ORDERS = 40
SECRET_ENV = "PATRON_TEST_HOOK_SECRET"


@pytest.mark.slow
def test_kill_9_between_acknowledgement_and_delivery_loses_no_firing(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(SECRET_ENV, "kill-test-secret")
    with Receiver() as rx:
        rx.always["/hook"] = 503
        config = tmp_path / "patron.toml"
        config.write_text(f"""
[[destinations]]
name = "crm"
url = "{rx.url}/hook"
secret_env = "{SECRET_ENV}"
max_attempts = 50

[[triggers]]
name = "thank_you"
event = "Order Completed"
purpose = "order"
destination = "crm"
""")
        db = tmp_path / "k.duckdb"
        svc = Service(db=db, port=free_port(), keys=create_keys(db), config=config, log=tmp_path / "serve.log")
        svc.start(timeout=90)
        try:
            with svc.client("write") as client:
                for start in range(0, ORDERS, 10):
                    batch = []
                    for i in range(start, start + 10):
                        batch += [{"type": "identify", "messageId": f"i{i}", "userId": f"u{i}"},
                                  {"type": "track", "messageId": f"m{i}", "userId": f"u{i}", "event": "Order Completed",
                                   "properties": {"order_id": f"o{i}", "total": 10 + i}}]
                    r = client.post("/v1/batch", json={"batch": batch})
                    assert r.status_code == 200, r.text
            assert rx.wait(lambda r: len(r.to("/hook")) >= 1, timeout=30)  # deliveries are being tried
            assert not rx.accepted
            svc.kill()
            rx.always.pop("/hook")
            svc.start(timeout=90)
            assert rx.wait(lambda r: len(r.accepted) >= ORDERS, timeout=60), len(rx.accepted)
            people = sorted(req.json["customer_id"] for req in rx.accepted.values())
            assert people == sorted(f"u{i}" for i in range(ORDERS))
            assert {req.json["cause"] for req in rx.accepted.values()} == {f"m{i}" for i in range(ORDERS)}
        finally:
            svc.stop()
        with duckdb.connect(str(db), read_only=True) as con:
            rows = con.execute("SELECT state, count(*) FROM trigger_firings GROUP BY ALL").fetchall()
        assert rows == [("delivered", ORDERS)]
