"""The one event vocabulary every source is mapped to (an ESP's event webhook, our own tracking,
the unsubscribe page, an ESP's inbound replies, the API, `drip events ingest`), and the
incoming-event value.

Pure: sources build :class:`IncomingEvent` values; :func:`dripengine.engagement.ingest.ingest`
stores them and applies their effects.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# delivery
PROCESSED = "processed"
DELIVERED = "delivered"
DEFERRED = "deferred"
DROPPED = "dropped"
BOUNCE = "bounce"  # hard: the address does not exist -> suppressed at once
SOFT_BOUNCE = "soft_bounce"  # blocked / mailbox full -> suppressed after a configured count
# engagement
OPEN = "open"
CLICK = "click"
REPLY = "reply"
AUTO_REPLY = "auto_reply"  # out-of-office and friends: kept, weighted as such
# a reply that failed SPF/DKIM or scored as spam: kept as evidence, scores nothing, exits nothing
UNVERIFIED_REPLY = "unverified_reply"
# opt-outs
UNSUBSCRIBE = "unsubscribe"
GROUP_UNSUBSCRIBE = "group_unsubscribe"
GROUP_RESUBSCRIBE = "group_resubscribe"
COMPLAINT = "complaint"  # a spam report (an ESP's feedback loop)
# a person's own undo of their unsubscribe, within the grace period (engagement/undo.py): written
# only there, never taken from outside, so it is not in TYPES
RESUBSCRIBE = "resubscribe"
# custom engagement pushed through the API
SITE_VISIT = "site_visit"
FORM_FILL = "form_fill"
DEMO_REQUEST = "demo_request"

TYPES: frozenset[str] = frozenset(
    {
        PROCESSED,
        DELIVERED,
        DEFERRED,
        DROPPED,
        BOUNCE,
        SOFT_BOUNCE,
        OPEN,
        CLICK,
        REPLY,
        AUTO_REPLY,
        UNVERIFIED_REPLY,
        UNSUBSCRIBE,
        GROUP_UNSUBSCRIBE,
        GROUP_RESUBSCRIBE,
        COMPLAINT,
        SITE_VISIT,
        FORM_FILL,
        DEMO_REQUEST,
    }
)
CUSTOM_TYPES: frozenset[str] = frozenset({SITE_VISIT, FORM_FILL, DEMO_REQUEST})

# what takes an address out of everything, at once and for good (the suppression reason)
SUPPRESSES: Mapping[str, str] = {
    UNSUBSCRIBE: "unsubscribe",
    GROUP_UNSUBSCRIBE: "unsubscribe",
    BOUNCE: "hard_bounce",
    COMPLAINT: "spam_report",
}
# evidence that the provider accepted a message (resolves a message left `unknown` by a crash)
ACCEPTED: frozenset[str] = frozenset(
    {PROCESSED, DELIVERED, DEFERRED, BOUNCE, SOFT_BOUNCE, OPEN, CLICK, COMPLAINT, UNSUBSCRIBE}
)


@dataclass(frozen=True)
class IncomingEvent:
    """One engagement or delivery event, from any source, before it is stored.

    ``message_uid`` is our Message.uid (an ESP carries it in the message's custom arguments and
    echoes it in its events; our tracking tokens sign it); without it the event is matched to a
    lead by ``email``.
    """

    type: str
    occurred_at: datetime
    provider: (
        str  # an ESP's name (its events) | drip (own tracking and pages) | inbound | api | import
    )
    message_uid: str | None = None
    email: str | None = None
    provider_event_id: str | None = None
    provider_message_id: str | None = None
    url: str | None = None
    tag: str | None = None
    machine: bool = False  # privacy-proxy open or link-scanner click, when the source knows
    detail: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)

    def dedupe_key(self) -> str:
        """The second duplicate guard, beside ``provider_event_id``: copies of one event that
        arrive under another id still share (message, type, second, url)."""
        who = self.provider_message_id or self.message_uid or (self.email or "").lower()
        parts = (
            self.provider,
            who,
            self.type,
            str(int(self.occurred_at.timestamp())),
            self.url or "",
        )
        return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
