"""Browser safety of ``patron serve`` (docs/service.md, "Browser safety").

A browser that opened the dashboard keeps its Basic credentials and attaches them to requests that
pages of other sites make. The requests below are written as a browser sends them (headers per
the Fetch standard: ``Origin``, ``Sec-Fetch-Site``, and the content types an HTML form or a
no-preflight ``fetch`` may use), with the key a browser would have cached. Expected: nothing a
page of another site sends changes anything, except events sent with a write key (analytics.js
sends ``text/plain`` with the key in the body); every answer carries the security headers
(tests/test_service_dashboard.py checks that the dashboard's HTML has no inline script, and
tests/test_service_dashboard_browser.py that it still draws in Chromium under the policy).
"""

from __future__ import annotations

import gzip
import json
from typing import Any

import httpx
import pytest

from tests.service_support import running_service

pytestmark = pytest.mark.slow

EVIL = "https://evil.example"
"""Origin of a page of another site."""

FORM_TYPES = ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x")
"""Content types a cross-site form or no-preflight fetch may send."""


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory):
    db = tmp_path_factory.mktemp("browser-safety") / "b.duckdb"
    with running_service(db) as svc:
        yield svc


def _keys(svc: Any) -> int:
    return len(httpx.get(svc.url + "/v1/keys", auth=svc.auth("admin"), timeout=30).json())


def _post(svc: Any, path: str, body: bytes, *, role: str | None = "admin", **headers: str) -> httpx.Response:
    return httpx.post(svc.url + path, content=body, headers=headers, timeout=30,
                      auth=svc.auth(role) if role else None)


def test_a_page_elsewhere_cannot_create_a_key_with_the_admins_cached_credentials(service) -> None:
    """The finding of issue 18: ``POST /v1/keys`` as text/plain from another site, as the admin."""
    body = json.dumps({"role": "admin", "name": "attacker"}).encode()
    before = _keys(service)
    answers = [
        _post(service, "/v1/keys", body, **{"Content-Type": "text/plain", "Origin": EVIL}),
        _post(service, "/v1/keys", body, **{"Content-Type": "text/plain;charset=UTF-8", "Origin": EVIL,
                                           "Sec-Fetch-Site": "cross-site"}),
        _post(service, "/v1/keys", body, **{"Content-Type": "application/json", "Origin": EVIL}),
        _post(service, "/v1/keys", body, **{"Content-Type": "application/json", "Sec-Fetch-Site": "same-site"}),
        _post(service, "/v1/keys", body, **{"Content-Type": "application/json", "Origin": "null"}),
    ]
    answers += [_post(service, "/v1/keys", body, **{"Content-Type": t}) for t in FORM_TYPES]
    answers.append(_post(service, "/v1/keys", body))  # a body without any Content-Type
    assert [a.status_code for a in answers] == [415, 415, 403, 403, 403, 415, 415, 415, 415], [a.text for a in answers]
    assert "cross-site request refused (Origin: https://evil.example)" in answers[2].json()["error"]
    assert "Content-Type: application/json" in answers[0].json()["error"]
    assert _keys(service) == before
    # The service's own pages, and clients that are not browsers, still can.
    same = _post(service, "/v1/keys", body, **{"Content-Type": "application/json; charset=utf-8",
                                              "Origin": service.url, "Sec-Fetch-Site": "same-origin"})
    curl = _post(service, "/v1/keys", body, **{"Content-Type": "application/json"})
    assert (same.status_code, curl.status_code) == (201, 201), (same.text, curl.text)
    assert _keys(service) == before + 2


def test_other_state_changes_refuse_pages_of_other_sites(service) -> None:
    key_id = httpx.post(service.url + "/v1/keys", json={"role": "read"}, auth=service.auth("admin"),
                        timeout=30).json()["key_id"]
    cross = {"Origin": EVIL}
    revoke = httpx.delete(f"{service.url}/v1/keys/{key_id}", headers=cross, auth=service.auth("admin"), timeout=30)
    refresh = httpx.post(service.url + "/v1/refresh", headers={"Sec-Fetch-Site": "cross-site"},
                         auth=service.auth("admin"), timeout=30)
    erase = httpx.delete(service.url + "/v1/customers/u1", headers=cross, auth=service.auth("admin"), timeout=30)
    check = _post(service, "/v1/contacts/check", b'{"customer": "u1", "channel": "email"}', role="read",
                  **{"Content-Type": "application/json", **cross})
    assert [r.status_code for r in (revoke, refresh, erase, check)] == [403] * 4
    live = {k["key_id"]: k["revoked_at"] for k in httpx.get(service.url + "/v1/keys", auth=service.auth("admin"),
                                                            timeout=30).json()}
    assert live[key_id] is None


