"""Customer profitability: margin, cost-to-serve from contacts, and CLV net of both.

Definitions (as of ``as_of``, inclusive; default the day of the last purchase). Customers are
those with an order (``amount >= 0``) on or before ``as_of``, as in :func:`patron.summary`.

* ``revenue``: sum of ``amount`` over all the customer's transactions to ``as_of``, refunds
  (negative amounts) deducted, i.e. the summary's ``total_spend``.
* ``margin_total``: sum of the ``margin`` column over those transactions; a row without a margin
  counts ``amount x default_margin_rate`` when ``[costs] default_margin_rate`` is set and is left
  out otherwise. NULL when no row has a margin and no default rate is set.
  ``margin_rate = margin_total / revenue of the rows counted in it`` (``default_margin_rate``, or
  NULL, when that revenue is zero).
* ``contacts``: contacts sent on or before ``as_of`` (rows of kind ``sent``; a holdout record,
  ``in_holdout`` true, was never sent and costs nothing; delivered, opened, ... cost nothing
  more; :mod:`patron.data.sent_contacts`); ``contact_cost``: their cost, per contact by channel from ``[costs]``
  (currency per contact; channel matched lower-cased; unknown channels cost ``other``).
* ``weeks_observed``: weeks (7 days) from the customer's first order or first sent contact,
  whichever is earlier, to ``as_of`` (both days counted), at least :data:`MIN_WEEKS_OBSERVED`;
  ``contact_cost_per_week = contact_cost / weeks_observed``.
* ``clv``, ``probability_alive`` and ``spend_basis`` come from ``scores``
  (:func:`patron.value.scoring.score` with the ``[value]`` settings, :mod:`patron.value.settings`):
  ``clv`` is the CLV every other command states for the same settings.
  ``expected_contact_cost = contact_cost_per_week x horizon_weeks x probability_alive`` (contacts
  continue at the historical rate while the customer is alive; not discounted), with
  ``horizon_weeks`` the ``[value]`` horizon in weeks.
* ``clv_net`` = ``expected_revenue x margin rate - cost_per_order x discounted_purchases -
  cost_per_customer - expected_contact_cost`` (the CLV at the customer's own margin rate, net of
  the ``[value]`` costs to serve and of contacts). The margin rate is the customer's
  ``margin_rate``; where the data carry no margin and ``[costs] default_margin_rate`` is unset,
  the ``[value] margin`` when it is set (rules file or ``--margin``); else ``clv_net`` is NULL (the
  margin is unknown). Scores without ``expected_revenue`` (a frame of your own) have ``clv``
  taken as expected revenue, with no cost to serve.
"""

from __future__ import annotations

import os
from datetime import date

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from patron.config import section
from patron.constants import DAYS_PER_WEEK
from patron.data.dialect import DUCKDB, Dialect
from patron.data.sent_contacts import SENT_CONTACTS
from patron.data.store import table_exists
from patron.dates import DayArg
from patron.errors import InputError, NoDataError
from patron.relationship.loyalty import ConfigArg, open_transactions, resolve_as_of
from patron.value.settings import ValueSettings, value_settings

MIN_WEEKS_OBSERVED = 1.0
"""Shortest window (weeks) a contact cost per week is computed over, so that a customer first
contacted on ``as_of`` does not get a cost rate of seven times a day's cost."""

PROFITABILITY_COLUMNS: tuple[str, ...] = (
    "customer_id", "revenue", "margin_total", "margin_rate", "contacts", "contact_cost",
    "weeks_observed", "contact_cost_per_week", "clv", "probability_alive", "expected_contact_cost",
    "clv_net", "spend_basis",
)
"""Columns of :func:`profitability`, in order."""


