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

On a large base the join is avoided where the data allow (:func:`positional_applies`: weekly
scores, no discount, category, margin or sent contact): every buyer's numbers come from one read
of the orders in customer order (:func:`register_positional`,
:mod:`patron.relationship.profile_parts`) and the profiles are one projection over them
(:func:`positional_sql`); the same table as the join of the parts (:func:`register_parts`,
tests/test_profiles_positional.py).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from patron.config import section
from patron.constants import DAYS_PER_WEEK
from patron.data.dialect import DUCKDB
from patron.data.store import connect, reader, served_connection, served_elsewhere, table_exists
from patron.errors import InputError, NoDataError
from patron.relationship.engagement import ENGAGEMENT_PROFILE_COLUMNS, ProfilePiece, profile_piece
from patron.relationship.motivation import (
    MOTIVATION_COLUMNS,
    profile_column,
    profile_motivation_sql,
)
from patron.relationship.profile_fingerprint import (
    clear_fingerprint,
    profiles_fingerprint,
    store_fingerprint,
)
from patron.settings import get_settings
from patron.value.settings import ValueSettings, value_settings

if TYPE_CHECKING:
    from patron.relationship.attributes import ProfileExtras
    from patron.relationship.rfm import RfmRules

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
    **ENGAGEMENT_PROFILE_COLUMNS,
    **MOTIVATION_COLUMNS,
}
"""Columns of ``customer_profiles`` and their SQL types, in order (see docs/segments.md)."""

SETTINGS_TABLE = "customer_profiles_settings"
"""One row: the ``as_of`` of the stored profiles and the value settings (JSON) they were built with."""

_SOURCES: dict[str, tuple[str, tuple[str, ...]]] = {
    "s": ("_p_summary", ("first_purchase", "last_purchase", "n_orders", "total_spend", "frequency", "recency", "T", "monetary_value",
                         "probability_alive", "expected_purchases", "clv", "clv_lower", "clv_upper", "spend_basis")),
    "st": ("_p_status", ("status", "status_reason")),
    "lo": ("_p_loyalty", ("returned", "days_to_second_purchase", "interpurchase_trend", "spend_trend", "discount_order_share",
                         "discount_revenue_share", "discount_dependent", "top_category")),
    "pr": ("_p_profit", ("margin_total", "contact_cost", "clv_net")),
}
"""Alias -> (registered frame, the profile columns it provides). ``_p_summary`` also carries the
scores, the RFM scores and the value tier of each buyer (:func:`register_parts`), so the buyers'
columns need no join but the one on ``customer_id``."""

_COMPUTED: frozenset[str] = frozenset({"_p_status", "_p_loyalty", "_p_profit"})
"""The parts computed into temporary tables before the profiles query, each in its own query (the
engine spills them when it must); a part left out of it is a view inside the profiles query.
With every part a view, the one query held all their hash tables at once and ran out of memory
at 10M customers (DuckDB at 2 GB), even with only loyalty computed first."""

_ALIAS: dict[str, str] = {frame: alias for alias, (frame, _) in _SOURCES.items()}
"""Registered frame -> its alias in :func:`profiles_sql`."""

RANKED: tuple[str, ...] = ("recency_score", "frequency_score", "monetary_score", "value_tier")
"""Columns of ``_p_summary`` that rank the buyers (:func:`patron.relationship.rfm.rfm_arrays`,
:func:`patron.relationship.tiers.tier_indices`); NULL for prospects."""

ConfigArg = str | os.PathLike[str] | dict[str, Any] | None


