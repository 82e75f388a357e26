"""Loyalty judged by behaviour: does a customer come back, come back faster, spend more each time,
buy only with a discount, and in which categories?

Definitions (all as of ``as_of``, a DATE, inclusive; default the day of the last purchase, :func:`patron.dates.default_as_of`):

* **Orders** are transaction rows with ``amount >= 0`` on or before ``as_of``. Refunds
  (``amount < 0``) are excluded from every loyalty measure. A zero-amount order (a free item) is an
  order, as in :mod:`patron.value.summary_sql`, so ``returned`` is exactly ``frequency > 0`` there.
* **Purchases** are a customer's orders grouped by calendar day (UTC): several orders on one day
  are one purchase whose value is their sum. ``n_orders`` counts orders, ``n_purchases`` days.
* ``returned``: the customer made a purchase on a later day than the first one.
  ``days_to_second_purchase``: days from the first to the second purchase day (NULL if none).
* **Inter-purchase gaps** ``g_1 .. g_m`` (``m = n_purchases - 1``): days between consecutive
  purchase days (``LAG`` over the days). ``mean_interpurchase_days`` is their mean.
  ``interpurchase_slope`` is the least-squares slope of ``g_i`` on ``i`` (days per purchase;
  negative = coming back faster); NULL with fewer than two gaps.
* ``spend_slope``: least-squares slope of purchase value ``v_k`` on ``k = 1 .. n_purchases``
  (currency per purchase); NULL with fewer than two purchases.
* **Trends**: ``insufficient`` with fewer than ``[loyalty] trend_min_gaps`` gaps (spend: fewer
  than ``spend_trend_min_purchases`` purchases). Otherwise the slope is compared with the mean
  (``mean_interpurchase_days`` or the mean purchase value): ``|slope| >= steady_relative_slope x
  mean`` with a negative slope is ``shortening`` / ``falling``, with a positive slope
  ``lengthening`` / ``rising``; anything smaller is ``steady``.
* **Discounts** count orders whose ``discount`` is known (not NULL): ``discount_order_share`` =
  orders with ``discount > 0`` / orders with a known discount; ``discount_revenue_share`` = amount
  of those discounted orders / amount of orders with a known discount. Both are NULL when no order
  of the customer carries a discount value (the column was never given). ``discount_dependent``:
  the share on the ``discount_basis`` (orders or revenue) is **at least**
  ``discount_dependent_share``; ``full_price_buyer``: known discounts and none above zero.
* **Categories**: revenue (sum of order amounts) per category, orders without a category left
  out; ``top_category`` has the most revenue (ties: more orders, then alphabetical) and
  ``top_category_share`` is its share of the customer's categorised revenue.

The per-customer work is one portable SQL query (window functions and explicit least-squares
sums, no engine-specific aggregates); :func:`loyalty_sql` returns it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any, Literal

import duckdb
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from patron.config import section
from patron.data.dialect import DUCKDB, Dialect
from patron.data.store import reader, table_exists
from patron.dates import DayArg, default_as_of, parse_day
from patron.errors import NoDataError

ConfigArg = str | os.PathLike[str] | dict[str, Any] | None


class LoyaltyRules(BaseModel):
    """The ``[loyalty]`` section of the rules file."""

    model_config = ConfigDict(extra="forbid")

    trend_min_gaps: int = Field(3, ge=2)
    """Inter-purchase gaps (repeat purchases) a customer needs before an inter-purchase trend is
    given; fewer is ``insufficient``."""
    spend_trend_min_purchases: int = Field(3, ge=2)
    """Purchases (days) a customer needs before a spend trend is given."""
    steady_relative_slope: float = Field(0.1, ge=0)
    """A slope smaller in size than this share of the mean (gap in days, or purchase value) per
    purchase is ``steady``; e.g. 0.1 with a mean gap of 30 days: a trend needs at least 3 days
    per purchase."""
    discount_dependent_share: float = Field(0.5, ge=0, le=1)
    """Share (0-1) of orders (or revenue, see ``discount_basis``) with a discount at or above which
    a customer is ``discount_dependent``."""
    discount_basis: Literal["orders", "revenue"] = "orders"
    """Which share decides discount dependency: ``orders`` or ``revenue``."""


LOYALTY_COLUMNS: tuple[str, ...] = (
    "customer_id", "n_orders", "n_purchases", "revenue", "returned", "days_to_second_purchase",
    "mean_interpurchase_days", "interpurchase_slope", "interpurchase_trend", "spend_slope",
    "spend_trend", "discount_order_share", "discount_revenue_share", "discount_dependent",
    "full_price_buyer", "top_category", "top_category_share",
)
"""Columns of :func:`loyalty`, in order."""


# --- opening the store and resolving the as-of date (shared by cohorts and profitability) ------

@contextmanager
def open_transactions(db: str | os.PathLike[str] | None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to ``db`` that holds a ``transactions`` table (else NoDataError)."""
    with reader(db) as con:
        if not table_exists(con, "transactions"):
            raise NoDataError(f"database {db} holds no transactions: run patron ingest FILE --kind transactions first")
        yield con


