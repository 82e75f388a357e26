"""The data contract: the tables patron stores, their columns, and how ingest checks each column.

``docs/data-contract.md`` describes the same tables for people; a test keeps the two in step.
Consents, preferences, events and referrals come in later versions; their table names are reserved
in :data:`RESERVED_TABLES`.

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
    ``non_negative`` rejects values below zero for a ``number`` column.
    """

    name: str
    type: FieldType
    sql_type: str
    required: bool = False
    choices: tuple[str, ...] = ()
    non_negative: bool = False
    doc: str = ""


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
        Column("amount", "number", "DOUBLE", required=True,
               doc="Order value in `currency`; negative for a refund."),
        Column("currency", "currency", "VARCHAR", doc="ISO 4217 code, e.g. USD."),
        Column("channel", "text", "VARCHAR", doc="Where it was bought, e.g. web, store, app."),
        Column("category", "text", "VARCHAR", doc="Product category of the order."),
        Column("discount", "number", "DOUBLE", non_negative=True,
               doc="Discount granted on the order, in `currency` (0 for full price)."),
        Column("margin", "number", "DOUBLE", doc="Gross margin of the order, in `currency`."),
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

CONTRACTS: dict[str, TableContract] = {t.name: t for t in (TRANSACTIONS, CUSTOMERS, CONTACTS)}
"""Every table that ``patron ingest --kind`` accepts, by name."""

RESERVED_TABLES: tuple[str, ...] = ("consents", "preferences", "events", "identities", "referrals", "feedback")
"""Table names kept free for later parts of the contract."""


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
