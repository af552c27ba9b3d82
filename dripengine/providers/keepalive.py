"""A small HTTP/1.1 client for one API host: kept-alive connections driven by one asyncio thread.

Why not a thread per request in flight (urllib3, as before): each of 64 threads re-takes the
interpreter lock after every socket call, and with that many waiting the hand-overs cost more than
the requests. Measured here against the SendGrid stand-in in another process, 5,000 pre-encoded
11 kB bodies, 64 requests in flight on kept-alive connections, client CPU a request:

    urllib3 pool, 64 threads    330-390 µs     aiohttp (asyncio)     ~200 µs
    urllib3 pool,  8 threads        ~240 µs     h11 on asyncio        ~170 µs
    this client (asyncio streams)    ~65 µs

and the lock hand-overs slowed every other thread of ``drip run`` too (rendering and recording).
httpx was measured in the issue (slower than urllib3 at 64 in flight).

What it does, and only that: one request line, fixed headers, a bytes body with ``Content-Length``;
answers read by ``Content-Length``, ``chunked`` or up to the close, interim ``1xx`` answers skipped;
a connection is kept unless the server says ``Connection: close`` or speaks HTTP/1.0, and a kept
connection the server has closed meanwhile (the loop saw its EOF) is not reused. At most
``max_connections`` requests are in flight, each on its own connection. No redirects, no retries,
no proxies, no compression: what an API client posting JSON needs.

The loop runs on its own daemon thread, started on first use; :meth:`KeepAliveClient.run` hands it
a coroutine from any other thread and waits for the result.
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

T = TypeVar("T")

MAX_HEADERS = 100
MAX_LINE = 64 * 1024  # a status or header line (asyncio's StreamReader limit)
MAX_BODY = 10 * 1024 * 1024  # an API's answer; more is not an answer we can use
NO_BODY = frozenset({204, 304})


class ProtocolError(Exception):
    """The server's answer is not the HTTP/1.x this client reads."""


class Headers:
    """Response headers, looked up case-insensitively; a repeated header's values joined by ``, ``."""

    __slots__ = ("_values",)

    def __init__(self, items: list[tuple[str, str]]) -> None:
        values: dict[str, str] = {}
        for name, value in items:
            key = name.lower()
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


class _Connection:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def usable(self) -> bool:
        """Still open at both ends: the server has not closed it while it was idle."""
        return (
            not self.writer.is_closing()
            and not self.reader.at_eof()
            and self.reader.exception() is None
        )

    def close(self) -> None:
        self.writer.close()


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
                async with asyncio.timeout(self.timeout):
                    response, keep = await self._exchange(connection, method, path, body)
                return response
            finally:
                if keep:
                    self._idle.append(connection)
                else:
                    connection.close()

    async def _connection(self) -> _Connection:
        while self._idle:
            connection = self._idle.pop()
            if connection.usable():
                return connection
            connection.close()
        async with asyncio.timeout(self.connect_timeout):
            reader, writer = await asyncio.open_connection(
                self.host,
                self.port,
                ssl=self.ssl_context,
                server_hostname=self.host if self.ssl_context else None,
                limit=MAX_LINE,
            )
        self.connections_opened += 1
        return _Connection(reader, writer)

    async def _exchange(
        self, connection: _Connection, method: str, path: str, body: bytes
    ) -> tuple[Response, bool]:
        reader, writer = connection.reader, connection.writer
        writer.write(
            f"{method} {path} HTTP/1.1\r\n".encode("ascii")
            + self._head
            + f"Content-Length: {len(body)}\r\n\r\n".encode("ascii")
            + body
        )
        await writer.drain()
        try:
            version, status, reason = await _status_line(reader)
            while 100 <= status < 200:  # interim answers (100 Continue, 103 Early Hints)
                await _header_lines(reader)
                version, status, reason = await _status_line(reader)
            headers = Headers(await _header_lines(reader))
            tokens = {t.strip().lower() for t in (headers.get("connection") or "").split(",")}
            keep = version == "HTTP/1.1" and "close" not in tokens
            if method == "HEAD" or status in NO_BODY:
                data = b""
            elif "chunked" in (headers.get("transfer-encoding") or "").lower():
                data = await _chunked(reader)
            elif "content-length" in headers:
                length = _length(headers.get("content-length"))
                data = await reader.readexactly(length)
            else:  # the body runs to the close
                data = await _to_the_close(reader)
                keep = False
        except ValueError as exc:  # a line over MAX_LINE (asyncio's StreamReader limit)
            raise ProtocolError(str(exc)) from exc
        return Response(status, reason, headers, data), keep

    async def _shutdown(self) -> None:
        current = asyncio.current_task()
        running = [task for task in asyncio.all_tasks() if task is not current]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        while self._idle:
            self._idle.pop().close()


async def _status_line(reader: asyncio.StreamReader) -> tuple[str, int, str]:
    line = await reader.readline()
    if not line:
        raise EOFError("the server closed the connection without an answer")
    version, _, rest = line.decode("latin-1").rstrip("\r\n").partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise ProtocolError(f"not an HTTP/1.x status line: {line[:80]!r}")
    return version, int(code), reason


async def _header_lines(reader: asyncio.StreamReader) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n"):
            return items
        if not line.endswith(b"\n"):
            raise EOFError("the server closed the connection in the middle of the headers")
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon or not name or name != name.strip():
            raise ProtocolError(f"not a header line: {line[:80]!r}")
        items.append((name, value.strip()))
        if len(items) > MAX_HEADERS:
            raise ProtocolError(f"more than {MAX_HEADERS} headers")


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    data = bytearray()
    while True:
        size_line = await reader.readline()
        if not size_line.endswith(b"\n"):
            raise EOFError("the server closed the connection in the middle of a chunked answer")
        digits = size_line.split(b";", 1)[0].strip()
        if not digits or digits.strip(b"0123456789abcdefABCDEF"):
            raise ProtocolError(f"not a chunk size: {size_line[:80]!r}")
        size = int(digits, 16)
        if size == 0:
            await _header_lines(reader)  # trailers, up to the blank line
            return bytes(data)
        if len(data) + size > MAX_BODY:
            raise ProtocolError("an answer of more than 10 MB")
        data += await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise ProtocolError("a chunk not followed by CRLF")


async def _to_the_close(reader: asyncio.StreamReader) -> bytes:
    data = bytearray()
    while chunk := await reader.read(64 * 1024):
        data += chunk
        if len(data) > MAX_BODY:
            raise ProtocolError("an answer of more than 10 MB")
    return bytes(data)


def _length(value: str | None) -> int:
    if not value or not (value.isascii() and value.isdigit()) or int(value) > MAX_BODY:
        raise ProtocolError(f"Content-Length {value!r}")
    return int(value)