def resolve_as_of(con: duckdb.DuckDBPyConnection, as_of: DayArg) -> date:
    """``as_of`` as a date, by default the day of the last purchase (:func:`patron.dates.default_as_of`;
    NoDataError if none)."""
    return parse_day(as_of) or default_as_of(con)


# --- SQL ----------------------------------------------------------------------------------------

def _slope(n: str, sx: str, sy: str, sxx: str, sxy: str) -> str:
    """Least-squares slope from the sums (n, Sx, Sy, Sxx, Sxy); NULL when x does not vary."""
    return f"(({n}) * ({sxy}) - ({sx}) * ({sy})) / NULLIF(({n}) * ({sxx}) - ({sx}) * ({sx}), 0)"


def _trend(n: str, min_n: int, slope: str, mean: str, rel: float, down: str, up: str) -> str:
    return (
        f"CASE WHEN {n} < {int(min_n)} THEN 'insufficient' "
        f"WHEN {slope} < 0 AND -({slope}) >= {rel!r} * {mean} THEN '{down}' "
        f"WHEN {slope} > 0 AND {slope} >= {rel!r} * {mean} THEN '{up}' ELSE 'steady' END"
    )


def orders_cte(as_of: date, dialect: Dialect = DUCKDB, table: str = "transactions") -> str:
    """``orders AS (...)``: purchase rows (``amount >= 0``) on or before ``as_of`` with their day."""
    day = "CAST(occurred_at AS DATE)"
    return f"""orders AS (
  SELECT customer_id, {day} AS day, amount, discount, margin, category
  FROM {table}
  WHERE amount >= 0 AND {day} <= {dialect.date_literal(as_of)}
)"""


