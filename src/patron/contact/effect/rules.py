"""The ``[contact_effect]`` section of the rules file: how contact effects are measured.

Example::

    [contact_effect]
    window_days = 30
    level = 0.95
    uplift_min_per_arm = 200
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from patron.config import section


class ContactEffectRules(BaseModel):
    """Rules for campaign lift, uplift models and dose-response (section ``[contact_effect]``)."""

    model_config = ConfigDict(extra="forbid")

    window_days: int = Field(30, ge=1, le=3650)
    """Outcome window, in days: a customer responds to a campaign when they buy within this many
    days after their exposure time (the campaign's first ``sent`` row for them)."""

    level: float = Field(0.95, gt=0.5, lt=1.0)
    """Confidence level of every interval (0.95: 95% intervals)."""

    uplift_min_per_arm: int = Field(200, ge=10)
    """Fewest exposures (customer x campaign) in each of the treated and control arms before an
    uplift model is fitted."""

    uplift_min_responders: int = Field(20, ge=1)
    """Fewest responders in each arm before an uplift model is fitted."""

    uplift_test_fraction: float = Field(0.3, gt=0.05, lt=0.95)
    """Share of customers held out (with all their exposures) to evaluate the uplift model (Qini, uplift at k)."""

    uplift_seed: int = 0
    """Seed of the train/test split and of the learners."""

    value_per_response: float | None = Field(None, ge=0)
    """Value of one response, in the orders' currency; unset: the mean window revenue of treated
    responders in the training data (uplift) and the mean revenue of a month with a purchase
    (dose-response)."""

    dose_recent_months: int = Field(3, ge=1, le=24)
    """Months (calendar, the latest ones in the data) over which a customer's contacts per month are
    averaged to decide whether they are over-contacted now."""

    dose_min_customer_months: int = Field(30, ge=1)
    """Fewest customer-months on each side of a step (dose k-1 and dose k, in strata that hold both)
    before dose-response estimates the effect of the k-th contact."""

    dose_top: int = Field(10, ge=1, le=60)
    """Doses counted one by one up to ``dose_top - 1`` contacts a month; ``dose_top`` or more share
    the open top dose ``dose_top+``."""

    dose_segments: Literal["value_tier", "prior_purchases"] = "value_tier"
    """Segments of dose-response, as of each month's start: ``value_tier`` (tier by spend to date,
    with the ``[tiers]`` names and shares) or ``prior_purchases`` (orders before the month)."""


def rules(config: str | os.PathLike[str] | dict[str, Any] | None = None) -> ContactEffectRules:
    """The ``[contact_effect]`` rules from ``config`` (a path, a parsed dict, or ``None``)."""
    return section("contact_effect", ContactEffectRules, config)
