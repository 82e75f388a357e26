"""The customer's own page (the preference center): a signed, expiring link opens a page where a
person sees what is held about them and what they get back, changes their consents and
preferences, downloads their data and may erase it.

Links. ``POST /v1/customers/{identifier}/preference-link`` (admin) or ``patron preference-link``
makes a link ``<base>/preferences#<token>`` (:mod:`patron.service.links`); ``DELETE`` the same
path withdraws every link and session of the person. The token travels in the URL's fragment,
which browsers never send to a server (so it is in no access log and no ``Referer``). The page's
script posts it once to ``POST /preferences/session``, which answers with a session cookie
(``HttpOnly``, ``SameSite=Strict``, ``Path=/preferences``, ``Secure`` over HTTPS, at most
``[preference_center] session_minutes`` and never past the link's expiry), then drops the fragment
from the address bar.

The page's requests (``/preferences/...``) carry no identifier: the person is the session's, the
one the link was made for. Every state-changing request obeys the service's browser-safety rules
(a JSON body, no request from another site's page: :mod:`patron.service.browser`) and the cookie
is ``SameSite=Strict`` besides. Changes are appended to the ledgers with source
``preference_center`` through the same checks and writer as the REST endpoints
(:func:`patron.service.ledger_api.append_records`), so the contact check and ``patron plan``
honour them at once.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta
from functools import cache
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from patron.contact.consent.quiet import valid_zone
from patron.contact.consent.times import now_utc
from patron.errors import NoDataError, PatronError
from patron.service.auth import require
from patron.service.body import read_body, read_json
from patron.service.browser import check_content_type, cross_site, refuse_cross_site
from patron.service.customers_api import erase_person, rights_config
from patron.service.json_body import parse_json
from patron.service.ledger_api import append_records
from patron.service.links import (
    LINK,
    PAGE_PATH,
    SESSION,
    Claims,
    LinkError,
    check_nonce,
    mint,
    page_link,
    revoke,
    verify,
)
from patron.service.pages import HERE
from patron.service.profile_view import consents_in_force, resolve_or_404
from patron.service.state import ServiceState
from patron.service.statement import holds_anything, statement

router = APIRouter()

COOKIE = "patron_preferences"
"""Name of the session cookie."""


ASSETS: dict[str, str] = {"preferences.js": "text/javascript; charset=utf-8", "preferences.css": "text/css; charset=utf-8"}
"""The page's script and style sheet, served from ``/preferences/`` without a key."""

MAX_TOKEN_BODY = 4096
"""Largest body of ``POST /preferences/session`` (a token and a little JSON), in bytes."""


def _state(request: Request) -> ServiceState:
    return request.app.state.patron


class CustomerAuth:
    """The dependency of every ``/preferences`` route: the service's browser-safety rules for
    state-changing requests, and (``session``) a valid session cookie, whose person it returns.
    :func:`patron.service.auth.is_auth_dependency` recognises it: these routes are opened by a
    link, not by an API key."""

    patron_auth = "customer"

    def __init__(self, *, session: bool) -> None:
        self.session = session

    async def __call__(self, request: Request) -> Claims | None:
        check_content_type(request, events=False)
        foreign = cross_site(request)
        if foreign is not None:
            raise refuse_cross_site(foreign, events=False)
        if not self.session:
            return None
        token = request.cookies.get(COOKIE)
        if not token:
            raise HTTPException(status_code=401, detail="open the link you were sent to see this page")
        state = _state(request)
        try:
            claims = verify(_secret(state), token, purpose=SESSION, now=now_utc())
            with state.reading(wait=False) as con:  # on the event loop; nonces are not events
                check_nonce(con, claims)
        except LinkError as exc:
            raise HTTPException(status_code=401, detail=str(exc)) from None
        return claims


PAGE = Depends(CustomerAuth(session=False))
SESSION_AUTH = Depends(CustomerAuth(session=True))