class CostRules(BaseModel):
    """The ``[costs]`` section of the rules file: cost per contact sent, by channel (currency per
    contact), and the margin rate assumed where an order carries no margin."""

    model_config = ConfigDict(extra="forbid")

    email: float = Field(0.002, ge=0)
    """Cost of one email sent (currency per contact)."""
    sms: float = Field(0.05, ge=0)
    """Cost of one SMS sent (currency per contact)."""
    mail: float = Field(0.60, ge=0)
    """Cost of one postal mailing (currency per contact)."""
    phone: float = Field(2.00, ge=0)
    """Cost of one outbound call (currency per contact)."""
    push: float = Field(0.0005, ge=0)
    """Cost of one push notification (currency per contact)."""
    in_app: float = Field(0.0, ge=0)
    """Cost of one in-app message (currency per contact)."""
    other: float = Field(0.0, ge=0)
    """Cost of one contact on a channel not named here or in ``channels`` (currency per contact)."""
    channels: dict[str, float] = Field(default_factory=dict)
    """More channels and their cost per contact, e.g. ``{whatsapp = 0.01}`` (currency per contact)."""
    default_margin_rate: float | None = Field(None, ge=-1, le=1)
    """Share of an order's amount that is margin where the order has no ``margin`` (0-1); unset:
    such orders are left out of the margin."""

    def per_channel(self) -> dict[str, float]:
        """Cost per contact for every named channel (lower case)."""
        named = {k: getattr(self, k) for k in ("email", "sms", "mail", "phone", "push", "in_app")}
        return named | {k.lower(): float(v) for k, v in self.channels.items()}


def contact_cost_sql(rules: CostRules, channel: str = "channel", dialect: Dialect = DUCKDB) -> str:
    """SQL expression: the cost of one contact on the channel ``channel`` (a column expression),
    from ``rules`` (channel matched lower-cased; unknown channels cost ``other``); the channel
    names of the rules file are ``dialect``'s literals, any character included."""
    cases = " ".join(f"WHEN {dialect.literal(ch)} THEN {cost!r}" for ch, cost in rules.per_channel().items())
    return f"CASE lower({channel}) {cases} ELSE {rules.other!r} END"


def profitability_sql(as_of: date, rules: CostRules | None = None, dialect: Dialect = DUCKDB, *, with_contacts: bool = True,
                      ordered: bool = True) -> str:
    """Revenue, margin, contacts and contact cost per customer (definitions in the module
    docstring), ordered by customer (unordered without ``ordered``, as a part of a larger query)."""
    r = rules or CostRules()
    d = dialect
    end = d.date_literal(as_of)
    day = "CAST(occurred_at AS DATE)"
    rate = r.default_margin_rate
    filled = f"ELSE amount * {rate!r} " if rate is not None else ""
    fallback = repr(rate) if rate is not None else "CAST(NULL AS DOUBLE)"
    counted = "margin IS NOT NULL" if rate is None else "TRUE"
    contacts = (
        f"""SELECT customer_id, COUNT(*) AS contacts, MIN({day}) AS first_contact,
         SUM({contact_cost_sql(r, dialect=d)}) AS contact_cost
  FROM {SENT_CONTACTS} s WHERE {day} <= {end} GROUP BY customer_id"""
        if with_contacts else
        "SELECT CAST(NULL AS VARCHAR) AS customer_id, 0 AS contacts, CAST(NULL AS DATE) AS first_contact, 0.0 AS contact_cost WHERE 1 = 0"
    )
    start = "CASE WHEN c.first_contact < b.first_day THEN c.first_contact ELSE b.first_day END"
    # one pass: the buyers (a purchase, amount >= 0) and their money (every row, refunds too) in
    # one GROUP BY over the transactions
    return f"""WITH money AS (
  SELECT customer_id, MIN(CASE WHEN amount >= 0 THEN {day} END) AS first_day, SUM(amount) AS revenue,
         SUM(CASE WHEN margin IS NOT NULL THEN margin {filled}END) AS margin_total,
         SUM(CASE WHEN {counted} THEN amount END) AS margin_revenue
  FROM transactions WHERE {day} <= {end} GROUP BY customer_id
),
costs AS (
  {contacts}
)
SELECT b.customer_id, b.revenue, b.margin_total,
       coalesce(b.margin_total / NULLIF(b.margin_revenue, 0), {fallback}) AS margin_rate,
       CAST(coalesce(c.contacts, 0) AS BIGINT) AS contacts,
       CAST(coalesce(c.contact_cost, 0.0) AS DOUBLE) AS contact_cost,
       CAST({d.days_between(start, end)} + 1 AS DOUBLE) / {DAYS_PER_WEEK!r} AS weeks_observed
FROM money b
LEFT JOIN costs c ON c.customer_id = b.customer_id
WHERE b.first_day IS NOT NULL""" + ("\nORDER BY b.customer_id" if ordered else "")


