"""Events in the Segment spec: Pydantic models (for the OpenAPI schema) and the fast checks the
service runs on every event.

The models document what each endpoint accepts (``identify``, ``track``, ``alias``, ``page``,
``screen``, ``group`` and ``batch``). The hot path does not build them: :func:`check_event`
validates the decoded JSON ``dict`` by hand (about 10x faster than ``model_validate`` for a
typical event) and returns an :class:`Event` with the fields patron stores, or a one-line reason
naming the field (``track: event is required``).

Timestamps (Segment's rule). ``receivedAt`` is the server's clock when the request arrived. The
time the event happened (``occurred_at``) is the client's ``originalTimestamp`` (or, when absent,
``timestamp``), corrected for the client's clock skew by ``receivedAt - sentAt`` when the client
also sent ``sentAt`` (on the event or on its batch); without a client time it is ``receivedAt``.
Every time is stored as naive UTC; a time without an offset is taken as UTC, a zone name is
honoured. An event time before ``PATRON_DATE_FLOOR`` (default 1900-01-01) or later than now plus
``PATRON_FUTURE_TOLERANCE_HOURS`` (default 24 h) is rejected: the plausibility rules of file ingest
(:mod:`patron.data.ingest.plausible`), which also define what an id may hold.

Missing ``messageId``: Segment's SDKs always send one. When it is absent, patron derives
``patron-<sha256 of the event as sent, without sentAt>`` (32 hex digits), so a retry of the same
body is recognised as the same event; two genuinely different events always differ in content (at
least in their timestamps, which SDKs set), so they keep distinct ids.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from patron.constants import DEFAULT_DATE_FLOOR
from patron.data.ingest.plausible import (
    Implausible,
    floor_datetime,
    id_text,
    parse_timestamp,
    show,
    timestamp_problem,
)

EVENT_TYPES: tuple[str, ...] = ("identify", "track", "alias", "page", "screen", "group")
"""Segment call types the service accepts."""

MAX_ID_CHARS: int = 256
"""Longest ``messageId``, ``userId``, ``anonymousId``, ``previousId`` or ``groupId`` (characters)."""

_ID_FIELDS: tuple[str, ...] = ("userId", "anonymousId", "previousId", "groupId", "messageId")
_OBJECT_FIELDS: tuple[str, ...] = ("properties", "traits", "context", "integrations")
_TIME_FIELDS: tuple[str, ...] = ("timestamp", "originalTimestamp", "sentAt")

DATE_FLOOR: datetime = floor_datetime(DEFAULT_DATE_FLOOR)
"""The default earliest event time (``PATRON_DATE_FLOOR``, 1900-01-01), naive UTC."""


# --- models (documentation and OpenAPI) --------------------------------------------------------

_ID = Field(default=None, min_length=1, max_length=MAX_ID_CHARS)
_TIME_DOC = "ISO 8601 time, e.g. 2024-03-31T14:05:00.000Z (no offset: UTC)."


class _Base(BaseModel):
    """Fields every Segment call may carry. Other fields (``_metadata``, ``channel``,
    ``version``, ...) are accepted and kept in the stored payload; ``writeKey`` is dropped."""

    model_config = ConfigDict(extra="allow")

    messageId: str | None = Field(
        default=None, min_length=1, max_length=MAX_ID_CHARS,
        description="Unique id of the event; retries with the same id are stored once. Derived from "
        "the event's content when absent.",
    )
    anonymousId: str | None = Field(default=None, min_length=1, max_length=MAX_ID_CHARS,
                                    description="Device or cookie id of a person not (yet) known.")
    userId: str | None = Field(default=None, min_length=1, max_length=MAX_ID_CHARS,
                               description="Your id of the person.")
    context: dict[str, Any] | None = Field(default=None, description="Context (ip, library, traits, consent, ...).")
    integrations: dict[str, Any] | None = Field(default=None, description="Destinations (ignored by patron).")
    timestamp: str | None = Field(default=None, description="When the event happened. " + _TIME_DOC)
    originalTimestamp: str | None = Field(default=None, description="Client time of the event. " + _TIME_DOC)
    sentAt: str | None = Field(default=None, description="Client time when sent (clock-skew correction). " + _TIME_DOC)
    receivedAt: str | None = Field(default=None, description="Ignored: the server sets it.")


_NEEDS_PERSON = {"anyOf": [{"required": ["userId"]}, {"required": ["anonymousId"]}]}


class IdentifyEvent(_Base):
    """``identify``: who the person is, and their traits."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_NEEDS_PERSON)
    type: Literal["identify"] = "identify"
    traits: dict[str, Any] | None = Field(default=None, description="Traits (email, name, phone, ...).")


