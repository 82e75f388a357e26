"""SQL builders for contact effects. Each returns SQL text; running happens in the callers through
:func:`patron.data.store.connect`. The SQL is plain (CTEs, joins on ranges, ``CASE``, window functions,
``INTERVAL 'n' DAY``) so it runs on DuckDB and Spark alike.

Definitions (see docs/contact-effect.md):

* **Exposure**: one row per (campaign, customer) with a ``sent`` contact of that campaign. The
  exposure time is the customer's first ``sent`` row of the campaign. The customer is in the
  **control** arm when any of those rows has ``in_holdout`` true (a holdout row means "would have
  been sent"; assignment wins, as in an intention-to-treat analysis), else in the **treated** arm.
* **Outcome window**: ``(exposed_at, exposed_at + window_days]``. Purchases are orders with
  ``amount >= 0`` in the window; revenue is the sum of ``amount`` (refunds netted); a customer
  *responded* when they made at least one purchase. Unsubscribes and complaints count from the
  exposure time (inclusive) to the window end, whatever campaign they name.
"""

from __future__ import annotations

from datetime import datetime

from patron.data.dialect import DUCKDB, Dialect
from patron.data.sent_contacts import is_sent

SENT = is_sent("c")
"""A contact row (alias ``c``) that was really sent, not a holdout record (:mod:`patron.data.sent_contacts`)."""


def plus_days(ts: str, days: int) -> str:
    """``ts`` plus ``days`` whole days (ANSI interval literal, DuckDB and Spark)."""
    return f"{ts} + INTERVAL '{int(days)}' DAY"


def exposures_cte(campaign_id: str | None = None, d: Dialect = DUCKDB) -> str:
    """CTE ``exposures(campaign_id, customer_id, exposed_at, in_control)``; one row per campaign
    and customer with a ``sent`` row (``in_control`` is 1 for the holdout arm, 0 for treated)."""
    where = f" AND campaign_id = {d.literal(campaign_id)}" if campaign_id is not None else ""
    return f"""exposures AS (
  SELECT campaign_id, customer_id, MIN(occurred_at) AS exposed_at,
         MAX(CASE WHEN in_holdout THEN 1 ELSE 0 END) AS in_control
  FROM contacts
  WHERE kind = 'sent' AND campaign_id IS NOT NULL{where}
  GROUP BY campaign_id, customer_id
)"""


def outcome_ctes(window_days: int, source: str = "exposures") -> str:
    """CTEs ``bought``, ``reacted`` and ``outcomes`` (one row per row of ``source``, which has
    ``campaign_id, customer_id, exposed_at, in_control``)."""
    end = plus_days("e.exposed_at", window_days)
    return f"""bought AS (
  SELECT e.campaign_id, e.customer_id,
         SUM(CASE WHEN t.amount >= 0 THEN 1 ELSE 0 END) AS purchases, SUM(t.amount) AS revenue
  FROM {source} e JOIN transactions t
    ON t.customer_id = e.customer_id AND t.occurred_at > e.exposed_at AND t.occurred_at <= {end}
  GROUP BY e.campaign_id, e.customer_id
),
reacted AS (
  SELECT e.campaign_id, e.customer_id,
         MAX(CASE WHEN c.kind = 'unsubscribed' THEN 1 ELSE 0 END) AS unsubscribed,
         MAX(CASE WHEN c.kind = 'complained' THEN 1 ELSE 0 END) AS complained
  FROM {source} e JOIN contacts c
    ON c.customer_id = e.customer_id AND c.kind IN ('unsubscribed', 'complained')
   AND c.occurred_at >= e.exposed_at AND c.occurred_at <= {end}
  GROUP BY e.campaign_id, e.customer_id
),
outcomes AS (
  SELECT e.campaign_id, e.customer_id, e.exposed_at, e.in_control,
         COALESCE(b.purchases, 0) AS purchases, COALESCE(b.revenue, 0.0) AS revenue,
         CASE WHEN COALESCE(b.purchases, 0) > 0 THEN 1 ELSE 0 END AS responded,
         COALESCE(r.unsubscribed, 0) AS unsubscribed, COALESCE(r.complained, 0) AS complained
  FROM {source} e
  LEFT JOIN bought b ON b.campaign_id = e.campaign_id AND b.customer_id = e.customer_id
  LEFT JOIN reacted r ON r.campaign_id = e.campaign_id AND r.customer_id = e.customer_id
)"""


