"""SLA reminders to the CRM: each ``sla_alert`` row POSTed to ``crm.sla_reminder_url``, signed
and retried exactly as a handoff is (:mod:`dripengine.handoff.delivery`: claim with a lease,
``attempts`` as the fencing token, backoff with jitter), until a 2xx or :data:`MAX_ATTEMPTS`.

The body (``event: "sla.overdue"``) names the alert (``alert_id``: the CRM's idempotency key, also
in ``X-Drip-Alert-Id``), the hand-back it is about (``handoff_id``: the id the handoff carried,
also in ``X-Drip-Handoff-Id``), the clock, when it was due and what dripengine did about it
(``action``). ``X-Drip-Signature`` / ``X-Drip-Timestamp`` are the handoff's, under
``crm.webhook_secret``. A reminder is news only while it is fresh: after :data:`MAX_ATTEMPTS`
failed attempts it is ``failed`` and not tried again (``last_error`` says why).
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta
from typing import Any

from dripengine.clock import Clock
from dripengine.config import Settings
from dripengine.handoff import body as signing
from dripengine.handoff.delivery import LEASE_MARGIN, DeliveryTally, Transport, Urllib3Transport
from dripengine.storage import Engine
from dripengine.storage.sla import claim, settle

__all__ = ["ALERT_HEADER", "MAX_ATTEMPTS", "configuration_problem", "deliver_reminders", "payload"]

log = logging.getLogger("dripengine.handoff.reminders")
ALERT_HEADER = "X-Drip-Alert-Id"
MAX_ATTEMPTS = 10
BATCH = 20


def configuration_problem(settings: Settings) -> str | None:
    """Why reminders cannot be sent; None when they can (or are not asked for)."""
    if settings.crm.sla_reminder_url and not settings.crm.webhook_secret:
        return (
            "crm.webhook_secret is not set (DRIP_CRM_WEBHOOK_SECRET): SLA reminders are only "
            "sent signed, like handoffs"
        )
    return None


def payload(row: dict[str, Any]) -> dict[str, Any]:
    """The reminder's JSON document (without ``handoff_id``, which :func:`signing.body` adds)."""
    return {
        "event": "sla.overdue",
        "alert_id": row["uid"],
        "clock": row["clock"],
        "due_at": row["due_at"],
        "handed_back_at": row["handed_back_at"],
        "lead": {
            "email": row["email"],
            "first_name": row["first_name"],
            "last_name": row["last_name"],
            "company": row["company"],
        },
        "action": row["action"],
        "alerted_at": row["created_at"],
    }


def deliver_reminders(
    engine: Engine,
    settings: Settings,
    clock: Clock,
    *,
    transport: Transport | None = None,
    rng: random.Random | None = None,
) -> DeliveryTally:
    """Every due reminder tried once (claimed in batches); the tally."""
    tally = DeliveryTally()
    url, secret = settings.crm.sla_reminder_url, settings.crm.webhook_secret
    if not url:
        tally.skipped = "crm.sla_reminder_url is not set (DRIP_CRM_SLA_REMINDER_URL)"
        return tally
    if not secret:
        tally.skipped = configuration_problem(settings)
        return tally
    rng = rng or random.Random()
    lease = timedelta(seconds=settings.crm.timeout * 2) + LEASE_MARGIN
    own = transport is None
    client = transport or Urllib3Transport(settings.crm.timeout)
    try:
        while True:
            with engine.begin() as connection:
                rows = claim(connection, clock.now(), lease, BATCH)
            if not rows:
                break
            for row in rows:
                _attempt(engine, settings, clock, client, rng, row, url, secret, tally)
    finally:
        if own:
            client.close()
    return tally


def _attempt(
    engine: Engine,
    settings: Settings,
    clock: Clock,
    client: Transport,
    rng: random.Random,
    row: dict[str, Any],
    url: str,
    secret: str,
    tally: DeliveryTally,
) -> None:
    document = signing.body(row["handoff_uid"], payload(row))
    stamp = int(clock.now().timestamp())
    headers = signing.headers(secret, stamp, document, row["handoff_uid"])
    headers[ALERT_HEADER] = row["uid"]
    answer = client.post(url, document, headers)
    now = clock.now()
    if answer.ok:
        tally.delivered += 1
        changes: dict[str, Any] = {
            "status": "delivered",
            "delivered_at": now,
            "next_attempt_at": None,
            "last_error": None,
        }
    else:
        error = signing.short_error(answer.error or f"HTTP {answer.status}")
        tally.failed += 1
        tally.errors.append(f"SLA reminder {row['uid']} (attempt {row['attempts']}): {error}")
        log.warning("SLA reminder %s attempt %s: %s", row["uid"], row["attempts"], error)
        if row["attempts"] >= MAX_ATTEMPTS:
            changes = {"status": "failed", "next_attempt_at": None, "last_error": error}
        else:
            wait = signing.backoff(row["attempts"], settings.crm.max_backoff_seconds, rng)
            changes = {"next_attempt_at": now + wait, "last_error": error}
    with engine.begin() as connection:
        settle(connection, row, changes)