class TrackEvent(_Base):
    """``track``: something the person did (``Order Completed``, ``Email Opened``, ...)."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_NEEDS_PERSON)
    type: Literal["track"] = "track"
    event: str = Field(min_length=1, max_length=MAX_ID_CHARS, description="Name of the action.")
    properties: dict[str, Any] | None = Field(default=None, description="Properties of the action.")


class AliasEvent(_Base):
    """``alias``: ``previousId`` (an earlier id of the person) is the same person as ``userId``."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"required": ["userId", "previousId"]})
    type: Literal["alias"] = "alias"
    previousId: str = Field(min_length=1, max_length=MAX_ID_CHARS, description="The earlier id.")


class PageEvent(_Base):
    """``page``: a web page view."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_NEEDS_PERSON)
    type: Literal["page"] = "page"
    name: str | None = Field(default=None, description="Name of the page.")
    properties: dict[str, Any] | None = None


class ScreenEvent(_Base):
    """``screen``: a mobile app screen view."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_NEEDS_PERSON)
    type: Literal["screen"] = "screen"
    name: str | None = Field(default=None, description="Name of the screen.")
    properties: dict[str, Any] | None = None


class GroupEvent(_Base):
    """``group``: the person belongs to a group (account, company)."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_NEEDS_PERSON)
    type: Literal["group"] = "group"
    groupId: str = Field(min_length=1, max_length=MAX_ID_CHARS, description="The group's id.")
    traits: dict[str, Any] | None = Field(default=None, description="Traits of the group.")


AnyEvent = IdentifyEvent | TrackEvent | AliasEvent | PageEvent | ScreenEvent | GroupEvent


class BatchBody(BaseModel):
    """``/v1/batch``: several events; ``context``, ``integrations`` and ``sentAt`` given here apply
    to every event (an event's own fields win)."""

    model_config = ConfigDict(extra="allow")
    batch: list[AnyEvent] = Field(description="The events, each with its ``type``.")  # type: ignore[valid-type]
    context: dict[str, Any] | None = None
    integrations: dict[str, Any] | None = None
    sentAt: str | None = Field(default=None, description="Client time when sent. " + _TIME_DOC)


MODELS: dict[str, type[BaseModel]] = {
    "identify": IdentifyEvent, "track": TrackEvent, "alias": AliasEvent, "page": PageEvent,
    "screen": ScreenEvent, "group": GroupEvent, "batch": BatchBody,
}
"""The model of each endpoint's body, by call type."""


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema of ``model`` with every ``$ref`` replaced by its definition (for
    ``openapi_extra``, where ``#/$defs`` references would not resolve)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


# --- the fast path -----------------------------------------------------------------------------


class EventError(ValueError):
    """An event that cannot be stored; ``str()`` is the one-line reason naming the field."""


@dataclass(slots=True)
class Event:
    """A checked event: the columns of the ``events`` table (times naive UTC) and the event as a
    ``dict`` (``raw``, batch-level fields merged in, ``messageId`` set)."""

    message_id: str
    type: str
    event: str | None
    user_id: str | None
    anonymous_id: str | None
    previous_id: str | None
    group_id: str | None
    occurred_at: datetime
    sent_at: datetime | None
    received_at: datetime
    payload: str
    raw: dict[str, Any]

    def __getstate__(self) -> tuple[Any, ...]:
        """Pickled (the journal, an acceptor's submission) without ``raw``: it is ``payload``
        decoded again on unpickling (``payload`` is ``raw`` as compact JSON), which halves the
        record and costs less than unpickling the ``dict``."""
        return (self.message_id, self.type, self.event, self.user_id, self.anonymous_id, self.previous_id,
                self.group_id, self.occurred_at, self.sent_at, self.received_at, self.payload)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        (self.message_id, self.type, self.event, self.user_id, self.anonymous_id, self.previous_id,
         self.group_id, self.occurred_at, self.sent_at, self.received_at, self.payload) = state
        self.raw = json.loads(self.payload)


def parse_time(value: Any, field: str) -> datetime | None:
    """``value`` (ISO 8601 text, :func:`patron.data.ingest.plausible.parse_timestamp`: the rule of file
    ingest, zone names honoured) as naive UTC; ``None`` when absent. Raises :class:`EventError`
    ``"<field>: not an ISO-8601 time (...)"`` naming what is wrong otherwise."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise EventError(f"{field}: not an ISO-8601 time (a {type(value).__name__}, not text)")
    try:
        return parse_timestamp(value)
    except Implausible as exc:
        raise EventError(f"{field}: {exc}") from None


def event_time(raw: dict[str, Any], received_at: datetime) -> tuple[datetime, datetime | None]:
    """``(occurred_at, sent_at)`` of ``raw`` by Segment's rule (module docstring), naive UTC."""
    original = parse_time(raw.get("originalTimestamp"), "originalTimestamp")
    stamp = parse_time(raw.get("timestamp"), "timestamp")
    sent = parse_time(raw.get("sentAt"), "sentAt")
    client = original if original is not None else stamp
    if client is None:
        return received_at, sent
    if sent is not None:
        try:
            return client + (received_at - sent), sent
        except OverflowError:
            raise EventError("timestamp: corrected by receivedAt - sentAt, the event time is out of the range of "
                             "dates (sentAt or the event's timestamp is wrong)") from None
    return client, sent


def derived_message_id(raw: dict[str, Any]) -> str:
    """``patron-`` + 32 hex digits of the SHA-256 of ``raw`` without ``sentAt`` (keys sorted)."""
    body = {k: v for k, v in raw.items() if k != "sentAt"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return "patron-" + hashlib.sha256(text.encode()).hexdigest()[:32]


_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=str).encode
"""``json.dumps`` with :func:`dumps`' options, built once: ``json.dumps`` builds an encoder per call
when given options (3.5 instead of 6.8 us for a typical event)."""


def dumps(value: Any) -> str:
    """Compact JSON text (UTF-8 kept, non-JSON values as text); ``NaN`` and infinities become null."""
    try:
        return _ENCODE(value)
    except ValueError:
        return json.dumps(_finite(value), separators=(",", ":"), ensure_ascii=False, default=str)


def _finite(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_finite(x) for x in v]
    return v


def _id(raw: dict[str, Any], field: str) -> str | None:
    v = raw.get(field)
    if v is None:
        return None
    try:
        s = id_text(v)
    except Implausible as exc:
        raise EventError(f"{field}: {exc}") from None
    if len(s) > MAX_ID_CHARS:
        raise EventError(f"{field}: longer than {MAX_ID_CHARS} characters")
    return s or None


def size_reason(n_bytes: int, limit: int) -> str:
    """``"event is 40,213 bytes, over the 32 KB limit"``."""
    return f"event is {n_bytes:,} bytes, over the {limit // 1024} KB limit"


def check_event(
    raw: Any, *, call: str | None, received_at: datetime, future_limit: datetime, max_bytes: int,
    payload: str | None = None, date_floor: datetime = DATE_FLOOR,
) -> Event:
    """Check one decoded event and return it as an :class:`Event`.

    ``call`` is the endpoint's type (``track`` for ``/v1/track``; it overrides the body's
    ``type``) or ``None`` in a batch (the event's own ``type`` decides). ``payload`` is the
    event's JSON text when the caller has it (a single-event body); otherwise it is serialised
    here. The event time must lie between ``date_floor`` and ``future_limit``. Raises
    :class:`EventError` with a one-line reason naming the field.
    """
    if not isinstance(raw, dict):
        raise EventError("event: must be a JSON object")
    if "writeKey" in raw:  # a credential: never stored, and no part of a derived messageId
        del raw["writeKey"]
        payload = None
    kind = call or raw.get("type")
    if kind not in EVENT_TYPES:
        raise EventError(f"type: must be one of {', '.join(EVENT_TYPES)} (got {show(raw.get('type'))})")
    if raw.get("type") != kind:
        raw["type"] = kind
        payload = None
    user_id = _id(raw, "userId")
    anonymous_id = _id(raw, "anonymousId")
    previous_id = _id(raw, "previousId")
    group_id = _id(raw, "groupId")
    message_id = _id(raw, "messageId")
    for f in _OBJECT_FIELDS:
        v = raw.get(f)
        if v is not None and not isinstance(v, dict):
            raise EventError(f"{kind}: {f} must be an object")
    name = None
    if kind == "alias":
        if previous_id is None:
            raise EventError("alias: previousId is required")
        if user_id is None:
            raise EventError("alias: userId is required")
    elif user_id is None and anonymous_id is None:
        raise EventError(f"{kind}: userId or anonymousId is required")
    if kind == "track":
        name = raw.get("event")
        if not isinstance(name, str) or not name.strip():
            raise EventError("track: event is required" if name is None or name == "" else "track: event must be a string")
        name = name.strip()
        if len(name) > MAX_ID_CHARS:
            raise EventError(f"track: event is longer than {MAX_ID_CHARS} characters")
    elif kind in ("page", "screen"):
        n = raw.get("name")
        if n is not None and not isinstance(n, str):
            raise EventError(f"{kind}: name must be a string")
        name = n
    elif kind == "group" and group_id is None:
        raise EventError("group: groupId is required")
    occurred_at, sent_at = event_time(raw, received_at)
    late = timestamp_problem(occurred_at, floor=date_floor, ceiling=future_limit)
    if late is not None:
        raise EventError(f"timestamp: {occurred_at.isoformat()}Z {late}")
    if message_id is None:
        message_id = derived_message_id(raw)
        raw["messageId"] = message_id
        payload = None
    if payload is None:
        payload = dumps(raw)
    size = len(payload.encode()) if len(payload) * 4 > max_bytes else len(payload)
    if size > max_bytes:
        raise EventError(size_reason(size, max_bytes))
    return Event(message_id, kind, name, user_id, anonymous_id, previous_id, group_id, occurred_at,
                 sent_at, received_at, payload, raw)


def merge_batch_fields(raw: Any, body: dict[str, Any]) -> Any:
    """``raw`` with the batch's ``context`` (merged, the event's keys win), ``integrations`` and
    ``sentAt`` (used when the event has none) applied, as Segment does."""
    if not isinstance(raw, dict):
        return raw
    ctx = body.get("context")
    if isinstance(ctx, dict) and ctx:
        own = raw.get("context")
        raw["context"] = {**ctx, **own} if isinstance(own, dict) else (dict(ctx) if own is None else own)
    integ = body.get("integrations")
    if isinstance(integ, dict) and raw.get("integrations") is None:
        raw["integrations"] = integ
    sent = body.get("sentAt")
    if sent is not None and raw.get("sentAt") is None:
        raw["sentAt"] = sent
    return raw


def now_utc() -> datetime:
    """The current time, naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def future_limit(now: datetime, tolerance_hours: float) -> datetime:
    """Latest acceptable event time: ``now`` plus the ingest clock-skew tolerance."""
    return now + timedelta(hours=tolerance_hours)
