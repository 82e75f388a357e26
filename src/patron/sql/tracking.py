"""SQL for aggregate tracking: repeat purchases per period since the cohort's start, and each
customer's first purchase day. Same conventions as :mod:`patron.sql.summary` (purchases are
``amount >= 0``; several on one day count once)."""

from __future__ import annotations

from datetime import date

from patron.constants import PERIOD_UNITS
from patron.sql.dialect import Dialect


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
