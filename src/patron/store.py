"""The store: one embedded DuckDB database file holding every table of the data contract.

All SQL runs through a :class:`Store`; builders elsewhere only return SQL text. Timestamps are
stored and compared in UTC (the session time zone is set to UTC on connect).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from patron.errors import InputError
from patron.schema import CONTRACTS, INGESTS_DDL, REJECTS_DDL, ddl
from patron.settings import get_settings


def _configure(con: duckdb.DuckDBPyConnection, *, memory_limit: str | None, threads: int | None) -> None:
    settings = get_settings()
    con.execute("SET TimeZone = 'UTC'").fetchall()
    limit = memory_limit or settings.memory_limit
    if limit:
        con.execute(f"SET memory_limit = '{limit}'").fetchall()
    n = threads or settings.threads
    if n:
        con.execute(f"SET threads = {int(n)}").fetchall()
    con.execute("SET preserve_insertion_order = false").fetchall()
    con.execute("SET enable_progress_bar = false").fetchall()  # the CLI draws its own


@contextmanager
def connect(
    db: str | os.PathLike[str] | None = None,
    *,
    read_only: bool = False,
    memory_limit: str | None = None,
    threads: int | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the database file ``db`` (``:memory:`` for a throw-away one), create the contract's
    tables if needed, and close it on exit.

    A read-only open of a file that does not exist is an :class:`InputError`.
    """
    path = str(db if db is not None else get_settings().db)
    if read_only and path != ":memory:" and not Path(path).exists():
        raise InputError(f"database {path} does not exist: ingest transactions first (patron ingest FILE --db {path})")
    try:
        con = duckdb.connect(path, read_only=read_only)
    except duckdb.IOException as exc:
        first = str(exc).splitlines()[0]
        raise InputError(f"cannot open database {path}: {first}") from None
    try:
        _configure(con, memory_limit=memory_limit, threads=threads)
        if not read_only:
            for contract in CONTRACTS.values():
                con.execute(ddl(contract))
            con.execute(REJECTS_DDL)
            con.execute(INGESTS_DDL)
        yield con
    finally:
        con.close()


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether the main schema holds a table called ``name``."""
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ? AND table_schema = 'main'",
        [name],
    ).fetchall()
    return bool(row and row[0][0])
