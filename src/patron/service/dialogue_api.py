"""Triggers through the API (admin key): ``GET/POST /v1/triggers``, ``DELETE /v1/triggers/{name}``,
and what they did: ``GET /v1/triggers/stats`` and ``GET /v1/firings``.

Triggers of the rules file are listed with ``source = "file"`` and cannot be deleted here (edit the
file); triggers created here are stored in the database (``dialogue_triggers``) and survive restarts.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from patron.contact.dialogue import DialogueRules, Trigger
from patron.contact.dialogue.outbox import STATES
from patron.contact.dialogue.rules import check_purposes
from patron.contact.dialogue.stats import firing_list, trigger_stats
from patron.errors import InputError
from patron.service.auth import require
from patron.service.body import read_json
from patron.service.dialogue import ServiceDialogue
from patron.service.state import ServiceState

router = APIRouter()


def _dialogue(request: Request) -> tuple[ServiceState, ServiceDialogue]:
    state: ServiceState = request.app.state.patron
    if state.dialogue is None:  # pragma: no cover - started with the app
        raise HTTPException(503, "the dialogue is not running")
    return state, state.dialogue


def _listed(d: ServiceDialogue) -> list[dict[str, Any]]:
    file_names = {t.name for t in d.dialogue.file_rules.triggers}
    return [{**t.model_dump(mode="json"), "source": "file" if t.name in file_names else "api"}
            for t in d.dialogue.triggers]


_CREATE_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": Trigger.model_json_schema()}}}}


@router.get("/v1/triggers", tags=["triggers"], dependencies=[require("admin")],
            summary="List the triggers in force (admin): the rules file's and the API's")
def list_triggers(request: Request) -> list[dict[str, Any]]:
    return _listed(_dialogue(request)[1])


@router.post("/v1/triggers", tags=["triggers"], dependencies=[require("admin")], status_code=201,
             openapi_extra=_CREATE_BODY, summary="Create a trigger (admin); stored in the database")
async def create_trigger(request: Request) -> dict[str, Any]:
    state, d = _dialogue(request)
    data = await read_json(request, limit=state.rules.max_event_bytes)
    try:
        trigger = Trigger.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False, include_context=False)) from None
    if d.dialogue.trigger(trigger.name) is not None:
        raise HTTPException(409, f"a trigger called {trigger.name!r} exists")
    if d.dialogue.file_rules.destination(trigger.destination) is None:
        raise HTTPException(422, f"destination {trigger.destination!r} is not declared in the rules file's [[destinations]]")
    try:
        check_purposes(DialogueRules.model_construct(triggers=[trigger], destinations=[]), d.dialogue.policy, "trigger")
    except InputError as exc:
        raise HTTPException(422, str(exc)) from None
    try:
        with state.reading(wait=False) as con:  # on the event loop: the rules, not events
            d.dialogue.check_rules(con, trigger)
    except InputError as exc:
        raise HTTPException(422, str(exc)) from None
    await run_in_threadpool(d.create_trigger, trigger)
    return {**trigger.model_dump(mode="json"), "source": "api"}


@router.delete("/v1/triggers/{name}", tags=["triggers"], dependencies=[require("admin")],
               summary="Delete a trigger made through the API (admin); its scheduled firings are cancelled")
def delete_trigger(name: str, request: Request) -> dict[str, Any]:
    _, d = _dialogue(request)
    if any(t.name == name for t in d.dialogue.file_rules.triggers):
        raise HTTPException(409, f"trigger {name!r} is declared in the rules file: edit the file to remove it")
    if d.dialogue.trigger(name) is None:
        raise HTTPException(404, f"no trigger called {name!r}")
    d.delete_trigger(name)
    return {"deleted": name}


@router.get("/v1/triggers/stats", tags=["triggers"], dependencies=[require("read")],
            summary="Per trigger: firings, sends, exclusions by reason, deliveries delivered/failing/dead")
def stats(request: Request) -> list[dict[str, Any]]:
    state, d = _dialogue(request)
    with state.reading() as con:
        return trigger_stats(con, [t.name for t in d.dialogue.triggers])


@router.get("/v1/firings", tags=["triggers"], dependencies=[require("admin")],
            summary="Trigger firings, newest first (admin): state, reason, attempts, last error")
def firings(request: Request, trigger: str | None = None,
            state_: str | None = Query(None, alias="state"), customer_id: str | None = None, limit: int = Query(100, ge=1, le=10_000)) -> list[dict[str, Any]]:
    state, _ = _dialogue(request)
    if state_ is not None and state_ not in STATES:
        raise HTTPException(422, f"state must be one of {', '.join(STATES)}")
    with state.reading() as con:
        return firing_list(con, trigger=trigger, state=state_, customer_id=customer_id, limit=limit)
