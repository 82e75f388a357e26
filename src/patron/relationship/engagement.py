"""Engagement from every touchpoint: interactions per customer and week, an engagement score, its
trend, and whether engagement predicts purchases (docs/engagement.md).

**Interactions** are the rows of the contract table ``interactions`` (files: ``patron ingest --kind
interactions``) and the service's stored events that are touchpoints (:func:`events_interactions_sql`:
``page`` -> web ``page_view``, ``screen`` -> app ``screen_view``, track ``Product Viewed``,
``Email Opened``, ``Email Link Clicked``, ``Device Heartbeat``, ``Store Visited``, ``Content Viewed``
(:data:`EVENT_INTERACTIONS`)), read together by :func:`interactions_sql`. Everything below runs in
SQL in the engine; no Python touches a customer.

**Per customer and calendar week** (:func:`weekly_sql`, ISO weeks starting Monday): interactions,
interactions per channel (``web, app, email, device, store, other``), active days (days with at
least one interaction, 0-7), the weekly score ``100 * active_days / 7`` (percent of the week's days
active) and the recency at the week's end (days from the last interaction of the week to its
Sunday). :func:`weekly_kinds_sql` gives the same weeks by channel and kind (long form).

**Per customer as of a day** (:func:`customer_sql`, the ``engagement_*`` profile columns):

* ``engagement_score`` (percent of days active, 0-100): the share of the last ``7 * weeks`` days
  up to and including ``as_of`` (default 12 weeks, 84 days) on which the customer had at least one
  interaction, times 100. Equal to the mean, over those ``weeks`` 7-day blocks, of the block's
  ``100 * active_days / 7``. Every touchpoint counts the same: a day is active or not, so a burst of
  100 page views on one day counts as one active day (no channel can swamp the score).
* ``engagement_trend`` (score points per week): the least-squares slope of the block scores
  against the block number (oldest block 0, the block ending ``as_of`` ``weeks - 1``), in SQL from
  sums (blocks without interactions count as 0).
* ``engagement_trend_label``: ``rising`` when the slope is at least ``+trend_threshold`` (default
  1 point per week, i.e. about 12 points over 12 weeks), ``falling`` when at most
  ``-trend_threshold``, else ``flat``.
* ``engagement_recency_days`` (days): from the last interaction on or before ``as_of`` to ``as_of``.
* ``engagement_active_days_7``, ``_28``, ``_90`` (days): days with an interaction among the last
  7, 28, 90 days up to ``as_of``; ``engagement_interactions_90`` (count) and
  ``engagement_channels_90`` (distinct channels, 0-6) over the last 90 days.
* ``engagement_band``: ``high`` (score at least ``high_score``, default 25: one day in four),
  ``medium`` (at least ``medium_score``, default 10), ``low`` (above 0), ``none`` (0).

Customers who never interacted (on or before ``as_of``) get NULL in every column.

**Does engagement predict purchases?** :func:`engagement_lift` splits time at a calibration end,
fits BG/NBD on the purchases before it, and compares, per engagement band at the calibration end
(quartiles of the score among engaged buyers), the purchases customers actually made in the holdout
with those the model predicted: ``lift = actual / predicted`` with a 95% interval
(:func:`patron.value.intervals.ratio_interval`). A lift above 1 in high bands and below 1 in low
bands means engagement carries information the purchase history does not.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from patron.config import section
from patron.data.dialect import DUCKDB, Dialect
from patron.data.schema import INTERACTION_CHANNELS
from patron.data.store import reader, table_exists
from patron.errors import InputError, NoDataError

ConfigArg = str | os.PathLike[str] | dict[str, Any] | None

INTERACTION_COLUMNS: tuple[str, ...] = ("interaction_id", "customer_id", "occurred_at", "channel", "kind", "object", "value")
"""Columns of the interactions source (the contract table and the events mapped to it)."""

EVENT_INTERACTIONS: dict[str, tuple[str | None, str, str]] = {
    "Product Viewed": (None, "product_view", "coalesce(json_extract_string(payload, '$.properties.product_id'), "
                                             "json_extract_string(payload, '$.properties.sku'))"),
    "Content Viewed": (None, "content_view", "json_extract_string(payload, '$.properties.content_id')"),
    "Email Opened": ("email", "email_open", "_campaign"),
    "Email Link Clicked": ("email", "email_click", "_campaign"),
    "Device Heartbeat": ("device", "heartbeat", "coalesce(json_extract_string(payload, '$.properties.device_id'), "
                                                "json_extract_string(payload, '$.context.device.id'))"),
    "Store Visited": ("store", "store_visit", "json_extract_string(payload, '$.properties.store_id')"),
}
"""Track event name -> (channel, kind, SQL of ``object`` over the event's ``payload``). A channel of
``None`` is ``app`` when the event came from a mobile app (``context.app`` present) and ``web``
otherwise. ``_campaign`` is the e-mail's campaign (``properties.campaign_id``, else
``campaign_name``, else ``context.campaign.name``), as in the ``contacts`` mapping."""

_CAMPAIGN = ("coalesce(json_extract_string(payload, '$.properties.campaign_id'), "
             "json_extract_string(payload, '$.properties.campaign_name'), "
             "json_extract_string(payload, '$.context.campaign.name'))")

ENGAGEMENT_PROFILE_COLUMNS: dict[str, str] = {
    "engagement_score": "DOUBLE", "engagement_trend": "DOUBLE", "engagement_trend_label": "VARCHAR",
    "engagement_band": "VARCHAR", "engagement_recency_days": "INTEGER",
    "engagement_active_days_7": "INTEGER", "engagement_active_days_28": "INTEGER", "engagement_active_days_90": "INTEGER",
    "engagement_interactions_90": "BIGINT", "engagement_channels_90": "INTEGER", "engagement_days_since_purchase": "INTEGER",
}
"""The engagement columns of ``customer_profiles`` (module docstring; docs/segments.md), in order.
``engagement_days_since_purchase``: days from the last purchase to ``as_of`` (NULL: never bought),
so that a rule can say "engaged but not buying" (:data:`ENGAGED_NOT_BUYING`)."""

TREND_LABELS: tuple[str, ...] = ("rising", "flat", "falling")
"""Values of ``engagement_trend_label``."""

BANDS: tuple[str, ...] = ("high", "medium", "low", "none")
"""Values of ``engagement_band``, most engaged first."""

ENGAGED_NOT_BUYING = "engagement_band = 'high' and (engagement_days_since_purchase is null or engagement_days_since_purchase > 90)"
"""The built-in segment ``engaged_not_buying``: active on at least one day in four over the score's
window (band ``high``) and no purchase in the last 90 days, or none ever."""


class EngagementRules(BaseModel):
    """The ``[engagement]`` section of the rules file."""

    model_config = ConfigDict(extra="forbid")

    weeks: int = Field(12, ge=2, le=104, description="7-day blocks of the score and the trend (12: 84 days).")
    trend_threshold: float = Field(1.0, gt=0, description="Slope (score points per week) from which the trend is rising or falling.")
    high_score: float = Field(25.0, gt=0, le=100, description="Score (percent of days active) from which the band is high.")
    medium_score: float = Field(10.0, gt=0, le=100, description="Score from which the band is medium (else low when above 0).")

    @model_validator(mode="after")
    def _ordered(self) -> EngagementRules:
        if self.medium_score > self.high_score:
            raise ValueError("medium_score must not exceed high_score")
        return self


def engagement_rules(config: ConfigArg = None) -> EngagementRules:
    """The ``[engagement]`` section of ``config`` (defaults when absent)."""
    return section("engagement", EngagementRules, config)


# ------------------------------------------------------------------------------------ sources

def _columns(con: Any, table: str) -> set[str]:
    return {d[0] for d in con.execute(f"SELECT * FROM {DUCKDB.ident(table)} LIMIT 0").description}


def events_interactions_sql(*, known_only: bool = False) -> str:
    """The service's stored ``events`` that are touchpoints, as rows of ``interactions`` (DuckDB
    SQL; ``interaction_id`` is the event's ``messageId``). Events of no person, and any whose
    payload is not valid JSON (the service stores none; a hand-edited table might), are left out.
    ``known_only``: only events sent with a ``userId`` (not anonymous visitors)."""
    app = "json_extract(payload, '$.context.app') IS NOT NULL"
    names = ", ".join(DUCKDB.literal(n) for n in EVENT_INTERACTIONS)
    channel = " ".join(
        f"WHEN event = {DUCKDB.literal(n)} THEN {DUCKDB.literal(c) if c else f'CASE WHEN {app} THEN {chr(39)}app{chr(39)} ELSE {chr(39)}web{chr(39)} END'}"
        for n, (c, _, _) in EVENT_INTERACTIONS.items())
    kind = " ".join(f"WHEN event = {DUCKDB.literal(n)} THEN {DUCKDB.literal(k)}" for n, (_, k, _) in EVENT_INTERACTIONS.items())
    obj = " ".join(f"WHEN event = {DUCKDB.literal(n)} THEN {_CAMPAIGN if o == '_campaign' else o}" for n, (_, _, o) in EVENT_INTERACTIONS.items())
    page_obj = "coalesce(json_extract_string(payload, '$.properties.path'), json_extract_string(payload, '$.properties.url'), event)"
    return f"""SELECT message_id AS interaction_id, customer_id, occurred_at,
    CASE WHEN type = 'page' THEN 'web' WHEN type = 'screen' THEN 'app' ELSE CASE {channel} END END AS channel,
    CASE WHEN type = 'page' THEN 'page_view' WHEN type = 'screen' THEN 'screen_view' ELSE CASE {kind} END END AS kind,
    CAST(CASE WHEN type = 'page' THEN {page_obj} WHEN type = 'screen' THEN event ELSE CASE {obj} END END AS VARCHAR) AS object,
    CAST(NULL AS DOUBLE) AS value
