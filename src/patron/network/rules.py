"""The ``[referrals]`` section of the rules file: what counts as an invitation and an acquisition,
and how referral value is discounted by generation.

Example::

    [referrals]
    conversion_window_days = 30
    generation_discount = 0.5
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from patron.config import section
from patron.constants import DEFAULT_DISCOUNT_RATE, DEFAULT_HORIZON_WEEKS
from patron.data.schema import REFERRAL_KINDS


class ReferralRules(BaseModel):
    """Rules of the referral analysis (defaults when the section is absent)."""

    model_config = ConfigDict(extra="forbid")

    invitation_kinds: list[str] = Field(default_factory=lambda: ["shared", "invited"])
    """Referral kinds that count as one invitation sent by the referrer (a share to many counts once)."""

    acquisition_kinds: list[str] = Field(default_factory=lambda: ["signed_up", "purchased"])
    """Referral kinds that, on their own, mean the referred person was acquired by the referral."""

    conversion_window_days: float = Field(30.0, ge=0)
    """A referred person's first purchase (in ``transactions``) at most this many days (whole
    calendar days) after the first referral touch also counts as the acquisition."""

    generation_discount: float = Field(0.5, ge=0, le=1)
    """Weight per generation of the referral value: a customer brought at distance g (1 = brought
    directly) counts ``generation_discount ** (g - 1)`` times their CLV."""

    level: float = Field(0.95, gt=0, lt=1)
    """Confidence level of every interval (K, amplification, referred-vs-not differences)."""

    clv_horizon_weeks: float = Field(DEFAULT_HORIZON_WEEKS, gt=0)
    """Horizon of the CLV used in the comparison and the referral value, in weeks."""

    annual_discount_rate: float = Field(DEFAULT_DISCOUNT_RATE, ge=0)
    """Annual discount rate of that CLV (0.1 for 10% a year)."""

    largest_cascades: int = Field(3, ge=1)
    """How many of the largest cascades the report draws as trees."""

    max_tree_nodes: int = Field(400, ge=2)
    """Largest cascade (nodes) drawn node by node in the report."""

    max_generations: int = Field(10_000, ge=1)
    """Safety stop of the generation-by-generation walk (generations)."""

    @field_validator("invitation_kinds", "acquisition_kinds")
    @classmethod
    def _known_kinds(cls, value: list[str]) -> list[str]:
        bad = [k for k in value if k not in REFERRAL_KINDS]
        if bad:
            raise ValueError(f"unknown kind {bad[0]!r}; kinds are {', '.join(REFERRAL_KINDS)}")
        return value


def referral_rules(config: str | os.PathLike[str] | dict[str, Any] | ReferralRules | None = None) -> ReferralRules:
    """The ``[referrals]`` rules from ``config`` (a path, a parsed dict, rules, or ``None``)."""
    if isinstance(config, ReferralRules):
        return config
    return section("referrals", ReferralRules, config)
