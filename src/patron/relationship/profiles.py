"""The customer profile table: one row per customer as of a date, everything patron knows.

:func:`build_profiles` gathers the weekly summary (:func:`patron.summary`), lifetime value
(:func:`patron.value.scoring.score` with the ``[value]`` settings, :mod:`patron.value.settings`: by
default BG/NBD + Gamma-Gamma, 52 weeks, 10% a year, margin 1), relationship
status (:func:`patron.relationship.status.relationship_status`), loyalty behaviour
(:func:`patron.relationship.loyalty.loyalty`) and profitability (:func:`patron.relationship.profitability.profitability`),
then joins them, RFM scores (:mod:`patron.relationship.rfm`) and value tiers
(:mod:`patron.relationship.tiers`) in **one SQL statement** in the engine and stores the result as the
table ``customer_profiles`` (:data:`PROFILE_COLUMNS`, replaced on every build). The value settings
it was built with are stored beside it, in ``customer_profiles_settings``
(:func:`read_profile_settings`), so that segments, equity, the report and the dashboard state
them and rebuild the profiles when other settings are asked for.

Prospects (in ``customers``, no purchase on or before ``as_of``) are included with status
``prospect``, NULL purchase columns, and ``clv`` (and its interval) 0.
"""

from __future__ import annotations

import os
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from patron.config import section
from patron.data.dialect import DUCKDB
from patron.data.store import connect, reader, served_elsewhere, table_exists
from patron.errors import InputError, NoDataError
from patron.relationship.motivation import (
    MOTIVATION_COLUMNS,
    profile_column,
    profile_motivation_sql,
)
from patron.value.settings import ValueSettings, value_settings

if TYPE_CHECKING:
    from patron.relationship.rfm import RfmRules
    from patron.relationship.tiers import TierRules

PROFILE_TABLE = "customer_profiles"
"""Name of the stored table."""

PROFILE_COLUMNS: dict[str, str] = {
    "customer_id": "VARCHAR", "as_of": "DATE",
    "first_purchase": "TIMESTAMP", "last_purchase": "TIMESTAMP", "n_orders": "BIGINT", "total_spend": "DOUBLE",
    "frequency": "DOUBLE", "recency": "DOUBLE", "T": "DOUBLE", "monetary_value": "DOUBLE",
    "probability_alive": "DOUBLE", "expected_purchases": "DOUBLE", "clv": "DOUBLE", "clv_lower": "DOUBLE", "clv_upper": "DOUBLE",
    "spend_basis": "VARCHAR", "status": "VARCHAR", "status_reason": "VARCHAR",
    "returned": "BOOLEAN", "days_to_second_purchase": "DOUBLE", "interpurchase_trend": "VARCHAR", "spend_trend": "VARCHAR",
    "discount_order_share": "DOUBLE", "discount_revenue_share": "DOUBLE", "discount_dependent": "BOOLEAN", "top_category": "VARCHAR",
    "margin_total": "DOUBLE", "contact_cost": "DOUBLE", "clv_net": "DOUBLE",
    "recency_score": "INTEGER", "frequency_score": "INTEGER", "monetary_score": "INTEGER", "rfm_score": "VARCHAR", "value_tier": "VARCHAR",
    **MOTIVATION_COLUMNS,
}
"""Columns of ``customer_profiles`` and their SQL types, in order (see docs/segments.md)."""

SETTINGS_TABLE = "customer_profiles_settings"
"""One row: the ``as_of`` of the stored profiles and the value settings (JSON) they were built with."""

_SOURCES: dict[str, tuple[str, tuple[str, ...]]] = {
    "s": ("_p_summary", ("first_purchase", "last_purchase", "n_orders", "total_spend", "frequency", "recency", "T", "monetary_value")),
    "v": ("_p_scores", ("probability_alive", "expected_purchases", "clv", "clv_lower", "clv_upper", "spend_basis")),
    "st": ("_p_status", ("status", "status_reason")),
    "lo": ("_p_loyalty", ("returned", "days_to_second_purchase", "interpurchase_trend", "spend_trend", "discount_order_share",
                         "discount_revenue_share", "discount_dependent", "top_category")),
    "pr": ("_p_profit", ("margin_total", "contact_cost", "clv_net")),
}
"""Alias -> (registered frame, the profile columns it provides)."""

ConfigArg = str | os.PathLike[str] | dict[str, Any] | None


