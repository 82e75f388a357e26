"""The consent ledger: append-only records, and the state they imply as of any time.

Records are only ever appended (:func:`record_consent`, or ``patron ingest FILE --kind consents``);
nothing here updates or deletes a row (erasure of a person is the data-rights module's job).

State rules, for a customer, a purpose and a channel, as of a time ``T``:

1. Only records with ``occurred_at <= T`` count.
2. A record for channel ``any`` applies to every channel. The candidates for channel ``c`` are the
   records for ``c`` and the records for ``any``; the **latest** candidate decides. So a later
   ``any`` revocation overrides an earlier email grant, and a later email grant overrides an earlier
   ``any`` revocation (for email only).
3. Ties at the same ``occurred_at`` go to the most restrictive record: ``revoked`` before ``denied``
   before ``granted``; among grants, the earliest expiry (a grant without expiry last); then the
   largest ``consent_id``. The result is deterministic whatever the storage order.
4. The deciding record grants consent only when its status is ``granted`` and it has not expired
   (``T < expires_at``, or no expiry). ``reason`` says why: ``granted``, ``denied``, ``revoked`` or
   ``expired``. A customer with no candidate record has no row (no consent: not granted).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import pandas as pd

from patron.contact.consent.policy import CHANNELS
from patron.contact.consent.times import now_utc, to_utc_naive
from patron.data.dialect import DUCKDB
from patron.data.ingest import IngestResult, ingest
from patron.data.store import reader, table_exists

STATE_COLUMNS: tuple[str, ...] = (
    "customer_id", "purpose", "channel", "status", "granted", "occurred_at", "expires_at", "reason",
    "consent_id", "decided_by",
)
"""Columns of :func:`consent_state`; ``decided_by`` is the channel of the deciding record."""

SEVERITY_SQL = "CASE r.status WHEN 'revoked' THEN 3 WHEN 'denied' THEN 2 ELSE 1 END"
"""Rank of a status for tie-breaking: the most restrictive first."""


def _channels_sql() -> str:
    return " UNION ALL ".join(f"SELECT {DUCKDB.literal(c)} AS channel" for c in CHANNELS)


def state_at_sql(points: str, *, purpose: str | None = None, channel: str | None = None) -> str:
    """SQL for the consent state at per-customer times.

    ``points`` is a relation with columns ``customer_id`` and ``as_of`` (TIMESTAMP, UTC); the result
    has one row per point, purpose and specific channel that some record speaks to, with the
    columns of :data:`STATE_COLUMNS` plus ``as_of``. ``purpose``/``channel`` (already validated
    identifiers, passed as SQL literals) restrict the output. Plain SQL with window functions.
    """
    where = []
    if purpose is not None:
        where.append(f"r.purpose = {DUCKDB.literal(purpose)}")
    chan_filter = f"WHERE ch.channel = {DUCKDB.literal(channel)}" if channel is not None else ""
    extra = ("AND " + " AND ".join(where)) if where else ""
    return f"""
WITH pts AS (SELECT DISTINCT customer_id, as_of FROM {points}),
ch AS (SELECT channel FROM ({_channels_sql()}) c0),
cand AS (
  SELECT p.customer_id, p.as_of, r.purpose, ch.channel AS for_channel, r.channel AS decided_by,
         r.status, r.occurred_at, r.expires_at, r.consent_id,
         row_number() OVER (
           PARTITION BY p.customer_id, p.as_of, r.purpose, ch.channel
           ORDER BY r.occurred_at DESC, {SEVERITY_SQL} DESC,
                    CASE WHEN r.expires_at IS NULL THEN 1 ELSE 0 END, r.expires_at, r.consent_id DESC
         ) AS rn
  FROM pts p
  JOIN consents r ON r.customer_id = p.customer_id AND r.occurred_at <= p.as_of {extra}
  JOIN (SELECT channel FROM ch {chan_filter}) ch ON r.channel = ch.channel OR r.channel = 'any'
)
SELECT customer_id, as_of, purpose, for_channel AS channel, status,
       (status = 'granted' AND (expires_at IS NULL OR as_of < expires_at)) AS granted,
       occurred_at, expires_at,
       CASE WHEN status <> 'granted' THEN status
            WHEN expires_at IS NOT NULL AND as_of >= expires_at THEN 'expired'
            ELSE 'granted' END AS reason,
       consent_id, decided_by
