"""The official Segment and RudderStack SDKs, unchanged, pointed at ``patron serve``.

Python: ``segment.analytics`` (segment-analytics-python) and ``rudderstack.analytics``
(rudder-sdk-python), each once in ``sync_mode`` (one request per call) and once queued with
``flush()`` (the SDK's background consumer batches), gzip on (both SDKs support it). Node:
``@segment/analytics-node`` and ``@rudderstack/rudder-sdk-node`` from ``.node-sdks/``
(``scripts/install-node-sdks.sh`` installs them from the npm registry; tests never download, so
without them, or without node, that test is skipped with the reason).

Each sender sends identify (``traits.email``), track ``Order Completed`` (order_id, revenue,
currency, products) and page for its own user id; the SDKs only report failures, so the proof is
in the database, read after the server stopped: the three events in ``events`` (with the SDK's
``context.library`` in the stored payload), the order once in ``transactions`` under the user's id
with the amount and currency sent.

Note: ``@segment/analytics-node`` 2.x sends no ``Authorization`` header: the write key travels as
``writeKey`` in the JSON body of ``/v1/batch`` (the Segment HTTP API accepts both), so the service
must accept that too for this SDK to work unchanged.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.service_support import running_service

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
NODE_SDKS = ROOT / ".node-sdks" / "node_modules"

REVENUE = 59.9
"""``properties.revenue`` of every order sent (EUR)."""

PRODUCTS = [{"product_id": "sku-1", "name": "Moka pot", "price": 39.0, "quantity": 1},
            {"product_id": "sku-2", "name": "Filters", "price": 20.9, "quantity": 1}]

PY_SENDERS = ("segment-sync", "segment-flush", "rudder-sync", "rudder-flush")
NODE_SENDERS = ("segment-node", "rudder-node")

NODE_SCRIPT = r"""
const [url, key, segUser, rudUser] = process.argv.slice(2);
const { Analytics } = require('@segment/analytics-node');
const Rudder = require('@rudderstack/rudder-sdk-node');
const errors = { segment: [], rudder: [] };
const order = (user) => ({ order_id: user + '-order', revenue: %(revenue)s, currency: 'EUR',
  products: %(products)s });
