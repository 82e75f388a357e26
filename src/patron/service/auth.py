"""API keys per role, stored hashed, and the FastAPI dependency that checks them.

Roles: ``write`` (event ingestion), ``read`` (profiles, scores, dashboard), ``admin`` (export,
erasure, keys, settings; an admin key may also read and write). A key is sent as the HTTP Basic
user name with an empty (or any) password -- what the official Segment and RudderStack SDKs send --
or as ``Authorization: Bearer KEY``. On the event endpoints (write role) a request *without* an
``Authorization`` header may carry the key as ``writeKey`` in its JSON body instead: what
``@segment/analytics-node`` 2.x sends (no header at all). A missing, malformed, unknown or revoked
key gets 401 with ``WWW-Authenticate: Basic realm="patron"``; a known key of the wrong role gets 403.

Storage. The ``api_keys`` table holds ``key_id, role, name, key_hash, created_at, revoked_at``;
the plain key is returned once by :func:`create_key` and never stored. ``key_hash`` is the hex
SHA-256 of the key. A plain fast hash is adequate here (a slow password hash such as scrypt is
not needed) because a key is 32 random bytes from :mod:`secrets` (256 bits of entropy): nobody
can guess or brute-force a preimage of its hash, unlike a human-chosen password. A fast hash also
lets the service check a key on every event request in about a microsecond.

Checking. :class:`KeyRing` keeps ``{hash: key}`` of the live keys in memory (loaded at start-up,
reloaded after a change made through the API), so a request costs one SHA-256 and one dict lookup,
no database read (about 8 us); a header already seen with a live key is one dict lookup (0.2 us). Looking up the *hash* (not the key) means a timing difference reveals nothing
usable about a secret.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import contextvars
import hashlib
import os
import secrets
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, get_args

import duckdb
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPBasic

from patron.errors import InputError, NoDataError
from patron.service.body import read_body, remember_json
from patron.service.browser import check_content_type, cross_site, refuse_cross_site
from patron.service.json_body import parse_events

if TYPE_CHECKING:  # pragma: no cover
    from patron.service.state import ServiceState

Role = Literal["write", "read", "admin"]
ROLES: tuple[str, ...] = get_args(Role)
"""Every role, least to most powerful for reading: write, read, admin."""

REALM = "patron"
"""The HTTP Basic realm named in ``WWW-Authenticate``."""

KEY_BYTES = 32
"""Random bytes in a key (256 bits), drawn from :mod:`secrets`."""

HEADER_CACHE = 4096
"""Most ``Authorization`` headers of live keys remembered by a :class:`KeyRing`."""

API_KEYS_DDL = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id VARCHAR NOT NULL,
    role VARCHAR NOT NULL,
    name VARCHAR,
    key_hash VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
)
"""
"""One row per key ever created; ``key_hash`` is the hex SHA-256 of the plain key (never stored)."""


@dataclass(frozen=True)
class ApiKey:
    """A key as listed (no secret): id, role, optional name, creation and revocation times (naive UTC)."""

    key_id: str
    role: str
    name: str | None
    created_at: datetime
    revoked_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["created_at"] = self.created_at.isoformat()
        d["revoked_at"] = self.revoked_at.isoformat() if self.revoked_at else None
        return d


def hash_key(key: str) -> str:
    """Hex SHA-256 of a plain key (see the module docstring for why a fast hash is adequate)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise InputError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    return role


@contextlib.contextmanager
def _connection(db_or_con: str | os.PathLike[str] | duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    if isinstance(db_or_con, duckdb.DuckDBPyConnection):
        yield db_or_con
        return
    from patron.data.store import connect

    with connect(db_or_con) as con:
        yield con


def ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ``api_keys`` table if it is missing."""
    con.execute(API_KEYS_DDL)


def create_key(db_or_con: str | os.PathLike[str] | duckdb.DuckDBPyConnection, role: str,
               name: str | None = None) -> str:
    """Create a key of ``role`` in the database file (or open connection) ``db_or_con`` and return
    the plain key, the only time it is visible: ``pk_<role>_`` then 43 URL-safe characters."""
    return create_key_record(db_or_con, role, name)[1]


def create_key_record(db_or_con: str | os.PathLike[str] | duckdb.DuckDBPyConnection, role: str,
                      name: str | None = None) -> tuple[ApiKey, str]:
    """Like :func:`create_key`, also returning the stored record: ``(record, plain key)``."""
    _check_role(role)
    if name is not None:
        name = " ".join(name.split())[:200] or None
    key = f"pk_{role}_{secrets.token_urlsafe(KEY_BYTES)}"
    record = ApiKey(key_id=f"key_{secrets.token_hex(8)}", role=role, name=name, created_at=_now())
    with _connection(db_or_con) as con:
        ensure_table(con)
        con.execute(
            "INSERT INTO api_keys (key_id, role, name, key_hash, created_at) VALUES (?, ?, ?, ?, ?)",
            [record.key_id, role, name, hash_key(key), record.created_at],
        )
    return record, key


