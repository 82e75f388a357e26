"""SQL builders of dose-response: customer-months after acquisition, described as of their start.

Each function returns SQL text (DuckDB and Spark alike); :mod:`patron.contact.effect.dose` runs it
and does the statistics. Definitions (docs/contact-effect.md, "Dose-response"):

* **Customer-month**: a calendar month (UTC) *after* the customer's acquisition month (the month of
  their first order, ``amount >= 0``) up to the last complete month of the data, ending with the
  month of their first unsubscribe. The acquisition month always holds a purchase, whatever the
  contacts, so it is left out; so are the months before it (a prospect's first purchase is their
  acquisition). A month is **complete** when the data (latest transaction or contact) reach its
  last day.
* **Dose**: the contacts sent to the customer in the month (:mod:`patron.data.sent_contacts`: holdout
  records excluded), ``0, 1, ..., top - 1`` and ``top+``.
* **As of the month start**, from the customer's data strictly before the month (no look-ahead):
  ``recency_months`` (months since the last month with a purchase; 1 = bought last month),
  ``prior_buying_months`` (months with a purchase), ``prior_purchases`` (orders) and
  ``prior_spend`` (amounts, refunds netted). They give the **stratum** (calendar month x recency
  band x buying-months band) within which doses are compared, and the **segment**.
* **Segment** ``value_tier``: the customer's tier by spend to date among the customers analysed
  that month (the ``[tiers]`` names and shares: top 1% ``platinum``, next 9% ``gold``, ...);
  ``prior_purchases``: ``1 prior purchase``, ``2-4 prior purchases``, ``5+ prior purchases``.
"""

from __future__ import annotations

from typing import Literal

from patron.data.dialect import DUCKDB, Dialect
from patron.data.sent_contacts import is_sent
from patron.relationship.profitability import CostRules, contact_cost_sql
from patron.relationship.tiers import TierRules

Segments = Literal["value_tier", "prior_purchases"]

RECENCY_BANDS: tuple[tuple[str, int, int | None], ...] = (
    ("1", 1, 1), ("2", 2, 2), ("3", 3, 3), ("4-6", 4, 6), ("7-12", 7, 12), ("13+", 13, None),
)
"""Bands of months since the last month with a purchase, as of the month start: (label, lowest, highest)."""

FREQUENCY_BANDS: tuple[tuple[str, int, int | None], ...] = (
    ("1", 1, 1), ("2", 2, 2), ("3-4", 3, 4), ("5-8", 5, 8), ("9+", 9, None),
)
"""Bands of months with a purchase before the month: (label, lowest, highest)."""

PURCHASE_SEGMENTS: tuple[tuple[str, int, int | None], ...] = (
    ("1 prior purchase", 1, 1), ("2-4 prior purchases", 2, 4), ("5+ prior purchases", 5, None),
)
"""Segments ``prior_purchases``: orders before the month (label, lowest, highest)."""


def dose_labels(top: int) -> list[str]:
    """Labels of the doses ``0 .. top``: ``"0", "1", ..., "top+"``."""
    return [str(k) for k in range(top)] + [f"{top}+"]


def _band(expr: str, bands: tuple[tuple[str, int, int | None], ...], d: Dialect) -> str:
    whens = " ".join(f"WHEN {expr} <= {hi} THEN {d.literal(name)}" for name, _, hi in bands if hi is not None)
    return f"CASE {whens} ELSE {d.literal(bands[-1][0])} END"


def _tier(tiers: TierRules, d: Dialect) -> str:
    """CASE of the tier by the share ``spend_above`` of customers with a strictly higher spend to
    date (the ``threshold`` method's CLV thresholds do not apply to spend: the default shares then)."""
    rules = tiers if tiers.method == "quantile" else TierRules()
    names = [d.literal(n) for n in rules.names]
    cumulative, whens = 0.0, []
    for share, name in zip(rules.shares, names, strict=False):
        cumulative = round(cumulative + share, 12)
        whens.append(f"WHEN spend_above < {cumulative!r} THEN {name}")
    return f"CASE {' '.join(whens)} ELSE {names[-1]} END"


