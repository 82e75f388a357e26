"""What counts as personal data, and the ``[rights]`` section of the rules file.

A table holds data *about a person* when it has a column that names one (:data:`PERSON_COLUMNS`,
plus ``[rights] extra_person_columns``). Export and erasure find those tables by looking at the
database's catalogue, so tables added later (customer profiles, incremental value, contact plans,
...) are covered without changes here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

PERSON_COLUMNS: tuple[str, ...] = ("customer_id", "referrer_id", "referred_id")
"""Column names whose value identifies a person. Every table (in any schema of the database) with
one of these columns holds personal data: ``customers``, ``transactions``, ``contacts``,
``consents``, ``preferences``, ``feedback``, ``referrals`` (as referrer and as referred), and every
derived table keyed by customer (``customer_profiles``, scores, ``incremental_value``,
``contact_plans``, ...). Compared as text (``CAST(column AS VARCHAR)``)."""

REJECTS_TABLE: str = "rejects"
"""The ingest rejects table. It has no person column; a rejects row is about a person when its
``value`` equals one of the person's identifiers or its ``reason`` text contains one in double
quotes (``duplicate customer_id "c1" ...``)."""

AUDIT_TABLE: str = "erasures"
"""The erasure audit log: one row per erasure, holding no personal data (see :func:`erasures_ddl`)."""

PSEUDONYM_PREFIX: str = "erased-"
"""Prefix of the pseudonym that replaces an erased person's id in kept rows; followed by 32 random
hex digits (a uuid4), never by anything computed from the id."""

def erasures_ddl(ref: str = AUDIT_TABLE) -> str:
    """``CREATE TABLE IF NOT EXISTS`` of the audit log at ``ref`` (default ``erasures``).

    ``erasure_id`` is a random receipt number (uuid4 hex), ``erased_at`` UTC, ``mode``
    pseudonymize or delete, ``identifiers`` how many identifiers of the person were matched (the
    id plus identity attributes), ``tables`` a JSON object ``{table: {"deleted": n,
    "pseudonymized": m}}``. Neither the id, nor a hash of it, nor the pseudonym is stored."""
    return f"""CREATE TABLE IF NOT EXISTS {ref} (
  erasure_id VARCHAR,
  erased_at TIMESTAMP,
  mode VARCHAR,
  identifiers BIGINT,
  rows_deleted BIGINT,
  rows_pseudonymized BIGINT,
  tables VARCHAR
)"""

Mode = Literal["pseudonymize", "delete"]
"""What happens to a person's rows in the tables listed in ``pseudonymize_tables``."""


class RightsRules(BaseModel):
    """The ``[rights]`` section of the rules file: how export and erasure treat a person's data.

    Example::

        [rights]
        transactions = "delete"
        identity_attributes = ["email", "phone", "loyalty_card"]
    """

    model_config = ConfigDict(extra="forbid")

    transactions: Mode = "pseudonymize"
    """Default erasure mode. ``pseudonymize``: the person's rows in ``pseudonymize_tables`` are kept
    under a random pseudonym (``erased-<32 hex digits>``), so revenue, order counts and other
    aggregates are unchanged; ``delete``: those rows are removed like everything else, so
    aggregates drop by exactly the person's contribution."""

    pseudonymize_tables: list[str] = Field(default_factory=lambda: ["transactions"])
    """Tables whose rows are kept under the pseudonym in ``pseudonymize`` mode (names as
    ``table`` or ``schema.table``). Every other row about the person is deleted. ``customers``
    cannot be listed: its attributes are personal data."""

    pseudonymize_keys: bool = True
    """Also replace the key (``order_id``, ...) of pseudonymized rows of contract tables with a
    random token. Derived keys are hashes of the row *including* the customer id, so keeping them
    would let anyone who guesses the id confirm it; given keys link to outside systems."""

    extra_person_columns: list[str] = Field(default_factory=list)
    """Column names, besides :data:`PERSON_COLUMNS`, whose value identifies a person."""

    identity_attributes: list[str] = Field(default_factory=lambda: ["email", "phone"])
    """Keys of ``customers.attributes`` whose values also identify the person (e.g. a referral
    whose ``referred_id`` is an email address). Their values are matched like the id."""

    residue_check: Literal["contains", "equals", "off"] = "contains"
    """After the rewrite, scan every text column of every table and abort the erasure (nothing
    changed) naming the table and column if something still names the person: ``contains`` (a
    value naming them, or containing their e-mail, phone or an id of at least 6 characters, in any
    case), ``equals`` (a value naming them), ``off`` (no scan)."""

    @field_validator("pseudonymize_tables")
    @classmethod
    def _no_customers(cls, tables: list[str]) -> list[str]:
        if any(t.split(".")[-1].lower() == "customers" for t in tables):
            raise ValueError("customers cannot be pseudonymized: its attributes are personal data")
        return tables

    def person_columns(self) -> tuple[str, ...]:
        """:data:`PERSON_COLUMNS` plus ``extra_person_columns`` (lower case, no duplicates)."""
        names = [*PERSON_COLUMNS, *(c.lower() for c in self.extra_person_columns)]
        return tuple(dict.fromkeys(names))
