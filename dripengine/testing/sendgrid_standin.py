"""A SendGrid ``POST /v3/mail/send`` stand-in: a real HTTP/1.1 server on loopback.

It checks each request the way SendGrid documents the endpoint and answers in SendGrid's shapes:

- API reference: https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send
- Errors (400 ``{"errors": [{"message", "field", "help"}]}``):
  https://www.twilio.com/docs/sendgrid/api-reference/mail-send/errors
- Limitations (30 MB, 1,000 recipients, custom args < 10,000 bytes, no ``;``/``,`` in names):
  https://www.twilio.com/docs/sendgrid/api-reference/mail-send/limitations

Accepted requests get ``202``, an empty body and an ``X-Message-Id`` header, and are recorded
(thread-safe) so a test can assert that each message arrived exactly once. Faults can be set
while it runs: the next N answers as ``429`` (with ``X-RateLimit-*`` and ``Retry-After``), ``500``
or ``503``, slow answers, connections closed without an answer; and a latency model that sleeps
server-side per request and per new TCP connection (what a TLS handshake would cost)::

    with SendGridStandIn() as sendgrid:
        provider = SendGridProvider(sendgrid.api_key, host=sendgrid.url)
        sendgrid.rate_limit(2, retry_after=3)
        ...
        assert sendgrid.custom_arg_values("drip_uid") == [...]

The server is asyncio in one background thread: ``start()`` runs an event loop in a thread and
``stop()`` ends it and joins it. httptools (llhttp, in C) parses each connection's bytes where they
were read and its callbacks queue what it saw; one task per connection answers the requests in
order, and the latency model is ``asyncio.sleep``, not a blocked thread. Why: benchmarks hold 128 to
256 kept-alive connections at 50 ms a request, and CPU the stand-in uses is taken from the code
being measured (2 cores). With a thread per connection (``ThreadingHTTPServer``) the stand-in cost
~525 µs of CPU a request (half of it system time: GIL hand-offs, futex wake-ups, context switches);
on one loop with h11 parsing and ``json.loads`` ~375 µs; with httptools and ``orjson.loads``
~200 µs (128 clients, 36 KB payloads). Of that, parsing is ~5 µs (h11 was ~100 µs), orjson ~15 µs
(json ~40 µs), ``validate`` ~25 µs; the rest is the event loop and the sockets' system time.
Around llhttp it answers as h11 did: HTTP/1.0 is answered then closed, HTTP/1.1 needs a Host,
a method or transfer coding it does not know is a 501, a head still unfinished past 16 KiB is a
431, and a request asking to upgrade is answered as HTTP (never switched) with reading going on.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import email.utils
import functools
import http
import json
import math
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import httptools
import orjson

SEND_PATH = "/v3/mail/send"
MAX_BODY_BYTES = (
    30 * 1024 * 1024
)  # "The total size of your email, including attachments, must be less than 30MB."
MAX_PERSONALIZATIONS = 1000
MAX_RECIPIENTS = 1000
MAX_CUSTOM_ARGS_BYTES = 10_000  # "must be less than 10000 bytes", per personalization after merging
MAX_CATEGORIES = 10
MAX_CATEGORY_CHARS = 255
MAX_SEND_AT_AHEAD = 72 * 3600
ERRORS_URL = "https://www.twilio.com/docs/sendgrid/api-reference/mail-send/errors"
# The `headers` parameter of mail/send: "You may not overwrite the following reserved headers:
# x-sg-id, x-sg-eid, received, dkim-signature, Content-Type, Content-Transfer-Encoding, To, From,
# Subject, Reply-To, CC, BCC" (SendGrid's v3 mail/send reference, repeated in the docstring of the
# official library's sendgrid/helpers/mail/header.py). Message-ID is not on the list.
RESERVED_HEADERS = frozenset(
    {
        "x-sg-id",
        "x-sg-eid",
        "received",
        "dkim-signature",
        "content-type",
        "content-transfer-encoding",
        "to",
        "from",
        "subject",
        "reply-to",
        "cc",
        "bcc",
    }
)
_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
UNAUTHORIZED = "The provided authorization grant is invalid, expired, or revoked"


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


def _error(message: str, field: str | None) -> dict[str, Any]:
    anchor = (field or "").split(".")[0]
    return {"message": message, "field": field, "help": f"{ERRORS_URL}#{anchor}" if field else None}


def validate(payload: Any, now: float) -> list[dict[str, Any]]:
    """SendGrid's documented request rules for ``payload``; one error dict per broken rule."""
    if not isinstance(payload, dict):
        return [_error("Bad Request", None)]
    errors: list[dict[str, Any]] = []
    errors += _check_personalizations(payload, now)
    errors += _check_from_subject_content(payload)
    errors += _check_custom_args(payload)
    errors += _check_categories(payload.get("categories"))
    errors += _check_headers(payload.get("headers"), "headers")
    errors += _check_send_at(payload.get("send_at"), "send_at", now)
    if "reply_to" in payload and "reply_to_list" in payload:
        errors.append(
            _error("The reply_to and reply_to_list fields are mutually exclusive.", "reply_to")
        )
    return errors