def profiles_sql(as_of: date, *, prospects: bool, rfm: RfmRules | None = None,
                 engagement: ProfilePiece | None = None, extras: ProfileExtras | None = None,
                 motivation: str | None = None, base: str | None = None) -> str:
    """The SELECT that joins the registered frames (``_p_summary``, with the scores, RFM scores and
    value tiers of the buyers, ``_p_status``, ``_p_loyalty``, ``_p_profit``) and, when
    ``prospects``, the ``customers`` table into the profile rows (in no particular order: readers
    sort), with the ``rfm_score`` text (``rfm``: its separator), the engagement columns of ``engagement``
    (:func:`patron.relationship.engagement.profile_piece`; NULL without it); ``motivation`` is the
    query of :func:`patron.relationship.motivation.motivation_sql` (NULL motivation columns without
    it); ``extras``: the customer attribute and place columns
    (:func:`patron.relationship.attributes.profile_extras`), appended last. ``base``: the query of
    every profile's own columns (:func:`positional_sql`) instead of the join of the parts."""
    from patron.relationship.rfm import RfmRules

    day = f"DATE '{as_of.isoformat()}'"
    people = "SELECT customer_id FROM _p_summary"
    if prospects:
        people += f" UNION SELECT CAST(customer_id AS VARCHAR) FROM customers WHERE first_seen IS NULL OR CAST(first_seen AS DATE) <= {day}"
    piece = engagement or ProfilePiece()
    if piece.people:
        people += f" UNION {piece.people}"
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
    sep = "'-'" if (rfm or RfmRules()).bins >= 10 else "''"
    rfm_score = f" || {sep} || ".join(f"CAST(s.{c} AS VARCHAR)" for c in ("recency_score", "frequency_score", "monetary_score"))
    cols += [f"CAST(s.{c} AS {PROFILE_COLUMNS[c]}) AS {c}" for c in RANKED if c != "value_tier"]
    cols += [f"CAST({rfm_score} AS VARCHAR) AS rfm_score", "CAST(s.value_tier AS VARCHAR) AS value_tier"]
    if base is None:
        base = f"""SELECT p.customer_id, {day} AS as_of, {', '.join(cols)}
    FROM ({people}) AS p
    {' '.join(joins)}"""
    final = ", ".join(
        f"CAST({piece.exprs[c]} AS {t}) AS {DUCKDB.ident(c)}" if c in piece.exprs
        else f"CAST(b.{DUCKDB.ident(c)} AS {t}) AS {DUCKDB.ident(c)}"
        for c, t in PROFILE_COLUMNS.items() if c not in MOTIVATION_COLUMNS
    )
    final += ", " + ", ".join(f"CAST({profile_column(c, 'm')} AS {t}) AS {DUCKDB.ident(c)}" for c, t in MOTIVATION_COLUMNS.items())
    motivation = motivation or f"SELECT CAST(NULL AS VARCHAR) AS customer_id, {', '.join(f'NULL AS {DUCKDB.ident(c)}' for c in MOTIVATION_COLUMNS)}"
    extra_cols, extra_join = "", ""
    if extras is not None:  # customer attributes and place (patron.relationship.attributes)
        extra_cols = "".join(f", x.{DUCKDB.ident(c)}" for c in extras.columns)
        extra_join = f"\nLEFT JOIN ({extras.sql}) AS x ON x.customer_id = b.customer_id"
    return f"""SELECT {final}{extra_cols}
FROM ({base}) AS b
LEFT JOIN ({motivation}) AS m ON m.customer_id = b.customer_id
{piece.join}{extra_join}"""


MEMORY_LIMIT = "2GB"
"""DuckDB's memory limit while the profiles are built (unless ``PATRON_MEMORY_LIMIT`` sets
one): the joins spill to disk beyond it, so that a 10M-customer base stays within 4 GB with the
summary and scores the process holds beside it."""

ProfilesOutput = Literal["pandas", "arrow"] | None
"""What :func:`build_profiles` returns: a DataFrame, an Arrow table, or nothing (``None``: the
stored table only, for a large base)."""


def build_profiles(
    db: str | os.PathLike[str] | None = None,
    *,
    as_of: str | date | datetime | None = None,
    config: ConfigArg = None,
    write: bool = True,
    settings: ValueSettings | None = None,
    output: ProfilesOutput = "pandas",
) -> Any:
    """Build the customer profile table as of ``as_of`` (default: the day of the last purchase).

    Every column is defined in docs/segments.md (:data:`PROFILE_COLUMNS`). The per-customer
    parts come from the modules named in the module docstring; the join, RFM scores and tiers run
    in SQL. With ``write`` (default) the result replaces the table ``customer_profiles`` in ``db``
    (and the settings row of :data:`SETTINGS_TABLE`). ``config`` is the rules file (path or
    parsed dict) whose ``[value]``, ``[rfm]``, ``[tiers]``, ``[status]``, ``[loyalty]`` and
    ``[costs]`` sections apply; ``settings`` replaces its ``[value]`` section.

    Everything runs on one connection to ``db``: the weekly summary is computed once (the fits,
    the scores and the status use it), the models and predictions run vectorised in NumPy, and
    status, loyalty and profitability are SQL over it (:func:`register_parts`), joined in one
    statement; no per-customer Python object is built.

    Returns the profiles, one row per customer (prospects included) sorted by ``customer_id``:
    a DataFrame (``output="pandas"``), a pyarrow Table (``"arrow"``) or ``None`` (``None``: the
    stored table only; read it with :func:`read_profiles` or SQL).
    """
    from patron.relationship.attributes import profile_extras
    from patron.relationship.rfm import RfmRules

    value = settings if settings is not None else value_settings(config)
    rfm = section("rfm", RfmRules, config)
    path = db if db is not None else get_settings().db
    limit = None if served_connection(path) is not None else get_settings().memory_limit or MEMORY_LIMIT
    with connect(db, read_only=not write, memory_limit=limit) as con:
        day = profiles_day(con, db, as_of)
        positional = positional_applies(con, day, value)
        names = (register_positional if positional else register_parts)(con, db, day, config=config, value=value)
        try:
            extras = profile_extras(con, config, reserved=frozenset(PROFILE_COLUMNS) | {"rfm_cell"})
            for name, frame in (extras.frames if extras is not None else {}).items():
                con.register(name, frame)
                names.insert(0, name)
            piece = profile_piece(con, day, config)
            prospects = table_exists(con, "customers")
            base = positional_sql(con, day, config=config, value=value, engagement=piece) if positional else None
            sql = profiles_sql(day, prospects=prospects, rfm=rfm, engagement=piece, extras=extras,
                               motivation=profile_motivation_sql(con, day, config), base=base)
            if write:
                clear_fingerprint(con)  # no fingerprint vouches for profiles half replaced
                con.execute(f"CREATE OR REPLACE TABLE {PROFILE_TABLE} AS {sql}").fetchall()
                con.execute(f"CREATE OR REPLACE TABLE {SETTINGS_TABLE} (as_of DATE, settings VARCHAR)")
                con.execute(f"INSERT INTO {SETTINGS_TABLE} VALUES (?, ?)", [day, settings_json(value)])
                store_fingerprint(con, profiles_fingerprint(con, as_of=day, config=config, settings_json=settings_json(value)), day)
                sql = f"SELECT * FROM {PROFILE_TABLE}"
            sql += " ORDER BY customer_id"  # stored unordered (no sort of every row to write it); read sorted
            result = None if output is None else con.sql(sql).to_arrow_table() if output == "arrow" else con.sql(sql).df()
        finally:
            drop_parts(con, names)
    return result


