"""What request handlers hand the writer (:class:`Accepted` events and :class:`Rejected` dead
letters) and what they get back (one :class:`Outcome` per item)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from patron.service.event_tables import MAX_DEAD_PAYLOAD
from patron.service.mapping import Mapped
from patron.service.segment_spec import Event


@dataclass(slots=True)
class Accepted:
    """A checked event and the rows it maps to, ready to be stored."""

    event: Event
    mapped: Mapped

    def __reduce__(self) -> tuple[type[Accepted], tuple[Event, Mapped]]:
        """Pickled (the journal) as the class and its two fields: ~2-5 us less per event than the
        dataclass's ``__getstate__`` of slots (benchmarks/README.md, "bench_event_path.py")."""
        return (Accepted, (self.event, self.mapped))


@dataclass(slots=True)
class Rejected:
    """A dead letter: an event that cannot be stored, and why."""

    dead_letter_id: str
    received_at: datetime
    message_id: str | None
    customer_id: str | None
    type: str | None
    event: str | None
    reason: str
    payload: str | None


@dataclass(slots=True)
class Outcome:
    """What became of one submitted item: ``stored`` (new), ``duplicate`` (its messageId was
    already stored: nothing changed), ``suppressed`` (it names an erased person: dropped, answered
    as stored; :mod:`patron.people.rights.suppress`) or ``rejected`` (kept as a dead letter with
    ``error``, unless it names an erased person)."""

    message_id: str | None
    status: Literal["stored", "duplicate", "suppressed", "rejected"]
    error: str | None = None


Item = Accepted | Rejected


def fallback_customer(ev: Event) -> str:
    """``userId``, else ``'anon:' + anonymousId``: the person id identity resolution gives an event
    in the common case, and the best effort for a dead letter."""
    return ev.user_id if ev.user_id is not None else "anon:" + (ev.anonymous_id or ev.message_id)


def is_known(customer_id: str) -> bool:
    """Whether a person id names a person known by a ``userId`` (not an ``anon:`` profile)."""
    return not customer_id.startswith("anon:")


def storable_text(text: str | None) -> str | None:
    """``text`` as text any table can hold: lone surrogates (which UTF-8 cannot encode) become
    ``?``. Decoded request bodies never hold any (:func:`patron.service.json_body.parse_json`); this
    guards dead letters made from anything else."""
    if text is None or text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def dead_letter(received_at: datetime, message_id: str | None, customer_id: str | None, type_: str | None,
                event: str | None, reason: str, payload: str | None) -> Rejected:
    """A :class:`Rejected` with its ``dead_letter_id`` (hash of messageId or payload, and reason);
    every text made storable (:func:`storable_text`)."""
    message_id, customer_id, type_, event, payload = (
        storable_text(v) for v in (message_id, customer_id, type_, event, payload))
    reason = storable_text(reason) or ""
    basis = message_id if message_id is not None else "payload:" + (payload or "")
    did = hashlib.sha256((basis + "\x1f" + reason).encode()).hexdigest()[:32]
    if payload is not None and len(payload) > MAX_DEAD_PAYLOAD:
        payload = payload[:MAX_DEAD_PAYLOAD]
    return Rejected(did, received_at, message_id, customer_id, type_, event, reason, payload)
