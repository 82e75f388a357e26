"""Segment-spec event endpoints: ``POST /v1/identify``, ``/v1/track``, ``/v1/alias``, ``/v1/page``,
``/v1/screen``, ``/v1/group``, ``/v1/batch`` (write role), and ``GET /v1/dead-letters`` (admin).

The hot path reads the body once (gzip and size limits: :mod:`patron.service.body`), decodes the
JSON once, checks each event by hand (:func:`~patron.service.segment_spec.check_event`; the Pydantic
models only describe the bodies in the OpenAPI schema), maps it
(:func:`~patron.service.mapping.map_event`) and hands everything to the writer's group commit.
The answer comes after ``COMMIT``.

Answers (Segment's SDKs only look at the status: 2xx done, 4xx dropped, 5xx and 429 retried):

* every event stored (or already stored: a retry): **200** ``{"success": true}``;
* a batch with some bad events: **200** ``{"success": false, "accepted": n, "rejected": [{"index",
  "messageId", "error"}]}``. The good events are stored; the bad ones are in ``dead_letters``.
  Not 207: the Python SDK treats any status but 200 as an error and would resend the batch; not
  a 4xx, which SDKs read as "the whole batch is bad";
* a single bad event, or a batch whose events are all bad: **400** with the same body plus
  ``error`` (retrying cannot help);
* a body over ``max_batch_bytes`` (500 KB): **413**; an event over ``max_event_bytes`` (32 KB) is
  a bad event (``event is 40,213 bytes, over the 32 KB limit``);
* a body that is not events (invalid JSON or gzip, not UTF-8, nested too deep, not a batch):
  **400** ``{"error": ...}``, and a dead letter holding the body;
* the database failed (I/O, memory): **503** ``{"error": ...}`` with ``Retry-After`` (SDKs retry;
  events already stored are recognised by their messageId).

Never a 5xx for content: :func:`prepare` turns any exception a check or the mapping raises into
the event's dead letter, and the writer isolates an event that still fails at commit time
(:mod:`patron.service.commit`).
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import cache
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from patron.data.ingest.plausible import floor_datetime
from patron.service.auth import require
from patron.service.body import read_body
from patron.service.event_tables import MAX_DEAD_PAYLOAD
from patron.service.items import Accepted, Item, Outcome, dead_letter
from patron.service.json_body import Unreadable, parse_events
from patron.service.mapping import map_event
from patron.service.segment_spec import (
    MODELS,
    EventError,
    check_event,
    dumps,
    future_limit,
    inline_schema,
    merge_batch_fields,
    now_utc,
)
from patron.service.state import ServiceState
from patron.service.writer import WriteFailed
from patron.settings import get_settings

log = logging.getLogger("patron.service.events")

router = APIRouter(tags=["events"])

_OK = b'{"success":true}'


class Success(BaseModel):
    """Every event is stored."""

    success: bool = Field(description="True: every event is stored (or was already).")


class RejectedEvent(BaseModel):
    """One bad event of a request."""

    index: int = Field(description="Position of the event in the batch (0 for a single event).")
    messageId: str | None = Field(description="The event's messageId, when it had one.")
    error: str = Field(description="What is wrong, naming the field.")


class Partial(BaseModel):
    """Some events were rejected (they are kept in dead_letters); the others are stored."""

    success: bool
    accepted: int = Field(description="Events stored (or already stored).")
    rejected: list[RejectedEvent]
    error: str | None = Field(default=None, description="Set when nothing was accepted (status 400).")


class ErrorBody(BaseModel):
    """A request-level error."""

    error: str


class DeadLetter(BaseModel):
    """An event that could not be stored."""

    received_at: str
    message_id: str | None
    customer_id: str | None
    type: str | None
    event: str | None
    reason: str
    payload: str | None


_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": Partial, "description": "Stored: `{\"success\": true}`, or a batch with some bad events."},
    400: {"model": Partial, "description": "Invalid event(s) or invalid JSON."},
    413: {"model": ErrorBody, "description": "Body over the size limit."},
    415: {"model": ErrorBody, "description": "Unsupported Content-Encoding or Content-Type."},
    408: {"model": ErrorBody, "description": "Body not received in time."},
    503: {"model": ErrorBody, "description": "The database failed: retry."},
}


def _body_doc(call: str) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": inline_schema(MODELS[call])}}}}


@cache
def _tolerance_hours() -> float:
    """``PATRON_FUTURE_TOLERANCE_HOURS`` (read once per process: settings parsing is slow)."""
    return get_settings().future_tolerance_hours


@cache
def _date_floor() -> datetime:
    """``PATRON_DATE_FLOOR`` as naive UTC (read once per process, as the tolerance)."""
    return floor_datetime(get_settings().date_floor)


def _best_customer(raw: Any) -> str | None:
    if not isinstance(raw, dict):
        return None
    uid, aid = raw.get("userId"), raw.get("anonymousId")
    if isinstance(uid, str | int) and not isinstance(uid, bool) and str(uid).strip():
        return str(uid).strip()
    if isinstance(aid, str | int) and not isinstance(aid, bool) and str(aid).strip():
        return "anon:" + str(aid).strip()
    return None


def prepare(raw: Any, *, call: str | None, state: ServiceState, received_at: Any, limit: Any,
            batch: dict[str, Any] | None = None) -> Item:
    """One decoded event (of ``batch``, whose shared fields are merged in first, when given) as an
    :class:`Accepted` (checked and mapped) or a dead letter.

    Whatever the content, this never raises: an :class:`EventError` is the documented reason; any
    other exception a check or the mapping raises on odd content (a date that overflows, a
    number too large for a float, ...) is the event's fault too, so it also makes a dead letter,
    naming the error, and a line in the log (the check that should have caught it is missing)."""
    rules = state.rules
    if isinstance(raw, Unreadable):  # decoded, but nested too deep or with a too-long integer
        return _rejected(raw.value, call, received_at, raw.reason)
    try:
        floor = _date_floor()
        if batch is not None:
            raw = merge_batch_fields(raw, batch)
        ev = check_event(raw, call=call, received_at=received_at, future_limit=limit,
                         max_bytes=rules.max_event_bytes, date_floor=floor)
        return Accepted(ev, map_event(ev, rules, date_floor=floor))
    except EventError as exc:
        reason = str(exc)
    except MemoryError:
        raise
    except Exception as exc:  # odd content a check missed: never a 500 (module docstring)
        reason = unexpected_reason(exc)
        log.warning("event rejected: %s", reason)
    return _rejected(raw, call, received_at, reason)


def unexpected_reason(exc: BaseException) -> str:
    """The dead-letter reason for an exception no check anticipated: its type and first line."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = text if len(text) <= 160 else text[:157] + "..."
    return f"event could not be read ({type(exc).__name__}{': ' + text if text else ''})"


