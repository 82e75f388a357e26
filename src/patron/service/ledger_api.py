"""Consents and preferences by REST: append records to the two ledgers, and read a customer's
ledger (state in force and every record).

* ``POST /v1/customers/{identifier}/consents`` and ``.../preferences`` (admin): body
  ``{"records": [{...}, ...]}``, each record the ledger's contract columns but ``customer_id``
  (the person the identifier names). Checked by the rules of file ingest
  (:mod:`patron.contact.consent.records`), **all or nothing**: one bad record and nothing is stored (400
  naming the record and field). ``occurred_at`` defaults to now, ``channel`` to ``any``,
  ``source`` to ``api``. A record may carry its own key (``consent_id`` / ``preference_id``): a
  retried request then stores nothing twice (the same key with other values is a 409, nothing
  stored). Answers 201 with the keys stored.
* ``GET`` the same paths (read): the state in force now and the full history, oldest first.

Writes run on the writer thread (:meth:`~patron.service.writer.Writer.arun`), in one transaction,
like every change while the service holds the database; the contact check and the planner read
the new records at once. :func:`append_records` is what the preference center calls too.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from patron.contact.consent.records import LEDGERS, check_records
from patron.errors import PatronError
from patron.service.auth import require
from patron.service.body import read_json
from patron.service.ledger_rows import insert_records, stored_keys
from patron.service.profile_view import consents_in_force, preferences_in_force, resolve_or_404
from patron.service.state import ServiceState

router = APIRouter()

Ledger = Literal["consents", "preferences"]

MAX_RECORDS = 100
"""Most records one request may append."""


class ConflictError(PatronError):
    """A record's key is stored already with other values (answered 409)."""


class Appended(BaseModel):
    """What a request appended."""

    customer_id: str = Field(description="The person the records are about.")
    ledger: str
    stored: int = Field(description="Records appended.")
    already_stored: int = Field(description="Records whose key was stored already with the same values (a retry).")
    keys: list[str] = Field(description="The key of every record, in the order sent (consent_id or preference_id).")


def _same(stored: dict[str, Any], record: dict[str, Any], given: Any, customer_id: str) -> bool:
    """Whether a stored record is the one sent again: same person, same value of every field the
    request gave (fields it left to defaults, such as ``occurred_at`` now, differ on a retry)."""
    names = set(given) if isinstance(given, dict) else set(record)
    return stored.get("customer_id") == customer_id and all(stored.get(k) == record[k] for k in names if k in record)


def append_records(state: ServiceState, customer_id: str, kind: str, records: list[Any], *, source: str,
                   where: str) -> dict[str, Any]:
    """Check ``records`` (all or nothing) and append them to the ledger ``kind`` of ``customer_id``
    in one transaction on the writer thread; a key stored already with the same values is skipped,
    with other values a :class:`ConflictError` (nothing stored). Blocks until committed."""
    rows = check_records(kind, records, source=source, where=where)
    key = LEDGERS[kind].key
    request_id = f"{source}-{uuid.uuid4().hex[:16]}"  # the rows' ingest_id: which request brought them

    def job(con: Any) -> dict[str, Any]:
        stored = stored_keys(con, kind, [r[key] for r in rows])
        for r, given in zip(rows, records, strict=True):
            if r[key] in stored and not _same(stored[r[key]], r, given, customer_id):
                raise ConflictError(f"{where}: {key} {r[key]!r} is stored already with other values")
        new = [(customer_id, request_id, r) for r in rows if r[key] not in stored]
        insert_records(con, kind, new)
        return {"customer_id": customer_id, "ledger": kind, "stored": len(new), "already_stored": len(rows) - len(new),
                "keys": [r[key] for r in rows]}

    assert state.writer is not None, "the service's writer is not running"
    return state.writer.run(job)


