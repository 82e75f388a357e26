"""SQL for aggregate tracking: repeat purchases per period since the cohort's start, and each
customer's first purchase day. Same conventions as :mod:`patron.value.summary_sql` (purchases are
``amount >= 0``; several on one day count once)."""

from __future__ import annotations

from datetime import date

from patron.constants import PERIOD_UNITS
from patron.data.dialect import Dialect


def first_purchase_sql(dialect: Dialect, *, start: date, unit: str, table: str = "transactions") -> str:
    """Customers per first-purchase offset: ``(first_offset, customers)`` with ``first_offset`` the time from
    ``start`` to the customer's first purchase day, in ``unit``."""
    d = dialect
    days = d.days_between(d.date_literal(start), "first_day")
    return f"""SELECT CAST({days} AS DOUBLE) / {PERIOD_UNITS[unit]!r} AS first_offset, COUNT(*) AS customers
FROM (SELECT customer_id, MIN(CAST(occurred_at AS DATE)) AS first_day FROM {table}
      WHERE amount >= 0 GROUP BY customer_id) f
GROUP BY first_day ORDER BY first_offset"""


def repeat_purchases_by_period_sql(dialect: Dialect, *, start: date, end: date, unit: str, table: str = "transactions") -> str:
    """Repeat purchase days per whole period since ``start`` up to ``end`` (inclusive):
    ``(period, repeat_purchases)`` with ``period`` = floor(days since start / unit days)."""
    d = dialect
    since = d.days_between(d.date_literal(start), "day")
    return f"""SELECT CAST(FLOOR(CAST({since} AS DOUBLE) / {PERIOD_UNITS[unit]!r}) AS BIGINT) AS period,
       COUNT(*) AS repeat_purchases
FROM (SELECT customer_id, day, MIN(day) OVER (PARTITION BY customer_id) AS first_day
      FROM (SELECT DISTINCT customer_id, CAST(occurred_at AS DATE) AS day FROM {table} WHERE amount >= 0) p) r
WHERE day > first_day AND day <= {d.date_literal(end)}
GROUP BY 1 ORDER BY 1"""


def purchases_by_period_sql(dialect: Dialect, *, grain: str, start: str, stop: str,
                            table: str = "transactions") -> str:
    """First and repeat purchases per ``grain`` period: ``(period, first_purchases,
    repeat_purchases)`` with ``period`` the number of whole periods from the period holding the
    TIMESTAMP expression ``start``. A customer's purchases (``amount >= 0``) in one period count
    once; their first period holds their first purchase, later ones are repeat purchases. Orders
    at or after the TIMESTAMP expression ``stop`` are left out."""
    from patron.value.summary_sql import period_expr, periods_between

    d = dialect
    p = period_expr(d, grain, "occurred_at")
    origin = period_expr(d, grain, start)
    return f"""WITH p AS (
  SELECT DISTINCT customer_id, {p} AS p FROM {table}
  WHERE amount >= 0 AND occurred_at >= {start} AND occurred_at < {stop}
), f AS (SELECT customer_id, MIN(p) AS first_p FROM p GROUP BY customer_id)
SELECT {periods_between(d, grain, origin, "p.p")} AS period,
       SUM(CASE WHEN p.p = f.first_p THEN 1 ELSE 0 END) AS first_purchases,
       SUM(CASE WHEN p.p > f.first_p THEN 1 ELSE 0 END) AS repeat_purchases
FROM p JOIN f ON p.customer_id = f.customer_id
GROUP BY 1 ORDER BY 1"""
