"""The profile and scoring API: one customer's single view, export, erasure, the real-time contact
check, merges, and score refresh.

Every route needs a key (:func:`patron.service.auth.require`): ``read`` for the single view,
merges, the refresh status and contact checks; ``admin`` for export, erasure and starting a
refresh. Handlers that touch the database are plain ``def`` (FastAPI runs them in its thread pool)
and read through ``state.reading()``. A customer is named by any identifier: customer id, Segment
``userId`` or ``anonymousId``, email or phone (:func:`resolve_customer`). The single view is a
handful of targeted ``WHERE customer_id = ?`` queries, no whole-table read.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from patron.contact.consent.check import ContactDecision, check_contact, parse_at
from patron.errors import InputError
from patron.service.auth import require
from patron.service.profile_view import (
    CustomerView,
    found_by,
    identity_page,
    merges_of,
    resolve_customer,
    resolve_or_404,
    single_view,
)
from patron.service.refresh import RefreshInfo, has_table, notify, refresher
from patron.service.state import ServiceState

router = APIRouter()

MAX_IDENTITY_PAGE = 1000
"""Most identifiers one ``GET /v1/customers/{identifier}/identities`` answers."""

MAX_IDENTITY_OFFSET = 10_000_000
"""Largest ``offset`` accepted by ``GET /v1/customers/{identifier}/identities`` (past every person)."""

REFRESH_WAIT_SECONDS = 600.0
"""Longest ``POST /v1/refresh?wait=true`` waits (seconds) before answering with the running status."""


def _state(request: Request) -> ServiceState:
    return request.app.state.patron


@router.get("/v1/customers/{identifier}", tags=["customers"], response_model=CustomerView,
            dependencies=[require("read")],
             summary="The single view of a customer named by any identifier (read)")
def get_customer(identifier: str, request: Request) -> dict[str, Any]:
    state = _state(request)
    with state.reading() as con:
        customer_id = resolve_or_404(con, identifier)
        view = single_view(con, state, customer_id)
        view["found_by"] = found_by(con, identifier, customer_id, view["traits"])
        return view


class IdentityPage(BaseModel):
    """A page of the identifiers the identity graph links to one person."""

    customer_id: str = Field(description="The person id.")
    total: int = Field(description="Identifiers the graph links to the person, all kinds.")
    offset: int
    limit: int
    identities: list[dict[str, Any]] = Field(
        description="kind, value (an email as its SHA-256), first_seen_at, last_seen_at, source; by kind in "
        "canonical order (user_id, email, phone, other kinds, anonymous_id), most recently seen first.")


@router.get("/v1/customers/{identifier}/identities", tags=["customers"], response_model=IdentityPage,
            dependencies=[require("read")],
            summary="The identifiers linked to a customer, a page at a time (read)")
def identities(identifier: str, request: Request,
               offset: Annotated[int, Query(ge=0, le=MAX_IDENTITY_OFFSET)] = 0,
               limit: Annotated[int, Query(ge=1, le=MAX_IDENTITY_PAGE)] = 100) -> dict[str, Any]:
    state = _state(request)
    with state.reading() as con:
        customer_id = resolve_or_404(con, identifier)
        return identity_page(con, customer_id, offset=offset, limit=limit)


@router.get("/v1/customers/{identifier}/export", tags=["customers"],
            dependencies=[require("admin")], response_class=StreamingResponse,
            responses={200: {"description": "The export document (patron.people.rights.export_customer), streamed.",
                             "content": {"application/json": {"schema": {"type": "object"}}}}},
            summary="Everything held about a customer, as one JSON document, streamed (admin)")
def export(identifier: str, request: Request) -> StreamingResponse:
    state = _state(request)
    with state.reading() as con:
        customer_id = resolve_or_404(con, identifier)
    chunks = _export_stream(state, customer_id)
    first = next(chunks)  # nothing held: NoDataError (404) before a byte is sent
    return StreamingResponse(itertools.chain([first], chunks), media_type="application/json")


def _export_stream(state: ServiceState, customer_id: str) -> Iterator[str]:
    """The export's pieces, read under the shared lock (the database is not reopened meanwhile)."""
    from patron.people.rights.export import export_chunks

    with state.reading():
        yield from export_chunks(state.db, customer_id, config=rights_config(state))


SERVICE_PERSON_COLUMNS: tuple[str, ...] = ("merged_id",)
"""Columns of the service's tables that name a person besides ``customer_id``: ``identity_merges``
records the person absorbed into (or refused by) another in ``merged_id``."""


