"""The stated policy for SendGrid messages a crash left ``unknown`` (docs/sending.md).

A message is recorded as ``sending`` before the provider call; after a crash, a SendGrid one whose
answer we never saw becomes ``unknown`` and is never resent blindly (SendGrid has no idempotency
key). Its events resolve it: any event that carries our ``drip_uid`` means SendGrid had it, and
:mod:`dripengine.engagement.ingest` marks it ``sent``. SendGrid posts ``processed`` within seconds of
accepting a message and retries a failed webhook post for up to 24 hours, so:

- past ``sending.unknown_grace_hours`` (default 48) without any event for it, **while the Event
  Webhook is known to work** (some SendGrid event was received after the message was created), the
  message is ``failed`` with the reason: SendGrid never had it. It is not resent.
- without any SendGrid event received since the message was created, nothing can be concluded (the
  webhook may not be set up): it stays ``unknown`` and ``drip status`` counts it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from dripengine.storage import Engine
from dripengine.storage.messages import fail_unheard_unknown

PROVIDER = "sendgrid"  # the provider of its messages and of its events
REASON = (
    "not sent: no SendGrid event for it {hours:g} h after a crash left it unknown, while the "
    "Event Webhook delivered others; not resent (a resend could duplicate it)"
)


def settle_unknown(engine: Engine, now: datetime, grace_hours: float) -> int:
    """Fail the ``unknown`` SendGrid messages past the grace period (see the module); how many."""
    cutoff = now - timedelta(hours=grace_hours)
    return fail_unheard_unknown(engine, PROVIDER, cutoff, REASON.format(hours=grace_hours))


__all__ = ["settle_unknown"]
