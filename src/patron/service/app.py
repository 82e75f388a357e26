"""The FastAPI application: start-up/shut-down of the served database and the writer, the routers,
and errors as JSON without stack traces."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import import_module
from typing import Any

from patron.extras import require

require("service", "patron.service.create_app")  # one line naming the extra, before FastAPI

from fastapi import FastAPI, Request  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from fastapi.responses import JSONResponse, Response  # noqa: E402
from starlette.exceptions import HTTPException as StarletteHTTPException  # noqa: E402
from starlette.requests import ClientDisconnect  # noqa: E402

from patron import __version__  # noqa: E402
from patron.config import section  # noqa: E402
from patron.errors import NoDataError, PatronError  # noqa: E402
from patron.service.acceptors import AcceptorPlan  # noqa: E402
from patron.service.settings import PreferenceCenterRules, ServiceRules  # noqa: E402
from patron.service.state import ServiceState  # noqa: E402
from patron.settings import get_settings  # noqa: E402

log = logging.getLogger("patron.service")

ROUTER_MODULES: tuple[str, ...] = (
    "events_api",  # /v1/identify, /v1/track, /v1/alias, /v1/page, /v1/screen, /v1/group, /v1/batch, dead letters
    "customers_api",  # /v1/customers/{id} (+ export, erasure), /v1/contacts/check, /v1/merges, /v1/refresh
    "admin_api",  # /v1/keys, /docs, /openapi.json
    "dashboard",  # / and its pages and bundled assets
    "value_api",  # /v1/equity: the dashboard's customer equity and the value settings behind it
    "ledger_api",  # /v1/customers/{id}/consents and /preferences: the two ledgers by REST
    "preference_center",  # /preferences: the customer's own page; /v1/customers/{id}/preference-link
    "segments_api",  # /v1/segments/{name}/members: a segment's member list, paged, JSON or CSV
    "place_api",  # /v1/stores: the stores' catchments (docs/place.md)
    "dialogue_api",  # /v1/triggers, /v1/firings: triggers through the gate to webhooks (patron.service.dialogue)
    "motivation_api",  # /v1/motivation: why customers buy, per motivation, from the last refresh
)
"""Modules under ``patron.service`` each exposing a FastAPI ``router``."""


def create_app(
    db: str | os.PathLike[str], *, config: str | os.PathLike[str] | dict[str, Any] | None = None,
    rules: ServiceRules | None = None, acceptors: AcceptorPlan | None = None,
) -> FastAPI:
    """The service over the database file ``db``, with the ``[service]`` rules of ``config``;
    with ``acceptors``, it also starts acceptor processes that take the HTTP requests
    (:mod:`patron.service.acceptors`)."""
    from patron.service.auth import KeyRing
    from patron.service.body import BodyLimit
    from patron.service.browser import SecurityHeaders
    from patron.service.writer import Writer

    state = ServiceState(db=str(db), rules=rules or section("service", ServiceRules, config), config=config,
                         center=section("preference_center", PreferenceCenterRules, config))
    get_settings()  # a bad PATRON_ setting (date floor, tolerance) fails here, not on the first event
    from patron.service.dialogue import ServiceDialogue, load_rules

    dialogue_rules = load_rules(config)  # [[triggers]], [[destinations]]: a wrong one stops the start, in one line

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.open()
        state.keys = KeyRing(state)
        state.writer = Writer(state)
        state.writer.start()
        from patron.contact.consent.times import now_utc
        from patron.service.links import ensure_secret

        state.link_secret = state.writer.run(lambda con: ensure_secret(con, now_utc()))
        # Score refresh on the [service] refresh_every_minutes schedule; on shutdown wait for a
        # running refresh before the database closes.
        from patron.service.refresh import start_refresher, stop_refresher
        from patron.service.snapshot import Snapshots

        # The dialogue creates its tables (a commit) before the first snapshot is copied, so that an
        # idle service's snapshot stays current without a second copy.
        state.dialogue = ServiceDialogue(state, dialogue_rules)
        state.dialogue.start()
        state.writer.replay()  # journal records a crash left unapplied: after the triggers are in
        state.snapshots = Snapshots(state)
        state.snapshots.start()
        start_refresher(state)
        processes = None
        if acceptors is not None:
            from patron.service.acceptors import Acceptors

            processes = Acceptors(state, acceptors)
            await processes.start()
        if isinstance(app, ServiceApp):
            app.skip_probe()  # event POSTs: FastAPI's telemetry probe once, not per request
        try:
            yield
        finally:
            if processes is not None:
                await processes.stop()
            state.dialogue.stop()
            stop_refresher(state)
            state.writer.stop()
            state.snapshots.stop()
            with state.lock.exclusive():  # wait for readers still holding a cursor
                state.close()

    from patron.service.fast_path import EventFastPath, ServiceApp

    app = ServiceApp(
        title="patron",
        version=__version__,
        description="Segment-spec event API, one profile per person, lifetime value and status, consent checks.",
        lifespan=lifespan,
        docs_url=None,  # /docs and /openapi.json are served by admin_api behind a key
        openapi_url=None,
    )
    app.state.patron = state
    app.add_middleware(EventFastPath)  # innermost: the event endpoints without FastAPI's routing
    # no endpoint takes a huge body, or one sent too slowly
    app.add_middleware(BodyLimit, limit=state.rules.max_batch_bytes, timeout=state.rules.body_timeout_seconds,
                       idle=state.rules.body_idle_seconds)
    app.add_middleware(SecurityHeaders)  # outermost: every answer, a 413 included (patron.service.browser)

    @app.get("/health", tags=["health"], summary="Liveness (open: no key needed)")
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    install_error_handlers(app)

    for name in ROUTER_MODULES:
        app.include_router(import_module(f"patron.service.{name}").router)
    return app


def install_error_handlers(app: FastAPI) -> None:
    """Errors as JSON without stack traces (the service's and the acceptors' apps)."""

    @app.exception_handler(NoDataError)
    async def _no_data(request: Request, exc: NoDataError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=404)

    @app.exception_handler(PatronError)
    async def _patron_error(request: Request, exc: PatronError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"where": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "invalid")}
            for e in exc.errors()
        ]
        return JSONResponse({"error": "invalid request", "errors": errors}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, exc: ClientDisconnect) -> Response:
        # The client left before its body was complete: BodyLimit logged one line; nobody reads this.
        return Response(status_code=400)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": "internal error (logged by the service)"}, status_code=500)


def service_state(request: Request) -> ServiceState:
    """FastAPI dependency: the running service's :class:`ServiceState`."""
    return request.app.state.patron
