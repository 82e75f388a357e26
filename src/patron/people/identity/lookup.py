"""Read the identity graph: who is this identifier, what identifiers has a person, what merged."""

from __future__ import annotations

from typing import Any

import duckdb

from patron.data.store import table_exists
from patron.people.identity.normalize import (
    ANONYMOUS_ID,
    CUSTOMER_ID,
    EMAIL,
    PHONE,
    USER_ID,
    ident_order,
    normalize_identifier,
    normalize_kind,
)

_PHONE_CHARS = set("+-(). 0123456789")
_HEX = set("0123456789abcdef")


def _exact_customer(con: duckdb.DuckDBPyConnection, identifier: str) -> str | None:
    """A customer id equal to ``identifier`` in ``customers``, ``transactions`` or
    ``customer_profiles`` (people known from files the identity graph never saw)."""
    tables = [t for t in ("customers", "transactions", "customer_profiles") if table_exists(con, t)]
    if not tables:
        return None
    union = " UNION ALL ".join(f"SELECT customer_id FROM {t} WHERE customer_id = $1" for t in tables)
    row = con.execute(f"{union} LIMIT 1", [identifier]).fetchall()
    return str(row[0][0]) if row else None


def _trait_customer(con: duckdb.DuckDBPyConnection, identifier: str) -> str | None:
    """A customer whose ``attributes`` email (any case) or phone (any format) is ``identifier``:
    a customer of a file the identity graph has not seen yet (a database from before file
    customers entered it, until the service or an ingest of customers enters them)."""
    if not table_exists(con, "customers"):
        return None
    phone = normalize_identifier(PHONE, identifier) if set(identifier) <= _PHONE_CHARS else None
    by_phone = ("OR regexp_replace(trim(json_extract_string(attributes, '$.phone')), '[^0-9+]', '', 'g') = $2"
                if phone else "")
    row = con.execute(
        f"""SELECT customer_id FROM customers
        WHERE lower(trim(json_extract_string(attributes, '$.email'))) = lower(trim($1)) {by_phone}
        ORDER BY customer_id LIMIT 1""",
        [identifier, phone] if phone else [identifier],
    ).fetchall()
    return str(row[0][0]) if row else None


def resolve_identifier(con: duckdb.DuckDBPyConnection, identifier: str) -> str | None:
    """The person id (``customer_id``) that ``identifier`` names, whatever it is, or None: what
    every surface (the single view, the contact check, export and erasure, the CLI) resolves.

    In order: the identity graph (:func:`find_customer`: a person id, a customer id of the files,
    a ``userId``, an ``anonymousId``, an e-mail in any case, a phone in any format, other identity
    traits), which knows where merged persons went; then a customer id of ``customers``,
    ``transactions`` or ``customer_profiles`` (people of files only); then an e-mail or phone in
    ``customers.attributes``."""
    identifier = str(identifier).strip()
    if not identifier:
        return None
    found = find_customer(con, identifier)
    if found is not None:
        return str(found)
    found = _exact_customer(con, identifier)
    if found is not None:
        return found
    return _trait_customer(con, identifier)


def find_customer(con: duckdb.DuckDBPyConnection, identifier: str, kind: str | None = None) -> str | None:
    """The person id of ``identifier``, or None when nobody has it.

    With ``kind`` (``user_id``, ``anonymous_id``, ``email``, ``phone``, a trait name) the raw value
    is normalized (an e-mail address is trimmed, lower-cased and hashed) and looked up. Without it,
    the first match in this order: a person id itself (in ``identities`` or ``customers``), a
    customer id of the files, a ``user_id``, an ``anonymous_id``, an e-mail address (or its SHA-256
    hex), a phone number, any other identifier kind.
    """
    text = str(identifier)
    has_ids = table_exists(con, "identities")
    if kind is not None:
        if not has_ids:
            return None
        k = normalize_kind(kind)
        value = normalize_identifier(k, text)
        if value is None:
            return None
        row = con.execute("SELECT customer_id FROM identities WHERE kind = ? AND value = ?", [k, value]).fetchone()
        return row[0] if row else None
    if has_ids and con.execute("SELECT 1 FROM identities WHERE customer_id = ? LIMIT 1", [text]).fetchone():
        return text
    if table_exists(con, "customers") and con.execute(
        "SELECT 1 FROM customers WHERE customer_id = ? LIMIT 1", [text]
    ).fetchone():
        return text
    if not has_ids:
        return None
    candidates: list[tuple[str, str]] = [(CUSTOMER_ID, text), (USER_ID, text), (ANONYMOUS_ID, text)]
    stripped = text.strip().lower()
    if "@" in text:
        email = normalize_identifier(EMAIL, text)
        if email:
            candidates.append((EMAIL, email))
    elif len(stripped) == 64 and set(stripped) <= _HEX:
        candidates.append((EMAIL, stripped))
    if set(text.strip()) <= _PHONE_CHARS:
        phone = normalize_identifier(PHONE, text)
        if phone:
            candidates.append((PHONE, phone))
    clauses = " OR ".join("(kind = ? AND value = ?)" for _ in candidates)
    params: list[Any] = [p for pair in candidates for p in pair]
    rows = con.execute(
        f"SELECT kind, value, customer_id FROM identities WHERE {clauses} "
        "OR (kind NOT IN ('customer_id', 'user_id', 'anonymous_id', 'email', 'phone') AND value = ?)",
        [*params, text.strip()],
    ).fetchall()
    if not rows:
        return _phone_customer(con, text)
    best = min(rows, key=lambda r: ident_order((r[0], r[1])))
    return best[2]