def revoke_key(db_or_con: str | os.PathLike[str] | duckdb.DuckDBPyConnection, key_id: str) -> ApiKey:
    """Revoke the key ``key_id`` (from then on it gets 401); revoking twice keeps the first time.
    An unknown id is a :class:`~patron.errors.NoDataError`."""
    with _connection(db_or_con) as con:
        ensure_table(con)
        con.execute("UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                    [_now(), key_id])
        rows = _select(con, "WHERE key_id = ?", [key_id])
    if not rows:
        raise NoDataError(f"no API key {key_id!r}: list keys with patron keys list (or GET /v1/keys)")
    return rows[0]


def list_keys(db_or_con: str | os.PathLike[str] | duckdb.DuckDBPyConnection) -> list[ApiKey]:
    """Every key (live and revoked), oldest first, without secrets or hashes. A database file is
    opened read-only (beside a running service: its snapshot, :mod:`patron.data.served`)."""
    if isinstance(db_or_con, duckdb.DuckDBPyConnection):
        ensure_table(db_or_con)
        return _select(db_or_con, "", [])
    from patron.data.store import reader, table_exists

    with reader(db_or_con) as con:
        return _select(con, "", []) if table_exists(con, "api_keys") else []


def _select(con: duckdb.DuckDBPyConnection, where: str, params: list[Any]) -> list[ApiKey]:
    rows = con.execute(
        f"SELECT key_id, role, name, created_at, revoked_at FROM api_keys {where} ORDER BY created_at, key_id",
        params,
    ).fetchall()
    return [ApiKey(*row) for row in rows]


@dataclass(frozen=True)
class Caller:
    """Who made a request: the id, role and name of the key it carried."""

    key_id: str
    role: str
    name: str | None


CALLER: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("patron_caller", default=None)
"""The caller :class:`KeyCheck` let through, for the rest of the request (an acceptor process
names it to the owner, which checks it is still live: :mod:`patron.service.acceptors`)."""


class KeyRing:
    """The service's live keys (hashes only), loaded from the ``api_keys`` table into memory."""

    version: int = 0
    """Grows at each reload (acceptor processes read the keys again when it moved)."""

    def __init__(self, state: ServiceState) -> None:
        self.state = state
        # (live callers by key hash, by Authorization header already seen): swapped as one tuple on
        # reload, so a lookup never mixes an old key set with a new header cache.
        self._tables: tuple[dict[str, Caller], dict[str, Caller]] = ({}, {})
        if state.root is not None:
            cursor = state.root.cursor()  # start-up: before the writer runs, nothing else writes
            try:
                ensure_table(cursor)
            finally:
                cursor.close()
            self.reload()

    def reload(self) -> None:
        """Read the live keys again (call after creating or revoking a key in the served database)."""
        with self.state.reading() as con:
            rows = con.execute(
                "SELECT key_hash, key_id, role, name FROM api_keys WHERE revoked_at IS NULL"
            ).fetchall()
        self.replace({h: Caller(key_id, role, name) for h, key_id, role, name in rows})

    def replace(self, callers: dict[str, Caller]) -> None:
        """Use ``callers`` (live callers by key hash) as the key set."""
        self._tables = (dict(callers), {})
        self.version += 1

    def callers(self) -> dict[str, Caller]:
        """The live callers by key hash."""
        return self._tables[0]

    def lookup(self, key: str) -> Caller | None:
        """The caller holding the live key ``key``, or None (unknown or revoked)."""
        return self._tables[0].get(hash_key(key))

    def check_header(self, authorization: str) -> Caller | None:
        """The caller whose live key is in the ``Authorization`` header, or None. Headers that held
        a live key are remembered (at most :data:`HEADER_CACHE` of them, forgotten on reload), so a
        sender's repeated requests skip decoding and hashing."""
        by_hash, by_header = self._tables
        caller = by_header.get(authorization)
        if caller is None:
            key = key_from_header(authorization)
            caller = by_hash.get(hash_key(key)) if key is not None else None
            if caller is not None and len(by_header) < HEADER_CACHE:
                by_header[authorization] = caller
        return caller

    def __len__(self) -> int:
        return len(self._tables[0])


# -- the FastAPI dependency -------------------------------------------------------------------

_UNAUTHORIZED_HEADERS = {"WWW-Authenticate": f'Basic realm="{REALM}"'}


def key_from_header(authorization: str | None) -> str | None:
    """The key in an ``Authorization`` header (Basic user name or Bearer token), or None."""
    if not authorization:
        return None
    scheme, _, param = authorization.strip().partition(" ")
    scheme = scheme.lower()
    param = param.strip()
    if not param:
        return None
    if scheme == "bearer":
        return param
    if scheme != "basic":
        return None
    try:
        decoded = base64.b64decode(param, validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    user, _, _password = decoded.partition(":")
    return user or None


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(status_code=401, detail=message, headers=_UNAUTHORIZED_HEADERS)


BODY_KEY_FIELD = "writeKey"
"""Field of a JSON body that may carry the key on the event endpoints (the Segment HTTP API's name)."""

_SEND_KEY = "send it as the HTTP Basic user name (empty password) or as Authorization: Bearer KEY"
_SEND_WRITE_KEY = ("send it as the HTTP Basic user name (empty password), as Authorization: Bearer KEY, "
                   f"or as {BODY_KEY_FIELD} in the JSON body")

SCHEME_DESCRIPTION = (
    "An API key as the HTTP Basic user name with an empty password (what the Segment and RudderStack "
    "SDKs send), or as Authorization: Bearer KEY. The event endpoints (write role) also take a request "
    f"without an Authorization header whose JSON body has the key as `{BODY_KEY_FIELD}` (what "
    "@segment/analytics-node sends)."
)
"""Description of the ``apiKey`` security scheme in OpenAPI (the same on every operation)."""


async def key_from_body(request: Request) -> str | None:
    """The ``writeKey`` of an event request's JSON body, or None when it has none (not a string,
    empty, or the body is not a JSON object).

    The body is read and parsed here once -- decoded from gzip/deflate, within ``max_batch_bytes``
    as sent and decoded, the endpoints' own limit -- and handed to the endpoint without the
    ``writeKey`` (see :func:`~patron.service.body.remember_json`), so the key is never stored in an
    event's payload. A body that cannot be read or parsed (413, 415, 400) carries no key: 401."""
    try:
        body = await read_body(request, limit=request.app.state.patron.rules.max_batch_bytes)
        value = parse_events(body)  # as the endpoint will: a batch survives one bad event
    except HTTPException as exc:
        if exc.status_code == 408:  # too slow: say so, whoever the client is
            raise
        raise _unauthorized(f"missing API key: {_SEND_WRITE_KEY} (the body could not be read: {exc.detail})") from None
    key = value.pop(BODY_KEY_FIELD, None) if isinstance(value, dict) else None
    remember_json(request, value)
    return key if isinstance(key, str) and key else None


class KeyCheck(HTTPBasic):
    """The dependency made by :func:`require`: one callable that reads the ``Authorization``
    header (or, for the write role without that header, the body's ``writeKey``), finds the key in
    the service's :class:`KeyRing` and checks its role. It first applies the browser-safety rules
    of :mod:`patron.service.browser` to state-changing requests (a body declared as JSON, 415; no
    request from another site's page but events with a write key, 403), since every such route
    goes through it.

    It is an ``HTTPBasic`` security scheme, so OpenAPI declares HTTP Basic on every protected
    operation (tools such as schemathesis then send the key); Bearer is accepted too. One
    dependency, not a chain of them, because FastAPI's cost is per dependency and this runs on
    every event request."""

    def __init__(self, role: str | None) -> None:
        super().__init__(scheme_name="apiKey", realm=REALM, auto_error=False, description=SCHEME_DESCRIPTION)
        if role is not None:
            _check_role(role)
        self.patron_auth = role or "any"
        self.body_key = role == "write"  # the event endpoints: writeKey in the body without a header
        self.allowed = frozenset(ROLES if role is None else {role, "admin"})
        self.needed = ("any role" if role is None else
                       f"the {role} role" if role == "admin" else f"the {role} or admin role")

    async def __call__(self, request: Request) -> Caller:  # type: ignore[override]
        # Browser safety first (patron.service.browser): a body must be JSON; a page of another
        # site may only send events, with a write key.
        check_content_type(request, events=self.body_key)
        foreign = cross_site(request)
        if foreign is not None and not self.body_key:
            raise refuse_cross_site(foreign, events=False)
        authorization = request.headers.get("authorization")
        ring: KeyRing | None = request.app.state.patron.keys
        if authorization:
            caller = ring.check_header(authorization) if ring is not None else None
            if caller is None:
                if key_from_header(authorization) is None:
                    raise _unauthorized("malformed Authorization header: use Basic (key as user name) or Bearer KEY")
                raise _unauthorized("unknown or revoked API key")
        elif self.body_key:
            key = await key_from_body(request)
            if key is None:
                raise _unauthorized(f"missing API key: {_SEND_WRITE_KEY}")
            caller = ring.lookup(key) if ring is not None else None
            if caller is None:
                raise _unauthorized(f"unknown or revoked API key (in {BODY_KEY_FIELD})")
        else:
            raise _unauthorized(f"missing API key: {_SEND_KEY}")
        if caller.role not in self.allowed:
            raise HTTPException(status_code=403,
                                detail=f"key {caller.key_id} has the {caller.role} role; this needs {self.needed}")
        if foreign is not None and caller.role != "write":
            raise refuse_cross_site(foreign, events=True)
        CALLER.set(caller)
        return caller


def require(role: Role | None = None) -> Any:
    """Dependency: the request carries a live key of ``role`` (an admin key passes every role;
    ``None``: any role). Gives the :class:`Caller`. Use it in the route decorator,
    ``@router.get(..., dependencies=[require("read")])`` (as a parameter default,
    ``caller: Caller = require("read")``, ruff's B008 objects)."""
    return Depends(KeyCheck(role))


def is_auth_dependency(call: object) -> bool:
    """Whether ``call`` is a dependency made by :func:`require`, or the customer-page check of
    :mod:`patron.service.preference_center` (a link instead of a key): used to check no route is
    open by mistake."""
    return isinstance(call, KeyCheck) or getattr(type(call), "patron_auth", None) == "customer"
