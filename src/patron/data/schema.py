"""The data contract: the tables patron stores, their columns, and how ingest checks each column.

``docs/data-contract.md`` describes the same tables for people; a test keeps the two in step.
Events and identities come with the service; their table names are reserved in
:data:`RESERVED_TABLES`.

Timestamps are stored as ``TIMESTAMP`` in UTC (an input with an offset is converted; one without is
taken as UTC). Money is ``DOUBLE`` in the order's currency.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FieldType = Literal["text", "timestamp", "number", "boolean", "choice", "currency"]


@dataclass(frozen=True)
class Column:
    """One column of the contract.

    ``required`` means every row must carry a value; ``optional`` columns may be absent from a file
    or empty in a row. ``choices`` lists the allowed values of a ``choice`` column (lower case).
    ``non_negative`` rejects values below zero for a ``number`` column; ``money`` marks an amount
    in the row's currency (finite, at most :data:`~patron.data.ingest.plausible.MAX_MONEY` in absolute
    value).
    """

    name: str
    type: FieldType
    sql_type: str
    required: bool = False
    choices: tuple[str, ...] = ()
    non_negative: bool = False
    doc: str = ""
    future_ok: bool = False
    """A ``timestamp`` column that may lie in the future (an expiry, a pause end): not checked
    against now plus the allowed clock skew."""
    money: bool = False
    hashed_when_empty: bool = True
    """Whether an empty value takes part in the content hash that derives a row's key. False for
    a column added to a contract later: rows that leave it empty keep the key they had before
    it existed, so re-ingesting an old file adds nothing."""

    @property
    def identifier(self) -> bool:
        """Whether the column holds an identifier (a ``text`` column named ``*_id``): checked by the
        id rule of :mod:`patron.data.ingest.plausible` (no control, zero-width or bidi characters)."""
        return self.type == "text" and self.name.endswith("_id")


@dataclass(frozen=True)
class TableContract:
    """A table of the contract: its columns, its key, and whether other input columns are kept.

    ``key`` identifies a row for de-duplication. When ``derive_key`` is true and the input has no key
    column, the key is derived from a hash of the row's values plus its occurrence number among
    identical rows of the same input, so that re-ingesting the same file adds nothing while two
    genuinely identical orders in one file are both kept.
    """

    name: str
    columns: tuple[Column, ...]
    key: str
    derive_key: bool
    keep_extra_as_attributes: bool = False
    doc: str = ""
    all_or_nothing: bool = False
    """When true, a file with any rejected row stores nothing: the rejects are still recorded and
    written, and ingest fails naming the first bad row and field (ledgers such as consents)."""

    @property
    def required(self) -> tuple[str, ...]:
        """Names of the columns every input must provide (after column mapping)."""
        return tuple(
            c.name
            for c in self.columns
            if c.required and not (c.name == self.key and self.derive_key)
        )

    def column(self, name: str) -> Column:
        """The column called ``name``."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


CONTACT_KINDS: tuple[str, ...] = (
    "sent",
    "delivered",
    "opened",
    "clicked",
    "unsubscribed",
    "complained",
    "bounced",
)
"""Kinds of contact event, in the order a message goes through them."""

TRANSACTIONS = TableContract(
    name="transactions",
    key="order_id",
    derive_key=True,
    doc="One row per order or refund. Negative amounts are refunds.",
    columns=(
        Column("customer_id", "text", "VARCHAR", required=True, doc="Who bought."),
        Column("order_id", "text", "VARCHAR", required=True,
               doc="Unique order id; derived from the row when the input has no such column."),
        Column("occurred_at", "timestamp", "TIMESTAMP", required=True, doc="When (UTC)."),
        Column("amount", "number", "DOUBLE", required=True, money=True,
               doc="Order value in `currency`; negative for a refund."),
        Column("currency", "currency", "VARCHAR", doc="ISO 4217 code, e.g. USD."),
        Column("channel", "text", "VARCHAR", doc="Where it was bought, e.g. web, store, app."),
        Column("category", "text", "VARCHAR", doc="Product category of the order."),
        Column("discount", "number", "DOUBLE", non_negative=True, money=True,
               doc="Discount granted on the order, in `currency` (0 for full price)."),
        Column("margin", "number", "DOUBLE", money=True, doc="Gross margin of the order, in `currency`."),
    ),
)

CUSTOMERS = TableContract(
    name="customers",
    key="customer_id",
    derive_key=False,
    keep_extra_as_attributes=True,
    doc="One row per known person; other input columns are kept as JSON `attributes`.",
    columns=(
        Column("customer_id", "text", "VARCHAR", required=True, doc="The person's id."),
        Column("first_seen", "timestamp", "TIMESTAMP", doc="When the person became known (UTC)."),
    ),
)

