"""CRM handoffs delivered: pending Handoff rows POSTed, signed, to a receiver on loopback.

2,000 pending handoffs (quick: 100) of one lead, payloads shaped as ingest writes them (ten
evidence items each); :class:`dripengine.handoff.delivery.HandoffDelivery` claims them in batches
(lease, ``FOR UPDATE SKIP LOCKED``), POSTs each one (HMAC-SHA256 over timestamp + body) to
:class:`dripengine.testing.crm_receiver.CRMReceiver` (a threaded ``http.server``, which verifies
every signature) and records each 2xx in its own transaction. ``handoff.<db>.per_s``: handoffs
delivered a second, the receiver's accepted count checked against the rows. On PostgreSQL also
``handoff.postgres.2_deliverers``: two deliverers in threads racing over the same rows (each
handoff checked delivered once), against one as the baseline. There is no target: a CRM takes
handoffs by the dozen a day; the figure says delivery is never the bottleneck.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Engine

from benchmarks.common import (
    Context,
    compared,
    measurement,
    postgres_engine,
    skipped,
    sqlite_engine,
    timed,
)
from dripengine.clock import FixedClock
from dripengine.config import Settings
from dripengine.handoff.delivery import HandoffDelivery
from dripengine.storage.engine import make_engine
from dripengine.storage.handoffs import HANDOFF
from dripengine.storage.models import Lead
from dripengine.testing.crm_receiver import CRMReceiver

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
SECRET = "bench-crm-secret-0123456789"
LEAD = Lead.__table__  # type: ignore[attr-defined]


def _fill(engine: Engine, count: int) -> None:
    with engine.begin() as connection:
        lead_id = connection.execute(
            insert(LEAD)
            .values(email="jane@acme.example", attributes={}, created_at=NOW, updated_at=NOW)
            .returning(LEAD.c.id)
        ).scalar_one()
        evidence = [
            {"type": "click", "at": NOW.isoformat(), "points": 5, "tag": "guide", "url": "x"}
        ] * 10
        connection.execute(
            insert(HANDOFF),
            [
                {
                    "uid": uuid.uuid4().hex,
                    "lead_id": lead_id,
                    "campaign_id": "lost-sql-winback",
                    "score": 64.0,
                    "fit_grade": "B",
                    "payload": {"lead": {"email": "jane@acme.example"}, "evidence": evidence},
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": NOW,
                    "created_at": NOW,
                }
                for _ in range(count)
            ],
        )


def _deliver(engines: list[Engine], url: str) -> int:
    settings = Settings.model_validate({"crm": {"webhook_url": url, "webhook_secret": SECRET}})
    delivered: list[int] = []

    def work(engine: Engine) -> None:
        delivery = HandoffDelivery(engine, settings, FixedClock(NOW))
        try:
            delivered.append(delivery.deliver_due().delivered)
        finally:
            delivery.close()

    threads = [threading.Thread(target=work, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(delivered)


def _rate(engine: Engine, count: int, deliverers: int = 1) -> float:
    _fill(engine, count)
    engines = [engine] + [
        make_engine(str(engine.url.render_as_string(hide_password=False)))
        for _ in range(deliverers - 1)
    ]
    try:
        with CRMReceiver(SECRET) as crm:
            delivered, seconds = timed(lambda: _deliver(engines, crm.url))
            accepted = sorted(body["handoff_id"] for body in crm.accepted)
    finally:
        for extra in engines[1:]:
            extra.dispose()
    assert delivered == count == len(accepted) == len(set(accepted)), (delivered, len(accepted))
    return count / seconds


def run(ctx: Context) -> Iterable[dict[str, Any]]:
    count = ctx.size(2_000, 100)
    yield measurement(
        "handoff.sqlite.per_s",
        _rate(sqlite_engine(ctx, "handoff"), count),
        "handoffs/s",
        handoffs=count,
    )
    if ctx.postgres_url is None:
        yield skipped("handoff.postgres", ctx.postgres_skip_reason)
        return
    with postgres_engine(ctx, "handoff") as engine:
        one = _rate(engine, count)
    yield measurement("handoff.postgres.per_s", one, "handoffs/s", handoffs=count)
    with postgres_engine(ctx, "handoff2") as engine:
        two = _rate(engine, count, deliverers=2)
    yield compared("handoff.postgres.2_deliverers", two, one, "handoffs/s", handoffs=count)
