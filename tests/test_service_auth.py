"""Auth, keys and request bodies of the service, over real HTTP (``patron serve`` on loopback).

Expectations come from the issue and the Segment HTTP API spec, not from patron's code: no endpoint
but /health is open; missing/unknown/revoked key 401 with ``WWW-Authenticate: Basic``; wrong role
403; the key travels as the Basic user name with an empty password (what the Segment and RudderStack
SDKs send) or as a Bearer token; 500 KB = 512,000 bytes per batch request, 32 KB = 32,768 per event.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import gzip
import hashlib
import io
import json
import subprocess
import sys
import uuid
import zlib
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from tests.service_support import ROLES, create_keys, running_service

MAX_BATCH_BYTES = 500 * 1024
"""Segment spec: a batch request is at most 500 KB."""
MAX_EVENT_BYTES = 32 * 1024
"""Segment spec: an event is at most 32 KB."""
BOMB_BYTES = 200 * 1024 * 1024
"""Decoded size of the zip bomb: 200 MiB of zeros (its gzip is about 200 KB, under the batch limit)."""
BOMB_RSS_SLACK_KB = 40 * 1024
"""Largest growth of the server's peak resident memory allowed while it refuses the bomb, in KiB."""

TRACK = {"type": "track", "userId": "auth-user", "event": "Auth Probe", "messageId": "auth-probe-1",
         "properties": {}, "timestamp": "2024-01-02T03:04:05Z"}
CHECK = {"customer_id": "nobody", "channel": "email", "purpose": "marketing"}

# (method, path, role needed (None: any key; "open": no key), JSON body). Endpoints of other owners
# are checked once they exist in the app (see ``_existing``).
ENDPOINTS: list[tuple[str, str, str | None, Any]] = [
    ("POST", "/v1/track", "write", TRACK),
    ("POST", "/v1/batch", "write", {"batch": [TRACK]}),
    ("POST", "/v1/identify", "write", {"type": "identify", "userId": "auth-user", "traits": {}, "messageId": "m"}),
    ("GET", "/v1/customers/nobody", "read", None),
    ("POST", "/v1/contacts/check", "read", CHECK),
    ("GET", "/", "read", None),
    ("GET", "/v1/customers/nobody/export", "admin", None),
    ("DELETE", "/v1/customers/nobody", "admin", None),
    ("POST", "/v1/refresh", "admin", None),
    ("GET", "/v1/dead-letters", "admin", None),
    ("GET", "/v1/keys", "admin", None),
    ("POST", "/v1/keys", "admin", {"role": "read", "name": "made by the role matrix"}),
    ("DELETE", "/v1/keys/key_does_not_exist", "admin", None),
    ("GET", "/v1/triggers", "admin", None),
    ("POST", "/v1/triggers", "admin", {"name": "t", "event": "E", "destination": "undeclared"}),
    ("DELETE", "/v1/triggers/no_such_trigger", "admin", None),
    ("GET", "/v1/triggers/stats", "read", None),
    ("GET", "/v1/firings", "admin", None),
    ("GET", "/docs", None, None),
    ("GET", "/openapi.json", None, None),
    ("GET", "/health", "open", None),
]


@functools.cache
def _routes() -> list[Any]:
    """Every route of the app as FastAPI serves it (routers included, with their dependencies)."""
    from patron.service.app import create_app

    app = create_app(":memory:")  # routes only: the lifespan (which opens the database) does not run
    return list(iter_route_contexts(app.routes))


def _existing(method: str, path: str) -> bool:
    return any(
        isinstance(r.original_route, APIRoute) and method in r.methods and r.path_regex.match(path)
        for r in _routes()
    )


def _present(endpoints: list[tuple[Any, ...]]) -> list[Any]:
    """The endpoints as test parameters. Every one of them exists (a missing route fails
    :func:`test_every_listed_endpoint_exists`, not skips)."""
    return [pytest.param(*e, id=f"{e[0]} {e[1]}") for e in endpoints]


