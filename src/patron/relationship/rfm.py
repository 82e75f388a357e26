"""RFM scores (recency, frequency, monetary value), computed in SQL with ``NTILE``.

Each score runs from 1 (worst) to ``bins`` (best) and splits the customers who have bought into
``bins`` groups of equal size (the first ``n mod bins`` groups hold one customer more, which is
what ``NTILE`` does):

- **recency score**: by time since the last purchase (days from ``last_purchase`` to ``as_of``;
  fewer days is better). With ``[rfm] recency_days_since_last = false`` it is by lifetimes'
  ``recency`` instead (age of the customer at the last purchase, weeks; more is better).
- **frequency score**: by ``n_orders`` (all orders up to ``as_of``; more is better).
- **monetary score**: by ``total_spend`` (net spend up to ``as_of``; more is better).

``rfm_score`` is the three digits as text, e.g. ``'545'`` (with ``bins`` of 10 or more the digits
are separated by dashes, ``'10-3-7'``). Prospects (no purchase) have no scores (NULL).

**Ties.** ``NTILE`` numbers rows in sort order, so customers with the *same* value may land in
adjacent scores when a group boundary falls among them (CDNOW: most customers bought once, so
their frequency scores are spread over the lowest groups). patron breaks ties by ``customer_id``
so the result is reproducible. With ``[rfm] ties = "together"`` equal values always share a score:
``1 + floor(bins * (rank - 1) / n)``, ``rank`` being the SQL ``RANK()`` (1 + the number of
customers with a worse value); groups are then unequal in size.

**Named RFM cells** (:func:`rfm_cell_sql`) cross a *recency level* read from the relationship
status (high: new or active; mid: cooling or at_risk; low: lapsed or lost; see
:mod:`patron.relationship.status_rules`) with a *frequency level* read from the frequency score (low: score <=
40% of ``bins``, mid, high: score > 60% of ``bins``; with 5 bins low is 1-2, mid 3, high 4-5). The
nine cells cover every buyer exactly once:

==========  =================  ===================  ==================
R \\ F      low                mid                  high
==========  =================  ===================  ==================
high        new_customers      potential_loyalists  champions
mid         about_to_sleep     need_attention       cant_lose_them
low         lost               hibernating          lapsed_regulars
==========  =================  ===================  ==================

The recency level comes from the status rather than the recency score because the status is what
patron checks against what customers did next (``patron backtest status``): on CDNOW as of
1997-12-31 the lowest two recency quintiles held only lapsed and lost customers, so a cell called
``cant_lose_them`` (low recency score, high frequency) had the lowest mean CLV of the nine; read
from the status it holds frequent buyers who are cooling or at risk (``patron backtest segments``).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from patron.data.dialect import DUCKDB, Dialect

RFM_CELLS: dict[tuple[str, str], str] = {
    ("high", "low"): "new_customers", ("high", "mid"): "potential_loyalists", ("high", "high"): "champions",
    ("mid", "low"): "about_to_sleep", ("mid", "mid"): "need_attention", ("mid", "high"): "cant_lose_them",
    ("low", "low"): "lost", ("low", "mid"): "hibernating", ("low", "high"): "lapsed_regulars",
}
"""Named RFM cell of each (recency level, frequency level)."""

RECENCY_LEVELS: dict[str, str] = {
    "new": "high", "active": "high", "cooling": "mid", "at_risk": "mid", "lapsed": "low", "lost": "low",
}
"""Recency level of the named cells for each status of a buyer."""

LOW_SHARE = 0.4
"""A score at most this share of ``bins`` is *low* for the named cells."""

HIGH_SHARE = 0.6
"""A score above this share of ``bins`` is *high* for the named cells."""


class RfmRules(BaseModel):
    """The ``[rfm]`` section of the rules file."""

    model_config = ConfigDict(extra="forbid")

    bins: int = Field(5, ge=2, le=100)
    """Number of score groups (5 = quintiles); scores run from 1 to ``bins``."""
    recency_days_since_last: bool = True
    """Score recency by days since the last purchase (classic RFM); false: by lifetimes' recency
    (weeks from first to last purchase)."""
    ties: Literal["split", "together"] = "split"
    """``split``: NTILE, equal groups, tied values may get adjacent scores (broken by customer_id);
    ``together``: tied values share a score, groups may be unequal."""


def _score(value: str, ascending: bool, rules: RfmRules) -> str:
    """SQL of one score column: ``bins`` for the best value. ``ascending`` is true when larger is
    better."""
    order = f"{value} {'ASC' if ascending else 'DESC'}"
    if rules.ties == "split":
        return f"NTILE({rules.bins}) OVER (ORDER BY {order}, customer_id)"
    return f"CAST(1 + FLOOR({rules.bins} * (RANK() OVER (ORDER BY {order}) - 1) / CAST(COUNT(*) OVER () AS DOUBLE)) AS INTEGER)"


def rfm_sql(source: str, rules: RfmRules | None = None, dialect: Dialect = DUCKDB) -> str:
    """SELECT of ``customer_id, recency_score, frequency_score, monetary_score, rfm_score`` for
    the buyers in ``source`` (a table or subquery with ``customer_id, as_of, last_purchase,
    recency, n_orders, total_spend``; rows with NULL ``n_orders`` are prospects and are left out).
    """
    rules = rules or RfmRules()
    if rules.recency_days_since_last:
        recency = _score("days_since_last", False, rules)  # fewer days is better
        days = dialect.days_between("CAST(last_purchase AS DATE)", "CAST(as_of AS DATE)")
    else:
        recency = _score("recency", True, rules)
        days = "CAST(NULL AS DOUBLE)"
    sep = "'-'" if rules.bins >= 10 else "''"
    return f"""SELECT customer_id, recency_score, frequency_score, monetary_score,
    CAST(recency_score AS VARCHAR) || {sep} || CAST(frequency_score AS VARCHAR) || {sep} || CAST(monetary_score AS VARCHAR) AS rfm_score
