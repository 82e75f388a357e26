"""A per-database secret and the keyed hashes made with it.

Some things patron keeps must be recognisable without being readable: the suppression list of
erased identifiers and messageIds (:mod:`patron.people.rights.suppress`), the message id under which a row
of a ``customers`` file enters the identity graph (:mod:`patron.people.identity.files`). A plain SHA-256 of
an e-mail address or a user id can be reversed by hashing guesses (addresses and ids are few and
guessable: a list of a million addresses is hashed in a second), so these are HMAC-SHA256 digests
under a secret of 32 random bytes that each database draws once and keeps in ``patron_secret``.

What the key buys, stated plainly: a digest leaked or copied on its own (a log line, an export, a
list handed to another system) cannot be tested against guesses. Whoever holds the whole database
file holds the key too and can test guesses one by one, as they could look the person up if the
person were still there; the key is in the database (not in a file beside it) so that backups and
copies keep recognising what they suppress.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import duckdb

SECRET_TABLE: str = "patron_secret"
"""Table holding the database's secrets (``name``, ``value`` hex text); no personal data."""

DIGEST_KEY: str = "digest_key"
"""Name of the HMAC key in :data:`SECRET_TABLE`."""

KEY_BYTES: int = 32
"""Length of the key (256 bits, the output size of SHA-256)."""


def secret_ddl(ref: str = SECRET_TABLE) -> str:
    """``CREATE TABLE IF NOT EXISTS`` of :data:`SECRET_TABLE` at ``ref``."""
    return f"CREATE TABLE IF NOT EXISTS {ref} (name VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)"


def database_key(con: duckdb.DuckDBPyConnection, *, create: bool = True) -> bytes | None:
    """The database's HMAC key, drawn (``secrets.token_bytes``) and stored on first use when
    ``create``; None when the database has none and ``create`` is false (a read-only reader)."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ? AND table_schema = 'main' "
        "AND table_catalog = current_database()", [SECRET_TABLE]).fetchall()[0][0]
    if exists:
        row = con.execute(f"SELECT value FROM {SECRET_TABLE} WHERE name = ?", [DIGEST_KEY]).fetchall()
        if row:
            return bytes.fromhex(row[0][0])
    if not create:
        return None
    con.execute(secret_ddl())
    key = secrets.token_bytes(KEY_BYTES)
    con.execute(f"INSERT INTO {SECRET_TABLE} VALUES (?, ?) ON CONFLICT DO NOTHING", [DIGEST_KEY, key.hex()])
    return bytes.fromhex(con.execute(f"SELECT value FROM {SECRET_TABLE} WHERE name = ?", [DIGEST_KEY]).fetchall()[0][0])


def keyed_digest(key: bytes, kind: str, value: str) -> str:
    """HMAC-SHA256 under ``key`` of ``kind`` and ``value`` (normalized text), as 64 hex digits.

    >>> keyed_digest(b"k" * 32, "email", "x") == keyed_digest(b"k" * 32, "email", "x")
    True
    >>> keyed_digest(b"k" * 32, "email", "x") == keyed_digest(b"j" * 32, "email", "x")
    False
    """
    return hmac.new(key, f"{kind}\x1f{value}".encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
