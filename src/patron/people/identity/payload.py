"""The identifiers a stored event payload (or a dead letter's) carries, read back from its JSON.

What the event mapping links (:func:`patron.service.mapping.identifiers`) is computed from a checked
event. A dead letter failed a check, so its identifiers are read here best effort from the raw
payload: ``userId``, ``anonymousId``, ``previousId`` and the identity traits in ``traits`` and
``context.traits``, as text, also when sent as a number or inside a list (``"userId": ["u1"]``
fails the id rule, yet names ``u1``). Used to give a dead letter its person when it is written and
again at erasure, and to recognise suppressed identifiers (:mod:`patron.people.rights.suppress`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from patron.people.identity.normalize import (
    ANONYMOUS_ID,
    USER_ID,
    Ident,
    ident_order,
    normalize_identifier,
    normalize_kind,
)

ID_FIELDS: tuple[tuple[str, str], ...] = (("userId", USER_ID), ("anonymousId", ANONYMOUS_ID), ("previousId", ANONYMOUS_ID))
"""Top-level fields of a Segment event that carry identifiers, with their kind."""

DEFAULT_TRAITS: tuple[str, ...] = ("email", "phone")
"""Identity traits read when the caller names none (``[service] identity_traits``' default)."""


def _texts(value: Any) -> list[str]:
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, str | int):
        text = str(value).strip()
        return [text] if text else []
    if isinstance(value, list):
        return [t for v in value[:16] if not isinstance(v, list | dict) for t in _texts(v)]
    return []


def payload_identifiers(payload: Any, traits: Iterable[str] = DEFAULT_TRAITS) -> list[Ident]:
    """Normalized identifiers ``(kind, value)`` of an event payload (a dict, or JSON text), in
    canonical order, without duplicates; ``[]`` for anything that is not a JSON object."""
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except (ValueError, RecursionError):
            return []
    if not isinstance(payload, dict):
        return []
    raw: list[tuple[str, str]] = [(kind, t) for name, kind in ID_FIELDS for t in _texts(payload.get(name))]
    kinds = [normalize_kind(k) for k in traits]
    ctx = payload.get("context")
    for source in (payload.get("traits"), ctx.get("traits") if isinstance(ctx, dict) else None):
        if isinstance(source, dict):
            by_name = {str(k).strip().lower(): v for k, v in source.items()}
            raw += [(kind, t) for kind in kinds for t in _texts(by_name.get(kind))]
    out: set[Ident] = set()
    for kind, text in raw:
        value = normalize_identifier(kind, text)
        if value is not None:
            out.add((kind, value))
    return sorted(out, key=ident_order)