def test_browser_sdks_still_send_events_from_other_sites(service) -> None:
    """analytics.js posts ``text/plain`` with ``writeKey`` in the body and no Authorization header;
    ``navigator.sendBeacon`` sends ``text/plain;charset=UTF-8``. Both come from the shop's pages."""
    def event(mid: str, **extra: Any) -> bytes:
        return json.dumps({"userId": "shopper", "messageId": mid, "event": "Product Viewed", **extra}).encode()

    shop = {"Origin": "https://shop.example", "Sec-Fetch-Site": "cross-site"}
    fetch = _post(service, "/v1/track", event("ajs-1", writeKey=service.keys["write"]), role=None,
                  **{"Content-Type": "text/plain", **shop})
    beacon = _post(service, "/v1/track", event("beacon-1"), role="write",
                   **{"Content-Type": "text/plain;charset=UTF-8", **shop})
    batch = _post(service, "/v1/batch", json.dumps({"batch": [{"type": "page", "userId": "shopper",
                                                                "messageId": "ajs-2"}],
                                                     "writeKey": service.keys["write"]}).encode(),
                  role=None, **{"Content-Type": "text/plain", **shop})
    assert [r.status_code for r in (fetch, beacon, batch)] == [200, 200, 200], [fetch.text, beacon.text, batch.text]
    # ... but not with a key a browser caches for the dashboard, and never as a form.
    admin = _post(service, "/v1/track", event("ajs-3"), role="admin", **{"Content-Type": "text/plain", **shop})
    form = _post(service, "/v1/track", event("ajs-4"), role="write",
                 **{"Content-Type": "application/x-www-form-urlencoded"})
    assert (admin.status_code, form.status_code) == (403, 415), (admin.text, form.text)
    assert "only events sent with a write key" in admin.json()["error"]


def test_rudderstacks_node_sdk_label_is_accepted_on_compressed_events_only(service) -> None:
    """@rudderstack/rudder-sdk-node gzips its JSON and axios labels the buffer
    ``application/x-www-form-urlencoded`` (what tests/test_service_sdks.py runs); a page cannot
    add ``Content-Encoding`` without a preflight, so only that combination is let through."""
    form = {"Content-Type": "application/x-www-form-urlencoded", "Content-Encoding": "gzip"}
    batch = gzip.compress(json.dumps({"batch": [{"type": "track", "userId": "rn", "messageId": "rn-1",
                                                  "event": "Viewed"}]}).encode())
    event = _post(service, "/v1/batch", batch, role="write", **form)
    key = _post(service, "/v1/keys", gzip.compress(b'{"role": "read"}'), **form)
    assert (event.status_code, key.status_code) == (200, 415), (event.text, key.text)


def test_every_answer_carries_the_security_headers(service) -> None:
    read = service.auth("read")
    answers = {
        "/": httpx.get(service.url + "/", auth=read, timeout=120),
        "/customers": httpx.get(service.url + "/customers", auth=read, timeout=30),
        "/consent": httpx.get(service.url + "/consent", auth=read, timeout=30),
        "/docs": httpx.get(service.url + "/docs", auth=read, timeout=30),
        "/static/customers.js": httpx.get(service.url + "/static/customers.js", auth=read, timeout=30),
        "401": httpx.get(service.url + "/", timeout=30),
        "/health": httpx.get(service.url + "/health", timeout=30),
        "413": _post(service, "/v1/track", b"x" * 600_000, role="write", **{"Content-Type": "application/json"}),
    }
    for name, r in answers.items():
        h = r.headers
        assert h.get("x-frame-options") == "DENY", name
        assert h.get("x-content-type-options") == "nosniff", name
        assert h.get("referrer-policy") == "same-origin", name
        csp = {d.split()[0]: d.split()[1:] for d in h.get("content-security-policy", "").split("; ") if d}
        assert csp.get("script-src") == ["'self'"], (name, csp)
        assert csp.get("frame-ancestors") == ["'none'"] and csp.get("object-src") == ["'none'"], (name, csp)
    assert answers["401"].status_code == 401 and answers["413"].status_code == 413

