"""May this customer be contacted on this channel for this purpose now? The planner's rules for one
customer at one instant, fast enough to call before every send.

:func:`patron.contact.consent.plan` answers the same question for a whole campaign, but costs about 100 ms
for one customer (DataFrame merges, holdout draws, plan bookkeeping). This module applies the same
rules, in the same order of precedence (:data:`patron.contact.consent.REASONS`), with the planner's own SQL
builders -- :func:`~patron.contact.consent.ledger.state_at_sql` (consent ledger),
:func:`~patron.contact.consent.preferences.preferences_at_sql` (preferences) and
:func:`~patron.contact.consent.planner.caps_sql` (rolling caps, counting contacts sent -- a holdout record
is none, :mod:`patron.data.sent_contacts` -- and other campaigns' planned contacts) -- and its quiet-hours arithmetic
(:func:`~patron.contact.consent.quiet.remaining_us`), for a campaign of one customer whose send window is
the single instant ``at``: a time inside quiet hours is a "no" (the planner would delay the send,
but "now" cannot be delayed). A test checks the answer against :func:`patron.contact.consent.plan`.

Rules, first that applies wins: ``unknown_customer``; for a marketing purpose then ``no_consent`` /
``denied`` / ``revoked`` / ``expired``, ``paused``, ``lost`` (status in ``customer_profiles``),
``topic``, ``unknown_time_zone``, ``quiet_hours``, ``cap_reached``. A transactional purpose
(``[contact_policy] transactional_purposes``: receipts, password resets) is blocked only by an
unknown customer. The holdout does not apply (no campaign).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field, field_serializer

from patron.contact.consent.campaign import Campaign, campaign_from_dict
from patron.contact.consent.ledger import state_at_sql
from patron.contact.consent.planner import MONTH_DAYS, WEEK_DAYS, caps_sql
from patron.contact.consent.policy import ContactPolicy
from patron.contact.consent.preferences import preferences_at_sql
from patron.contact.consent.quiet import arc_us, move_out_of_quiet, remaining_us, valid_zone
from patron.data.dialect import DUCKDB
from patron.data.store import table_exists
from patron.people.rights.export import jsonable

CHECK_CAMPAIGN = "contact-check"
"""Name of the one-customer campaign a check stands for (other campaigns' plans count toward caps)."""

ALLOWED = "allowed"
"""The ``reason`` of a yes."""


class ContactDecision(BaseModel):
    """The answer: ``allowed`` and why. ``reason`` is ``allowed`` or the planner's exclusion code
    (unknown_customer, no_consent, denied, revoked, expired, paused, lost, topic,
    unknown_time_zone, quiet_hours, cap_reached); ``message`` says it in words; ``details`` holds
    the facts behind it. ``at`` is naive UTC, written with a ``Z``."""

    allowed: bool
    reason: str
    message: str
    customer_id: str | None
    channel: str
    purpose: str
    message_class: str
    at: datetime
    details: dict[str, Any] = Field(default_factory=dict)

    @field_serializer("at")
    def _utc(self, value: datetime) -> str:
        return value.isoformat() + "Z"

    @field_serializer("details")
    def _json(self, value: dict[str, Any]) -> Any:
        return jsonable(value)


def _campaign(customer_id: str, channel: str, purpose: str, at: datetime, topic: str | None,
              policy: ContactPolicy, config: Any) -> Campaign:
    klass = "transactional" if purpose in policy.transactional_purposes else "marketing"
    return campaign_from_dict(
        {"name": CHECK_CAMPAIGN, "purpose": purpose, "channel": channel, "class": klass, "target_ids": [customer_id],
         "send_at": at, "topic": topic},
        source="contacts/check", config=config,
    )


def _one(con: Any, sql: str, params: list[Any] | None = None) -> dict[str, Any] | None:
    cur = con.execute(sql, params or [])
    row = cur.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cur.description], row, strict=True))


def points_sql(customer_id: str, at: datetime) -> str:
    """A one-row relation ``(customer_id, as_of)`` as SQL literals (for the planner's builders)."""
    return (f"(SELECT CAST({DUCKDB.literal(customer_id)} AS VARCHAR) AS customer_id, "
            f"TIMESTAMP '{at.isoformat(sep=' ')}' AS as_of)")


def _facts(con: Any, customer_id: str, purpose: str) -> tuple[bool, str | None, bool, bool]:
    """One query: whether the customer is in ``customers`` or ``transactions`` (the planner's
    ``unknown_customer`` rule), their status in ``customer_profiles`` (None when unscored), and
    whether they have any consent record for ``purpose`` and any preference record (the ledger
    queries are skipped when not)."""
    status = ("(SELECT status FROM customer_profiles WHERE customer_id = $1 LIMIT 1)"
              if table_exists(con, "customer_profiles") else "NULL")
    row = con.execute(
        f"""SELECT EXISTS (SELECT 1 FROM customers WHERE customer_id = $1)
                OR EXISTS (SELECT 1 FROM transactions WHERE customer_id = $1), {status},
               EXISTS (SELECT 1 FROM consents WHERE customer_id = $1 AND purpose = $2),
               EXISTS (SELECT 1 FROM preferences WHERE customer_id = $1)""",
        [customer_id, purpose],
    ).fetchall()[0]
    return bool(row[0]), row[1], bool(row[2]), bool(row[3])


