"""JSON request bodies: decoding that never fails on content, and what a body may hold.

A body is UTF-8 text (a leading BOM is allowed; invalid bytes, and surrogates encoded in UTF-8,
are errors naming the byte), nested at most :data:`MAX_JSON_DEPTH` levels; :func:`parse_json`
answers anything else with a 400 naming what is wrong, and never raises another exception (a
``RecursionError`` is caught). An integer longer than Python converts (4,300 digits,
``sys.get_int_max_str_digits``) is read as a float (:func:`patron.data.ingest.plausible.json_int`):
a bad value of its event, which the event's checks reject where a number or an id is expected,
not an unreadable body. A string holding a lone UTF-16 surrogate escape
(``"\\ud800"``: JavaScript that cut a string in the middle of an emoji) has it replaced by
U+FFFD, as Segment's own decoder (Go's ``encoding/json``) does: such text cannot be stored as
UTF-8, and stored text never holds one.

Event bodies (:func:`parse_events`): an event nested too deep costs only that event, not its
batch: it is handed over as :class:`Unreadable`, which the endpoint turns into that event's dead
letter. Only a body nested past Python's own recursion limit (about 1,000 levels) cannot be
decoded at all and is refused whole.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
from fastapi import HTTPException

from patron.data.ingest.plausible import json_int

MAX_JSON_DEPTH: int = 64
"""Deepest nesting of arrays and objects accepted in a JSON body, the body's own levels included
(``{"batch": [{...}]}`` is 3 levels before the event's content). Real events nest 5 or 6."""

BATCH_LEVELS: int = 2
"""Levels a batch body adds above its events (the object and its ``batch`` list)."""

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
"""A ``\\u`` escape of a UTF-16 surrogate in JSON text (a pair or a lone one)."""

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
"""A surrogate code point in decoded text: only lone ones remain (``json`` joins escaped pairs)."""

_KEEP_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')
"""Every byte but brackets and quotes (deleted by :func:`nesting_over`)."""

_STEP = np.zeros(256, dtype=np.int8)
_STEP[list(b"[{")] = 1
_STEP[list(b"]}")] = -1
_QUOTE = ord('"')


class ParsedBody(bytes):
    """Decoded body bytes carrying their JSON value (``value``), made by :func:`patron.service.body.remember_json`:
    :func:`parse_json` returns ``value`` without parsing. The value is handed out as is, not
    copied: whoever parses the body after the auth check owns it."""

    value: Any

    def __new__(cls, data: bytes, value: Any) -> ParsedBody:
        self = super().__new__(cls, data)
        self.value = value
        return self


class Unreadable:
    """An event that decoded but cannot be used (``reason``: nested too deep); ``value`` is what
    was decoded."""

    __slots__ = ("reason", "value")

    def __init__(self, reason: str, value: Any) -> None:
        self.reason = reason
        self.value = value


def _bad(detail: str) -> HTTPException:
    return HTTPException(status_code=400, detail=detail)


def too_deep() -> str:
    """The reason given for nesting past :data:`MAX_JSON_DEPTH`."""
    return f"invalid JSON: nested deeper than {MAX_JSON_DEPTH} levels"


def parse_json(body: bytes) -> Any:
    """``body`` parsed as JSON (module docstring): invalid JSON is a 400 naming line, column and
    character offset; text that is not UTF-8 and nesting deeper than :data:`MAX_JSON_DEPTH` are
    400s too. Integers longer than Python converts are read as floats; lone surrogates become
    U+FFFD. A :class:`ParsedBody` gives its value without parsing."""
    if type(body) is ParsedBody:
        return body.value
    try:
        text = body.decode("utf-8-sig")  # strict: invalid bytes and encoded surrogates are errors
    except UnicodeDecodeError as exc:
        raise _bad(f"request body is not UTF-8 text (byte {exc.start})") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _bad(f"invalid JSON at line {exc.lineno} column {exc.colno} (character {exc.pos}): {exc.msg}") from None
    except RecursionError:
        raise _bad(too_deep()) from None
    except ValueError:  # an integer past Python's digit limit: read it as a (too large) float
        try:
            value = json.loads(text, parse_int=json_int)
        except RecursionError:
            raise _bad(too_deep()) from None
    if nesting_over(body, MAX_JSON_DEPTH):
        raise _bad(too_deep())
    if _SURROGATE_ESCAPE.search(body) is not None:
        value = replace_surrogates(value)
    return value


def parse_events(body: bytes) -> Any:
    """:func:`parse_json` for the event endpoints: when the body decodes but nests deeper than
    :data:`MAX_JSON_DEPTH`, only the events concerned are refused (module docstring). A batch
    comes back with each such event replaced by an :class:`Unreadable`; a single event as an
    :class:`Unreadable`. A body too deep in its batch-level fields, or not decodable at all, is a
    400 as from :func:`parse_json`."""
    try:
        return parse_json(body)
    except HTTPException as exc:
        if type(body) is ParsedBody or exc.detail != too_deep():
            raise
        first = exc
    try:
        value = json.loads(body.decode("utf-8-sig"), parse_int=json_int)
        if _SURROGATE_ESCAPE.search(body) is not None:
            value = replace_surrogates(value)
    except (RecursionError, ValueError):  # past Python's own recursion limit: cannot be split
        raise first from None
    events = value.get("batch") if isinstance(value, dict) else None
    if not isinstance(events, list):
        return Unreadable(_problem(value, MAX_JSON_DEPTH) or str(first.detail), value)
    if _problem({k: v for k, v in value.items() if k != "batch"}, MAX_JSON_DEPTH - 1) is not None:
        raise first
    limit = MAX_JSON_DEPTH - BATCH_LEVELS
    value["batch"] = [ev if (why := _problem(ev, limit)) is None else Unreadable(why, ev) for ev in events]
    return value


def _problem(value: Any, limit: int) -> str | None:
    """Why ``value`` is unusable (nested more than ``limit`` levels), or None. Iterative: the value
    may be hundreds of levels deep."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > limit:
                return too_deep()
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return None


def nesting_over(body: bytes, limit: int) -> bool:
    """Whether the valid JSON text ``body`` nests arrays and objects more than ``limit`` deep.

    Without a Python loop over the text: escaped backslashes and quotes are dropped, then every
    byte but brackets and quotes; a bracket is outside strings where an even number of quotes
    precedes it, and the deepest prefix sum of +1 (``[``, ``{``) and -1 (``]``, ``}``) over those
    is the depth. UTF-8 multi-byte characters never contain these ASCII bytes. About 0.1 ms for a
    33 KB batch of 100 events (``json.loads`` takes 0.4-0.5 ms); a body with fewer brackets than
    ``limit`` is not scanned."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    if b"\\" in body:
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    kept = np.frombuffer(body.translate(None, _KEEP_STRUCTURE), dtype=np.uint8)
    outside = (np.cumsum(kept == _QUOTE, dtype=np.int32) & 1) == 0
    return int(np.cumsum(_STEP[kept] * outside, dtype=np.int32).max()) > limit


def replace_surrogates(value: Any) -> Any:
    """``value`` (decoded JSON) with every lone surrogate in its strings and keys replaced by
    U+FFFD (recursive: callers bound the depth, or catch ``RecursionError``)."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {replace_surrogates(k): replace_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [replace_surrogates(v) for v in value]
    return value