def _check_personalizations(payload: dict[str, Any], now: float) -> Iterator[dict[str, Any]]:
    personalizations = payload.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        yield _error("You must have at least one personalization.", "personalizations")
        return
    if len(personalizations) > MAX_PERSONALIZATIONS:
        yield _error(
            f"The personalization block is limited to {MAX_PERSONALIZATIONS} personalizations per "
            f"API request. You have provided {len(personalizations)} personalizations. Please "
            "consider splitting this into multiple requests and resending your request.",
            "personalizations",
        )
    seen: set[str] = set()
    total = 0
    for i, personalization in enumerate(personalizations):
        where = f"personalizations.{i}"
        if not isinstance(personalization, dict):
            yield _error("Bad Request", where)
            continue
        if not personalization.get("to"):
            yield _error(
                "The to array is required for all personalization objects, and must have at "
                "least one email object with a valid email address.",
                f"{where}.to",
            )
        for kind in ("to", "cc", "bcc"):
            for j, recipient in enumerate(personalization.get(kind) or []):
                total += 1
                field = f"{where}.{kind}.{j}"
                address = recipient.get("email") if isinstance(recipient, dict) else None
                if not isinstance(address, str) or not _ADDRESS.match(address):
                    yield _error("Does not contain a valid address.", f"{field}.email")
                    continue
                if address.lower() in seen:
                    yield _error(
                        "Each unique email address in the personalizations array should only be "
                        f"included once. You have included {address} more than once.",
                        f"{field}.email",
                    )
                seen.add(address.lower())
                name = recipient.get("name")
                if isinstance(name, str) and (";" in name or "," in name) and not _quoted(name):
                    yield _error(
                        "The to.name, cc.name, and bcc.name personalizations cannot include "
                        "either the ; or , characters.",
                        f"{field}.name",
                    )
        yield from _check_headers(personalization.get("headers"), f"{where}.headers")
        yield from _check_send_at(personalization.get("send_at"), f"{where}.send_at", now)
    if total > MAX_RECIPIENTS:
        yield _error(
            f"There is a limit of {MAX_RECIPIENTS} total recipients (to + cc + bcc) per request.",
            "personalizations",
        )


def _quoted(name: str) -> bool:  # the work-around django-anymail uses: a quoted display name
    return len(name) >= 2 and name.startswith('"') and name.endswith('"')