Facts = tuple[bool, str | None, bool, bool]
"""What :func:`_facts` tells of one customer: known, status, any consent record for the purpose,
any preference record."""


def facts_many(con: Any, customer_ids: list[str], purpose: str, *, marketing: bool = True) -> dict[str, Facts]:
    """:func:`_facts` for many customers in one query (the customers of a batch of decisions:
    :mod:`patron.contact.dialogue`), by customer id. For a transactional purpose
    (``marketing`` False) only whether each is known is read (nothing else decides)."""
    import pyarrow as pa

    if not customer_ids:
        return {}
    _ids = pa.table({"customer_id": pa.array(sorted(set(customer_ids)), pa.string())})
    if not marketing:
        rows = con.execute(
            """SELECT i.customer_id, i.customer_id IN (SELECT customer_id FROM customers SEMI JOIN _ids USING (customer_id))
                   OR i.customer_id IN (SELECT customer_id FROM transactions SEMI JOIN _ids USING (customer_id))
               FROM _ids i""").fetchall()
        return {r[0]: (bool(r[1]), None, False, False) for r in rows}
    status = ("(SELECT any_value(status) AS status, customer_id FROM customer_profiles GROUP BY customer_id)"
              if table_exists(con, "customer_profiles") else "(SELECT NULL::VARCHAR AS status, NULL::VARCHAR AS customer_id)")
    rows = con.execute(
        f"""SELECT i.customer_id,
                   i.customer_id IN (SELECT customer_id FROM customers) OR i.customer_id IN (SELECT customer_id FROM transactions),
                   s.status,
                   i.customer_id IN (SELECT customer_id FROM consents WHERE purpose = $1),
                   i.customer_id IN (SELECT customer_id FROM preferences)
            FROM _ids i LEFT JOIN {status} s ON s.customer_id = i.customer_id""", [purpose]).fetchall()
    return {r[0]: (bool(r[1]), r[2], bool(r[3]), bool(r[4])) for r in rows}


NO_PLANS_SQL = ("SELECT NULL::VARCHAR AS customer_id, NULL::TIMESTAMP AS send_at, NULL::BOOLEAN AS included, "
                "NULL::VARCHAR AS channel, NULL::VARCHAR AS campaign WHERE FALSE")
"""An empty ``contact_plans`` for a database where no campaign was ever planned."""


def _with_cand(sql: str, points: str, *, plans: bool) -> str:
    """``sql`` (which reads the relation ``_cand``, and ``contact_plans``) with ``_cand`` defined as
    ``points`` and, when the database has no ``contact_plans`` table (``plans`` False), an empty one."""
    head = "WITH ev AS ("
    if head not in sql:  # pragma: no cover - guards a change of caps_sql's shape
        raise RuntimeError("caps_sql no longer starts with WITH ev AS: update contact_check._with_cand")
    extra = "" if plans else f"contact_plans AS ({NO_PLANS_SQL}), "
    return sql.replace(head, f"WITH _cand AS (SELECT * FROM {points}), {extra}ev AS (", 1)


def _local(at: datetime, zone: str) -> datetime:
    return at.replace(tzinfo=UTC).astimezone(ZoneInfo(zone))


def _hours(value: float) -> str:
    h = int(value)
    return f"{h:02d}:{round((value - h) * 60):02d}"


def _nan(v: Any) -> float:
    return float("nan") if v is None else float(v)


