"""The contact planner: who a campaign contacts when, and for everyone else the reason why not.

For each targeted customer the planner decides in set-based passes (SQL joins and NumPy, no loop
over customers). A **marketing** campaign excludes, first reason wins:

``unknown_customer``  not in ``customers`` or ``transactions``;
``no_consent`` / ``denied`` / ``revoked`` / ``expired``  no granted consent for the campaign's purpose
    and channel at the customer's send time (ledger rules: :mod:`patron.contact.consent.ledger`);
``paused``  the customer paused contact until after the send time;
``lost``  a status of :data:`patron.relationship.status_rules.NO_MARKETING_STATUSES` (``lost``) in
    ``customer_profiles`` (when that table exists): a chance of buying again within the status
    horizon below ``[status] lost_probability``, checked by ``patron backtest status`` (on CDNOW
    as of 1997-12-31, 7.8% bought within 26 weeks against 22.8% of all buyers);
``topic``  the customer listed wanted topics and the campaign's topic is not among them;
``unknown_time_zone``  the customer's time zone is not a valid IANA name;
``quiet_hours``  the send time falls in quiet hours (policy's or customer's, in the customer's time
    zone) and moving it to the end of the quiet period would pass the campaign's window end;
``cap_reached``  one more contact would exceed the effective weekly (rolling 7 days) or monthly
    (rolling 30 days) cap in some window containing the send time, counting the contacts sent on
    the channel (holdout records are not contacts: :mod:`patron.data.sent_contacts`) and contacts other
    campaigns plan after ``now``;
``holdout``  eligible, but drawn into the campaign's random holdout.

A **transactional** campaign is excluded only by ``unknown_customer`` and ``holdout``: caps, quiet
hours, pauses, topics and status do not block it, and it needs no marketing consent (its purpose
can never be a marketing one: :func:`patron.contact.consent.campaign.check_campaign`).

Holdout draw: ``u = int(md5(f"{seed}:{campaign}:{customer_id}")[:13], 16) / 16**13``; a customer
is in the holdout when ``u < holdout_fraction``. Deterministic, independent of the other rules.
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from patron.contact.consent.campaign import (
    Campaign,
    campaign_from_dict,
    check_campaign,
    load_campaign,
    resolve_target,
    store_time_zone,
)
from patron.contact.consent.ledger import state_at_sql
from patron.contact.consent.policy import ContactPolicy, contact_policy
from patron.contact.consent.preferences import preferences_at_sql
from patron.contact.consent.quiet import move_out_of_quiet, valid_zone
from patron.contact.consent.times import now_utc, to_utc_naive
from patron.data.dialect import DUCKDB
from patron.data.sent_contacts import SENT_CONTACTS
from patron.data.store import connect, table_exists
from patron.errors import InputError, NoDataError

REASONS: tuple[str, ...] = (
    "unknown_customer", "no_consent", "denied", "revoked", "expired", "paused", "lost", "topic",
    "unknown_time_zone", "quiet_hours", "cap_reached", "holdout",
)
"""Exclusion reasons, in order of precedence (the first that applies is reported)."""

INCLUDED = "included"
"""The ``reason`` of a customer who is contacted."""

WEEK_DAYS = 7
"""Length of the weekly cap's rolling window, in days."""
MONTH_DAYS = 30
"""Length of the monthly cap's rolling window, in days."""
HASH_DIGITS = 13
"""Hex digits of the md5 used for the holdout draw (52 bits, exact in a float)."""

PLANS_DDL = """CREATE TABLE IF NOT EXISTS contact_plans (
  plan_id VARCHAR, campaign VARCHAR, channel VARCHAR, message_class VARCHAR, purpose VARCHAR,
  customer_id VARCHAR, send_at TIMESTAMP, included BOOLEAN, reason VARCHAR, rank BIGINT,
  expected_value DOUBLE, in_holdout BOOLEAN, created_at TIMESTAMP
)"""
"""Stored plans: one row per targeted customer; a new plan of a campaign replaces the earlier one."""

