"""The motivation mix of the base: each motivation's share, CLV and loyalty side by side, and how the
mix moves over time (``patron motivation``, the report's motivation section, ``GET /v1/motivation``).

* :func:`motivation_table` groups ``customer_profiles`` by ``motivation`` in SQL: customers and
  their share of the base, equity (sum of CLV, with the ``[value]`` settings) and its share, mean
  CLV, and loyalty: the repeat rate (share of buyers who came back), mean P(alive), the share in
  an active status (new, active) and the mean discount share. Prospects are left out (the base is
  the customers who bought by ``as_of``).
* :func:`motivation_over_time` classifies the base as of each period end (quarter ends by default,
  the last ``periods`` of them up to ``as_of``) with :func:`patron.relationship.motivation.motivation_sql`
  and counts each motivation, in one SQL statement. The base at a date is the customers with some
  evidence in the lookback before it (``motivation_evidence > 0``): those who bought, answered,
  read or referred in the year before.
"""

from __future__ import annotations

import os
from datetime import date, timedelta
from typing import Any

import pandas as pd

from patron.data.dialect import DUCKDB
from patron.data.store import reader, table_exists
from patron.dates import parse_day
from patron.errors import NoDataError
from patron.relationship.motivation import MOTIVATIONS, motivation_sql, rules, sources
from patron.relationship.profiles import PROFILE_TABLE, build_profiles
from patron.value.settings import ValueSettings

ConfigArg = str | os.PathLike[str] | dict[str, Any] | None

TABLE_COLUMNS: tuple[str, ...] = (
    "motivation", "customers", "share", "equity", "equity_share", "mean_clv", "repeat_rate",
    "mean_probability_alive", "active_share", "mean_discount_share", "mean_discount_score", "mean_values_score",
)
"""Columns of :func:`motivation_table`, in order."""

PERIOD_MONTHS: dict[str, int] = {"M": 1, "Q": 3, "Y": 12}
"""Months per period of :func:`motivation_over_time`."""

DEFAULT_PERIODS = 8
"""Period ends :func:`motivation_over_time` shows by default (two years of quarters)."""


def _order(frame: pd.DataFrame) -> pd.DataFrame:
    rank = {m: i for i, m in enumerate(MOTIVATIONS)}
    return frame.sort_values("motivation", key=lambda s: s.map(rank)).reset_index(drop=True)


def motivation_rows(con: Any) -> pd.DataFrame:
    """:func:`motivation_table` of the stored ``customer_profiles`` of the database open on ``con``
    (as they are: nothing is built; empty when no profile has a motivation column)."""
    cols = {d[0] for d in con.execute(f"SELECT * FROM {PROFILE_TABLE} LIMIT 0").description}
    if "motivation" not in cols:
        return pd.DataFrame(columns=list(TABLE_COLUMNS))
    sql = f"""SELECT g.*, g.customers / CAST(t.customers AS DOUBLE) AS share,
       CASE WHEN t.equity > 0 THEN g.equity / t.equity END AS equity_share
FROM (SELECT motivation, COUNT(*) AS customers, COALESCE(SUM(clv), 0.0) AS equity, AVG(clv) AS mean_clv,
             AVG(CASE WHEN returned THEN 1.0 ELSE 0.0 END) AS repeat_rate,
             AVG(probability_alive) AS mean_probability_alive,
             AVG(CASE WHEN status IN ('new', 'active') THEN 1.0 ELSE 0.0 END) AS active_share,
             AVG(motivation_discount_share) AS mean_discount_share,
             AVG(motivation_discount_score) AS mean_discount_score, AVG(motivation_values_score) AS mean_values_score
      FROM {PROFILE_TABLE} WHERE status <> 'prospect' GROUP BY motivation) AS g
CROSS JOIN (SELECT COUNT(*) AS customers, SUM(clv) AS equity FROM {PROFILE_TABLE} WHERE status <> 'prospect') AS t"""
    return _order(con.sql(sql).df())[list(TABLE_COLUMNS)]


def motivation_table(db: str | os.PathLike[str] | None = None, *, as_of: Any = None, config: ConfigArg = None,
                     settings: ValueSettings | None = None) -> pd.DataFrame:
    """One row per motivation (:data:`MOTIVATIONS` order, those present) with :data:`TABLE_COLUMNS`,
    over the stored ``customer_profiles`` (built, or rebuilt for another ``as_of`` or other value
    ``settings``, first). Shares are of the customers who bought by ``as_of`` and sum to 1."""
    from patron.relationship.segments import ensure_profiles

    value = ensure_profiles(db, as_of=as_of, config=config, settings=settings)
    with reader(db) as con:
        cols = {d[0] for d in con.execute(f"SELECT * FROM {PROFILE_TABLE} LIMIT 0").description}
    if "motivation" not in cols:  # profiles stored by a patron without the motivation columns
        build_profiles(db, as_of=as_of, config=config, settings=value)
    with reader(db) as con:
        return motivation_rows(con)


def period_ends(end: date, freq: str = "Q", periods: int = DEFAULT_PERIODS) -> list[date]:
    """``end`` and the ``periods - 1`` period ends (month, quarter or year ends: ``M``, ``Q``,
    ``Y``) before it, oldest first."""
    from patron.errors import InputError

    step = PERIOD_MONTHS.get(freq.upper())
    if step is None:
        raise InputError(f"freq must be one of {', '.join(PERIOD_MONTHS)}; got {freq!r}", parameters=("freq",))
    if not 1 <= periods <= 120:
        raise InputError(f"periods must be between 1 and 120; got {periods}", parameters=("periods",))
    out: list[date] = []
    y, m = end.year, end.month
    while len(out) < periods - 1:
        last = date(y + (m == 12), m % 12 + 1, 1) - timedelta(days=1)
        if m % step == 0 and last < end:
            out.append(last)
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    return [*reversed(out), end]


def motivation_over_time(db: str | os.PathLike[str] | None = None, *, as_of: Any = None, freq: str = "Q",
                         periods: int = DEFAULT_PERIODS, config: ConfigArg = None) -> pd.DataFrame:
    """Customers and share of each motivation as of each of :func:`period_ends` (up to ``as_of``,
    default the day of the last purchase): columns ``as_of, motivation, customers, share``, one row
    per date and motivation present, dates oldest first. The base at each date is the customers
    with some evidence in the lookback (module docstring); shares at one date sum to 1."""
    from patron.dates import default_as_of

    r = rules(config)
    with reader(db) as con:
        if not table_exists(con, "transactions"):
            raise NoDataError(f"database {db} holds no transactions: run patron ingest FILE --kind transactions first")
        end = parse_day(as_of, "as_of") or default_as_of(con)
        present = sources(con)
        days = period_ends(end, freq, periods)
        parts = [f"""SELECT {DUCKDB.date_literal(d)} AS as_of, motivation, COUNT(*) AS customers
FROM ({motivation_sql(d, r, present)}) AS m{i} WHERE motivation_evidence > 0 GROUP BY motivation""" for i, d in enumerate(days)]
        frame = con.sql("\nUNION ALL\n".join(parts)).df()
    if frame.empty:
        return pd.DataFrame(columns=["as_of", "motivation", "customers", "share"])
    frame["as_of"] = pd.to_datetime(frame["as_of"])
    frame["share"] = frame["customers"] / frame.groupby("as_of")["customers"].transform("sum")
    rank = {m: i for i, m in enumerate(MOTIVATIONS)}
    frame = frame.assign(_r=frame["motivation"].map(rank)).sort_values(["as_of", "_r"]).drop(columns="_r")
    return frame.reset_index(drop=True)
