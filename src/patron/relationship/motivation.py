"""Why customers buy: a motivation profile per customer, from behaviour, in one SQL query.

Two motivations the seeds name: customers who come for **discounts** and customers who share the
brand's **values**. Each customer gets two scores on 0-1, a discount score ``D`` and a values
score ``V``, each the mean of the *signals* the data hold for them, and a ``motivation``:
``discount``, ``values``, ``mixed``, ``other`` or ``unknown``. Full definitions, with the reasons
for each threshold, are in docs/motivation.md; in short (all over the ``lookback_days`` before
``as_of``, inclusive of ``as_of``, a DATE):

* **price** ``s``: the share of the customer's orders (``amount >= 0``) with ``discount > 0``,
  among orders whose discount is known (not NULL); a signal from ``min_orders`` such orders,
  weighing in proportion to them up to ``full_orders``. ``motivation_discount_depth``: the mean discount as a share of the list price
  (``discount / (amount + discount)``) over the discounted orders (shown, not scored).
* **response** ``r``: from contacts whose campaign is in the ``campaigns`` table (its ``kind``
  says whether it is a ``discount`` offer). An *exposure* is a (campaign, customer) pair with a
  row of kind ``sent``/``delivered``/``opened``; it is *answered* when the customer buys within
  ``window_days`` after the first such row. Holdout rows (``in_holdout``) make the campaign's
  control rate (share of held-out customers who bought in the same window); the customer's
  *excess response* to an exposure is answered (0/1) minus that rate (0 without a holdout).
  ``motivation_discount_response`` and ``motivation_other_response`` are the mean excess
  responses to discount and to other campaigns; the signal ``r`` = ``0.5 + (discount - other) / 2``
  clipped to 0-1 (0.5: no preference), given when the customer had both kinds of exposure. Only exposures whose window has
  closed by ``as_of`` count.
* **content** ``c = min(1, days / content_days_full)``: distinct days with non-promotional content
  engagement: ``interactions`` of a kind in ``content_kinds`` whose object is not a discount
  campaign, ``email_open``/``email_click`` interactions whose object is a content or values
  campaign, and ``opened``/``clicked`` contacts of content or values campaigns. A signal (0 when
  none) for every customer when the ``interactions`` table holds rows, else for customers sent a
  content or values campaign.
* **referrals** ``f = min(1, n / referrals_full)``: ``shared``/``invited`` referral events the
  customer made; a signal (0 when none) for everyone when the ``referrals`` table holds any row.
* **survey** ``q``: the mean answer of the customer to the feedback kind ``survey_kind``, scaled
  from ``[survey_min, survey_max]`` to 0-1; a signal only for customers who answered.

``D`` = weighted mean of the given ones of (``s``, ``r``); ``V`` = weighted mean of the given ones
of (``1 - s``, ``1 - r``, ``c``, ``f``, ``q``); weights ``[motivation.weights]``, by default 2 for
price (it rests on several orders; with fewer than ``full_orders`` orders it weighs in proportion)
and 1 for the others. ``motivation_evidence`` is the total weight of the given signals (content
and referrals only when above 0: having none lowers ``V`` but is no evidence); below
``min_evidence`` the motivation is ``unknown``; else ``values`` when ``V >= strong`` and ``D < weak`` and a signal other than price is
given (full-price buying alone shows no need of a discount, not shared values), ``discount`` when ``D >= strong``
and ``V < weak``, ``mixed`` when both are at least ``weak``, ``other`` otherwise (a missing score
counts as 0 there).

The query reads only the tables that exist (``transactions`` is required) and is written in the
SQL common to DuckDB and Spark (:mod:`patron.data.dialect`). :func:`motivation_sql` returns it;
``customer_profiles`` joins it (:mod:`patron.relationship.profiles`), so ``motivation`` and the
``motivation_*`` columns work in segment rules and ``equity --by motivation``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from patron.config import section
from patron.data.dialect import DUCKDB, Dialect
from patron.data.store import reader, table_exists
from patron.errors import NoDataError

ConfigArg = str | os.PathLike[str] | dict[str, Any] | None

MOTIVATIONS: tuple[str, ...] = ("discount", "values", "mixed", "other", "unknown")
"""The motivations a customer can be given, in the order figures and tables show them."""

MOTIVATION_COLUMNS: dict[str, str] = {
    "motivation": "VARCHAR",
    "motivation_discount_score": "DOUBLE",
    "motivation_values_score": "DOUBLE",
    "motivation_evidence": "DOUBLE",
    "motivation_orders": "BIGINT",
    "motivation_discount_share": "DOUBLE",
    "motivation_discount_depth": "DOUBLE",
    "motivation_discount_response": "DOUBLE",
    "motivation_other_response": "DOUBLE",
    "motivation_response_preference": "DOUBLE",
    "motivation_content_days": "BIGINT",
    "motivation_referrals": "BIGINT",
    "motivation_survey": "DOUBLE",
}
"""The motivation columns of ``customer_profiles`` and their SQL types (docs/motivation.md)."""

EXPOSURE_KINDS: tuple[str, ...] = ("sent", "delivered", "opened")
"""Contact kinds that expose a customer to a campaign (the first one starts the response window)."""

OPEN_KINDS: tuple[str, ...] = ("opened", "clicked")
"""Contact kinds that show engagement with the campaign's content."""

