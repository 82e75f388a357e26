"""Who a person is, for export and erasure: every identifier they ever had, and how a value is
recognised as one of them.

A person is found from their id (:class:`Person`, :func:`gather`) through

* the identity graph: every identifier linked to them (``customer_id``, ``user_id``,
  ``anonymous_id``, e-mail hashes, phones, other traits), the person ids they were known by before
  merges (``anon:`` + an anonymous id, an absorbed user id, ...);
* their ``customers.attributes``: the values of ``[rights] identity_attributes`` (the e-mail
  address itself, the phone as written);
* their events' and dead letters' messageIds.

A value *names* the person (:meth:`Person.names`) when it equals one of the ids, or is one of
their e-mail addresses in any case and with surrounding spaces, or one of the e-mail hashes, or a
phone number of theirs in any format (digits compared; with or without a country code, a leading
trunk ``0`` ignored, at least :data:`MIN_PHONE_DIGITS` digits). Inside free text (a file name, a
malformed line, a merge reason, a JSON payload) the person is found by their e-mail addresses, phone
numbers and ids of at least :data:`MIN_CONTAINED` characters, in any case (:meth:`Person.scrub_text`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from patron.people.identity.normalize import (
    ANON_PREFIX,
    ANONYMOUS_ID,
    CUSTOMER_ID,
    EMAIL,
    PHONE,
    USER_ID,
    ident_order,
    normalize_identifier,
)
from patron.people.identity.payload import DEFAULT_TRAITS, payload_identifiers
from patron.people.rights.rules import RightsRules

MIN_CONTAINED: int = 6
"""Shortest id searched *inside* free text (a short id such as ``17`` occurs in unrelated text by
chance): shorter ids are matched as whole values, as quoted values (``"17"``) and as CSV fields
only."""

MIN_PHONE_DIGITS: int = 7
"""Fewest digits a value must have to be compared as a phone number."""

ERASED: str = "<erased>"
"""What replaces the person's identifiers inside text and JSON kept about other people."""

_PHONE_TEXT = re.compile(r"\+?\d[\d\s().\-/]{4,}\d")
_PHONE_VALUE = re.compile(r"\+?[\d\s().\-/]+")


def phone_digits(text: str) -> str | None:
    """The digits of ``text`` when it is written like a phone number (digits, spaces, ``+-().
    /``) with at least :data:`MIN_PHONE_DIGITS` of them, leading zeros dropped; else None."""
    t = text.strip()
    if not t or not _PHONE_VALUE.fullmatch(t):
        return None
    digits = "".join(ch for ch in t if ch.isdigit()).lstrip("0")
    return digits if len(digits) >= MIN_PHONE_DIGITS else None


def same_phone(a: str, b: str) -> bool:
    """Whether two digit strings (:func:`phone_digits`) are one number, with or without a country
    code: equal, or one ends with the other."""
    return a == b or a.endswith(b) or b.endswith(a)


def email_hash(address: str) -> str:
    """The identity graph's form of an e-mail address (trimmed, lower-cased, SHA-256 hex)."""
    return hashlib.sha256(address.strip().lower().encode("utf-8")).hexdigest()


