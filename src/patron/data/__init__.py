"""The data stage: the data contract, validated ingest, the store, the files patron writes, the SQL dialect, the bundled datasets and the Spark session.

May import the kernel only (see docs/architecture.md).
"""
