"""The suppression list: what an erasure keeps so that replays do not bring the person back.

An erasure adds to ``suppressed_identifiers`` one keyed digest (HMAC-SHA256 under the database's
secret, :mod:`patron.people.identity.keyed`) per identifier the person had (``(kind, normalized value)``:
user ids, anonymous ids, customer ids, e-mails by their hash, phones, other identity traits) and per
messageId of their events and dead letters, with the time of the erasure. Nothing else: no id, no
count per person, no link to the erasure's receipt.

**Replays are dropped.** The service drops an event whose messageId is on the list (an SDK retry,
a replayed batch), and an event whose deciding identifier (its ``userId``, else the first of its
identifiers in canonical order: the one that says whose it is) is on the list (a queued event of
the person, a page view from their old browser), before it is stored or linked: it is answered as
stored (200, so the sender does not retry) and counted in ``suppressed_events`` (per day, no
content). A rejected event of theirs is not kept as a dead letter either (it is still answered
400). An event of someone else that carries an erased identifier beside their own (another user
on the erased person's shared device, their e-mail in someone's identify) is stored without it:
the identifier is not linked, and it is replaced by ``<erased>`` in the stored row and payload.

**A person who comes back of their own will.** The one thing that lifts the suppression of an
identifier is an explicit grant of consent made after the erasure: an event whose time is after
the erasure and that records a consent granted (the ``[service] consent_event`` with status
``granted``, or ``context.consent.categoryPreferences`` with a category set to true, as Segment's
consent management sends). That event is stored, the identifiers it carries leave the list (and
are counted as ``returned``), and from then on their events are stored: a new person, since
nothing of the erased one is left to join. The messageIds stay on the list forever, so the old
events never come back. Files: rows of an ingested ``customers`` file are not filtered (a file is
the business's own record: remove the person from the source system too); the ingest counts the
rows that name an erased person (:func:`erased_among`) and says so.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import duckdb
import pyarrow as pa

from patron.people.identity.keyed import database_key, keyed_digest
from patron.people.identity.normalize import ident_order, normalize_identifier

ERASED_TEXT: str = "<erased>"
"""What replaces an erased person's identifier in an event of someone else that is stored."""

SUPPRESSED_TABLE: str = "suppressed_identifiers"
"""One row per erased identifier or messageId: its keyed digest and the time of the erasure."""

COUNTS_TABLE: str = "suppressed_events"
"""Per UTC day: events dropped because they named an erased person, and identifiers returned."""

MESSAGE_KIND: str = "message_id"
"""Kind under which messageIds are digested."""

DIGEST_CACHE: int = 100_000
"""Identifier digests the service's writer remembers (about 200 bytes each)."""


def suppression_ddl(ref: str = SUPPRESSED_TABLE) -> str:
    """``CREATE TABLE IF NOT EXISTS`` of the list at ``ref``."""
    return f"CREATE TABLE IF NOT EXISTS {ref} (digest VARCHAR PRIMARY KEY, erased_at TIMESTAMP NOT NULL)"


def counts_ddl(ref: str = COUNTS_TABLE) -> str:
    """``CREATE TABLE IF NOT EXISTS`` of the daily counts at ``ref``."""
    return f"CREATE TABLE IF NOT EXISTS {ref} (day DATE PRIMARY KEY, events BIGINT NOT NULL, returned BIGINT NOT NULL)"


def digests(key: bytes, pairs: Iterable[tuple[str, str]]) -> list[str]:
    """The keyed digests of ``(kind, normalized value)`` pairs."""
    return sorted({keyed_digest(key, kind, value) for kind, value in pairs})


def _grants(value: Any) -> bool:
    return isinstance(value, dict) and any(v is True for v in value.values())


def grants_consent(payload: dict[str, Any], consent_rows: Iterable[tuple[Any, ...]]) -> bool:
    """Whether an event records an explicit consent grant: a consents row it maps to with status
    ``granted`` (:class:`patron.service.mapping.Mapped` consents: ``(message_id, record)``), or
    ``context.consent.categoryPreferences`` with a category set to true."""
    for row in consent_rows:
        record = row[1] if len(row) > 1 else None
        if isinstance(record, dict) and record.get("status") == "granted":
            return True
    ctx = payload.get("context") if isinstance(payload, dict) else None
    consent = ctx.get("consent") if isinstance(ctx, dict) else None
    return isinstance(consent, dict) and _grants(consent.get("categoryPreferences"))


