"""``GET /v1/segments/{name}/members``: the people in a segment, a page at a time, as JSON or CSV.

A segment is one of the named segments in force (built-ins and the ``[segments]`` section of the
service's rules file, :func:`patron.relationship.segments.definitions`), evaluated by the engine
on the stored ``customer_profiles`` (the last refresh: the same scores as the dashboard and
``GET /v1/customers/{id}``). Members are ordered by ``customer_id`` and paged by keyset: each
page gives ``next_cursor`` (an opaque token for the last id of the page; ``null`` on the last
page), passed back as ``?cursor=``. The read role, as the single view (which lists a person's
segments).

``?format=csv`` answers CSV (header row, text cells a spreadsheet could run as formulas prefixed
with ``'``, as patron's CSV files): with ``limit`` one page, whose next cursor is in the
``X-Next-Cursor`` header and a ``Link: <...>; rel="next"`` header; without ``limit``, every member,
streamed in pages of :data:`CSV_CHUNK` rows (what the dashboard's download link asks for).
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Iterator
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from patron.errors import InputError, NoDataError
from patron.service.auth import require
from patron.service.refresh import has_table
from patron.service.state import ServiceState

router = APIRouter()

DEFAULT_PAGE = 1000
"""Members on a JSON page when ``limit`` is not given."""

MAX_PAGE = 10_000
"""Most members one page answers."""

CSV_CHUNK = 10_000
"""Members read per query while streaming a whole segment as CSV."""

MAX_NAME = 200
"""Longest segment name accepted (characters)."""

MAX_CURSOR = 2048
"""Longest cursor accepted (characters)."""


class MemberPage(BaseModel):
    """One page of a segment's members."""

    segment: str = Field(description="The segment's name.")
    rule: str = Field(description="The segment's rule (docs/segments.md).")
    as_of: str | None = Field(None, description="Date of the profiles the rule was evaluated on (the last refresh).")
    total: int = Field(description="Members of the segment, all pages.")
    limit: int
    members: list[dict[str, Any]] = Field(
        description="customer_id, status, value_tier, clv, clv_lower, clv_upper (in the profiles' currency, "
        "GET /v1/equity), probability_alive (0-1), expected_purchases, n_orders, total_spend, first_purchase, "
        "last_purchase, rfm_score; by customer_id.")
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next page; null on the last page.")