ELSEWHERE = [
    ("GET", "/v1/customers/x", None),
    ("POST", "/v1/contacts/check", CHECK),
    ("GET", "/v1/keys", None),
    ("POST", "/v1/keys", {"role": "read"}),
    ("GET", "/openapi.json", None),
]
"""Endpoints that must not take a write key from the request body."""


def test_every_listed_endpoint_exists() -> None:
    missing = [f"{e[0]} {e[1]}" for e in [*ENDPOINTS, *ELSEWHERE] if not _existing(e[0], e[1])]
    assert missing == []


def _checked(response: httpx.Response) -> httpx.Response:
    """Every response: no stack trace, and JSON errors are one line."""
    assert "Traceback" not in response.text
    if response.status_code >= 400 and response.headers.get("content-type", "").startswith("application/json"):
        assert "\n" not in response.json()["error"]
    return response


def _fresh(body: Any) -> Any:
    """``body`` with a new messageId wherever it has one (each call is a new event, not a replay)."""
    if isinstance(body, list):
        return [_fresh(b) for b in body]
    if isinstance(body, dict):
        return {k: (f"auth-{uuid.uuid4()}" if k == "messageId" else _fresh(v)) for k, v in body.items()}
    return body


def _call(svc: Any, method: str, path: str, body: Any = None, **kw: Any) -> httpx.Response:
    with httpx.Client(base_url=svc.url, timeout=60) as client:
        return _checked(client.request(method, path, json=_fresh(body), **kw))


