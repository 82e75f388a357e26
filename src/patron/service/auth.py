"""API keys per role, stored hashed; FastAPI dependencies that check them. (Stub: the auth helper
fills this in; the interface below is fixed.)

Roles: ``write`` (event ingestion), ``read`` (profiles, scores, dashboard), ``admin`` (export,
erasure, keys, settings; admin may also read and write). A key is sent as the HTTP Basic user name
with an empty password (what the Segment and RudderStack SDKs do) or as ``Authorization: Bearer KEY``.
Missing or unknown key: 401 with ``WWW-Authenticate: Basic``; known key of the wrong role: 403.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from fastapi import Depends, Request

if TYPE_CHECKING:  # pragma: no cover
    from patron.service.state import ServiceState

Role = Literal["write", "read", "admin"]


class KeyRing:
    """The service's keys (hashes only), loaded from the ``api_keys`` table."""

    def __init__(self, state: ServiceState) -> None:
        self.state = state


def require(role: Role):  # noqa: ANN201 - a FastAPI dependency
    """Dependency: the request carries a key of ``role`` (or admin)."""

    def check(request: Request) -> None:
        return None

    return Depends(check)
