"""The right of access: everything held about a person, as one JSON document."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
import os
import uuid
from typing import Any

from patron.config import section
from patron.errors import NoDataError
from patron.rights.catalog import identifiers, select_person_rows_sql, tables
from patron.rights.rules import RightsRules
from patron.settings import get_settings
from patron.store import reader


def iso_utc(value: dt.datetime) -> str:
    """ISO 8601 text of a timestamp; a naive one is UTC (as patron stores them) and gets ``Z``."""
    if value.tzinfo is None:
        return value.isoformat() + "Z"
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def jsonable(value: Any) -> Any:
    """``value`` as JSON data: timestamps and dates as ISO 8601 text, decimals as numbers, bytes as
    base64 text, non-finite floats as ``None``; lists and structs element by element."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.datetime):
        return iso_utc(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return str(value)


def _decode_attributes(row: dict[str, Any]) -> dict[str, Any]:
    text = row.get("attributes")
    if isinstance(text, str):
        try:
            row["attributes"] = json.loads(text)
        except ValueError:
            pass
    return row


def export_customer(
    db: str | os.PathLike[str] | None,
    customer_id: str,
    *,
    config: str | os.PathLike[str] | dict[str, Any] | None = None,
    include_views: bool = True,
) -> dict[str, Any]:
    """Everything held about the person ``customer_id`` in the database ``db``, as JSON data.

    Every table with a person column (:data:`~patron.rights.rules.PERSON_COLUMNS`, plus ``[rights]
    extra_person_columns``) contributes its rows whose person column equals one of the person's
    identifiers (the id and, from ``customers.attributes``, the ``[rights] identity_attributes``
    such as ``email``); the ``rejects`` table contributes rows whose value equals an identifier or
    whose reason contains one. ``customers.attributes`` is decoded from JSON text.

    Returns ``{"customer_id", "exported_at", "identifiers", "tables": {table: [row, ...]},
    "views": {view: [row, ...]}}``: every table about people appears (with ``[]`` when it holds
    nothing about this person); rows are objects keyed by column, ordered by every column;
    timestamps are ISO 8601 UTC text (``2024-03-31T14:05:00Z``). Views with a person column are
    listed under ``views`` (computed from the tables, so erasure need not touch them) unless
    ``include_views`` is false.

    Raises :class:`~patron.errors.NoDataError` when nothing at all is held about ``customer_id``.
    """
    rules = section("rights", RightsRules, config)
    customer_id = str(customer_id)
    with reader(db) as con:
        found = [t for t in tables(con, rules) if t.about_people]
        ids = identifiers(con, found, customer_id, rules)
        out: dict[str, dict[str, list[dict[str, Any]]]] = {"tables": {}, "views": {}}
        notes: list[str] = []
        for table in found:
            if table.is_view and not include_views:
                continue
            sql, params = select_person_rows_sql(table, ids)
            try:
                cur = con.execute(sql, params)
                rows = cur.fetchall()
            except Exception as exc:  # a broken view must not block the export of the tables
                if not table.is_view:
                    raise
                notes.append(f"view {table.label} could not be read: {str(exc).splitlines()[0]}")
                continue
            names = [d[0] for d in cur.description]
            records = [{n: jsonable(v) for n, v in zip(names, row, strict=True)} for row in rows]
            if table.label == "customers":
                records = [_decode_attributes(r) for r in records]
            out["views" if table.is_view else "tables"][table.label] = records
    if not any(out["tables"].values()):
        raise NoDataError(f"no data about customer {customer_id!r} in database {db if db is not None else get_settings().db}")
    doc: dict[str, Any] = {
        "customer_id": customer_id,
        "exported_at": iso_utc(dt.datetime.now(dt.UTC)),
        "identifiers": ids,
        "tables": out["tables"],
    }
    if include_views:
        doc["views"] = out["views"]
    if notes:
        doc["notes"] = notes
    return doc
