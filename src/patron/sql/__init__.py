"""Portable SQL builders. Functions here return SQL text; they never touch a connection.

Every engine-specific spelling goes through a :class:`~patron.sql.dialect.Dialect`, so the same
builder renders SQL for DuckDB and for Spark SQL.
"""
