"""patron: manage customer relationships by what they are worth.

The Python API mirrors the ``patron`` command line::

    import patron
    patron.ingest("orders.csv", kind="transactions", db="shop.duckdb")
    summary = patron.summary("shop.duckdb", period="W", end="2024-12-31")
"""

from importlib.metadata import PackageNotFoundError, version

from patron.errors import InputError, PatronError
from patron.ingest import IngestResult, ingest
from patron.summary import summary

try:
    __version__ = version("patron")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["IngestResult", "InputError", "PatronError", "__version__", "ingest", "summary"]
