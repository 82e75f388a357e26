"""Signed, expiring links to a customer's own page (the preference center), and the short-lived
session a link opens.

A token is ``pc1.<payload>.<signature>``: the payload is base64url JSON ``{"sub": customer id,
"exp": expiry (Unix seconds), "non": the person's link nonce, "pur": purpose}`` and the signature
is HMAC-SHA256 over ``pc1.<payload>`` with the database's link secret (32 random bytes from
:mod:`secrets`, made once and stored in ``service_secrets``; never a fixed or placeholder value).
:func:`verify` recomputes the signature and compares in constant time
(:func:`hmac.compare_digest`), then checks the purpose, the expiry and the nonce.

* **Purpose.** ``preference_link`` for a link sent to a customer, ``preference_session`` for the
  cookie a link is exchanged for: one cannot stand for the other.
* **Bound to one person at mint time.** ``sub`` is the person id the identifier named when the
  link was made. The page shows the rows of that id only, never a person the id was merged into
  since, and takes no identifier from the request.
* **Revocable.** Each person with a link has a row in ``preference_links`` (``customer_id``,
  a random ``nonce``, ``created_at``, ``revoked_at``); a token carries the nonce, and is valid only
  while the row holds the same one. Revoking replaces the nonce: every link and session of the
  person stops at once. Erasure removes the row with the person (it has a ``customer_id``), so
  no link outlives an erasure.

Nothing here reads a request; :mod:`patron.service.preference_center` does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

PREFIX = "pc1"
"""Version tag of the token format."""

LINK = "preference_link"
"""Purpose of a link sent to a customer."""

SESSION = "preference_session"
"""Purpose of the session cookie a link is exchanged for."""

SECRET_NAME = "preference_links"
"""Name of the link secret's row in ``service_secrets``."""

SECRET_BYTES = 32
"""Random bytes in the link secret (256 bits) and in a person's nonce (128 bits: half)."""

MAX_TOKEN_CHARS = 2048
"""Longest token read (a customer id is at most a few hundred characters)."""

SECRETS_DDL = """CREATE TABLE IF NOT EXISTS service_secrets (
    name VARCHAR NOT NULL,
    secret VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL
)"""
"""Secrets of the service (hex); no person column: not personal data."""

LINKS_DDL = """CREATE TABLE IF NOT EXISTS preference_links (
    customer_id VARCHAR NOT NULL,
    nonce VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
)"""
"""One row per person who has (had) a link: the nonce every valid token of the person carries."""


class LinkError(Exception):
    """A token that opens nothing; ``str()`` says why in words a customer can read."""


@dataclass(frozen=True)
class Claims:
    """What a valid token says: whose page, until when (naive UTC), its nonce and purpose."""

    customer_id: str
    expires_at: datetime
    nonce: str
    purpose: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, message: str) -> str:
    return _b64(hmac.new(secret, message.encode("ascii"), hashlib.sha256).digest())


def _epoch(t: datetime) -> int:
    return int((t.replace(tzinfo=UTC) if t.tzinfo is None else t).timestamp())


def mint(secret: bytes, customer_id: str, *, nonce: str, expires_at: datetime, purpose: str = LINK) -> str:
    """A token for ``customer_id`` valid until ``expires_at`` (naive UTC) while the person's
    nonce is ``nonce``."""
    payload = json.dumps({"sub": customer_id, "exp": _epoch(expires_at), "non": nonce, "pur": purpose},
                         separators=(",", ":"), ensure_ascii=False)
    head = f"{PREFIX}.{_b64(payload.encode('utf-8'))}"
    return f"{head}.{_sign(secret, head)}"