def profiles_day(con: Any, db: str | os.PathLike[str] | None, as_of: str | date | datetime | None) -> date:
    """``as_of`` as a day, by default the day of the last purchase (as
    :func:`patron.relationship.status.last_purchase_day`), on the open connection ``con``."""
    from patron.dates import default_as_of, parse_day

    if not table_exists(con, "transactions"):
        raise NoDataError(f"database {db} holds no transactions: run patron ingest FILE --kind transactions first")
    return parse_day(as_of) or default_as_of(con, where=str(db or get_settings().db))


def _summary_at(con: Any, day: date, unit: str, *, ordered: bool = True) -> pa.Table | None:
    """The summary (:func:`patron.summary`) of the database open on ``con`` as of ``day`` in
    periods of ``unit``, sorted by ``customer_id`` (in the engine's order without ``ordered``), as
    Arrow; ``None`` when nobody bought by then."""
    from dataclasses import replace

    from patron.value.summary import _auto_buckets, _in_order
    from patron.value.summary_arrays import run_summary
    from patron.value.summary_sql import SummarySpec

    spec = SummarySpec(end=day, unit=unit)
    n = _auto_buckets(con, "transactions")
    parts = [run_summary(con, replace(spec, bucket=(k, n)) if n > 1 else spec) for k in range(n)]
    table = pa.concat_tables(parts) if n > 1 else parts[0]
    if not table.num_rows:
        return None
    return _in_order(con, table, ("customer_id",)) if ordered else table


def _numbers(table: pa.Table, *, ids: bool = False) -> pd.DataFrame:
    """The model inputs of a summary (``frequency, recency, T, monetary_value``) as a DataFrame
    of NumPy columns, without the customer ids unless ``ids`` (the models without covariates need
    none; rows keep the order; covariates are joined on ``customer_id``)."""
    frame = pd.DataFrame({c: table.column(c).to_numpy().astype(float, copy=False)
                          for c in ("frequency", "recency", "T", "monetary_value")})
    if ids:
        frame.insert(0, "customer_id", table.column("customer_id").to_pandas())
    return frame


_REGISTERED: tuple[str, ...] = ("_p_summary", "_p_before")
"""The Arrow tables :func:`register_parts` registers (the other parts are temporary tables)."""

_VIEWS: tuple[str, ...] = ("_p_status", "_p_loyalty", "_p_profit")
"""The temporary tables :func:`register_parts` computes in the engine."""

SCORE_PARTS: tuple[str, ...] = ("probability_alive", "expected_purchases", "clv", "clv_lower", "clv_upper", "spend_basis",
                                "expected_revenue", "discounted_purchases")
"""Columns of the scores (:func:`patron.value.scoring.score`) the profiles read (in ``_p_summary``)."""

_SUMMARY_PARTS: tuple[str, ...] = ("customer_id", "first_purchase", "last_purchase", "n_orders", "total_spend", "frequency", "recency",
                                   "T", "monetary_value")
"""Columns of the weekly summary the profiles read (``_p_summary``)."""


def _aligned_scores(con: Any, weekly: pa.Table, scored_on: pa.Table, customers: pd.DataFrame) -> dict[str, Any]:
    """The :data:`SCORE_PARTS` of ``customers`` (the scores of the rows of ``scored_on``) in the
    rows of ``weekly``: as they are when both summaries hold the same customers in the same order
    (always with weekly scores), else joined on ``customer_id`` (NULL where ``scored_on`` has none)."""
    columns = {c: customers[c] for c in SCORE_PARTS}
    if scored_on is weekly or scored_on.column("customer_id").equals(weekly.column("customer_id")):
        return columns
    con.register("_p_scored", pa.table({"customer_id": scored_on.column("customer_id"), **{c: pa.array(v) for c, v in columns.items()}}))
    con.register("_p_ids", pa.table({"customer_id": weekly.column("customer_id"), "_row": pa.array(np.arange(weekly.num_rows))}))
    try:
        joined = con.sql(f"SELECT {', '.join('s.' + c for c in SCORE_PARTS)} FROM _p_ids AS i LEFT JOIN _p_scored AS s "
                         "ON s.customer_id = i.customer_id ORDER BY i._row").df()
    finally:
        con.unregister("_p_scored")
        con.unregister("_p_ids")
    return {c: joined[c] for c in SCORE_PARTS}


