"""A connection pool for one API host over llhttp: kept-alive HTTP/1.1 connections on one asyncio thread.

Every byte of every answer is parsed by ``httptools.HttpResponseParser`` (llhttp, Node.js's HTTP
parser, the one uvicorn runs on): status line, headers, ``Content-Length`` and ``chunked`` bodies
with their trailers, interim ``1xx`` answers, whether the connection may be kept
(``should_keep_alive()``: ``Connection: close``, HTTP/1.0, a body that runs to the close), and
what is not HTTP (``HttpParserError``, raised here as :class:`ProtocolError`). This module writes
the request (one request line, the fixed headers checked once when the client is made, a bytes
body with ``Content-Length``), keeps the connections, and decides only what an end of stream
means: the end of an answer llhttp said runs to the close, else :class:`EOFError`.

Why not aiohttp or httpx: measured on this box against the benchmarks' stand-in, 128 in flight,
aiohttp 3.14 (with its own llhttp parser) cost 128-193 µs of the loop thread's CPU a request and
dispatch at 50 ms lost 14-32 %; httpx cost more than urllib3 (see ``benchmarks/README.md``). One
``asyncio.Protocol`` per connection feeding the parser, as uvicorn's ``httptools_impl`` does on
the server side, keeps what the hand-written client cost (see ``benchmarks/bench_http_client.py``).

At most ``max_connections`` requests are in flight, each on its own connection; a kept connection
the server has closed meanwhile (the loop saw its EOF) is not reused. No redirects, no retries, no
proxies, no compression: what an API client posting JSON needs. The loop runs on its own daemon
thread, started on first use; :meth:`KeepAliveClient.run` hands it a coroutine from any other
thread and waits for the result.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Coroutine, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httptools

T = TypeVar("T")

MAX_HEADERS = 100
MAX_HEAD = 64 * 1024  # bytes before an answer's headers end (status line and headers)
MAX_BODY = 10 * 1024 * 1024  # an API's answer; more is not an answer we can use
PARSER = f"llhttp (httptools {httptools.__version__})"  # what reads the answers, for benchmarks


class ProtocolError(Exception):
    """The server's answer is not the HTTP/1.x this client reads."""


class Headers:
    """Response headers, looked up case-insensitively; a repeated header's values joined by ``, ``."""

    __slots__ = ("_values",)

    def __init__(self, items: list[tuple[bytes, bytes]]) -> None:
        values: dict[str, str] = {}
        for raw_name, raw_value in items:
            key, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            values[key] = f"{values[key]}, {value}" if key in values else value
        self._values = values

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._values.get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._values


@dataclass(frozen=True)
class Response:
    status: int
    reason: str
    headers: Headers
    data: bytes