def loyalty_sql(as_of: date, rules: LoyaltyRules | None = None, dialect: Dialect = DUCKDB, table: str = "transactions",
                *, ordered: bool = True) -> str:
    """The per-customer loyalty query (definitions in the module docstring), ordered by customer
    (unordered without ``ordered``, as a part of a larger query)."""
    r = rules or LoyaltyRules()
    d = dialect
    share = "discount_order_share" if r.discount_basis == "orders" else "discount_revenue_share"
    ip_slope = _slope("p.n_gaps", "p.gx", "p.gy", "p.gxx", "p.gxy")
    sp_slope = _slope("p.n_purchases", "p.sx", "p.sy", "p.sxx", "p.sxy")
    return f"""WITH {orders_cte(as_of, d, table)},
purchases AS (
  SELECT customer_id, day, SUM(amount) AS value FROM orders GROUP BY customer_id, day
),
numbered AS (
  SELECT customer_id, day, value,
         ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY day) AS k,
         LAG(day) OVER (PARTITION BY customer_id ORDER BY day) AS prev_day
  FROM purchases
),
steps AS (
  SELECT customer_id, value, CAST(k AS DOUBLE) AS k, CAST({d.days_between('prev_day', 'day')} AS DOUBLE) AS gap
  FROM numbered
),
per_customer AS (
  SELECT customer_id, COUNT(*) AS n_purchases,
         MAX(CASE WHEN k = 2 THEN gap END) AS days_to_second_purchase,
         COUNT(gap) AS n_gaps, AVG(gap) AS mean_gap,
         SUM(CASE WHEN gap IS NOT NULL THEN k - 1 END) AS gx, SUM(gap) AS gy,
         SUM(CASE WHEN gap IS NOT NULL THEN (k - 1) * (k - 1) END) AS gxx, SUM((k - 1) * gap) AS gxy,
         SUM(k) AS sx, SUM(value) AS sy, SUM(k * k) AS sxx, SUM(k * value) AS sxy, AVG(value) AS mean_value
  FROM steps GROUP BY customer_id
),
slopes AS (
  SELECT p.*, {ip_slope} AS interpurchase_slope, {sp_slope} AS spend_slope FROM per_customer p
),
discounts AS (
  SELECT customer_id, COUNT(*) AS n_orders, SUM(amount) AS revenue, COUNT(discount) AS n_known,
         SUM(CASE WHEN discount > 0 THEN 1 ELSE 0 END) AS n_discounted,
         SUM(CASE WHEN discount IS NOT NULL THEN amount END) AS known_revenue,
         SUM(CASE WHEN discount > 0 THEN amount ELSE 0 END) AS discounted_revenue
  FROM orders GROUP BY customer_id
),
shares AS (
  SELECT customer_id, n_orders, revenue, n_known, n_discounted,
         CASE WHEN n_known > 0 THEN CAST(n_discounted AS DOUBLE) / n_known END AS discount_order_share,
         CASE WHEN known_revenue > 0 THEN discounted_revenue / known_revenue END AS discount_revenue_share
  FROM discounts
),
categories AS (
  SELECT customer_id, category, SUM(amount) AS revenue, COUNT(*) AS n
  FROM orders WHERE category IS NOT NULL GROUP BY customer_id, category
),
ranked AS (
  SELECT customer_id, category, revenue,
         ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY revenue DESC, n DESC, category) AS r,
         SUM(revenue) OVER (PARTITION BY customer_id) AS total
  FROM categories
)
SELECT p.customer_id,
       CAST(s.n_orders AS BIGINT) AS n_orders,
       CAST(p.n_purchases AS BIGINT) AS n_purchases,
       s.revenue,
       p.n_purchases > 1 AS returned,
       p.days_to_second_purchase,
       p.mean_gap AS mean_interpurchase_days,
       p.interpurchase_slope,
       {_trend('p.n_gaps', r.trend_min_gaps, 'p.interpurchase_slope', 'p.mean_gap', r.steady_relative_slope, 'shortening', 'lengthening')} AS interpurchase_trend,
       p.spend_slope,
       {_trend('p.n_purchases', r.spend_trend_min_purchases, 'p.spend_slope', 'p.mean_value', r.steady_relative_slope, 'falling', 'rising')} AS spend_trend,
       s.discount_order_share,
       s.discount_revenue_share,
       CASE WHEN s.{share} IS NOT NULL THEN s.{share} >= {r.discount_dependent_share!r} END AS discount_dependent,
       CASE WHEN s.n_known > 0 THEN s.n_discounted = 0 END AS full_price_buyer,
       c.category AS top_category,
       c.revenue / NULLIF(c.total, 0) AS top_category_share
FROM slopes p
JOIN shares s ON s.customer_id = p.customer_id
LEFT JOIN ranked c ON c.customer_id = p.customer_id AND c.r = 1""" + ("\nORDER BY p.customer_id" if ordered else "")


def category_shares_sql(as_of: date, dialect: Dialect = DUCKDB, table: str = "transactions") -> str:
    """Revenue per customer and category (long format) with the share of the customer's
    categorised revenue."""
    return f"""WITH {orders_cte(as_of, dialect, table)},
categories AS (
  SELECT customer_id, category, SUM(amount) AS revenue
  FROM orders WHERE category IS NOT NULL GROUP BY customer_id, category
)
SELECT customer_id, category, revenue,
       revenue / NULLIF(SUM(revenue) OVER (PARTITION BY customer_id), 0) AS share
FROM categories
ORDER BY customer_id, revenue DESC, category"""


# --- Python API ---------------------------------------------------------------------------------

def loyalty(db: str | os.PathLike[str] | None = None, *, as_of: DayArg = None, config: ConfigArg = None) -> pd.DataFrame:
    """One row per customer with an order on or before ``as_of``: :data:`LOYALTY_COLUMNS`
    (definitions in the module docstring; thresholds from the ``[loyalty]`` rules section).

    Examples
    --------
    >>> import os, tempfile
    >>> import patron
    >>> from patron.value.simulate import simulate_transactions
    >>> db = os.path.join(tempfile.mkdtemp(), "shop.duckdb")
    >>> orders = simulate_transactions(300, seed=1).to_pandas()  # 300 customers, 2024-2025
    >>> patron.ingest(orders, kind="transactions", db=db).rejected
    0
    >>> table = loyalty(db, as_of="2025-06-30")
    >>> len(table), list(table.columns) == list(LOYALTY_COLUMNS)
    (300, True)
    """
    rules = section("loyalty", LoyaltyRules, config)
    with open_transactions(db) as con:
        day = resolve_as_of(con, as_of)
        frame = con.sql(loyalty_sql(day, rules)).df()
    if frame.empty:
        raise NoDataError(f"no orders on or before {day}")
    return frame