def customer_months_ctes(*, top: int, segments: Segments = "value_tier", tiers: TierRules | None = None,
                         costs: CostRules | None = None, d: Dialect = DUCKDB) -> str:
    """CTEs ending in ``cm``: one row per analysed customer-month with ``customer_id, month,
    n_sent, contact_cost, dose, purchases, bought, revenue, unsubscribed, recency_band,
    frequency_band, segment`` (definitions in the module docstring)."""
    month_t = d.period_start("CAST(t.occurred_at AS DATE)", "M")
    month_c = d.period_start("CAST(c.occurred_at AS DATE)", "M")
    end_month = d.period_start("CAST(CAST(e.last_at AS DATE) + INTERVAL '1' DAY AS DATE)", "M")
    prior = "OVER (PARTITION BY g.customer_id ORDER BY g.month ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"
    segment = _tier(tiers or TierRules(), d) if segments == "value_tier" else _band("prior_purchases", PURCHASE_SEGMENTS, d)
    return f"""tx AS (
  SELECT t.customer_id, {month_t} AS month,
         SUM(CASE WHEN t.amount >= 0 THEN 1 ELSE 0 END) AS purchases,
         SUM(CASE WHEN t.amount >= 0 THEN t.amount ELSE 0.0 END) AS revenue, SUM(t.amount) AS net
  FROM transactions t GROUP BY t.customer_id, {month_t}
),
sent AS (
  SELECT c.customer_id, {month_c} AS month, COUNT(*) AS n_sent, SUM(CAST({contact_cost_sql(costs or CostRules(), "c.channel", d)} AS DOUBLE)) AS cost
  FROM contacts c WHERE {is_sent("c")} GROUP BY c.customer_id, {month_c}
),
ends AS (
  SELECT MAX(ts) AS last_at FROM (SELECT MAX(occurred_at) AS ts FROM transactions
                                  UNION ALL SELECT MAX(occurred_at) AS ts FROM contacts) x
),
months AS (
  SELECT DISTINCT x.month FROM (SELECT month FROM tx UNION ALL SELECT month FROM sent) x CROSS JOIN ends e
  WHERE x.month < {end_month}
),
acquired AS (SELECT customer_id, MIN(month) AS first_month FROM tx WHERE purchases > 0 GROUP BY customer_id),
unsubs AS (
  SELECT c.customer_id, MIN({month_c}) AS unsub_month FROM contacts c WHERE c.kind = 'unsubscribed'
  GROUP BY c.customer_id
),
grid AS (
  SELECT a.customer_id, m.month, a.first_month,
         COALESCE(x.n_sent, 0) AS n_sent, COALESCE(x.cost, 0.0) AS contact_cost,
         COALESCE(o.purchases, 0) AS purchases, COALESCE(o.revenue, 0.0) AS revenue, COALESCE(o.net, 0.0) AS net,
         CASE WHEN u.unsub_month = m.month THEN 1 ELSE 0 END AS unsubscribed
  FROM acquired a JOIN months m ON m.month >= a.first_month
  LEFT JOIN unsubs u ON u.customer_id = a.customer_id
  LEFT JOIN sent x ON x.customer_id = a.customer_id AND x.month = m.month
  LEFT JOIN tx o ON o.customer_id = a.customer_id AND o.month = m.month
  WHERE u.unsub_month IS NULL OR m.month <= u.unsub_month
),
history AS (
  SELECT g.customer_id, g.month, g.first_month, g.n_sent, g.contact_cost, g.purchases, g.revenue, g.unsubscribed,
         SUM(CASE WHEN g.purchases > 0 THEN 1 ELSE 0 END) {prior} AS prior_buying_months,
         SUM(g.purchases) {prior} AS prior_purchases,
         SUM(g.net) {prior} AS prior_spend,
         MAX(CASE WHEN g.purchases > 0 THEN g.month END) {prior} AS last_buying_month
  FROM grid g
),
ranked AS (
  SELECT h.*, {d.months_between("h.last_buying_month", "h.month")} AS recency_months,
         (RANK() OVER (PARTITION BY h.month ORDER BY h.prior_spend DESC) - 1)
           / CAST(COUNT(*) OVER (PARTITION BY h.month) AS DOUBLE) AS spend_above
  FROM history h WHERE h.month > h.first_month
),
cm AS (
  SELECT customer_id, month, n_sent, contact_cost, CASE WHEN n_sent >= {int(top)} THEN {int(top)} ELSE n_sent END AS dose,
         purchases, CASE WHEN purchases > 0 THEN 1 ELSE 0 END AS bought, revenue, unsubscribed,
         {_band("recency_months", RECENCY_BANDS, d)} AS recency_band,
         {_band("prior_buying_months", FREQUENCY_BANDS, d)} AS frequency_band,
         {segment} AS segment
  FROM ranked
)"""


def dose_cells_sql(*, top: int, segments: Segments = "value_tier", tiers: TierRules | None = None,
                   costs: CostRules | None = None, d: Dialect = DUCKDB) -> str:
    """Per segment, stratum (month, recency band, buying-months band) and dose: customer-months,
    months with a purchase, purchases and their sum of squares, revenue (orders), unsubscribes,
    contacts sent and their cost."""
    return f"""WITH {customer_months_ctes(top=top, segments=segments, tiers=tiers, costs=costs, d=d)}
SELECT segment, month, recency_band, frequency_band, dose,
       COUNT(*) AS customer_months, SUM(bought) AS buying_months, SUM(purchases) AS purchases,
       SUM(CAST(purchases AS DOUBLE) * purchases) AS purchases_sq, SUM(revenue) AS revenue,
       SUM(unsubscribed) AS unsubscribes, SUM(n_sent) AS contacts, SUM(contact_cost) AS contact_cost
FROM cm
GROUP BY segment, month, recency_band, frequency_band, dose
ORDER BY segment, month, recency_band, frequency_band, dose"""


def recent_contacts_sql(*, recent_months: int, top: int, segments: Segments = "value_tier", tiers: TierRules | None = None,
                        d: Dialect = DUCKDB) -> str:
    """Per customer: mean contacts per month over the latest ``recent_months`` complete months of
    the data in which they are analysed (after acquisition, up to an unsubscribe), and their
    segment in the last of those months."""
    return f"""WITH {customer_months_ctes(top=top, segments=segments, tiers=tiers, d=d)},
latest_months AS (SELECT month, ROW_NUMBER() OVER (ORDER BY month DESC) AS k FROM months),
recent AS (SELECT cm.* FROM cm JOIN latest_months r ON r.month = cm.month AND r.k <= {int(recent_months)}),
latest AS (
  SELECT customer_id, segment, ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY month DESC) AS k FROM recent
)
SELECT r.customer_id, MAX(l.segment) AS segment, COUNT(*) AS months,
       AVG(CAST(r.n_sent AS DOUBLE)) AS contacts_per_month, SUM(r.unsubscribed) AS unsubscribed
FROM recent r JOIN latest l ON l.customer_id = r.customer_id AND l.k = 1
GROUP BY r.customer_id"""
