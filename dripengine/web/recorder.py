"""Group commit for tracking hits: the events of requests in flight share one ingest transaction.

Each request hands its event to :meth:`GroupRecorder.record` and waits until it is committed, so
a pixel or redirect is answered only after its event is stored, as with one transaction a
request. While a batch is being written, the events of newer requests gather; they go in the next
batch as soon as the current one commits. One batch at a time per process: SQLite's single writer
is never contended from here, and PostgreSQL gets one transaction where it would have had many.

A batch that fails (the database is down) fails every request in it; the caller decides what the
person sees (the tracking routes still answer the pixel and the redirect).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from starlette.concurrency import run_in_threadpool

from dripengine.vocabulary import IncomingEvent

MAX_BATCH = 500


class GroupRecorder:
    def __init__(
        self, ingest: Callable[[Sequence[IncomingEvent]], Any], max_batch: int = MAX_BATCH
    ) -> None:
        self.ingest = ingest
        self.max_batch = max_batch
        self._pending: list[tuple[IncomingEvent, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, event: IncomingEvent) -> None:
        """Store ``event`` (with whatever else is waiting); raises what the ingest raised."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.append((event, done))
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write())
        await done

    async def _write(self) -> None:
        while self._pending:
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            try:
                await run_in_threadpool(self.ingest, [event for event, _ in batch])
            except Exception as exc:  # every waiting request gets it
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)
