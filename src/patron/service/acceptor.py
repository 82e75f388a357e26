"""One acceptor process of ``patron serve --workers N`` (the design: :mod:`patron.service.acceptors`).

It serves, on the listening socket it inherits, the event endpoints (``POST /v1/identify``,
``/v1/track``, ``/v1/alias``, ``/v1/page``, ``/v1/screen``, ``/v1/group``, ``/v1/batch``) with the
very routes of :mod:`patron.service.events_api` -- key check, browser-safety rules, body limits,
validation, mapping, answers -- and hands the checked items to the owner process, which
journals them and answers once they are durable. Any other request is passed through, as it came,
to the owner's HTTP server on its Unix socket, and the owner's answer streamed back.

Run by the owner: ``python -m patron.service.acceptor --fd N --db DB --http-socket S
--submit-socket S --owner PID``.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import itertools
import logging
import os
import pickle
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("patron.service.acceptor")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

EVENT_CALLS: tuple[str, ...] = ("identify", "track", "alias", "page", "screen", "group", "batch")
EVENT_PATHS: frozenset[str] = frozenset(f"/v1/{c}" for c in EVENT_CALLS)
"""Paths an acceptor answers itself (``POST`` only); every other request goes to the owner."""

KEYS_EVERY_S: float = 1.0
"""Seconds between two readings of the owner's live keys (a key created on the owner is usable
on the acceptors within this; a revoked one is refused at once by the owner)."""

HOP_BY_HOP: frozenset[bytes] = frozenset({
    b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"te", b"trailer", b"upgrade",
    b"content-length",
})
"""Headers of one connection, not passed through (the proxy sets its own framing)."""

OWN_HEADERS: frozenset[bytes] = HOP_BY_HOP | {b"date", b"server"}
"""Headers of the owner's answer the acceptor's server writes itself."""


class Channel:
    """The acceptor's connection to the owner's submission socket: requests matched to answers by
    id, any number in flight; reconnects when the owner closed it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._writer: asyncio.StreamWriter | None = None
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()
        self._reader_task: asyncio.Task[None] | None = None

    async def _connect(self) -> asyncio.StreamWriter:
        async with self._lock:
            if self._writer is None or self._writer.is_closing():
                reader, writer = await asyncio.open_unix_connection(self.path)
                self._writer = writer
                self._reader_task = asyncio.ensure_future(self._read(reader, writer))
            return self._writer

    async def request(self, message: Any) -> Any:
        """Send ``message``; its answer (raises ConnectionError when the owner went away)."""
        from patron.service.acceptors import frame

        writer = await self._connect()
        rid = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = fut
        writer.write(frame(rid, message))
        return await fut

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        from patron.service.acceptors import FRAME

        try:
            while True:
                length, rid = FRAME.unpack(await reader.readexactly(FRAME.size))
                answer = pickle.loads(await reader.readexactly(length))
                fut = self._waiting.pop(rid, None)
                if fut is not None and not fut.done():
                    fut.set_result(answer)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            writer.close()
            if self._writer is writer:
                self._writer = None
            for fut in self._waiting.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("the owner process closed the connection"))
            self._waiting.clear()


class RemoteKeys:
    """The owner's live keys, read through the channel (the interface of
    :class:`patron.service.auth.KeyRing` the key check uses)."""

    def __init__(self, channel: Channel) -> None:
        from patron.service.auth import KeyRing

        self.channel = channel
        self._ring = KeyRing.__new__(KeyRing)
        self._ring._tables = ({}, {})
        self.owner_version = -1
        self._refreshing: asyncio.Task[None] | None = None

    def check_header(self, authorization: str) -> Any:
        return self._ring.check_header(authorization)

    def lookup(self, key: str) -> Any:
        return self._ring.lookup(key)

    def __len__(self) -> int:
        return len(self._ring)

    async def refresh(self) -> None:
        answer = await self.channel.request(("keys",))
        self._ring.replace(answer[2])
        self.owner_version = answer[1]

    def seen(self, version: int) -> None:
        """The owner's key-set version in an answer: read the keys again when it moved."""
        if version != self.owner_version and (self._refreshing is None or self._refreshing.done()):
            self._refreshing = asyncio.ensure_future(self.refresh())

    async def every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await self.refresh()
            except (ConnectionError, OSError):
                pass


class RemoteWriter:
    """What :mod:`patron.service.events_api` calls ``state.writer``: submissions go to the owner."""

    def __init__(self, channel: Channel, keys: RemoteKeys) -> None:
        self.channel = channel
        self.keys = keys

    async def submit(self, items: list[Any]) -> list[Any]:
        from fastapi import HTTPException

        from patron.service.auth import CALLER
        from patron.service.writer import WriteFailed

        caller = CALLER.get()
        try:
            blob = pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL)  # the owner journals these bytes
            answer = await self.channel.request(("submit", caller.key_id if caller is not None else None, blob))
        except (ConnectionError, OSError) as exc:
            raise WriteFailed("the service is restarting: retry later") from exc
        self.keys.seen(answer[1])
        if answer[0] == "ok":
            return answer[2]
        if answer[0] == "revoked":
            raise HTTPException(status_code=401, detail="unknown or revoked API key",
                                headers={"WWW-Authenticate": 'Basic realm="patron"'})
        raise WriteFailed(answer[2])