EMAIL_INTERACTIONS: tuple[str, ...] = ("email_open", "email_click")
"""Interaction kinds that name an e-mail (its campaign in ``object``)."""

REFERRAL_ACTS: tuple[str, ...] = ("shared", "invited")
"""Referral kinds made by the customer (``referrer_id``)."""


class SignalWeights(BaseModel):
    """Weight of each signal in the scores (``[motivation.weights]``)."""

    model_config = ConfigDict(extra="forbid")

    price: float = Field(2.0, ge=0)
    """The discount share at ``full_orders`` orders or more (less with fewer): the most direct evidence."""
    response: float = Field(1.0, ge=0)
    """The response preference (one customer's few exposures: noisy)."""
    content: float = Field(1.0, ge=0)
    referrals: float = Field(1.0, ge=0)
    survey: float = Field(1.0, ge=0)


class MotivationRules(BaseModel):
    """The ``[motivation]`` section of the rules file (docs/motivation.md)."""

    model_config = ConfigDict(extra="forbid")

    lookback_days: int = Field(365, ge=1, le=36500)
    """Days before ``as_of`` (inclusive) whose behaviour counts."""
    window_days: int = Field(30, ge=1, le=3650)
    """A purchase within this many days after an exposure answers the campaign."""
    min_orders: int = Field(1, ge=1)
    """Orders with a known discount a customer needs before their discount share is a signal."""
    full_orders: int = Field(3, ge=1)
    """Orders with a known discount that give the price signal its full weight; with fewer it
    weighs ``weights.price x orders / full_orders``."""
    min_evidence: float = Field(1.0, ge=0)
    """Total weight of the given signals (``motivation_evidence``) a customer needs for a
    motivation; less is ``unknown`` (by default: two orders, or one signal other than price)."""
    content_kinds: list[str] = Field(default_factory=lambda: ["content_view"])
    """Interaction kinds that are non-promotional content (their object must not be a discount campaign)."""
    content_days_full: float = Field(4.0, gt=0)
    """Distinct days of content engagement that make a full content signal (1)."""
    referrals_full: float = Field(2.0, gt=0)
    """Referrals made (shared or invited) that make a full referral signal (1)."""
    survey_kind: str = "values"
    """The feedback ``kind`` of the values survey ("I share this brand's values")."""
    survey_min: float = 0.0
    """Lowest answer of the values survey (maps to 0)."""
    survey_max: float = 10.0
    """Highest answer of the values survey (maps to 1)."""
    weights: SignalWeights = Field(default_factory=SignalWeights)
    """Weight of each signal in the scores."""
    strong: float = Field(0.6, ge=0, le=1)
    """A score at or above this leans that way (``discount`` or ``values``)."""
    weak: float = Field(0.4, ge=0, le=1)
    """The other score must stay below this for a pure motivation; both at or above it is ``mixed``."""

    @model_validator(mode="after")
    def _ordered(self) -> MotivationRules:
        if self.weak > self.strong:
            raise ValueError("weak must not exceed strong")
        if self.survey_max <= self.survey_min:
            raise ValueError("survey_max must exceed survey_min")
        return self


