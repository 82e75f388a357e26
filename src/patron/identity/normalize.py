"""Identifier kinds, their normalization, their order, and the person id a set of them gets.

An *identifier* is a pair ``(kind, value)`` of normalized text. Kinds are lower-case names:
``user_id`` (Segment ``userId``), ``anonymous_id`` (``anonymousId``), ``email``, ``phone``, or any
other trait name listed in ``[service] identity_traits``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

Ident = tuple[str, str]
"""An identifier: ``(kind, normalized value)``."""

USER_ID = "user_id"
ANONYMOUS_ID = "anonymous_id"
EMAIL = "email"
PHONE = "phone"

ANON_PREFIX = "anon:"
"""Prefix of the person id of a person who has no ``user_id`` (an anonymous profile)."""

_PRIORITY: dict[str, int] = {USER_ID: 0, EMAIL: 1, PHONE: 2, ANONYMOUS_ID: 9}
"""Rank of a kind in the canonical order of identifiers (lower first); other kinds rank 5."""

DEFAULT_UNIQUE: tuple[str, ...] = (USER_ID,)
"""Kinds of which a person has at most one value when the rules say nothing."""


def normalize_kind(kind: Any) -> str:
    """The kind name as stored: trimmed and lower-cased (``"Email "`` → ``"email"``)."""
    return str(kind).strip().lower()


def normalize_identifier(kind: str, raw: Any) -> str | None:
    """The stored value of identifier ``raw`` of kind ``kind``, or None when it is empty.

    * ``email``: trimmed, lower-cased, then the SHA-256 of its UTF-8 bytes as 64 hex digits (the
      address itself is never stored in the identity graph);
    * ``phone``: its digits, with a leading ``+`` when the trimmed input starts with one
      (``"+1 (555) 010-2030"`` → ``"+15550102030"``);
    * ``user_id``, ``anonymous_id``: the text as given (Segment ids are opaque; numbers become text);
    * any other kind: the text, trimmed.

    >>> normalize_identifier("email", "  Ann@Example.COM ")[:12]
    '71d4f55f72fa'
    >>> normalize_identifier("phone", "+1 (555) 010-2030")
    '+15550102030'
    >>> normalize_identifier("user_id", "") is None
    True
    """
    if raw is None:
        return None
    kind = normalize_kind(kind)
    text = raw if isinstance(raw, str) else str(raw)
    if kind == EMAIL:
        text = text.strip().lower()
        return hashlib.sha256(text.encode("utf-8")).hexdigest() if text else None
    if kind == PHONE:
        stripped = text.strip()
        digits = "".join(ch for ch in stripped if ch.isdigit())
        if not digits:
            return None
        return ("+" + digits) if stripped.startswith("+") else digits
    if kind in (USER_ID, ANONYMOUS_ID):
        return text if text.strip() else None
    text = text.strip()
    return text or None


def ident_order(ident: Ident) -> tuple[int, str, str]:
    """Sort key of the canonical order of identifiers: ``user_id``, ``email``, ``phone``, other
    kinds (by name), ``anonymous_id``; then by value."""
    kind, value = ident
    return (_PRIORITY.get(kind, 5), kind, value)


def primary(idents: Iterable[Ident]) -> Ident:
    """The identifier that decides whose an event is: the first in canonical order (its
    ``user_id`` when it has one)."""
    return min(idents, key=ident_order)


def person_id(idents: Iterable[Ident]) -> str:
    """The person id (``customer_id``) of a person holding ``idents``.

    * the smallest ``user_id`` value when there is one (with ``user_id`` unique, its only one);
    * else ``"anon:" + `` the smallest ``anonymous_id``;
    * else ``"anon:" + kind + "=" + value`` of the first identifier in canonical order.

    A function of the set only, so it never depends on the order events arrived in.

    >>> person_id([("anonymous_id", "b"), ("anonymous_id", "a")])
    'anon:a'
    >>> person_id([("anonymous_id", "a"), ("user_id", "u7")])
    'u7'
    """
    users: list[str] = []
    anons: list[str] = []
    others: list[Ident] = []
    for kind, value in idents:
        if kind == USER_ID:
            users.append(value)
        elif kind == ANONYMOUS_ID:
            anons.append(value)
        else:
            others.append((kind, value))
    if users:
        return min(users)
    if anons:
        return ANON_PREFIX + min(anons)
    kind, value = min(others, key=ident_order)
    return f"{ANON_PREFIX}{kind}={value}"


def is_known(customer_id: str) -> bool:
    """Whether a person id names a known person (one with a ``user_id``), not an anonymous profile."""
    return not str(customer_id).startswith(ANON_PREFIX)


def defining_ident(customer_id: str, idents: Iterable[Ident]) -> Ident | None:
    """The identifier of ``idents`` from which :func:`person_id` made ``customer_id``."""
    members = set(idents)
    if (USER_ID, customer_id) in members:
        return (USER_ID, customer_id)
    if customer_id.startswith(ANON_PREFIX):
        rest = customer_id[len(ANON_PREFIX):]
        if (ANONYMOUS_ID, rest) in members:
            return (ANONYMOUS_ID, rest)
        kind, sep, value = rest.partition("=")
        if sep and (kind, value) in members:
            return (kind, value)
    return None