PLAN_COLUMNS: tuple[str, ...] = ("customer_id", "send_at", "included", "reason", "rank", "expected_value", "in_holdout")
"""Columns of :attr:`Plan.table`."""


@dataclass(frozen=True)
class Plan:
    """A contact plan: ``table`` has :data:`PLAN_COLUMNS` (``send_at`` naive UTC; ``rank`` 1 = most
    valuable, only for included customers)."""

    plan_id: str
    campaign: Campaign
    table: pd.DataFrame
    value_source: str
    created_at: datetime
    counts: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-ready counts: targeted, included, and excluded by reason."""
        excluded = {r: int(self.counts.get(r, 0)) for r in REASONS if self.counts.get(r, 0)}
        inc = self.table[self.table["included"]]
        return {
            "plan_id": self.plan_id, "campaign": self.campaign.name, "channel": self.campaign.channel,
            "class": self.campaign.message_class, "purpose": self.campaign.purpose,
            "send_at": self.campaign.send_at.isoformat(), "targeted": len(self.table),
            "included": int(self.counts.get(INCLUDED, 0)), "excluded": excluded,
            "value_source": self.value_source,
            "expected_value_included": float(inc["expected_value"].fillna(0).sum()),
        }

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the table as ``.csv`` or ``.parquet`` (send_at in UTC)."""
        import pyarrow as pa

        from patron.data.io import write_table

        p = Path(path)
        if p.suffix.lower() not in (".csv", ".parquet"):
            raise InputError(f"{p}: a plan is written to a .csv or .parquet file")
        frame = self.table.assign(campaign=self.campaign.name, plan_id=self.plan_id)
        return write_table(pa.Table.from_pandas(frame, preserve_index=False), p)


def holdout_draw(seed: int, campaign: str, hashes: pd.Series) -> np.ndarray:
    """Uniform draws in [0, 1) from md5 hex digests (vectorized hex decoding of the first
    :data:`HASH_DIGITS` digits)."""
    if hashes.empty:
        return np.zeros(0)
    raw = np.frombuffer("".join(h[:HASH_DIGITS] for h in hashes).encode("ascii"), dtype=np.uint8)
    nibbles = np.where(raw >= ord("a"), raw - ord("a") + 10, raw - ord("0")).astype(np.int64).reshape(-1, HASH_DIGITS)
    weights = 16 ** np.arange(HASH_DIGITS - 1, -1, -1, dtype=np.int64)
    return (nibbles @ weights) / float(16**HASH_DIGITS)


def _columns(con: Any, table: str) -> set[str]:
    if not table_exists(con, table):
        return set()
    return {r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()}


def _latest_profile(column: str, cols: set[str]) -> str:
    order = "as_of DESC" if "as_of" in cols else "customer_id"
    return (f"SELECT customer_id, {column} FROM (SELECT customer_id, {column}, row_number() OVER "
            f"(PARTITION BY customer_id ORDER BY {order}) AS rn FROM customer_profiles) p WHERE rn = 1")


def _value_sql(con: Any) -> tuple[str, str]:
    """SQL ``(customer_id, v)`` and its source: incremental value, else CLV, else total spend."""
    iv = _columns(con, "incremental_value")
    if {"customer_id", "expected_incremental_value"} <= iv and con.execute("SELECT count(*) FROM incremental_value").fetchall()[0][0]:
        return "SELECT customer_id, max(expected_incremental_value) AS v FROM incremental_value GROUP BY customer_id", "incremental_value"
    prof = _columns(con, "customer_profiles")
    if {"customer_id", "clv"} <= prof:
        return f"SELECT customer_id, clv AS v FROM ({_latest_profile('clv', prof)}) q", "clv"
    return "SELECT customer_id, sum(amount) AS v FROM transactions GROUP BY customer_id", "total_spend"