function send(client, user) {
  client.identify({ userId: user, traits: { email: user + '@example.com', name: 'Node ' + user } });
  client.track({ userId: user, event: 'Order Completed', properties: order(user) });
  client.page({ userId: user, name: 'Home', properties: { path: '/', url: 'https://shop.example.com/' } });
}
(async () => {
  const seg = new Analytics({ writeKey: key, host: url, flushInterval: 200, maxEventsInBatch: 10,
                              maxRetries: 3, httpRequestTimeout: 20000 });
  seg.on('error', (e) => errors.segment.push((e.code || '') + ' ' + String(e.reason || e.message || e)));
  send(seg, segUser);
  await seg.closeAndFlush({ timeout: 30000 });
  const rud = new Rudder(key, { dataPlaneUrl: url, flushAt: 10, flushInterval: 200, retryCount: 2,
                                logLevel: 'error', errorHandler: (e) => errors.rudder.push(String(e)) });
  send(rud, rudUser);
  await rud.flush();
  console.log(JSON.stringify(errors));
  process.exit(0);
})().catch((e) => { console.log(JSON.stringify({ segment: [String(e)], rudder: [String(e)] })); process.exit(1); });
"""


@dataclass
class Delivery:
    """What the senders reported, and where the database is."""

    db: Path
    users: dict[str, str]
    errors: dict[str, list[str]] = field(default_factory=dict)
    node_skip: str | None = None


def _send_python(sender: str, url: str, key: str, user: str) -> list[str]:
    """identify + Order Completed + page through one Python SDK; the errors it reported."""
    if sender.startswith("segment"):
        from segment.analytics import Client
    else:
        from rudderstack.analytics import Client
    errors: list[str] = []
    sync = sender.endswith("sync")
    client = Client(key, host=url, gzip=True, sync_mode=sync, max_retries=2, timeout=20,
                    on_error=lambda e, batch: errors.append(repr(e)))
    try:
        client.identify(user, {"email": f"{user}@Example.com", "name": f"Py {user}"})
        client.track(user, "Order Completed", {"order_id": f"{user}-order", "revenue": REVENUE,
                                               "currency": "EUR", "products": PRODUCTS})
        client.page(user, name="Home", properties={"path": "/", "url": "https://shop.example.com/"})
        if not sync:
            client.flush()
    except Exception as exc:  # sync mode raises the SDK's APIError on a non-200
        errors.append(repr(exc))
    finally:
        client.shutdown() if not sync else None
    return errors


def _node_skip_reason() -> str | None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node and npm are not installed"
    return None


@pytest.fixture(scope="module")
def delivered(tmp_path_factory: pytest.TempPathFactory) -> Delivery:
    work = tmp_path_factory.mktemp("sdks")
    db = work / "sdks.duckdb"
    out = Delivery(db=db, users={s: f"sdk-{s}" for s in PY_SENDERS + NODE_SENDERS},
                   node_skip=_node_skip_reason())
    with running_service(db) as svc:
        key = svc.keys["write"]
        for sender in PY_SENDERS:
            out.errors[sender] = _send_python(sender, svc.url, key, out.users[sender])
        if out.node_skip is None:
            script = work / "send.js"
            script.write_text(NODE_SCRIPT % {"revenue": REVENUE, "products": json.dumps(PRODUCTS)})
            done = subprocess.run(
                ["node", str(script), svc.url, key, out.users["segment-node"], out.users["rudder-node"]],
                capture_output=True, text=True, timeout=120, cwd=work,
                env={**os.environ, "NODE_PATH": str(NODE_SDKS)})
            try:
                reported = json.loads(done.stdout.strip().splitlines()[-1])
            except (ValueError, IndexError):
                reported = {sdk: [f"exit {done.returncode}: {done.stdout[-2000:]} {done.stderr[-2000:]}"]
                            for sdk in ("segment", "rudder")}
            out.errors["segment-node"] = reported["segment"]
            out.errors["rudder-node"] = reported["rudder"]
    return out


def _stored(db: Path, user: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        events = con.execute("SELECT type, event, payload FROM events WHERE user_id = ? ORDER BY type",
                             [user]).fetchall()
        orders = con.execute("SELECT customer_id, amount, currency FROM transactions WHERE order_id = ?",
                             [f"{user}-order"]).fetchall()
    finally:
        con.close()
    return events, orders


def _check(delivery: Delivery, sender: str, library: str) -> None:
    assert delivery.errors[sender] == [], delivery.errors[sender]
    user = delivery.users[sender]
    events, orders = _stored(delivery.db, user)
    assert [(t, e) for t, e, _ in events] == [("identify", None), ("page", "Home"), ("track", "Order Completed")], events
    for _, _, payload in events:
        assert json.loads(payload)["context"]["library"]["name"] == library
    assert orders == [(user, pytest.approx(REVENUE), "EUR")]


@pytest.mark.parametrize("sender", PY_SENDERS)
def test_python_sdk_events_land(delivered: Delivery, sender: str) -> None:
    _check(delivered, sender, "analytics-python")


@pytest.mark.parametrize("sender", NODE_SENDERS)
def test_node_sdk_events_land(delivered: Delivery, sender: str) -> None:
    if delivered.node_skip:  # no node binary on this machine: external, so a skip
        pytest.skip(delivered.node_skip)
    missing = [p for p in ("@segment/analytics-node", "@rudderstack/rudder-sdk-node") if not (NODE_SDKS / p).is_dir()]
    assert not missing, f"Node SDKs not installed ({', '.join(missing)}): make test runs scripts/install-node-sdks.sh"
    library = "@segment/analytics-node" if sender == "segment-node" else "analytics-node"
    _check(delivered, sender, library)
