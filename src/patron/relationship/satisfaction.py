"""Satisfaction against behaviour: do customers who say they are happy actually come back?

Definitions (as of ``as_of``, inclusive; default the day of the last purchase):

* Each customer's **first** response of each ``kind`` (lower-cased) on or before ``as_of`` is
  used, so that what they did afterwards can be observed for as long as possible.
* **Bands**: ``nps`` (0-10): ``detractor`` (score <= 6), ``passive`` (6 < score < 9),
  ``promoter`` (score >= 9). ``csat`` (1-5): the score rounded to a whole number. Any other kind:
  the raw score when it takes at most :data:`MAX_RAW_BANDS` distinct values, else score quartiles.
* Behaviour (orders: ``amount >= 0``, purchases: order days, as in :mod:`patron.relationship.loyalty`):
  ``returned`` (a purchase on a later day than the first), ``n_orders``, ``spend`` (order
  amounts) over the whole history to ``as_of``; ``purchases_after``: purchase days strictly after
  the response day; ``purchases_after_per_year``: that count per 365.25 days
  (:data:`~patron.constants.DAYS_PER_YEAR`) from the response day to ``as_of`` (NULL for a response on ``as_of`` itself).
* ``spearman_rho`` / ``spearman_p``: Spearman rank correlation (SciPy) between score and
  ``purchases_after_per_year`` over the kind's customers with a follow-up window (NaN when either
  is constant or fewer than 3 customers), repeated on each band row of the kind.
"""

from __future__ import annotations

import os
from datetime import date

import numpy as np
import pandas as pd
from scipy import stats

from patron.constants import DAYS_PER_YEAR
from patron.data.dialect import DUCKDB, Dialect
from patron.data.store import table_exists
from patron.dates import DayArg
from patron.relationship.loyalty import open_transactions, orders_cte, resolve_as_of

MAX_RAW_BANDS = 5
"""A kind other than nps/csat with at most this many distinct scores is banded by raw score."""

SATISFACTION_COLUMNS: tuple[str, ...] = (
    "kind", "band", "band_order", "customers", "return_rate", "mean_orders", "mean_spend",
    "mean_purchases_after_per_year", "spearman_rho", "spearman_p", "n_correlated",
)
"""Columns of :func:`satisfaction_vs_loyalty`, in order."""


def feedback_behaviour_sql(as_of: date, dialect: Dialect = DUCKDB) -> str:
    """Per customer and kind: the first response and the customer's behaviour (module docstring)."""
    d = dialect
    end = d.date_literal(as_of)
    return f"""WITH {orders_cte(as_of, d)},
purchases AS (
  SELECT customer_id, day, SUM(amount) AS value, COUNT(*) AS n FROM orders GROUP BY customer_id, day
),
per_customer AS (
  SELECT customer_id, COUNT(*) AS n_purchases, SUM(n) AS n_orders, SUM(value) AS spend
  FROM purchases GROUP BY customer_id
),
responses AS (
  SELECT customer_id, kind, score, day FROM (
    SELECT customer_id, lower(kind) AS kind, score, CAST(occurred_at AS DATE) AS day,
           ROW_NUMBER() OVER (PARTITION BY customer_id, lower(kind) ORDER BY occurred_at, score) AS r
    FROM feedback WHERE CAST(occurred_at AS DATE) <= {end}
  ) f WHERE r = 1
),
after AS (
  SELECT f.customer_id, f.kind, COUNT(p.day) AS purchases_after
  FROM responses f LEFT JOIN purchases p ON p.customer_id = f.customer_id AND p.day > f.day
  GROUP BY f.customer_id, f.kind
)
SELECT f.customer_id, f.kind, f.score, f.day AS feedback_day,
       CAST({d.days_between('f.day', end)} AS DOUBLE) AS days_after,
       CAST(coalesce(c.n_orders, 0) AS BIGINT) AS n_orders,
       coalesce(c.spend, 0.0) AS spend,
       coalesce(c.n_purchases, 0) > 1 AS returned,
       CAST(a.purchases_after AS BIGINT) AS purchases_after
FROM responses f
JOIN after a ON a.customer_id = f.customer_id AND a.kind = f.kind
LEFT JOIN per_customer c ON c.customer_id = f.customer_id
ORDER BY f.kind, f.customer_id"""


