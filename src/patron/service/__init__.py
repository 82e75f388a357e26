"""patron as a service: Segment-spec event API, one profile per person, real-time status, and a
web dashboard, on FastAPI + uvicorn over the same DuckDB file the CLI uses.

One process owns the database file while it serves (DuckDB lets one process write a file). Inside
it, one writer thread owns every write (:mod:`patron.service.writer`: group commit, dedup by
``messageId``, dead letters); request handlers read through short-lived cursors
(:meth:`ServiceState.reading`). The library's own functions (profiles, export, the planner) open
the file by path as usual: :mod:`patron.store` hands them the served database instead of a second
one.

>>> from patron.service import create_app   # doctest: +SKIP
"""

from patron.service.app import create_app
from patron.service.settings import ServiceRules

__all__ = ["ServiceRules", "create_app"]
