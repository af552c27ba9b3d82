"""Group commit for tracking hits: the events of requests in flight share one ingest transaction.

Each request hands its event to :meth:`GroupRecorder.record` and waits until it is committed, so
a pixel or redirect is answered only after its event is stored, as with one transaction a
request. While a batch is being written, the events of newer requests gather; they go in the next
batch as soon as a writer is free. On SQLite one batch at a time per process (its single writer is
never contended from here); on PostgreSQL up to ``max_writers`` batches at once, each its own
transaction on its own connection: a batch spends most of its time waiting for the server's
answers, and ingests of the same lead take turns on the lead's row lock
(:func:`dripengine.storage.events.event_leads`).

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
        self,
        ingest: Callable[[Sequence[IncomingEvent]], Any],
        max_batch: int = MAX_BATCH,
        *,
        max_writers: int = 1,
    ) -> None:
        self.ingest = ingest
        self.max_batch = max_batch
        self.max_writers = max_writers
        self._pending: list[tuple[IncomingEvent, asyncio.Future[None]]] = []
        self._writers: set[asyncio.Task[None]] = set()

    async def record(self, event: IncomingEvent) -> None:
        """Store ``event`` (with whatever else is waiting); raises what the ingest raised."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.append((event, done))
        if len(self._writers) < self.max_writers:
            writer = loop.create_task(self._write())
            self._writers.add(writer)
            writer.add_done_callback(self._writers.discard)
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