def rules(config: ConfigArg = None) -> MotivationRules:
    """The ``[motivation]`` section of ``config`` (defaults when absent)."""
    return section("motivation", MotivationRules, config)


@dataclass(frozen=True)
class Sources:
    """Which optional tables the query reads (``transactions`` is always read)."""

    contacts: bool = False
    """Both ``contacts`` and ``campaigns`` hold rows (the response signal, and content from opens)."""
    interactions: bool = False
    """``interactions`` holds rows (content engagement for every customer)."""
    referrals: bool = False
    """``referrals`` holds rows (the referral signal for every customer)."""
    feedback: bool = False
    """``feedback`` holds rows (the survey signal)."""


def _has_rows(con: Any, table: str) -> bool:
    return table_exists(con, table) and bool(con.execute(f"SELECT 1 FROM {DUCKDB.ident(table)} LIMIT 1").fetchall())


def sources(con: Any) -> Sources:
    """The :class:`Sources` of the database open on ``con``: the tables that exist and hold a row
    (every table of the data contract exists once anything was ingested)."""
    return Sources(contacts=_has_rows(con, "contacts") and _has_rows(con, "campaigns"),
                   interactions=_has_rows(con, "interactions"), referrals=_has_rows(con, "referrals"),
                   feedback=_has_rows(con, "feedback"))


def _in(d: Dialect, values: tuple[str, ...] | list[str]) -> str:
    return "(" + ", ".join(d.literal(v) for v in values) + ")"


def _dbl(value: float) -> str:
    """A DOUBLE literal: a bare ``2.0`` is a DECIMAL in Spark, whose arithmetic with integers
    rounds to 6 decimals (DuckDB would give a DOUBLE)."""
    return f"CAST({float(value)!r} AS DOUBLE)"


def _mean(terms: list[tuple[str, str]]) -> str:
    """Weighted mean of the non-NULL terms, ``(expression, weight expression)`` (NULL when all are NULL)."""
    total = " + ".join(f"{w} * COALESCE({t}, 0.0)" for t, w in terms)
    count = " + ".join(f"CASE WHEN {t} IS NULL THEN {_dbl(0)} ELSE {w} END" for t, w in terms)
    return f"(({total}) / NULLIF({count}, 0.0))"


