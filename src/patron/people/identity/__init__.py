"""Identity resolution: the identifiers events carry (``userId``, ``anonymousId``, e-mail, phone,
other identity traits) linked into persons, with a person id (``customer_id``) per person.

Definitions
-----------
* An **identifier** is ``(kind, value)``, normalized by :func:`normalize_identifier` (an e-mail is
  trimmed, lower-cased and stored as its SHA-256 hex: the graph never holds an address).
* An **event** (one ``message_id``) carries a set of identifiers; its **rank** is
  ``(occurred_at, message_id)``. A set of two or more identifiers seen together is a **link**; the
  rank of a link is the smallest rank of the events that carried exactly that set.
* Some kinds are **unique** (``[service] unique_identifiers``, default ``["customer_id",
  "user_id"]``; ``customer_id``, the id of a row of a customers file, always is): a person holds at
  most one value of each. ``customer_id`` X and ``user_id`` X are linked first, whichever arrives
  first (the same text names the same person).
* **The result** is defined on the *set* of observations, never on arrival order: apply the links
  in canonical order (by rank); a link joins its first identifier (canonical order of identifiers:
  ``customer_id``, ``user_id``, ``email``, ``phone``, other kinds, ``anonymous_id``) with each of
  the others, and a
  join that would give one person two values of a unique kind is **refused** (recorded, with its
  reason). A shared device seen with two user ids therefore joins the first user (by event time)
  and the second stays a separate person.
* A **placeholder** (a value of ``[service] placeholder_identifiers``, such as ``guest`` or
  ``undefined``, compared trimmed and case-insensitively) is no identifier: it is dropped from
  the event. An identifier seen with more than ``[service] max_linked_identifiers`` distinct others
  (over every link) is **shared**: it is taken out of every link and stays a person of its own.
  Both are functions of the set of events, so the result still is; shared identifiers and
  placeholders are **blocked** (they link nobody), recorded once each in ``identity_merges``.
* The **person id**: the person's ``customer_id`` (a customer of the files keeps the id the files
  know); else its ``user_id`` (the smallest, if ``user_id`` is not unique); else
  ``"anon:" + `` its smallest ``anonymous_id``; else ``"anon:kind=value"`` of its first identifier.
  A function of the person's identifiers only, so it does not change with event order, and an
  anonymous profile never gives its id to a known person: when they merge, the ``user_id`` wins.
* The person of an **event** is the person of its first identifier in canonical order that is not
  shared (its user id when it has a usable one), else of its first identifier; an event that
  carried only placeholders is a person of its own, ``"anon:" + `` its message id. A track by user
  u2 on a device linked to u1 belongs to u2.

Why it is order-independent and cheap
-------------------------------------
The connected components of all links *ignoring* uniqueness are **clusters**. Replaying per
cluster gives the global replay (clusters share no identifier). A cluster with at most one value
per unique kind is one person whatever the order (plain union-find), so only **conflicted
clusters** (a shared device, a reused e-mail) need the ordered replay. The :class:`Resolver` keeps
the graph in memory (rebuilt from the tables on start) and, per batch:

1. skips events whose identifier set is a known link with an earlier rank (the common case: a
   track with a userId/anonymousId pair seen before) — dictionary look-ups only;
2. for a new link in unconflicted clusters, unions the persons: the identifiers of the smaller
   ones move into the largest, unique kinds are checked on each person's values of them, the
   person id comes from the parts' defining identifiers (work proportional to the identifiers
   whose person changes, never to the size of the person joined);
3. for a link touching one conflicted cluster and ranking after all of its links, applies it to
   the cluster's persons as the replay would (last); for any other link touching a conflicted
   cluster, or an earlier rank of a known link there, replays that cluster's links (loaded from
   ``identity_links``) with :func:`replay`. This may *split* a person (a late event, earlier
   in time, changes which link is refused); the messages whose person changed are returned in
   :attr:`Resolution.moved`;
4. for an identifier that became shared (or a stored graph that disagrees with the rules in force
   on start), replays its cluster once, without the blocked identifiers.

Then it writes set-based SQL: upsert of ``identities`` (first/last seen), insert of
``identity_observations`` (ignored when the message was already stored: replays are no-ops),
new or earlier ``identity_links``, ``identity_merges`` rows, and one ``UPDATE`` per identity table
joined to the changed identifiers.

Rows follow the person: :func:`follow_merges` rewrites ``customer_id`` in transactions, contacts,
consents, preferences, feedback, events, dead letters (one ``UPDATE`` per table joined to the
remap) and merges ``customers`` rows (known person's traits win over an anonymous profile's; among
known profiles the later written wins).

Use in the service (the events writer, on its own cursor inside its transaction)::

    resolver = Resolver(rules)                        # once; graph read on first use
    res = resolver.resolve(con, observations)         # message_id, occurred_at, kind, value (raw)
    follow_merges(con, res)                           # before inserting the batch's rows
    # insert rows using res.customer_of (message_id -> customer_id)
    # on rollback or after the database was reopened: resolver.reset()

Lookups: :func:`resolve_identifier` (any identifier → person id, what every surface uses),
:func:`find_customer` (the graph alone), :func:`identities_of` (paged), :func:`identity_counts`,
:func:`list_merges`.

Customers of files: a ``customers`` file's ids, e-mails and phones enter the same graph at ingest
(kind ``customer_id``, :mod:`patron.people.identity.files`); a person holding a file customer id is named
by it.
"""

from patron.people.identity.follow import (
    FOLLOW_TABLES,
    SOURCE_COLUMNS,
    follow_merges,
    merge_customers,
)
from patron.people.identity.graph import Refusal, conflict, replay
from patron.people.identity.lookup import (
    find_customer,
    identities_of,
    identity_counts,
    list_merges,
    resolve_identifier,
)
from patron.people.identity.normalize import (
    ANON_PREFIX,
    ANONYMOUS_ID,
    CUSTOMER_ID,
    EMAIL,
    PHONE,
    USER_ID,
    is_known,
    normalize_identifier,
    person_id,
)
from patron.people.identity.outcome import MERGE_COLUMNS, Resolution
from patron.people.identity.resolve import (
    Resolver,
    read_observations,
    resolve_all,
    resolve_events,
    unique_kinds,
)
from patron.people.identity.tables import IDENTITY_DDL, IDENTITY_TABLES, ensure_tables

__all__ = [
    "ANONYMOUS_ID", "ANON_PREFIX", "CUSTOMER_ID", "EMAIL", "FOLLOW_TABLES", "IDENTITY_DDL", "IDENTITY_TABLES",
    "MERGE_COLUMNS", "PHONE", "SOURCE_COLUMNS", "USER_ID", "Refusal", "Resolution", "Resolver",
    "conflict", "ensure_tables", "find_customer", "follow_merges", "identities_of", "identity_counts", "is_known",
    "list_merges", "merge_customers", "normalize_identifier", "person_id", "read_observations",
    "replay", "resolve_all", "resolve_events", "resolve_identifier", "unique_kinds",
]
