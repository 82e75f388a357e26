"""Identifier kinds, their normalization, their order, and the person id a set of them gets.

An *identifier* is a pair ``(kind, value)`` of normalized text. Kinds are lower-case names:
``customer_id`` (the id of a row of an ingested ``customers`` file), ``user_id`` (Segment
``userId``), ``anonymous_id`` (``anonymousId``), ``email``, ``phone``, or any other trait name listed
in ``[service] identity_traits``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

Ident = tuple[str, str]
"""An identifier: ``(kind, normalized value)``."""

CUSTOMER_ID = "customer_id"
"""Kind of the id of a customer ingested from a file (the ``customer_id`` column of ``customers``)."""
USER_ID = "user_id"
ANONYMOUS_ID = "anonymous_id"
EMAIL = "email"
PHONE = "phone"

ANON_PREFIX = "anon:"
"""Prefix of the person id of a person who has no ``user_id`` (an anonymous profile)."""

_PRIORITY: dict[str, int] = {CUSTOMER_ID: 0, USER_ID: 1, EMAIL: 2, PHONE: 3, ANONYMOUS_ID: 9}
"""Rank of a kind in the canonical order of identifiers (lower first); other kinds rank 5."""

NAMING_KINDS: tuple[str, ...] = (CUSTOMER_ID, USER_ID)
"""Kinds whose value is a person id as it stands (:func:`person_id`): a file's customer id, then a
Segment ``userId``. The same text under both kinds names one person (:data:`SAME_ID_RANK`)."""

SAME_ID_RANK: tuple[datetime, str] = (datetime(1900, 1, 1), "")
"""Rank of the link between ``customer_id`` X and ``user_id`` X, made as soon as both are known: a
file's customer id that events send as their ``userId`` (Segment's definition of ``userId``: the id
of the user in your database) names the same person. A fixed rank before every event the date floor
admits, so the result stays a function of the set of identifiers (whichever arrived first) and the
link is applied first in a replay."""

DEFAULT_UNIQUE: tuple[str, ...] = (CUSTOMER_ID, USER_ID)
"""Kinds of which a person has at most one value when the rules say nothing: one customer record
of the files, one login of the events. Two customers of a file sharing an address (a household)
stay two persons, and so do two logins on one device."""

DEFAULT_PLACEHOLDERS: tuple[str, ...] = (
    "guest", "undefined", "null", "nil", "none", "0", "-1", "anonymous", "anon", "unknown", "test",
    "n/a", "na", "[object object]", "{}", "[]", "nan", "inf", "-inf", "infinity", "-infinity",
    "true", "false", "00000000-0000-0000-0000-000000000000",
)
"""Identifier values that name nobody (``[service] placeholder_identifiers``), compared trimmed and
case-insensitively with the value an event carries, for every kind: what SDKs send when the real
id is missing (JavaScript's ``undefined``, ``null``, ``[object Object]``, ``NaN``), sentinels
(``0``, ``-1``, the nil UUID of a zeroed advertising id) and shared accounts (``guest``,
``anonymous``, ``test``). Empty and blank values are never identifiers in the first place."""


def normalize_kind(kind: Any) -> str:
    """The kind name as stored: trimmed and lower-cased (``"Email "`` → ``"email"``)."""
    return str(kind).strip().lower()


def normalize_identifier(kind: str, raw: Any) -> str | None:
    """The stored value of identifier ``raw`` of kind ``kind``, or None when it is empty.

    * ``email``: trimmed, lower-cased, then the SHA-256 of its UTF-8 bytes as 64 hex digits (the
      address itself is never stored in the identity graph);
    * ``phone``: its digits, with a leading ``+`` when the trimmed input starts with one
      (``"+1 (555) 010-2030"`` → ``"+15550102030"``);
    * ``customer_id``, ``user_id``, ``anonymous_id``: the text as given (ids are opaque; numbers
      become text);
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
    if kind in (CUSTOMER_ID, USER_ID, ANONYMOUS_ID):
        return text if text.strip() else None
    text = text.strip()
    return text or None


def ident_order(ident: Ident) -> tuple[int, str, str]:
    """Sort key of the canonical order of identifiers: ``customer_id``, ``user_id``, ``email``,
    ``phone``, other kinds (by name), ``anonymous_id``; then by value."""
    kind, value = ident
    return (_PRIORITY.get(kind, 5), kind, value)


def primary(idents: Iterable[Ident]) -> Ident:
    """The identifier that decides whose an event is: the first in canonical order (its
    ``user_id`` when it has one; a file's customer id for a row of a ``customers`` file)."""
    return min(idents, key=ident_order)


def person_id(idents: Iterable[Ident]) -> str:
    """The person id (``customer_id``) of a person holding ``idents``.

    * the smallest ``customer_id`` value when there is one: a customer of the files keeps the id
      the files (and the business's own systems) know them by;
    * else the smallest ``user_id`` value (with ``user_id`` unique, its only one);
    * else ``"anon:" + `` the smallest ``anonymous_id``;
    * else ``"anon:" + kind + "=" + value`` of the first identifier in canonical order.

    A function of the set only, so it never depends on the order events arrived in.

    >>> person_id([("anonymous_id", "b"), ("anonymous_id", "a")])
    'anon:a'
    >>> person_id([("anonymous_id", "a"), ("user_id", "u7")])
    'u7'
    >>> person_id([("user_id", "u7"), ("customer_id", "c-17")])
    'c-17'
    """
    customers: list[str] = []
    users: list[str] = []
    anons: list[str] = []
    others: list[Ident] = []
    for kind, value in idents:
        if kind == CUSTOMER_ID:
            customers.append(value)
        elif kind == USER_ID:
            users.append(value)
        elif kind == ANONYMOUS_ID:
            anons.append(value)
        else:
            others.append((kind, value))
    if customers:
        return min(customers)
    if users:
        return min(users)
    if anons:
        return ANON_PREFIX + min(anons)
    kind, value = min(others, key=ident_order)
    return f"{ANON_PREFIX}{kind}={value}"


def is_known(customer_id: str) -> bool:
    """Whether a person id names a known person (one with a ``customer_id`` or a ``user_id``), not
    an anonymous profile."""
    return not str(customer_id).startswith(ANON_PREFIX)


class Placeholders:
    """A placeholder list, matched against *normalized* identifiers (so that stored identifiers are
    checked too: an e-mail is matched by the SHA-256 of each listed text).

    >>> p = Placeholders(["Guest", "undefined"])
    >>> p.matches(("user_id", " GUEST ")), p.matches(("user_id", "guest-7"))
    (True, False)
    >>> p.matches(("email", normalize_identifier("email", "Undefined")))
    True
    """

    def __init__(self, values: Iterable[Any] = DEFAULT_PLACEHOLDERS) -> None:
        self.texts = frozenset(t for t in (str(v).strip().casefold() for v in values) if t)
        self._by_kind: dict[str, frozenset[str]] = {}

    def _normalized(self, kind: str) -> frozenset[str]:
        found = self._by_kind.get(kind)
        if found is None:
            found = frozenset(v for v in (normalize_identifier(kind, t) for t in self.texts) if v is not None)
            self._by_kind[kind] = found
        return found

    def matches(self, ident: Ident) -> bool:
        """Whether the normalized identifier ``ident`` is a placeholder."""
        kind, value = ident
        if not self.texts:
            return False
        if kind in (EMAIL, PHONE):
            return value in self._normalized(kind)
        return value.strip().casefold() in self.texts


def defining_ident(customer_id: str, idents: Iterable[Ident]) -> Ident | None:
    """The identifier of ``idents`` from which :func:`person_id` made ``customer_id`` (``idents``
    may be a set: it is then searched, not copied)."""
    members = idents if isinstance(idents, set | frozenset) else set(idents)
    for kind in NAMING_KINDS:
        if (kind, customer_id) in members:
            return (kind, customer_id)
    if customer_id.startswith(ANON_PREFIX):
        rest = customer_id[len(ANON_PREFIX):]
        if (ANONYMOUS_ID, rest) in members:
            return (ANONYMOUS_ID, rest)
        kind, sep, value = rest.partition("=")
        if sep and (kind, value) in members:
            return (kind, value)
    return None


def implicit_value(customer_id: str, kind: str, value: str) -> bool:
    """Whether the identifier ``(kind, value)`` of person ``customer_id`` is the one its id is
    (a ``customer_id`` or ``user_id`` equal to the person id): the resolver keeps such a value
    nowhere else (most persons have one)."""
    return kind in NAMING_KINDS and value == customer_id


def same_id_twin(ident: Ident) -> Ident | None:
    """The identifier naming the same person as ``ident`` under the other naming kind
    (``customer_id`` X for ``user_id`` X and back; :data:`SAME_ID_RANK`), or None."""
    kind, value = ident
    if kind == CUSTOMER_ID:
        return (USER_ID, value)
    if kind == USER_ID:
        return (CUSTOMER_ID, value)
    return None


def event_primary(idents: set[Ident], blocked: set[Ident]) -> Ident:
    """The identifier that decides whose an event is: the first in canonical order that is not
    blocked (its ``user_id`` when it has a usable one), else the first of all."""
    usable = [i for i in idents if i not in blocked] if blocked else idents
    return primary(usable or idents)