def _bands(kind: str, score: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Band label and sort order for each score of one kind."""
    s = score.astype(float)
    if kind == "nps":
        order = pd.Series(np.select([s <= 6, s < 9], [0, 1], 2), index=s.index)
        return order.map({0: "detractor", 1: "passive", 2: "promoter"}), order
    if kind == "csat" or s.nunique() <= MAX_RAW_BANDS:
        raw = s.round() if kind == "csat" else s
        return raw.map(lambda v: f"{v:g}"), raw
    codes = pd.qcut(s, 4, labels=False, duplicates="drop")
    edges = pd.qcut(s, 4, duplicates="drop").astype(str)
    return "q" + (codes + 1).astype(int).astype(str) + " " + edges, codes


def feedback_behaviour(db: str | os.PathLike[str] | None = None, *, as_of: DayArg = None) -> pd.DataFrame:
    """One row per customer and feedback kind: ``customer_id, kind, score, feedback_day,
    days_after, n_orders, spend, returned, purchases_after, purchases_after_per_year``
    (definitions in the module docstring); empty when there is no feedback."""
    with open_transactions(db) as con:
        day = resolve_as_of(con, as_of)
        if not table_exists(con, "feedback") or not con.execute("SELECT EXISTS (SELECT 1 FROM feedback)").fetchall()[0][0]:
            # no response: nothing to join the purchases with (they are not aggregated for nothing)
            frame = pd.DataFrame(columns=["customer_id", "kind", "score", "feedback_day", "days_after", "n_orders", "spend", "returned", "purchases_after"])
        else:
            frame = con.sql(feedback_behaviour_sql(day)).df()
    window = frame["days_after"].astype(float)
    frame["purchases_after_per_year"] = frame["purchases_after"].astype(float) / (window / DAYS_PER_YEAR).where(window > 0)
    return frame


def satisfaction_vs_loyalty(db: str | os.PathLike[str] | None = None, *, as_of: DayArg = None) -> pd.DataFrame:
    """Loyalty behaviour by satisfaction band, per feedback kind: :data:`SATISFACTION_COLUMNS`
    (definitions in the module docstring). An empty DataFrame when no feedback was ingested."""
    frame = feedback_behaviour(db, as_of=as_of)
    if frame.empty:
        return pd.DataFrame(columns=list(SATISFACTION_COLUMNS))
    parts = []
    for kind, rows in frame.groupby("kind", sort=True):  # one iteration per survey kind, not per customer
        band, order = _bands(str(kind), rows["score"])
        rows = rows.assign(band=band, band_order=order)
        table = rows.groupby(["band", "band_order"], as_index=False).agg(
            customers=("customer_id", "count"), return_rate=("returned", "mean"), mean_orders=("n_orders", "mean"),
            mean_spend=("spend", "mean"), mean_purchases_after_per_year=("purchases_after_per_year", "mean"),
        )
        usable = rows["purchases_after_per_year"].notna()
        x, y = rows.loc[usable, "score"].astype(float), rows.loc[usable, "purchases_after_per_year"].astype(float)
        rho, p = (np.nan, np.nan)
        if usable.sum() >= 3 and x.nunique() > 1 and y.nunique() > 1:
            res = stats.spearmanr(x, y)
            rho, p = float(res.statistic), float(res.pvalue)
        table.insert(0, "kind", kind)
        table["spearman_rho"], table["spearman_p"], table["n_correlated"] = rho, p, int(usable.sum())
        parts.append(table.sort_values("band_order"))
    out = pd.concat(parts, ignore_index=True)
    out["return_rate"] = out["return_rate"].astype(float)
    return out[list(SATISFACTION_COLUMNS)]