FROM events
WHERE customer_id IS NOT NULL AND (type IN ('page', 'screen') OR (type = 'track' AND event IN ({names}))) AND json_valid(payload){" AND user_id IS NOT NULL" if known_only else ""}"""


def interactions_sql(con: Any, *, known_only: bool = False) -> str | None:
    """SQL of every interaction the database open on ``con`` holds: the ``interactions`` table and
    the touchpoints among the service's ``events`` (:func:`events_interactions_sql`, ``known_only``
    as there); ``None`` when it has neither table."""
    cols = ", ".join(INTERACTION_COLUMNS)
    parts = []
    if table_exists(con, "interactions"):
        parts.append(f"SELECT {cols} FROM interactions")
    if table_exists(con, "events") and {"type", "event", "payload", "customer_id"} <= _columns(con, "events"):
        parts.append(events_interactions_sql(known_only=known_only))
    return " UNION ALL ".join(parts) if parts else None


# ------------------------------------------------------------------------------------ weekly

def _bit(dialect: Dialect, k: str) -> str:
    """``1 << k`` (an INTEGER with bit ``k`` set, ``k`` in 0..30)."""
    return f"shiftleft(1, {k})" if dialect.name == "spark" else f"(CAST(1 AS INTEGER) << CAST({k} AS INTEGER))"


def _dbl(value: float) -> str:
    """A DOUBLE literal the same in both engines (Spark reads ``100.0`` as a DECIMAL, and DECIMAL
    arithmetic rounds to 6 places)."""
    return f"CAST({float(value)!r} AS DOUBLE)"


def _channel_index() -> str:
    """The channel's bit number: its place in :data:`INTERACTION_CHANNELS` (others: ``other``'s)."""
    cases = " ".join(f"WHEN '{c}' THEN {i}" for i, c in enumerate(INTERACTION_CHANNELS))
    return f"CASE channel {cases} ELSE {INTERACTION_CHANNELS.index('other')} END"


def _window_filter(day: str, as_of: date | None, start: date | None, dialect: Dialect) -> str:
    """The WHERE condition of interactions with a customer on days ``start`` to ``as_of``
    (inclusive; either open when None), ``day`` being the SQL of the interaction's day."""
    where = ["customer_id IS NOT NULL"]
    if as_of is not None:
        where.append(f"{day} <= {dialect.date_literal(as_of)}")
    if start is not None:
        where.append(f"{day} >= {dialect.date_literal(start)}")
    return " AND ".join(where)


