"""A `drip serve` process in the ``worker`` table (kind ``serve``): `drip status` and ``/metrics``
count the live ones as they count `drip run` workers.

Each process serving requests (each of ``drip serve --workers N``, or each worker of another ASGI
server running :func:`dripengine.web.create_app`) inserts its row when the app starts, beats every
:data:`~dripengine.reports.status.HEARTBEAT_SECONDS` from a thread of its own (a database write
never waits on the event loop, nor the loop on it), and stamps ``stopped_at`` when the app shuts
down cleanly. A process killed without a shutdown stops beating: *dead* after three missed beats.
A failed beat (the database away for a moment) is logged and the next one tried.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from starlette.concurrency import run_in_threadpool

from dripengine.clock import Clock
from dripengine.reports.status import HEARTBEAT_SECONDS
from dripengine.storage import DBAPIError, Engine
from dripengine.storage.engine import database_error_reason
from dripengine.storage.rounds import write_heartbeat

log = logging.getLogger("dripengine.web")


class ServeHeartbeat:
    def __init__(self, engine: Engine, clock: Clock, every: float = HEARTBEAT_SECONDS) -> None:
        self.engine = engine
        self.clock = clock
        self.every = every
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._registered = False

    def start(self) -> None:
        """Insert the row (or try again at each beat until it is in), then beat in a thread."""
        self._beat()
        self._thread = threading.Thread(target=self._run, name="drip-serve-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop beating and say so in the row."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.every + 5)
        self._beat(stopped=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._beat()

    def _beat(self, *, stopped: bool = False) -> None:
        now = self.clock.now()
        values: dict[str, Any] = {
            "id": self.id,
            "kind": "serve",
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "provider": None,
            "started_at": now,
            "heartbeat_at": now,
        }
        try:
            if not self._registered:
                write_heartbeat(self.engine, values, changes={}, started=True)
                self._registered = True
                if not stopped:
                    return
            changes = {"heartbeat_at": now} | ({"stopped_at": now} if stopped else {})
            write_heartbeat(self.engine, values, changes=changes, started=False)
        except DBAPIError as exc:
            log.warning("serve heartbeat %s not written: %s", self.id, database_error_reason(exc))


def heartbeat_lifespan(
    engine: Engine, clock: Clock
) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    """A Starlette ``lifespan``: the process's row while the app runs."""

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        beat = ServeHeartbeat(engine, clock)
        await run_in_threadpool(beat.start)
        try:
            yield
        finally:
            await run_in_threadpool(beat.stop)

    return lifespan


__all__ = ["ServeHeartbeat", "heartbeat_lifespan"]
