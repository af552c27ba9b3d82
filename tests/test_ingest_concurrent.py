"""Ingests racing on one lead: every point counts, every requalification happens once.

Several `drip serve` processes (and the threads of one) ingest at once: a webhook batch, its
retry delivered to another process, tracking hits. Each ingest reads a lead's score and writes it
back; two that overlap must not both start from the same score (a lost update), on SQLite and on
PostgreSQL alike. Real threads, each with its own connection, released together by a barrier.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine

from dripengine import vocabulary as v
from dripengine.engagement.ingest import Engagement
from dripengine.storage.models import Handoff, ScoreChange
from dripengine.vocabulary import IncomingEvent
from tests.test_ingest import _all, _lead
from tests.test_ingest import sent as sent  # the fixture

THREADS = 6


def _race(batches: list[list[IncomingEvent]], engagement: Engagement) -> list[BaseException]:
    barrier = threading.Barrier(len(batches))
    errors: list[BaseException] = []

    def run(batch: list[IncomingEvent]) -> None:
        barrier.wait()
        try:
            engagement.ingest(batch)
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def test_racing_ingests_lose_no_points(engine: Engine, sent: Any) -> None:
    engagement, clock, message = sent
    at = clock.now()
    batches = [
        [
            IncomingEvent(
                type=v.REPLY if n % 2 else v.CLICK,
                occurred_at=at,  # one moment: no decay between them, the order cannot matter
                provider="sendgrid",
                message_uid=message.uid,
                url=f"https://acme.example/{n}",
                provider_event_id=f"race-{n}",
            )
        ]
        for n in range(THREADS)
    ]
    assert _race(batches, engagement) == []
    changes = _all(engine, ScoreChange)
    assert len(changes) == THREADS
    lead = _lead(engine)
    # each change was computed from the score the one before it left: none started from a stale one
    assert lead.score == sum(c.delta for c in changes)
    assert sorted(c.score_after for c in changes)[-1] == lead.score


def test_the_same_batch_on_two_processes_requalifies_once(engine: Engine, sent: Any) -> None:
    engagement, clock, message = sent
    at = clock.now()
    # enough engagement to requalify Jane (fit is met by her profile): replies and clicks
    batch = [
        IncomingEvent(
            type=v.REPLY if n % 2 else v.CLICK,
            occurred_at=at - timedelta(minutes=n),
            provider="sendgrid",
            message_uid=message.uid,
            url=f"https://acme.example/{n}",
            provider_event_id=f"hot-{n}",
        )
        for n in range(10)
    ]
    assert _race([batch, list(reversed(batch))], engagement) == []
    assert len(_all(engine, ScoreChange)) == 10
    assert _lead(engine).stage == "mql"
    assert len(_all(engine, Handoff)) == 1