def net_expressions(rules: CostRules, value: ValueSettings, horizon_weeks: float | None = None, *, f: str = "f",
                    s: str = "s") -> dict[str, str]:
    """The SQL expressions of :func:`net_profitability_sql` (``weeks_observed``,
    ``contact_cost_per_week``, ``expected_contact_cost``, ``clv_net``) over the columns
    ``margin_rate``, ``weeks_observed`` and ``contact_cost`` of the relation aliased ``f`` and
    ``probability_alive``, ``expected_revenue`` and ``discounted_purchases`` of ``s`` (the
    definitions of the module docstring; ``horizon_weeks`` defaults to the settings' horizon in weeks)."""
    horizon_weeks = value.horizon_weeks if horizon_weeks is None else horizon_weeks
    if horizon_weeks <= 0:
        raise InputError(f"horizon_weeks must be positive; got {horizon_weeks}")
    rate = f"{f}.margin_rate"
    if value.margin_is_set and rules.default_margin_rate is None:
        rate = f"coalesce({f}.margin_rate, {float(value.margin)!r})"
    weeks = f"greatest({f}.weeks_observed, {MIN_WEEKS_OBSERVED!r})"
    per_week = f"CAST({f}.contact_cost AS DOUBLE) / {weeks}"
    expected = f"{per_week} * {float(horizon_weeks)!r} * CAST({s}.probability_alive AS DOUBLE)"
    net = (f"{s}.expected_revenue * {rate} - {float(value.cost_per_order)!r} * {s}.discounted_purchases"
           f"\n         - {float(value.cost_per_customer)!r} - {expected}")
    return {"weeks_observed": weeks, "contact_cost_per_week": per_week, "expected_contact_cost": expected, "clv_net": net}


def net_profitability_sql(as_of: date, scores: str, *, rules: CostRules | None = None, value: ValueSettings | None = None,
                          horizon_weeks: float | None = None, with_contacts: bool = True) -> str:
    """:func:`profitability` in one DuckDB query: :data:`PROFITABILITY_COLUMNS` per customer with
    an order by ``as_of`` (unordered), with the scores read from the relation named ``scores`` (a
    registered table or view with the columns of :func:`patron.value.scoring.score`'s customers:
    ``customer_id, clv, probability_alive, expected_revenue, discounted_purchases, spend_basis``)
    instead of a DataFrame; the same definitions and arithmetic (module docstring), so that the
    profiles of a large base never carry them through pandas."""
    r = rules or CostRules()
    value = value or ValueSettings()
    net = net_expressions(r, value, horizon_weeks)
    return f"""SELECT f.customer_id, f.revenue, f.margin_total, f.margin_rate, f.contacts, f.contact_cost,
       {net['weeks_observed']} AS weeks_observed, {net['contact_cost_per_week']} AS contact_cost_per_week, s.clv, s.probability_alive,
       {net['expected_contact_cost']} AS expected_contact_cost,
       {net['clv_net']} AS clv_net,
       s.spend_basis
FROM ({profitability_sql(as_of, r, with_contacts=with_contacts, ordered=False)}) AS f
LEFT JOIN {scores} AS s ON s.customer_id = f.customer_id"""


