"""Every request body, read once, bounded in size, time and total memory, before any route sees it.

A pure ASGI middleware in front of the app (``build_app``). For a request with a body it:

1. refuses what it can from the headers alone, before reading a byte: a ``Content-Length`` that is
   not a number (400) or over the route's limit (413); a route's own header check (an ESP
   event webhook's signature headers and timestamp: 403);
2. takes the body's room from a budget shared by all requests in the process
   (``web.body_buffer_bytes``): a large body that finds no room gets 503 with ``Retry-After`` at
   once, so a hundred slow clients cannot make the server hold a hundred bodies; small bodies
   (forms, one-click unsubscribes, API calls up to 64 KiB) never wait for room;
3. reads it with a deadline: no bytes for ``web.body_idle_seconds``, or not all of it within
   ``web.body_total_seconds``, is 408 and the connection is closed;
4. hands the route the body it read (``request.body()``, ``request.form()`` and ``stream()`` work
   as usual).

Uvicorn itself stops reading a connection whose app is not reading (64 KiB of flow control), so
what a stalled client costs is a socket, not its body.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SMALL_BODY = 65_536  # at most this much never waits for room in the budget
SMALL_ROUTE_LIMIT = 65_536  # routes other than /api and /webhooks: forms and one-click posts
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

HeaderCheck = Callable[[Headers], "tuple[int, str] | None"]


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int  # /api and /webhooks (web.max_body_bytes)
    buffer_bytes: int  # every body being read at once, together (web.body_buffer_bytes)
    idle_seconds: float  # between two chunks of a body (web.body_idle_seconds)
    total_seconds: float  # for a whole body (web.body_total_seconds)

    def for_path(self, path: str) -> int:
        if path.startswith(("/api/", "/webhooks/")):
            return self.max_body_bytes
        return min(self.max_body_bytes, SMALL_ROUTE_LIMIT)


class _Refused(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


class BodyGuard:
    def __init__(
        self,
        app: ASGIApp,
        limits: Limits,
        header_checks: Mapping[str, HeaderCheck] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.limits = limits
        self.header_checks = dict(header_checks or {})
        self.clock = clock
        self.reserved = 0  # bytes of large bodies being read now (one event loop: no lock)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        limit = self.limits.for_path(scope["path"])
        room = 0
        try:
            declared = _declared_length(headers)
            if declared is not None and declared > limit:
                raise _Refused(413, f"the body is larger than {limit} bytes (web.max_body_bytes)")
            check = self.header_checks.get(scope["path"])
            problem = check(headers) if check is not None else None
            if problem is not None:
                raise _Refused(*problem)
            if declared == 0 or (declared is None and not _chunked(headers)):
                await self.app(scope, _replay(b"", receive), send)
                return
            wanted = limit if declared is None else declared
            if wanted > SMALL_BODY:
                if self.reserved + wanted > self.limits.buffer_bytes:
                    raise _Refused(
                        503,
                        "too many large request bodies at once (web.body_buffer_bytes); retry later",
                        {"Retry-After": "5", "Connection": "close"},
                    )
                room = wanted
                self.reserved += room
            body = await self._read(receive, limit)
        except _Refused as refused:
            self.reserved -= room
            refused.headers.setdefault("Connection", "close")  # the body was not read
            response = JSONResponse(
                {"error": str(refused)}, status_code=refused.status, headers=refused.headers
            )
            await response(scope, receive, send)
            return
        except _Disconnected:
            self.reserved -= room
            return
        self.reserved -= room
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive, limit: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        deadline = self.clock() + self.limits.total_seconds
        while True:
            wait = min(self.limits.idle_seconds, deadline - self.clock())
            try:
                message = await asyncio.wait_for(receive(), timeout=max(wait, 0.0))
            except TimeoutError:
                raise _Refused(
                    408,
                    "the request body stalled (web.body_idle_seconds / web.body_total_seconds)",
                ) from None
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _Refused(413, f"the body is larger than {limit} bytes (web.max_body_bytes)")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


class _Disconnected(Exception):
    pass


def _declared_length(headers: Headers) -> int | None:
    value = headers.get("content-length")
    if value is None:
        return None
    value = value.strip()
    if not value.isdigit() or len(value) > 15:
        raise _Refused(400, "Content-Length is not a byte count")
    return int(value)


def _chunked(headers: Headers) -> bool:
    return "chunked" in headers.get("transfer-encoding", "").lower()


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body once, as one message; then whatever the server says next (a disconnect)."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


__all__ = ["SMALL_BODY", "BodyGuard", "Limits"]
