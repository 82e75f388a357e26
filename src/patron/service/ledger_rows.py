"""Appending records to the consent and preference ledgers inside the writer's transaction: one
Arrow-backed ``INSERT`` per ledger, for the group commit of events
(:mod:`patron.service.commit`) and for the REST endpoints and the preference center
(:mod:`patron.service.ledger_api`). Records are checked before they get here
(:mod:`patron.contact.consent.records`); nothing here judges them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa

from patron.contact.consent.records import LEDGERS
from patron.data.dialect import DUCKDB
from patron.data.schema import Column

_ARROW: dict[str, pa.DataType] = {"VARCHAR": pa.string(), "DOUBLE": pa.float64(), "TIMESTAMP": pa.timestamp("us")}
"""Arrow type of each SQL type a ledger column has."""


def _array(col: Column, values: list[Any]) -> pa.Array:
    return pa.array(values, _ARROW[col.sql_type])


def insert_records(cur: duckdb.DuckDBPyConnection, kind: str, rows: Sequence[tuple[str, str, dict[str, Any]]]) -> int:
    """Append ``rows`` (``(customer_id, ingest_id, record)``) to the ledger ``kind`` on ``cur``
    (inside the caller's transaction); returns how many. ``ingest_id`` says where a row came from:
    the event's messageId, or the request's id."""
    if not rows:
        return 0
    contract = LEDGERS[kind]
    columns = {c.name: _array(c, [cid if c.name == "customer_id" else rec.get(c.name) for cid, _, rec in rows])
               for c in contract.columns}
    columns["ingest_id"] = pa.array([ingest for _, ingest, _ in rows], pa.string())
    _rows = pa.table(columns)  # read by DuckDB's replacement scan
    names = ", ".join(DUCKDB.ident(n) for n in columns)
    cur.execute(f"INSERT INTO {contract.name} ({names}) SELECT {names} FROM _rows")
    return len(rows)


def stored_keys(cur: duckdb.DuckDBPyConnection, kind: str, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The records of ``kind`` already stored under ``keys`` (a client may name its records, to
    retry a request safely), by key, as ``{column: value}``."""
    if not keys:
        return {}
    contract = LEDGERS[kind]
    _keys = pa.table({"k": pa.array(list(keys), pa.string())})  # read by DuckDB's replacement scan
    cols = [c.name for c in contract.columns]
    found = cur.execute(f"SELECT {', '.join(cols)} FROM {contract.name} SEMI JOIN _keys ON {contract.key} = _keys.k").fetchall()
    return {row[cols.index(contract.key)]: dict(zip(cols, row, strict=True)) for row in found}