def _rejected(raw: Any, call: str | None, received_at: Any, reason: str) -> Item:
    """A dead letter for ``raw`` with ``reason`` (best-effort ids; never raises on content)."""
    d = raw if isinstance(raw, dict) else {}
    mid = d.get("messageId")
    kind = call or d.get("type")
    name = d.get("event")
    try:
        payload = dumps(raw)
    except (ValueError, TypeError, RecursionError):  # pragma: no cover - decoded JSON always dumps
        payload = None
    return dead_letter(received_at, str(mid) if isinstance(mid, str | int) and not isinstance(mid, bool) else None,
                       _best_customer(raw), kind if isinstance(kind, str) else None,
                       name if isinstance(name, str) else None, reason, payload)


async def _unreadable(state: ServiceState, call: str | None, body: bytes, exc: HTTPException) -> Response:
    """A request body that could not be read as events: a 400 (corrupt compressed data, not UTF-8,
    invalid JSON, not a batch) is kept as a dead letter with the reason and the body's text
    (invalid bytes replaced; none when it could not be decompressed) and answered ``{"error":
    ...}``. Other errors (413 over a size limit, 415 an unknown encoding, 408 too slow) are
    answered without a dead letter, as a 401 is."""
    if exc.status_code != 400:
        raise exc
    text = bytes(body[:MAX_DEAD_PAYLOAD * 4]).decode("utf-8", "replace") if body else None
    item = dead_letter(now_utc(), None, None, call, None, str(exc.detail), text)
    outcome = await _store(state, [item])
    if isinstance(outcome, Response):
        return outcome
    return JSONResponse({"error": str(exc.detail)}, status_code=400)