def _rows_sql(source: str, as_of: date | None, dialect: Dialect, start: date | None = None) -> str:
    """The interactions of ``source`` with a customer, up to ``as_of`` and from ``start``, as
    ``customer_id, day, channel, ch`` (the channel's bit number)."""
    day = "CAST(occurred_at AS DATE)"
    where = _window_filter(day, as_of, start, dialect)
    return f"""SELECT CAST(customer_id AS {dialect.type_name("VARCHAR")}) AS customer_id, {day} AS day, channel, {_channel_index()} AS ch
    FROM ({source}) AS src WHERE {where}"""


WEEKLY_COLUMNS: tuple[str, ...] = (
    "customer_id", "week_start", "interactions", *(f"interactions_{c}" for c in INTERACTION_CHANNELS),
    "active_days", "channels", "score", "recency_days",
)
"""Columns of the per-customer-week table (:func:`weekly_sql`)."""


def weekly_sql(source: str, *, as_of: date | None = None, dialect: Dialect = DUCKDB, start: date | None = None) -> str:
    """Per customer and ISO week (``week_start``, a Monday) of the interactions of ``source`` (a
    SELECT with ``customer_id, occurred_at, channel``) up to ``as_of`` (inclusive, all when None):
    ``interactions`` (count), ``interactions_<channel>``, ``active_days`` (0-7), ``channels``
    (distinct channels used, 0-6), ``score`` (``100 * active_days / 7``, percent) and
    ``recency_days`` (days from the week's last interaction to its Sunday, or to ``as_of`` when the
    week holds ``as_of``). Only weeks with an interaction have a row.

    One pass, one ``GROUP BY customer, week``: the active days are the set bits of ``bit_or(1 <<
    day of week)`` and the channels those of ``bit_or(1 << channel)``, so no ``DISTINCT`` is
    needed (what keeps 50M interactions within seconds and a few GB)."""
    week = dialect.period_start("r.day", "W")
    sums = ", ".join(f"count_if(w.ch = {i}) AS interactions_{c}" for i, c in enumerate(INTERACTION_CHANNELS))
    end = "date_add(w.week_start, 6)"
    if as_of is not None:
        end = f"CASE WHEN date_add(w.week_start, 6) > {dialect.date_literal(as_of)} THEN {dialect.date_literal(as_of)} ELSE date_add(w.week_start, 6) END"
    dow = dialect.days_between("w.week_start", "w.day")
    return f"""SELECT w.customer_id, w.week_start, count(*) AS interactions, {sums},
    CAST(bit_count(bit_or({_bit(dialect, dow)})) AS INTEGER) AS active_days,
    CAST(bit_count(bit_or({_bit(dialect, 'w.ch')})) AS INTEGER) AS channels,
    {_dbl(100.0)} * bit_count(bit_or({_bit(dialect, dow)})) / {_dbl(7.0)} AS score,
    CAST({dialect.days_between('max(w.day)', end)} AS INTEGER) AS recency_days
FROM (SELECT r.customer_id, r.day, r.ch, {week} AS week_start FROM ({_rows_sql(source, as_of, dialect, start)}) AS r) AS w
GROUP BY w.customer_id, w.week_start"""


def weekly_kinds_sql(source: str, *, as_of: date | None = None, dialect: Dialect = DUCKDB, start: date | None = None) -> str:
    """Per customer, ISO week, channel and kind: ``interactions`` (count) and ``active_days``."""
    day = "CAST(occurred_at AS DATE)"
    where = _window_filter(day, as_of, start, dialect)
    week = dialect.period_start(day, "W")
    return f"""SELECT CAST(customer_id AS VARCHAR) AS customer_id, {week} AS week_start, channel, kind,
    count(*) AS interactions, CAST(count(DISTINCT {day}) AS INTEGER) AS active_days
FROM ({source}) AS src WHERE {where}
GROUP BY 1, 2, 3, 4"""


# ------------------------------------------------------------------------------------ per customer

