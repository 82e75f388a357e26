"""Request bodies: size limits, ``Content-Encoding: gzip``/``deflate``, JSON with a position on errors.

The Segment and RudderStack SDKs may gzip their requests. :func:`read_body` reads a body of at most
``limit`` bytes as sent *and* at most ``limit`` bytes once decoded, decompressing with a cap on the
output (``zlib`` ``max_length``), so a small compressed "zip bomb" never expands in memory beyond
``limit`` + one chunk. Over the limit: 413 naming the limit; an unknown encoding: 415; a corrupt
compressed body or invalid JSON: 400 naming the position.

JSON is decoded by :mod:`patron.service.json_body` (UTF-8, limited nesting, lone surrogates).

Read once. The decoded body is kept in the request's ASGI scope (under :data:`SCOPE_KEY`), so a
second :func:`read_body` of the same request (the auth check reading a ``writeKey``, then the
endpoint) neither reads the stream again nor decompresses again; a caller that parsed it can
attach the JSON value with :func:`remember_json`, and :func:`~patron.service.json_body.parse_json` then hands that value
back instead of parsing again.

:class:`BodyLimit` is the app-wide guard: any request whose body (as sent) passes the largest limit
(``max_batch_bytes``) gets 413 before a handler parses it, whatever the endpoint.
"""

from __future__ import annotations

import asyncio
import logging
import types
import zlib
from collections.abc import Awaitable, Callable, Coroutine, Generator, MutableMapping
from typing import Any, TypeVar

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from patron.service.json_body import ParsedBody, parse_json

ENCODINGS: dict[str, str] = {"gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate", "identity": "identity"}
"""``Content-Encoding`` values accepted (lower case), by the decoder they use."""

_DECODE_STEP = 64 * 1024
"""Largest input fed to the decompressor at once, in bytes (bounds the work between size checks)."""

log = logging.getLogger("patron.service.body")
T = TypeVar("T")

SCOPE_KEY = "patron.body"
"""ASGI scope entry holding ``(bytes as sent, decoded body)`` once :func:`read_body` has read it."""


def _too_large(limit: int, *, decoded: bool = False) -> HTTPException:
    what = "decoded request body" if decoded else "request body"
    return HTTPException(status_code=413, detail=f"{what} is larger than the limit of {limit:,} bytes")


def _encoding(request: Request) -> str:
    raw = request.headers.get("content-encoding", "")
    codings = [c.strip().lower() for c in raw.split(",") if c.strip()]
    decoders = [ENCODINGS.get(c) for c in codings]
    if any(d is None for d in decoders):
        raise HTTPException(status_code=415,
                            detail=f"unsupported Content-Encoding {raw!r}: send the body as is, gzip or deflate")
    chain = [d for d in decoders if d != "identity"]
    if len(chain) > 1:
        raise HTTPException(status_code=415, detail=f"unsupported Content-Encoding {raw!r}: use one encoding")
    return chain[0] if chain else "identity"