FROM (
    SELECT customer_id,
        CAST({recency} AS INTEGER) AS recency_score,
        CAST({_score("n_orders", True, rules)} AS INTEGER) AS frequency_score,
        CAST({_score("total_spend", True, rules)} AS INTEGER) AS monetary_score
    FROM (SELECT customer_id, recency, n_orders, total_spend, {days} AS days_since_last
          FROM {source} WHERE n_orders IS NOT NULL) AS buyers
) AS scored"""


def _level(score: str, bins: int) -> str:
    return f"CASE WHEN {score} <= {LOW_SHARE * bins!r} THEN 'low' WHEN {score} > {HIGH_SHARE * bins!r} THEN 'high' ELSE 'mid' END"


def _recency_level() -> str:
    whens = " ".join(f"WHEN status = '{status}' THEN '{level}'" for status, level in RECENCY_LEVELS.items())
    return f"CASE {whens} END"


def rfm_cell_sql(bins: int = 5) -> str:
    """SQL expression naming the RFM cell (see the module docstring) of a ``customer_profiles``
    row from its ``status`` and ``frequency_score``; NULL for prospects."""
    r, f = _recency_level(), _level("frequency_score", bins)
    whens = " ".join(f"WHEN {r} = '{rl}' AND {f} = '{fl}' THEN '{name}'" for (rl, fl), name in RFM_CELLS.items())
    return f"(CASE WHEN recency_score IS NULL THEN NULL {whens} END)"


# ------------------------------------------------------------------------------ the same in NumPy

def sort_ranks(values: Any, *, descending: bool, ranks: bool = True) -> tuple[Any, Any]:
    """The SQL sort of ``values`` (a float array, NaN for NULL) in NumPy: ``(position, rank)`` of
    each row, where ``position`` (0-based) is its place in ``ORDER BY value [DESC], <row order>``
    and ``rank`` is SQL's ``RANK() OVER (ORDER BY value [DESC])`` (1 + the rows before it with a
    different value). NULLs (NaN) come last either way, as DuckDB's default ``NULLS LAST``; ties
    keep the row order (the callers' rows are sorted by ``customer_id``, the SQL's tie-break).
    Without ``ranks`` the rank is ``None`` (not computed)."""
    x = np.asarray(values, dtype=float)
    null = np.isnan(x)
    key = np.where(null, 0.0, -x if descending else x)
    if null.any():
        order = np.lexsort((key, null))  # stable: equal keys keep the row order
    else:
        order = np.argsort(_compact(key), kind="stable")
    n = len(x)
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n, dtype=np.int64)
    if not ranks:
        return position, None
    ks, ns = key[order], null[order]
    start = np.ones(n, dtype=bool)
    start[1:] = (ks[1:] != ks[:-1]) | (ns[1:] != ns[:-1])
    first = np.maximum.accumulate(np.where(start, np.arange(n, dtype=np.int64), 0)) if n else np.zeros(0, np.int64)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = first + 1
    return position, rank


def _compact(key: Any) -> Any:
    """``key`` as 16- or 32-bit integers when it holds only such whole numbers (counts, days: a
    stable sort of 16-bit integers is a radix sort), else as it is; the order is the same."""
    if len(key) == 0:
        return key
    low, high = key.min(), key.max()
    if np.isfinite(low) and np.isfinite(high) and -2**31 <= low and high < 2**31 and np.array_equal(key, np.floor(key)):
        return key.astype(np.int16 if -2**15 <= low and high < 2**15 else np.int32)
    return key


def ntile(position: Any, bins: int) -> Any:
    """SQL ``NTILE(bins)`` of the rows at 0-based sort ``position`` (0..n-1) among n rows: groups of
    ``n // bins``, the first ``n % bins`` one row larger (DuckDB's and PostgreSQL's definition)."""
    p = np.asarray(position, dtype=np.int64)
    n = len(p)
    if n == 0:
        return p.astype(np.int32)
    b = min(bins, n)
    size = n // b
    large = n - b * size
    small_end = large * (size + 1)
    return np.where(p < small_end, 1 + p // (size + 1), 1 + large + (p - small_end) // max(size, 1)).astype(np.int32)


def rfm_arrays(days_since_last: Any, recency: Any, n_orders: Any, total_spend: Any,
               rules: RfmRules | None = None) -> dict[str, Any]:
    """:func:`rfm_sql`'s ``recency_score, frequency_score, monetary_score`` (int32 arrays) of buyers
    given in ``customer_id`` order (the tie-break of ``ties = "split"``), in NumPy: the same
    definitions (module docstring) without a SQL sort per score. ``days_since_last`` (days) is used
    with ``recency_days_since_last``, else ``recency`` (periods)."""
    rules = rules or RfmRules()

    def score(values: Any, ascending: bool) -> Any:
        position, rank = sort_ranks(values, descending=not ascending, ranks=rules.ties != "split")
        if rank is None:
            return ntile(position, rules.bins)
        n = len(position)
        return (1 + np.floor(rules.bins * (rank - 1) / float(max(n, 1)))).astype(np.int32)

    recency_score = score(days_since_last, False) if rules.recency_days_since_last else score(recency, True)
    return {"recency_score": recency_score, "frequency_score": score(n_orders, True), "monetary_score": score(total_spend, True)}
