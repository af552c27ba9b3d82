"""A SendGrid ``POST /v3/mail/send`` stand-in: a small Starlette app under uvicorn, on loopback.

What SendGrid answers is decided by :mod:`dripengine.testing.sendgrid_contract` (pure: the
documented rules, limits and error shapes); this module is the server around it, plus what a test
asks for. Accepted requests get ``202``, an empty body and an ``X-Message-Id`` header, and are
recorded (thread-safe) so a test can assert that each message arrived exactly once. Faults can be
set while it runs: the next N answers as ``429`` (with ``X-RateLimit-*`` and ``Retry-After``),
``500`` or ``503``, slow answers, connections closed without an answer; and a latency model that
sleeps server-side per request and per new TCP connection (what a TLS handshake would cost)::

    with SendGridStandIn() as sendgrid:
        provider = SendGridProvider(sendgrid.api_key, host=sendgrid.url)
        sendgrid.rate_limit(2, retry_after=3)
        ...
        assert sendgrid.custom_arg_values("drip_uid") == [...]

The server runs in :class:`~dripengine.testing.loopback_server.LoopbackServer` (uvicorn on
loopback from a background thread; HTTP itself is uvicorn's), which also gives the two things
that need a word with the connection, which ASGI does not give an app: a new connection's latency
(its reading is paused that long before its first request is read) and a dropped answer (the
transport is aborted); it tells this module of each connection, to count them.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from dripengine.testing import sendgrid_contract as contract
from dripengine.testing.loopback_server import LoopbackServer

__all__ = ["Accepted", "SendGridStandIn"]

_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]  # the contract answers all


@dataclass(frozen=True)
class Accepted:
    """One request the stand-in accepted (answered 202)."""

    message_id: str  # what went out in X-Message-Id
    payload: dict[str, Any]
    received_at: float

    def custom_args(self) -> list[dict[str, str]]:
        """The merged custom_args of each personalization, as SendGrid echoes them in events."""
        top = self.payload.get("custom_args") or {}
        return [{**top, **(p.get("custom_args") or {})} for p in self.payload["personalizations"]]


@dataclass(frozen=True)
class _Fault:
    kind: Literal["status", "drop", "slow"]
    status: int = 0
    seconds: float = 0.0
    retry_after: float = 0.0
    retry_after_header: bool = True
    limit: int = 600


class SendGridStandIn:
    """The stand-in server. Start and stop it with ``with``; ``url`` is its base URL.

    ``idle_timeout``: how long a kept-alive connection may wait for its next request before the
    server closes it (uvicorn's keep-alive timeout, whole seconds, at least 1).
    """

    def __init__(
        self,
        api_key: str = "SG.standin-key.0123456789",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
        idle_timeout: float = 60.0,
    ) -> None:
        self.api_key = api_key
        self.clock = clock
        self.latency_per_request = 0.0
        self.latency_per_connection = 0.0
        self._lock = threading.Lock()
        self._faults: deque[_Fault] = deque()
        self._accepted: list[Accepted] = []
        self._connections = 0
        self._requests = 0
        self.app = Starlette(routes=[Route("/{path:path}", self._endpoint, methods=_METHODS)])
        self._loopback = LoopbackServer(
            self.app,
            host=host,
            port=port,
            idle_timeout=idle_timeout,
            on_connect=self._connected,
            thread_name="sendgrid-standin",
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> SendGridStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> SendGridStandIn:
        """Listen, then serve with uvicorn from an event loop in a background thread."""
        self._loopback.start()
        return self

    def stop(self) -> None:
        """Stop accepting, cut every open connection, and wait for the loop thread."""
        self._loopback.stop()

    @property
    def url(self) -> str:
        return self._loopback.url

    # -- what it saw -------------------------------------------------------------------------

    @property
    def accepted(self) -> list[Accepted]:
        with self._lock:
            return list(self._accepted)

    def custom_arg_values(self, name: str) -> list[str]:
        """``name``'s value in every accepted personalization, in arrival order."""
        return [args[name] for a in self.accepted for args in a.custom_args() if name in args]

    @property
    def connections(self) -> int:
        """TCP connections accepted so far."""
        with self._lock:
            return self._connections

    @property
    def requests(self) -> int:
        """Requests received so far (any answer)."""
        with self._lock:
            return self._requests

    def reset(self) -> None:
        """Forget what was seen and clear faults and latency."""
        with self._lock:
            self._accepted.clear()
            self._faults.clear()
            self._connections = self._requests = 0
        self.latency_per_request = self.latency_per_connection = 0.0

    # -- faults ------------------------------------------------------------------------------

    def rate_limit(
        self, count: int = 1, *, retry_after: float = 1.0, limit: int = 600, header: bool = True
    ) -> None:
        """The next ``count`` requests get 429 with ``X-RateLimit-*`` (and ``Retry-After``)."""
        self._add(
            count,
            _Fault("status", 429, retry_after=retry_after, retry_after_header=header, limit=limit),
        )

    def fail(self, count: int = 1, *, status: int = 500) -> None:
        """The next ``count`` requests get ``status`` (500, 503, …) with SendGrid's error shape."""
        self._add(count, _Fault("status", status))

    def drop(self, count: int = 1) -> None:
        """The next ``count`` requests are read, then the connection is closed without an answer."""
        self._add(count, _Fault("drop"))

    def slow(self, count: int = 1, *, seconds: float) -> None:
        """The next ``count`` requests wait ``seconds`` before being answered normally."""
        self._add(count, _Fault("slow", seconds=seconds))

    def set_latency(self, *, per_request: float = 0.0, per_connection: float = 0.0) -> None:
        """Extra server-side seconds for every request, and for every new TCP connection."""
        self.latency_per_request = per_request
        self.latency_per_connection = per_connection

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _add(self, count: int, fault: _Fault) -> None:
        with self._lock:
            self._faults.extend([fault] * count)

    # -- the app -----------------------------------------------------------------------------

    async def _endpoint(self, request: Request) -> Response:
        try:
            return await self._answer(request)
        except asyncio.CancelledError:
            if not self._loopback.stopping:
                raise
            return Response(status_code=503)  # stop(): the connection is gone, nothing is sent
        except ClientDisconnect:
            return Response(status_code=400)  # the client went away mid-body: nothing is sent

    async def _answer(self, request: Request) -> Response:
        with self._lock:
            self._requests += 1
        if self.latency_per_request > 0:
            await asyncio.sleep(self.latency_per_request)
        scope = request.scope
        answer = contract.check_head(
            request.method, scope["path"], request.headers, api_key=self.api_key
        )
        if answer is not None:
            await _drain(request)
            return _response(answer)
        fault = self._next_fault()
        if fault is not None:
            if fault.kind == "slow":
                await asyncio.sleep(fault.seconds)
            else:
                await _drain(request)
                if fault.kind == "drop":
                    return await self._drop(request)
                return _response(self._fault_answer(fault))
        body = await _read(request, contract.MAX_BODY_BYTES)
        answer = contract.check_body(body, now=self.clock())
        if answer.payload is not None:
            self._record(answer)
        return _response(answer)

    def _fault_answer(self, fault: _Fault) -> contract.Answer:
        if fault.status == 429:
            return contract.rate_limited(
                retry_after=fault.retry_after,
                limit=fault.limit,
                header=fault.retry_after_header,
                now=self.clock(),
            )
        return contract.server_error(fault.status)

    async def _drop(self, request: Request) -> Response:
        """Close the connection without an answer; return once uvicorn has seen it close."""
        self._loopback.abort(request.scope.get("client"))
        while (await request.receive())["type"] != "http.disconnect":
            pass
        return Response(status_code=503)  # not sent: the connection is gone

    def _next_fault(self) -> _Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def _record(self, answer: contract.Answer) -> None:
        assert answer.payload is not None and answer.message_id is not None
        accepted = Accepted(answer.message_id, answer.payload, self.clock())
        with self._lock:
            self._accepted.append(accepted)

    # -- connections (called by the loopback server, on the loop thread) --------------------

    def _connected(self, transport: asyncio.Transport) -> None:
        with self._lock:
            self._connections += 1
        if self._loopback.stopping:
            return  # the loopback server aborts it
        if self.latency_per_connection > 0:  # the "handshake": its request is read after it
            transport.pause_reading()
            asyncio.get_running_loop().call_later(
                self.latency_per_connection, _resume_reading, transport
            )


def _resume_reading(transport: asyncio.Transport) -> None:
    if not transport.is_closing():
        transport.resume_reading()


async def _read(request: Request, limit: int) -> bytes | None:
    """The body, or None past ``limit`` bytes (kept: none, read to its end all the same)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        await _drain(request)
        return None
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= limit:
            parts.append(chunk)
        elif parts:
            parts.clear()
    return b"".join(parts) if size <= limit else None


async def _drain(request: Request) -> None:
    async for _ in request.stream():
        pass


def _response(answer: contract.Answer) -> Response:
    headers = dict(answer.headers)
    if answer.close:
        headers["Connection"] = "close"  # uvicorn closes the connection after this answer
    return Response(answer.body, answer.status, headers)