def _column(values: Any) -> pa.Array:
    """A score column as Arrow (NaN -> NULL, as from pandas); text (``spend_basis``: three values)
    dictionary-encoded, so that ten million customers do not hold ten million strings."""
    array = pa.array(values)
    return array.dictionary_encode() if pa.types.is_string(array.type) or pa.types.is_large_string(array.type) else array


def _ranked(weekly: pa.Table, clv: Any, day: date, *, config: ConfigArg) -> dict[str, pa.Array]:
    """The RFM scores and value tier (:data:`RANKED`) of the buyers of ``weekly`` (sorted by
    ``customer_id``) with CLV ``clv`` (float, NaN for none) as of ``day``, in NumPy
    (:func:`patron.relationship.rfm.rfm_arrays`, :func:`patron.relationship.tiers.tier_indices`:
    the definitions of :func:`patron.relationship.rfm.rfm_sql` and
    :func:`patron.relationship.tiers.tiers_sql`, without a SQL sort and join per score)."""
    from patron.relationship.rfm import RfmRules, rfm_arrays
    from patron.relationship.tiers import TierRules, tier_indices

    rfm, tiers = section("rfm", RfmRules, config), section("tiers", TierRules, config)
    last = weekly.column("last_purchase").to_numpy().astype("datetime64[D]")
    days = (np.datetime64(day, "D") - last).astype(np.int64).astype(float)
    num = {c: weekly.column(c).to_numpy().astype(float) for c in ("recency", "n_orders", "total_spend")}
    with ThreadPoolExecutor(max_workers=2) as pool:  # NumPy's sorts release the GIL: the tiers sort beside the RFM ones
        tiered = pool.submit(tier_indices, np.asarray(clv, dtype=float), tiers)
        scores = rfm_arrays(days, num["recency"], num["n_orders"], num["total_spend"], rfm)
        tier = pa.DictionaryArray.from_arrays(pa.array(tiered.result()), pa.array(tiers.names))
    return {**{c: pa.array(v) for c, v in scores.items()}, "value_tier": tier}


