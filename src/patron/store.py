"""The store: one embedded DuckDB database file holding every table of the data contract.

All SQL runs through a :class:`Store`; builders elsewhere only return SQL text. Timestamps are
stored and compared in UTC (the session time zone is set to UTC on connect).
"""

from __future__ import annotations

import json
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


_SERVED: dict[str, duckdb.DuckDBPyConnection] = {}
"""Database files this process serves (``patron serve``), by resolved path, with their root connection."""


def _key(path: str | os.PathLike[str]) -> str:
    return str(Path(path).resolve())


def service_file(db: str | os.PathLike[str]) -> Path:
    """The file beside ``db`` in which a running ``patron serve`` records its pid and address."""
    p = Path(db)
    return p.with_name(p.name + ".serve.json")


def _served_by(path: str) -> str | None:
    """A description of the service holding ``path`` (``pid N at http://host:port``), if one is running."""
    try:
        info = json.loads(service_file(path).read_text(encoding="utf-8"))
        pid = int(info["pid"])
        os.kill(pid, 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return f"pid {pid} at {info.get('url', '?')}"


def open_served(db: str | os.PathLike[str], *, memory_limit: str | None = None, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """Open ``db`` read-write for a service in this process and register it, so that every
    :func:`connect` to the same file in this process gets a cursor of it (DuckDB allows one
    writing process per file; inside it, any number of cursors)."""
    path = str(db)
    try:
        con = duckdb.connect(path)
    except duckdb.IOException as exc:
        raise InputError(_lock_message(path, exc)) from None
    _configure(con, memory_limit=memory_limit, threads=threads)
    for contract in CONTRACTS.values():
        con.execute(ddl(contract))
    con.execute(REJECTS_DDL)
    con.execute(INGESTS_DDL)
    _SERVED[_key(path)] = con
    return con


def close_served(db: str | os.PathLike[str]) -> None:
    """Unregister and close the served database ``db`` (no-op when not served)."""
    con = _SERVED.pop(_key(db), None)
    if con is not None:
        con.close()


def _lock_message(path: str, exc: Exception) -> str:
    holder = _served_by(path)
    if holder is not None:
        return (f"database {path} is held by patron serve ({holder}): send changes through the service "
                f"(its HTTP API) or stop it first")
    first = str(exc).splitlines()[0]
    return f"cannot open database {path}: {first}"


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
    served = _SERVED.get(_key(path)) if path != ":memory:" else None
    if served is not None:  # inside patron serve: a cursor of the served database, never a second open
        cursor = served.cursor()
        try:
            _configure(cursor, memory_limit=memory_limit, threads=threads)
            yield cursor
        finally:
            cursor.close()
        return
    if read_only and path != ":memory:" and not Path(path).exists():
        raise InputError(f"database {path} does not exist: ingest transactions first (patron ingest FILE --db {path})")
    try:
        con = duckdb.connect(path, read_only=read_only)
    except duckdb.IOException as exc:
        raise InputError(_lock_message(path, exc)) from None
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
