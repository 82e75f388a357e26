"""Customers of the files in the identity graph: a row of an ingested ``customers`` file is an
observation like an event's.

A row carries its ``customer_id`` (kind ``customer_id``) and, from its attributes (the file's other
columns), the values of the ``[service] identity_traits`` (default ``email`` and ``phone``; column
names compared case-insensitively). They are normalized and linked by the same
:class:`~patron.people.identity.Resolver` and rules as the identifiers of events, so an event whose e-mail
or phone is a file customer's joins that person, and a file customer whose e-mail an event person
already has joins them, whichever arrives first; the person keeps the file's customer id
(:func:`~patron.people.identity.normalize.person_id`) and the event person's rows follow it.

Each row is one observation: its message id is ``file:`` and 32 hex digits of a keyed digest of the
row's identifiers (:mod:`patron.people.identity.keyed`: stable, so a re-ingest of the same row is no new
observation; keyed, so it does not reveal the customer id), its time the row's ``first_seen``, else
the time of the ingest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa

from patron.people.identity.keyed import database_key, keyed_digest
from patron.people.identity.normalize import CUSTOMER_ID, normalize_kind
from patron.people.identity.resolve import Resolution, Resolver
from patron.people.identity.rules import IdentityRules
from patron.people.identity.tables import ensure_tables

FILE_MESSAGE_PREFIX: str = "file:"
"""Start of the message id of an observation made from a row of a ``customers`` file."""

CUSTOMER_ROWS_SQL = """SELECT c.customer_id, c.first_seen, c.attributes, i.started_at
FROM customers c JOIN ingests i ON i.ingest_id = c.ingest_id AND i.kind = 'customers'
WHERE c.ingest_id = $1
   OR NOT EXISTS (SELECT 1 FROM identities d WHERE d.customer_id = c.customer_id)"""
"""Rows of ``customers`` that came from a file and must enter the graph: those of ingest ``$1`` (new
or updated), and those of earlier files that never did (a database from before file customers
entered the graph). Rows that identify events wrote are not file rows (their ``ingest_id`` is a
messageId, not an ingest of kind customers)."""


def identity_rules(config: Any = None) -> IdentityRules:
    """The identity rules of the rules file: the identity keys of its ``[service]`` section (unique
    identifiers, identity traits, placeholders, cap), the same the service resolves events with
    (``config`` may be the service's :class:`~patron.service.settings.ServiceRules`, which extends
    :class:`~patron.people.identity.rules.IdentityRules`)."""
    from patron.config import section

    if isinstance(config, IdentityRules):
        return config
    return section("service", IdentityRules, config)


def _trait_values(attributes: Any, traits: list[str]) -> list[tuple[str, str]]:
    """``(kind, raw value)`` of the identity traits found in a row's attributes (JSON text)."""
    try:
        attrs = json.loads(attributes) if attributes else {}
    except (TypeError, ValueError):
        return []
    if not isinstance(attrs, dict):
        return []
    by_name = {str(k).strip().lower(): v for k, v in attrs.items()}
    out: list[tuple[str, str]] = []
    for kind in traits:
        value = by_name.get(kind)
        if isinstance(value, bool) or not isinstance(value, str | int):
            continue  # a list, an object, a fraction, a boolean: not an identifier
        text = str(value).strip()
        if text and (kind, text) not in out:
            out.append((kind, text))
    return out


def file_observations(con: duckdb.DuckDBPyConnection, rules: Any, *, ingest_id: str | None = None,
                      key: bytes | None = None) -> list[tuple[str, datetime, str, str]]:
    """Observations ``(message_id, occurred_at, kind, raw value)`` of the file customers that must
    enter the graph (:data:`CUSTOMER_ROWS_SQL`), without those already observed."""
    traits = [normalize_kind(t) for t in getattr(rules, "identity_traits", ["email", "phone"])]
    key = key if key is not None else database_key(con)
    assert key is not None
    now = datetime.now(UTC).replace(tzinfo=None)
    found: dict[str, tuple[datetime, list[tuple[str, str]]]] = {}
    for cid, first_seen, attributes, started_at in con.execute(CUSTOMER_ROWS_SQL, [ingest_id]).fetchall():
        idents = [(CUSTOMER_ID, str(cid)), *_trait_values(attributes, traits)]
        text = "\x1e".join(f"{k}\x1f{v}" for k, v in idents)
        mid = FILE_MESSAGE_PREFIX + keyed_digest(key, "customers", text)[:32]
        found[mid] = (first_seen or started_at or now, idents)
    if not found:
        return []
    _patron_file_mids = pa.table({"message_id": pa.array(list(found), pa.string())})  # replacement scan
    seen = {r[0] for r in con.execute(
        "SELECT DISTINCT o.message_id FROM identity_observations o SEMI JOIN _patron_file_mids m "
        "ON m.message_id = o.message_id").fetchall()}
    return [(mid, ts, kind, value) for mid, (ts, idents) in sorted(found.items()) if mid not in seen
            for kind, value in idents]


@dataclass
class FileResolution:
    """What entering file customers into the graph did: the observations made (``(message_id,
    occurred_at, kind, raw value)``, one message per customer row) and the resolution (None when
    there was nothing to enter)."""

    observations: list[tuple[str, datetime, str, str]] = field(default_factory=list)
    resolution: Resolution | None = None

    @property
    def merged(self) -> int:
        """Persons merged into others."""
        return len(self.resolution.remapped) if self.resolution is not None else 0


def resolve_file_customers(con: duckdb.DuckDBPyConnection, rules: Any = None, *,
                           ingest_id: str | None = None) -> FileResolution:
    """Enter the file customers that are not in the identity graph yet (those of ``ingest_id``,
    and any earlier ones) into it, and make the rows of persons they joined follow; inside the
    caller's transaction.

    ``rules``: an ``IdentityRules`` (or the service's ``ServiceRules``), a rules-file path or dict, or None (the rules file in use)."""
    rules = identity_rules(rules)
    ensure_tables(con)
    observations = file_observations(con, rules, ingest_id=ingest_id)
    if not observations:
        return FileResolution()
    resolver = Resolver(rules)
    res = resolver.resolve(con, observations)
    if res.changed:
        resolver.follow(con, res)
    return FileResolution(observations, res)
