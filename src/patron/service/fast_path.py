"""The event endpoints without FastAPI's per-request machinery.

``POST /v1/identify``, ``/v1/track``, ``/v1/alias``, ``/v1/page``, ``/v1/screen``, ``/v1/group`` and
``/v1/batch`` are most of the service's requests, and FastAPI spends on each of them more than the
endpoint itself does: matching the route, solving the dependencies, building the answer through
its exception middleware (``bench_service.py --profile``: "FastAPI routing/dependencies" and
"Starlette" together ~18% of the busy time of single events). :class:`EventFastPath` is an ASGI
middleware, inside the body limits and the security headers, that answers exactly those requests
by calling the very same two functions FastAPI would call -- the key check
(:class:`patron.service.auth.KeyCheck` for the write role, browser-safety rules included) and the
route's endpoint (:mod:`patron.service.events_api`) -- on one :class:`~starlette.requests.Request`,
and turns their exceptions into the answers the application's handlers give
(:func:`patron.service.app.install_error_handlers`). Every other request goes on to FastAPI.

:class:`ServiceApp` is the application class: FastAPI (0.16x) asks OpenTelemetry on every request
whether a tracer, meter or logger provider is configured (environment lookups: ~5% of the event
loop's CPU per ``/v1/track``, ``benchmarks/bench_event_path.py``); for the event ``POST`` s it asks
once, at start-up, instead. With a provider configured before the service starts, every request is traced
as FastAPI does; one configured later traces the other requests only.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect, Request

from patron.errors import NoDataError, PatronError

log = logging.getLogger("patron.service")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def event_endpoints() -> dict[str, Callable[[Request], Awaitable[Response]]]:
    """The ``POST`` event endpoints of :mod:`patron.service.events_api`, by path."""
    from patron.service import events_api

    return {route.path: route.endpoint for route in events_api.router.routes  # type: ignore[attr-defined]
            if "POST" in getattr(route, "methods", ()) and route.path != "/v1/dead-letters"}  # type: ignore[attr-defined]


class IndexedHeaders(Headers):
    """Starlette's :class:`~starlette.datastructures.Headers` with ``get``, ``[]`` and ``in`` by a
    dictionary instead of a scan of the list: an event ``POST`` looks up about eight headers (key
    check, browser rules, body), each a scan of every header with Starlette (~5.8 us a request
    for the eight, ~2.9 us with the index). The first of repeated headers wins, as with
    Starlette; everything else (``getlist``, ``raw``, iteration) is Starlette's own."""

    def __init__(self, scope: Scope) -> None:
        super().__init__(scope=scope)
        index: dict[bytes, bytes] = {}
        for name, value in self._list:
            index.setdefault(name, value)
        self._index = index

    def get(self, key: str, default: Any = None) -> Any:
        value = self._index.get(key.lower().encode("latin-1"))
        return default if value is None else value.decode("latin-1")

    def __getitem__(self, key: str) -> str:
        value = self._index.get(key.lower().encode("latin-1"))
        if value is None:
            raise KeyError(key)
        return value.decode("latin-1")

    def __contains__(self, key: Any) -> bool:
        return key.lower().encode("latin-1") in self._index


class EventFastPath:
    """ASGI middleware answering the event endpoints directly (module docstring)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        from patron.service.auth import KeyCheck

        self.app = app
        self.endpoints = event_endpoints()
        self.check = KeyCheck("write")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self.endpoints.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        request._headers = IndexedHeaders(scope)  # what Request.headers would build, indexed
        try:
            await self.check(request)
            response = await endpoint(request)
        except StarletteHTTPException as exc:
            response = JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)
        except ClientDisconnect:  # BodyLimit logged one line; nobody reads this
            response = Response(status_code=400)
        except NoDataError as exc:
            response = JSONResponse({"error": str(exc)}, status_code=404)
        except PatronError as exc:
            response = JSONResponse({"error": str(exc)}, status_code=400)
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            response = JSONResponse({"error": "internal error (logged by the service)"}, status_code=500)
        await response(scope, receive, send)


class ServiceApp(FastAPI):
    """FastAPI, less the per-request telemetry probe on the event ``POST`` s (module docstring)."""

    event_paths: frozenset[str] = frozenset()
    """Paths answered by :class:`EventFastPath` (set by :meth:`skip_probe`; none before)."""

    def skip_probe(self) -> None:
        """Decide once whether event ``POST`` s go through FastAPI's telemetry: only when a
        provider is configured now (called at start-up, after the application's own set-up)."""
        telemetry = getattr(self, "_native_telemetry", None)
        traced = telemetry is not None and bool(telemetry.enabled())
        self.event_paths = frozenset() if traced else frozenset(event_endpoints())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self.event_paths and scope["method"] == "POST":
            scope["app"] = self  # what Starlette's own __call__ does, then its middleware stack
            if self.middleware_stack is None:
                self.middleware_stack = self.build_middleware_stack()
            await self.middleware_stack(scope, receive, send)
            return
        await super().__call__(scope, receive, send)  # type: ignore[arg-type]