def customer_sql(source: str, as_of: date, rules: EngagementRules | None = None, *, dialect: Dialect = DUCKDB) -> str:
    """Per customer with an interaction on or before ``as_of``: ``customer_id`` and the
    ``engagement_*`` columns of :data:`ENGAGEMENT_PROFILE_COLUMNS` (module docstring) but
    ``engagement_days_since_purchase``. ``source`` is a SELECT with ``customer_id, occurred_at,
    channel``.

    The trend is the least-squares slope of ``y_b = 100 * active_days_b / 7`` on ``x_b`` over the
    ``N = weeks`` blocks ``b`` (block ``k`` = the days ``as_of - 7k - 6 .. as_of - 7k``; ``x = N - 1
    - k``): ``(N Sxy - Sx Sy) / (N Sxx - Sx^2)`` with ``Sx = N(N-1)/2``, ``Sxx = (N-1)N(2N-1)/6``;
    blocks without interactions add 0 to ``Sxy`` and ``Sy``, so only active blocks are summed.

    Two passes: the interactions of the last ``max(7N, 91)`` days grouped by customer and block,
    the active days of a block being the set bits of ``bit_or(1 << (age % 7))`` (age: days
    before ``as_of``), then by customer; and every interaction up to ``as_of`` grouped by customer
    for the recency (customers whose interactions all lie before the window score 0)."""
    r = rules or EngagementRules()
    n = r.weeks
    sx, sxx = n * (n - 1) / 2.0, (n - 1) * n * (2 * n - 1) / 6.0
    lit = dialect.date_literal(as_of)
    span = max(7 * n, 91)
    age = dialect.days_between("r.day", lit)
    blocks = f"""SELECT a.customer_id, a.k, bit_or({_bit(dialect, 'a.age - 7 * a.k')}) AS mask,
        count_if(a.age < 90) AS n90, bit_or(CASE WHEN a.age < 90 THEN {_bit(dialect, 'a.ch')} ELSE 0 END) AS ch90
    FROM (SELECT r.customer_id, r.ch, {age} AS age, CAST(floor({age} / 7) AS INTEGER) AS k
          FROM ({_rows_sql(source, as_of, dialect)}) AS r WHERE {age} < {span}) AS a
    GROUP BY a.customer_id, a.k"""
    days = "bit_count(b.mask)"
    window = f"""SELECT b.customer_id,
        sum(CASE WHEN b.k < {n} THEN {days} ELSE 0 END) AS active_window,
        sum(CASE WHEN b.k < {n} THEN ({n - 1} - b.k) * {days} ELSE 0 END) AS x_active,
        sum(CASE WHEN b.k = 0 THEN {days} ELSE 0 END) AS d7,
        sum(CASE WHEN b.k < 4 THEN {days} ELSE 0 END) AS d28,
        sum(CASE WHEN b.k < 12 THEN {days} WHEN b.k = 12 THEN bit_count(b.mask & 63) ELSE 0 END) AS d90,
        sum(b.n90) AS n90, bit_count(bit_or(b.ch90)) AS ch90
    FROM ({blocks}) AS b GROUP BY b.customer_id"""
    last = f"""SELECT r.customer_id, max(r.day) AS last_day FROM ({_rows_sql(source, as_of, dialect)}) AS r GROUP BY r.customer_id"""
    per_day = 100.0 / 7.0
    sy = f"COALESCE(w.active_window, 0) * {_dbl(per_day)}"
    sxy = f"COALESCE(w.x_active, 0) * {_dbl(per_day)}"
    slope = f"({_dbl(n)} * {sxy} - {_dbl(sx)} * {sy}) / {_dbl(n * sxx - sx * sx)}"
    score = f"{_dbl(100.0)} * COALESCE(w.active_window, 0) / {_dbl(7 * n)}"
    t = float(r.trend_threshold)
    return f"""SELECT e.customer_id, e.engagement_score, e.engagement_trend,
    CASE WHEN e.engagement_trend >= {t} THEN 'rising' WHEN e.engagement_trend <= {-t} THEN 'falling' ELSE 'flat' END AS engagement_trend_label,
    CASE WHEN e.engagement_score >= {float(r.high_score)} THEN 'high' WHEN e.engagement_score >= {float(r.medium_score)} THEN 'medium'
         WHEN e.engagement_score > 0 THEN 'low' ELSE 'none' END AS engagement_band,
    e.engagement_recency_days, e.engagement_active_days_7, e.engagement_active_days_28, e.engagement_active_days_90,
    e.engagement_interactions_90, e.engagement_channels_90
FROM (SELECT l.customer_id, {score} AS engagement_score, {slope} AS engagement_trend,
        CAST({dialect.days_between('l.last_day', lit)} AS INTEGER) AS engagement_recency_days,
        CAST(COALESCE(w.d7, 0) AS INTEGER) AS engagement_active_days_7, CAST(COALESCE(w.d28, 0) AS INTEGER) AS engagement_active_days_28,
        CAST(COALESCE(w.d90, 0) AS INTEGER) AS engagement_active_days_90, CAST(COALESCE(w.n90, 0) AS BIGINT) AS engagement_interactions_90,
        CAST(COALESCE(w.ch90, 0) AS INTEGER) AS engagement_channels_90
      FROM ({last}) AS l LEFT JOIN ({window}) AS w ON w.customer_id = l.customer_id) AS e"""


def _null_exprs() -> dict[str, str]:
    return {c: f"CAST(NULL AS {t})" for c, t in ENGAGEMENT_PROFILE_COLUMNS.items()}


