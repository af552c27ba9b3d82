"""An ASGI app served by uvicorn on loopback from a background thread, its connections in hand.

``start()`` listens on 127.0.0.1 and runs uvicorn's server on an event loop in a background thread;
``stop()`` cuts every connection, whatever it is doing, and joins that thread. HTTP itself (parsing,
keep-alive, pipelining, ``Expect: 100-continue``, malformed requests) is uvicorn's. ASGI gives an
app no word with its connection; a subclass of uvicorn's HTTP protocol keeps the connections, so
``stop()`` can cut them all, the app can :meth:`~LoopbackServer.abort` one (an answer dropped),
and ``on_connect`` hears of each new one before its first request is read (to count it, or to
pause its reading for a while). The stand-ins in :mod:`dripengine.testing` run in it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import socket
import threading
from collections.abc import Callable
from typing import Any

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.auto import AutoHTTPProtocol

__all__ = ["BACKLOG", "LoopbackServer"]

BACKLOG = 1024  # many clients connect at once; a small backlog (http.server's was 5) drops SYNs


class LoopbackServer:
    """``app`` under uvicorn, from ``start()`` to ``stop()``; ``url`` is its base URL meanwhile.

    ``idle_timeout``: how long a kept-alive connection may wait for its next request before the
    server closes it (uvicorn's keep-alive timeout, whole seconds, at least 1). ``on_connect`` is
    called with each new connection's transport, on the loop thread. ``stopping`` is true while
    ``stop()`` cuts the connections: a request cancelled then is the server's doing.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str,
        port: int,
        idle_timeout: float,
        on_connect: Callable[[asyncio.Transport], None],
        thread_name: str,
    ) -> None:
        self.app = app
        self.stopping = False
        self._address = (host, port)
        self._idle_timeout = idle_timeout
        self._on_connect = on_connect
        self._thread_name = thread_name
        self._open: dict[Any, asyncio.Transport] = {}  # the loop thread's: client address → it
        self._bound: tuple[str, int] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Listen, then serve with uvicorn from an event loop in a background thread."""
        if self._thread is not None:
            raise RuntimeError("the stand-in is running already")
        sock = socket.create_server(self._address, backlog=BACKLOG)  # clients may connect now
        config = uvicorn.Config(
            self.app,
            http=_protocol_for(self),
            interface="asgi3",
            lifespan="off",
            log_config=None,  # the host process's logging is left alone
            proxy_headers=False,  # loopback, no proxy: and a middleware less per request
            server_header=False,
            timeout_keep_alive=max(1, round(self._idle_timeout)),
            backlog=BACKLOG,
        )
        server = uvicorn.Server(config)
        ready: concurrent.futures.Future[asyncio.AbstractEventLoop] = concurrent.futures.Future()
        thread = threading.Thread(
            target=self._run, args=(server, sock, ready), name=self._thread_name
        )
        self.stopping = False
        thread.start()
        try:
            self._loop = ready.result()
        except BaseException:
            thread.join()
            sock.close()
            raise
        host, port = sock.getsockname()[:2]
        self._bound = (str(host), int(port))
        self._server, self._thread = server, thread

    def stop(self) -> None:
        """Stop accepting, cut every open connection, and wait for the loop thread."""
        loop, thread, server = self._loop, self._thread, self._server
        self._loop = self._thread = self._server = None
        self._bound = None
        if thread is None:
            return
        if loop is not None and server is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed already
                asyncio.run_coroutine_threadsafe(self._halt(server), loop).result()
        thread.join()

    @property
    def url(self) -> str:
        if self._bound is None:
            raise RuntimeError("the stand-in is not running (use it in a `with` block)")
        host, port = self._bound
        return f"http://{host}:{port}"

    def abort(self, client: Any) -> None:
        """Close the connection of ``client`` (a request's ``scope["client"]``) without a word."""
        transport = self._open.get(client)
        if transport is not None:
            transport.abort()

    # -- the loop thread ---------------------------------------------------------------------

    def _run(
        self,
        server: uvicorn.Server,
        sock: socket.socket,
        ready: concurrent.futures.Future[asyncio.AbstractEventLoop],
    ) -> None:
        async def serve() -> None:
            ready.set_result(asyncio.get_running_loop())
            await server.serve(sockets=[sock])  # closes sock when it ends

        try:
            asyncio.run(serve())
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise

    async def _halt(self, server: uvicorn.Server) -> None:
        """Cut every connection (answers being slept on, bodies being read, idle ones), end the
        requests' tasks, and let uvicorn's shutdown (which waits for both) finish at once."""
        self.stopping = True
        for transport in list(self._open.values()):
            transport.abort()
        await asyncio.sleep(0)  # connection_lost: each request sees it is disconnected
        for task in list(server.server_state.tasks):
            task.cancel()  # a request asleep: the app's endpoint returns quietly
        server.should_exit = True

    # -- connections (called by _protocol_for's protocol, on the loop thread) ----------------

    def _connected(self, client: Any, transport: asyncio.Transport) -> None:
        self._on_connect(transport)
        self._open[client] = transport
        if self.stopping:
            transport.abort()

    def _disconnected(self, client: Any, transport: asyncio.Transport) -> None:
        if self._open.get(client) is transport:
            del self._open[client]


def _protocol_for(server: LoopbackServer) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol (httptools when installed, else h11), telling ``server`` of each
    connection; no access log lines."""
    base: Any = AutoHTTPProtocol

    class Protocol(base):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.access_log = False

        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            server._connected(self.client, transport)

        def connection_lost(self, exc: Exception | None) -> None:
            server._disconnected(self.client, self.transport)
            super().connection_lost(exc)

    return Protocol
