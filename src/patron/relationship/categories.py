"""The order in which categories of the relationship are shown: one helper for every figure and
table (the report, the dashboard, the contact effect and referral figures).

- ``status``: from not yet a customer to gone (:data:`patron.relationship.status_rules.STATUSES`:
  prospect, new, active, cooling, at_risk, lapsed, lost);
- ``value_tier``: most valuable first, as the ``[tiers]`` names of the rules file define them
  (default platinum, gold, silver, bronze);
- ``rfm_cell``: the named RFM grid read row by row, high recency first and, within a row, high
  frequency first (champions, potential_loyalists, new_customers, cant_lose_them, ...).

Categories not in the order (a user's own, ``other``, a missing value) follow in their order of
appearance (:func:`patron.display.ordered`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from patron.display import ordered
from patron.relationship.rfm import RFM_CELLS
from patron.relationship.status_rules import STATUSES

LEVELS: tuple[str, ...] = ("high", "mid", "low")
"""RFM levels, best first."""

RFM_ORDER: tuple[str, ...] = tuple(RFM_CELLS[(r, f)] for r in LEVELS for f in LEVELS)
"""Named RFM cells in grid order: high recency row first, high frequency first within a row."""

ALIASES: dict[str, str] = {"tier": "value_tier", "segment_rfm": "rfm_cell", "statuses": "status"}
"""Other names of the ordered kinds."""


def kind_order(kind: str, *, config: Any = None) -> tuple[str, ...]:
    """The meaningful order of the categories of ``kind`` (``status``, ``value_tier``,
    ``rfm_cell``); empty for any other kind (their order is then the one given)."""
    kind = ALIASES.get(kind, kind)
    if kind == "status":
        return STATUSES
    if kind == "rfm_cell":
        return RFM_ORDER
    if kind == "value_tier":
        from patron.config import section
        from patron.relationship.tiers import TierRules

        return tuple(section("tiers", TierRules, config).names)
    return ()


def category_order(kind: str, values: Iterable[Any], *, config: Any = None) -> list[str]:
    """The distinct ``values`` (as text) of a category ``kind`` in their meaningful order
    (:func:`kind_order`), unknown ones last in their order of appearance.

    >>> category_order("value_tier", ["gold", "silver", "platinum", "bronze"], config={})
    ['platinum', 'gold', 'silver', 'bronze']
    >>> category_order("status", ["lost", "active", "new"])
    ['new', 'active', 'lost']
    """
    return ordered(values, kind_order(kind, config=config))