def _lost_sql(con: Any) -> str:
    from patron.relationship.status_rules import NO_MARKETING_STATUSES

    prof = _columns(con, "customer_profiles")
    if not {"customer_id", "status"} <= prof:
        return "SELECT NULL::VARCHAR AS customer_id WHERE FALSE"
    statuses = ", ".join(DUCKDB.literal(s) for s in NO_MARKETING_STATUSES)
    return f"SELECT customer_id FROM ({_latest_profile('status', prof)}) q WHERE status IN ({statuses})"


def _base_sql(campaign: Campaign, value_sql: str, lost_sql: str) -> str:
    key = DUCKDB.literal(f"{campaign.seed}:{campaign.name}:")
    return f"""
SELECT t.customer_id,
       k.customer_id IS NOT NULL AS known,
       l.customer_id IS NOT NULL AS lost,
       v.v AS expected_value,
       md5({key} || t.customer_id) AS h
FROM _target t
LEFT JOIN (SELECT customer_id FROM customers UNION SELECT customer_id FROM transactions) k ON k.customer_id = t.customer_id
LEFT JOIN ({lost_sql}) l ON l.customer_id = t.customer_id
LEFT JOIN ({value_sql}) v ON v.customer_id = t.customer_id"""


def caps_sql(campaign: Campaign, now: datetime) -> str:
    """SQL over ``_cand(customer_id, as_of)``: the most contacts already in any rolling week and
    any rolling 30 days that contains ``as_of`` (``week_max``, ``month_max``). Windows are
    ``(a - length, a]`` anchored at ``as_of`` and at every existing contact within ``length`` after it.
    Existing contacts are the sent contacts of the channel (:data:`patron.data.sent_contacts.SENT_CONTACTS`:
    a holdout record is no contact) and the included contacts other campaigns plan after ``now``."""
    ch, name, now_sql = DUCKDB.literal(campaign.channel), DUCKDB.literal(campaign.name), f"TIMESTAMP '{now.isoformat(sep=' ')}'"
    return f"""
WITH ev AS (
  SELECT c.customer_id, c.occurred_at AS t FROM {SENT_CONTACTS} c JOIN _cand p ON p.customer_id = c.customer_id
  WHERE lower(c.channel) = {ch}
  UNION ALL
  SELECT c.customer_id, c.send_at AS t FROM contact_plans c JOIN _cand p ON p.customer_id = c.customer_id
  WHERE c.included AND c.channel = {ch} AND c.campaign <> {name} AND c.send_at > {now_sql}
),
anchors AS (
  SELECT customer_id, as_of AS s, as_of AS a FROM _cand
  UNION
  SELECT p.customer_id, p.as_of AS s, e.t AS a FROM _cand p JOIN ev e ON e.customer_id = p.customer_id
  WHERE e.t > p.as_of AND e.t < p.as_of + INTERVAL {MONTH_DAYS} DAY
),
counts AS (
  SELECT a.customer_id, a.a,
         sum(CASE WHEN a.a < a.s + INTERVAL {WEEK_DAYS} DAY AND e.t > a.a - INTERVAL {WEEK_DAYS} DAY THEN 1 ELSE 0 END) AS n_week,
         sum(CASE WHEN e.t IS NOT NULL THEN 1 ELSE 0 END) AS n_month
  FROM anchors a LEFT JOIN ev e ON e.customer_id = a.customer_id AND e.t > a.a - INTERVAL {MONTH_DAYS} DAY AND e.t <= a.a
  GROUP BY a.customer_id, a.a, a.s
)
SELECT customer_id, max(n_week) AS week_max, max(n_month) AS month_max FROM counts GROUP BY customer_id"""


def _resolve(campaign: Campaign | dict[str, Any] | str | os.PathLike[str], config: Any, policy: ContactPolicy) -> Campaign:
    if isinstance(campaign, Campaign):
        check_campaign(campaign, policy)
        return campaign
    if isinstance(campaign, dict):
        return campaign_from_dict(campaign, config=config)
    return load_campaign(campaign, config=config)