@dataclass
class AcceptorState:
    """``app.state.patron`` of an acceptor: what the event routes and the key check read."""

    rules: Any
    writer: RemoteWriter
    keys: RemoteKeys
    extra: dict[str, Any] = field(default_factory=dict)


def events_app(state: AcceptorState) -> Any:
    """The event routes of :mod:`patron.service.events_api` (``POST`` only), with the service's
    middlewares and error answers."""
    from fastapi import FastAPI

    from patron.service import events_api
    from patron.service.app import install_error_handlers
    from patron.service.body import BodyLimit
    from patron.service.browser import SecurityHeaders
    from patron.service.fast_path import EventFastPath

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        for attempt in range(200):  # the owner is up before it starts acceptors; its socket may lag
            try:
                await state.keys.refresh()
                break
            except (ConnectionError, OSError):
                if attempt == 199:
                    raise
                await asyncio.sleep(0.05)
        task = asyncio.ensure_future(state.keys.every(KEYS_EVERY_S))
        try:
            yield
        finally:
            task.cancel()

    app = FastAPI(lifespan=lifespan, docs_url=None, openapi_url=None, redoc_url=None)
    app.state.patron = state
    app.add_middleware(EventFastPath)
    app.add_middleware(BodyLimit, limit=state.rules.max_batch_bytes, timeout=state.rules.body_timeout_seconds,
                       idle=state.rules.body_idle_seconds)
    app.add_middleware(SecurityHeaders)
    install_error_handlers(app)
    for route in events_api.router.routes:
        if getattr(route, "path", None) in EVENT_PATHS:
            app.router.routes.append(route)
    return app


class Proxy:
    """ASGI app passing a request to the owner's HTTP server on a Unix socket, unchanged (the body
    read whole first: the owner applies its limits again), and streaming the answer back."""

    def __init__(self, path: str) -> None:
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        import httptools

        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        lines = [b"%s %s HTTP/1.1" % (scope["method"].encode(), target)]
        lines += [k + b": " + v for k, v in scope["headers"] if k.lower() not in HOP_BY_HOP]
        lines += [b"content-length: %d" % len(body), b"connection: close"]
        try:
            reader, writer = await asyncio.open_unix_connection(self.path)
        except OSError:
            await _plain(send, 503, b'{"error":"the service is restarting: retry later"}')
            return
        try:
            writer.write(b"\r\n".join(lines) + b"\r\n\r\n" + bytes(body))
            parts = _Response()
            parser = httptools.HttpResponseParser(parts)
            started = False
            while True:
                chunk = await reader.read(65536)
                if chunk:
                    try:
                        parser.feed_data(chunk)
                    except httptools.HttpParserUpgrade:  # pragma: no cover - no upgrades served
                        pass
                if parts.complete_headers and not started:
                    await send({"type": "http.response.start", "status": parser.get_status_code(),
                                "headers": [(k, v) for k, v in parts.headers if k not in OWN_HEADERS]})
                    started = True
                if started and parts.body:
                    data, parts.body = b"".join(parts.body), []
                    await send({"type": "http.response.body", "body": data, "more_body": True})
                if not chunk or parts.done:
                    break
            if not started:
                await _plain(send, 502, b'{"error":"no answer from the service: retry later"}')
                return
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            writer.close()


class _Response:
    """httptools callbacks collecting an answer."""

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.complete_headers = False
        self.done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.complete_headers = True

    def on_body(self, body: bytes) -> None:
        self.body.append(bytes(body))

    def on_message_complete(self) -> None:
        self.done = True


async def _plain(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


class Dispatch:
    """The acceptor's ASGI app: event posts to :func:`events_app`, anything else to :class:`Proxy`."""

    def __init__(self, events: Any, proxy: Proxy) -> None:
        self.events = events
        self.proxy = proxy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" or (
                scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in EVENT_PATHS):
            await self.events(scope, receive, send)
        elif scope["type"] == "http":
            await self.proxy(scope, receive, send)


def _die_with_owner(owner: int) -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux); exit if it already did."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass
    if os.getppid() != owner:
        sys.exit(0)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m patron.service.acceptor")
    p.add_argument("--fd", type=int, required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--http-socket", required=True)
    p.add_argument("--submit-socket", required=True)
    p.add_argument("--owner", type=int, required=True)
    p.add_argument("--config")
    p.add_argument("--log-level", default="warning")
    p.add_argument("--index", type=int, default=0)
    args = p.parse_args(argv)
    _die_with_owner(args.owner)

    import uvicorn

    from patron.config import section
    from patron.service.settings import ServiceRules

    rules = section("service", ServiceRules, Path(args.config) if args.config else None)
    channel = Channel(args.submit_socket)
    keys = RemoteKeys(channel)
    state = AcceptorState(rules=rules, writer=RemoteWriter(channel, keys), keys=keys)
    app = Dispatch(events_app(state), Proxy(args.http_socket))
    sock = socket.socket(fileno=args.fd)
    config = uvicorn.Config(app, log_level=args.log_level, access_log=False, lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":  # pragma: no cover - started by patron.service.acceptors
    main()