def default_scores(db: str | os.PathLike[str] | None, as_of: date, settings: ValueSettings | None = None) -> pd.DataFrame:
    """Scores (:func:`patron.value.scoring.score`) on the summary to ``as_of`` with ``settings``
    (default: the ``[value]`` defaults)."""
    from patron.value.scoring import score
    from patron.value.summary import summary

    settings = settings or ValueSettings()
    return score(summary(db, period=settings.period, end=as_of), settings=settings, db=db).customers


def profitability(
    db: str | os.PathLike[str] | None = None,
    *,
    scores: pd.DataFrame | None = None,
    as_of: DayArg = None,
    config: ConfigArg = None,
    horizon_weeks: float | None = None,
    settings: ValueSettings | None = None,
) -> pd.DataFrame:
    """Profitability per customer: :data:`PROFITABILITY_COLUMNS` (definitions in the module
    docstring; contact costs and the default margin rate from the ``[costs]`` rules section, the
    value settings from ``[value]``, or ``settings`` when given).

    ``scores`` has ``customer_id, clv, probability_alive`` and, from :func:`patron.value.scoring.score`,
    ``expected_revenue, discounted_purchases, spend_basis``; by default they are computed by
    :func:`default_scores` with the value settings. ``horizon_weeks`` (default: the settings'
    horizon in weeks) is the span of the expected contact cost. Customers missing from ``scores``
    get NULL ``clv`` and ``clv_net``.
    """
    rules = section("costs", CostRules, config)
    value = settings if settings is not None else value_settings(config)
    horizon_weeks = value.horizon_weeks if horizon_weeks is None else horizon_weeks
    if horizon_weeks <= 0:
        raise InputError(f"horizon_weeks must be positive; got {horizon_weeks}")
    with open_transactions(db) as con:
        day = resolve_as_of(con, as_of)
        frame = con.sql(profitability_sql(day, rules, with_contacts=table_exists(con, "contacts"))).df()
    if frame.empty:
        raise NoDataError(f"no orders on or before {day}")
    if scores is None:
        scores = default_scores(db, day, value)
    missing = [c for c in ("customer_id", "clv", "probability_alive") if c not in scores.columns]
    if missing:
        raise InputError(f"scores lack column {', '.join(missing)} (columns: {', '.join(map(str, scores.columns))})")
    s = scores[["customer_id", "clv", "probability_alive"]].astype({"customer_id": str})
    own = "expected_revenue" in scores.columns  # scores of patron.value.scoring.score, with their costs
    s["_revenue"] = scores["expected_revenue"].to_numpy(dtype=float) if own else s["clv"].to_numpy(dtype=float)
    s["_order_cost"] = value.cost_per_order * scores["discounted_purchases"].to_numpy(dtype=float) if own and "discounted_purchases" in scores.columns else 0.0
    s["_customer_cost"] = value.cost_per_customer if own else 0.0
    s["spend_basis"] = scores["spend_basis"].to_numpy() if "spend_basis" in scores.columns else None
    frame = frame.astype({"customer_id": str}).merge(s, on="customer_id", how="left")
    weeks = np.maximum(frame["weeks_observed"].to_numpy(dtype=float), MIN_WEEKS_OBSERVED)
    frame["weeks_observed"] = weeks
    frame["contact_cost_per_week"] = frame["contact_cost"].to_numpy(dtype=float) / weeks
    frame["expected_contact_cost"] = frame["contact_cost_per_week"] * horizon_weeks * frame["probability_alive"].astype(float)
    rate = frame["margin_rate"].astype(float)
    if value.margin_is_set and rules.default_margin_rate is None:
        rate = rate.fillna(value.margin)
    frame["clv_net"] = frame["_revenue"] * rate - frame["_order_cost"] - frame["_customer_cost"] - frame["expected_contact_cost"]
    return frame[list(PROFITABILITY_COLUMNS)]