CONTACTS = TableContract(
    name="contacts",
    key="contact_id",
    derive_key=True,
    doc="One row per contact event (a message sent, delivered, opened, ...).",
    columns=(
        Column("contact_id", "text", "VARCHAR", required=True,
               doc="Unique event id; derived from the row when the input has no such column."),
        Column("customer_id", "text", "VARCHAR", required=True, doc="Who was contacted."),
        Column("occurred_at", "timestamp", "TIMESTAMP", required=True, doc="When (UTC)."),
        Column("channel", "text", "VARCHAR", required=True, doc="email, sms, push, mail, phone, in_app, ..."),
        Column("campaign_id", "text", "VARCHAR", doc="The campaign the contact belongs to."),
        Column("kind", "choice", "VARCHAR", required=True, choices=CONTACT_KINDS,
               doc="One of " + ", ".join(CONTACT_KINDS) + "."),
        Column("in_holdout", "boolean", "BOOLEAN",
               doc="True when the customer was held out of the campaign (not sent) for measurement."),
    ),
)

# --- feedback (relationship status issue) -------------------------------------------------------
FEEDBACK = TableContract(
    name="feedback",
    key="feedback_id",
    derive_key=True,
    doc="One row per satisfaction or feedback score a customer gave (NPS, CSAT, ...).",
    columns=(
        Column("feedback_id", "text", "VARCHAR", required=True,
               doc="Unique response id; derived from the row when the input has no such column."),
        Column("customer_id", "text", "VARCHAR", required=True, doc="Who answered."),
        Column("occurred_at", "timestamp", "TIMESTAMP", required=True, doc="When (UTC)."),
        Column("score", "number", "DOUBLE", required=True, doc="The score given, on the scale of `kind`."),
        Column("kind", "text", "VARCHAR", required=True, doc="The survey: nps (0-10), csat (1-5), ..."),
    ),
)

# --- consents and preferences (customer-managed relationships issue) ---------------------------
CONSENT_CHANNELS: tuple[str, ...] = ("email", "sms", "push", "mail", "phone", "in_app", "any")
"""Channels a consent or preference can name (``any``: every channel)."""

CONSENT_STATUSES: tuple[str, ...] = ("granted", "denied", "revoked")
"""What a consent record says."""

CONSENTS = TableContract(
    name="consents",
    key="consent_id",
    derive_key=True,
    all_or_nothing=True,
    doc="The consent ledger: append-only records of what a customer allowed, per purpose and channel.",
    columns=(
        Column("consent_id", "text", "VARCHAR", required=True,
               doc="Unique record id; derived from the row when the input has no such column."),
        Column("customer_id", "text", "VARCHAR", required=True, doc="Whose consent."),
        Column("purpose", "text", "VARCHAR", required=True,
               doc="marketing, analytics, personalization, data_sharing, ..."),
        Column("channel", "choice", "VARCHAR", required=True, choices=CONSENT_CHANNELS,
               doc="One of " + ", ".join(CONSENT_CHANNELS) + "."),
        Column("status", "choice", "VARCHAR", required=True, choices=CONSENT_STATUSES,
               doc="One of " + ", ".join(CONSENT_STATUSES) + "."),
        Column("occurred_at", "timestamp", "TIMESTAMP", required=True, doc="When the customer decided (UTC)."),
        Column("source", "text", "VARCHAR", doc="Where it was recorded: web form, app, call centre, ..."),
        Column("lawful_basis", "text", "VARCHAR", doc="consent, contract, legitimate_interest, ..."),
        Column("policy_version", "text", "VARCHAR", doc="Version of the privacy policy shown."),
        Column("expires_at", "timestamp", "TIMESTAMP", future_ok=True,
               doc="When a grant lapses (UTC); empty for never. May lie in the future."),
    ),
)