FROM cand WHERE rn = 1"""


def consent_state(
    db: str | os.PathLike[str] | None = None,
    *,
    as_of: datetime | str | None = None,
    customer_ids: Iterable[str] | None = None,
    purpose: str | None = None,
    channel: str | None = None,
) -> pd.DataFrame:
    """The consent of every customer (or of ``customer_ids``) as of ``as_of`` (default: now, UTC).

    One row per customer, purpose and specific channel (email, sms, push, mail, phone, in_app)
    that a record speaks to; columns :data:`STATE_COLUMNS` (timestamps UTC, ``granted`` bool).
    The rules are in the module docstring.
    """
    at = to_utc_naive(as_of, where="as_of") if as_of is not None else now_utc()
    with reader(db) as con:  # read-only: answers beside a running service (its snapshot)
        if customer_ids is not None:
            ids = pd.DataFrame({"customer_id": [str(c) for c in customer_ids]})
            con.register("_ids", ids)
            source = "(SELECT DISTINCT customer_id FROM _ids)"
        else:
            source = "(SELECT DISTINCT customer_id FROM consents)"
        con.execute(f"CREATE OR REPLACE TEMP TABLE _pts AS SELECT customer_id, TIMESTAMP '{at.isoformat(sep=' ')}' AS as_of FROM {source} s")
        df = con.execute(state_at_sql("_pts", purpose=purpose, channel=channel) + " ORDER BY customer_id, purpose, channel").df()
    df["granted"] = df["granted"].astype(bool)
    return df[list(STATE_COLUMNS)].reset_index(drop=True)


def consent_history(db: str | os.PathLike[str] | None, customer_id: str) -> pd.DataFrame:
    """Every ledger record of ``customer_id``, oldest first (ties: most restrictive first, as in
    the state rules), with all contract columns."""
    with reader(db) as con:
        return con.execute(
            f"""SELECT consent_id, customer_id, purpose, channel, status, occurred_at, expires_at, source,
                   lawful_basis, policy_version, ingest_id
            FROM consents r WHERE customer_id = ?
            ORDER BY occurred_at, {SEVERITY_SQL}, consent_id""",
            [customer_id],
        ).df()


def consent_counts(db: str | os.PathLike[str] | None = None, *, as_of: datetime | str | None = None) -> pd.DataFrame:
    """Customers by purpose and channel as of ``as_of``: ``granted``, ``denied``, ``revoked``,
    ``expired`` (counts of customers whose deciding record says so)."""
    state = consent_state(db, as_of=as_of)
    if state.empty:
        return pd.DataFrame(columns=["purpose", "channel", "granted", "denied", "revoked", "expired"])
    counts = pd.crosstab([state["purpose"], state["channel"]], state["reason"])
    for col in ("granted", "denied", "revoked", "expired"):
        if col not in counts:
            counts[col] = 0
    return counts[["granted", "denied", "revoked", "expired"]].reset_index().rename_axis(None, axis=1)


def record_consent(
    db: str | os.PathLike[str] | None,
    rows: pd.DataFrame | Iterable[Mapping[str, Any]],
    *,
    now: datetime | None = None,
) -> IngestResult:
    """Append consent records through the validated ingest (kind ``consents``).

    ``rows`` holds the contract columns (``customer_id, purpose, channel, status, occurred_at``,
    optional ``source, lawful_basis, policy_version, expires_at, consent_id``). All or nothing: if
    any row is invalid, nothing is stored and :class:`~patron.errors.InputError` names the row and
    field.
    """
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    return ingest(frame, kind="consents", db=db, now=now)


def has_consents(con: Any) -> bool:
    """Whether the connected database has a consents table with at least one record."""
    return table_exists(con, "consents") and con.execute("SELECT count(*) FROM consents").fetchall()[0][0] > 0
