"""The service's own tables: ``events`` (every accepted Segment event, once) and ``dead_letters``
(events that could not be stored, with the reason).

Both have a ``customer_id`` column so that data-rights export and erasure
(:mod:`patron.people.rights`) find a person's events and dead letters (dead letters: best effort, the
``userId`` or ``'anon:' + anonymousId`` of the event when it has one, since a rejected event never
went through identity resolution). Times are naive UTC ``TIMESTAMP``; ``payload`` is the event's
JSON text as received (batch-level ``context``/``sentAt`` merged in, ``messageId`` set).
"""

from __future__ import annotations

import duckdb

EVENTS_DDL = """CREATE TABLE IF NOT EXISTS events (
  message_id VARCHAR PRIMARY KEY,
  type VARCHAR NOT NULL,
  event VARCHAR,
  customer_id VARCHAR,
  user_id VARCHAR,
  anonymous_id VARCHAR,
  previous_id VARCHAR,
  group_id VARCHAR,
  occurred_at TIMESTAMP NOT NULL,
  sent_at TIMESTAMP,
  received_at TIMESTAMP NOT NULL,
  payload VARCHAR NOT NULL
)"""
"""One row per accepted event, keyed by ``messageId`` (a retried event is stored once).

``type``: identify, track, alias, page, screen, group. ``event``: the track event name (or the
page/screen name). ``customer_id``: the person the event was resolved to when stored (rewritten
when persons merge). ``occurred_at``: the event time after Segment's clock-skew correction;
``sent_at``: the client's ``sentAt``; ``received_at``: the server's clock on arrival."""

EVENT_COLUMNS: tuple[str, ...] = (
    "message_id", "type", "event", "customer_id", "user_id", "anonymous_id", "previous_id", "group_id",
    "occurred_at", "sent_at", "received_at", "payload",
)
"""Columns of ``events`` in table order."""

DEAD_LETTERS_DDL = """CREATE TABLE IF NOT EXISTS dead_letters (
  dead_letter_id VARCHAR PRIMARY KEY,
  received_at TIMESTAMP NOT NULL,
  message_id VARCHAR,
  customer_id VARCHAR,
  type VARCHAR,
  event VARCHAR,
  reason VARCHAR NOT NULL,
  payload VARCHAR
)"""
"""One row per rejected event and reason. ``dead_letter_id`` is a hash of the event's
``messageId`` (or of its payload when it has none) and the reason, so a retried bad event is
recorded once. ``payload`` is the event's JSON text, cut to :data:`MAX_DEAD_PAYLOAD` characters."""

DEAD_LETTER_COLUMNS: tuple[str, ...] = (
    "dead_letter_id", "received_at", "message_id", "customer_id", "type", "event", "reason", "payload",
)
"""Columns of ``dead_letters`` in table order."""

MAX_DEAD_PAYLOAD: int = 64 * 1024
"""Longest payload kept in a dead letter, in characters (an over-size event is cut)."""


def create_event_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``events`` and ``dead_letters`` when missing."""
    con.execute(EVENTS_DDL)
    con.execute(DEAD_LETTERS_DDL)
