"""``found_by`` of the single view (``GET /v1/customers/{identifier}``): which kind of identifier a
lookup matched, on hand-made identify events whose identifiers are known."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from patron.service import create_app
from tests.service_support import create_keys


@pytest.fixture
def client(tmp_path: Path):
    db = tmp_path / "f.duckdb"
    keys = create_keys(db)
    with TestClient(create_app(db), raise_server_exceptions=False) as c:
        c.keys = keys  # type: ignore[attr-defined]
        r = c.post("/v1/batch", auth=(keys["write"], ""), json={"batch": [
            {"type": "identify", "messageId": "i-ann", "userId": "ann", "anonymousId": "anon-7",
             "traits": {"email": "Ann@Example.com", "phone": "+1 (555) 010-2030", "name": "Ann"},
             "timestamp": "2025-01-01T00:00:00Z"},
        ]})
        assert r.status_code == 200, r.text
        yield c


def _found(client: TestClient, identifier: str) -> tuple[str, dict]:
    r = client.get(f"/v1/customers/{quote(identifier, safe='')}", auth=(client.keys["read"], ""))  # type: ignore[attr-defined]
    assert r.status_code == 200, r.text
    body = r.json()
    return body["customer_id"], body["found_by"]


@pytest.mark.parametrize(("identifier", "kind"), [
    ("ann", "customer_id"),  # the person id of a userId is the userId: found as the person id
    ("anon-7", "anonymous_id"),
    ("  ANN@example.COM ", "email"),  # any case, trimmed
    ("+15550102030", "phone"),
    ("+1 555 010 2030", "phone"),  # any format
])
def test_found_by_names_the_kind_of_identifier_matched(client, identifier, kind) -> None:
    person, found = _found(client, identifier)
    assert found == {"identifier": identifier.strip(), "kind": kind}
    # the person id itself is found as such
    assert _found(client, person)[1] == {"identifier": person, "kind": "customer_id"}


def test_unknown_identifier_is_404_without_found_by(client) -> None:
    r = client.get("/v1/customers/nobody", auth=(client.keys["read"], ""))
    assert r.status_code == 404 and "nobody" in r.json()["error"]
