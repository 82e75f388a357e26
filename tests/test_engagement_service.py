"""Engagement through the service (``patron serve`` on a loopback port): page, screen and track
events sent over HTTP become interactions, a refresh puts their engagement columns in the
customer's scores (``GET /v1/customers/{id}``) and the dashboard shows "Engagement over time".

Known answer: customer c01 gets page views on 2 days, a screen view and a Product Viewed event on
2 more days, all within the 28 days before the last purchase (the refresh's as-of day), plus an
``Order Completed`` (a purchase, not an interaction)."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from tests.service_support import Service, create_keys, free_port
from tests.test_service_dashboard import synthetic_orders

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    from patron.data.ingest import ingest

    folder = tmp_path_factory.mktemp("engagement_service")
    db = folder / "d.duckdb"
    orders = synthetic_orders()
    csv = folder / "orders.csv"
    orders.to_csv(csv, index=False)
    ingest(csv, kind="transactions", db=str(db))
    svc = Service(db=db, port=free_port(), keys=create_keys(db), log=db.with_suffix(".serve.log"))
    svc.start(timeout=180.0)  # a loaded machine can take more than the usual 30 s
    try:
        yield svc, orders
    finally:
        svc.stop()


def _at(day: pd.Timestamp, hour: int) -> str:
    return (day + pd.Timedelta(hours=hour)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_events_become_engagement_in_scores_and_dashboard(served) -> None:
    svc, orders = served
    last = pd.Timestamp(orders["occurred_at"].max())
    days = [last - timedelta(days=d) for d in (1, 3, 5, 8)]
    batch = [
        {"type": "page", "userId": "c01", "name": "Home", "properties": {"path": "/"}, "timestamp": _at(days[0], 9), "messageId": "e1"},
        {"type": "page", "userId": "c01", "name": "Cart", "properties": {"path": "/cart"}, "timestamp": _at(days[1], 9), "messageId": "e2"},
        {"type": "page", "userId": "c01", "name": "Cart", "properties": {"path": "/cart"}, "timestamp": _at(days[1], 10), "messageId": "e3"},
        {"type": "screen", "userId": "c01", "name": "Catalog", "timestamp": _at(days[2], 9), "messageId": "e4"},
        {"type": "track", "userId": "c01", "event": "Product Viewed", "properties": {"product_id": "p1"},
         "timestamp": _at(days[3], 9), "messageId": "e5"},
        {"type": "track", "userId": "c01", "event": "Order Completed", "properties": {"order_id": "svc-1", "revenue": 5},
         "timestamp": _at(days[3], 10), "messageId": "e6"},
    ]
    with svc.client("write") as client:
        sent = client.post("/v1/batch", json={"batch": batch})
        assert sent.status_code == 200, sent.text
    with svc.client("admin") as admin:
        done = admin.post("/v1/refresh", params={"wait": "true"})
        assert done.status_code in (200, 202) and done.json()["state"] == "succeeded", done.text
    with svc.client("read") as client:
        scores = client.get("/v1/customers/c01").json()["scores"]
        page = client.get("/").text
    assert scores["as_of"][:10] == last.date().isoformat()
    assert scores["engagement_active_days_28"] == 4
    assert scores["engagement_interactions_90"] == 5
    assert scores["engagement_recency_days"] == 1
    assert scores["engagement_channels_90"] == 2  # web (pages, a web product view) and app (the screen)
    assert scores["engagement_score"] == pytest.approx(100 * 4 / 84)
    assert '<section id="engagement">' in page and 'id="engagement-empty"' not in page