def register_parts(con: Any, db: str | os.PathLike[str] | None, day: date, *, config: ConfigArg,
                   value: ValueSettings) -> list[str]:
    """Make the relations :func:`profiles_sql` joins available on ``con`` for the profiles as of
    ``day``; returns their names (for :func:`drop_parts`).

    ``_p_summary`` (the weekly summary, with each buyer's P(purchase) for the status, the scores of
    :func:`patron.value.scoring.score` with ``value``, the RFM scores and the value tier) and
    ``_p_before`` (P(purchase) at the status' lookback day) are Arrow tables; the
    others are temporary tables computed from them and the transactions, each in its own query
    (only the columns the profiles read): ``_p_status``
    (:func:`patron.relationship.status_rules.classify_sql`, the rules of
    :func:`patron.relationship.status.relationship_status` with the same model and numbers),
    ``_p_loyalty`` (:func:`patron.relationship.loyalty.loyalty_sql`) and ``_p_profit``
    (:func:`patron.relationship.profitability.net_profitability_sql`). A new group of
    per-customer columns is one more relation here and one more entry of :data:`_SOURCES`.
    """
    from patron.relationship.loyalty import LoyaltyRules, loyalty_sql
    from patron.relationship.profitability import CostRules, net_profitability_sql
    from patron.relationship.status import HORIZON_WEEKS, prospects_sql, transaction_model
    from patron.relationship.status_rules import classify_sql, status_rules
    from patron.value.scoring import score

    rules = status_rules(config)
    weekly = _summary_at(con, day, "W")  # the weekly summary, computed once: scores and status use it
    if weekly is None:
        raise NoDataError(f"no purchases on or before {day}")
    ids = bool(value.all_covariates)  # covariates are joined to the summary on customer_id
    numbers = _numbers(weekly, ids=ids)
    scored_on = weekly if value.period == "W" else _summary_at(con, day, value.period)
    assert scored_on is not None
    scores = score(numbers if scored_on is weekly else _numbers(scored_on, ids=ids), settings=value, db=db)
    # status reads P(purchase) from the scores' model when it is a weekly model over its own 52 weeks
    same = value.period == "W" and value.horizon == HORIZON_WEEKS and not scores.has_covariates
    model = scores.transaction_model if same else transaction_model("bgnbd", None, numbers)

    def purchase(frame: pd.DataFrame | None) -> pa.Array:
        if frame is None:
            return pa.array([], pa.float64())
        x, tx, T = (frame[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
        return pa.array(np.asarray(model.conditional_probability_of_purchase(rules.horizon_weeks, x, tx, T), dtype=float))

    scored = _aligned_scores(con, weekly, scored_on, scores.customers)
    clv = np.asarray(pd.to_numeric(scored["clv"], errors="coerce"), dtype=float)
    parts = {
        "_p_summary": pa.table({**{c: weekly.column(c) for c in _SUMMARY_PARTS}, "probability_purchase": purchase(numbers),
                                **{c: _column(v) for c, v in scored.items()}, **_ranked(weekly, clv, day, config=config)}),
    }
    del scores, numbers, weekly, scored_on, scored, clv  # only the columns the profiles read stay while the earlier summary runs
    before_day = day - timedelta(days=rules.lookback_days)
    before = _summary_at(con, before_day, "W", ordered=False)  # only joined on customer_id: no sort
    parts["_p_before"] = pa.table({"customer_id": before.column("customer_id") if before is not None else pa.array([], pa.string()),
                                   "probability_purchase": purchase(_numbers(before) if before is not None else None)})
    del before
    for name, table in parts.items():
        con.register(name, table)
    status, reason = classify_sql(rules, as_of=day, before=before_day)
    d = DUCKDB.date_literal(day)
    views = {
        "_p_status": f"""SELECT customer_id, {status} AS status, {reason} AS status_reason FROM (
  SELECT s.customer_id, s.frequency, s.probability_purchase, b.probability_purchase AS probability_purchase_before,
         date_diff('day', CAST(s.first_purchase AS DATE), {d}) AS days_since_first_purchase,
         date_diff('day', CAST(s.last_purchase AS DATE), {d}) AS days_since_last_purchase
  FROM _p_summary AS s LEFT JOIN _p_before AS b ON b.customer_id = s.customer_id)""",
        "_p_loyalty": loyalty_sql(day, section("loyalty", LoyaltyRules, config), ordered=False),
        "_p_profit": net_profitability_sql(day, "_p_summary", rules=section("costs", CostRules, config), value=value,
                                           with_contacts=table_exists(con, "contacts")),
    }
    if table_exists(con, "customers"):
        known = DUCKDB.literal(f"known customer with no purchase on or before {day}")
        views["_p_status"] += f"\nUNION ALL SELECT CAST(customer_id AS VARCHAR), 'prospect', {known} FROM ({prospects_sql(day)})"
    for name, sql in views.items():
        # each part is computed on its own, into a temporary table (the engine spills it when it
        # must): one query with every part's hash tables at once ran out of memory at 10M customers
        keep = ", ".join(DUCKDB.ident(c) for c in ("customer_id", *_SOURCES[_ALIAS[name]][1]))
        kind = "TABLE" if name in _COMPUTED else "VIEW"
        con.execute(f"CREATE OR REPLACE TEMP {kind} {name} AS SELECT {keep} FROM ({sql}) AS part")
    return [*parts, *views]


POSITIONAL: tuple[str, ...] = ("_p_buyers",)
"""The Arrow table :func:`register_positional` registers."""


def positional_applies(con: Any, day: date, value: ValueSettings) -> bool:
    """Whether the profiles as of ``day`` are built by position (:func:`register_positional`,
    :func:`positional_sql`): weekly scores, and no order on or before ``day`` with a discount, a
    category or a margin and no contact sent by then (the parts that read those columns are SQL
    joined on ``customer_id``, :func:`register_parts`). ``PATRON_PROFILES_JOINED=1`` forces the
    joined build (kept as the reference the positional one is tested against)."""
    from patron.data.sent_contacts import SENT_CONTACTS

    if os.environ.get("PATRON_PROFILES_JOINED") == "1" or value.period != "W":
        return False
    d = DUCKDB.date_literal(day)
    if con.execute("SELECT 1 FROM transactions WHERE (discount IS NOT NULL OR category IS NOT NULL OR margin IS NOT NULL) "
                   f"AND CAST(occurred_at AS DATE) <= {d} LIMIT 1").fetchall():
        return False
    if table_exists(con, "contacts") and con.execute(
            f"SELECT 1 FROM {SENT_CONTACTS} AS c WHERE CAST(occurred_at AS DATE) <= {d} LIMIT 1").fetchall():
        return False
    return True


def register_positional(con: Any, db: str | os.PathLike[str] | None, day: date, *, config: ConfigArg,
                        value: ValueSettings) -> list[str]:
    """Register ``_p_buyers``: one row per buyer as of ``day``, sorted by ``customer_id``, with
    every number the buyers' profile columns are computed from (:func:`positional_sql`): the
    weekly summary, P(purchase) now and at the status' lookback day (NULL for who had not bought
    by then), the scores (:func:`patron.value.scoring.score` with ``value``), RFM scores and value
    tier, days since the first and last purchase, the loyalty columns
    (:func:`patron.relationship.profile_parts.loyalty_arrays`, trends as codes of
    :func:`patron.relationship.profile_parts.trend_codes`) and the margin columns of
    profitability. One read of the orders serves them all (:mod:`patron.relationship.profile_parts`);
    the columns are NumPy arrays until the table is made, each reordered and released in turn, so
    that a large base holds one copy. Returns the registered names (for :func:`drop_parts`). For
    :func:`positional_applies` data only (weekly scores; no discount, category, margin or contact)."""
    from dataclasses import replace

    from patron.data.arrow_numpy import from_numpy, to_numpy
    from patron.relationship.loyalty import LoyaltyRules
    from patron.relationship.profile_parts import (
        INTERPURCHASE_TRENDS,
        SPEND_TRENDS,
        flat_orders,
        loyalty_arrays,
        margin_arrays,
        release_memory,
        trend_codes,
    )
    from patron.relationship.profitability import CostRules
    from patron.relationship.status import HORIZON_WEEKS, transaction_model
    from patron.relationship.status_rules import status_rules
    from patron.value.scoring import score
    from patron.value.summary import _auto_buckets
    from patron.value.summary_arrays import end_micros, finish_summary, first_purchase_micros
    from patron.value.summary_sql import SummarySpec, order_lists_sql

    rules = status_rules(config)
    costs = section("costs", CostRules, config)
    loyal = section("loyalty", LoyaltyRules, config)
    before_day = day - timedelta(days=rules.lookback_days)
    spec = SummarySpec(end=day, unit="W")
    buckets = _auto_buckets(con, "transactions")
    numeric = ("frequency", "recency", "T", "monetary_value", "n_orders", "total_spend", "first_purchase", "last_purchase")
    parts: dict[str, list[Any]] = {}
    for k in range(buckets):
        lists = con.sql(order_lists_sql(replace(spec, bucket=(k, buckets)) if buckets > 1 else spec)).to_arrow_table()
        weekly = finish_summary(lists, spec)
        before = finish_summary(lists, replace(spec, end=before_day))  # the same lists, finished at the lookback day
        first = first_purchase_micros(lists)
        buyer = first <= end_micros(day)  # the rows of weekly among the lists' rows
        earlier = (first <= end_micros(before_day))[buyer]  # the rows of before among weekly's
        lengths, micros, amount = flat_orders(lists)
        del lists, first
        got: dict[str, Any] = {"customer_id": weekly.column("customer_id").combine_chunks()}
        got |= {c: to_numpy(weekly.column(c)) for c in numeric}
        for c in ("frequency", "recency", "T"):  # NaN: no purchase by the lookback day
            column = np.full(weekly.num_rows, np.nan)
            column[earlier] = to_numpy(before.column(c))
            got[f"_before_{c}"] = column
        sums = loyalty_arrays(lengths, micros, amount, day)
        got["_n_purchases"] = sums["n_purchases"][buyer].astype(np.int32)
        got["days_to_second_purchase"] = sums["days_to_second_purchase"][buyer]
        got["_interpurchase"] = trend_codes(sums["n_gaps"], loyal.trend_min_gaps, sums["interpurchase_slope"], sums["mean_gap"],
                                            loyal.steady_relative_slope)[buyer]
        got["_spend"] = trend_codes(sums["n_purchases"], loyal.spend_trend_min_purchases, sums["spend_slope"], sums["mean_value"],
                                    loyal.steady_relative_slope)[buyer]
        del sums
        if costs.default_margin_rate is not None:  # no margin on any order: every order counts at the default rate
            total, revenue = margin_arrays(lengths, amount, float(costs.default_margin_rate))
            got["margin_total"], got["_margin_revenue"] = total[buyer], revenue[buyer]
        del before, weekly, micros, amount, lengths
        for c, v in got.items():
            parts.setdefault(c, []).append(v)
    columns: dict[str, Any] = {c: pa.concat_arrays(v) if c == "customer_id" else np.concatenate(v) for c, v in parts.items()}
    del parts
    release_memory()
    n = len(columns["customer_id"])
    if not n:
        raise NoDataError(f"no purchases on or before {day}")
    # the rows in customer_id order, as the weekly summary has them (RFM ties follow it)
    con.register("_p_ids", pa.table({"customer_id": columns["customer_id"], "_row": from_numpy(np.arange(n, dtype=np.int64))}))
    try:
        order = to_numpy(con.sql("SELECT _row FROM _p_ids ORDER BY customer_id").to_arrow_table().column(0))
    finally:
        con.unregister("_p_ids")
    if not np.array_equal(order, np.arange(n)):
        for c in list(columns):  # one column at a time: one extra column at most
            columns[c] = columns[c].take(from_numpy(order)) if c == "customer_id" else columns[c][order]
    del order
    release_memory()

    numbers = pd.DataFrame({c: columns[c].astype(float, copy=False) for c in ("frequency", "recency", "T", "monetary_value")})
    if value.all_covariates:  # covariates are joined to the summary on customer_id
        numbers.insert(0, "customer_id", columns["customer_id"].to_pandas())
    scores = score(numbers, settings=value, db=db)
    same = value.horizon == HORIZON_WEEKS and not scores.has_covariates
    model = scores.transaction_model if same else transaction_model("bgnbd", None, numbers)

    def purchase(x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
        return np.asarray(model.conditional_probability_of_purchase(rules.horizon_weeks, x, tx, T), dtype=float)

    now = purchase(*(numbers[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T")))
    del numbers
    had = ~np.isnan(columns["_before_frequency"])
    then = np.full(n, np.nan)
    then[had] = purchase(*(columns.pop(f"_before_{c}")[had] for c in ("frequency", "recency", "T")))
    scored = {c: _column(scores.customers[c]) for c in SCORE_PARTS}
    del scores
    clv = to_numpy(scored["clv"]) if scored["clv"].null_count == 0 else np.asarray(scored["clv"].to_numpy(zero_copy_only=False), dtype=float)
    table = pa.table({"last_purchase": from_numpy(columns["last_purchase"], pa.timestamp("us")),
                      **{c: from_numpy(columns[c]) for c in ("recency", "n_orders", "total_spend")}})
    ranked = _ranked(table, clv, day, config=config)
    del table, clv
    dday = (day.toordinal() - date(1970, 1, 1).toordinal())
    micros_per_day = 86_400_000_000
    buyers: dict[str, Any] = {"customer_id": columns.pop("customer_id")}
    for c in _SUMMARY_PARTS[1:]:
        v = columns.pop(c)
        if c in ("first_purchase", "last_purchase"):
            buyers[f"_days_{c[:-9]}"] = from_numpy(dday - np.floor_divide(v, micros_per_day))
            buyers[c] = from_numpy(v, pa.timestamp("us"))
        else:
            buyers[c] = from_numpy(v)
    buyers["probability_purchase"] = from_numpy(now)
    buyers["probability_purchase_before"] = pa.array(then, from_pandas=True)
    buyers |= scored
    buyers |= ranked
    buyers["returned"] = from_numpy(columns.pop("_n_purchases") > 1)
    buyers["days_to_second_purchase"] = pa.array(columns.pop("days_to_second_purchase"), from_pandas=True)
    for c, names in (("interpurchase_trend", INTERPURCHASE_TRENDS), ("spend_trend", SPEND_TRENDS)):
        buyers[c] = pa.DictionaryArray.from_arrays(from_numpy(columns.pop(f"_{c.split('_')[0]}")), pa.array(names))
    for c in ("margin_total", "_margin_revenue"):
        if c in columns:
            buyers[c] = from_numpy(columns.pop(c))
    con.register("_p_buyers", pa.table(buyers))
    return list(POSITIONAL)


def positional_sql(con: Any, day: date, *, config: ConfigArg, value: ValueSettings, engagement: ProfilePiece) -> str:
    """The profiles' own columns (every column of :data:`PROFILE_COLUMNS` but the engagement and
    motivation ones) by position from ``_p_buyers`` (:func:`register_positional`): the status and
    its reason (:func:`patron.relationship.status_rules.classify_sql`), the loyalty trends
    (:func:`patron.relationship.loyalty.loyalty_sql`'s expressions) and the net CLV
    (:func:`patron.relationship.profitability.net_expressions`) as SQL over that one table, no
    join; then the prospects (in ``customers``, known by ``day``, or people with interactions,
    with no purchase by ``day``), when there are any: the rows of :func:`profiles_sql`'s joins."""
    from patron.relationship.profitability import CostRules, net_expressions
    from patron.relationship.rfm import RfmRules
    from patron.relationship.status_rules import classify_sql, status_rules

    rules = status_rules(config)
    costs = section("costs", CostRules, config)
    rfm = section("rfm", RfmRules, config)
    before_day = day - timedelta(days=rules.lookback_days)
    d = DUCKDB.date_literal(day)
    status, reason = classify_sql(rules, as_of=day, before=before_day, q="s.probability_purchase",
                                  qb="s.probability_purchase_before", frequency="s.frequency",
                                  first="s._days_first", last="s._days_last")
    if costs.default_margin_rate is not None:
        margin = "s.margin_total"
        rate = f"coalesce(s.margin_total / NULLIF(s._margin_revenue, 0), {float(costs.default_margin_rate)!r})"
    else:
        margin, rate = "CAST(NULL AS DOUBLE)", "CAST(NULL AS DOUBLE)"
    weeks = f"CAST({DUCKDB.days_between('CAST(s.first_purchase AS DATE)', d)} + 1 AS DOUBLE) / {DAYS_PER_WEEK!r}"
    net = net_expressions(costs, value, f="f", s="s")["clv_net"].replace("f.margin_rate", rate).replace(
        "f.weeks_observed", weeks).replace("f.contact_cost", "0.0")
    exprs = {
        "status": status, "status_reason": reason,
        "discount_order_share": "NULL", "discount_revenue_share": "NULL", "discount_dependent": "NULL", "top_category": "NULL",
        "margin_total": margin, "contact_cost": "0.0", "clv_net": net,
    }
    sep = "'-'" if rfm.bins >= 10 else "''"
    exprs["rfm_score"] = f" || {sep} || ".join(f"CAST(s.{c} AS VARCHAR)" for c in ("recency_score", "frequency_score", "monetary_score"))
    own = [c for c in PROFILE_COLUMNS if c not in ENGAGEMENT_PROFILE_COLUMNS and c not in MOTIVATION_COLUMNS
           and c not in ("customer_id", "as_of")]
    cols = ", ".join(f"CAST({exprs.get(c, 's.' + DUCKDB.ident(c))} AS {PROFILE_COLUMNS[c]}) AS {DUCKDB.ident(c)}" for c in own)
    sql = f"SELECT s.customer_id, {d} AS as_of, {cols}\n    FROM _p_buyers AS s"
    people = []
    if table_exists(con, "customers") and con.execute("SELECT 1 FROM customers LIMIT 1").fetchall():
        people.append(f"SELECT CAST(customer_id AS VARCHAR) FROM customers WHERE first_seen IS NULL OR CAST(first_seen AS DATE) <= {d}")
    if engagement.people and con.execute(f"SELECT 1 FROM ({engagement.people}) AS p LIMIT 1").fetchall():
        people.append(engagement.people)
    if people:  # prospects: as the joins of profiles_sql have them (status prospect; the reason from the customers table)
        from patron.relationship.status import prospects_sql
        known = DUCKDB.literal(f"known customer with no purchase on or before {day}")
        reasons = (f"SELECT CAST(customer_id AS VARCHAR) AS customer_id, {known} AS status_reason FROM ({prospects_sql(day)})"
                   if table_exists(con, "customers") else "SELECT CAST(NULL AS VARCHAR) AS customer_id, CAST(NULL AS VARCHAR) AS status_reason")
        blank = ", ".join(
            "CAST('prospect' AS VARCHAR) AS status" if c == "status" else "CAST(r.status_reason AS VARCHAR) AS status_reason" if c == "status_reason"
            else f"CAST(0.0 AS DOUBLE) AS {c}" if c in ("clv", "clv_lower", "clv_upper")
            else f"CAST(NULL AS {PROFILE_COLUMNS[c]}) AS {DUCKDB.ident(c)}" for c in own)
        sql += f"""
    UNION ALL
    SELECT p.customer_id, {d} AS as_of, {blank}
    FROM (({' UNION '.join(people)}) EXCEPT SELECT customer_id FROM _p_buyers) AS p(customer_id)
    LEFT JOIN ({reasons}) AS r ON r.customer_id = p.customer_id"""
    return sql


def drop_parts(con: Any, names: list[str]) -> None:
    """Remove the relations :func:`register_parts` made."""
    for name in reversed(names):  # the computed tables first, then the frames they read (and any registered extras)
        if name in _VIEWS:
            con.execute(f"DROP {'TABLE' if name in _COMPUTED else 'VIEW'} IF EXISTS {name}")
        else:
            con.unregister(name)


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


def profiles_overview(con: Any) -> dict[str, Any]:
    """What ``patron profiles`` states about the stored ``customer_profiles`` of the database open
    on ``con``, computed in the engine: ``as_of`` (a day, ``None`` when empty), ``customers``,
    ``customer_equity`` (sum of ``clv``, currency, exactly rounded: independent of the order the
    table holds its rows in), and the customers per ``status`` and per ``value_tier`` (prospects
    have none), most customers first."""
    rows = con.execute(f"SELECT min(as_of), count(*) FROM {PROFILE_TABLE}").fetchall()[0]
    clv = con.sql(f"SELECT clv FROM {PROFILE_TABLE}").to_arrow_table().column(0).to_numpy()
    counts = {c: {str(k): int(n) for k, n in con.execute(
        f"SELECT {c}, count(*) AS n FROM {PROFILE_TABLE} WHERE {c} IS NOT NULL GROUP BY 1 ORDER BY n DESC, 1").fetchall()}
        for c in ("status", "value_tier")}
    equity = math.fsum(clv[~np.isnan(clv)].tolist())  # exact: the same whatever order the table holds its rows in
    return {"as_of": rows[0], "customers": int(rows[1]), "customer_equity": equity,
            "statuses": counts["status"], "value_tiers": counts["value_tier"]}


def profiles_file_table(table: pa.Table) -> pa.Table:
    """The profiles as ``patron profiles --out`` writes them (``as_of`` as a timestamp, as the
    files of earlier versions, written through pandas, have it)."""
    i = table.schema.get_field_index("as_of")
    return table if i < 0 else table.set_column(i, "as_of", table.column(i).cast(pa.timestamp("us")))


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