def rights_config(state: ServiceState) -> dict[str, Any]:
    """The rules file as a dict, with :data:`SERVICE_PERSON_COLUMNS` added to ``[rights]
    extra_person_columns``, so that export and erasure also find the merges that name the person
    as the absorbed or refused side."""
    from patron.config import load_config

    config = state.config if isinstance(state.config, dict) else load_config(state.config)
    config = {**config}
    if not isinstance(config.get("rights", {}), dict):
        return config  # a malformed [rights]: let the rights module say what is wrong
    rights = dict(config.get("rights") or {})
    extra = list(rights.get("extra_person_columns") or [])
    rights["extra_person_columns"] = [*extra, *(c for c in SERVICE_PERSON_COLUMNS if c not in extra)]
    config["rights"] = rights
    return config


class ErasureReceipt(BaseModel):
    """What an erasure did, without personal data: the receipt number, when, the mode, how many
    identifiers were matched and rows deleted or pseudonymized per table."""

    erasure_id: str
    erased_at: str
    mode: str
    identifiers: int
    rows_deleted: int
    rows_pseudonymized: int
    tables: dict[str, dict[str, int]]
    rejects_files: list[str]
    scrubbed: dict[str, int] = Field(default_factory=dict, description="Values of other people's rows that named "
                                     "the person and were replaced, per table.column.")
    suppressed: int = Field(0, description="Keyed digests of the person's identifiers and messageIds added to the "
                            "suppression list (replays of their events are dropped).")


@router.delete("/v1/customers/{identifier}", tags=["customers"], response_model=ErasureReceipt,
               dependencies=[require("admin")],
             summary="Erase everything held about a customer (admin); returns the receipt")
def erase(identifier: str, request: Request,
          transactions: Literal["pseudonymize", "delete"] | None = Query(
              None, description="Keep orders under a random pseudonym, or delete them [default: [rights] transactions].")) -> dict[str, Any]:
    state = _state(request)
    with state.reading() as con:
        customer_id = resolve_or_404(con, identifier)
    return erase_person(state, customer_id, transactions=transactions)


def erase_person(state: ServiceState, customer_id: str, *, transactions: str | None = None) -> dict[str, Any]:
    """Erase ``customer_id`` (:func:`patron.people.rights.erase_customer`, the database closed meanwhile:
    :meth:`ServiceState.exclusive`) and return the receipt, without the database path. Also what
    the customer's own page calls."""
    from patron.people.rights import erase_customer

    result = state.exclusive(lambda path: erase_customer(path, customer_id, transactions=transactions,  # type: ignore[arg-type]
                                                         config=rights_config(state)))
    receipt = result.to_dict()
    receipt.pop("db", None)
    notify(RefreshInfo(refresh_id=result.erasure_id, trigger="erasure", state="succeeded", started_at=result.erased_at,
                       finished_at=result.erased_at))
    return receipt


# -- contact check -----------------------------------------------------------------------------

AT_YEARS: tuple[int, int] = (1900, 2200)
"""Years a contact check's ``at`` may fall in (outside them time-zone arithmetic overflows)."""

Channel = Literal["email", "sms", "push", "mail", "phone", "in_app"]


class ContactCheck(BaseModel):
    """May this customer be contacted on this channel for this purpose at ``at``?"""

    model_config = ConfigDict(extra="forbid")

    customer: str = Field(min_length=1, max_length=512, description="Any identifier of the customer.")
    channel: Channel
    purpose: str = Field("marketing", min_length=1, max_length=100,
                         description="A marketing purpose (needs consent) or a transactional one ([contact_policy]).")
    at: datetime | None = Field(None, description="When the message would go out (ISO 8601; no offset = UTC) [default: now].")
    topic: str | None = Field(None, max_length=200, description="Topic of the message (customers may list the topics they want).")

    @field_validator("at")
    @classmethod
    def _plausible(cls, value: datetime | None) -> datetime | None:
        if value is not None and not AT_YEARS[0] <= value.year <= AT_YEARS[1]:
            raise ValueError(f"must lie between the years {AT_YEARS[0]} and {AT_YEARS[1]}")
        return value


@router.post("/v1/contacts/check", tags=["contacts"], response_model=ContactDecision,
             dependencies=[require("read")],
             summary="May this customer be contacted on this channel for this purpose now? (read)")