def encode_cursor(customer_id: str) -> str:
    """The opaque cursor after ``customer_id`` (URL-safe base64 of its UTF-8 text)."""
    return base64.urlsafe_b64encode(customer_id.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The ``customer_id`` a cursor stands for; a cursor this service did not give is a 400."""
    try:
        return base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InputError("cursor: not a cursor given by this endpoint (pass next_cursor back as it is)") from None


def _segment(con: Any, state: ServiceState, name: str) -> tuple[str, str, list[str]]:
    """(rule text, compiled condition, member columns) of the segment ``name``; 404 when no
    scores are stored or no segment has that name, 400 when its rule cannot be compiled."""
    from patron.relationship.profiles import PROFILE_TABLE
    from patron.relationship.segments import definitions, member_columns, segment_where

    if not has_table(con, PROFILE_TABLE):
        raise NoDataError("no scores yet, so no segment has members: refresh them with POST /v1/refresh")
    where = segment_where(con, name, config=state.config)
    return definitions(config=state.config)[name][0], where, member_columns(con)


def _query(con: Any, sql: str, params: list[Any]) -> Any:
    """Run a member query; an error the engine raises for the rule is a one-line 400."""
    from patron.relationship.segments import ENGINE_RULE_ERRORS

    try:
        return con.execute(sql, params)
    except ENGINE_RULE_ERRORS as exc:
        raise InputError(f"the database cannot evaluate the segment's rule: {str(exc).strip().splitlines()[0]}") from None


def _page(con: Any, where: str, columns: list[str], after: str | None, limit: int) -> Any:
    """A cursor over one page of members: ids after ``after`` (all when None), at most ``limit``."""
    from patron.relationship.segments import members_sql

    sql = members_sql(where, columns, after=after is not None, limit=limit)
    return _query(con, sql, [after] if after is not None else [])


def _arrow(con: Any, where: str, columns: list[str], after: str | None, limit: int) -> Any:
    """One page of members as an Arrow table (as :func:`_page`)."""
    from patron.relationship.segments import ENGINE_RULE_ERRORS, members_sql

    sql = members_sql(where, columns, after=after is not None, limit=limit)
    try:
        return con.sql(sql, params=[after] if after is not None else None).to_arrow_table()
    except ENGINE_RULE_ERRORS as exc:
        raise InputError(f"the database cannot evaluate the segment's rule: {str(exc).strip().splitlines()[0]}") from None


def _csv(table: Any, *, header: bool, guard: bool) -> bytes:
    """An Arrow table as CSV bytes (text cells guarded against formulas when ``guard``)."""
    import pyarrow.csv as pacsv

    from patron.data.outputs import guard_formulas

    buf = io.BytesIO()
    pacsv.write_csv(guard_formulas(table) if guard else table, buf,
                    write_options=pacsv.WriteOptions(include_header=header))
    return buf.getvalue()


def _more(con: Any, where: str, last: str) -> bool:
    """Whether the segment has a member after the id ``last``."""
    from patron.relationship.profiles import PROFILE_TABLE

    return bool(_query(con, f"SELECT EXISTS (SELECT 1 FROM {PROFILE_TABLE} WHERE ({where}) AND customer_id > ?)",
                       [last]).fetchone()[0])


def _stream(state: ServiceState, first: Any, columns: list[str], where: str, guard: bool) -> Iterator[bytes]:
    """Every member as CSV: ``first`` (the first chunk, an Arrow table read before the answer
    started), then the next chunks by keyset, each read under the shared lock."""
    chunk = first
    yield _csv(chunk, header=True, guard=guard)
    while chunk.num_rows == CSV_CHUNK:
        last = chunk.column("customer_id")[-1].as_py()
        with state.reading() as con:
            chunk = _arrow(con, where, columns, last, CSV_CHUNK)
        if chunk.num_rows:
            yield _csv(chunk, header=False, guard=guard)


@router.get("/v1/segments/{name}/members", tags=["segments"], response_model=MemberPage,
            dependencies=[require("read")],
            responses={200: {"description": "A page of members (JSON), or with format=csv the members as CSV.",
                             "content": {"text/csv": {"schema": {"type": "string"}}}},
                       404: {"description": "No segment has that name, or no scores are stored yet."}},
            summary="The members of a segment, a page at a time, as JSON or CSV (read)")
def segment_members(
    request: Request,
    name: Annotated[str, Path(max_length=MAX_NAME, description="A segment's name (built-in or [segments]).")],
    limit: Annotated[int | None, Query(ge=1, le=MAX_PAGE, description=f"Members per page [default: {DEFAULT_PAGE}; "
                                       "with format=csv: every member, streamed].")] = None,
    cursor: Annotated[str | None, Query(max_length=MAX_CURSOR, description="next_cursor of the previous page.")] = None,
    format: Annotated[Literal["json", "csv"], Query(description="json (a MemberPage) or csv.")] = "json",
) -> Any:

    state: ServiceState = request.app.state.patron
    after = decode_cursor(cursor) if cursor is not None else None
    if format == "csv":
        from patron.scope import csv_safe

        guard = csv_safe()
        headers = {"Content-Disposition": f'attachment; filename="{_file_name(name)}-members.csv"'}
        with state.reading() as con:
            _, where, columns = _segment(con, state, name)
            rows = _arrow(con, where, columns, after, limit or CSV_CHUNK)
            last = rows.column("customer_id")[-1].as_py() if rows.num_rows else None
            more = limit is not None and rows.num_rows == limit and _more(con, where, last)
        if limit is None:
            return StreamingResponse(_stream(state, rows, columns, where, guard), media_type="text/csv; charset=utf-8",
                                     headers=headers)
        if more:
            token = encode_cursor(last)
            headers["X-Next-Cursor"] = token
            headers["Link"] = _next_link(name, token, limit)
        return Response(_csv(rows, header=True, guard=guard), media_type="text/csv; charset=utf-8", headers=headers)
    return member_page(state, name, after, limit or DEFAULT_PAGE)


def member_page(state: ServiceState, name: str, after: str | None, size: int) -> dict[str, Any]:
    """One page of the segment ``name`` as JSON data (:class:`MemberPage`): the members after the
    id ``after`` (from the first when None), at most ``size``. Also the dashboard's member page."""
    from patron.people.rights.export import jsonable
    from patron.relationship.profiles import PROFILE_TABLE

    with state.reading() as con:
        rule, where, columns = _segment(con, state, name)
        cur = _page(con, where, columns, after, size)
        names = [d[0] for d in cur.description]
        members = [{n: jsonable(v) for n, v in zip(names, row, strict=True)} for row in cur.fetchall()]
        total, as_of = _query(con, f"SELECT count(*), (SELECT max(as_of) FROM {PROFILE_TABLE}) FROM {PROFILE_TABLE} "
                                   f"WHERE ({where})", []).fetchone()
        more = len(members) == size and _more(con, where, members[-1]["customer_id"])
    return {"segment": name, "rule": rule, "as_of": str(as_of)[:10] if as_of is not None else None, "total": int(total),
            "limit": size, "members": members, "next_cursor": encode_cursor(members[-1]["customer_id"]) if more else None,
            "columns": names}


def _next_link(name: str, cursor: str, limit: int) -> str:
    """The ``Link`` header of a CSV page that has a next page."""
    query = urlencode({"format": "csv", "limit": limit, "cursor": cursor})
    return f'</v1/segments/{quote(name, safe="")}/members?{query}>; rel="next"'


def _file_name(name: str) -> str:
    """``name`` reduced to letters, digits, ``-`` and ``_`` for a download's file name."""
    return "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_") else "_" for ch in name)[:80] or "segment"