def _secret(state: ServiceState) -> bytes:
    if state.link_secret is None:  # pragma: no cover - made at start-up
        raise HTTPException(status_code=503, detail="the service is starting: try again")
    return state.link_secret


# -- links (admin) -----------------------------------------------------------------------------


class LinkRequest(BaseModel):
    """How long the link is valid (default ``[preference_center] link_hours``)."""

    model_config = ConfigDict(extra="forbid")
    hours: float | None = Field(None, gt=0, le=2160, description="Hours the link is valid (at most 90 days).")


class LinkMade(BaseModel):
    """A link to a customer's own page."""

    customer_id: str
    url: str = Field(description="<base>/preferences#<token>: send it to the customer; it opens their page only.")
    expires_at: str


class LinkRevoked(BaseModel):
    customer_id: str
    revoked: bool = Field(description="Whether the person had links (all of them and their sessions stop now).")


def _base_url(request: Request, state: ServiceState) -> str:
    return state.center.public_url or str(request.base_url).rstrip("/")


@router.post("/v1/customers/{identifier}/preference-link", tags=["preference center"], status_code=201,
             response_model=LinkMade, dependencies=[require("admin")],
             openapi_extra={"requestBody": {"required": False, "content": {"application/json": {
                 "schema": LinkRequest.model_json_schema()}}}},
             summary="A signed, expiring link to the customer's own page (admin)")
async def make_link(identifier: str, request: Request) -> JSONResponse:
    state = _state(request)
    raw = await read_body(request, limit=MAX_TOKEN_BODY)
    body = _parse(LinkRequest, parse_json(raw) if raw.strip() else {})
    hours = body.hours or state.center.link_hours
    base = _base_url(request, state)

    def work() -> dict[str, Any]:
        with state.reading() as con:
            customer_id = resolve_or_404(con, identifier)
        assert state.writer is not None
        return state.writer.run(lambda con: page_link(con, customer_id, hours=hours, base_url=base, now=now_utc()))

    return JSONResponse(await run_in_threadpool(work), status_code=201)


@router.delete("/v1/customers/{identifier}/preference-link", tags=["preference center"], response_model=LinkRevoked,
               dependencies=[require("admin")],
               summary="Withdraw every link (and open page) of the customer (admin)")
def withdraw_links(identifier: str, request: Request) -> dict[str, Any]:
    state = _state(request)
    with state.reading() as con:
        customer_id = resolve_or_404(con, identifier)
    assert state.writer is not None
    done = state.writer.run(lambda con: revoke(con, customer_id, now_utc()))
    return {"customer_id": customer_id, "revoked": done}


# -- the page ----------------------------------------------------------------------------------


@cache
def _asset(name: str) -> str:
    return (HERE / name).read_text(encoding="utf-8")


@router.get(PAGE_PATH, include_in_schema=False, response_class=HTMLResponse, dependencies=[PAGE])
def page() -> HTMLResponse:
    """The page's shell: no data (the script loads it with the session), no inline script."""
    return HTMLResponse(_asset("preferences.html"), headers={"Cache-Control": "no-store"})