@dataclass
class Person:
    """Everything that identifies one person (see the module docstring)."""

    customer_id: str
    ids: set[str] = field(default_factory=set)
    """Texts that name the person as whole values: the id, former person ids, identifier values."""
    emails: set[str] = field(default_factory=set)
    """E-mail addresses, trimmed and lower-cased."""
    email_hashes: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)
    """Phone numbers as digits (:func:`phone_digits`)."""
    phone_texts: set[str] = field(default_factory=set)
    """Phone numbers as they were written (searched inside text)."""
    graph: set[tuple[str, str]] = field(default_factory=set)
    """Their identifiers in the identity graph, ``(kind, normalized value)``."""
    messages: set[str] = field(default_factory=set)
    """messageIds of their events and dead letters."""
    rows: dict[str, list[int]] = field(default_factory=dict)
    """Rows found about the person outside any person column, by table label: rowids of dead
    letters whose identifiers resolve to them (:func:`resolve_dead_letters`)."""
    mentions: dict[str, list[int]] = field(default_factory=dict)
    """Rows of other people that mention the person, by table label (dead letters)."""

    @property
    def identifiers(self) -> int:
        """How many identifiers were matched (the audit row's count)."""
        return len(self.ids | self.emails | self.email_hashes | self.phones)

    def listed(self) -> list[str]:
        """The identifiers an export lists: the id, then the graph's ids (user ids, anonymous ids,
        customer ids, other traits), the e-mail addresses and the phones as written (e-mails the
        graph knows only by their hash are listed in its rows)."""
        graph = {v for k, v in self.graph if k not in (EMAIL, PHONE)} - {self.customer_id}
        return [self.customer_id, *sorted(graph), *sorted(self.emails), *sorted(self.phone_texts)]

    def exact(self) -> list[str]:
        """Texts compared for equality in SQL: ids and e-mail hashes."""
        return sorted(self.ids | self.email_hashes)

    def contained(self) -> list[str]:
        """Lower-cased needles searched inside text: e-mails, phone spellings, e-mail hashes and ids
        of at least :data:`MIN_CONTAINED` characters, longest first."""
        found = self.emails | {p.lower() for p in self.phone_texts} | self.email_hashes
        found |= {i.lower() for i in self.ids if len(i) >= MIN_CONTAINED}
        return sorted(found, key=lambda s: (-len(s), s))

    def names(self, value: Any) -> bool:
        """Whether the whole ``value`` names the person (module docstring)."""
        if value is None or isinstance(value, bool) or not isinstance(value, str | int):
            return False
        text = str(value)
        if text in self.ids or text in self.email_hashes:
            return True
        low = text.strip().lower()
        if "@" in low:
            return low in self.emails or email_hash(low) in self.email_hashes
        if self.phones:
            d = phone_digits(text)
            if d is not None and any(same_phone(d, p) for p in self.phones):
                return True
        return False

    def _pattern(self) -> re.Pattern[str] | None:
        cached = self.__dict__.get("_re")
        if cached is None:
            needles = self.contained()
            cached = re.compile("|".join(re.escape(n) for n in needles), re.IGNORECASE) if needles else False
            self.__dict__["_re"] = cached
        return cached or None

    def mentioned_in(self, text: str) -> bool:
        """Whether ``text`` holds one of the person's needles (:meth:`contained`) or a phone number
        of theirs in another format."""
        pattern = self._pattern()
        if pattern is not None and pattern.search(text):
            return True
        return self._phone_hit(text)

    def _phone_hit(self, text: str) -> bool:
        if not self.phones:
            return False
        return any(self._is_phone(m.group()) for m in _PHONE_TEXT.finditer(text))

    def _is_phone(self, candidate: str) -> bool:
        d = phone_digits(candidate)
        return d is not None and any(same_phone(d, p) for p in self.phones)

    def scrub_text(self, text: str) -> str:
        """``text`` with every occurrence of the person's needles (any case) and phone numbers (any
        format) replaced by :data:`ERASED`."""
        pattern = self._pattern()
        if pattern is not None:
            text = pattern.sub(ERASED, text)
        if self.phones:
            text = _PHONE_TEXT.sub(lambda m: ERASED if self._is_phone(m.group()) else m.group(), text)
        return text

    def scrub_json(self, value: Any) -> Any:
        """A JSON value with every string that names the person replaced by :data:`ERASED` and
        every other string scrubbed as text (:meth:`scrub_text`); keys and numbers kept, except a
        number that is the person's phone."""
        if isinstance(value, str):
            return ERASED if self.names(value) else self.scrub_text(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return ERASED if self.names(value) else value
        if isinstance(value, list):
            return [self.scrub_json(v) for v in value]
        if isinstance(value, dict):
            return {k: self.scrub_json(v) for k, v in value.items()}
        return value

    def scrub(self, text: Any) -> Any:
        """A stored text value scrubbed: JSON text (an object or a list) through :meth:`scrub_json`
        and written back compactly, anything else through :meth:`scrub_text`; ``None`` stays."""
        if not isinstance(text, str):
            return text
        stripped = text.lstrip()
        if stripped[:1] in ("{", "["):
            try:
                decoded = json.loads(text)
            except (ValueError, RecursionError):
                decoded = None
            if isinstance(decoded, dict | list):
                return json.dumps(self.scrub_json(decoded), ensure_ascii=False, separators=(",", ":"))
        return ERASED if self.names(text) else self.scrub_text(text)

    def add_email(self, address: str) -> None:
        low = address.strip().lower()
        if low:
            self.emails.add(low)
            self.email_hashes.add(email_hash(low))

    def add_phone(self, text: str) -> None:
        d = phone_digits(text)
        if d is not None:
            self.phones.add(d)
            self.phone_texts.add(text.strip())

    def digest_pairs(self) -> set[tuple[str, str]]:
        """``(kind, normalized value)`` pairs for the suppression list: the graph's identifiers,
        the id as a customer id and as a user id, the e-mails and phones of the attributes, and
        the messageIds (kind ``message_id``)."""
        pairs = set(self.graph)
        if not self.customer_id.startswith(ANON_PREFIX):
            pairs |= {(CUSTOMER_ID, self.customer_id), (USER_ID, self.customer_id)}
        pairs |= {(EMAIL, h) for h in self.email_hashes}
        for text in self.phone_texts:
            value = normalize_identifier(PHONE, text)
            if value is not None:
                pairs.add((PHONE, value))
        pairs |= {("message_id", m) for m in self.messages}
        return pairs


def _former_ids(kind: str, value: str) -> list[str]:
    """Person ids a person holding ``(kind, value)`` may have had (:func:`~patron.people.identity.person_id`)."""
    if kind in (CUSTOMER_ID, USER_ID):
        return [value]
    if kind == ANONYMOUS_ID:
        return [ANON_PREFIX + value]
    return [f"{ANON_PREFIX}{kind}={value}"]


def _has(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' AND table_name = ? "
        "AND table_catalog = current_database()", [table]).fetchall()[0][0])