def profiles_sql(as_of: date, *, prospects: bool, rfm: RfmRules | None = None, tiers: TierRules | None = None,
                 motivation: str | None = None) -> str:
    """The SELECT that joins the registered frames (``_p_summary``, ``_p_scores``, ``_p_status``,
    ``_p_loyalty``, ``_p_profit``) and, when ``prospects``, the ``customers`` table into the
    profile rows, with RFM scores and value tiers; ``motivation`` is the query of
    :func:`patron.relationship.motivation.motivation_sql` (NULL motivation columns without it)."""
    from patron.relationship.rfm import rfm_sql
    from patron.relationship.tiers import tiers_sql

    day = f"DATE '{as_of.isoformat()}'"
    people = "SELECT customer_id FROM _p_summary"
    if prospects:
        people += f" UNION SELECT CAST(customer_id AS VARCHAR) FROM customers WHERE first_seen IS NULL OR CAST(first_seen AS DATE) <= {day}"
    cols, joins = [], []
    for alias, (frame, names) in _SOURCES.items():
        joins.append(f"LEFT JOIN {frame} AS {alias} ON {alias}.customer_id = p.customer_id")
        for n in names:
            expr = f"{alias}.{DUCKDB.ident(n)}"
            if n in ("clv", "clv_lower", "clv_upper"):
                expr = f"CASE WHEN s.customer_id IS NULL THEN 0.0 ELSE {expr} END"
            elif n == "status":
                expr = f"COALESCE({expr}, CASE WHEN s.customer_id IS NULL THEN 'prospect' END)"
            cols.append(f"CAST({expr} AS {PROFILE_COLUMNS[n]}) AS {DUCKDB.ident(n)}")
    base = f"""SELECT p.customer_id, {day} AS as_of, {', '.join(cols)}
    FROM ({people}) AS p
    {' '.join(joins)}"""
    final = ", ".join(
        f"CAST(b.{DUCKDB.ident(c)} AS {t}) AS {DUCKDB.ident(c)}" if c not in ("recency_score", "frequency_score", "monetary_score", "rfm_score", "value_tier")
        else f"CAST({'t' if c == 'value_tier' else 'r'}.{DUCKDB.ident(c)} AS {t}) AS {DUCKDB.ident(c)}"
        for c, t in PROFILE_COLUMNS.items() if c not in MOTIVATION_COLUMNS
    )
    final += ", " + ", ".join(f"CAST({profile_column(c, 'm')} AS {t}) AS {DUCKDB.ident(c)}" for c, t in MOTIVATION_COLUMNS.items())
    motivation = motivation or f"SELECT CAST(NULL AS VARCHAR) AS customer_id, {', '.join(f'NULL AS {DUCKDB.ident(c)}' for c in MOTIVATION_COLUMNS)}"
    return f"""WITH base AS ({base})
SELECT {final}
FROM base AS b
LEFT JOIN ({rfm_sql('base', rfm)}) AS r ON r.customer_id = b.customer_id
LEFT JOIN ({tiers_sql('base', tiers)}) AS t ON t.customer_id = b.customer_id
LEFT JOIN ({motivation}) AS m ON m.customer_id = b.customer_id
ORDER BY b.customer_id"""


def build_profiles(
    db: str | os.PathLike[str] | None = None,
    *,
    as_of: str | date | datetime | None = None,
    config: ConfigArg = None,
    write: bool = True,
    settings: ValueSettings | None = None,
) -> pd.DataFrame:
    """Build the customer profile table as of ``as_of`` (default: the day of the last purchase).

    Every column is defined in docs/segments.md (:data:`PROFILE_COLUMNS`). The per-customer
    parts come from the modules named in the module docstring; the join, RFM scores and tiers run
    in SQL. With ``write`` (default) the result replaces the table ``customer_profiles`` in ``db``
    (and the settings row of :data:`SETTINGS_TABLE`). ``config`` is the rules file (path or
    parsed dict) whose ``[value]``, ``[rfm]``, ``[tiers]``, ``[status]``, ``[loyalty]`` and
    ``[costs]`` sections apply; ``settings`` replaces its ``[value]`` section.

    Returns the profiles as a DataFrame, one row per customer (prospects included), sorted by
    ``customer_id``.
    """
    from patron.dates import parse_day
    from patron.relationship.loyalty import loyalty
    from patron.relationship.profitability import profitability
    from patron.relationship.rfm import RfmRules
    from patron.relationship.status import HORIZON_WEEKS, last_purchase_day, relationship_status
    from patron.relationship.tiers import TierRules
    from patron.value.scoring import score
    from patron.value.summary import summary

    value = settings if settings is not None else value_settings(config)
    with reader(db):  # one attachment of db for every read below (the readers they open share it)
        day = parse_day(as_of) or last_purchase_day(db)
        summ = summary(db, period="W", end=day)  # the weekly summary, computed once: scores and status use it
        scores = score(summ if value.period == "W" else summary(db, period=value.period, end=day), settings=value, db=db)
        # status reads P(alive) and expected purchases over its own 52 weeks from a weekly model
        same = value.period == "W" and value.horizon == HORIZON_WEEKS
        status = relationship_status(db, as_of=day, config=config, scores=scores if same else None, weekly_summary=summ)
        loyal = loyalty(db, as_of=day, config=config)
        profit = profitability(db, scores=scores.customers, as_of=day, config=config, settings=value)
    frames = {"_p_summary": summ, "_p_scores": scores.customers, "_p_status": status, "_p_loyalty": loyal, "_p_profit": profit}
    rfm, tiers = section("rfm", RfmRules, config), section("tiers", TierRules, config)
    with connect(db, read_only=not write) as con:
        for name, frame in frames.items():
            frame = frame.copy()
            frame["customer_id"] = frame["customer_id"].astype(str)
            con.register(name, frame)
        sql = profiles_sql(day, prospects=table_exists(con, "customers"), rfm=rfm, tiers=tiers,
                           motivation=profile_motivation_sql(con, day, config))
        if write:
            con.execute(f"CREATE OR REPLACE TABLE {PROFILE_TABLE} AS {sql}").fetchall()
            con.execute(f"CREATE OR REPLACE TABLE {SETTINGS_TABLE} (as_of DATE, settings VARCHAR)")
            con.execute(f"INSERT INTO {SETTINGS_TABLE} VALUES (?, ?)", [day, settings_json(value)])
            result = con.sql(f"SELECT * FROM {PROFILE_TABLE} ORDER BY customer_id").df()
        else:
            result = con.sql(sql).df()
        for name in frames:
            con.unregister(name)
    return result