def motivation_sql(as_of: date, rules: MotivationRules | None = None, present: Sources | None = None,
                   dialect: Dialect = DUCKDB) -> str:
    """The per-customer motivation query as of ``as_of`` (definitions in the module docstring):
    one row per customer with an order on or before ``as_of`` or a signal in the lookback, with
    ``customer_id`` and the columns of :data:`MOTIVATION_COLUMNS`."""
    r = rules or MotivationRules()
    s = present or Sources()
    d = dialect
    start = d.date_literal(as_of - timedelta(days=r.lookback_days))  # exclusive
    end = d.date_literal(as_of)
    closed = d.date_literal(as_of - timedelta(days=r.window_days))  # last exposure day whose window has closed
    day = "CAST({}.occurred_at AS DATE)"
    in_window = f"{day} > {start} AND {day} <= {end}"
    win = in_window.format("t", "t")
    # one pass over the orders: every buyer by as_of, and their discounts inside the lookback
    ctes = [f"""price AS (
  SELECT t.customer_id, COUNT(CASE WHEN {win} THEN t.discount END) AS n_known,
         SUM(CASE WHEN {win} AND t.discount > 0 THEN 1 ELSE 0 END) AS n_discounted,
         SUM(CASE WHEN {win} AND t.discount > 0 THEN t.discount END) AS discount_sum,
         SUM(CASE WHEN {win} AND t.discount > 0 THEN t.amount + t.discount END) AS list_sum
  FROM transactions t WHERE t.amount >= 0 AND {day.format('t')} <= {end}
  GROUP BY t.customer_id
)"""]
    people = ["SELECT customer_id FROM price"]
    joins = ["LEFT JOIN price pr ON pr.customer_id = p.customer_id"]
    null_d, null_n = d.typed_null("DOUBLE"), d.typed_null("BIGINT")
    response = {"dr": null_d, "orr": null_d, "pref": null_d}
    content_parts: list[str] = []
    content_reach = ""
    if s.contacts:
        plus = f"e.exposed_at + INTERVAL '{int(r.window_days)}' DAY"
        ctes.append("""camp AS (
  SELECT campaign_id, MAX(CASE WHEN kind = 'discount' THEN 1 ELSE 0 END) AS is_discount,
         MAX(CASE WHEN kind IN ('content', 'values') THEN 1 ELSE 0 END) AS is_content
  FROM campaigns GROUP BY campaign_id
)""")
        ctes.append(f"""exposed AS (
  SELECT c.campaign_id, c.customer_id, MIN(c.occurred_at) AS exposed_at,
         MAX(CASE WHEN c.in_holdout THEN 1 ELSE 0 END) AS control
  FROM contacts c JOIN camp k ON k.campaign_id = c.campaign_id
  WHERE c.kind IN {_in(d, EXPOSURE_KINDS)} AND {in_window.format('c', 'c')}
  GROUP BY c.campaign_id, c.customer_id
)""")
        ctes.append(f"""answered AS (
  SELECT e.campaign_id, e.customer_id, e.control,
         MAX(CASE WHEN t.customer_id IS NULL THEN 0 ELSE 1 END) AS answered
  FROM exposed e LEFT JOIN transactions t
    ON t.customer_id = e.customer_id AND t.amount >= 0 AND t.occurred_at > e.exposed_at AND t.occurred_at <= {plus}
  WHERE CAST(e.exposed_at AS DATE) <= {closed}
  GROUP BY e.campaign_id, e.customer_id, e.control
)""")
        ctes.append("""control_rate AS (
  SELECT campaign_id, AVG(CAST(answered AS DOUBLE)) AS rate FROM answered WHERE control = 1 GROUP BY campaign_id
)""")
        ctes.append("""response AS (
  SELECT a.customer_id,
         SUM(CASE WHEN k.is_discount = 1 THEN 1 ELSE 0 END) AS n_discount,
         AVG(CASE WHEN k.is_discount = 1 THEN a.answered - COALESCE(b.rate, 0.0) END) AS discount_response,
         SUM(CASE WHEN k.is_discount = 0 THEN 1 ELSE 0 END) AS n_other,
         AVG(CASE WHEN k.is_discount = 0 THEN a.answered - COALESCE(b.rate, 0.0) END) AS other_response
  FROM answered a JOIN camp k ON k.campaign_id = a.campaign_id
  LEFT JOIN control_rate b ON b.campaign_id = a.campaign_id
  WHERE a.control = 0 GROUP BY a.customer_id
)""")
        joins.append("LEFT JOIN response rs ON rs.customer_id = p.customer_id")
        people.append("SELECT customer_id FROM response")
        response = {
            "dr": "rs.discount_response", "orr": "rs.other_response",
            "pref": "CASE WHEN rs.n_discount > 0 AND rs.n_other > 0 THEN "
                    "LEAST(GREATEST(0.5 + (rs.discount_response - rs.other_response) / 2.0, 0.0), 1.0) END",
        }
        content_parts.append(f"""SELECT c.customer_id, CAST(c.occurred_at AS DATE) AS day
    FROM contacts c JOIN camp k ON k.campaign_id = c.campaign_id
    WHERE k.is_content = 1 AND c.kind IN {_in(d, OPEN_KINDS)} AND {in_window.format('c', 'c')}""")
        ctes.append(f"""reach AS (
  SELECT DISTINCT c.customer_id FROM contacts c JOIN camp k ON k.campaign_id = c.campaign_id
  WHERE k.is_content = 1 AND c.kind IN {_in(d, EXPOSURE_KINDS)} AND (c.in_holdout IS NULL OR NOT c.in_holdout)
    AND {in_window.format('c', 'c')}
)""")
        content_reach = "reach"
    if s.interactions:
        camp_join = "LEFT JOIN camp k ON k.campaign_id = i.object" if s.contacts else ""
        not_discount = "(k.is_discount IS NULL OR k.is_discount = 0)" if s.contacts else "TRUE"
        is_content = "k.is_content = 1" if s.contacts else "FALSE"
        content_parts.append(f"""SELECT i.customer_id, CAST(i.occurred_at AS DATE) AS day
    FROM interactions i {camp_join}
    WHERE ((i.kind IN {_in(d, r.content_kinds or ['-'])} AND {not_discount})
           OR (i.kind IN {_in(d, EMAIL_INTERACTIONS)} AND {is_content}))
      AND {in_window.format('i', 'i')}""")
        content_reach = ""  # everyone could have engaged
    content = {"days": null_n, "signal": null_d}
    if content_parts:
        ctes.append("content AS (\n  SELECT customer_id, COUNT(DISTINCT day) AS days FROM (\n    "
                    + "\n    UNION ALL\n    ".join(content_parts) + "\n  ) AS u GROUP BY customer_id\n)")
        joins.append("LEFT JOIN content ct ON ct.customer_id = p.customer_id")
        people.append("SELECT customer_id FROM content")
        days = "COALESCE(ct.days, 0)"
        if content_reach:
            joins.append(f"LEFT JOIN {content_reach} rc ON rc.customer_id = p.customer_id")
            given = "(rc.customer_id IS NOT NULL OR ct.customer_id IS NOT NULL)"
            content = {"days": f"CASE WHEN {given} THEN {days} END",
                       "signal": f"CASE WHEN {given} THEN LEAST({days} / {_dbl(r.content_days_full)}, 1.0) END"}
        else:
            content = {"days": days, "signal": f"LEAST({days} / {_dbl(r.content_days_full)}, 1.0)"}
    referrals = {"n": null_n, "signal": null_d}
    if s.referrals:
        ctes.append(f"""referred AS (
  SELECT f.referrer_id AS customer_id, COUNT(*) AS n FROM referrals f
  WHERE f.kind IN {_in(d, REFERRAL_ACTS)} AND {in_window.format('f', 'f')} GROUP BY f.referrer_id
)""")
        joins.append("LEFT JOIN referred rf ON rf.customer_id = p.customer_id")
        people.append("SELECT customer_id FROM referred")
        referrals = {"n": "COALESCE(rf.n, 0)", "signal": f"LEAST(COALESCE(rf.n, 0) / {_dbl(r.referrals_full)}, 1.0)"}
    survey = null_d
    if s.feedback:
        lo, span = _dbl(r.survey_min), _dbl(r.survey_max - r.survey_min)
        ctes.append(f"""survey AS (
  SELECT b.customer_id, AVG(b.score) AS score FROM feedback b
  WHERE b.kind = {d.literal(r.survey_kind)} AND {in_window.format('b', 'b')} GROUP BY b.customer_id
)""")
        joins.append("LEFT JOIN survey sv ON sv.customer_id = p.customer_id")
        people.append("SELECT customer_id FROM survey")
        # GREATEST and LEAST skip NULLs in both engines: the CASE keeps a customer with no answer NULL
        survey = f"CASE WHEN sv.score IS NOT NULL THEN LEAST(GREATEST((sv.score - {lo}) / {span}, 0.0), 1.0) END"
    if len(people) == 1:  # the buyers alone (no other source holds rows): no union, no self-join
        everyone, joins, pid = "price AS pr", [], "pr.customer_id"
    else:
        everyone, pid = f"(SELECT DISTINCT customer_id FROM ({' UNION ALL '.join(people)}) AS q) AS p", "p.customer_id"
    share = f"CASE WHEN pr.n_known >= {int(r.min_orders)} THEN CAST(pr.n_discounted AS DOUBLE) / pr.n_known END"
    ctes.append(f"""signals AS (
  SELECT {pid} AS customer_id, COALESCE(pr.n_known, 0) AS orders, {share} AS s,
         pr.discount_sum / NULLIF(pr.list_sum, 0) AS depth,
         {response['dr']} AS dr, {response['orr']} AS orr, {response['pref']} AS pref,
         {content['days']} AS content_days, {content['signal']} AS c,
         {referrals['n']} AS referrals, {referrals['signal']} AS f, {survey} AS q
  FROM {everyone}
  {' '.join(joins)}
)""")
    w = r.weights
    wp = f"({_dbl(w.price)} * LEAST(g.orders, {int(r.full_orders)}) / {_dbl(r.full_orders)})"
    wr, wc, wf, wq = (_dbl(x) for x in (w.response, w.content, w.referrals, w.survey))
    # zero content days or referrals lower V but are no evidence: a customer with nothing else is unknown
    given = (("g.s IS NOT NULL", wp), ("g.pref IS NOT NULL", wr), ("g.c > 0", wc), ("g.f > 0", wf), ("g.q IS NOT NULL", wq))
    ctes.append(f"""scored AS (
  SELECT g.*, {_mean([('g.s', wp), ('g.pref', wr)])} AS dscore,
         {_mean([('1.0 - g.s', wp), ('1.0 - g.pref', wr), ('g.c', wc), ('g.f', wf), ('g.q', wq)])} AS vscore,
         {' + '.join(f'CASE WHEN {x} THEN {wx} ELSE {_dbl(0)} END' for x, wx in given)} AS evidence,
         {' + '.join(f'CASE WHEN g.{x} IS NULL THEN 0 ELSE 1 END' for x in ('pref', 'c', 'f', 'q'))} AS n_beyond_price
  FROM signals g
)""")
    dv, vv = "COALESCE(dscore, 0.0)", "COALESCE(vscore, 0.0)"
    strong, weak = float(r.strong), float(r.weak)
    label = (f"CASE WHEN evidence < {float(r.min_evidence)!r} THEN 'unknown' "
             f"WHEN {vv} >= {strong!r} AND {dv} < {weak!r} AND n_beyond_price > 0 THEN 'values' "
             f"WHEN {dv} >= {strong!r} AND {vv} < {weak!r} THEN 'discount' "
             f"WHEN {dv} >= {weak!r} AND {vv} >= {weak!r} THEN 'mixed' ELSE 'other' END")
    outputs = {
        "motivation": label, "motivation_discount_score": "dscore", "motivation_values_score": "vscore",
        "motivation_evidence": "evidence", "motivation_orders": "orders", "motivation_discount_share": "s",
        "motivation_discount_depth": "depth", "motivation_discount_response": "dr", "motivation_other_response": "orr",
        "motivation_response_preference": "pref", "motivation_content_days": "content_days",
        "motivation_referrals": "referrals", "motivation_survey": "q",
    }
    cols = ", ".join(f"CAST({expr} AS {d.type_name(MOTIVATION_COLUMNS[n])}) AS {d.ident(n)}" for n, expr in outputs.items())
    return "WITH " + ",\n".join(ctes) + f"\nSELECT customer_id, {cols} FROM scored"


