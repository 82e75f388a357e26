"""The identity graph's tables (DuckDB DDL).

Every table holds a ``customer_id`` column (the person id) so that ``patron.people.rights`` export and
erasure find a person's identifiers. E-mail values are SHA-256 hashes, never addresses.

* ``identities``: one row per identifier, the person it belongs to and, for identifiers of a
  *conflicted cluster* (see :mod:`patron.people.identity`), the cluster's label (opaque: ``c:`` and 16
  random hex digits, never named after an identifier). Inserted once; rewritten
  only when the identifier changes person (first and last seen come from the observations).
* ``identity_links``: one row per identifier of each distinct *set* of identifiers seen together in
  one event (a link), with the canonical-first event that carried that set.
* ``identity_observations``: every identifier every event carried (event time ``occurred_at``,
  naive UTC); ``is_primary`` marks the one that decides whose the event is; ``customer_id`` is the
  person of that identifier. Append-only (the writer passes each message once).

No primary keys: the single writer's :class:`~patron.people.identity.Resolver` knows which identifiers and
links are new, so every statement is a plain append or a join-update of the few changed rows
(an ART index per table would cost memory per event and time per insert).
* ``identity_merges``: the history of merges (``reason`` starts with ``merged``), refused merges
  (``refused``) and splits (``split``), with the message that caused them.
"""

from __future__ import annotations

import secrets

import duckdb
import pyarrow as pa

IDENTITY_TABLES: tuple[str, ...] = ("identities", "identity_links", "identity_observations", "identity_merges")
"""The tables of the identity graph, all with a ``customer_id`` column."""

IDENTITY_DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS identities (
  kind VARCHAR NOT NULL,
  value VARCHAR NOT NULL,
  customer_id VARCHAR NOT NULL,
  cluster_id VARCHAR
)""",
    """CREATE TABLE IF NOT EXISTS identity_links (
  link_key VARCHAR NOT NULL,
  kind VARCHAR NOT NULL,
  value VARCHAR NOT NULL,
  message_id VARCHAR NOT NULL,
  occurred_at TIMESTAMP NOT NULL,
  customer_id VARCHAR
)""",
    """CREATE TABLE IF NOT EXISTS identity_observations (
  message_id VARCHAR NOT NULL,
  occurred_at TIMESTAMP,
  kind VARCHAR NOT NULL,
  value VARCHAR NOT NULL,
  is_primary BOOLEAN,
  customer_id VARCHAR
)""",
    """CREATE TABLE IF NOT EXISTS identity_merges (
  merged_at TIMESTAMP,
  customer_id VARCHAR,
  merged_id VARCHAR,
  cause_message_id VARCHAR,
  cause_occurred_at TIMESTAMP,
  cause_kind VARCHAR,
  cause_value VARCHAR,
  reason VARCHAR
)""",
)
"""``CREATE TABLE IF NOT EXISTS`` statements of :data:`IDENTITY_TABLES`."""


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the identity tables when missing (idempotent; safe inside an open transaction)."""
    for statement in IDENTITY_DDL:
        con.execute(statement)


LEGACY_LABEL = "c:%=%"
"""``LIKE`` pattern of the cluster labels of databases from before labels were opaque: ``c:`` and
the first identifier of the cluster (``c:user_id=u1``), which outlived the erasure of its person in
the rows of the cluster's other persons."""


def rename_legacy_labels(con: duckdb.DuckDBPyConnection) -> int:
    """Give the clusters named after an identifier (:data:`LEGACY_LABEL`) opaque labels (``c:`` and
    16 random hex digits); returns the number of clusters renamed. Run when the graph is loaded."""
    old = [r[0] for r in con.execute("SELECT DISTINCT cluster_id FROM identities WHERE cluster_id LIKE ?",
                                     [LEGACY_LABEL]).fetchall()]
    if not old:
        return 0
    _patron_labels = pa.table({"old": old, "new": ["c:" + secrets.token_hex(8) for _ in old]})  # replacement scan
    con.execute("UPDATE identities SET cluster_id = l.new FROM _patron_labels l WHERE identities.cluster_id = l.old")
    return len(old)