def _effective_caps(policy_cap: int | None, pref: pd.Series) -> np.ndarray:
    """min(policy cap, floor(preference cap)); NaN where neither sets one."""
    p = np.floor(pref.to_numpy(dtype=float))
    return np.fmin(p, np.inf if policy_cap is None else float(policy_cap))


def plan(
    db: str | os.PathLike[str] | None,
    campaign: Campaign | dict[str, Any] | str | os.PathLike[str],
    *,
    now: datetime | str | None = None,
    config: Any = None,
    store: bool = True,
) -> Plan:
    """Plan ``campaign`` (a :class:`Campaign`, a dict of its fields, or a campaign file) against
    the database ``db`` and the contact policy of the rules file ``config``.

    ``now`` (default: the current UTC time) decides which planned contacts of other campaigns
    still count toward caps (those sent after ``now``; earlier ones are expected in ``contacts``).
    With ``store`` the plan replaces any earlier plan of the same campaign in ``contact_plans``.
    """
    policy = contact_policy(config)
    camp = _resolve(campaign, config, policy)
    now_dt = to_utc_naive(now, where="now") if now is not None else now_utc()
    ids = resolve_target(db, camp, config=config)
    local_zone = store_time_zone(db, camp) or policy.time_zone  # a local campaign: its store's local time
    if ids.empty:
        raise NoDataError(f"{camp.source}: field target: selects no customers")
    marketing = camp.message_class == "marketing"
    chan = policy.channel(camp.channel)
    send_sql = f"TIMESTAMP '{camp.send_at.isoformat(sep=' ')}'"
    with connect(db) as con:
        con.execute(PLANS_DDL)
        con.register("_target_df", pd.DataFrame({"customer_id": ids.astype(str).to_numpy()}))
        con.execute("CREATE OR REPLACE TEMP TABLE _target AS SELECT DISTINCT CAST(customer_id AS VARCHAR) AS customer_id FROM _target_df")
        value_sql, value_source = _value_sql(con)
        base = con.execute(_base_sql(camp, value_sql, _lost_sql(con)) + " ORDER BY t.customer_id").df()
        con.execute(f"CREATE OR REPLACE TEMP TABLE _ppts AS SELECT customer_id, {send_sql} AS as_of FROM _target")
        prefs = con.execute(preferences_at_sql("_ppts", channel=camp.channel)).df()
        df = base.merge(prefs.drop(columns=["as_of", "channel"]), on="customer_id", how="left")
        n = len(df)
        reason = np.full(n, INCLUDED, dtype=object)

        def exclude(mask: np.ndarray, why: str) -> None:
            reason[(reason == INCLUDED) & mask] = why

        exclude(~df["known"].to_numpy(bool), "unknown_customer")
        send = pd.Series(np.full(n, np.datetime64(camp.send_at, "us")), index=df.index)
        if marketing:
            zones = df["time_zone"].where(df["time_zone"].notna() & (df["time_zone"].astype(str).str.strip() != ""), local_zone).astype(str).str.strip()
            ok_zone = zones.map({z: valid_zone(z) for z in zones.unique()}).to_numpy(bool)
            arcs = [
                (np.full(n, np.nan if chan.quiet_hours_start is None else chan.quiet_hours_start),
                 np.full(n, np.nan if chan.quiet_hours_end is None else chan.quiet_hours_end)),
                (df["quiet_hours_start"].to_numpy(float), df["quiet_hours_end"].to_numpy(float)),
            ]
            moved, all_day = move_out_of_quiet(send, zones.where(ok_zone, "UTC"), arcs)
            send = moved.where(ok_zone, send)
            late = all_day | (send > pd.Timestamp(camp.window_end)).to_numpy()
            con.register("_cand_df", pd.DataFrame({"customer_id": df["customer_id"], "as_of": send.astype("datetime64[us]")}))
            con.execute("CREATE OR REPLACE TEMP TABLE _cand AS SELECT customer_id, CAST(as_of AS TIMESTAMP) AS as_of FROM _cand_df")
            cons = con.execute(state_at_sql("_cand", purpose=camp.purpose, channel=camp.channel)).df()
            caps = con.execute(caps_sql(camp, now_dt)).df()
            cons_reason = df[["customer_id"]].merge(cons[["customer_id", "reason"]], on="customer_id", how="left")["reason"]
            cap_counts = df[["customer_id"]].merge(caps, on="customer_id", how="left").fillna({"week_max": 0, "month_max": 0})
            cons_reason = cons_reason.fillna("no_consent").to_numpy(object)
            for why in ("no_consent", "denied", "revoked", "expired"):
                exclude(cons_reason == why, why)
            paused = pd.to_datetime(df["paused_until"]).to_numpy()
            exclude(~pd.isna(paused) & (paused > send.to_numpy()), "paused")
            exclude(df["lost"].to_numpy(bool), "lost")
            if camp.topic:
                topics = df["topics"].fillna("").astype(str)
                pattern = r"(?:^|;)\s*" + re.escape(camp.topic.strip()) + r"\s*(?:;|$)"
                wanted = (topics.str.strip() == "") | topics.str.contains(pattern, case=False, regex=True)
                exclude(~wanted.to_numpy(bool), "topic")
            exclude(~ok_zone, "unknown_time_zone")
            exclude(late, "quiet_hours")
            week_cap = _effective_caps(chan.max_per_week, df["max_per_week"])
            month_cap = _effective_caps(chan.max_per_month, df["max_per_month"])
            over = (cap_counts["week_max"].to_numpy() + 1 > week_cap) | (cap_counts["month_max"].to_numpy() + 1 > month_cap)
            exclude(over, "cap_reached")
        u = holdout_draw(camp.seed, camp.name, df["h"])
        in_holdout = (reason == INCLUDED) & (u < camp.holdout_fraction)
        exclude(in_holdout, "holdout")
        included = reason == INCLUDED
        final_send = np.where(included | in_holdout, send.to_numpy(), np.datetime64(camp.send_at, "us"))
        table = pd.DataFrame({
            "customer_id": df["customer_id"].astype(str), "send_at": pd.to_datetime(final_send),
            "included": included, "reason": reason.astype(str), "expected_value": df["expected_value"].astype(float),
            "in_holdout": in_holdout,
        })
        order = table[included].sort_values(["expected_value", "customer_id"], ascending=[False, True], na_position="last")
        table["rank"] = pd.Series(np.arange(1, len(order) + 1), index=order.index).reindex(table.index).astype("Int64")
        table = table[list(PLAN_COLUMNS)].sort_values(["included", "rank", "customer_id"], ascending=[False, True, True]).reset_index(drop=True)
        result = Plan(plan_id=uuid.uuid4().hex[:16], campaign=camp, table=table, value_source=value_source,
                      created_at=now_utc(), counts=table["reason"].value_counts().to_dict())
        if store:
            _store(con, result)
    return result


def _store(con: Any, p: Plan) -> None:
    c = p.campaign
    rows = p.table.assign(plan_id=p.plan_id, campaign=c.name, channel=c.channel, message_class=c.message_class,
                          purpose=c.purpose, created_at=p.created_at)
    con.register("_plan_df", rows)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM contact_plans WHERE campaign = ?", [c.name])
        con.execute(
            """INSERT INTO contact_plans SELECT plan_id, campaign, channel, message_class, purpose, customer_id,
            CAST(send_at AS TIMESTAMP), included, reason, CAST(rank AS BIGINT), expected_value, in_holdout,
            CAST(created_at AS TIMESTAMP) FROM _plan_df"""
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