def verify(secret: bytes, token: Any, *, purpose: str, now: datetime) -> Claims:
    """The claims of ``token`` if it is a well-formed token of ``purpose`` signed with ``secret``
    and not expired at ``now`` (naive UTC); else :class:`LinkError`. The nonce is checked by the
    caller against the database (:func:`current_nonce`)."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        raise LinkError("this link is not valid")
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        raise LinkError("this link is not valid")
    head = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(_sign(secret, head), parts[2]):
        raise LinkError("this link is not valid")
    try:
        data = json.loads(_unb64(parts[1]).decode("utf-8"))
        claims = Claims(str(data["sub"]), datetime.fromtimestamp(int(data["exp"]), UTC).replace(tzinfo=None),
                        str(data["non"]), str(data["pur"]))
    except (ValueError, KeyError, TypeError, binascii.Error, OverflowError, OSError):
        raise LinkError("this link is not valid") from None
    if claims.purpose != purpose:
        raise LinkError("this link is not valid")
    if now >= claims.expires_at:
        raise LinkError("this link has expired: ask for a new one" if purpose == LINK
                        else "your session has ended: open the link you were sent again")
    return claims


# -- storage ----------------------------------------------------------------------------------


def ensure_tables(con: Any) -> None:
    """Create ``service_secrets`` and ``preference_links`` if missing."""
    con.execute(SECRETS_DDL)
    con.execute(LINKS_DDL)


def read_secret(con: Any) -> bytes | None:
    """The link secret stored in the database, or None (none made yet, or no table)."""
    try:
        row = con.execute("SELECT secret FROM service_secrets WHERE name = ? ORDER BY created_at LIMIT 1",
                          [SECRET_NAME]).fetchone()
    except duckdb.CatalogException:  # no table: a database that never served or minted a link
        return None
    return bytes.fromhex(row[0]) if row else None


def ensure_secret(con: Any, now: datetime) -> bytes:
    """The link secret, made (32 random bytes) and stored on first use."""
    ensure_tables(con)
    secret = read_secret(con)
    if secret is None:
        secret = secrets.token_bytes(SECRET_BYTES)
        con.execute("INSERT INTO service_secrets VALUES (?, ?, ?)", [SECRET_NAME, secret.hex(), now])
    return secret


def current_nonce(con: Any, customer_id: str) -> str | None:
    """The nonce valid tokens of ``customer_id`` carry, or None (no link was ever made, the links
    were erased with the person, or the table is missing)."""
    try:
        row = con.execute("SELECT nonce FROM preference_links WHERE customer_id = ? LIMIT 1", [customer_id]).fetchone()
    except duckdb.CatalogException:
        return None
    return row[0] if row else None


def ensure_nonce(con: Any, customer_id: str, now: datetime) -> str:
    """The person's nonce, made on their first link."""
    ensure_tables(con)
    nonce = current_nonce(con, customer_id)
    if nonce is None:
        nonce = secrets.token_hex(SECRET_BYTES // 2)
        con.execute("INSERT INTO preference_links VALUES (?, ?, ?, NULL)", [customer_id, nonce, now])
    return nonce


def revoke(con: Any, customer_id: str, now: datetime) -> bool:
    """Replace the person's nonce: every link and session of theirs stops. Returns whether they
    had one."""
    ensure_tables(con)
    if current_nonce(con, customer_id) is None:
        return False
    con.execute("UPDATE preference_links SET nonce = ?, revoked_at = ? WHERE customer_id = ?",
                [secrets.token_hex(SECRET_BYTES // 2), now, customer_id])
    return True


def check_nonce(con: Any, claims: Claims) -> None:
    """:class:`LinkError` unless the token's nonce is the person's current one."""
    current = current_nonce(con, claims.customer_id)
    if current is None or not hmac.compare_digest(current, claims.nonce):
        raise LinkError("this link has been withdrawn: ask for a new one")


PAGE_PATH = "/preferences"
"""Path of the page a link opens (the token follows in the fragment)."""


def page_link(con: Any, customer_id: str, *, hours: float, base_url: str, now: datetime,
              create: bool = True) -> dict[str, Any]:
    """A link to ``customer_id``'s page valid ``hours`` from ``now``: ``{"customer_id", "url",
    "expires_at"}``, the URL ``<base_url>/preferences#<token>``. ``create``: make the secret and
    the person's nonce when missing (a write); without it (a read-only database, such as the
    snapshot beside a running service) a missing one is a :class:`LinkError`."""
    if create:
        secret, nonce = ensure_secret(con, now), ensure_nonce(con, customer_id, now)
    else:
        secret, nonce = read_secret(con), current_nonce(con, customer_id)
        if secret is None or nonce is None:
            raise LinkError(f"{customer_id!r} has no link yet, and the first one is a change to the database")
    expires = now + timedelta(hours=hours)
    token = mint(secret, customer_id, nonce=nonce, expires_at=expires)
    return {"customer_id": customer_id, "url": f"{base_url.rstrip('/')}{PAGE_PATH}#{token}",
            "expires_at": expires.replace(microsecond=0).isoformat() + "Z"}