def _cookie(response: Response, request: Request, value: str, max_age: int) -> None:
    response.set_cookie(COOKIE, value, max_age=max_age, path=PAGE_PATH, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")


@router.post(PAGE_PATH + "/session", include_in_schema=False, dependencies=[PAGE])
async def open_session(request: Request) -> JSONResponse:
    """Exchange a link's token (``{"token": ...}``) for the session cookie."""
    state = _state(request)
    data = await read_json(request, limit=MAX_TOKEN_BODY)
    token = data.get("token") if isinstance(data, dict) else None
    now = now_utc()

    def work() -> Claims:
        claims = verify(_secret(state), token, purpose=LINK, now=now)
        with state.reading() as con:
            check_nonce(con, claims)
        return claims

    try:
        claims = await run_in_threadpool(work)
    except LinkError as exc:
        return JSONResponse({"error": str(exc)}, status_code=401)
    until = min(claims.expires_at, now + timedelta(minutes=state.center.session_minutes))
    session = mint(_secret(state), claims.customer_id, nonce=claims.nonce, expires_at=until, purpose=SESSION)
    response = JSONResponse({"ok": True, "expires_at": until.isoformat() + "Z"})
    _cookie(response, request, session, max(1, int((until - now).total_seconds())))
    return response


@router.post(PAGE_PATH + "/signout", include_in_schema=False, dependencies=[PAGE])
def sign_out(request: Request) -> JSONResponse:
    response = JSONResponse({"ok": True})
    _cookie(response, request, "", 0)
    return response


def _view(state: ServiceState, customer_id: str) -> dict[str, Any]:
    with state.reading() as con:
        if not holds_anything(con, customer_id):
            raise NoDataError("nothing is held under this link's profile any more (it may have been merged with "
                              "another profile, or erased): ask for a new link")
        return statement(con, state, customer_id, now_utc())


@router.get(PAGE_PATH + "/data", include_in_schema=False)
def data(request: Request, claims: Claims = SESSION_AUTH) -> JSONResponse:
    """What is held about the session's person and what they get back (:mod:`patron.service.statement`)."""
    return JSONResponse(_view(_state(request), claims.customer_id), headers={"Cache-Control": "no-store"})


class ConsentChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    purpose: str
    channel: str
    granted: bool


class ConsentChanges(BaseModel):
    model_config = ConfigDict(extra="forbid")
    changes: list[ConsentChange] = Field(min_length=1, max_length=200)


def _parse(model: type[BaseModel], data: Any) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        raise PatronError(f"{where}: {first.get('msg', 'invalid')}") from None


@router.post(PAGE_PATH + "/consents", include_in_schema=False)
async def change_consents(request: Request, claims: Claims = SESSION_AUTH) -> JSONResponse:
    """``{"changes": [{"purpose", "channel", "granted"}]}``: one consent record per change, source
    ``preference_center`` (a withdrawn grant is ``revoked``, a refusal otherwise ``denied``)."""
    state = _state(request)
    body = _parse(ConsentChanges, await read_json(request, limit=state.rules.max_event_bytes))
    center = state.center
    for c in body.changes:
        if c.purpose not in center.purposes or c.channel not in center.channels:
            raise PatronError(f"{c.purpose} by {c.channel} is not a choice of this page")

    def work() -> dict[str, Any]:
        now = now_utc()
        with state.reading() as con:
            granted = {(c["purpose"], c["channel"]) for c in consents_in_force(con, claims.customer_id, now) if c["granted"]}
        records = [{"purpose": c.purpose, "channel": c.channel, "occurred_at": now.isoformat() + "Z",
                    "status": "granted" if c.granted else ("revoked" if (c.purpose, c.channel) in granted else "denied")}
                   for c in body.changes]
        append_records(state, claims.customer_id, "consents", records, source="preference_center",
                       where="consents not stored")
        return _view(state, claims.customer_id)

    return JSONResponse(await run_in_threadpool(work))


class Caps(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_per_week: float | None = Field(None, ge=0, le=1000)
    max_per_month: float | None = Field(None, ge=0, le=10000)


class PreferenceForm(BaseModel):
    """The page's contact settings: what applies to every channel, and caps per channel."""

    model_config = ConfigDict(extra="forbid")
    paused_until: str | None = Field(None, max_length=40)
    quiet_hours_start: float | None = Field(None, ge=0, le=24)
    quiet_hours_end: float | None = Field(None, ge=0, le=24)
    time_zone: str | None = Field(None, max_length=64)
    topics: list[str] | None = Field(None, max_length=100)
    preferred_channel: str | None = Field(None, max_length=20)
    caps: dict[str, Caps] = Field(default_factory=dict)


@router.post(PAGE_PATH + "/preferences", include_in_schema=False)
async def change_preferences(request: Request, claims: Claims = SESSION_AUTH) -> JSONResponse:
    """The customer's complete contact settings: one preference record for ``any`` and one per
    channel of the page (each the complete settings of its channel: the common fields and that
    channel's caps), all at one time, source ``preference_center``; all or nothing."""
    state = _state(request)
    form = _parse(PreferenceForm, await read_json(request, limit=state.rules.max_event_bytes))
    center = state.center
    unknown = sorted(set(form.caps) - set(center.channels))
    if unknown:
        raise PatronError(f"caps.{unknown[0]}: not a channel of this page")
    if form.time_zone and not valid_zone(form.time_zone):
        raise PatronError(f"time_zone: {form.time_zone!r} is not a known IANA time zone")
    if form.preferred_channel and form.preferred_channel not in center.channels:
        raise PatronError(f"preferred_channel: {form.preferred_channel!r} is not a channel of this page")
    if center.topics and form.topics and set(form.topics) - set(center.topics):
        raise PatronError(f"topics: {sorted(set(form.topics) - set(center.topics))[0]!r} is not a topic of this page")
    if (form.quiet_hours_start is None) != (form.quiet_hours_end is None):
        raise PatronError("quiet hours need both a start and an end")
    common = form.model_dump(exclude={"caps"})

    def work() -> dict[str, Any]:
        at = now_utc().isoformat() + "Z"
        records = [{**common, "channel": "any", "occurred_at": at}]
        for channel in center.channels:
            caps = form.caps.get(channel, Caps())
            records.append({**common, "channel": channel, "occurred_at": at, **caps.model_dump()})
        append_records(state, claims.customer_id, "preferences", records, source="preference_center",
                       where="preferences not stored")
        return _view(state, claims.customer_id)

    return JSONResponse(await run_in_threadpool(work))


@router.get(PAGE_PATH + "/export", include_in_schema=False)
def export(request: Request, claims: Claims = SESSION_AUTH) -> StreamingResponse:
    """Everything held about the person (:func:`patron.people.rights.export.export_chunks`), as a file."""
    state = _state(request)
    chunks = _export_stream(state, claims.customer_id)
    first = next(chunks)  # nothing held: 404 before a byte is sent
    return StreamingResponse(itertools.chain([first], chunks), media_type="application/json",
                             headers={"Content-Disposition": 'attachment; filename="my-data.json"',
                                      "Cache-Control": "no-store"})


def _export_stream(state: ServiceState, customer_id: str) -> Iterator[str]:
    from patron.people.rights.export import export_chunks

    with state.reading():
        yield from export_chunks(state.db, customer_id, config=rights_config(state))


class Erasure(BaseModel):
    model_config = ConfigDict(extra="forbid")
    confirm: str = Field(description='Must be "erase".')


@router.post(PAGE_PATH + "/erasure", include_in_schema=False)
async def erase(request: Request, claims: Claims = SESSION_AUTH) -> JSONResponse:
    """Erase everything held about the person (as ``DELETE /v1/customers/{id}``), when
    ``[preference_center] erasure`` allows it; ``{"confirm": "erase"}``. Answers the receipt's
    number and time, and ends the session."""
    state = _state(request)
    if not state.center.erasure:
        return JSONResponse({"error": "erasure is not offered on this page: contact us to ask for it"}, status_code=403)
    body = _parse(Erasure, await read_json(request, limit=MAX_TOKEN_BODY))
    if body.confirm != "erase":
        raise PatronError('confirm: type "erase" to confirm')
    receipt = await run_in_threadpool(erase_person, state, claims.customer_id)
    response = JSONResponse({"erasure_id": receipt["erasure_id"], "erased_at": receipt["erased_at"]})
    _cookie(response, request, "", 0)
    return response


# Last: the routes above take precedence over this pattern.
@router.get(PAGE_PATH + "/{name}", include_in_schema=False, dependencies=[PAGE])
def asset(name: str) -> Response:
    """The page's script and style sheet (:data:`ASSETS`); anything else is 404."""
    media = ASSETS.get(name)
    if media is None:
        return JSONResponse({"error": "no such page"}, status_code=404)
    return Response(_asset(name), media_type=media, headers={"Cache-Control": "no-cache"})