@dataclass(frozen=True)
class ProfilePiece:
    """The engagement part of the ``customer_profiles`` SELECT (:func:`profile_piece`): a ``LEFT
    JOIN`` clause, the SQL expression of each column of :data:`ENGAGEMENT_PROFILE_COLUMNS`, and a
    SELECT of extra people to profile (or ``None``). The default is no join and NULL columns."""

    join: str = ""
    exprs: dict[str, str] = field(default_factory=_null_exprs)
    people: str | None = None


def profile_piece(con: Any, as_of: date, config: ConfigArg = None, *, alias: str = "eg", base: str = "b") -> ProfilePiece:
    """The engagement part of ``customer_profiles`` (:mod:`patron.relationship.profiles`) as of
    ``as_of`` from the interactions of the database open on ``con``: the join (on
    ``{base}.customer_id``) of :func:`customer_sql`, its columns, and everyone with an interaction
    on or before ``as_of`` as people to profile (prospects when they never bought): the people of
    the ``interactions`` table and of events sent with a ``userId`` (an anonymous visitor's page
    views alone do not make a profile; one already profiled gets its columns). Without an
    interactions source every column is NULL but ``engagement_days_since_purchase``, which reads
    ``{base}.last_purchase``."""
    exprs = _null_exprs()
    since = DUCKDB.days_between(f"CAST({base}.last_purchase AS DATE)", DUCKDB.date_literal(as_of))
    exprs["engagement_days_since_purchase"] = since
    source = interactions_sql(con)
    if source is None:
        return ProfilePiece(exprs=exprs)
    for c in ENGAGEMENT_PROFILE_COLUMNS:
        if c != "engagement_days_since_purchase":
            exprs[c] = f"{alias}.{c}"
    join = f"LEFT JOIN ({customer_sql(source, as_of, engagement_rules(config))}) AS {alias} ON {alias}.customer_id = {base}.customer_id"
    known = interactions_sql(con, known_only=True)  # anonymous visitors are not profiled for their page views alone
    people = (f"SELECT DISTINCT CAST(customer_id AS VARCHAR) FROM ({known}) AS src "
              f"WHERE customer_id IS NOT NULL AND CAST(occurred_at AS DATE) <= {DUCKDB.date_literal(as_of)}")
    return ProfilePiece(join=join, exprs=exprs, people=people)


# ------------------------------------------------------------------------------------ Python API

@dataclass(frozen=True)
class Engagement:
    """What :func:`engagement` computed: the per-customer-week table (:data:`WEEKLY_COLUMNS`), the
    per-customer summary (``customer_id`` + the ``engagement_*`` columns but
    ``engagement_days_since_purchase``), optionally the weeks by channel and kind, the day, rules."""

    weekly: Any
    customers: Any
    kinds: Any | None
    as_of: date
    rules: EngagementRules


def last_interaction_day(con: Any) -> date | None:
    """The day of the last interaction in the database open on ``con`` (None without any)."""
    source = interactions_sql(con)
    if source is None:
        return None
    row = con.execute(f"SELECT CAST(max(occurred_at) AS DATE) FROM ({source}) AS src").fetchall()
    return row[0][0] if row and row[0][0] is not None else None


def engagement(db: str | os.PathLike[str] | None = None, *, as_of: Any = None, config: ConfigArg = None,
               since: Any = None, kinds: bool = False, output: str = "pandas") -> Engagement:
    """Engagement per customer-week and per customer as of ``as_of`` (default: the day of the
    last interaction) from the interactions of ``db`` (module docstring). ``since`` limits the
    weekly tables to weeks from that day. ``output``: ``pandas`` or ``arrow``."""

    rules = engagement_rules(config)
    with reader(db) as con:
        source, day, start = _window(con, db, as_of, since)

        def run(sql: str) -> Any:
            rel = con.sql(sql)
            return rel.to_arrow_table() if output == "arrow" else rel.df()

        weekly = run(f"SELECT * FROM ({weekly_sql(source, as_of=day, start=start)}) ORDER BY customer_id, week_start")
        customers = run(f"SELECT * FROM ({customer_sql(source, day, rules)}) ORDER BY customer_id")
        by_kind = run(f"SELECT * FROM ({weekly_kinds_sql(source, as_of=day, start=start)}) ORDER BY 1, 2, 3, 4") if kinds else None
    return Engagement(weekly=weekly, customers=customers, kinds=by_kind, as_of=day, rules=rules)


def _copy(con: Any, sql: str, path: str | os.PathLike[str], text_columns: tuple[str, ...], csv_safe_cells: bool | None) -> int:
    """Write the rows of ``sql`` to ``path`` streamed by the engine (Parquet, CSV with a header and
    formula-guarded text, or Arrow IPC for ``.arrow``/``.feather``/``.ipc``); returns the rows."""
    from pathlib import Path

    from patron.data.outputs import atomic_output, guard_formulas_sql
    from patron.scope import csv_safe

    out = Path(path)
    suffix = out.suffix.lower()
    with atomic_output(out) as target:
        if suffix in (".arrow", ".feather", ".ipc"):
            import pyarrow as pa

            rows = 0
            batches = con.sql(sql).to_arrow_reader(1 << 17)
            with pa.OSFile(str(target), "wb") as sink, pa.ipc.new_file(sink, batches.schema) as writer:
                for batch in batches:
                    writer.write_batch(batch)
                    rows += batch.num_rows
            return rows
        if suffix in (".parquet", ".pq"):
            options = "FORMAT parquet"
        else:
            options = "FORMAT csv, HEADER true"
            if csv_safe(csv_safe_cells):
                cols = [d[0] for d in con.sql(f"SELECT * FROM ({sql}) LIMIT 0").description]
                shown = ", ".join(f"{guard_formulas_sql(DUCKDB.ident(c))} AS {DUCKDB.ident(c)}" if c in text_columns else DUCKDB.ident(c)
                                  for c in cols)
                sql = f"SELECT {shown} FROM ({sql})"
        row = con.execute(f"COPY ({sql}) TO {DUCKDB.literal(str(target))} ({options})").fetchone()
        return int(row[0]) if row else 0