def check_contact(con: Any, customer_id: str | None, *, channel: str, purpose: str, at: datetime,
                  policy: ContactPolicy, config: Any = None, topic: str | None = None,
                  identifier: str | None = None, facts: Facts | None = None) -> ContactDecision:
    """Decide for ``customer_id`` (None: no customer matched ``identifier``) at the naive-UTC
    instant ``at`` on the open cursor ``con`` (see the module docstring for the rules).
    ``facts``: the customer's :func:`facts_many` row when the caller read them for a batch."""
    camp = _campaign(customer_id or "?", channel, purpose, at, topic, policy, config)
    marketing = camp.message_class == "marketing"

    def answer(reason: str, message: str, **details: Any) -> ContactDecision:
        return ContactDecision(allowed=reason == ALLOWED, reason=reason, message=message, customer_id=customer_id,
                               channel=channel, purpose=purpose, message_class=camp.message_class, at=at, details=details)

    if customer_id is None:
        facts = (False, None, False, False)
    elif facts is None:
        facts = _facts(con, customer_id, purpose)
    known, status, has_consent, has_prefs = facts
    if not known:
        return answer("unknown_customer", f"no customer matches {identifier or customer_id!r}")
    if not marketing:
        return answer(ALLOWED, f"{purpose} is a transactional purpose: no marketing consent, caps or quiet hours apply")

    points = points_sql(customer_id, at)
    consent = _one(con, state_at_sql(points, purpose=purpose, channel=channel)) if has_consent else None
    pref = (_one(con, preferences_at_sql(points, channel=channel)) if has_prefs else None) or {}
    details: dict[str, Any] = {}

    if consent is None:
        return answer("no_consent", f"no {purpose} consent on record for {channel}")
    details["consent"] = {k: consent.get(k) for k in ("status", "occurred_at", "expires_at", "decided_by", "consent_id")}
    if consent["reason"] != "granted":
        when = consent["expires_at"] if consent["reason"] == "expired" else consent["occurred_at"]
        verb = {"denied": "denied", "revoked": "revoked", "expired": "expired"}[consent["reason"]]
        via = "" if consent["decided_by"] == channel else f" (record for channel {consent['decided_by']})"
        return answer(consent["reason"], f"{purpose} consent for {channel} {verb} at {when.isoformat()}Z{via}", **details)

    paused = pref.get("paused_until")
    if paused is not None and paused > at:
        return answer("paused", f"the customer paused contact until {paused.isoformat()}Z", paused_until=paused, **details)

    details["status"] = status
    if status == "lost":
        return answer("lost", "relationship status is lost: lost customers get no marketing contact", **details)

    if topic:
        topics = str(pref.get("topics") or "").strip()
        pattern = r"(?:^|;)\s*" + re.escape(topic.strip()) + r"\s*(?:;|$)"
        if topics and not re.search(pattern, topics, flags=re.IGNORECASE):
            return answer("topic", f"the customer wants only the topics {topics}, not {topic}", **details)

    zone = str(pref.get("time_zone") or "").strip() or policy.time_zone
    details["time_zone"] = zone
    if not valid_zone(zone):
        return answer("unknown_time_zone", f"the customer's time zone {zone!r} is not a known IANA name", **details)
    local = _local(at, zone)
    details["local_time"] = local.replace(tzinfo=None).isoformat()
    tod = np.array([(local.hour * 3600 + local.minute * 60 + local.second) * 1_000_000 + local.microsecond])
    chan = policy.channel(channel)
    arcs = [("policy", chan.quiet_hours_start, chan.quiet_hours_end),
            ("customer", pref.get("quiet_hours_start"), pref.get("quiet_hours_end"))]
    for who, start, end in arcs:
        if start is None or end is None:
            continue
        if remaining_us(tod, arc_us(np.array([_nan(start)])), arc_us(np.array([_nan(end)])))[0] > 0:
            moved, _ = move_out_of_quiet(pd.Series([at]), pd.Series([zone]),
                                         [(np.array([_nan(s)]), np.array([_nan(e)])) for _, s, e in arcs])
            details["quiet_until"] = pd.Timestamp(moved.iloc[0]).to_pydatetime()
            return answer("quiet_hours", f"{local:%H:%M} in {zone} is within the {who}'s quiet hours "
                          f"({_hours(float(start))}-{_hours(float(end))})", **details)

    caps = _one(con, _with_cand(caps_sql(camp, at), points, plans=table_exists(con, "contact_plans"))) or {"week_max": 0, "month_max": 0}
    week_n, month_n = int(caps["week_max"] or 0), int(caps["month_max"] or 0)
    week_cap = float(np.fmin(np.floor(_nan(pref.get("max_per_week"))), np.inf if chan.max_per_week is None else chan.max_per_week))
    month_cap = float(np.fmin(np.floor(_nan(pref.get("max_per_month"))), np.inf if chan.max_per_month is None else chan.max_per_month))
    details["caps"] = {"week": week_n, "week_cap": None if np.isnan(week_cap) or np.isinf(week_cap) else int(week_cap),
                       "month": month_n, "month_cap": None if np.isnan(month_cap) or np.isinf(month_cap) else int(month_cap)}
    if week_n + 1 > week_cap:
        return answer("cap_reached", f"{week_n} {channel} contact(s) in a rolling {WEEK_DAYS} days already reach the cap of "
                      f"{int(week_cap)} a week", **details)
    if month_n + 1 > month_cap:
        return answer("cap_reached", f"{month_n} {channel} contact(s) in a rolling {MONTH_DAYS} days already reach the cap of "
                      f"{int(month_cap)} a month", **details)
    return answer(ALLOWED, f"granted {purpose} consent for {channel}, outside quiet hours, within caps", **details)


def parse_at(value: datetime | None) -> datetime:
    """``value`` as naive UTC (a naive value is UTC); default now."""
    if value is None:
        return datetime.now(UTC).replace(tzinfo=None)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


__all__ = ["ALLOWED", "CHECK_CAMPAIGN", "ContactDecision", "check_contact", "facts_many", "parse_at", "points_sql"]