def contacts_check(body: ContactCheck, request: Request) -> ContactDecision:
    from patron.contact.consent.policy import contact_policy

    state = _state(request)
    at = parse_at(body.at)
    policy = contact_policy(state.config)
    with state.reading() as con:
        customer_id = resolve_customer(con, body.customer)
        return check_contact(con, customer_id, channel=body.channel, purpose=body.purpose, at=at, policy=policy,
                             config=state.config, topic=body.topic, identifier=body.customer)


# -- merges ------------------------------------------------------------------------------------

@router.get("/v1/merges", tags=["identity"], response_model=list[dict[str, Any]],
            dependencies=[require("read")],
             summary="Identity merges, with their cause; of one customer with ?customer= (read)")
def merges(request: Request, customer: Annotated[str | None, Query(description="Any identifier of a customer.")] = None) -> list[dict[str, Any]]:
    state = _state(request)
    with state.reading() as con:
        customer_id = resolve_or_404(con, customer) if customer else None
        return merges_of(con, customer_id)


# -- refresh -----------------------------------------------------------------------------------

class RefreshStatus(BaseModel):
    """A refresh (running or the last one), and the date of the stored scores."""

    refresh_id: str | None = None
    trigger: str | None = Field(None, description="api or schedule.")
    state: Literal["never", "running", "succeeded", "failed"]
    started_at: str | None = None
    finished_at: str | None = None
    seconds: float | None = Field(None, description="Duration of the run, in seconds.")
    customers: int | None = Field(None, description="Customers profiled.")
    as_of: str | None = Field(None, description="Date scored as of (the last purchase day, at most today UTC).")
    error: str | None = Field(None, description="Why the run failed (one line).")
    started: bool | None = Field(None, description="POST: whether this request started the run (false: one was running).")
    profiles_as_of: str | None = Field(None, description="as_of of the stored customer_profiles table, if any.")
    refresh_every_minutes: float = Field(description="The schedule (0: only on demand).")
    next_scheduled_at: str | None = None


def _status(state: ServiceState, info: RefreshInfo | None, started: bool | None = None) -> dict[str, Any]:
    r = refresher(state)
    out: dict[str, Any] = {"state": "never"}
    if info is not None:
        out = info.to_dict()
        out.pop("error_kind", None)
    out["started"] = started
    out["refresh_every_minutes"] = float(state.rules.refresh_every_minutes)
    out["next_scheduled_at"] = r.next_scheduled_at.isoformat() + "Z" if r.next_scheduled_at else None
    profiles_as_of = None
    with state.reading() as con:
        if has_table(con, "customer_profiles"):
            day = con.execute("SELECT max(as_of) FROM customer_profiles").fetchall()[0][0]
            profiles_as_of = day.isoformat() if day is not None else None
    out["profiles_as_of"] = profiles_as_of
    return out


@router.post("/v1/refresh", tags=["scores"], status_code=202, response_model=RefreshStatus,
             responses={200: {"model": RefreshStatus, "description": "With wait=true: the finished refresh."},
                        409: {"description": "With wait=true: nothing to score yet (no purchases)."}},
             dependencies=[require("admin")],
             summary="Refresh scores and profiles now (admin); one at a time")
def start_refresh(request: Request,
                  wait: Annotated[bool, Query(description="Wait for the refresh to finish and return its result.")] = False,
                  as_of: Annotated[date | None, Query(description="Score as of this date [default: last purchase day, at most today UTC].")] = None,
                  ) -> Any:
    state = _state(request)
    if as_of is not None and as_of > datetime.now(UTC).date():
        raise InputError(f"as_of {as_of.isoformat()} is after today (UTC): scores are computed as of a past day")
    r = refresher(state)
    info, started = r.start("api", as_of=as_of)
    if not wait:
        return JSONResponse(_status(state, info, started), status_code=202)
    done = r.wait(info.refresh_id, timeout=REFRESH_WAIT_SECONDS)
    if done is None or done.state == "running":
        return JSONResponse(_status(state, done, started), status_code=202)
    if done.state == "failed":
        code = {"no_data": 409, "input": 400}.get(done.error_kind or "", 500)
        return JSONResponse({**_status(state, done, started), "error": done.error}, status_code=code)
    return JSONResponse(_status(state, done, started), status_code=200)


@router.get("/v1/refresh", tags=["scores"], response_model=RefreshStatus,
            dependencies=[require("read")],
             summary="The running or last score refresh (read)")
def refresh_status(request: Request) -> dict[str, Any]:
    state = _state(request)
    return _status(state, refresher(state).status())


__all__ = ["CustomerView", "resolve_customer", "router", "single_view"]