def write_engagement(db: str | os.PathLike[str] | None = None, *, out: str | os.PathLike[str] | None = None,
                     customers_out: str | os.PathLike[str] | None = None, kinds_out: str | os.PathLike[str] | None = None,
                     as_of: Any = None, since: Any = None, config: ConfigArg = None, csv_safe_cells: bool | None = None,
                     memory_limit: str | None = None, threads: int | None = None) -> dict[str, Any]:
    """Write the per-customer-week table (``out``), the per-customer engagement (``customers_out``)
    and the weeks by channel and kind (``kinds_out``) of :func:`engagement` straight from the
    engine to files (``COPY``: nothing passes through Python, so 50M interactions fit in a few GB;
    ``memory_limit``/``threads`` bound DuckDB). Returns ``as_of`` and the rows written per output,
    plus ``customers`` (with an interaction) and counts per trend label and band."""

    rules = engagement_rules(config)
    with reader(db, memory_limit=memory_limit, threads=threads) as con:
        source, day, start = _window(con, db, as_of, since)
        result: dict[str, Any] = {"as_of": day}
        weekly = weekly_sql(source, as_of=day, start=start)  # unordered: sorting 25M rows would cost more than the summary
        cust_sql = customer_sql(source, day, rules)
        if out is not None:
            result["weekly_rows"] = _copy(con, weekly, out, ("customer_id",), csv_safe_cells)
        if kinds_out is not None:
            kinds = weekly_kinds_sql(source, as_of=day, start=start)
            result["kinds_rows"] = _copy(con, kinds, kinds_out, ("customer_id", "channel", "kind"), csv_safe_cells)
        con.execute(f"CREATE TEMP TABLE _engagement_customers AS {cust_sql}")
        try:
            if customers_out is not None:
                _copy(con, "SELECT * FROM _engagement_customers ORDER BY customer_id", customers_out, ("customer_id",), csv_safe_cells)
            counts = con.execute("""SELECT count(*), avg(engagement_score),
                count(*) FILTER (WHERE engagement_trend_label = 'rising'), count(*) FILTER (WHERE engagement_trend_label = 'flat'),
                count(*) FILTER (WHERE engagement_trend_label = 'falling'),
                count(*) FILTER (WHERE engagement_band = 'high'), count(*) FILTER (WHERE engagement_band = 'medium'),
                count(*) FILTER (WHERE engagement_band = 'low'), count(*) FILTER (WHERE engagement_band = 'none')
                FROM _engagement_customers""").fetchone()
        finally:
            con.execute("DROP TABLE IF EXISTS _engagement_customers")
    assert counts is not None
    result["customers"] = int(counts[0])
    result["mean_score"] = float(counts[1]) if counts[1] is not None else None
    result["trend"] = dict(zip(("rising", "flat", "falling"), (int(v) for v in counts[2:5]), strict=True))
    result["bands"] = dict(zip(BANDS, (int(v) for v in counts[5:9]), strict=True))
    result["rules"] = rules
    return result


@dataclass(frozen=True)
class EngagementOverTime:
    """Weekly engagement series, aggregated in SQL (no customer's own rows):

    ``by_channel``: ``week_start, channel, interactions, active_customers`` (customers with an
    interaction on that channel in the week). ``by_segment``: ``week_start, segment, members``
    (customers of the segment in ``customer_profiles``), ``active_customers``, ``mean_score``
    (percent of days active, averaged over every member, inactive ones counting 0) and
    ``interactions``. ``segment_column``: the profile column the segments are (``None`` without
    profiles: one segment ``all``)."""

    by_channel: pd.DataFrame
    by_segment: pd.DataFrame
    segment_column: str | None
    as_of: date