def _check_from_subject_content(payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    sender = payload.get("from")
    address = sender.get("email") if isinstance(sender, dict) else None
    if not address:
        yield _error(
            "The from object must be provided for every email send. It is an object that "
            "requires the email parameter, but may also contain a name parameter.",
            "from.email",
        )
    elif not isinstance(address, str) or not _ADDRESS.match(address):
        yield _error("The from email does not contain a valid address.", "from.email")
    templated = bool(payload.get("template_id"))
    personalizations = [p for p in payload.get("personalizations") or [] if isinstance(p, dict)]
    has_subject = _text(payload.get("subject")) or (
        bool(personalizations) and all(_text(p.get("subject")) for p in personalizations)
    )
    if not has_subject and not templated:
        yield _error(
            "The subject is required. You can get around this requirement if you use a template "
            "with a subject defined or if every personalization has a subject defined.",
            "subject",
        )
    content = payload.get("content")
    if not content:
        if not templated:
            yield _error(
                "Unless a valid template_id is provided, the content parameter is required. "
                "There must be at least one defined content block. We typically suggest both "
                "text/plain and text/html blocks are included, but only one block is required.",
                "content",
            )
        return
    if not isinstance(content, list):
        yield _error("Bad Request", "content")
        return
    types: list[str] = []
    for i, block in enumerate(content):
        block = block if isinstance(block, dict) else {}
        if not _text(block.get("type")):
            yield _error(
                "The content type must be a string at least one character in length.",
                f"content.{i}.type",
            )
        if not _text(block.get("value")):
            yield _error(
                "The content value must be a string at least one character in length.",
                f"content.{i}.value",
            )
        types.append(str(block.get("type", "")).lower())
    expected = [t for t in ("text/plain", "text/html") if t in types]
    if types[: len(expected)] != expected:
        yield _error(
            "If present, text/plain and text/html may only be provided in order, following the "
            "order text/plain, text/html, then any other content.",
            "content",
        )


def _text(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _check_custom_args(payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    top = payload.get("custom_args") or {}
    yield from _string_values(top, "custom_args")
    for i, personalization in enumerate(payload.get("personalizations") or []):
        if not isinstance(personalization, dict):
            continue
        own = personalization.get("custom_args") or {}
        yield from _string_values(own, f"personalizations.{i}.custom_args")
        if isinstance(top, dict) and isinstance(own, dict):
            merged = {**top, **own}
            size = len(json.dumps(merged, ensure_ascii=False, separators=(",", ":")).encode())
            if size >= MAX_CUSTOM_ARGS_BYTES:
                yield _error(
                    f"The custom_args parameter is limited to less than {MAX_CUSTOM_ARGS_BYTES} "
                    f"bytes per personalization (merged: {size} bytes).",
                    f"personalizations.{i}.custom_args",
                )


def _string_values(mapping: Any, where: str) -> Iterator[dict[str, Any]]:
    if not isinstance(mapping, dict):
        yield _error("Invalid type. Expected: object.", where)
        return
    for key, value in mapping.items():
        if not isinstance(value, str):
            yield _error(
                f"Invalid type. Expected: string, given: {type(value).__name__}.", f"{where}.{key}"
            )


def _check_categories(categories: Any) -> Iterator[dict[str, Any]]:
    if categories is None:
        return
    if not isinstance(categories, list):
        yield _error("Invalid type. Expected: array.", "categories")
        return
    if len(categories) > MAX_CATEGORIES:
        yield _error(
            f"You cannot have more than {MAX_CATEGORIES} categories associated with an email.",
            "categories",
        )
    for i, category in enumerate(categories):
        if not isinstance(category, str):
            yield _error("Invalid type. Expected: string.", f"categories.{i}")
        elif len(category) > MAX_CATEGORY_CHARS:
            yield _error(
                f"A category cannot be more than {MAX_CATEGORY_CHARS} characters.",
                f"categories.{i}",
            )


def _check_headers(headers: Any, where: str) -> Iterator[dict[str, Any]]:
    if headers is None:
        return
    if not isinstance(headers, dict):
        yield _error("Invalid type. Expected: object.", where)
        return
    for name, value in headers.items():
        if name.lower() in RESERVED_HEADERS:
            yield _error(f"{name} is a reserved header and cannot be set.", f"{where}.{name}")
        elif not isinstance(value, str):
            yield _error("Invalid type. Expected: string.", f"{where}.{name}")


def _check_send_at(send_at: Any, where: str, now: float) -> Iterator[dict[str, Any]]:
    if send_at is None:
        return
    if not isinstance(send_at, int) or isinstance(send_at, bool):
        yield _error("Invalid type. Expected: integer (a Unix timestamp).", where)
    elif send_at > now + MAX_SEND_AT_AHEAD:
        yield _error("send_at cannot be scheduled more than 72 hours in advance.", where)


class SendGridStandIn:
    """The stand-in server. Start and stop it with ``with``; ``url`` is its base URL."""

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
        self._address = (host, port)
        self._idle_timeout = idle_timeout
        self._lock = threading.Lock()
        self._faults: deque[_Fault] = deque()
        self._accepted: list[Accepted] = []
        self._connections = 0
        self._requests = 0
        self._open: set[_Connection] = set()  # the loop thread's only
        self._bound: tuple[str, int] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> SendGridStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> SendGridStandIn:
        """Listen, then serve from an event loop in a background thread."""
        if self._thread is not None:
            raise RuntimeError("the stand-in is running already")
        sock = socket.create_server(self._address, backlog=BACKLOG)
        loop = asyncio.new_event_loop()
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        thread = threading.Thread(
            target=self._run, args=(loop, sock, ready), name="sendgrid-standin"
        )
        thread.start()
        try:
            ready.result()  # what went wrong in the loop thread, raised here
        except BaseException:
            thread.join()
            raise
        host, port = sock.getsockname()[:2]
        self._bound = (str(host), int(port))
        self._loop, self._thread = loop, thread
        return self

    def stop(self) -> None:
        """Stop accepting, cut open keep-alive connections, and wait for the loop thread."""
        loop, thread, stopping = self._loop, self._thread, self._stopping
        self._loop = self._thread = self._stopping = None
        self._bound = None
        if thread is None:
            return
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed already
                loop.call_soon_threadsafe(stopping.set)
        thread.join()

    @property
    def url(self) -> str:
        if self._bound is None:
            raise RuntimeError("the stand-in is not running (use it in a `with` block)")
        host, port = self._bound
        return f"http://{host}:{port}"

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

    # -- the loop thread ---------------------------------------------------------------------

    def _run(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        ready: concurrent.futures.Future[None],
    ) -> None:
        try:
            loop.run_until_complete(self._serve(sock, ready))
        finally:
            sock.close()
            loop.close()

    async def _serve(self, sock: socket.socket, ready: concurrent.futures.Future[None]) -> None:
        loop = asyncio.get_running_loop()
        stopping = self._stopping = asyncio.Event()
        buffer = memoryview(bytearray(_READ_SIZE))
        try:
            server = await loop.create_server(
                lambda: _Connection(self, stopping, buffer), sock=sock, backlog=BACKLOG
            )
        except BaseException as exc:
            ready.set_exception(exc)
            return
        ready.set_result(None)
        await stopping.wait()
        server.close()  # the listening socket
        connections = list(self._open)
        for connection in connections:
            connection.cut()
        await asyncio.gather(*(c.task for c in connections if c.task), return_exceptions=True)
        await server.wait_closed()
        await asyncio.sleep(0)  # the transports' connection_lost callbacks close their sockets

    def _connected(self, connection: _Connection) -> None:
        with self._lock:
            self._connections += 1
        self._open.add(connection)

    def _disconnected(self, connection: _Connection) -> None:
        self._open.discard(connection)

    def _next_fault(self) -> _Fault | None:
        with self._lock:
            self._requests += 1
            return self._faults.popleft() if self._faults else None

    def _record(self, payload: dict[str, Any]) -> str:
        message_id = secrets.token_urlsafe(16)
        with self._lock:
            self._accepted.append(Accepted(message_id, payload, self.clock()))
        return message_id


BACKLOG = 1024  # many clients connect at once; a small backlog (http.server's was 5) drops SYNs
_READ_SIZE = 256 * 1024  # one recv_into, as asyncio's own transports read
_READ_AHEAD = 1 << 20  # bytes read while the task is busy (sleeping) before reading pauses
_MAX_HEAD = 16 * 1024  # an unfinished request head read past this is a 431, as h11's limit was
_SEND_PATH = SEND_PATH.encode()
_NOT_ALLOWED = frozenset({b"GET", b"PUT", b"DELETE", b"PATCH"})
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# llhttp knows the registered methods only; another one in a well-formed request line is a 501
_REQUEST_LINE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+ \S+ HTTP/\d\.\d\r?\n")
_date: tuple[int, bytes] = (0, b"")


class _Gone(Exception):
    """The client went away, or was idle for ``idle_timeout``: close quietly."""


class _Malformed(Exception):
    """The connection's bytes are not an HTTP/1.1 request: answer ``status``, then close."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _Request:
    """A request's head, as the parser's callbacks saw it."""

    __slots__ = (
        "authorization",
        "chunked",
        "content_length",
        "expect_continue",
        "has_host",
        "keep_alive",
        "method",
        "target",
    )

    def __init__(self) -> None:
        self.method = b""
        self.target = b""
        self.authorization = b""  # the first Authorization header's
        self.content_length = b""  # llhttp checked its digits
        self.chunked = False
        self.has_host = False
        self.expect_continue = False
        self.keep_alive = True


class _EndOfMessage:
    """The request's body is complete."""


_END = _EndOfMessage()
# what the parser's callbacks queue for the connection's task: a head, a piece of body, the end
# of a request, or a parse error to answer in its turn
_Event: TypeAlias = _Request | bytes | _EndOfMessage | _Malformed


def _http_date() -> bytes:
    global _date
    now = int(time.time())
    if _date[0] != now:
        _date = (now, email.utils.formatdate(now, usegmt=True).encode())
    return _date[1]


async def _sleep(seconds: float) -> None:
    if seconds > 0:
        await asyncio.sleep(seconds)


class _Connection(asyncio.BufferedProtocol):
    """One TCP connection: the transport reads into the loop's buffer, httptools (llhttp) parses
    it in place and its callbacks queue what it saw; one task per connection takes the queue in
    order and answers each request, sleeping the latency model."""

    def __init__(
        self, standin: SendGridStandIn, stopping: asyncio.Event, buffer: memoryview
    ) -> None:
        self.standin = standin
        self.stopping = stopping
        self.buffer = buffer  # shared by every connection of the loop: parsed before the next read
        self.parser = httptools.HttpRequestParser(self)  # calls the on_* methods below
        self.events: deque[_Event] = deque()  # parsed, not yet taken by the task
        self.request = _Request()  # the one being parsed
        self.in_message = False  # between on_message_begin and on_message_complete
        self.in_head = False  # between on_message_begin and on_headers_complete
        self.head_bytes = 0  # bytes read while that head stayed unfinished
        self.begun = 0  # messages begun in the current feed_data
        self.resuming = False  # reading the made-up head that frames an upgrade request's body
        self.refused = False  # a callback refused the request (raised _Malformed)
        self.broken = False  # a parse error is queued: parse no more
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task[None] | None = None
        self.unparsed = 0  # bytes read since the task last waited for more
        self.paused = False
        self.eof = False
        self.waiter: asyncio.Future[None] | None = None  # set while waiting for events
        self.waiting_since = 0.0  # loop.time() when that wait began, or bytes last came
        self.idle_timer: asyncio.TimerHandle | None = None
        self.keep_alive = True  # the request being answered's
        self.closing = False  # its answer said Connection: close

    # -- asyncio.BufferedProtocol: called by the transport -----------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self.stopping.is_set():
            transport.abort()
            return
        self.standin._connected(self)
        self.task = asyncio.get_running_loop().create_task(self._serve())

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        if self.broken:
            return
        self._feed(self.buffer[:nbytes])  # all of it: llhttp does not stop between requests
        if self.in_head and not self.begun and not self.broken:  # the same head as before
            self.head_bytes += nbytes
            if self.head_bytes > _MAX_HEAD:
                self._refuse(431)
        self.unparsed += nbytes
        waiter = self.waiter
        if waiter is not None:
            if not self.events:
                self.waiting_since = asyncio.get_running_loop().time()  # bytes came: not idle
            elif not waiter.done():
                waiter.set_result(None)
        elif self.unparsed > _READ_AHEAD and not self.paused and self.transport is not None:
            self.transport.pause_reading()  # busy (sleeping): leave the rest in the kernel
            self.paused = True

    def eof_received(self) -> bool:
        self._closed()
        return True  # a client that half-closed may still wait for its answer

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed()

    def _closed(self) -> None:
        if not self.eof:
            self.eof = True
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(None)

    def _idle_check(self) -> None:
        self.idle_timer = None
        if self.waiter is None or self.waiter.done():
            return  # busy: the next wait arms the timer again
        deadline = self.waiting_since + self.standin._idle_timeout
        loop = asyncio.get_running_loop()
        if loop.time() >= deadline:
            self.waiter.set_exception(_Gone("idle"))
        else:
            self.idle_timer = loop.call_at(deadline, self._idle_check)

    def cut(self) -> None:
        """stop(): close now, whatever the connection is doing."""
        if self.transport is not None:
            self.transport.abort()
        if self.task is not None:
            self.task.cancel()

    # -- parsing: feed_data calls back on_*, which queue events for the task ----------------

    def _feed(self, data: memoryview) -> None:
        fresh = not self.in_message  # a message begun in data begins at data[0]
        self.begun = 0
        try:
            self.parser.feed_data(data)
            return
        except httptools.HttpParserUpgrade as exc:
            rest = data[int(exc.args[0]) :]
        except httptools.HttpParserInvalidMethodError:
            unknown = fresh and self.begun == 1 and _REQUEST_LINE.match(data) is not None
            self._refuse(501 if unknown else 400)  # as h11: a method it does not know is a 501
            return
        except httptools.HttpParserCallbackError:
            if not self.refused:
                raise  # a bug in a callback: asyncio reports it and closes the connection
            self._refuse(400)
            return
        except httptools.HttpParserError as exc:  # h11 answered other transfer codings 501
            self._refuse(501 if "Transfer-Encoding" in str(exc) else 400)
            return
        self._upgrade(rest)

    def _upgrade(self, rest: memoryview) -> None:
        """llhttp stops after the head of a request asking to switch protocols. The stand-in
        never switches (its answer refuses, as with h11): read on, the body and what follows."""
        request = self.request
        if request.method == b"CONNECT":
            self.broken = True  # answered 501 and closed: what follows is not HTTP
            return
        if self.in_message:  # it has a body, which llhttp skipped: a made-up head frames it
            self.resuming = True
            framing = b"Transfer-Encoding: chunked" if request.chunked else b"Content-Length: "
            if not request.chunked:
                framing += request.content_length
            self.parser.feed_data(b"POST / HTTP/1.1\r\n" + framing + b"\r\n\r\n")
        if rest:
            self._feed(rest)

    def _refuse(self, status: int) -> None:
        self.events.append(_Malformed(status))
        self.broken = True

    def on_message_begin(self) -> None:
        if not self.resuming:
            self.request = _Request()
            self.in_message = self.in_head = True
            self.head_bytes = 0
            self.begun += 1

    def on_url(self, url: bytes) -> None:
        if self.in_head:
            self.request.target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.in_head:
            return  # a chunked body's trailers, or the made-up head of _upgrade
        name = name.lower()
        request = self.request
        if name == b"authorization":
            if not request.authorization:
                request.authorization = value.strip()
        elif name == b"content-length":
            request.content_length = value.strip()
        elif name == b"transfer-encoding":
            request.chunked = True  # llhttp refuses a request's unless chunked comes last
        elif name == b"host":
            request.has_host = True
        elif name == b"expect":
            request.expect_continue = b"100-continue" in value.lower()

    def on_headers_complete(self) -> None:
        if self.resuming:
            self.resuming = False
            return
        self.in_head = False
        parser, request = self.parser, self.request
        request.method = parser.get_method()
        http11 = parser.get_http_version() == "1.1"
        if http11 and not request.has_host:  # RFC 9112 section 3.2, as h11 refused it
            self.refused = True
            raise _Malformed(400)
        request.keep_alive = http11 and parser.should_keep_alive()  # as h11: HTTP/1.0 closes
        request.expect_continue = request.expect_continue and http11
        self.events.append(request)

    def on_body(self, body: bytes) -> None:
        self.events.append(body)

    def on_message_complete(self) -> None:
        request = self.request
        if (
            self.parser.should_upgrade()
            and request.method != b"CONNECT"
            and (request.chunked or int(request.content_length or 0) > 0)
        ):
            return  # its body comes next: see _upgrade
        self.in_message = False
        self.events.append(_END)

    # -- the connection's task ---------------------------------------------------------------

    async def _serve(self) -> None:
        assert self.transport is not None
        try:
            await _sleep(self.standin.latency_per_connection)  # what a TLS handshake would cost
            while not self.transport.is_closing():
                request = await self._next_event()
                if not isinstance(request, _Request):
                    break  # None: the client is done
                self.keep_alive = request.keep_alive
                await self._respond(request)
                if self.closing:
                    break  # Connection: close (theirs or ours)
        except _Malformed as exc:  # answered in its turn, after the requests before it
            message = _reason(exc.status).decode()
            self._answer(exc.status, {"errors": [_error(message, None)]}, close=True)
        except _Gone:
            pass
        except Exception:  # a bug here: say so, as socketserver did
            traceback.print_exc()
        finally:
            if self.idle_timer is not None:
                self.idle_timer.cancel()
            self.transport.close()
            self.standin._disconnected(self)

    async def _next_event(self) -> _Request | bytes | _EndOfMessage | None:
        """What the parser saw next; None once the client closed its side and all is taken."""
        while not self.events:
            if self.eof:
                return None
            await self._more()
        event = self.events.popleft()
        if isinstance(event, _Malformed):
            raise event
        return event

    async def _more(self) -> None:
        """Wait for events (``buffer_updated`` parses) up to ``idle_timeout`` without bytes."""
        self.unparsed = 0
        if self.paused and self.transport is not None:
            self.transport.resume_reading()
            self.paused = False
        loop = asyncio.get_running_loop()
        self.waiter = loop.create_future()
        self.waiting_since = loop.time()
        if self.idle_timer is None:  # one timer, re-armed when it fires: none per request
            self.idle_timer = loop.call_at(
                self.waiting_since + self.standin._idle_timeout, self._idle_check
            )
        try:
            await self.waiter
        finally:
            self.waiter = None

    async def _body(self, limit: int) -> bytes | None:
        """The request's body, or None past ``limit`` bytes (kept: none); read to its end."""
        parts: list[bytes] = []
        size = 0
        while True:
            event = await self._next_event()
            if isinstance(event, bytes):
                size += len(event)
                if size <= limit:
                    parts.append(event)
                elif parts:
                    parts.clear()
            elif isinstance(event, _EndOfMessage):
                return b"".join(parts) if size <= limit else None
            else:
                raise _Gone("closed mid-request")

    async def _drain(self) -> None:
        await self._body(-1)

    async def _respond(self, request: _Request) -> None:
        standin = self.standin
        if request.expect_continue:  # as http.server did, before anything
            self._write(_CONTINUE)
        if request.method != b"POST":
            await self._drain()
            if request.method in _NOT_ALLOWED:
                self._answer(405, {"errors": [_error("Method Not Allowed", None)]})
            else:
                error = {"errors": [_error("Not Implemented", None)]}
                self._answer(501, None if request.method == b"HEAD" else error, close=True)
            return
        await _sleep(standin.latency_per_request)
        if request.target.split(b"?", 1)[0] != _SEND_PATH:
            await self._drain()
            self._answer(404, {"errors": [_error("Not Found", None)]})
            return
        if request.authorization.decode("latin-1") != f"Bearer {standin.api_key}":
            await self._drain()
            self._answer(401, {"errors": [_error(UNAUTHORIZED, None)]})
            return
        fault = standin._next_fault()
        if fault is not None and await self._faulted(fault):
            return
        declared = int(request.content_length or 0)
        body = await self._body(-1 if declared > MAX_BODY_BYTES else MAX_BODY_BYTES)
        if body is None:
            self._answer(413, {"errors": [_error("Payload Too Large", None)]}, close=True)
            return
        try:  # orjson, like SendGrid, refuses what is not JSON: NaN, Infinity, invalid UTF-8
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            self._answer(400, {"errors": [_error("Bad Request", None)]})
            return
        errors = validate(payload, standin.clock())
        if errors:
            self._answer(400, {"errors": errors})
            return
        message_id = standin._record(payload)
        self._answer(202, None, {"X-Message-Id": message_id})

    async def _faulted(self, fault: _Fault) -> bool:
        """Apply ``fault``; True when the request has been answered (or dropped) by it."""
        standin = self.standin
        if fault.kind == "slow":
            await _sleep(fault.seconds)
            return False
        await self._drain()
        if fault.kind == "drop":
            assert self.transport is not None
            self.transport.close()
            return True
        headers: dict[str, str] = {}
        if fault.status == 429:
            headers = {
                "X-RateLimit-Limit": str(fault.limit),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(math.ceil(standin.clock() + fault.retry_after)),
            }
            if fault.retry_after_header:
                headers["Retry-After"] = str(math.ceil(fault.retry_after))
            message = "too many requests"
        else:
            message = "Internal Server Error" if fault.status == 500 else "Service Unavailable"
        self._answer(fault.status, {"errors": [_error(message, None)]}, headers)
        return True

    def _answer(
        self,
        status: int,
        body: dict[str, Any] | None,
        headers: dict[str, str] | None = None,
        *,
        close: bool = False,
    ) -> None:
        data = b"" if body is None else orjson.dumps(body)
        head = [b"HTTP/1.1 %d %s\r\nDate: %s\r\n" % (status, _reason(status), _http_date())]
        head += [f"{name}: {value}\r\n".encode() for name, value in (headers or {}).items()]
        if data:
            head.append(b"Content-Type: application/json\r\n")
        head.append(b"Content-Length: %d\r\n" % len(data))
        if close or not self.keep_alive:
            self.closing = True
            head.append(b"Connection: close\r\n")
        head += (b"\r\n", data)
        self._write(b"".join(head))

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


@functools.cache
def _reason(status: int) -> bytes:
    try:
        return http.HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


@contextlib.contextmanager
def standin_process(
    *, per_request: float = 0.0, per_connection: float = 0.0, api_key: str | None = None
) -> Iterator[tuple[str, str]]:
    """Run a stand-in in its own Python process; yields ``(url, api_key)``.

    For benchmarks: the server's threads then do not compete with the client's for one GIL.
    """
    key = api_key or SendGridStandIn().api_key
    command = [sys.executable, "-c", f"from {__name__} import main; main()", "--api-key", key]
    command += ["--per-request", str(per_request), "--per-connection", str(per_connection)]
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        try:
            url = proc.stdout.readline().strip()
            if not url.startswith("http://"):
                raise RuntimeError(f"the stand-in process did not start (said {url!r})")
            yield url, key
        finally:
            proc.stdin.close()  # the signal to stop
            proc.wait(timeout=30)


def main(argv: list[str] | None = None) -> None:
    """Serve a stand-in: print its URL, serve until stdin ends, then print what it accepted."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--api-key", default=SendGridStandIn().api_key)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--per-request", type=float, default=0.0, help="latency, seconds")
    parser.add_argument("--per-connection", type=float, default=0.0, help="latency, seconds")
    args = parser.parse_args(argv)
    with SendGridStandIn(args.api_key, port=args.port) as standin:
        standin.set_latency(per_request=args.per_request, per_connection=args.per_connection)
        print(standin.url, flush=True)
        sys.stdin.read()
        print(f"accepted {len(standin.accepted)} connections {standin.connections}", flush=True)


if __name__ == "__main__":
    main()