def category_shares(db: str | os.PathLike[str] | None = None, *, as_of: DayArg = None) -> pd.DataFrame:
    """Columns ``customer_id, category, revenue, share``: each customer's order revenue per
    category and its share of the customer's categorised revenue (orders without a category are
    left out; empty when no order has a category)."""
    with open_transactions(db) as con:
        day = resolve_as_of(con, as_of)
        return con.sql(category_shares_sql(day)).df()


def category_revenue(shares: pd.DataFrame) -> pd.DataFrame:
    """Aggregate of :func:`category_shares`: ``category, revenue, share, customers`` (share of all
    categorised revenue; customers who bought in the category), largest revenue first."""
    if shares.empty:
        return pd.DataFrame({"category": [], "revenue": [], "share": [], "customers": []})
    agg = shares.groupby("category", as_index=False).agg(revenue=("revenue", "sum"), customers=("customer_id", "nunique"))
    return revenue_shares(agg)


def revenue_shares(categories: pd.DataFrame) -> pd.DataFrame:
    """``category, revenue, share, customers`` from revenue and customers per category (one row
    each, not empty): ``share`` of all categorised revenue (NaN when that total is not positive),
    largest revenue first, ties by category name."""
    total = float(categories["revenue"].sum())
    categories = categories.assign(share=categories["revenue"] / total if total > 0 else np.nan)
    return categories.sort_values(["revenue", "category"], ascending=[False, True])[
        ["category", "revenue", "share", "customers"]].reset_index(drop=True)


def _share(mask: pd.Series, base: pd.Series) -> float | None:
    n = int(base.sum())
    return float((mask & base).sum()) / n if n else None


def _group(frame: pd.DataFrame, mask: pd.Series) -> dict[str, Any]:
    part = frame[mask]
    return {
        "customers": len(part),
        "mean_revenue": float(part["revenue"].mean()) if len(part) else None,
        "mean_orders": float(part["n_orders"].mean()) if len(part) else None,
        "return_rate": float(part["returned"].mean()) if len(part) else None,
    }


def summarize_loyalty(frame: pd.DataFrame) -> dict[str, Any]:
    """Headline figures of a :func:`loyalty` frame (see :func:`loyalty_overview`)."""
    n = len(frame)
    returned = frame["returned"].astype(bool)
    ip = frame["interpurchase_trend"]
    sp = frame["spend_trend"]
    has_ip, has_sp = ip != "insufficient", sp != "insufficient"
    known = frame["discount_order_share"].notna()
    dependent = frame["discount_dependent"].fillna(False).astype(bool)
    full = frame["full_price_buyer"].fillna(False).astype(bool)
    d2 = frame["days_to_second_purchase"].dropna()
    return {
        "customers": n,
        "returned": int(returned.sum()),
        "return_rate": float(returned.mean()) if n else None,
        "days_to_second_purchase_median": float(d2.median()) if len(d2) else None,
        "days_to_second_purchase_mean": float(d2.mean()) if len(d2) else None,
        "with_interpurchase_trend": int(has_ip.sum()),
        "shortening_share": _share(ip == "shortening", has_ip),
        "lengthening_share": _share(ip == "lengthening", has_ip),
        "steady_interpurchase_share": _share(ip == "steady", has_ip),
        "with_spend_trend": int(has_sp.sum()),
        "rising_share": _share(sp == "rising", has_sp),
        "falling_share": _share(sp == "falling", has_sp),
        "steady_spend_share": _share(sp == "steady", has_sp),
        "with_discount_data": int(known.sum()),
        "discount_dependent_share": _share(dependent, known),
        "full_price_share": _share(full, known),
        "discount_groups": {
            "discount_dependent": _group(frame, dependent),
            "occasional_discount": _group(frame, known & ~dependent & ~full),
            "full_price": _group(frame, full),
        },
    }


def loyalty_overview(db: str | os.PathLike[str] | None = None, *, as_of: DayArg = None, config: ConfigArg = None) -> dict[str, Any]:
    """Headline loyalty figures as of ``as_of``, a JSON-ready dict.

    ``return_rate``: share of customers who ``returned``; ``days_to_second_purchase_median`` /
    ``_mean`` over those who did. Trend shares (``shortening_share``, ``rising_share``, ...) are
    among customers with enough purchases for a trend (``with_interpurchase_trend``,
    ``with_spend_trend``). ``discount_dependent_share`` and ``full_price_share`` are among customers
    with discount data; ``discount_groups`` contrasts discount-dependent, occasional-discount and
    full-price buyers (customers, mean revenue, mean orders, return rate). ``categories``: the
    aggregate revenue share by category (:func:`category_revenue`) as a list of records.
    """
    frame = loyalty(db, as_of=as_of, config=config)
    figures = summarize_loyalty(frame)
    figures["categories"] = category_revenue(category_shares(db, as_of=as_of)).to_dict(orient="records")
    return figures