async def _raw(request: Request, limit: int) -> bytes:
    """The body as sent, at most ``limit`` bytes (413 beyond; a declared ``Content-Length`` over
    it is refused before reading). Read from the ASGI ``receive`` directly rather than through
    Starlette's ``Request.stream`` generator (a few microseconds less per request); the body is
    kept on the request as Starlette keeps it, so a later ``request.body()`` returns it."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    kept = getattr(request, "_body", None)
    if kept is not None:  # read through Starlette already
        if len(kept) > limit:
            raise _too_large(limit)
        return kept
    if getattr(request, "_stream_consumed", False):
        raise RuntimeError("Stream consumed")  # as Starlette's stream() says
    chunks: list[bytes] = []
    size = 0
    receive = request.receive
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "http.request":
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            if chunk:
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        elif kind == "http.disconnect":
            request._is_disconnected = True
            raise ClientDisconnect()
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    request._stream_consumed = True
    request._body = body
    return body


def decompress(data: bytes, encoding: str, *, limit: int) -> bytes:
    """``data`` decoded from ``encoding`` (gzip or deflate, zlib-wrapped or raw), at most ``limit``
    bytes of output (413 beyond, without ever holding more than ``limit`` + 64 KiB)."""
    if encoding == "gzip":
        wbits = 16 + zlib.MAX_WBITS
    else:  # deflate: RFC 9110 means zlib-wrapped; some clients send raw deflate
        zlib_header = len(data) >= 2 and data[0] & 0x0F == 8 and ((data[0] << 8) | data[1]) % 31 == 0
        wbits = zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS
    decoder = zlib.decompressobj(wbits)
    out = bytearray()
    try:
        for start in range(0, len(data), _DECODE_STEP):
            pending = data[start:start + _DECODE_STEP]
            while pending:
                out += decoder.decompress(pending, limit + 1 - len(out))
                if len(out) > limit:
                    raise _too_large(limit, decoded=True)
                pending = decoder.unconsumed_tail
            if decoder.eof:
                break
        out += decoder.flush()
    except zlib.error as exc:
        raise HTTPException(status_code=400, detail=f"request body is not valid {encoding} data ({exc})") from None
    if len(out) > limit:
        raise _too_large(limit, decoded=True)
    if not decoder.eof:
        raise HTTPException(status_code=400, detail=f"request body is truncated {encoding} data")
    return bytes(out)


async def read_body(request: Request, *, limit: int) -> bytes:
    """The request body decoded from its ``Content-Encoding``; at most ``limit`` bytes as sent and
    decoded (413), known encodings only (415), valid compressed data (400). Read and decoded once
    per request (kept in the scope); a later call checks the kept body against its own ``limit``."""
    kept: tuple[int, bytes] | None = request.scope.get(SCOPE_KEY)
    if kept is not None:
        sent, decoded = kept
        if sent > limit:
            raise _too_large(limit)
        if len(decoded) > limit:
            raise _too_large(limit, decoded=True)
        return decoded
    encoding = _encoding(request)
    body = await _raw(request, limit)
    decoded = body if encoding == "identity" else decompress(body, encoding, limit=limit)
    request.scope[SCOPE_KEY] = (len(body), decoded)
    return decoded


def remember_json(request: Request, value: Any) -> None:
    """Attach ``value``, the JSON value of the body :func:`read_body` kept, so the next
    ``parse_json(await read_body(request, ...))`` of this request returns it without parsing."""
    sent, decoded = request.scope[SCOPE_KEY]
    request.scope[SCOPE_KEY] = (sent, ParsedBody(decoded, value))


async def read_json(request: Request, *, limit: int) -> Any:
    """The request body as JSON, decoded and size-checked as in :func:`read_body`."""
    return parse_json(await read_body(request, limit=limit))


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodyLimit:
    """ASGI middleware guarding every request body: its size, how long it takes, a client leaving.

    * Size: 413 for a body (as sent) over ``limit`` bytes. A declared ``Content-Length`` over the
      limit is refused before reading; a body without one (chunked) is counted as it arrives and
      refused once it passes the limit.
    * Time (a slow client holding a request open, "slowloris"): each part of the body must arrive
      within ``idle`` seconds of the previous one, and the whole body within ``timeout`` seconds
      of the request's start; otherwise 408, the connection closed, and one line in the log.
    * A client that disconnects before its body is complete: one line in the log (method, path,
      client, bytes received), no traceback; the request is abandoned (nothing of it is stored).

    Once the body is complete, the application's further ``receive`` calls (a streamed answer
    waiting for a disconnect) pass through untouched."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], *, limit: int,
                 timeout: float = 30.0, idle: float = 10.0) -> None:
        self.app = app
        self.limit = limit
        self.timeout = timeout
        self.idle = idle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length: int | None = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = int(value) if value.isdigit() else None
                break
        limit = self.limit
        if length is not None and length > limit:
            response = JSONResponse({"error": _too_large(limit).detail}, status_code=413,
                                    headers={"Connection": "close"})
            await response(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        idle = self.idle
        received = 0
        complete = False

        async def guarded() -> Message:
            nonlocal received, complete
            if complete:
                return await receive()
            pending = receive()
            try:
                if not isinstance(pending, Coroutine):  # an awaitable of another kind: the plain way
                    async with asyncio.timeout(max(0.0, min(idle, deadline - loop.time()))):
                        message = await pending
                else:
                    try:  # the first step: a body already received answers without waiting
                        waiting = pending.send(None)
                    except StopIteration as ready:
                        message = ready.value
                    else:  # it waits: the rest of it under the timeout
                        async with asyncio.timeout(max(0.0, min(idle, deadline - loop.time()))):
                            message = await _resume(pending, waiting)
            except TimeoutError:
                complete = True
                waited = "whole body" if deadline <= loop.time() else f"next part within {idle:g} s"
                _log_body(scope, f"request body too slow ({waited}; {received:,} bytes received): answered 408")
                raise HTTPException(status_code=408, headers={"Connection": "close"},
                                    detail=f"request body not received in time ({self.timeout:g} s for the whole "
                                           f"body, {idle:g} s between parts)") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if length is None and received > limit:
                    complete = True
                    raise _too_large(limit)
                complete = not message.get("more_body", False)
            elif message["type"] == "http.disconnect":
                complete = True
                of = f" of {length:,}" if length is not None else ""
                _log_body(scope, f"client disconnected before the request body was complete ({received:,}{of} bytes)")
            return message

        await self.app(scope, guarded, send)


@types.coroutine
def _resume(coro: Coroutine[Any, Any, T], yielded: Any) -> Generator[Any, Any, T]:
    """Finish ``coro``, whose first step (``send(None)``) yielded ``yielded``, as ``await coro``
    would have: what it yields goes to the task running the caller, what the task sends or throws
    (a cancellation: the timeout) goes back into it.

    :class:`BodyLimit` steps ``receive()`` once itself: when the body is already there (every
    small event ``POST``) the step returns it and no timeout is armed at all; an
    ``asyncio.timeout`` costs ~8 us a request (a timer scheduled and cancelled, a context
    entered and left)."""
    while True:
        try:
            sent = yield yielded
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # the task's cancellation (timeout) or another throw
            try:
                yielded = coro.throw(exc)
            except StopIteration as done:
                return done.value
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration as done:
                return done.value


def _log_body(scope: Scope, what: str) -> None:
    """One warning line naming the request: ``POST /v1/track from 10.0.0.7:51234: <what>``."""
    client = scope.get("client")
    where = f" from {client[0]}:{client[1]}" if client else ""
    log.warning("%s %s%s: %s", scope.get("method", "?"), scope.get("path", "?"), where, what)