def gather(con: duckdb.DuckDBPyConnection, customer_id: str, rules: RightsRules) -> Person:
    """Everything that identifies person ``customer_id`` in the database of ``con``."""
    p = Person(customer_id=str(customer_id), ids={str(customer_id)})
    if _has(con, "identities"):
        for kind, value in con.execute("SELECT kind, value FROM identities WHERE customer_id = ?", [p.customer_id]).fetchall():
            p.graph.add((kind, value))
            p.ids.update(_former_ids(kind, value))
            if kind == EMAIL:
                p.email_hashes.add(value)
            elif kind == PHONE:
                p.add_phone(value)
            else:
                p.ids.add(value)
    if _has(con, "identity_merges"):
        p.ids.update(r[0] for r in con.execute(
            "SELECT DISTINCT merged_id FROM identity_merges WHERE customer_id = ? AND merged_id IS NOT NULL "
            "AND starts_with(reason, 'merged')", [p.customer_id]).fetchall())
    wanted = {k.lower() for k in rules.identity_attributes}
    if _has(con, "customers"):
        for (text,) in con.execute("SELECT attributes FROM customers WHERE customer_id = ?", [p.customer_id]).fetchall():
            try:
                attrs = json.loads(text) if text else {}
            except (TypeError, ValueError):
                continue
            for key, value in (attrs.items() if isinstance(attrs, dict) else ()):
                if key.lower() not in wanted or isinstance(value, bool) or not isinstance(value, str | int):
                    continue
                text_value = str(value).strip()
                if not text_value:
                    continue
                if "@" in text_value or key.lower() == EMAIL:
                    p.add_email(text_value)
                elif key.lower() == PHONE or phone_digits(text_value):
                    p.add_phone(text_value)
                else:
                    p.ids.add(text_value)
    if _has(con, "events"):
        p.messages.update(r[0] for r in con.execute(
            "SELECT message_id FROM events WHERE customer_id = ?", [p.customer_id]).fetchall())
    return p


