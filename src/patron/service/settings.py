"""The ``[service]`` section of the rules file and the options of ``patron serve``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from patron.people.identity.rules import IdentityRules

MAX_EVENT_BYTES: int = 32 * 1024
"""Largest single event the Segment HTTP API accepts (32 KB), in bytes of JSON."""

MAX_BATCH_BYTES: int = 500 * 1024
"""Largest ``/v1/batch`` request the Segment HTTP API accepts (500 KB), in bytes of JSON (after gzip
decoding)."""


class ServiceRules(IdentityRules):
    """``[service]``: how the service ingests, resolves identities and refreshes scores (the identity
    keys are declared by :class:`patron.people.identity.rules.IdentityRules`, which ingest reads too).

    Example::

        [service]
        unique_identifiers = ["user_id", "email"]
        refresh_every_minutes = 60
    """

    model_config = ConfigDict(extra="forbid")

    refresh_every_minutes: float = Field(
        0, ge=0, description="Rebuild scores and profiles every this many minutes (0: only on POST /v1/refresh)."
    )
    snapshot_every_minutes: float = Field(
        5.0, ge=0, le=1440,
        description="Longest time, in minutes, between a change and the read-only snapshot that holds it "
        "(shop.duckdb.snapshot, read by CLI commands while the service holds the database). The snapshot is also "
        "rewritten after every score refresh and erasure. 0: keep none (read-only commands then stop with one line).",
    )
    commit_interval_ms: float = Field(
        2.0, ge=0, le=1000,
        description="Longest a writer waits to gather more events into one commit (group commit), in ms.",
    )
    apply_interval_ms: float = Field(
        250.0, ge=0, le=1000,
        description="Under load, least time between the starts of two commits that apply journaled events, in ms "
        "(events are answered once durable in the journal; bigger groups cost less per event). A read, a refund "
        "or a full group does not wait for it.",
    )
    max_event_bytes: int = Field(MAX_EVENT_BYTES, ge=1024, description="Largest single event, in bytes of JSON.")
    max_batch_bytes: int = Field(MAX_BATCH_BYTES, ge=1024, description="Largest batch request, in bytes of JSON.")
    body_timeout_seconds: float = Field(
        30.0, gt=0, le=3600,
        description="Longest time a client may take to send a whole request body, in seconds (408 beyond).",
    )
    body_idle_seconds: float = Field(
        10.0, gt=0, le=3600,
        description="Longest pause between two parts of a request body, in seconds (408 beyond).",
    )
    consent_event: str = Field(
        "Consent Updated",
        description="Name of the track event that records a consent change into the consent ledger.",
    )
    preferences_event: str = Field(
        "Preferences Updated",
        description="Name of the track event that records a customer's contact preferences into the preferences ledger.",
    )


DEFAULT_PURPOSES: dict[str, str] = {
    "marketing": "Offers and news about our products and services.",
    "personalization": "Choosing what we show and send you from what you bought and looked at.",
    "data_sharing": "Sharing your data with partners for their own offers.",
}
"""Purposes a customer may grant or withdraw on their page by default, with the words shown."""

PageChannel = Literal["email", "sms", "push", "mail", "phone", "in_app"]


class PreferenceCenterRules(BaseModel):
    """``[preference_center]``: the page each customer opens from a signed link to see what is held
    about them and what they get back, and to change their consents and preferences.

    Example::

        [preference_center]
        public_url = "https://preferences.example.com"
        link_hours = 72
        topics = ["news", "offers", "events"]

        [preference_center.purposes]
        marketing = "Offers and news by email, SMS and notifications."
    """

    model_config = ConfigDict(extra="forbid")

    link_hours: float = Field(168.0, gt=0, le=2160, description="How long a link is valid, in hours (at most 90 days).")
    session_minutes: float = Field(
        30.0, gt=0, le=1440,
        description="How long the page stays open after a link is used, in minutes (never past the link's expiry).")
    public_url: str | None = Field(
        None, description="Base address customers reach the service at (behind a proxy), for the links; default: "
        "the address an API request came to, or the running service's for the CLI.")
    purposes: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_PURPOSES),
        description="Purposes the customer may grant or withdraw on the page, with the words shown for each.")
    channels: list[PageChannel] = Field(
        default_factory=lambda: ["email", "sms", "push"], min_length=1,
        description="Channels offered on the page (consent per purpose and channel; caps per channel).")
    topics: list[str] = Field(default_factory=list,
                              description="Topics the customer may choose from (empty: they type their own).")
    erasure: bool = Field(True, description="Whether the page lets the customer erase everything held about them.")

    @field_validator("public_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must start with https:// (or http://)")
        return value.rstrip("/") if value else value

    @field_validator("purposes")
    @classmethod
    def _purposes(cls, value: dict[str, str]) -> dict[str, str]:
        out = {k.strip().lower(): v for k, v in value.items() if k.strip()}
        if not out:
            raise ValueError("name at least one purpose")
        return out

    @field_validator("topics")
    @classmethod
    def _topics(cls, value: list[str]) -> list[str]:
        out = [t.strip() for t in value if t.strip()]
        if any(";" in t for t in out):
            raise ValueError("a topic may not contain ;")
        return out
