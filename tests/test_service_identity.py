"""One person with many identifiers, and placeholder userIds, through a real ``patron serve``
(issue 18): the single view stays small, the identifiers page, the export streams whole, and
``guest`` merges nobody."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import httpx

from tests.service_support import running_service

T0 = datetime(2024, 5, 1, 9, 0)
DEVICES = 120


def _at(seconds: int) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat() + "Z"


def test_a_large_person_has_a_small_view_paged_identifiers_and_a_whole_export(tmp_path):
    events = [{"type": "identify", "userId": "hub", "anonymousId": f"a{i:03d}", "messageId": f"m{i}",
               "timestamp": _at(i), "traits": {"plan": "free"}} for i in range(DEVICES)]
    events += [{"type": "track", "event": "Order Completed", "userId": "guest", "anonymousId": f"g{i}",
                "messageId": f"g{i}", "timestamp": _at(500 + i),
                "properties": {"order_id": f"o-g{i}", "revenue": 10.0 + i, "currency": "EUR"}} for i in range(2)]
    with running_service(tmp_path / "s.duckdb") as svc:
        with svc.client("write") as c:
            assert c.post("/v1/batch", json={"batch": events}).status_code == 200
        with svc.client("read") as c:
            view = c.get("/v1/customers/hub").json()
            graph = [i for i in view["identities"] if i["source"] == "graph"]
            assert len(graph) == 50
            assert view["identity_counts"] == {"user_id": 1, "anonymous_id": DEVICES}
            assert [i["value"] for i in graph[:3]] == ["hub", f"a{DEVICES - 1:03d}", f"a{DEVICES - 2:03d}"]
            seen: list[str] = []
            for offset in range(0, 200, 40):
                page = c.get("/v1/customers/a007/identities", params={"offset": offset, "limit": 40}).json()
                assert page["customer_id"] == "hub" and page["total"] == DEVICES + 1
                seen += [i["value"] for i in page["identities"]]
            assert len(seen) == len(set(seen)) == DEVICES + 1
            assert c.get("/v1/customers/hub/identities", params={"limit": 5000}).status_code == 422
            # the placeholder: two people, each with their order; "guest" names nobody
            assert c.get("/v1/customers/guest").status_code == 404
            for i in range(2):
                g = c.get(f"/v1/customers/g{i}").json()
                assert g["customer_id"] == f"anon:g{i}"
                assert [o["order_id"] for o in g["recent_orders"]] == [f"o-g{i}"]
            refused = [m for m in c.get("/v1/merges").json() if m["reason"].startswith("refused: placeholder")]
            assert [(m["cause_kind"], m["cause_value"]) for m in refused] == [("user_id", "guest")]
        with httpx.stream("GET", svc.url + "/v1/customers/hub/export", auth=svc.auth("admin"), timeout=30) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
            doc = json.loads(b"".join(r.iter_bytes()))
        assert doc["customer_id"] == "hub"
        assert len(doc["tables"]["identities"]) == DEVICES + 1
        assert len(doc["tables"]["events"]) == DEVICES
        admin = svc.client("admin")
        assert admin.get("/v1/customers/nobody-at-all/export").status_code == 404