MIN_PHONE_SUFFIX = 7
"""Fewest digits (leading zeros dropped) a phone number must have to be matched without its
country code."""


def _phone_customer(con: duckdb.DuckDBPyConnection, text: str) -> str | None:
    """The person of a phone number written without (or with another) country code or trunk
    zero (``06 12 34 56 78`` for ``+33 6 12 34 56 78``): the one person whose phone's digits end
    with the text's or the other way round; None when none or several do."""
    if not set(text.strip()) <= _PHONE_CHARS:
        return None
    digits = "".join(ch for ch in text if ch.isdigit()).lstrip("0")
    if len(digits) < MIN_PHONE_SUFFIX:
        return None
    found = con.execute(
        "SELECT DISTINCT customer_id FROM (SELECT customer_id, ltrim(regexp_replace(value, '[^0-9]', '', 'g'), '0') AS d "
        "FROM identities WHERE kind = 'phone') WHERE length(d) >= $2 AND (ends_with(d, $1) OR ends_with($1, d)) LIMIT 2",
        [digits, MIN_PHONE_SUFFIX]).fetchall()
    return str(found[0][0]) if len(found) == 1 else None


_KIND_RANK_SQL = ("CASE i.kind WHEN 'customer_id' THEN 0 WHEN 'user_id' THEN 1 WHEN 'email' THEN 2 "
                  "WHEN 'phone' THEN 3 WHEN 'anonymous_id' THEN 9 ELSE 5 END")
"""The canonical rank of a kind (:func:`~patron.people.identity.normalize.ident_order`), in SQL."""


def identities_of(
    con: duckdb.DuckDBPyConnection, customer_id: str, *, limit: int | None = None, offset: int = 0
) -> list[dict[str, Any]]:
    """The identifiers of a person: ``kind``, ``value`` (an e-mail as its SHA-256 hex),
    ``first_seen_at``, ``last_seen_at`` (naive UTC event times).

    Ordered by kind in canonical order (``customer_id``, ``user_id``, ``email``, ``phone``, other
    kinds, ``anonymous_id``), then most recently seen first, then by value; ``limit`` and ``offset`` page
    through them (a person may hold thousands of anonymous ids: see :func:`identity_counts`)."""
    if not table_exists(con, "identities"):
        return []
    page = f" LIMIT {int(limit)} OFFSET {int(offset)}" if limit is not None else (
        f" OFFSET {int(offset)}" if offset else "")
    rows = con.execute(
        "SELECT i.kind, i.value, min(o.occurred_at) AS first_seen, max(o.occurred_at) AS last_seen "
        "FROM identities i "
        "LEFT JOIN (SELECT kind, value, occurred_at FROM identity_observations WHERE customer_id = $1) o "
        "ON o.kind = i.kind AND o.value = i.value WHERE i.customer_id = $1 GROUP BY i.kind, i.value "
        f"ORDER BY {_KIND_RANK_SQL}, i.kind, last_seen DESC NULLS LAST, i.value{page}",
        [str(customer_id)],
    ).fetchall()
    return [{"kind": k, "value": v, "first_seen_at": f, "last_seen_at": last} for k, v, f, last in rows]


def identity_counts(con: duckdb.DuckDBPyConnection, customer_id: str) -> dict[str, int]:
    """How many identifiers of each kind a person holds (kinds in canonical order)."""
    if not table_exists(con, "identities"):
        return {}
    rows = con.execute(
        f"SELECT i.kind, count(*) FROM identities i WHERE i.customer_id = ? GROUP BY i.kind "
        f"ORDER BY {_KIND_RANK_SQL}, i.kind", [str(customer_id)]).fetchall()
    return {k: int(n) for k, n in rows}


def list_merges(
    con: duckdb.DuckDBPyConnection, customer_id: str | None = None, *, limit: int = 100
) -> list[dict[str, Any]]:
    """Recorded merges, refused merges and splits, newest first (at most ``limit``).

    With ``customer_id``, those where the person survived (``customer_id``) or was absorbed or
    refused (``merged_id``). Each record: ``merged_at`` (UTC, when recorded), ``customer_id``,
    ``merged_id``, ``cause_message_id``, ``cause_occurred_at``, ``cause_kind``, ``cause_value``,
    ``reason`` (starts with ``merged``, ``refused`` or ``split``).
    """
    if not table_exists(con, "identity_merges"):
        return []
    where, params = "", []
    if customer_id is not None:
        where, params = "WHERE customer_id = ? OR merged_id = ?", [str(customer_id), str(customer_id)]
    cur = con.execute(
        f"SELECT * FROM identity_merges {where} "
        "ORDER BY merged_at DESC, cause_occurred_at DESC NULLS LAST, merged_id LIMIT ?",
        [*params, int(limit)],
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
