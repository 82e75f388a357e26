"""patron as a service: Segment-spec event API, one profile per person, real-time status, and a
web dashboard, on FastAPI + uvicorn over the same DuckDB file the CLI uses.

One process owns the database file while it serves (DuckDB lets one process write a file). Inside
it, one writer thread owns every write (:mod:`patron.service.writer`: group commit, dedup by
``messageId``, dead letters); request handlers read through short-lived cursors
(:meth:`ServiceState.reading`). The library's own functions (profiles, export, the planner) open
the file by path as usual: :mod:`patron.store` hands them the served database instead of a second
one.

Needs the service extra (``pip install 'patron[service]'``): without it, importing this package
raises :class:`~patron.extras.MissingExtraError` (an ``ImportError``) naming it.
"""

from patron.extras import require

require("service", "patron.service")

from patron.service.app import create_app  # noqa: E402
from patron.service.settings import ServiceRules  # noqa: E402

__all__ = ["ServiceRules", "create_app"]
