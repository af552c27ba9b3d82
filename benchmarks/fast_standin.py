"""The benchmarks' SendGrid stand-in: the same answers as ``dripengine.testing``'s, for less CPU.

The benchmarks run their client, the database and this server on the same 2 cores, so every µs
the server spends is taken from the code being measured. ``dripengine.testing.SendGridStandIn``
(Starlette under uvicorn) costs ~190 µs of CPU a request at 128 kept-alive connections; this one,
httptools (llhttp) on one asyncio loop with no framework, ~100 µs (the hand-written server the
package had before: ~115 µs). With uvicorn + Starlette in the benchmarks, ``dispatch``'s
``no_latency`` lines lost ~30 % (the bare loop they compare with ~22 %): the server was the
bottleneck there, not the code under test (``benchmarks/README.md``).

What to answer is not decided here: it asks :mod:`dripengine.testing.sendgrid_contract`, as the
package's stand-in does, so a request the benchmarks send gets the answer the tests' stand-in
would give. Only what the benchmarks' clients do is served: HTTP/1.1 (or 1.0) with
``Content-Length`` bodies, kept alive or ``Connection: close``, pipelined or not. No faults,
nothing recorded but counts; a request it cannot parse gets a 400 and the connection is closed.
Not for tests: use ``SendGridStandIn``.

    with fast_standin_process(per_request=0.05, per_connection=0.1) as (url, key):
        ...
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email.utils
import functools
import http
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import httptools

from dripengine.testing import sendgrid_contract as contract

DEFAULT_KEY = "SG.standin-key.0123456789"
BACKLOG = 1024  # many clients connect at once; a small backlog drops SYNs
_date: tuple[int, bytes] = (0, b"")


class _Stats:
    def __init__(self) -> None:
        self.connections = 0
        self.accepted = 0


class _Request:
    __slots__ = ("body", "complete", "headers", "keep_alive", "method", "target")

    def __init__(self) -> None:
        self.method = ""
        self.target = b""
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []
        self.keep_alive = True
        self.complete = asyncio.Event()


class _Connection(asyncio.Protocol):
    """One TCP connection: httptools parses what arrives, one task answers requests in order."""

    def __init__(self, server: FastStandIn) -> None:
        self.server = server
        self.parser = httptools.HttpRequestParser(self)
        self.requests: deque[_Request] = deque()
        self.arrived = asyncio.Event()
        self.request = _Request()
        self.transport: asyncio.Transport | None = None
        self.broken = False
        self.eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.stats.connections += 1
        asyncio.get_running_loop().create_task(self._serve())

    def data_received(self, data: bytes) -> None:
        if self.broken:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.broken = True
            self.arrived.set()

    def eof_received(self) -> bool:
        self.eof = True
        self.arrived.set()
        return True  # answer what was asked, then close

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.arrived.set()
        self.request.complete.set()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.request = _Request()

    def on_url(self, url: bytes) -> None:
        self.request.target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.request.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        request = self.request
        request.method = self.parser.get_method().decode("ascii")
        http11 = self.parser.get_http_version() == "1.1"
        request.keep_alive = http11 and self.parser.should_keep_alive()
        self.requests.append(request)
        self.arrived.set()

    def on_body(self, body: bytes) -> None:
        self.request.body.append(body)

    def on_message_complete(self) -> None:
        self.request.complete.set()

    async def _serve(self) -> None:
        assert self.transport is not None
        server = self.server
        if server.per_connection > 0:  # what a TLS handshake would cost
            await asyncio.sleep(server.per_connection)
        try:
            while not self.transport.is_closing():
                while not self.requests and not self.broken and not self.eof:
                    self.arrived.clear()
                    await self.arrived.wait()
                if not self.requests:
                    if self.broken:
                        self._write(contract.error_answer(400, "Bad Request", close=True), False)
                    break
                request = self.requests.popleft()
                if server.per_request > 0:
                    await asyncio.sleep(server.per_request)
                await request.complete.wait()
                answer = contract.validate(
                    request.method,
                    request.target.decode("latin-1"),
                    request.headers,
                    b"".join(request.body),
                    api_key=server.api_key,
                    now=time.time(),
                )
                if answer.payload is not None:
                    server.stats.accepted += 1
                keep_alive = request.keep_alive and not answer.close
                self._write(answer, keep_alive)
                if not keep_alive:
                    break
        finally:
            self.transport.close()

    def _write(self, answer: contract.Answer, keep_alive: bool) -> None:
        assert self.transport is not None
        head = [
            b"HTTP/1.1 %d %s\r\nDate: %s\r\n"
            % (answer.status, _phrase(answer.status), _http_date())
        ]
        head += [f"{name}: {value}\r\n".encode() for name, value in answer.headers.items()]
        head.append(b"Content-Length: %d\r\n" % len(answer.body))
        if not keep_alive:
            head.append(b"Connection: close\r\n")
        head += (b"\r\n", answer.body)
        self.transport.write(b"".join(head))


@functools.cache
def _phrase(status: int) -> bytes:
    try:
        return http.HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


def _http_date() -> bytes:
    global _date
    now = int(time.time())
    if _date[0] != now:
        _date = (now, email.utils.formatdate(now, usegmt=True).encode())
    return _date[1]


class FastStandIn:
    def __init__(self, api_key: str, per_request: float, per_connection: float) -> None:
        self.api_key = api_key
        self.per_request = per_request
        self.per_connection = per_connection
        self.stats = _Stats()

    async def serve(self, port: int) -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: _Connection(self), "127.0.0.1", port, backlog=BACKLOG
        )
        host, bound = server.sockets[0].getsockname()[:2]
        print(f"http://{host}:{bound}", flush=True)
        await loop.run_in_executor(None, sys.stdin.read)  # until stdin ends
        server.close()
        stats = self.stats
        print(f"accepted {stats.accepted} connections {stats.connections}", flush=True)


@contextlib.contextmanager
def fast_standin_process(
    *, per_request: float = 0.0, per_connection: float = 0.0, api_key: str = DEFAULT_KEY
) -> Iterator[tuple[str, str]]:
    """Run the fast stand-in in its own Python process; yields ``(url, api_key)``."""
    command = [sys.executable, "-c", "from benchmarks.fast_standin import main; main()"]
    command += ["--api-key", api_key]
    command += ["--per-request", str(per_request), "--per-connection", str(per_connection)]
    root = Path(__file__).resolve().parent.parent  # `benchmarks` and the in-tree `dripengine`
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=root
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        try:
            url = proc.stdout.readline().strip()
            if not url.startswith("http://"):
                raise RuntimeError(f"the stand-in process did not start (said {url!r})")
            yield url, api_key
        finally:
            proc.stdin.close()  # the signal to stop
            proc.wait(timeout=30)


def main(argv: list[str] | None = None) -> None:
    """Serve: print the URL, serve until stdin ends, then print what was accepted."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--api-key", default=DEFAULT_KEY)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--per-request", type=float, default=0.0, help="latency, seconds")
    parser.add_argument("--per-connection", type=float, default=0.0, help="latency, seconds")
    args = parser.parse_args(argv)
    standin = FastStandIn(args.api_key, args.per_request, args.per_connection)
    asyncio.run(standin.serve(args.port))


if __name__ == "__main__":
    main()