PREFERENCES = TableContract(
    name="preferences",
    key="preference_id",
    derive_key=True,
    all_or_nothing=True,
    doc="The customer's own contact settings; a later record for the same customer and channel wins.",
    columns=(
        Column("preference_id", "text", "VARCHAR", required=True,
               doc="Unique record id; derived from the row when the input has no such column."),
        Column("customer_id", "text", "VARCHAR", required=True, doc="Whose preferences."),
        Column("occurred_at", "timestamp", "TIMESTAMP", required=True, doc="When they were set (UTC)."),
        Column("channel", "choice", "VARCHAR", required=True, choices=CONSENT_CHANNELS,
               doc="The channel they apply to (`any`: all channels)."),
        Column("max_per_week", "number", "DOUBLE", non_negative=True, doc="At most this many contacts per 7 days."),
        Column("max_per_month", "number", "DOUBLE", non_negative=True, doc="At most this many contacts per 30 days."),
        Column("topics", "text", "VARCHAR", doc="Topics wanted, separated by `;` (empty: all)."),
        Column("quiet_hours_start", "number", "DOUBLE", non_negative=True,
               doc="Start of quiet hours, hour of day 0-23 in `time_zone`."),
        Column("quiet_hours_end", "number", "DOUBLE", non_negative=True,
               doc="End of quiet hours (exclusive), hour of day 0-24 in `time_zone`."),
        Column("time_zone", "text", "VARCHAR", doc="IANA time zone, e.g. Europe/Paris (default UTC)."),
        Column("preferred_channel", "text", "VARCHAR", doc="The channel the customer prefers."),
        Column("paused_until", "timestamp", "TIMESTAMP", future_ok=True,
               doc="No marketing contact before this time (UTC). May lie in the future."),
        Column("source", "text", "VARCHAR", hashed_when_empty=False,
               doc="Where it was recorded: a file, `api`, `event`, `preference_center` (the customer's own page), ..."),
    ),
)

# --- referrals (word of mouse issue) -----------------------------------------------------------
REFERRAL_KINDS: tuple[str, ...] = ("shared", "invited", "clicked", "signed_up", "purchased")
"""Steps of a referral, in the order they happen."""

REFERRALS = TableContract(
    name="referrals",
    key="referral_id",
    derive_key=True,
    doc="One row per referral event: a customer shared or invited, and someone clicked, signed up, bought.",
    columns=(
        Column("referral_id", "text", "VARCHAR", required=True,
               doc="Unique event id; derived from the row when the input has no such column."),
        Column("referrer_id", "text", "VARCHAR", required=True, doc="The customer who shared or invited."),
        Column("referred_id", "text", "VARCHAR", doc="The identifier of the person reached (empty for a share to many)."),
        Column("channel", "text", "VARCHAR", doc="email, whatsapp, facebook, link, ..."),
        Column("campaign_id", "text", "VARCHAR", doc="The campaign or offer the referral belongs to."),
        Column("link_id", "text", "VARCHAR", doc="The shared link or invitation code."),
        Column("occurred_at", "timestamp", "TIMESTAMP", required=True, doc="When (UTC)."),
        Column("kind", "choice", "VARCHAR", required=True, choices=REFERRAL_KINDS,
               doc="One of " + ", ".join(REFERRAL_KINDS) + "."),
    ),
)

OFFERS = TableContract(
    name="offers",
    key="offer_id",
    derive_key=False,
    doc="One row per referral offer and its limits; `offer_id` matches `referrals.campaign_id`.",
    columns=(
        Column("offer_id", "text", "VARCHAR", required=True, doc="The offer, equal to the `campaign_id` of its referrals."),
        Column("starts_at", "timestamp", "TIMESTAMP", future_ok=True,
               doc="First moment a referral may come in (UTC); empty for no start. May lie in the future."),
        Column("ends_at", "timestamp", "TIMESTAMP", future_ok=True,
               doc="Last moment a referral may come in (UTC); empty for no end. May lie in the future."),
        Column("duration_days", "number", "DOUBLE", non_negative=True,
               doc="Length of the offer in days from `starts_at`, used when `ends_at` is empty (e.g. an offer still running)."),
        Column("max_referrals", "number", "DOUBLE", non_negative=True,
               doc="At most this many referred acquisitions count for the offer; empty for no cap."),
        Column("invitation_only", "boolean", "BOOLEAN",
               doc="True when only people personally invited (a referral of kind `invited`) may take the offer."),
    ),
)

# --- interactions (engagement issue) ------------------------------------------------------------
INTERACTION_CHANNELS: tuple[str, ...] = ("web", "app", "email", "device", "store", "other")
"""Channels of an interaction: a web page, a mobile app, an e-mail, a connected device, a store,
anything else."""