def served_profiles(db: str | os.PathLike[str] | None, *, as_of: date | None,
                    settings: ValueSettings) -> tuple[pd.DataFrame, date] | None:
    """Beside a running ``patron serve`` of ``db`` (read from its snapshot, nothing can be
    written): the profiles its last refresh stored and their date, when they are as of ``as_of``
    (any date when None) and built with ``settings``, as the dashboard shows them. ``None`` when
    no other process serves ``db``. Other profiles would have to be written: an
    :class:`~patron.errors.InputError` says how to get them."""
    server = served_elsewhere(db)
    if server is None:
        return None
    with reader(db) as con:
        present = table_exists(con, PROFILE_TABLE) and table_exists(con, SETTINGS_TABLE)
        stored = con.execute(f"SELECT as_of, settings FROM {SETTINGS_TABLE} LIMIT 1").fetchall() if present else []
        if stored and (as_of is None or stored[0][0] == as_of) and stored[0][1] == settings_json(settings):
            return con.execute(f"SELECT * FROM {PROFILE_TABLE} ORDER BY customer_id").df(), stored[0][0]
    have = (f"the service's last refresh stored them as of {stored[0][0]} with {stored[0][1]}" if stored
            else "the service has not refreshed them yet")
    want = f"as of {as_of} " if as_of is not None else ""
    raise InputError(f"this needs customer_profiles {want}with the value settings {settings_json(settings)} and {have}; "
                     f"the database is held by patron serve ({server.describe()}): refresh them through it "
                     f"(POST {server.url}/v1/refresh, with ?as_of=), or run with the service's rules file")


def settings_json(settings: ValueSettings) -> str:
    """The settings as stored beside the profiles: the values that were set, as JSON (so a margin
    left at its default and one set to 1 stay apart, see :attr:`ValueSettings.margin_is_set`)."""
    return settings.model_dump_json(exclude_unset=True)


def profile_settings(con: Any) -> ValueSettings | None:
    """The value settings the stored ``customer_profiles`` of the database open on ``con`` were
    built with (``None`` when the profiles were never built, or by a patron that did not store
    them)."""
    if not table_exists(con, SETTINGS_TABLE):
        return None
    row = con.execute(f"SELECT settings FROM {SETTINGS_TABLE} LIMIT 1").fetchall()
    return ValueSettings.model_validate_json(row[0][0]) if row else None


def profile_spend_counts(con: Any) -> dict[str, int]:
    """Customers per spend basis (:data:`patron.value.settings.SPEND_BASES`) in the stored
    ``customer_profiles`` of the database open on ``con`` (all 0 when there are none)."""
    from patron.value.settings import SPEND_BASES

    counts = dict.fromkeys(SPEND_BASES, 0)
    if table_exists(con, PROFILE_TABLE) and "spend_basis" in {d[0] for d in con.execute(f"SELECT * FROM {PROFILE_TABLE} LIMIT 0").description}:
        rows = con.execute(f"SELECT spend_basis, count(*) FROM {PROFILE_TABLE} WHERE spend_basis IS NOT NULL GROUP BY 1").fetchall()
        counts |= {str(b): int(n) for b, n in rows}
    return counts


def read_profile_settings(db: str | os.PathLike[str] | None = None) -> ValueSettings | None:
    """:func:`profile_settings` of the database file ``db``."""
    with reader(db) as con:
        return profile_settings(con)


def read_profiles(db: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """The stored ``customer_profiles`` table (raises :class:`NoDataError` when it was never built:
    run ``patron profiles`` or :func:`build_profiles`)."""
    with reader(db) as con:
        if not table_exists(con, PROFILE_TABLE):
            raise NoDataError(f"database {db} has no {PROFILE_TABLE} table: run patron profiles --db {db} first")
        return con.sql(f"SELECT * FROM {PROFILE_TABLE} ORDER BY customer_id").df()
