"""patron as a service: Segment-spec event API, one profile per person, real-time status, and a
web dashboard, on FastAPI + uvicorn over the same DuckDB file the CLI uses.

One process owns the database file while it serves (DuckDB lets one process write a file). Inside
it, one writer thread owns every write (:mod:`patron.service.writer`: group commit, dedup by
``messageId``, dead letters); request handlers read through short-lived cursors
(:meth:`ServiceState.reading`). The library's own functions (profiles, export, the planner) open
the file by path as usual: :mod:`patron.data.store` hands them the served database instead of a second
one.

The HTTP service needs the service extra (``pip install 'patron[service]'``): without it,
:func:`create_app` (and :mod:`patron.service.app`) raises :class:`~patron.extras.MissingExtraError`
(an ``ImportError``) naming it. The parts that answer without HTTP (the rules' models, the single
view, the contact check, page links) import in the core: the package imports its names on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from patron.service.app import create_app
    from patron.service.settings import ServiceRules

__all__ = ["ServiceRules", "create_app"]

_LAZY = {"create_app": "patron.service.app", "ServiceRules": "patron.service.settings"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'patron.service' has no attribute {name!r}")
    value = getattr(import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