def profile_motivation_sql(con: Any, as_of: date, config: ConfigArg = None) -> str | None:
    """:func:`motivation_sql` for the database open on ``con``, with the ``[motivation]`` rules
    of ``config``: the piece :mod:`patron.relationship.profiles` joins. ``None`` when the data
    hold no evidence at all (no order with a known discount, and no contacts with campaigns,
    interactions, referrals or feedback): every customer is then ``unknown`` with evidence 0,
    what the query would say, and the profiles skip it (a pass over the transactions)."""
    r, present = rules(config), sources(con)  # the rules are checked either way
    if present == Sources() and not bool(con.execute(
            "SELECT 1 FROM transactions WHERE discount IS NOT NULL LIMIT 1").fetchall()):
        return None
    return motivation_sql(as_of, r, present)


def profile_column(name: str, alias: str) -> str:
    """The profile's expression for motivation column ``name`` from the joined query ``alias``:
    a customer it has no row for (a prospect with no signal) is ``unknown`` with no evidence."""
    expr = f"{alias}.{DUCKDB.ident(name)}"
    if name == "motivation":
        return f"COALESCE({expr}, 'unknown')"
    if name == "motivation_evidence":
        return f"COALESCE({expr}, 0.0)"
    if name == "motivation_orders":
        return f"COALESCE({expr}, 0)"
    return expr


def motivations(db: str | os.PathLike[str] | None = None, *, as_of: Any = None, config: ConfigArg = None) -> pd.DataFrame:
    """The motivation columns of every customer as of ``as_of`` (default: the day of the last
    purchase), computed in the engine without building the profiles; sorted by customer."""
    from patron.dates import default_as_of, parse_day

    with reader(db) as con:
        if not table_exists(con, "transactions"):
            raise NoDataError(f"database {db} holds no transactions: run patron ingest FILE --kind transactions first")
        day = parse_day(as_of, "as_of") or default_as_of(con)
        return con.sql(f"{motivation_sql(day, rules(config), sources(con))} ORDER BY customer_id").df()
