"""Value tiers by customer lifetime value, computed in SQL.

Two methods (``[tiers] method``):

- ``quantile`` (default): customers who have bought, ranked by ``clv`` from highest, fill the tiers
  in order, tier *i* taking the share ``shares[i]`` of them; the last tier takes the rest. Default:
  top 1% ``platinum``, next 9% ``gold``, next 40% ``silver``, the rest ``bronze``. A customer is in
  the first tier whose cumulative share exceeds the share of customers with a *strictly higher* CLV,
  so equal CLVs share a tier, and with distinct CLVs tier *i* ends at customer
  ``ceil(n * cumulative share)`` (2,357 CDNOW buyers: top 1% is the first 24).
- ``threshold``: fixed CLV thresholds (currency), ``clv >= thresholds[i]`` gives ``names[i]``, the
  first that matches; below the last threshold, the last tier.

Prospects (no purchase) have no tier (NULL).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from patron.data.dialect import DUCKDB


class TierRules(BaseModel):
    """The ``[tiers]`` section of the rules file."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["quantile", "threshold"] = "quantile"
    """``quantile``: tiers by share of customers ranked by CLV; ``threshold``: by fixed CLV values."""
    names: list[str] = Field(default_factory=lambda: ["platinum", "gold", "silver", "bronze"], min_length=2)
    """Tier names from most to least valuable."""
    shares: list[float] = Field(default_factory=lambda: [0.01, 0.09, 0.40])
    """With ``quantile``: share of buyers (0-1) in each tier but the last, most valuable first."""
    thresholds: list[float] = Field(default_factory=list)
    """With ``threshold``: lowest CLV (currency, same horizon as ``clv``) of each tier but the
    last, most valuable first, decreasing."""

    @model_validator(mode="after")
    def _consistent(self) -> TierRules:
        k = len(self.names) - 1
        if len(set(self.names)) != len(self.names):
            raise ValueError("tier names must differ")
        if self.method == "quantile":
            if len(self.shares) != k:
                raise ValueError(f"give {k} shares for {k + 1} tier names (the last tier takes the rest)")
            if any(s <= 0 for s in self.shares) or sum(self.shares) >= 1:
                raise ValueError("shares must be positive and sum to less than 1")
        else:
            if len(self.thresholds) != k:
                raise ValueError(f"give {k} thresholds for {k + 1} tier names (the last tier is below the last threshold)")
            if any(a <= b for a, b in zip(self.thresholds, self.thresholds[1:], strict=False)):
                raise ValueError("thresholds must decrease, most valuable tier first")
        return self


def tiers_sql(source: str, rules: TierRules | None = None) -> str:
    """SELECT of ``customer_id, value_tier`` for the buyers in ``source`` (a table or subquery
    with ``customer_id, clv, n_orders``; rows with NULL ``n_orders`` are prospects, left out)."""
    rules = rules or TierRules()
    names = [DUCKDB.literal(n) for n in rules.names]
    if rules.method == "threshold":
        whens = " ".join(f"WHEN clv >= {float(t)!r} THEN {n}" for t, n in zip(rules.thresholds, names, strict=False))
        return f"SELECT customer_id, CASE {whens} ELSE {names[-1]} END AS value_tier FROM {source} WHERE n_orders IS NOT NULL"
    cumulative, whens = 0.0, []
    for share, n in zip(rules.shares, names, strict=False):
        cumulative = round(cumulative + share, 12)
        whens.append(f"WHEN above < {cumulative!r} THEN {n}")
    return f"""SELECT customer_id, CASE {' '.join(whens)} ELSE {names[-1]} END AS value_tier
FROM (SELECT customer_id,
        (RANK() OVER (ORDER BY clv DESC) - 1) / CAST(COUNT(*) OVER () AS DOUBLE) AS above
      FROM {source} WHERE n_orders IS NOT NULL) AS ranked"""


def tier_indices(clv: Any, rules: TierRules | None = None) -> Any:
    """:func:`tiers_sql` in NumPy for the buyers' ``clv`` (float array, NaN for NULL): the index
    into ``rules.names`` (int8) of each buyer's tier, by the same definitions (module docstring;
    a NULL CLV ranks last, as SQL's ``NULLS LAST``, and matches no threshold)."""
    from patron.relationship.rfm import sort_ranks

    rules = rules or TierRules()
    x = np.asarray(clv, dtype=float)
    last = len(rules.names) - 1
    if rules.method == "threshold":
        conditions = [x >= float(t) for t in rules.thresholds]  # NaN matches none: the last tier
    else:
        _, rank = sort_ranks(x, descending=True)
        above = (rank - 1) / float(max(len(x), 1))
        cumulative, conditions = 0.0, []
        for share in rules.shares:
            cumulative = round(cumulative + share, 12)
            conditions.append(above < cumulative)
    return np.select(conditions, list(range(len(conditions))), default=last).astype(np.int8)