class Suppression:
    """The list as the service's writer holds it: digests with the time of their erasure, and the
    database key. Read from the tables on first use (:meth:`load`), again after :meth:`reset`."""

    def __init__(self) -> None:
        self.loaded = False
        self.key: bytes | None = None
        self.erased_at: dict[str, datetime] = {}
        self._digests: dict[tuple[str, str], str] = {}

    def digest(self, kind: str, value: str) -> str:
        """The keyed digest of an identifier, remembered (an identifier comes back with every event
        of its person; at most :data:`DIGEST_CACHE` are kept, the memory emptied beyond)."""
        ident = (kind, value)
        found = self._digests.get(ident)
        if found is None:
            assert self.key is not None
            if len(self._digests) >= DIGEST_CACHE:
                self._digests.clear()
            found = self._digests[ident] = keyed_digest(self.key, kind, value)
        return found

    def reset(self) -> None:
        self.loaded = False
        self.erased_at = {}
        self._digests = {}

    def load(self, con: duckdb.DuckDBPyConnection) -> Suppression:
        """Read the list (and the key, created when missing)."""
        self.key = database_key(con)
        con.execute(suppression_ddl())
        con.execute(counts_ddl())
        self.erased_at = dict(con.execute(f"SELECT digest, erased_at FROM {SUPPRESSED_TABLE}").fetchall())
        self.loaded = True
        return self

    def __bool__(self) -> bool:
        return bool(self.erased_at)

    def hits(self, pairs: Iterable[tuple[str, str]]) -> dict[str, datetime]:
        """The digests of ``pairs`` on the list, with their erasure time."""
        found = {}
        for kind, value in pairs:
            d = self.digest(kind, value)
            if d in self.erased_at:
                found[d] = self.erased_at[d]
        return found

    def decide(self, message_id: str | None, identifiers: list[tuple[str, str]], occurred_at: datetime | None,
               returns: bool) -> tuple[str | None, list[str], set[tuple[str, str]]]:
        """What to do with an event whose normalized identifiers are ``identifiers`` (placeholders
        left out), as ``(verdict, lifted, strip)``:

        * ``("replay", [], set())``: its messageId is on the list: drop it;
        * ``("erased", [], set())``: the identifier that decides whose it is (the first in
          canonical order) is on the list: drop it;
        * ``(None, digests, set())``: that identifier is on the list but the event is a return of
          one's own will (module docstring): store it, and ``digests`` leave the list;
        * ``(None, [], strip)``: the event is someone else's, but carries identifiers of an erased
          person (a shared device, their e-mail in another's identify): store it without ``strip``;
        * ``(None, [], set())``: nothing on the list."""
        if not self:
            return None, [], set()
        assert self.key is not None
        if message_id is not None and keyed_digest(self.key, MESSAGE_KIND, message_id) in self.erased_at:
            return "replay", [], set()  # a messageId comes once: not remembered
        if not identifiers:
            return None, [], set()
        ordered = sorted(set(identifiers), key=ident_order)
        hit = {i: self.digest(*i) for i in ordered}
        hit = {i: d for i, d in hit.items() if d in self.erased_at}
        if not hit:
            return None, [], set()
        if ordered[0] not in hit:
            return None, [], set(hit)
        if returns and occurred_at is not None and all(occurred_at > self.erased_at[d] for d in hit.values()):
            for d in hit.values():
                self.erased_at.pop(d, None)
            return None, sorted(hit.values()), set()
        return "erased", [], set()


def strip_json(value: Any, strip: set[tuple[str, str]]) -> Any:
    """A JSON value with every string that is one of the identifiers ``strip`` (``(kind, normalized
    value)``, compared after normalizing the string as that kind) replaced by ``<erased>``."""
    if isinstance(value, str):
        for kind, norm in strip:
            if normalize_identifier(kind, value) == norm:
                return ERASED_TEXT
        return value
    if isinstance(value, list):
        return [strip_json(v, strip) for v in value]
    if isinstance(value, dict):
        return {k: strip_json(v, strip) for k, v in value.items()}
    return value


def record(con: duckdb.DuckDBPyConnection, dropped: int, lifted: list[str], day: date) -> None:
    """In the caller's transaction: add ``dropped`` events and ``len(lifted)`` returned identifiers
    to the day's counts, and take ``lifted`` off the list."""
    if lifted:
        _patron_lifted = pa.table({"digest": pa.array(lifted, pa.string())})  # replacement scan
        con.execute(f"DELETE FROM {SUPPRESSED_TABLE} WHERE digest IN (SELECT digest FROM _patron_lifted)")
    if dropped or lifted:
        con.execute(f"INSERT INTO {COUNTS_TABLE} VALUES (?, ?, ?) ON CONFLICT (day) DO UPDATE SET "
                    "events = events + excluded.events, returned = returned + excluded.returned",
                    [day, dropped, len(lifted)])


def erased_among(con: duckdb.DuckDBPyConnection, groups: list[list[tuple[str, str]]]) -> int:
    """How many of ``groups`` (the raw identifiers ``(kind, value)`` of a record each) hold an
    identifier on the suppression list (none when the list is empty or missing)."""
    if not groups:
        return 0
    exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ? AND table_schema = 'main' "
                         "AND table_catalog = current_database()", [SUPPRESSED_TABLE]).fetchall()[0][0]
    if not exists:
        return 0
    listed = {r[0] for r in con.execute(f"SELECT digest FROM {SUPPRESSED_TABLE}").fetchall()}
    key = database_key(con, create=False)
    if not listed or key is None:
        return 0
    n = 0
    for group in groups:
        pairs = [(k, v) for k, v in ((k, normalize_identifier(k, raw)) for k, raw in group) if v is not None]
        n += any(keyed_digest(key, k, v) in listed for k, v in pairs)
    return n


def payload_dict(text: Any) -> dict[str, Any]:
    """A stored payload as a dict (``{}`` when it is not a JSON object)."""
    if isinstance(text, dict):
        return text
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}