def _cli(*args: str) -> str:
    """``patron keys ...`` run in this process (what the console script runs); its stdout."""
    from patron.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["keys", *args]) == 0
    return out.getvalue()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A server whose keys were made by the CLI (one of them revoked) and by create_keys."""
    db = str(tmp_path_factory.mktemp("auth") / "auth.duckdb")
    made = json.loads(_cli("create", "--role", "read", "--name", "cli", "--db", db, "--json"))
    doomed = json.loads(_cli("create", "--role", "write", "--db", db, "--json"))
    assert doomed["key_id"] in _cli("revoke", doomed["key_id"], "--db", db)
    listed = _cli("list", "--db", db)
    assert made["key_id"] in listed and made["key"] not in listed and doomed["key"] not in listed
    keys = create_keys(db)
    with running_service(db, keys=keys) as svc:
        svc.cli_key, svc.cli_revoked = made, doomed  # type: ignore[attr-defined]
        yield svc


def _basic(key: str, password: str = "") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:{password}".encode()).decode()}


# -- every auth case ------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "role", "body"), _present(ENDPOINTS))
def test_missing_unknown_and_malformed_keys_get_401(served: Any, method: str, path: str, role: str | None, body: Any) -> None:
    if role == "open":
        assert _call(served, method, path).status_code == 200
        return
    bad_headers = [
        {},
        _basic("pk_write_" + "x" * 43),
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": "Basic !!!not-base64!!!"},
        {"Authorization": "Basic " + base64.b64encode(b"no colon").decode()},
        {"Authorization": "Digest username=x"},
        {"Authorization": "Bearer " + served.cli_revoked["key"]},
        _basic(served.keys["admin"][:-1]),  # one character short of a real key
    ]
    for headers in bad_headers:
        r = _call(served, method, path, body, headers=headers)
        assert r.status_code == 401, (headers, r.text)
        assert r.headers["www-authenticate"].lower().startswith("basic")
        assert 'realm="patron"' in r.headers["www-authenticate"]
        for key in served.keys.values():
            assert key not in r.text


@pytest.mark.parametrize(("method", "path", "role", "body"), _present(ENDPOINTS))
def test_role_matrix(served: Any, method: str, path: str, role: str | None, body: Any) -> None:
    if role == "open":
        return
    for holder in ROLES:
        allowed = role is None or holder in (role, "admin")
        r = _call(served, method, path, body, auth=served.auth(holder))
        if allowed:
            assert r.status_code not in (401, 403), (holder, r.text)
            assert r.status_code < 500, (holder, r.text)
        else:
            assert r.status_code == 403, (holder, r.text)
            assert served.keys[holder] not in r.text


def test_key_as_basic_user_or_bearer(served: Any) -> None:
    key = served.keys["admin"]
    for headers in (_basic(key), _basic(key, "any password"), {"Authorization": f"Bearer {key}"},
                    {"Authorization": f"bearer   {key}"}):
        assert _call(served, "GET", "/v1/keys", headers=headers).status_code == 200, headers
    # The CLI-made key works; its id and name are listed, the key and its hash are not.
    assert _call(served, "GET", "/openapi.json", auth=(served.cli_key["key"], "")).status_code == 200
    listed = _call(served, "GET", "/v1/keys", auth=served.auth("admin")).json()
    by_id = {k["key_id"]: k for k in listed}
    assert by_id[served.cli_key["key_id"]]["name"] == "cli"
    assert by_id[served.cli_revoked["key_id"]]["revoked_at"] is not None
    text = json.dumps(listed)
    for key in [*served.keys.values(), served.cli_key["key"]]:
        assert key not in text and hashlib.sha256(key.encode()).hexdigest() not in text


def test_keys_created_and_revoked_through_the_api_take_effect_at_once(served: Any) -> None:
    r = _call(served, "POST", "/v1/keys", {"role": "write", "name": "web shop"}, auth=served.auth("admin"))
    assert r.status_code == 201
    made = r.json()
    assert made["role"] == "write" and made["name"] == "web shop" and made["revoked_at"] is None
    assert _call(served, "GET", "/v1/keys", auth=(made["key"], "")).status_code == 403  # a write key, known
    assert _call(served, "GET", "/openapi.json", auth=(made["key"], "")).status_code == 200
    r = _call(served, "DELETE", f"/v1/keys/{made['key_id']}", auth=served.auth("admin"))
    assert r.status_code == 200 and r.json()["revoked_at"] is not None
    assert _call(served, "GET", "/openapi.json", auth=(made["key"], "")).status_code == 401
    assert _call(served, "DELETE", "/v1/keys/key_nope", auth=served.auth("admin")).status_code == 404
    bad = _call(served, "POST", "/v1/keys", {"role": "root"}, auth=served.auth("admin"))
    assert bad.status_code == 422


def test_docs_need_a_key_and_work_offline(served: Any) -> None:
    assert _call(served, "GET", "/docs").status_code == 401
    assert _call(served, "GET", "/openapi.json").status_code == 401
    page = _call(served, "GET", "/docs", auth=served.auth("write"))
    assert page.status_code == 200 and "/v1/keys" in page.text
    assert "cdn" not in page.text.lower() and "<script" not in page.text.lower()
    spec = _call(served, "GET", "/openapi.json", auth=served.auth("read")).json()
    schemes = spec["components"]["securitySchemes"]
    assert {"type": "http", "scheme": "basic"}.items() <= next(iter(
        s for s in schemes.values() if s.get("scheme") == "basic")).items()
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if path != "/health":
                assert op.get("security"), f"{method.upper()} {path} is open in the OpenAPI document"


# -- the key as writeKey in the body (what @segment/analytics-node 2.x sends) ------------------------


def _no_header(svc: Any, method: str, path: str, body: Any = None, **kw: Any) -> httpx.Response:
    """A request like @segment/analytics-node's: JSON body, no Authorization header at all."""
    return _call(svc, method, path, body, **kw)


def _unauthorized(r: httpx.Response, *keys: str) -> None:
    assert r.status_code == 401, r.text
    assert 'realm="patron"' in r.headers["www-authenticate"]
    for key in keys:
        assert key not in r.text


