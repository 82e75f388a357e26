"""The suppression list at the door of the writer: events and dead letters that name an erased
person are dropped, or stored without the erased identifiers (:mod:`patron.people.rights.suppress` holds
the rule and the list; this module applies it to a group of :mod:`patron.service.items`)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import duckdb

from patron.people.identity.normalize import Placeholders, normalize_identifier
from patron.people.identity.payload import payload_identifiers
from patron.people.rights.suppress import ERASED_TEXT, Suppression, grants_consent, strip_json
from patron.service.items import Accepted, Item, Outcome
from patron.service.segment_spec import dumps


def _usable(pairs: list[tuple[str, str]], placeholders: Placeholders) -> list[tuple[str, str]]:
    return [p for p in pairs if not placeholders.matches(p)]


def _stripped(item: Accepted, strip: set[tuple[str, str]]) -> Accepted:
    """``item`` without the identifiers ``strip``: not linked, NULL in the event's id columns,
    ``<erased>`` in its payload."""
    e, m = item.event, item.mapped

    def keep(kind: str, raw: Any) -> bool:
        return (kind, normalize_identifier(kind, raw)) not in strip

    raw = strip_json(e.raw, strip)
    event = replace(e, user_id=e.user_id if e.user_id is None or keep("user_id", e.user_id) else None,
                    anonymous_id=e.anonymous_id if e.anonymous_id is None or keep("anonymous_id", e.anonymous_id) else None,
                    previous_id=e.previous_id if e.previous_id is None or keep("anonymous_id", e.previous_id) else None,
                    raw=raw, payload=dumps(raw))
    return Accepted(event, replace(m, identifiers=[(k, v) for k, v in m.identifiers if keep(k, v)],
                                   traits=strip_json(m.traits, strip) if m.traits is not None else None))


def screen(cur: duckdb.DuckDBPyConnection, items: list[Item], rules: Any, supp: Suppression
           ) -> tuple[list[Item], list[Outcome | None], int, list[str]]:
    """Apply the suppression list to a group: returns the items (events of others stripped of
    erased identifiers), the outcomes of the items dropped (None for the others), how many were
    dropped and the digests lifted by a return of one's own will. Items are judged in event-time
    order, so a return lifts the list for the person's later events of the same group."""
    if not supp.loaded:
        supp.load(cur)
    out: list[Outcome | None] = [None] * len(items)
    if not supp:
        return items, out, 0, []
    items = list(items)
    placeholders = Placeholders(rules.placeholder_identifiers)
    dropped, lifted = 0, []

    def when(i: int) -> Any:
        it = items[i]
        return it.event.occurred_at if isinstance(it, Accepted) else it.received_at

    for i in sorted(range(len(items)), key=when):
        it = items[i]
        if isinstance(it, Accepted):
            e = it.event
            pairs = [(k, v) for k, v in ((k, normalize_identifier(k, raw)) for k, raw in it.mapped.identifiers)
                     if v is not None]
            verdict, lift, strip = supp.decide(e.message_id, _usable(pairs, placeholders), e.occurred_at,
                                               grants_consent(e.raw, it.mapped.consents))
            if verdict is not None:
                out[i] = Outcome(e.message_id, "suppressed")
            elif strip:
                items[i] = _stripped(it, strip)
        else:
            pairs = payload_identifiers(it.payload, rules.identity_traits) if it.payload else []
            verdict, lift, strip = supp.decide(it.message_id, _usable(pairs, placeholders), None, False)
            if verdict is not None:
                out[i] = Outcome(it.message_id, "rejected", it.reason)  # answered as before, not kept
            elif strip and it.payload:
                try:
                    payload = json.dumps(strip_json(json.loads(it.payload), strip), separators=(",", ":"))
                except ValueError:
                    payload = ERASED_TEXT
                items[i] = replace(it, payload=payload)
        dropped += verdict is not None
        lifted += lift
    return items, out, dropped, lifted
