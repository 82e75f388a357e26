"""Status and loyalty broken down by any profile column (a customer attribute such as ``city``, the
``region`` of place, a tier, ...): one SQL GROUP BY over ``customer_profiles``.

:func:`breakdown_by` gives, per value of the column: customers, customer equity (sum of CLV) and
its share, mean CLV, the customers in each relationship status
(:data:`patron.relationship.status.STATUSES`), mean P(alive), the return rate (share of buyers who
bought again on a later day), the share of buyers who are discount dependent, and mean total
spend. Groups partition the customers (missing values form the group NULL)."""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from patron.data.dialect import DUCKDB
from patron.data.store import reader
from patron.relationship.profiles import PROFILE_TABLE
from patron.relationship.segments.equity import group_column
from patron.relationship.segments.rules import quote_identifier
from patron.relationship.status import STATUSES
from patron.value.settings import ValueSettings


def breakdown_sql(column: str, expr: str) -> str:
    """The SELECT of :func:`breakdown_by` for the group expression ``expr`` named ``column``."""
    name = quote_identifier(column)
    statuses = ", ".join(f"count(CASE WHEN status = {DUCKDB.literal(s)} THEN 1 END) AS {quote_identifier(s)}" for s in STATUSES)
    return f"""SELECT g.*, CASE WHEN tot.equity > 0 THEN g.equity / tot.equity END AS equity_share
FROM (SELECT {expr} AS {name}, count(*) AS customers, COALESCE(sum(clv), 0.0) AS equity, avg(clv) AS mean_clv, {statuses},
        avg(probability_alive) AS mean_probability_alive,
        avg(CASE WHEN n_orders >= 1 THEN CAST(returned AS DOUBLE) END) AS return_rate,
        avg(CASE WHEN n_orders >= 1 THEN CAST(discount_dependent AS DOUBLE) END) AS discount_dependent_share,
        avg(total_spend) AS mean_total_spend
      FROM {PROFILE_TABLE} GROUP BY {expr}) AS g
CROSS JOIN (SELECT sum(clv) AS equity FROM {PROFILE_TABLE}) AS tot
ORDER BY g.customers DESC, g.{name}"""


def breakdown_by(db: str | os.PathLike[str] | None, by: str, *, config: Any = None, as_of: Any = None,
                 settings: ValueSettings | None = None) -> pd.DataFrame:
    """Status and loyalty per value of profile column ``by`` (see the module docstring), largest
    group first. The profiles are built first when absent, of another ``as_of`` or of other value
    ``settings``; an unknown column is an :class:`~patron.errors.InputError` with "did you mean"."""
    from patron.relationship.segments import ensure_profiles

    ensure_profiles(db, as_of=as_of, config=config, settings=settings)
    with reader(db) as con:
        column, expr = group_column(con, by, config)
        return con.sql(breakdown_sql(column, expr)).df()