def engagement_over_time(db: str | os.PathLike[str] | None = None, *, as_of: Any = None, weeks: int = 52,
                         by: str = "status") -> EngagementOverTime | None:
    """The last ``weeks`` complete ISO weeks up to ``as_of`` (default: the last interaction) by channel and
    by the segment of profile column ``by`` (default ``status``; the stored ``customer_profiles``,
    whatever their date; without them one segment ``all`` of every customer with an interaction).
    ``None`` without interactions. The per-customer-week rows stay in the engine."""
    from patron.dates import parse_day

    with reader(db) as con:
        source = interactions_sql(con)
        day = parse_day(as_of) or (last_interaction_day(con) if source else None)
        if source is None or day is None:
            return None
        day -= timedelta(days=day.isoweekday() % 7)  # the last complete ISO week: a partial week would dip
        start = day - timedelta(days=7 * weeks - 1)
        weekly = weekly_sql(source, as_of=day, start=start)
        counts = " UNION ALL ".join(
            f"SELECT w.week_start, {DUCKDB.literal(c)} AS channel, sum(w.{DUCKDB.ident('interactions_' + c)}) AS interactions, "
            f"count(*) FILTER (WHERE w.{DUCKDB.ident('interactions_' + c)} > 0) AS active_customers FROM _w AS w GROUP BY w.week_start"
            for c in INTERACTION_CHANNELS)
        profiles = table_exists(con, "customer_profiles") and by in _columns(con, "customer_profiles")
        column = by if profiles else None
        if profiles:
            col = DUCKDB.ident(by)
            seg = f"COALESCE(CAST(p.{col} AS VARCHAR), 'unknown')"
            members = f"SELECT {seg} AS segment, count(*) AS members FROM customer_profiles AS p GROUP BY 1"
            joined = f"SELECT w.*, {seg} AS segment FROM _w AS w JOIN customer_profiles AS p ON p.customer_id = w.customer_id"
        else:
            members = "SELECT 'all' AS segment, count(DISTINCT customer_id) AS members FROM _w"
            joined = "SELECT w.*, 'all' AS segment FROM _w AS w"
        con.execute(f"CREATE OR REPLACE TEMP TABLE _w AS {weekly}")
        try:
            by_channel = con.sql(f"SELECT * FROM ({counts}) WHERE interactions > 0 ORDER BY week_start, channel").df()
            by_segment = con.sql(f"""SELECT j.week_start, j.segment, m.members, count(*) AS active_customers,
                    sum(j.score) / m.members AS mean_score, sum(j.interactions) AS interactions
                FROM ({joined}) AS j JOIN ({members}) AS m ON m.segment = j.segment
                GROUP BY j.week_start, j.segment, m.members ORDER BY j.week_start, j.segment""").df()
        finally:
            con.execute("DROP TABLE IF EXISTS _w")
    return EngagementOverTime(by_channel=by_channel, by_segment=by_segment, segment_column=column, as_of=day)


# ------------------------------------------------------------------------------------ lift

@dataclass(frozen=True)
class EngagementLift:
    """Holdout purchases vs the BG/NBD prediction per engagement band (:func:`engagement_lift`).

    ``bands``: one row per band, lowest first: ``band`` (``none``, ``q1`` .. ``q4``: quartiles of
    the score among buyers with any engagement), ``customers``, ``score_min``, ``score_max``
    (percent), ``actual`` (holdout purchases), ``predicted`` (BG/NBD expectation over the holdout),
    ``lift`` (actual / predicted) and ``lift_lower``, ``lift_upper`` (95% interval)."""

    bands: pd.DataFrame
    calibration_end: date
    holdout_end: date
    holdout_weeks: int


def engagement_lift(db: str | os.PathLike[str] | None = None, *, calibration_end: Any = None, holdout_end: Any = None,
                    holdout_weeks: int = 26, config: ConfigArg = None, level: float = 0.95) -> EngagementLift:
    """Whether engagement predicts purchases beyond BG/NBD: the holdout lift by engagement band.

    Time splits at ``calibration_end`` (default ``holdout_end`` minus ``holdout_weeks`` weeks;
    ``holdout_end`` defaults to the day of the last purchase). BG/NBD is fitted on the weekly
    summary of purchases up to ``calibration_end``; the engagement score is taken as of
    ``calibration_end`` (the model and the bands see nothing of the holdout). Customers who bought
    before ``calibration_end`` are banded: ``none`` (no interaction in the score's window) and the
    quartiles ``q1`` .. ``q4`` of the score among the others. Per band, actual holdout purchases
    (the summary's ``frequency_holdout``: repeat purchase days) are compared with the model's
    expected purchases over the holdout's length: ``lift = sum(actual) / sum(predicted)``, with the
    interval of :func:`patron.value.intervals.ratio_interval` (customers as the sampling unit)."""
    from patron.dates import parse_day
    from patron.relationship.status import last_purchase_day
    from patron.value.intervals import ratio_interval
    from patron.value.scoring import fit_model
    from patron.value.summary import summary

    rules = engagement_rules(config)
    end = parse_day(holdout_end, "holdout_end") or last_purchase_day(db)
    cal = parse_day(calibration_end, "calibration_end") or end - timedelta(weeks=holdout_weeks)
    if cal >= end:
        raise InputError(f"calibration_end {cal} must be before holdout_end {end}", parameters=("calibration_end", "holdout_end"))
    summ = summary(db, period="W", end=cal, holdout_end=end)
    if summ.empty:
        raise NoDataError(f"no customer bought on or before {cal}")
    model = fit_model("bgnbd", summ)
    predicted = np.asarray(model.conditional_expected_purchases(
        summ["duration_holdout"].to_numpy(float), summ["frequency"].to_numpy(float), summ["recency"].to_numpy(float),
        summ["T"].to_numpy(float)), dtype=float)
    frame = pd.DataFrame({"customer_id": summ["customer_id"].astype(str), "actual": summ["frequency_holdout"].to_numpy(float),
                          "predicted": predicted})
    with reader(db) as con:
        source = interactions_sql(con)
        if source is None:
            raise NoDataError(f"database {db} has no interactions to band customers by")
        con.register("_lift_frame", frame)
        try:
            sql = f"""WITH e AS ({customer_sql(source, cal, rules)}),
j AS (SELECT f.customer_id, f.actual, f.predicted, COALESCE(e.engagement_score, 0.0) AS score FROM _lift_frame AS f
      LEFT JOIN e ON e.customer_id = f.customer_id),
b AS (SELECT *, CASE WHEN score = 0 THEN 'none' ELSE 'q' || CAST(ntile(4) OVER (PARTITION BY score > 0 ORDER BY score, customer_id) AS VARCHAR) END AS band FROM j)
SELECT band, count(*) AS customers, min(score) AS score_min, max(score) AS score_max,
    sum(actual) AS actual, sum(predicted) AS predicted, sum(actual * actual) AS saa, sum(actual * predicted) AS sap,
    sum(predicted * predicted) AS spp
FROM b GROUP BY band ORDER BY band = 'none' DESC, band"""
            bands = con.sql(sql).df()
        finally:
            con.unregister("_lift_frame")
    lift, lo, hi = ratio_interval(bands["actual"], bands["predicted"], bands["saa"], bands["sap"], bands["spp"], bands["customers"], level=level)
    bands = bands.drop(columns=["saa", "sap", "spp"]).assign(lift=lift, lift_lower=lo, lift_upper=hi)
    bands["customers"] = bands["customers"].astype("int64")
    return EngagementLift(bands=bands.reset_index(drop=True), calibration_end=cal, holdout_end=end, holdout_weeks=round((end - cal).days / 7))


