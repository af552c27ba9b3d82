"""Group commit of tracking hits: requests in flight share a batch; a failure reaches each one."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from dripengine.vocabulary import IncomingEvent
from dripengine.web.recorder import GroupRecorder


def hit(n: int) -> IncomingEvent:
    return IncomingEvent("open", datetime(2026, 11, 23, tzinfo=UTC), "drip", message_uid=f"m{n}")


def test_requests_in_flight_share_a_batch_and_each_waits_for_its_commit() -> None:
    batches: list[list[str]] = []
    release = threading.Event()

    def ingest(events: Sequence[IncomingEvent]) -> None:
        if not batches:
            release.wait(5)  # the first batch is slow: the others gather meanwhile
        batches.append([e.message_uid or "" for e in events])

    async def main() -> None:
        recorder = GroupRecorder(ingest, max_batch=3)
        first = asyncio.create_task(recorder.record(hit(0)))
        await asyncio.sleep(0.05)
        rest = [asyncio.create_task(recorder.record(hit(n))) for n in range(1, 6)]
        await asyncio.sleep(0.05)
        assert not first.done() and not any(t.done() for t in rest)
        release.set()
        await asyncio.gather(first, *rest)

    asyncio.run(main())
    assert batches == [["m0"], ["m1", "m2", "m3"], ["m4", "m5"]]


def test_a_failed_batch_fails_every_request_in_it_and_the_next_batch_still_runs() -> None:
    calls: list[int] = []

    def ingest(events: Sequence[IncomingEvent]) -> None:
        calls.append(len(events))
        if len(calls) == 1:
            raise RuntimeError("database down")

    async def main() -> None:
        recorder = GroupRecorder(ingest)
        results = await asyncio.gather(
            *(recorder.record(hit(n)) for n in range(3)), return_exceptions=True
        )
        assert [type(r) for r in results] == [RuntimeError] * 3
        await recorder.record(hit(9))

    asyncio.run(main())
    assert calls == [3, 1]


@pytest.mark.parametrize("count", [1, 50])
def test_nothing_is_left_behind(count: int) -> None:
    seen: list[str] = []

    async def main() -> None:
        recorder = GroupRecorder(lambda events: seen.extend(e.message_uid or "" for e in events))
        await asyncio.gather(*(recorder.record(hit(n)) for n in range(count)))

    asyncio.run(main())
    assert sorted(seen) == sorted(f"m{n}" for n in range(count))


def test_several_writers_write_side_by_side_and_no_more_than_allowed() -> None:
    running = 0
    most = 0
    lock = threading.Lock()
    release = threading.Event()
    written: list[str] = []

    def ingest(events: Sequence[IncomingEvent]) -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        release.wait(5)  # every batch is slow until released: the writers pile up
        with lock:
            running -= 1
            written.extend(e.message_uid or "" for e in events)

    async def main() -> None:
        recorder = GroupRecorder(ingest, max_batch=2, max_writers=3)
        tasks = []
        for n in range(10):
            tasks.append(asyncio.create_task(recorder.record(hit(n))))
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        assert not any(t.done() for t in tasks)  # nobody is answered before its commit
        release.set()
        await asyncio.gather(*tasks)

    asyncio.run(main())
    assert most == 3
    assert sorted(written) == sorted(f"m{n}" for n in range(10))