def _records(data: Any, where: str) -> list[Any]:
    if not isinstance(data, dict) or not isinstance(data.get("records"), list):
        raise PatronError(f'{where}: the body must be {{"records": [{{...}}, ...]}}')
    extra = sorted(k for k in data if k != "records")
    if extra:
        raise PatronError(f"{where}: unknown field {str(extra[0])[:40]} (the body has only records)")
    if len(data["records"]) > MAX_RECORDS:
        raise PatronError(f"{where}: {len(data['records'])} records, over the {MAX_RECORDS} one request may append")
    return data["records"]


async def _append(request: Request, identifier: str, kind: str) -> JSONResponse:
    state: ServiceState = request.app.state.patron
    where = f"{kind} not stored"
    records = _records(await read_json(request, limit=state.rules.max_batch_bytes), where)

    def work() -> dict[str, Any]:
        with state.reading() as con:
            customer_id = resolve_or_404(con, identifier)
        return append_records(state, customer_id, kind, records, source="api", where=where)

    try:
        result = await run_in_threadpool(work)
    except ConflictError as exc:
        return JSONResponse({"error": str(exc)}, status_code=409)
    return JSONResponse(result, status_code=201)


_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["records"], "properties": {"records": {"type": "array", "items": {"type": "object"}}}}}}}}


@router.post("/v1/customers/{identifier}/consents", tags=["ledgers"], status_code=201, response_model=Appended,
             dependencies=[require("admin")], openapi_extra=_BODY,
             responses={409: {"description": "A consent_id is stored already with other values."}},
             summary="Append consent records of a customer (admin); all or nothing")
async def post_consents(identifier: str, request: Request) -> JSONResponse:
    return await _append(request, identifier, "consents")


@router.post("/v1/customers/{identifier}/preferences", tags=["ledgers"], status_code=201, response_model=Appended,
             dependencies=[require("admin")], openapi_extra=_BODY,
             responses={409: {"description": "A preference_id is stored already with other values."}},
             summary="Append preference records of a customer (admin); all or nothing")
async def post_preferences(identifier: str, request: Request) -> JSONResponse:
    return await _append(request, identifier, "preferences")


class LedgerView(BaseModel):
    """A customer's ledger: what is in force now, and every record, oldest first."""

    customer_id: str
    in_force: list[dict[str, Any]] = Field(description="Consent per purpose and channel, or preferences per channel, now.")
    history: list[dict[str, Any]] = Field(description="Every record of the person, oldest first.")


def history(con: Any, kind: str, customer_id: str) -> list[dict[str, Any]]:
    """Every record of ``customer_id`` in the ledger ``kind``, oldest first (ties by key)."""
    from patron.people.rights.export import jsonable

    contract = LEDGERS[kind]
    cols = [c.name for c in contract.columns]
    cur = con.execute(f"SELECT {', '.join(cols)} FROM {contract.name} WHERE customer_id = ? "
                      f"ORDER BY occurred_at, {contract.key}", [customer_id])
    return [{c: jsonable(v) for c, v in zip(cols, row, strict=True)} for row in cur.fetchall()]


def _view(request: Request, identifier: str, kind: str) -> dict[str, Any]:
    from patron.contact.consent.times import now_utc

    state: ServiceState = request.app.state.patron
    with state.reading() as con:
        customer_id = resolve_or_404(con, identifier)
        now = now_utc()
        in_force = (consents_in_force if kind == "consents" else preferences_in_force)(con, customer_id, now)
        return {"customer_id": customer_id, "in_force": in_force, "history": history(con, kind, customer_id)}


@router.get("/v1/customers/{identifier}/consents", tags=["ledgers"], response_model=LedgerView,
            dependencies=[require("read")], summary="A customer's consent state now and every consent record (read)")
def get_consents(identifier: str, request: Request) -> dict[str, Any]:
    return _view(request, identifier, "consents")


@router.get("/v1/customers/{identifier}/preferences", tags=["ledgers"], response_model=LedgerView,
            dependencies=[require("read")], summary="A customer's preferences in force and every preference record (read)")
def get_preferences(identifier: str, request: Request) -> dict[str, Any]:
    return _view(request, identifier, "preferences")
