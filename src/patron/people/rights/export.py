"""The right of access: everything held about a person, as one JSON document."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

from patron.config import section
from patron.data.store import reader
from patron.errors import NoDataError
from patron.people.rights.catalog import Table, select_person_rows_sql
from patron.people.rights.erase import find_person
from patron.people.rights.person import identity_traits
from patron.people.rights.rules import RightsRules
from patron.settings import get_settings


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


EXPORT_CHUNK_ROWS = 1000
"""Rows read at a time by :func:`export_chunks` (the export of one person streams, never whole)."""


class _Export:
    """What the two forms of the export share: the reader, the person's tables and identifiers,
    and the rows of each table as JSON data, read :data:`EXPORT_CHUNK_ROWS` at a time."""

    def __init__(self, db: str | os.PathLike[str] | None, customer_id: str, config: Any, include_views: bool,
                 stack: ExitStack) -> None:
        self.db = db
        self.customer_id = str(customer_id)
        self.include_views = include_views
        rules = section("rights", RightsRules, config)
        self.con = stack.enter_context(reader(db))
        found, self.person = find_person(self.con, customer_id, rules, identity_traits(config))
        self.customer_id = self.person.customer_id
        self.found = [t for t in found if t.about_people]
        self.ids = self.person.listed()
        self.notes: list[str] = []

    def sections(self) -> list[tuple[str, list[Table]]]:
        """``("tables", [...])`` and, with views, ``("views", [...])``."""
        out = [("tables", [t for t in self.found if not t.is_view])]
        if self.include_views:
            out.append(("views", [t for t in self.found if t.is_view]))
        return out

    def check_held(self) -> None:
        """Raise :class:`~patron.errors.NoDataError` when no table holds a row about the person."""
        for table in self.found:
            if table.is_view:
                continue
            sql, params = select_person_rows_sql(table, self.person)
            if self.con.execute(f"SELECT EXISTS ({sql})", params).fetchall()[0][0]:
                return
        raise self.nothing_held()

    def nothing_held(self) -> NoDataError:
        return NoDataError(f"no data about customer {self.customer_id!r} in database "
                           f"{self.db if self.db is not None else get_settings().db}")

    def records(self, table: Table) -> Iterator[dict[str, Any]]:
        """The table's rows about the person as JSON objects (a view that cannot be read yields
        nothing and adds a note)."""
        sql, params = select_person_rows_sql(table, self.person)
        try:
            cur = self.con.execute(sql, params)
        except Exception as exc:  # a broken view must not block the export of the tables
            if not table.is_view:
                raise
            self.notes.append(f"view {table.label} could not be read: {str(exc).splitlines()[0]}")
            return
        names = [d[0] for d in cur.description]
        while rows := cur.fetchmany(EXPORT_CHUNK_ROWS):
            for row in rows:
                record = {n: jsonable(v) for n, v in zip(names, row, strict=True)}
                yield _decode_attributes(record) if table.label == "customers" else record


def export_customer(
    db: str | os.PathLike[str] | None,
    customer_id: str,
    *,
    config: str | os.PathLike[str] | dict[str, Any] | None = None,
    include_views: bool = True,
) -> dict[str, Any]:
    """Everything held about the person ``customer_id`` (or any identifier of theirs: a user id,
    an anonymous id, an e-mail in any case, a phone) in the database ``db``, as JSON data: exactly
    the rows :func:`~patron.people.rights.erase_customer` removes (or keeps under a pseudonym).

    The person is followed through every identifier they ever had (:mod:`patron.people.rights.person`).
    Every table with a person column (:data:`~patron.people.rights.rules.PERSON_COLUMNS`, plus ``[rights]
    extra_person_columns``) contributes its rows whose person column names them (an id, an e-mail
    in any case, a phone in any format); the ``rejects`` table contributes rows whose value or a
    field of it names them or whose reason quotes one; ``dead_letters`` the dead letters whose
    identifiers resolve to them. ``customers.attributes`` is decoded from JSON text.

    Returns ``{"customer_id", "exported_at", "identifiers", "tables": {table: [row, ...]},
    "views": {view: [row, ...]}}``: every table about people appears (with ``[]`` when it holds
    nothing about this person); rows are objects keyed by column, ordered by every column;
    timestamps are ISO 8601 UTC text (``2024-03-31T14:05:00Z``). Views with a person column are
    listed under ``views`` (computed from the tables, so erasure need not touch them) unless
    ``include_views`` is false. :func:`export_chunks` writes the same document as JSON text, a
    piece at a time.

    Raises :class:`~patron.errors.NoDataError` when nothing at all is held about ``customer_id``.
    """
    with ExitStack() as stack:
        ex = _Export(db, customer_id, config, include_views, stack)
        out = {name: {t.label: list(ex.records(t)) for t in found} for name, found in ex.sections()}
    if not any(out["tables"].values()):
        raise ex.nothing_held()
    doc: dict[str, Any] = {"customer_id": ex.customer_id, "exported_at": iso_utc(dt.datetime.now(dt.UTC)),
                           "identifiers": ex.ids, **out}
    if ex.notes:
        doc["notes"] = ex.notes
    return doc


def export_chunks(
    db: str | os.PathLike[str] | None,
    customer_id: str,
    *,
    config: str | os.PathLike[str] | dict[str, Any] | None = None,
    include_views: bool = True,
) -> Iterator[str]:
    """:func:`export_customer`'s document as JSON text, in pieces: the rows of each table are read
    :data:`EXPORT_CHUNK_ROWS` at a time and written as they come, so a person with a large history
    is never held in memory whole (``GET /v1/customers/{identifier}/export`` streams it).

    The check that something is held comes first: the first piece is produced only after it, and
    :class:`~patron.errors.NoDataError` is raised by the first ``next()`` when nothing is."""
    with ExitStack() as stack:
        ex = _Export(db, customer_id, config, include_views, stack)
        ex.check_held()
        head = {"customer_id": ex.customer_id, "exported_at": iso_utc(dt.datetime.now(dt.UTC)), "identifiers": ex.ids}
        yield json.dumps(head)[:-1]
        for name, found in ex.sections():
            yield f', "{name}": {{'
            for i, table in enumerate(found):
                yield f'{", " if i else ""}{json.dumps(table.label)}: ['
                piece: list[str] = []
                for j, record in enumerate(ex.records(table)):
                    piece.append((", " if j else "") + json.dumps(record))
                    if len(piece) >= EXPORT_CHUNK_ROWS:
                        yield "".join(piece)
                        piece = []
                yield "".join(piece) + "]"
            yield "}"
        yield (f', "notes": {json.dumps(ex.notes)}' if ex.notes else "") + "}"
