"""Browser safety: what a page of another site can make a browser do to the service, and what the
service's own pages let a browser run.

**Cross-site requests.** People use the dashboard and ``/docs`` from a browser with a read or
admin key as HTTP Basic credentials; the browser keeps them and attaches them to every later
request to the service, also to one that a page of another site makes (cross-site request
forgery: a page elsewhere could ``POST /v1/keys`` as the admin and create an admin key). So, for
every state-changing request (``POST``, ``PUT``, ``PATCH``, ``DELETE``):

* a body must be declared as JSON: ``Content-Type: application/json`` (parameters such as
  ``charset`` allowed), else 415. An HTML form can only send ``application/x-www-form-urlencoded``,
  ``multipart/form-data`` or ``text/plain``, and a script of another site can send JSON only after
  a CORS preflight that the service never approves. The event endpoints also take ``text/plain``:
  analytics.js (Segment's browser SDK) sends its events so, to avoid the preflight, and
  ``navigator.sendBeacon`` sends ``text/plain;charset=UTF-8``; a compressed event body may also be
  labelled ``application/x-www-form-urlencoded``, as RudderStack's Node SDK labels its gzipped
  JSON (no page can send a ``Content-Encoding`` without a preflight). A request without a body
  (``POST /v1/refresh``, ``DELETE``) needs no ``Content-Type``.
* a request that a browser marks as made by a page of another site is refused (403), unless it is
  an event sent with a **write** key: ``Sec-Fetch-Site: cross-site`` or ``same-site`` or, from a
  browser that sends no ``Sec-Fetch-Site``, an ``Origin`` whose host and port differ from the
  request's ``Host`` (or ``Origin: null``). A request with neither header is not made by a page
  (curl, the SDKs on a server) and passes. Write keys are meant to sit in web pages (analytics.js
  carries one), so a page sending events with one is normal; a read or admin key is never sent
  from another site's page on purpose.

This is the check Go's ``net/http.CrossOriginProtection`` makes, plus the content type.

**Answer headers** (:class:`SecurityHeaders`, on every answer): ``X-Content-Type-Options:
nosniff``, ``X-Frame-Options: DENY``, ``Referrer-Policy: same-origin`` and
:data:`CONTENT_SECURITY_POLICY`: scripts, styles, images, fonts and connections only from the
service itself, no inline script (the dashboard's figures are drawn by ``/static/figures.js``
from JSON data blocks), inline styles allowed (plotly.js sets style attributes), no plugins, no
framing (``frame-ancestors 'none'``), forms posting only to the service.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from fastapi import HTTPException, Request

STATE_CHANGING: frozenset[str] = frozenset({"POST", "PUT", "PATCH", "DELETE"})
"""Methods that may change something (the others are answered without side effects)."""

JSON_MEDIA_TYPES: frozenset[str] = frozenset({"application/json"})
"""``Content-Type`` (without parameters, lower case) of a state-changing request's body."""

EVENT_MEDIA_TYPES: frozenset[str] = JSON_MEDIA_TYPES | {"text/plain"}
"""``Content-Type`` of an event request's body: JSON, or ``text/plain`` as analytics.js and
``navigator.sendBeacon`` send it (the body is JSON either way)."""

COMPRESSED_EVENT_MEDIA_TYPES: frozenset[str] = EVENT_MEDIA_TYPES | {"application/x-www-form-urlencoded"}
"""``Content-Type`` of a compressed event body (``Content-Encoding: gzip`` or ``deflate``): also
the form type, which RudderStack's Node SDK (axios) puts on its gzipped JSON. No page can send
it so: a form cannot set ``Content-Encoding``, and a script that sets it needs a preflight."""

SAME_SITE_FETCH: frozenset[str] = frozenset({"same-origin", "none"})
"""``Sec-Fetch-Site`` values of a request not made by another site's page (``none``: typed in the
address bar or opened from a bookmark)."""

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
"""``Content-Security-Policy`` of every answer (module docstring)."""

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
)
"""Headers :class:`SecurityHeaders` adds to every answer that does not set them itself."""


def _has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return "transfer-encoding" in request.headers


def check_content_type(request: Request, *, events: bool) -> None:
    """415 unless a state-changing request's body is declared as JSON (``events``: or text/plain)."""
    if request.method not in STATE_CHANGING or not _has_body(request):
        return
    raw = request.headers.get("content-type", "")
    media = raw.split(";", 1)[0].strip().lower()
    if events:
        compressed = request.headers.get("content-encoding", "").strip().lower() not in ("", "identity")
        allowed = COMPRESSED_EVENT_MEDIA_TYPES if compressed else EVENT_MEDIA_TYPES
    else:
        allowed = JSON_MEDIA_TYPES
    if media in allowed:
        return
    wanted = "application/json (or text/plain, as analytics.js sends)" if events else "application/json"
    got = f"{raw[:80]!r}" if raw else "none"
    raise HTTPException(status_code=415, detail=f"the request body must be sent as Content-Type: {wanted}; got {got}")


def cross_site(request: Request) -> str | None:
    """Why a state-changing request looks made by a page of another site (the header that says
    so), or None: a same-origin request, a safe method, or no browser at all."""
    if request.method not in STATE_CHANGING:
        return None
    headers = request.headers
    site = headers.get("sec-fetch-site")
    if site is not None:
        return None if site.strip().lower() in SAME_SITE_FETCH else f"Sec-Fetch-Site: {site[:40]}"
    origin = headers.get("origin")
    if origin is None:
        return None
    origin = origin.strip()
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:
        netloc = ""
    host = headers.get("host", "")
    if origin.lower() != "null" and netloc and netloc.lower() == host.strip().lower():
        return None
    return f"Origin: {origin[:80]}"


def refuse_cross_site(reason: str, *, events: bool) -> HTTPException:
    """The 403 for a cross-site request (``events``: one whose key is not a write key)."""
    allowed = ("only events sent with a write key may come from another site's page"
               if events else "this endpoint does not take requests from another site's page")
    return HTTPException(status_code=403, detail=f"cross-site request refused ({reason}): {allowed}")


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class SecurityHeaders:
    """ASGI middleware adding :data:`SECURITY_HEADERS` to every HTTP answer that lacks them."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in SECURITY_HEADERS if h[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