INTERACTIONS = TableContract(
    name="interactions",
    key="interaction_id",
    derive_key=True,
    doc="One row per touchpoint between purchases: a page or screen view, a product view, an e-mail "
        "open or click, a device heartbeat, a store visit, ... (read by patron.relationship.engagement).",
    columns=(
        Column("interaction_id", "text", "VARCHAR", required=True,
               doc="Unique interaction id; derived from the row when the input has no such column."),
        Column("customer_id", "text", "VARCHAR", required=True, doc="Who interacted."),
        Column("occurred_at", "timestamp", "TIMESTAMP", required=True, doc="When (UTC)."),
        Column("channel", "choice", "VARCHAR", required=True, choices=INTERACTION_CHANNELS,
               doc="One of " + ", ".join(INTERACTION_CHANNELS) + "."),
        Column("kind", "text", "VARCHAR", required=True,
               doc="What happened, lower snake case: page_view, screen_view, product_view, email_open, "
                   "email_click, heartbeat, store_visit, content_view, ..."),
        Column("object", "text", "VARCHAR", doc="The page, product, campaign or content id concerned."),
        Column("value", "number", "DOUBLE", doc="A measure of the interaction (seconds spent, items, ...), when it has one."),
    ),
)

# --- campaigns (motivation, issue 20) ----------------------------------------------------------
CAMPAIGN_KINDS: tuple[str, ...] = ("discount", "content", "values", "other")
"""What a campaign offers: a price cut, non-promotional content, the brand's values, or other."""

CAMPAIGNS = TableContract(
    name="campaigns",
    key="campaign_id",
    derive_key=False,
    doc="One row per campaign: what it offers; `campaign_id` matches `contacts.campaign_id`.",
    columns=(
        Column("campaign_id", "text", "VARCHAR", required=True, doc="The campaign, equal to the `campaign_id` of its contacts."),
        Column("kind", "choice", "VARCHAR", required=True, choices=CAMPAIGN_KINDS,
               doc="One of " + ", ".join(CAMPAIGN_KINDS) + "."),
        Column("discount_pct", "number", "DOUBLE", non_negative=True,
               doc="The price cut a discount campaign offers, in percent of the list price (0-100)."),
        Column("name", "text", "VARCHAR", doc="A readable name."),
    ),
)

CONTRACTS: dict[str, TableContract] = {
    t.name: t for t in (TRANSACTIONS, CUSTOMERS, CONTACTS, FEEDBACK, CONSENTS, PREFERENCES, REFERRALS, OFFERS,
                          INTERACTIONS, CAMPAIGNS)
}
"""Every table that ``patron ingest --kind`` accepts, by name."""

RESERVED_TABLES: tuple[str, ...] = ("events", "identities")
"""Table names kept free for later parts of the contract."""

# --- stores (place: issue 20) ------------------------------------------------------------------
STORES = TableContract(
    name="stores",
    key="store_id",
    derive_key=False,
    doc="One row per store (or other place customers come to): where it is and its time zone.",
    columns=(
        Column("store_id", "text", "VARCHAR", required=True, doc="The store's id, as segment rules name it: within_km('store-12', 5)."),
        Column("name", "text", "VARCHAR", doc="The store's name."),
        Column("lat", "number", "DOUBLE", required=True, doc="Latitude, decimal degrees (WGS 84), -90 to 90."),
        Column("lon", "number", "DOUBLE", required=True, doc="Longitude, decimal degrees (WGS 84), -180 to 180."),
        Column("time_zone", "text", "VARCHAR", doc="IANA time zone, e.g. Europe/Paris: the local time of its campaigns' quiet hours."),
        Column("region", "text", "VARCHAR", doc="The region the store belongs to (free text)."),
    ),
)
CONTRACTS[STORES.name] = STORES


def ddl(contract: TableContract) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for a contract table, plus the bookkeeping columns
    ``ingest_id`` (which ingest brought the row) and, for tables with extras, ``attributes``."""
    cols = [f"{c.name} {c.sql_type}" for c in contract.columns]
    if contract.keep_extra_as_attributes:
        cols.append("attributes VARCHAR")
    cols.append("ingest_id VARCHAR")
    return f"CREATE TABLE IF NOT EXISTS {contract.name} (\n  " + ",\n  ".join(cols) + "\n)"


REJECTS_DDL = """CREATE TABLE IF NOT EXISTS rejects (
  ingest_id VARCHAR,
  source VARCHAR,
  kind VARCHAR,
  "row" BIGINT,
  "column" VARCHAR,
  value VARCHAR,
  reason VARCHAR,
  rejected_at TIMESTAMP
)"""
"""Every input row that could not be used, with the 1-based source row number and the reason."""

INGESTS_DDL = """CREATE TABLE IF NOT EXISTS ingests (
  ingest_id VARCHAR,
  source VARCHAR,
  kind VARCHAR,
  started_at TIMESTAMP,
  rows_read BIGINT,
  accepted BIGINT,
  rejected BIGINT,
  already_present BIGINT,
  rejects_file VARCHAR
)"""
"""One row per ingest run: the audit trail of what came in from where."""