def loyalty_mix(frame: pd.DataFrame) -> pd.DataFrame:
    """Counts per measure and category (``measure, category, customers``) of a :func:`loyalty`
    frame, for :func:`patron.report.figures.loyalty_trends_figure`: returned, inter-purchase and
    spend trends (customers with enough purchases), discount use (customers with discount data)."""
    dependent = frame["discount_dependent"].fillna(False).astype(bool)
    full = frame["full_price_buyer"].fillna(False).astype(bool)
    known = frame["discount_order_share"].notna()
    rows = [
        ("came back", "returned", int(frame["returned"].astype(bool).sum())),
        ("came back", "one purchase", int((~frame["returned"].astype(bool)).sum())),
    ]
    for measure, col, cats in (
        ("inter-purchase times", "interpurchase_trend", ("shortening", "steady", "lengthening")),
        ("spend per purchase", "spend_trend", ("rising", "steady", "falling")),
    ):
        rows += [(measure, c, int((frame[col] == c).sum())) for c in cats]
    if known.any():
        rows += [
            ("discount use", "discount dependent", int((dependent & known).sum())),
            ("discount use", "occasional discount", int((known & ~dependent & ~full).sum())),
            ("discount use", "full price", int((full & known).sum())),
        ]
    return pd.DataFrame(rows, columns=["measure", "category", "customers"])


def loyalty_report(db: str | os.PathLike[str] | None = None, *, as_of: DayArg = None,
                   config: ConfigArg = None) -> tuple[pd.DataFrame, dict[str, Any], pd.DataFrame]:
    """What the report shows of loyalty, aggregated in the engine (no row per customer leaves
    it): :func:`loyalty_mix` and the headline figures of :func:`summarize_loyalty`
    (``customers, returned, return_rate, days_to_second_purchase_median``) of :func:`loyalty`,
    and :func:`category_revenue` of :func:`category_shares`; the same numbers."""
    rules = section("loyalty", LoyaltyRules, config)
    with open_transactions(db) as con:
        day = resolve_as_of(con, as_of)
        counts = con.execute(f"""SELECT count(*), count(*) FILTER (WHERE returned),
                count(*) FILTER (WHERE interpurchase_trend = 'shortening'), count(*) FILTER (WHERE interpurchase_trend = 'steady'),
                count(*) FILTER (WHERE interpurchase_trend = 'lengthening'),
                count(*) FILTER (WHERE spend_trend = 'rising'), count(*) FILTER (WHERE spend_trend = 'steady'),
                count(*) FILTER (WHERE spend_trend = 'falling'),
                count(*) FILTER (WHERE discount_order_share IS NOT NULL),
                count(*) FILTER (WHERE discount_order_share IS NOT NULL AND coalesce(discount_dependent, false)),
                count(*) FILTER (WHERE discount_order_share IS NOT NULL AND NOT coalesce(discount_dependent, false)
                                 AND NOT coalesce(full_price_buyer, false)),
                count(*) FILTER (WHERE discount_order_share IS NOT NULL AND coalesce(full_price_buyer, false)),
                median(days_to_second_purchase)
                FROM ({loyalty_sql(day, rules, ordered=False)}) AS l""").fetchall()[0]
        categories = con.sql(f"""SELECT category, sum(revenue) AS revenue, count(DISTINCT customer_id) AS customers
            FROM ({category_shares_sql(day)}) GROUP BY category""").df()
    n, returned, *trends, known, dependent, occasional, full, median = counts
    if not n:
        raise NoDataError(f"no orders on or before {day}")
    rows = [("came back", "returned", returned), ("came back", "one purchase", n - returned)]
    rows += [(m, c, v) for (m, c), v in zip((("inter-purchase times", "shortening"), ("inter-purchase times", "steady"),
                                            ("inter-purchase times", "lengthening"), ("spend per purchase", "rising"),
                                            ("spend per purchase", "steady"), ("spend per purchase", "falling")), trends, strict=True)]
    if known:
        rows += [("discount use", "discount dependent", dependent), ("discount use", "occasional discount", occasional),
                 ("discount use", "full price", full)]
    mix = pd.DataFrame([(m, c, int(v)) for m, c, v in rows], columns=["measure", "category", "customers"])
    figures = {"customers": int(n), "returned": int(returned), "return_rate": returned / n,
               "days_to_second_purchase_median": None if median is None else float(median)}
    if categories.empty:
        return mix, figures, category_revenue(pd.DataFrame())
    return mix, figures, revenue_shares(categories)
