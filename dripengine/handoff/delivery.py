"""Deliver pending Handoff rows to the CRM webhook: claimed with a lease, retried until a 2xx.

The Handoff table is an outbox. Ingest writes a ``pending`` row in the transaction that
requalifies the lead, so a handoff exists exactly when the requalification does (never lost).
Here each round:

1. **Claim** up to :data:`BATCH` due rows in one statement, like the dispatcher claims enrollments:
   ``UPDATE handoff SET next_attempt_at = now + lease, attempts = attempts + 1 WHERE id IN (SELECT
   … WHERE status = 'pending' AND next_attempt_at <= now ORDER BY id LIMIT n FOR UPDATE SKIP
   LOCKED) RETURNING …``. ``next_attempt_at`` is the lease: no other worker sees the row until it
   passes, and it is longer than the POST may take (``crm.timeout`` bounds the whole request).
   ``attempts`` is the fencing token: a result is recorded only if the row still has the count
   this worker claimed it with.
2. **POST** the signed body (see :mod:`dripengine.handoff.body`), one row at a time.
3. **Record**, in one short transaction per row as soon as the answer is in: a 2xx marks the row
   ``delivered``; anything else (an error status, a refused connection, a timeout) keeps it
   ``pending`` with ``last_error`` and ``next_attempt_at`` moved by the backoff.

At least once, on purpose: a worker that dies after the CRM answered 2xx and before its commit
leaves the row pending, and the CRM sees the same ``handoff_id`` again once the lease has passed.
That is the one way a CRM gets a handoff twice, and why every body carries the id: the receiver
keeps the ids it has accepted and answers 2xx to a repeat without acting on it again.

Without ``crm.webhook_url`` nothing is sent: rows stay pending, ``drip status`` counts them and
``drip leads list --requalified`` is the handoff.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

import urllib3

from dripengine.clock import Clock
from dripengine.config import Settings
from dripengine.handoff import body as handoff
from dripengine.storage import Engine
from dripengine.storage.handoffs import claim, mark_delivered, retry_later

log = logging.getLogger("dripengine.handoff.body")
BATCH = 20
LEASE_MARGIN = timedelta(seconds=60)


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no HTTP answer at all (refused, timed out)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Transport(Protocol):
    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer: ...

    def close(self) -> None: ...


class Urllib3Transport:
    """A pooled keep-alive client; ``timeout`` bounds each request as a whole, no redirects."""

    def __init__(self, timeout: float) -> None:
        self.pool = urllib3.PoolManager(
            timeout=urllib3.Timeout(total=timeout), retries=False, maxsize=2
        )

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        try:
            response = self.pool.request(
                "POST", url, body=body, headers=headers, redirect=False, preload_content=True
            )
        except urllib3.exceptions.HTTPError as exc:
            return Answer(None, f"{type(exc).__name__}: {_reason(exc)}")
        if 200 <= response.status < 300:
            return Answer(response.status)
        text = response.data[:200].decode("utf-8", "replace")
        where = (
            f" (redirects are not followed: set crm.webhook_url to {response.headers['Location']})"
            if 300 <= response.status < 400 and "Location" in response.headers
            else ""
        )
        return Answer(response.status, f"HTTP {response.status}{where}: {text}".rstrip(": "))

    def close(self) -> None:
        self.pool.clear()


def _reason(exc: Exception) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc)


@dataclass
class DeliveryTally:
    delivered: int = 0
    failed: int = 0  # attempts that did not get a 2xx (the rows stay pending)
    errors: list[str] = field(default_factory=list)
    skipped: str | None = None  # why nothing was tried (not configured)


def configuration_problem(settings: Settings) -> str | None:
    """Why handoffs cannot be sent with these settings; None when they can."""
    if not settings.crm.webhook_url:
        return (
            "crm.webhook_url is not set (DRIP_CRM_WEBHOOK_URL): handoffs wait in "
            "`drip leads list --requalified`"
        )
    if not settings.crm.webhook_secret:
        return (
            "crm.webhook_secret is not set (DRIP_CRM_WEBHOOK_SECRET): handoffs are only sent "
            "signed; set a secret of at least 16 characters and give it to the CRM"
        )
    return None


class HandoffDelivery:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        clock: Clock,
        *,
        transport: Transport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.transport = transport or Urllib3Transport(settings.crm.timeout)
        self.rng = rng or random.Random()
        self.lease = timedelta(seconds=settings.crm.timeout * 2) + LEASE_MARGIN

    def close(self) -> None:
        self.transport.close()

    def deliver_due(self, *, stop: Callable[[], bool] | None = None) -> DeliveryTally:
        """Try every handoff due now once (claimed in batches); the tally."""
        tally = DeliveryTally()
        problem = configuration_problem(self.settings)
        if problem is not None:
            tally.skipped = problem
            return tally
        url = self.settings.crm.webhook_url
        secret = self.settings.crm.webhook_secret
        assert url is not None and secret is not None
        while not (stop is not None and stop()):
            with self.engine.begin() as connection:
                rows = claim(connection, self.clock.now(), self.lease, BATCH)
            if not rows:
                break
            for row in rows:
                self._attempt(row, url, secret, tally)
        return tally

    def _attempt(self, row: dict[str, Any], url: str, secret: str, tally: DeliveryTally) -> None:
        payload = handoff.body(
            row["uid"],
            row["payload"] or {},
            {
                "event": "lead.requalified",
                "campaign": row["campaign_id"],
                "score": row["score"],
                "fit_grade": row["fit_grade"],
                "requalified_at": row["created_at"],
            },
        )
        stamp = int(self.clock.now().timestamp())
        answer = self.transport.post(
            url, payload, handoff.headers(secret, stamp, payload, row["uid"])
        )
        now = self.clock.now()
        if answer.ok:
            tally.delivered += 1
            with self.engine.begin() as connection:
                mark_delivered(connection, row, now)
            return
        error = handoff.short_error(answer.error or f"HTTP {answer.status}")
        wait = handoff.backoff(row["attempts"], self.settings.crm.max_backoff_seconds, self.rng)
        tally.failed += 1
        tally.errors.append(f"handoff {row['uid']} (attempt {row['attempts']}): {error}")
        log.warning("handoff %s attempt %s: %s", row["uid"], row["attempts"], error)
        with self.engine.begin() as connection:
            retry_later(connection, row, now + wait, error)


def deliver_pending(engine: Engine, settings: Settings, clock: Clock) -> DeliveryTally:
    """One round for `drip run --once` and the daemon's job: every due handoff tried once."""
    delivery = HandoffDelivery(engine, settings, clock)
    try:
        return delivery.deliver_due()
    finally:
        delivery.close()


__all__ = [
    "Answer",
    "DeliveryTally",
    "HandoffDelivery",
    "Transport",
    "Urllib3Transport",
    "configuration_problem",
    "deliver_pending",
]