async def _store(state: ServiceState, items: list[Item]) -> list[Outcome] | JSONResponse:
    assert state.writer is not None
    try:
        return await state.writer.submit(items)
    except WriteFailed as exc:
        return JSONResponse({"error": str(exc)}, status_code=503, headers={"Retry-After": "1"})


def _answer(outcomes: list[Outcome], *, single: bool) -> Response:
    bad = [RejectedEvent(index=i, messageId=o.message_id, error=o.error or "rejected").model_dump()
           for i, o in enumerate(outcomes) if o.status == "rejected"]
    if not bad:
        return Response(_OK, media_type="application/json")
    body: dict[str, Any] = {"success": False, "accepted": len(outcomes) - len(bad), "rejected": bad}
    if len(bad) == len(outcomes):
        body["error"] = bad[0]["error"] if single else f"every event was rejected (first: event {bad[0]['index']}: {bad[0]['error']})"
        return JSONResponse(body, status_code=400)
    return JSONResponse(body, status_code=200)


def _single(call: str):
    async def endpoint(request: Request) -> Response:
        state: ServiceState = request.app.state.patron
        # Read up to the batch limit, so an over-size event gets a 400 naming its size and a dead letter.
        body = b""
        try:
            body = await read_body(request, limit=state.rules.max_batch_bytes)
            raw = parse_events(body)
        except HTTPException as exc:
            return await _unreadable(state, call, body, exc)
        received = now_utc()
        item = prepare(raw, call=call, state=state, received_at=received,
                       limit=future_limit(received, _tolerance_hours()))
        outcomes = await _store(state, [item])
        if isinstance(outcomes, Response):
            return outcomes
        return _answer(outcomes, single=True)

    endpoint.__name__ = f"{call}_event"
    endpoint.__doc__ = f"Record a Segment `{call}` event (write role). See docs/service.md, section Events."
    return endpoint


for _call in ("identify", "track", "alias", "page", "screen", "group"):
    router.add_api_route(
        f"/v1/{_call}", _single(_call), methods=["POST"], summary=f"Segment {_call}",
        dependencies=[require("write")], responses=_RESPONSES, openapi_extra=_body_doc(_call),
        response_model=Success,
    )


@router.post("/v1/batch", summary="Segment batch", dependencies=[require("write")], responses=_RESPONSES,
             openapi_extra=_body_doc("batch"), response_model=Success)
async def batch(request: Request) -> Response:
    """Record several events of any type (write role). Batch-level ``context``, ``integrations``
    and ``sentAt`` apply to every event. Some bad events: 200 listing them; all bad: 400."""
    state: ServiceState = request.app.state.patron
    data = b""
    try:
        data = await read_body(request, limit=state.rules.max_batch_bytes)
        body = parse_events(data)
        if isinstance(body, Unreadable):
            raise HTTPException(status_code=400, detail=body.reason)
        events = body.get("batch") if isinstance(body, dict) else None
        if not isinstance(events, list):
            raise HTTPException(status_code=400, detail="batch: must be a list of events")
    except HTTPException as exc:
        return await _unreadable(state, None, data, exc)
    if not events:
        return Response(_OK, media_type="application/json")
    received = now_utc()
    limit = future_limit(received, _tolerance_hours())
    items = [prepare(raw, call=None, state=state, received_at=received, limit=limit, batch=body) for raw in events]
    outcomes = await _store(state, items)
    if isinstance(outcomes, Response):
        return outcomes
    return _answer(outcomes, single=False)


@router.get("/v1/dead-letters", summary="Rejected events", dependencies=[require("admin")],
            response_model=list[DeadLetter], tags=["events"])
def dead_letters(request: Request, limit: int = Query(100, ge=1, le=10_000, description="Most rows, newest first."),
                 ) -> list[DeadLetter]:
    """Events that could not be stored, newest first, with the reason (admin role)."""
    state: ServiceState = request.app.state.patron
    with state.reading() as con:
        rows = con.execute(
            """SELECT strftime(received_at, '%Y-%m-%dT%H:%M:%S.%fZ'), message_id, customer_id, type, event, reason,
                      payload
               FROM dead_letters ORDER BY received_at DESC, dead_letter_id LIMIT ?""", [limit]).fetchall()
    return [DeadLetter(received_at=r[0], message_id=r[1], customer_id=r[2], type=r[3], event=r[4],
                       reason=r[5], payload=r[6]) for r in rows]