# ------------------------------------------------------------------------------------ simulation

SIMULATED_CHANNEL_MIX: dict[str, float] = {"web": 0.45, "app": 0.25, "email": 0.15, "device": 0.10, "store": 0.05}
"""Share of simulated interactions per channel (:func:`simulate_interactions`)."""

SIMULATED_KINDS: dict[str, tuple[str, ...]] = {
    "web": ("page_view", "product_view", "content_view"), "app": ("screen_view", "product_view"),
    "email": ("email_open", "email_click"), "device": ("heartbeat",), "store": ("store_visit",),
}
"""Kinds of simulated interactions per channel, drawn uniformly."""


def planted_activity(rate: np.ndarray, *, correlated: bool, seed: int, low: float = 0.02, high: float = 0.42) -> np.ndarray:
    """Each customer's daily probability of an active day: ``low + (high - low) * u``, with ``u``
    the customer's rank of ``rate`` (e.g. the BG/NBD purchase rate) among customers scaled to
    (0, 1] when ``correlated`` (more purchases, more engagement: Spearman correlation 1 between
    the two rates), else an independent uniform draw (engagement says nothing of purchases)."""
    rate = np.asarray(rate, dtype=float)
    if correlated:
        u = (np.argsort(np.argsort(rate, kind="stable"), kind="stable") + 1.0) / len(rate)
    else:
        u = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,))).random(len(rate))
    return low + (high - low) * u


def simulate_interactions(customer_ids: Any, daily_probability: Any, *, start: date, days: int, seed: int,
                          extra_per_day: float = 0.5, last_day: Any = None) -> pd.DataFrame:
    """Interactions of the customers ``customer_ids`` from ``start`` for ``days`` days: each day is
    active with the customer's ``daily_probability`` (independently), up to the customer's
    ``last_day`` (dates, NaT for no end; e.g. the day a simulated customer dropped out: a customer
    who left stops interacting; default none), an active day holds ``1 +
    Poisson(extra_per_day)`` interactions at uniform times of the day, each of a channel drawn from
    :data:`SIMULATED_CHANNEL_MIX` and a kind from :data:`SIMULATED_KINDS`. Vectorised (memory about
    ``len(customer_ids) * days`` bytes); same seed, same rows. Columns of the ``interactions``
    contract but ``interaction_id`` and ``value``."""
    ids = np.asarray(customer_ids, dtype=object)
    prob = np.asarray(daily_probability, dtype=float)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2,)))
    active = rng.random((len(ids), days), dtype=np.float32) < prob[:, None].astype(np.float32)
    if last_day is not None:
        offset = (pd.to_datetime(pd.Series(last_day)) - pd.Timestamp(start)).dt.days.to_numpy(dtype=float, na_value=np.inf)
        active &= np.arange(days)[None, :] <= offset[:, None]
    who, day = np.nonzero(active)
    per_day = 1 + rng.poisson(extra_per_day, size=len(who))
    who, day = np.repeat(who, per_day), np.repeat(day, per_day)
    seconds = rng.integers(0, 86_400, size=len(who))
    channels = np.array(list(SIMULATED_CHANNEL_MIX), dtype=object)
    ch = rng.choice(len(channels), size=len(who), p=np.array(list(SIMULATED_CHANNEL_MIX.values())))
    kind = np.empty(len(who), dtype=object)
    for i, c in enumerate(channels):  # one vectorised draw per channel (5 channels), not per row
        rows = np.flatnonzero(ch == i)
        options = np.array(SIMULATED_KINDS[c], dtype=object)
        kind[rows] = options[rng.integers(0, len(options), size=len(rows))]
    base = np.datetime64(start.isoformat(), "s")
    occurred = base + (day.astype("int64") * 86_400 + seconds).astype("timedelta64[s]")
    frame = pd.DataFrame({"customer_id": ids[who], "occurred_at": occurred.astype("datetime64[us]"),
                          "channel": channels[ch], "kind": kind, "object": None})
    return frame.sort_values(["customer_id", "occurred_at"], kind="stable").reset_index(drop=True)


def _window(con: Any, db: Any, as_of: Any, since: Any) -> tuple[str, date, date | None]:
    """The interactions' source SQL, the as-of day (default: the last interaction) and the first
    day (``since``) of an engagement table; one-line errors without interactions or for ``since``
    after ``as_of``."""
    from patron.dates import parse_day

    source = interactions_sql(con)
    day = parse_day(as_of) or last_interaction_day(con)
    if source is None or day is None:
        raise NoDataError(f"database {db} has no interactions: ingest a file with patron ingest --kind interactions, "
                          "or send page, screen or track events to patron serve")
    start = parse_day(since, "since")
    if start is not None and start > day:
        raise InputError(f"since {start} is after as_of {day}", parameters=("since", "as_of"))
    return source, day, start
