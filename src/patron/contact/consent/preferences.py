"""The customer's own contact settings, as of any time.

``preferences`` is a ledger like ``consents``: records are appended, never changed. Each record is
the customer's **complete** settings for its channel at that time (an empty field means "no
preference": the policy applies). For a customer and a specific channel ``c``, as of a time ``T``:

* the candidates are the records for ``c`` and for ``any`` with ``occurred_at <= T``;
* the latest candidate wins as a whole (a later ``any`` record replaces earlier email settings);
* at the same ``occurred_at`` the channel's own record wins over ``any``, then the largest
  ``preference_id``.

A preference can only tighten the contact policy (see :mod:`patron.contact.consent.policy`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from patron.contact.consent.ledger import _channels_sql
from patron.contact.consent.times import now_utc, to_utc_naive
from patron.data.dialect import DUCKDB
from patron.data.store import reader

if TYPE_CHECKING:  # pragma: no cover
    from patron.data.ingest import IngestResult

PREFERENCE_FIELDS: tuple[str, ...] = (
    "max_per_week", "max_per_month", "topics", "quiet_hours_start", "quiet_hours_end", "time_zone",
    "preferred_channel", "paused_until",
)
"""Settings a preference record carries (see ``docs/data-contract.md``)."""


def preferences_at_sql(points: str, *, channel: str | None = None) -> str:
    """SQL for the effective preferences at per-customer times.

    ``points`` is a relation ``(customer_id, as_of)``; the result has one row per point and
    specific channel that some record speaks to: ``customer_id, as_of, channel``, the
    :data:`PREFERENCE_FIELDS`, ``occurred_at, preference_id, decided_by``.
    """
    chan_filter = f"WHERE channel = {DUCKDB.literal(channel)}" if channel is not None else ""
    fields = ", ".join(f"r.{f}" for f in PREFERENCE_FIELDS)
    return f"""
WITH pts AS (SELECT DISTINCT customer_id, as_of FROM {points}),
ch AS (SELECT channel FROM ({_channels_sql()}) c0 {chan_filter}),
cand AS (
  SELECT p.customer_id, p.as_of, ch.channel AS for_channel, r.channel AS decided_by, {fields},
         r.occurred_at, r.preference_id,
         row_number() OVER (
           PARTITION BY p.customer_id, p.as_of, ch.channel
           ORDER BY r.occurred_at DESC, CASE WHEN r.channel = 'any' THEN 1 ELSE 0 END, r.preference_id DESC
         ) AS rn
  FROM pts p
  JOIN preferences r ON r.customer_id = p.customer_id AND r.occurred_at <= p.as_of
  JOIN ch ON r.channel = ch.channel OR r.channel = 'any'
)
SELECT customer_id, as_of, for_channel AS channel, {", ".join(PREFERENCE_FIELDS)}, occurred_at, preference_id, decided_by
FROM cand WHERE rn = 1"""


def effective_preferences(
    db: str | os.PathLike[str] | None = None,
    *,
    as_of: datetime | str | None = None,
    customer_ids: Iterable[str] | None = None,
    channel: str | None = None,
) -> pd.DataFrame:
    """The settings in force as of ``as_of`` (default: now, UTC) for every customer with a
    preference record (or for ``customer_ids``), one row per customer and specific channel."""
    at = to_utc_naive(as_of, where="as_of") if as_of is not None else now_utc()
    with reader(db) as con:  # read-only: answers beside a running service (its snapshot)
        if customer_ids is not None:
            con.register("_ids", pd.DataFrame({"customer_id": [str(c) for c in customer_ids]}))
            source = "(SELECT DISTINCT customer_id FROM _ids)"
        else:
            source = "(SELECT DISTINCT customer_id FROM preferences)"
        con.execute(f"CREATE OR REPLACE TEMP TABLE _ppts AS SELECT customer_id, TIMESTAMP '{at.isoformat(sep=' ')}' AS as_of FROM {source} s")
        df = con.execute(preferences_at_sql("_ppts", channel=channel) + " ORDER BY customer_id, channel").df()
    return df.drop(columns=["as_of"]).reset_index(drop=True)


def record_preferences(
    db: str | os.PathLike[str] | None,
    rows: pd.DataFrame | Iterable[Mapping[str, Any]],
    *,
    now: datetime | None = None,
) -> IngestResult:
    """Append preference records through the validated ingest (kind ``preferences``), as
    :func:`patron.contact.consent.record_consent` does for consents: ``customer_id, occurred_at,
    channel`` and any of :data:`PREFERENCE_FIELDS` (and ``source``). All or nothing: one invalid
    row and nothing is stored (:class:`~patron.errors.InputError` names the row and field)."""
    from patron.data.ingest import ingest

    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    return ingest(frame, kind="preferences", db=db, now=now)