def identity_traits(config: Any) -> list[str]:
    """``[service] identity_traits`` of the rules file (``config``: a path, a parsed dict or None):
    the traits that carry identifiers in events and dead letters; default ``email`` and ``phone``."""
    from patron.config import load_config

    data = config if isinstance(config, dict) else load_config(config)
    service = data.get("service") if isinstance(data, dict) else None
    found = service.get("identity_traits") if isinstance(service, dict) else None
    return [str(t) for t in found] if isinstance(found, list) else list(DEFAULT_TRAITS)


DEAD_LETTER_CHUNK: int = 10_000
"""Dead letters read at a time when they are resolved at erasure."""


def resolve_dead_letters(con: duckdb.DuckDBPyConnection, person: Person, traits: Sequence[str]) -> None:
    """Find the dead letters about the person again (into ``person.rows["dead_letters"]``) and
    those of other people that mention them (``person.mentions["dead_letters"]``); add the
    messageIds of theirs to ``person.messages``.

    A dead letter is the person's when its ``customer_id`` names them, or when the first of its
    identifiers (:func:`~patron.people.identity.payload.payload_identifiers`, canonical order) that the
    identity graph knows is theirs, or, when the graph knows none of them, when one of them names
    the person; a payload that is not an event (an unreadable body) and mentions them is theirs
    too. One pass over the dead letters (they hold at most 64 KB each)."""
    if not _has(con, "dead_letters"):
        return
    cur = con.execute("SELECT rowid, customer_id, message_id, payload FROM dead_letters")
    rows: list[tuple[int, Any, Any, Any, list[tuple[str, str]]]] = []
    candidates: set[tuple[str, str]] = set()
    while chunk := cur.fetchmany(DEAD_LETTER_CHUNK):
        for rowid, cid, mid, payload in chunk:
            idents = payload_identifiers(payload, traits) if isinstance(payload, str) else []
            if idents or cid in person.ids or (isinstance(payload, str) and person.mentioned_in(payload)):
                rows.append((rowid, cid, mid, payload, idents))
                candidates.update(idents)
    owner = _owners(con, candidates)
    mine, others = [], []
    for rowid, cid, mid, payload, idents in rows:
        known = [i for i in idents if i in owner]
        if cid in person.ids:
            is_mine = True
        elif known:
            is_mine = owner[min(known, key=ident_order)] == person.customer_id
        elif idents:
            is_mine = any(i in person.graph or person.names(i[1]) for i in idents)
        else:
            is_mine = isinstance(payload, str) and person.mentioned_in(payload)
        if is_mine:
            mine.append(rowid)
            if mid is not None:
                person.messages.add(mid)
        elif (isinstance(payload, str) and person.mentioned_in(payload)) or any(i in person.graph for i in idents):
            others.append(rowid)
    person.rows["dead_letters"] = mine
    person.mentions["dead_letters"] = others


def _owners(con: duckdb.DuckDBPyConnection, idents: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The person of each identifier the graph holds."""
    idents = list(idents)
    if not idents or not _has(con, "identities"):
        return {}
    _patron_probe = pa.table({"kind": [k for k, _ in idents], "value": [v for _, v in idents]})  # replacement scan
    return {(k, v): c for k, v, c in con.execute(
        "SELECT i.kind, i.value, i.customer_id FROM identities i JOIN _patron_probe p "
        "ON i.kind = p.kind AND i.value = p.value").fetchall()}


__all__ = ["ERASED", "MIN_CONTAINED", "MIN_PHONE_DIGITS", "Person", "gather", "identity_traits", "phone_digits",
           "resolve_dead_letters"]
