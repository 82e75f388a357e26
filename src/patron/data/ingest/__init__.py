"""Validated ingest of transactions, customers and contacts (see :func:`ingest`)."""

from patron.data.ingest.load import IngestResult, ingest

__all__ = ["IngestResult", "ingest"]
