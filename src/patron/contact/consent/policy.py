"""The contact policy: the ``[contact_policy]`` section of the rules file.

The policy sets, per channel, the defaults and hard caps on marketing contact, default quiet hours
and time zone, and which purposes each message class may carry. A customer's own preferences
(:mod:`patron.contact.consent.preferences`) can tighten the policy but never loosen it:

* effective cap = the smaller of the policy cap and the customer's cap (a missing one is no limit);
* quiet hours = the union of the policy's and the customer's quiet hours.

Example::

    [contact_policy]
    time_zone = "Europe/Paris"
    quiet_hours_start = 21
    quiet_hours_end = 8
    marketing_purposes = ["marketing", "personalization"]
    transactional_purposes = ["service"]

    [contact_policy.channels.email]
    max_per_week = 2
    max_per_month = 6
"""

from __future__ import annotations

import os
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from patron.config import section

CHANNELS: tuple[str, ...] = ("email", "sms", "push", "mail", "phone", "in_app")
"""Channels a campaign can use (a consent or preference may also say ``any``)."""

MESSAGE_CLASSES: tuple[str, ...] = ("marketing", "transactional")
"""Message classes: caps, quiet hours, pauses and marketing consent apply to ``marketing`` only."""

HOURS_PER_DAY = 24.0
"""Quiet hours are hours of the local day, 0 to 24."""


def _check_hour(value: float | None) -> float | None:
    if value is not None and not 0.0 <= value <= HOURS_PER_DAY:
        raise ValueError(f"must be an hour of the day between 0 and 24, got {value}")
    return value


class ChannelPolicy(BaseModel):
    """Caps and quiet hours of one channel; empty means no cap / the policy's default quiet hours."""

    model_config = ConfigDict(extra="forbid")

    max_per_week: int | None = Field(default=None, ge=0)
    """Hard cap: at most this many marketing contacts in any rolling 7 days (None: no cap)."""
    max_per_month: int | None = Field(default=None, ge=0)
    """Hard cap: at most this many marketing contacts in any rolling 30 days (None: no cap)."""
    quiet_hours_start: float | None = None
    """Start of this channel's quiet hours, local hour of day 0-24 (None: the policy default)."""
    quiet_hours_end: float | None = None
    """End (exclusive) of this channel's quiet hours, local hour of day 0-24."""

    @field_validator("quiet_hours_start", "quiet_hours_end")
    @classmethod
    def _hours(cls, value: float | None) -> float | None:
        return _check_hour(value)


def _default_channels() -> dict[str, ChannelPolicy]:
    return {
        "email": ChannelPolicy(max_per_week=2, max_per_month=8),
        "sms": ChannelPolicy(max_per_week=1, max_per_month=4),
        "push": ChannelPolicy(max_per_week=3, max_per_month=10),
        "mail": ChannelPolicy(max_per_week=1, max_per_month=2),
        "phone": ChannelPolicy(max_per_week=1, max_per_month=2),
        "in_app": ChannelPolicy(),
    }


class ContactPolicy(BaseModel):
    """The ``[contact_policy]`` section: limits that no campaign and no preference can loosen."""

    model_config = ConfigDict(extra="forbid")

    time_zone: str = "UTC"
    """IANA time zone of customers who did not set one, e.g. ``Europe/Paris``."""
    quiet_hours_start: float | None = 21.0
    """Start of the default quiet hours, local hour of day 0-24 (None: no default quiet hours)."""
    quiet_hours_end: float | None = 8.0
    """End (exclusive) of the default quiet hours, local hour of day 0-24; may wrap past midnight."""
    channels: dict[str, ChannelPolicy] = Field(default_factory=_default_channels)
    """Per-channel caps and quiet hours; a channel not listed has no cap and the default quiet hours."""
    marketing_purposes: list[str] = Field(default_factory=lambda: ["marketing", "personalization", "data_sharing"])
    """Consent purposes a ``marketing`` campaign may use; it needs a granted consent for its purpose."""
    transactional_purposes: list[str] = Field(default_factory=lambda: ["service", "transactional", "account", "security", "order"])
    """Purposes a ``transactional`` campaign (receipts, password resets) may use; never a marketing one."""

    @field_validator("quiet_hours_start", "quiet_hours_end")
    @classmethod
    def _hours(cls, value: float | None) -> float | None:
        return _check_hour(value)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Paris)") from None
        return value

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: dict[str, ChannelPolicy]) -> dict[str, ChannelPolicy]:
        unknown = sorted(set(value) - set(CHANNELS))
        if unknown:
            raise ValueError(f"unknown channel {unknown[0]!r} (channels: {', '.join(CHANNELS)})")
        return value

    @model_validator(mode="after")
    def _disjoint(self) -> ContactPolicy:
        both = sorted(set(self.marketing_purposes) & set(self.transactional_purposes))
        if both:
            raise ValueError(f"purpose {both[0]!r} is both a marketing and a transactional purpose")
        return self

    def channel(self, name: str) -> ChannelPolicy:
        """The policy of channel ``name`` with the default quiet hours filled in."""
        ch = self.channels.get(name, ChannelPolicy())
        start = ch.quiet_hours_start if ch.quiet_hours_start is not None else self.quiet_hours_start
        end = ch.quiet_hours_end if ch.quiet_hours_end is not None else self.quiet_hours_end
        return ch.model_copy(update={"quiet_hours_start": start, "quiet_hours_end": end})


def contact_policy(config: str | os.PathLike[str] | dict[str, Any] | None = None) -> ContactPolicy:
    """The contact policy of the rules file ``config`` (defaults when absent)."""
    return section("contact_policy", ContactPolicy, config)