def campaign_arms_sql(*, window_days: int, campaign_id: str | None = None) -> str:
    """One row per campaign and arm: size, responders, mean and sample variance of purchases and
    revenue per customer, unsubscribes, complaints, first and last exposure."""
    return f"""WITH {exposures_cte(campaign_id)},
{outcome_ctes(window_days)}
SELECT campaign_id, in_control, COUNT(*) AS n, SUM(responded) AS responders,
       AVG(CAST(purchases AS DOUBLE)) AS purchases_mean, VAR_SAMP(CAST(purchases AS DOUBLE)) AS purchases_var,
       AVG(revenue) AS revenue_mean, VAR_SAMP(revenue) AS revenue_var,
       SUM(unsubscribed) AS unsubscribed, SUM(complained) AS complained,
       MIN(exposed_at) AS first_exposure, MAX(exposed_at) AS last_exposure
FROM outcomes
GROUP BY campaign_id, in_control
ORDER BY campaign_id, in_control"""


def feature_ctes(source: str = "exposures", d: Dialect = DUCKDB) -> str:
    """CTEs ``history``, ``touches`` and ``features``: pre-exposure features of each row of
    ``source`` (everything strictly before ``exposed_at``; durations in days)."""
    day = "CAST(e.exposed_at AS DATE)"
    return f"""history AS (
  SELECT e.campaign_id, e.customer_id, COUNT(*) AS orders, SUM(t.amount) AS spend,
         MIN(t.occurred_at) AS first_order, MAX(t.occurred_at) AS last_order
  FROM {source} e JOIN transactions t
    ON t.customer_id = e.customer_id AND t.occurred_at < e.exposed_at AND t.amount >= 0
  GROUP BY e.campaign_id, e.customer_id
),
touches AS (
  SELECT e.campaign_id, e.customer_id,
         SUM(CASE WHEN {SENT} THEN 1 ELSE 0 END) AS contacts_before,
         SUM(CASE WHEN {SENT} AND c.occurred_at >= e.exposed_at - INTERVAL '90' DAY
                  THEN 1 ELSE 0 END) AS contacts_90d,
         SUM(CASE WHEN c.kind = 'opened' THEN 1 ELSE 0 END) AS opens_before,
         SUM(CASE WHEN c.kind = 'clicked' THEN 1 ELSE 0 END) AS clicks_before,
         MAX(CASE WHEN {SENT} THEN c.occurred_at END) AS last_contact
  FROM {source} e JOIN contacts c ON c.customer_id = e.customer_id AND c.occurred_at < e.exposed_at
  GROUP BY e.campaign_id, e.customer_id
),
features AS (
  SELECT e.campaign_id, e.customer_id,
         COALESCE(h.orders, 0) AS orders,
         {d.days_between("CAST(h.last_order AS DATE)", day)} AS recency_days,
         {d.days_between("CAST(h.first_order AS DATE)", day)} AS tenure_days,
         h.spend / h.orders AS mean_order_value,
         COALESCE(k.contacts_before, 0) AS contacts_before, COALESCE(k.contacts_90d, 0) AS contacts_90d,
         COALESCE(k.opens_before, 0) AS opens_before, COALESCE(k.clicks_before, 0) AS clicks_before,
         {d.days_between("CAST(k.last_contact AS DATE)", day)} AS days_since_contact
  FROM {source} e
  LEFT JOIN history h ON h.campaign_id = e.campaign_id AND h.customer_id = e.customer_id
  LEFT JOIN touches k ON k.campaign_id = e.campaign_id AND k.customer_id = e.customer_id
)"""


FEATURES: tuple[str, ...] = (
    "orders", "recency_days", "tenure_days", "mean_order_value",
    "contacts_before", "contacts_90d", "opens_before", "clicks_before", "days_since_contact",
)
"""Pre-exposure features of the uplift model (NULL where a customer has no history)."""


def training_sql(*, window_days: int, campaign_id: str | None = None, d: Dialect = DUCKDB) -> str:
    """One row per exposure: features, arm (``in_control``), ``responded`` and ``revenue``."""
    cols = ", ".join(f"f.{c}" for c in FEATURES)
    return f"""WITH {exposures_cte(campaign_id, d)},
{outcome_ctes(window_days)},
{feature_ctes(d=d)}
SELECT o.campaign_id, o.customer_id, o.in_control, o.responded, o.revenue, {cols}
FROM outcomes o JOIN features f ON f.campaign_id = o.campaign_id AND f.customer_id = o.customer_id
ORDER BY o.campaign_id, o.customer_id"""


def scoring_sql(as_of: datetime, d: Dialect = DUCKDB) -> str:
    """Features of every known customer (customers, transactions, contacts) as of ``as_of``."""
    ts = f"TIMESTAMP '{as_of.strftime('%Y-%m-%d %H:%M:%S')}'"
    cols = ", ".join(f"f.{c}" for c in FEATURES)
    return f"""WITH population AS (
  SELECT 'score' AS campaign_id, customer_id, {ts} AS exposed_at, 0 AS in_control
  FROM (SELECT customer_id FROM customers UNION SELECT customer_id FROM transactions
        UNION SELECT customer_id FROM contacts) ids
),
{feature_ctes("population", d)}
SELECT f.customer_id, {cols} FROM features f ORDER BY f.customer_id"""
