"""Admin endpoints: API keys (``/v1/keys``), and the API documentation (``/openapi.json``,
``/docs``) behind a key of any role -- no endpoint but ``/health`` is open.

Key changes are writes: they run on the writer thread (``state.writer.run``) like every other
change while the service holds the database, then the in-memory :class:`KeyRing` is reloaded.
"""

from __future__ import annotations

import html
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from patron.service.auth import ApiKey, create_key_record, list_keys, require, revoke_key
from patron.service.body import read_json
from patron.service.state import ServiceState

router = APIRouter()


def _state(request: Request) -> ServiceState:
    return request.app.state.patron


class KeyCreate(BaseModel):
    """A key to create."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["write", "read", "admin"] = Field(description="write: event ingestion; read: profiles, scores, dashboard; admin: everything.")
    name: str | None = Field(None, max_length=200, description="A label, e.g. the sending system.")


class KeyInfo(BaseModel):
    """A key as listed: no secret, no hash. Times are UTC (ISO 8601, no offset)."""

    key_id: str
    role: str
    name: str | None
    created_at: str
    revoked_at: str | None


class KeyCreated(KeyInfo):
    """A new key: ``key`` is shown this once and never again (only its hash is stored)."""

    key: str


def _info(record: ApiKey) -> dict[str, Any]:
    return record.to_dict()


_KEY_CREATE_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": KeyCreate.model_json_schema()}}}}


@router.post("/v1/keys", tags=["keys"], dependencies=[require("admin")], status_code=201, response_model=KeyCreated, openapi_extra=_KEY_CREATE_BODY,
             summary="Create an API key (admin); the key is returned once")
async def create(request: Request) -> dict[str, Any]:
    """Body ``{"role": ..., "name": ...}`` (JSON, gzip or deflate accepted, at most max_event_bytes)."""
    state = _state(request)
    data = await read_json(request, limit=state.rules.max_event_bytes)
    try:
        body = KeyCreate.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False, include_context=False)) from None
    record, key = await state.writer.arun(lambda con: create_key_record(con, body.role, body.name))
    await run_in_threadpool(state.keys.reload)
    return {**_info(record), "key": key}


@router.get("/v1/keys", tags=["keys"], dependencies=[require("admin")], response_model=list[KeyInfo],
            summary="List API keys (admin), live and revoked, without secrets")
def list_(request: Request) -> list[dict[str, Any]]:
    with _state(request).reading() as con:
        return [_info(k) for k in list_keys(con)]


@router.delete("/v1/keys/{key_id}", tags=["keys"], dependencies=[require("admin")], response_model=KeyInfo,
               responses={404: {"description": "No such key"}},
               summary="Revoke an API key (admin); it gets 401 from then on")
def revoke(key_id: str, request: Request) -> dict[str, Any]:
    state = _state(request)
    record = state.writer.run(lambda con: revoke_key(con, key_id))
    state.keys.reload()
    return _info(record)


# -- API documentation, behind a key ------------------------------------------------------------


@router.get("/openapi.json", include_in_schema=False, dependencies=[require()])
def openapi(request: Request) -> JSONResponse:
    """The OpenAPI document (any role's key)."""
    return JSONResponse(request.app.openapi())


@router.get("/docs", include_in_schema=False, dependencies=[require()], response_class=HTMLResponse)
def docs(request: Request) -> HTMLResponse:
    """A self-contained list of the endpoints (works without internet: no CDN assets), linking
    the OpenAPI document for tools (Swagger UI, schemathesis, client generators)."""
    spec = request.app.openapi()
    rows = []
    for path, item in spec.get("paths", {}).items():
        for method, op in item.items():
            if not isinstance(op, dict):
                continue
            security = ", ".join(sorted({name for req in op.get("security", []) for name in req})) or "open"
            rows.append(
                f"<tr><td><code>{html.escape(method.upper())}</code></td><td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(op.get('summary', ''))}</td><td>{html.escape(security)}</td></tr>"
            )
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{html.escape(spec['info']['title'])} API</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}}td,th{{padding:.25rem .75rem;
text-align:left;border-bottom:1px solid #ddd}}code{{font-size:.95em}}</style></head><body>
<h1>{html.escape(spec['info']['title'])} {html.escape(spec['info']['version'])} API</h1>
<p>{html.escape(spec['info'].get('description', ''))}</p>
<p>Machine-readable: <a href="openapi.json">openapi.json</a> (OpenAPI {html.escape(spec.get('openapi', ''))}).
Send an API key as the HTTP Basic user name with an empty password, or as <code>Authorization: Bearer KEY</code>.</p>
<table><thead><tr><th>Method</th><th>Path</th><th>What</th><th>Auth</th></tr></thead><tbody>
{''.join(rows)}
</tbody></table></body></html>"""
    return HTMLResponse(page)