@pytest.mark.parametrize("path", ["/v1/batch", "/v1/track"])
def test_write_key_in_the_body_is_accepted_on_event_endpoints(served: Any, path: str) -> None:
    def body(key: str) -> dict[str, Any]:
        return {"batch": [TRACK], "writeKey": key} if path == "/v1/batch" else {**TRACK, "writeKey": key}

    for holder in ("write", "admin"):  # an admin key passes every role
        r = _no_header(served, "POST", path, body(served.keys[holder]))
        assert r.status_code == 200 and r.json() == {"success": True}, (holder, r.text)
    # gzip (decoded before the key is read) and chunked (no Content-Length: the stream is read once)
    data = json.dumps(_fresh(body(served.keys["write"]))).encode()
    r = _checked(httpx.post(served.url + path, content=gzip.compress(data), timeout=60,
                            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}))
    assert r.status_code == 200, r.text
    data = json.dumps(_fresh(body(served.keys["write"]))).encode()
    r = _checked(httpx.post(served.url + path, content=iter([data[:10], data[10:]]), timeout=60,
                            headers={"Content-Type": "application/json"}))
    assert "content-length" not in r.request.headers and r.status_code == 200, r.text


@pytest.mark.parametrize("path", ["/v1/batch", "/v1/track"])
def test_wrong_write_key_in_the_body(served: Any, path: str) -> None:
    def body(key: Any) -> dict[str, Any]:
        return {"batch": [TRACK], "writeKey": key} if path == "/v1/batch" else {**TRACK, "writeKey": key}

    for key in ("pk_write_" + "x" * 43, served.keys["write"][:-1], served.cli_revoked["key"], "", 42, None):
        _unauthorized(_no_header(served, "POST", path, body(key)), *served.keys.values())
    # A body that cannot be read carries no key: 401, not 400/415.
    for content, headers in ((b'{"writeKey": "' + served.keys["write"].encode() + b'",, }', {}),
                             (b"\x1f\x8b not gzip", {"Content-Encoding": "gzip"}),
                             (b"{}", {"Content-Encoding": "br"}),
                             (b"[1, 2]", {})):
        r = _no_header(served, "POST", path, content=content, headers={"Content-Type": "application/json", **headers})
        _unauthorized(r, *served.keys.values())
    # A known key of the wrong role: 403, as with the header.
    r = _no_header(served, "POST", path, body(served.keys["read"]))
    assert r.status_code == 403 and "read role" in r.json()["error"], r.text
    assert served.keys["read"] not in r.text
    # The Authorization header, when present, decides: the body's key is not looked at.
    r = _call(served, "POST", path, body(served.keys["write"]), headers={"Authorization": "Bearer not-a-key"})
    _unauthorized(r)
    r = _call(served, "POST", path, body(served.keys["write"]), auth=served.auth("read"))
    assert r.status_code == 403, r.text


@pytest.mark.parametrize(("method", "path", "body"), _present(ELSEWHERE))
def test_write_key_in_the_body_is_not_accepted_elsewhere(served: Any, method: str, path: str, body: Any) -> None:
    for holder in ROLES:
        sent = {**(body or {}), "writeKey": served.keys[holder]}
        _unauthorized(_no_header(served, method, path, sent), *served.keys.values())


@pytest.mark.slow
def test_write_key_from_the_body_is_not_stored(tmp_path: Path) -> None:
    db = tmp_path / "bodykey.duckdb"
    with running_service(db) as svc:
        key = svc.keys["write"]
        single = {**TRACK, "messageId": "body-key-1", "writeKey": key}
        batch = {"batch": [{**TRACK, "messageId": "body-key-2"}], "writeKey": key}
        bad = {"type": "track", "messageId": "body-key-3", "writeKey": key}  # no userId: a dead letter
        assert _no_header(svc, "POST", "/v1/track", single).status_code == 200
        assert _no_header(svc, "POST", "/v1/batch", batch).status_code == 200
        assert _no_header(svc, "POST", "/v1/track", bad).status_code == 400
        # with the key in the header too, a writeKey in the event is still not stored
        both = {**TRACK, "messageId": "body-key-4", "writeKey": key}
        inner = {"batch": [{**TRACK, "messageId": "body-key-5", "writeKey": key},
                           {"type": "nonsense", "messageId": "body-key-6", "writeKey": key}]}
        assert httpx.post(svc.url + "/v1/track", json=both, auth=svc.auth("write")).status_code == 200
        assert httpx.post(svc.url + "/v1/batch", json=inner, auth=svc.auth("write")).status_code == 200
    with duckdb.connect(str(db), read_only=True) as con:
        stored = con.execute("SELECT count(*) FROM events WHERE event = 'Auth Probe'").fetchone()[0]
        dead = con.execute("SELECT count(*) FROM dead_letters").fetchone()[0]
    assert stored == 4 and dead == 2
    assert key.split("_", 2)[2].encode() not in db.read_bytes()