class _Connection(asyncio.Protocol):
    """One connection: its parser, and the answer the request on it is waiting for."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False  # the server ended it, or we did
        self.waiter: asyncio.Future[tuple[Response, bool]] | None = None
        self.head_only = False
        self._reset()

    def _reset(self) -> None:
        self.reason = b""
        self.items: list[tuple[bytes, bytes]] = []
        self.framed = False  # Content-Length or chunked: an end of stream before it is EOFError
        self.head_bytes = 0  # received while the headers were not complete
        self.header_bytes = 0  # in the headers llhttp has handed over
        self.headers_done = False
        self.keep = False
        self.body: list[bytes] = []
        self.body_bytes = 0

    def usable(self) -> bool:
        """Still open at both ends: the server has not closed it while it was idle."""
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def send(self, request: bytes, *, head_only: bool) -> asyncio.Future[tuple[Response, bool]]:
        """Write ``request``; a future of (the final answer, whether the connection may be kept)."""
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.head_only = head_only
        self._reset()
        if self.closed:
            self.waiter.set_exception(EOFError("the server closed the connection"))
        else:
            self.transport.write(request)
        return self.waiter

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.waiter is None or self.waiter.done():  # nothing asked: not a connection to keep
            self.close()
            return
        if not self.headers_done:
            self.head_bytes += len(data)
        try:
            self.parser.feed_data(data)
            if not self.headers_done and self.head_bytes > MAX_HEAD:
                raise ProtocolError(f"more than {MAX_HEAD} bytes of status line and headers")
        except httptools.HttpParserUpgrade:
            self._fail(ProtocolError("the server switched protocols"))
        except httptools.HttpParserError as exc:
            cause = exc.__context__
            self._fail(cause if isinstance(cause, ProtocolError) else ProtocolError(str(exc)))
        except ProtocolError as exc:
            self._fail(exc)

    def eof_received(self) -> bool | None:
        return None  # close our end too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if exc is not None:
            waiter.set_exception(exc)
        elif self.headers_done and not self.framed:  # llhttp reads such a body up to the close
            waiter.set_result((self._response(), False))
        else:
            where = "in the middle of the answer" if self.head_bytes else "without an answer"
            waiter.set_exception(EOFError(f"the server closed the connection {where}"))

    # -- llhttp's callbacks (inside feed_data) ----------------------------------------------

    def on_message_begin(self) -> None:
        if self.waiter is None or self.waiter.done():  # bytes after the answer: out of step
            raise ProtocolError("more than one answer to one request")

    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self.items.append((name, value))
        self.header_bytes += len(name) + len(value) + 4
        if len(self.items) > MAX_HEADERS:
            raise ProtocolError(f"more than {MAX_HEADERS} headers")
        if self.header_bytes > MAX_HEAD:
            raise ProtocolError(f"more than {MAX_HEAD} bytes of headers")
        lowered = name.lower()
        if lowered == b"content-length":
            self.framed = True
            if not value.isdigit() or int(value) > MAX_BODY:  # llhttp has checked the digits
                raise ProtocolError(f"Content-Length {value.decode('latin-1')!r}")
        elif lowered == b"transfer-encoding":  # llhttp reads to the close unless chunked is last
            self.framed = value.rpartition(b",")[2].strip().lower() == b"chunked"

    def on_headers_complete(self) -> None:
        self.headers_done = True
        self.keep = self.parser.should_keep_alive()
        if self.head_only and not 100 <= self.parser.get_status_code() < 200:
            # llhttp cannot be told this answer has no body: take it, and drop the connection
            self._finish(keep=False)

    def on_body(self, body: bytes) -> None:
        self.body_bytes += len(body)
        if self.body_bytes > MAX_BODY:
            raise ProtocolError("an answer of more than 10 MB")
        self.body.append(body)

    def on_message_complete(self) -> None:
        if 100 <= self.parser.get_status_code() < 200:  # interim (100 Continue, 103 Early Hints)
            self._reset()
            return
        self._finish(keep=self.keep)

    # -- ------------------------------------------------------------------------------------

    def _response(self) -> Response:
        return Response(
            self.parser.get_status_code(),
            self.reason.decode("latin-1"),
            Headers(self.items),
            b"".join(self.body),
        )

    def _finish(self, *, keep: bool) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((self._response(), keep))

    def _fail(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)
        self.close()


class KeepAliveClient:
    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        *,
        max_connections: int,
        connect_timeout: float,
        timeout: float,
        ssl_context: ssl.SSLContext | None = None,
        thread_name: str = "http-client",
    ) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.host = url.hostname
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.ssl_context = (
            (ssl_context or ssl.create_default_context()) if url.scheme == "https" else None
        )
        self.max_connections = max(1, max_connections)
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        fixed = {"Host": url.netloc.rpartition("@")[2], **headers}
        for name, value in fixed.items():
            if any(c in f"{name}{value}" for c in "\r\n\0"):
                raise ValueError(f"a line break in the {name} header")
        # latin-1: HTTP/1.1 header bytes; UnicodeEncodeError (a ValueError) for anything else
        self._head = "".join(f"{name}: {value}\r\n" for name, value in fixed.items()).encode(
            "latin-1"
        )
        self._thread_name = thread_name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._idle: list[_Connection] = []  # last in, first out: the warmest connection first
        self._slots: asyncio.Semaphore | None = None
        self.connections_opened = 0

    # -- from any thread ----------------------------------------------------------------------

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the client's loop thread; its result (or exception)."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, self._running_loop())
        try:
            return future.result()
        except BaseException:
            future.cancel()  # interrupted while waiting: stop the work too
            raise

    def close(self) -> None:
        """Finish: cancel what is still running, close every connection, join the loop thread."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=30)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=self._thread_name)
                thread.daemon = True  # a client never closed must not keep the process alive
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    # -- on the loop ------------------------------------------------------------------------

    async def request(self, method: str, path: str, body: bytes) -> Response:
        """One request on a kept-alive connection (a new one if none is free).

        Raises TimeoutError (no answer within ``timeout``, or no connection within
        ``connect_timeout``), OSError (refused, reset), EOFError (closed mid-answer) or
        :class:`ProtocolError`.
        """
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_connections)
        async with self._slots:
            connection = await self._connection()
            keep = False
            try:
                request = (
                    f"{method} {path} HTTP/1.1\r\n".encode("ascii")
                    + self._head
                    + f"Content-Length: {len(body)}\r\n\r\n".encode("ascii")
                    + body
                )
                async with asyncio.timeout(self.timeout):
                    response, keep = await connection.send(request, head_only=method == "HEAD")
                return response
            finally:
                if keep:
                    connection.waiter = None
                    self._idle.append(connection)
                else:
                    connection.close()

    async def _connection(self) -> _Connection:
        while self._idle:
            connection = self._idle.pop()
            if connection.usable():
                return connection
            connection.close()
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.connect_timeout):
            _, connection = await loop.create_connection(
                _Connection,
                self.host,
                self.port,
                ssl=self.ssl_context,
                server_hostname=self.host if self.ssl_context else None,
            )
        self.connections_opened += 1
        return connection

    async def _shutdown(self) -> None:
        current = asyncio.current_task()
        running = [task for task in asyncio.all_tasks() if task is not current]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        while self._idle:
            self._idle.pop().close()