# -- request bodies ------------------------------------------------------------------------------


def _peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


JSON = {"Content-Type": "application/json"}
"""The content type every state-changing request with a body declares (415 otherwise)."""


def _bomb() -> bytes:
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1024 * 1024)
    return b"".join([z.compress(zeros) for _ in range(BOMB_BYTES // len(zeros))] + [z.flush()])


def test_gzip_and_deflate_bodies_are_accepted(served: Any) -> None:
    body = json.dumps({"role": "read", "name": "gzipped"}).encode()
    admin = served.auth("admin")
    for encoding, data in (("gzip", gzip.compress(body)), ("deflate", zlib.compress(body)),
                           ("deflate", zlib.compress(body, wbits=-zlib.MAX_WBITS)),  # raw deflate
                           ("identity", body)):
        r = _call(served, "POST", "/v1/keys", content=data, auth=admin,
                  headers={"Content-Encoding": encoding, "Content-Type": "application/json"})
        assert r.status_code == 201, (encoding, r.text)
        assert r.json()["name"] == "gzipped"
    if _existing("POST", "/v1/track"):
        event = {**TRACK, "messageId": "auth-gzip-1"}
        r = _call(served, "POST", "/v1/track", content=gzip.compress(json.dumps(event).encode()),
                  auth=served.auth("write"), headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
        assert r.status_code == 200, r.text


def test_bad_bodies(served: Any) -> None:
    admin = served.auth("admin")
    post = {"auth": admin, "headers": {"Content-Type": "application/json"}}
    r = _call(served, "POST", "/v1/keys", content=b'{"role": "read",, }', **post)
    assert r.status_code == 400 and "line 1 column 17" in r.json()["error"]
    r = _call(served, "POST", "/v1/keys", content=b"\x1f\x8b not gzip", auth=admin,
              headers={"Content-Encoding": "gzip", **JSON})
    assert r.status_code == 400 and "gzip" in r.json()["error"]
    r = _call(served, "POST", "/v1/keys", content=gzip.compress(b'{"role": "read"}')[:-6], auth=admin,
              headers={"Content-Encoding": "gzip", **JSON})
    assert r.status_code == 400
    r = _call(served, "POST", "/v1/keys", content=b"{}", auth=admin, headers={"Content-Encoding": "br", **JSON})
    assert r.status_code == 415 and "br" in r.json()["error"]


def test_over_size_bodies_get_413(served: Any) -> None:
    admin = served.auth("admin")
    # As sent, over the batch limit: refused before any handler (even without a key).
    incompressible = gzip.compress(bytes(range(256)) * 2, compresslevel=0)
    raw = (incompressible * (MAX_BATCH_BYTES // len(incompressible) + 2))[: MAX_BATCH_BYTES + 1]
    for auth in (admin, None):
        r = _call(served, "POST", "/v1/keys", content=raw, auth=auth, headers={"Content-Encoding": "gzip", **JSON})
        assert r.status_code == 413 and f"{MAX_BATCH_BYTES:,}" in r.json()["error"]
    # Same, sent chunked (no Content-Length).
    chunks = iter([b" " * 65536] * (MAX_BATCH_BYTES // 65536 + 2))
    r = _call(served, "POST", "/v1/keys", content=chunks, auth=admin, headers=JSON)
    assert r.status_code == 413
    # Small when compressed, over the event limit once decoded.
    padded = b'{"role": "read", "name": "x"}' + b" " * MAX_EVENT_BYTES
    r = _call(served, "POST", "/v1/keys", content=gzip.compress(padded), auth=admin,
              headers={"Content-Encoding": "gzip", **JSON})
    assert r.status_code == 413 and f"{MAX_EVENT_BYTES:,}" in r.json()["error"]
    # Just under the limit decoded: accepted.
    fits = b'{"role": "read", "name": "x"}'
    fits += b" " * (MAX_EVENT_BYTES - len(fits))
    r = _call(served, "POST", "/v1/keys", content=gzip.compress(fits), auth=admin, headers={"Content-Encoding": "gzip", **JSON})
    assert r.status_code == 201, r.text
    if _existing("POST", "/v1/contacts/check"):  # a body parsed by FastAPI itself, sent chunked
        r = _call(served, "POST", "/v1/contacts/check", content=iter([b" " * 65536] * 9), auth=served.auth("read"),
                  headers={"Content-Type": "application/json"})
        assert r.status_code == 413


@pytest.mark.slow
def test_zip_bomb_is_refused_without_blowing_up_memory(served: Any) -> None:
    bomb = _bomb()
    assert len(bomb) < MAX_BATCH_BYTES  # it passes the size-as-sent check, so decoding must be capped
    pid = served.process.pid
    before = _peak_rss_kb(pid)
    targets = [("POST", "/v1/keys", "admin")] + [
        (m, p, role) for m, p, role in (("POST", "/v1/batch", "write"), ("POST", "/v1/track", "write"))
        if _existing(m, p)
    ]
    for method, path, role in targets:
        r = _call(served, method, path, content=bomb, auth=served.auth(role),
                  headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
        assert r.status_code == 413, (path, r.text)
    assert _peak_rss_kb(pid) - before < BOMB_RSS_SLACK_KB
    assert _call(served, "GET", "/health").status_code == 200


# -- no route is open by mistake -------------------------------------------------------------------


def test_every_route_but_health_requires_a_key() -> None:
    from patron.service.app import create_app
    from patron.service.auth import is_auth_dependency

    def calls(dependant: Any) -> list[Any]:
        found = [dependant.call]
        for sub in dependant.dependencies:
            found += calls(sub)
        return found

    routes = list(iter_route_contexts(create_app(":memory:").routes))
    assert any(r.path == "/v1/keys" for r in routes)  # the walk sees routes of included routers
    open_routes = []
    for route in routes:
        if route.path == "/health":
            continue
        if not isinstance(route.original_route, APIRoute) or not any(
            is_auth_dependency(c) for c in calls(route.dependant)
        ):
            open_routes.append(f"{sorted(route.methods or [])} {route.path or route.original_route!r}")
    assert not open_routes, f"routes without require(...): {open_routes}"


# -- storage and the CLI while served -------------------------------------------------------------------


@pytest.mark.slow
def test_keys_are_stored_hashed_and_cli_stops_while_served(tmp_path: Path) -> None:
    db = tmp_path / "hashed.duckdb"
    with running_service(db) as svc:
        made = _call(svc, "POST", "/v1/keys", {"role": "read"}, auth=svc.auth("admin")).json()["key"]
        proc = subprocess.run([sys.executable, "-m", "patron", "keys", "create", "--role", "read", "--db", str(db)],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode != 0
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "patron serve" in lines[0] and str(svc.process.pid) in lines[0], proc.stderr
        assert "Traceback" not in proc.stderr and proc.stdout == ""
    plain = [*svc.keys.values(), made]
    data = db.read_bytes()
    for key in plain:
        assert key.encode() not in data
        assert key.split("_", 2)[2].encode() not in data  # not even the random part
    with duckdb.connect(str(db), read_only=True) as con:
        stored = {h for (h,) in con.execute("SELECT key_hash FROM api_keys").fetchall()}
    assert {hashlib.sha256(k.encode()).hexdigest() for k in plain} <= stored
